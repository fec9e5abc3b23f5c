"""The MCP server's own cost, measured against the engine alone in the same run.

    python benchmarks/server.py [--runs 30] [--bundles 1000] [--engine bwrap]

Over a real stdio connection (`skillcell serve` as a subprocess, the MCP Python SDK client):
  tools/list latency with 1,000 skills           target < 20 ms (one page; all pages shown too)
  one call end to end vs engine.run() alone      target < 5 ms of protocol overhead
  32 concurrent calls: throughput vs the same    target >= 80 % of direct
    sandboxes started directly (same concurrency limit)
  server RSS with 1,000 skills                   target < 120 MB
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from skillcell.catalog import scan
from skillcell.config import Config, load_config
from skillcell.engines import Engines
from skillcell.planner import make_plan

sys.path.insert(0, str(Path(__file__).parent))
from catalog_scan import generate  # noqa: E402

TRIVIAL = """\
name: bench/trivial
annotations: {openWorldHint: false}
timeout: 30s
scripts:
  echo:
    command: python3 -c "import sys; print(sys.argv[1])" {{word}}
    inputSchema:
      type: object
      properties: {word: {type: string}}
      required: [word]
"""


def server_rss_mb(marker: str) -> float:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if marker.encode() in cmdline and b"serve" in cmdline:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            continue
    return float("nan")


async def direct(config: Config, skills: Path, runs: int, concurrent: int) -> tuple[float, float]:
    """Median single-call time and concurrent throughput of engine.run() with no server."""
    catalog = scan([skills])
    tool = catalog.lookup("bench/trivial")
    engines = Engines(config)
    engine = engines.select(make_plan(tool, {"word": "x"}, config=config, call_id="probe")).engine

    async def once(word: str) -> None:
        plan = make_plan(tool, {"word": word}, config=config, call_id=uuid.uuid4().hex)
        result = await engine.run(plan)
        assert result.stdout.strip() == word, result.stderr

    await once("warm")
    times = []
    for i in range(runs):
        start = time.perf_counter()
        await once(f"w{i}")
        times.append((time.perf_counter() - start) * 1000)
    limiter = anyio.CapacityLimiter(config.concurrency)

    async def limited(word: str) -> None:
        async with limiter:
            await once(word)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(concurrent):
            tg.start_soon(limited, f"c{i}")
    throughput = concurrent / (time.perf_counter() - start)
    await engines.aclose()
    return statistics.median(times), throughput


async def over_mcp(
    skills: Path, runs: int, concurrent: int, env: dict[str, str]
) -> dict[str, float]:
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "skillcell", "serve", "--skills", str(skills)],
                                   env=env)  # fmt: skip
    out: dict[str, float] = {}
    with open(os.devnull, "w") as devnull:
        async with Client(stdio_client(params, errlog=devnull)) as client:
            first = await client.list_tools()
            out["rss_start"] = server_rss_mb(str(skills))
            pages, whole = [], []
            for _ in range(runs):
                start = time.perf_counter()
                page = await client.list_tools()
                pages.append((time.perf_counter() - start) * 1000)
                count, cursor = len(page.tools), page.next_cursor
                while cursor:
                    page = await client.list_tools(cursor=cursor)
                    count, cursor = count + len(page.tools), page.next_cursor
                whole.append((time.perf_counter() - start) * 1000)
            assert count > len(first.tools)  # every page was fetched
            out["list_page"], out["list_all"], out["tools"] = (statistics.median(pages),
                                                               statistics.median(whole), count)  # fmt: skip
            await client.call_tool("bench_trivial_echo", {"word": "warm"})
            calls = []
            for i in range(runs):
                start = time.perf_counter()
                result = await client.call_tool("bench_trivial_echo", {"word": f"w{i}"})
                calls.append((time.perf_counter() - start) * 1000)
                assert not result.is_error and f"w{i}" in str(result.content[0])
            out["call"] = statistics.median(calls)

            async def one(i: int) -> None:
                result = await client.call_tool("bench_trivial_echo", {"word": f"c{i}"})
                assert not result.is_error and f"c{i}" in str(result.content[0])

            start = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for i in range(concurrent):
                    tg.start_soon(one, i)
            out["throughput"] = concurrent / (time.perf_counter() - start)
            out["rss_end"] = server_rss_mb(str(skills))
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--bundles", type=int, default=1000)
    parser.add_argument("--concurrent", type=int, default=32)
    parser.add_argument("--engine", default="bwrap")
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="skillcell-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        skills = root / "skills"
        generate(skills, ns.bundles)
        (skills / "trivial").mkdir()
        (skills / "trivial" / "skill.package.yml").write_text(TRIVIAL)
        env = {**os.environ, "SKILLCELL_FALLBACKS": ns.engine, "SKILLCELL_CACHE_DIR": str(root / "cache"),
               "SKILLCELL_OUTPUT_ROOT": str(root / "outputs"), "SKILLCELL_LOG_LEVEL": "error"}  # fmt: skip
        config = load_config(environ=env)
        engine_ms, direct_tput = await direct(config, skills, ns.runs, ns.concurrent)
        mcp = await over_mcp(skills, ns.runs, ns.concurrent, env)
    overhead = mcp["call"] - engine_ms
    ratio = mcp["throughput"] / direct_tput
    print(f"{ns.bundles} skills + 1 trivial tool on {ns.engine}; medians of {ns.runs}; "
          f"{ns.concurrent} concurrent calls (concurrency limit {config.concurrency})")  # fmt: skip
    print(f"{'measure':<46}{'value':>12}{'target':>12}  verdict")
    rows = [
        ("tools/list, first page (100 tools)", f"{mcp['list_page']:.1f} ms", "< 20 ms",
         mcp["list_page"] < 20),
        (f"tools/list, all {int(mcp['tools'])} tools (every page)", f"{mcp['list_all']:.1f} ms",
         "", None),
        ("engine.run() alone, one call", f"{engine_ms:.1f} ms", "", None),
        ("tools/call over stdio, one call", f"{mcp['call']:.1f} ms", "", None),
        ("protocol overhead per call", f"{overhead:.1f} ms", "< 5 ms", overhead < 5),
        ("direct sandboxes, concurrent throughput", f"{direct_tput:.1f} /s", "", None),
        ("over MCP, concurrent throughput", f"{mcp['throughput']:.1f} /s", "", None),
        ("throughput ratio (MCP / direct)", f"{ratio:.0%}", ">= 80 %", ratio >= 0.8),
        ("server RSS after start", f"{mcp['rss_start']:.0f} MB", "< 120 MB",
         mcp["rss_start"] < 120),
        ("server RSS after the calls", f"{mcp['rss_end']:.0f} MB", "< 120 MB",
         mcp["rss_end"] < 120),
    ]  # fmt: skip
    for name, value, target, ok in rows:
        verdict = "" if ok is None else ("ok" if ok else "OVER")
        print(f"{name:<46}{value:>12}{target:>12}  {verdict}")


if __name__ == "__main__":
    anyio.run(main)
