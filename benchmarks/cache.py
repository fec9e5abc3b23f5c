"""Repeat calls: the result cache and the dependency cache, on every engine available here.

    python benchmarks/cache.py [--runs 30]

Same run, per engine:
  cold vs warm call of a cacheable tool, in-process (Runner.call)    target: warm < 3 ms
  the same over MCP stdio (`skillcell serve`, the Python SDK client)  target: warm < 15 ms
  a tool whose build hook runs `pip install`: the first call pays the install, later calls
  (not cacheable, so they really run) do not
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from skillcell.catalog import scan
from skillcell.config import Config
from skillcell.engines import Engines
from skillcell.errors import EngineError
from skillcell.runner import Runner

CACHEABLE = """\
name: bench/stamp
annotations: {openWorldHint: false, idempotentHint: true}
timeout: 60s
scripts:
  now:
    command: python3 -c "import sys, time; print(sys.argv[1], time.time_ns())" {{word}}
    inputSchema: {type: object, properties: {word: {type: string}}, required: [word]}
"""
HOOKED = """\
name: bench/hooked
annotations: {openWorldHint: false}
timeout: 60s
hooks:
  build:
    - python3 -m pip install --quiet --no-index --find-links wheels --target deps six
scripts:
  use:
    command: python3 -c "import sys; sys.path.insert(0, 'deps'); import six; print(six.__version__)"
"""


def ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


async def in_process(config: Config, skills: Path, runs: int) -> tuple[float, float]:
    catalog = scan([skills])
    runner = Runner(lambda: catalog, config, environ={})
    start = time.perf_counter()
    first = (await runner.call("bench/stamp", {"word": "w"})).result
    cold = ms(start)
    warm = []
    for _ in range(runs):
        start = time.perf_counter()
        again = (await runner.call("bench/stamp", {"word": "w"})).result
        warm.append(ms(start))
        assert again.cached and again.stdout == first.stdout
    await runner.aclose()
    return cold, statistics.median(warm)


async def hooked(config: Config, skills: Path, runs: int) -> tuple[float, float]:
    catalog = scan([skills])
    runner = Runner(lambda: catalog, config, environ={})
    start = time.perf_counter()
    first = (await runner.call("bench/hooked", {})).result
    install = ms(start)
    assert first.exit_code == 0, first.stderr
    later = []
    for _ in range(max(5, runs // 3)):
        start = time.perf_counter()
        result = (await runner.call("bench/hooked", {})).result
        later.append(ms(start))
        assert result.exit_code == 0 and not result.cached
    await runner.aclose()
    return install, statistics.median(later)


async def over_mcp(engine: str, skills: Path, root: Path, runs: int) -> tuple[float, float]:
    env = {**os.environ, "SKILLCELL_FALLBACKS": engine, "SKILLCELL_LOG_LEVEL": "error",
           "SKILLCELL_CACHE_DIR": str(root / f"mcp-cache-{engine}"),
           "SKILLCELL_OUTPUT_ROOT": str(root / "outputs")}  # fmt: skip
    params = StdioServerParameters(command=sys.executable, env=env,
                                   args=["-m", "skillcell", "serve", "--skills", str(skills)])  # fmt: skip
    with open(os.devnull, "w") as devnull:
        async with Client(stdio_client(params, errlog=devnull)) as client:
            start = time.perf_counter()
            first = await client.call_tool("bench_stamp_now", {"word": "m"})
            cold = ms(start)
            warm = []
            for _ in range(runs):
                start = time.perf_counter()
                again = await client.call_tool("bench_stamp_now", {"word": "m"})
                warm.append(ms(start))
                assert (again.meta or {}).get("skillcell/cached") and again.content == first.content
    return cold, statistics.median(warm)


def make_skills(root: Path) -> Path:
    skills = root / "skills"
    (skills / "stamp").mkdir(parents=True)
    (skills / "stamp" / "skill.package.yml").write_text(CACHEABLE)
    hooked_dir = skills / "hooked"
    (hooked_dir / "wheels").mkdir(parents=True)
    (hooked_dir / "skill.package.yml").write_text(HOOKED)
    # A bundle no earlier run has seen, so its dependencies really are built in this run.
    (hooked_dir / "nonce").write_text(str(time.time_ns()))
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest",
                    str(hooked_dir / "wheels"), "six==1.16.0"], check=True)  # fmt: skip
    return skills


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    ns = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="skillcell-bench-"))
    root.chmod(0o755)
    rows = []
    try:
        skills = make_skills(root)
        base = Config(output_root=root / "outputs", cache_dir=root / "cache")
        for name in ("bwrap", "docker"):
            try:
                status = Engines(base).get(name).available()
            except ImportError as exc:
                print(f"{name} skipped: {exc}")
                continue
            if not status:
                print(f"{name} skipped: {status.reason}")
                continue
            config = replace(base, fallbacks=(name,), cache_dir=root / f"cache-{name}")
            cold, warm = await in_process(config, skills, ns.runs)
            rows.append((name, "in-process", cold, warm, 3.0))
            cold, warm = await over_mcp(name, skills, root, ns.runs)
            rows.append((name, "MCP stdio", cold, warm, 15.0))
            try:
                install, later = await hooked(config, skills, ns.runs)
                rows.append((name, "pip hook", install, later, None))
            except EngineError as exc:  # e.g. an image without pip
                print(f"{name} pip hook skipped: {str(exc).splitlines()[-2]}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"cacheable trivial tool: first call vs median of {ns.runs} repeats; "
          "pip hook: first call (with the install) vs later calls (which run)")
    print(f"{'engine':<8}{'path':<12}{'first ms':>10}{'repeat ms':>11}{'target':>9}  verdict")
    for engine, path, first, repeat, target in rows:
        verdict = "" if target is None else ("ok" if repeat < target else "OVER")
        target_text = f"< {target:g}" if target else "once"
        if target is None:
            verdict = "ok" if repeat < first / 2 else "CHECK"
        print(f"{engine:<8}{path:<12}{first:>10.1f}{repeat:>11.2f}{target_text:>9}  {verdict}")


if __name__ == "__main__":
    anyio.run(main)
