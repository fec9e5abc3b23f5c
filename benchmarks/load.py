"""Load: many calls through a real MCP client, mixed tools and engines, every result checked.

    python benchmarks/load.py [--calls 1000] [--concurrency 16] [--engines bwrap,docker]

One `skillcell serve` over stdio; each tool names its engine in its manifest, so one server
runs calls on every engine at once. Passes when there are no protocol errors, every result is
the right one for its own input, and the server's memory stays flat (start and end RSS).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

TOOLS = {
    "upper": """\
name: load/upper
engine: {engine}
annotations: {{openWorldHint: false}}
timeout: 60s
scripts:
  run:
    command: python3 -c "import sys; print(sys.argv[1].upper())" {{{{text}}}}
    inputSchema: {{type: object, properties: {{text: {{type: string}}}}, required: [text]}}
""",
    "sha": """\
name: load/sha
engine: {engine}
annotations: {{openWorldHint: false}}
timeout: 60s
scripts:
  run:
    command: python3 -c "import sys, hashlib; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())" {{{{text}}}}
    inputSchema: {{type: object, properties: {{text: {{type: string}}}}, required: [text]}}
""",
    "count": """\
name: load/count
engine: {engine}
annotations: {{openWorldHint: false}}
timeout: 60s
scripts:
  run:
    command: python3 -c "import sys, json; print(json.dumps(dict(n=len(sys.argv[1]))))" {{{{text}}}}
    inputSchema: {{type: object, properties: {{text: {{type: string}}}}, required: [text]}}
    outputSchema: {{type: object, properties: {{n: {{type: integer}}}}, required: [n]}}
""",
}


def expected(kind: str, text: str) -> Any:
    if kind == "upper":
        return text.upper()
    if kind == "sha":
        return hashlib.sha256(text.encode()).hexdigest()
    return {"n": len(text)}


@dataclass
class Report:
    calls: int = 0
    ok: int = 0
    wrong: list[str] = field(default_factory=list)
    protocol_errors: list[str] = field(default_factory=list)
    by_engine: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    rss_start: float = 0.0
    rss_warm: float = 0.0  # after the first tenth of the calls: pools and clients exist
    rss_end: float = 0.0
    seconds: float = 0.0


def write_skills(root: Path, engines: list[str]) -> list[tuple[str, str, str]]:
    """Bundles for every (tool kind, engine); returns (tool name, kind, engine)."""
    tools = []
    for engine in engines:
        for kind, manifest in TOOLS.items():
            bundle = root / f"{kind}-{engine}"
            bundle.mkdir(parents=True)
            text = manifest.format(engine=engine).replace(f"load/{kind}", f"load/{kind}-{engine}")
            (bundle / "skill.package.yml").write_text(text)
            tools.append((f"load_{kind}-{engine}_run", kind, engine))
    return tools


def rss_mb(marker: str) -> float:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            continue
    return float("nan")


async def run_load(calls: int, concurrency: int, engines: list[str], workdir: Path) -> Report:
    skills = workdir / "load-skills"
    tools = write_skills(skills, engines)
    env = {**os.environ, "SKILLCELL_CONCURRENCY": str(concurrency), "SKILLCELL_LOG_LEVEL": "error",
           "SKILLCELL_CACHE": "0", "SKILLCELL_OUTPUT_ROOT": str(workdir / "outputs"),
           "SKILLCELL_CACHE_DIR": str(workdir / "cache")}  # fmt: skip
    params = StdioServerParameters(command=sys.executable, env=env,
                                   args=["-m", "skillcell", "serve", "--skills", str(skills)])  # fmt: skip
    report = Report(calls=calls)
    limiter = anyio.CapacityLimiter(concurrency)
    with open(workdir / "server.log", "w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            assert {name for name, _, _ in tools} <= listed, listed
            report.rss_start = rss_mb(str(skills))

            async def one(i: int) -> None:
                name, kind, engine = tools[i % len(tools)]
                text = f"call {i}: ünïcode; $(id) 'q' {i * 7919}"
                async with limiter:
                    start = time.perf_counter()
                    try:
                        result = await client.call_tool(name, {"text": text})
                    except Exception as exc:  # a protocol error: the load test's main failure
                        report.protocol_errors.append(f"{name} #{i}: {exc!r}")
                        return
                    report.latencies.append((time.perf_counter() - start) * 1000)
                want = expected(kind, text)
                if kind == "count":
                    got: Any = result.structured_content
                else:
                    block = result.content[0] if result.content else None
                    got = block.text.strip() if isinstance(block, types.TextContent) else None
                ran_on = (result.meta or {}).get("skillcell/engine")
                if result.is_error or got != want or ran_on != engine:
                    report.wrong.append(f"{name} #{i}: want {want!r} on {engine}, "
                                        f"got {got!r} on {ran_on} ({'error' if result.is_error else 'ok'})")  # fmt: skip
                    return
                report.ok += 1
                report.by_engine[engine] = report.by_engine.get(engine, 0) + 1
                if report.ok == max(1, calls // 10):
                    report.rss_warm = rss_mb(str(skills))

            start = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for i in range(calls):
                    tg.start_soon(one, i)
            report.seconds = time.perf_counter() - start
            report.rss_end = rss_mb(str(skills))
    return report


def print_report(report: Report, concurrency: int) -> None:
    lat = sorted(report.latencies) or [float("nan")]
    print(f"{report.calls} calls at concurrency {concurrency}: {report.seconds:.1f} s, "
          f"{report.calls / report.seconds:.1f} calls/s")  # fmt: skip
    print(f"{'measure':<28}{'value':>14}")
    rows = [
        ("correct results", f"{report.ok}/{report.calls}"),
        ("wrong results", str(len(report.wrong))),
        ("protocol errors", str(len(report.protocol_errors))),
        ("calls per engine", json.dumps(report.by_engine)),
        ("latency median", f"{statistics.median(lat):.0f} ms"),
        ("latency p95", f"{lat[int(len(lat) * 0.95) - 1]:.0f} ms"),
        ("server RSS start", f"{report.rss_start:.0f} MB"),
        (f"server RSS after {report.calls // 10} calls", f"{report.rss_warm:.0f} MB"),
        ("server RSS end", f"{report.rss_end:.0f} MB"),
    ]
    for name, value in rows:
        print(f"{name:<28}{value:>14}")
    for line in (report.wrong + report.protocol_errors)[:5]:
        print("  " + line)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--engines", default="bwrap,docker")
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="skillcell-load-") as tmp:
        Path(tmp).chmod(0o755)
        report = await run_load(ns.calls, ns.concurrency, ns.engines.split(","), Path(tmp))
    print_report(report, ns.concurrency)
    sys.exit(0 if report.ok == report.calls else 1)


if __name__ == "__main__":
    anyio.run(main)
