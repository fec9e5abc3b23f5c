"""Per-call cost of skillcell's engine path vs the raw runtime with the same isolation.

    python benchmarks/engine_overhead.py [--runs 30]

Same run, same trivial tool (`true`), medians:
  bwrap   engine.run(plan)  vs  the identical bwrap command line run directly
          (skillcell adds: staging and inputs dirs, a cgroup, export)      target: +10 ms
  docker  engine.run(plan)  vs  `docker run --rm` with the same flags       target: +10 %
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from skillcell.config import Config
from skillcell.engines import Engine, Engines
from skillcell.plan import ExecutionPlan, Limits

IMAGE = "python:3.11-slim"
LIMITS = Limits(timeout=30, memory=256 << 20, cpus=1.0, pids=128)


def plan_for(config: Config, bundle: Path, argv: tuple[str, ...]) -> ExecutionPlan:
    call_id = uuid.uuid4().hex
    return ExecutionPlan(call_id=call_id, tool="bench", argv=argv, bundle=bundle,
                         output_dir=config.output_root / call_id, image=IMAGE,
                         limits=LIMITS)  # fmt: skip


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm caches, images, cgroup parents
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def engine_runs(engine: Engine, config: Config, bundle: Path, runs: int) -> list[float]:
    loop = asyncio.new_event_loop()

    def once() -> None:
        result = loop.run_until_complete(engine.run(plan_for(config, bundle, ("true",))))
        assert result.exit_code == 0, result.stderr

    try:
        return timed(once, runs)
    finally:
        loop.close()


def raw_bwrap(
    engine: Engine, config: Config, bundle: Path, stack: ExitStack
) -> Callable[[], object]:
    """The exact command line the bwrap engine builds, run directly once per call."""
    plan = plan_for(config, bundle, ("true",))
    argv, env, _, _ = stack.enter_context(engine._sandbox(plan))  # type: ignore[attr-defined]
    # From setpriv on: the cgroup-joining wrapper in front is part of what skillcell adds.
    command = [*argv[argv.index("--") + 1 :], "true"]
    return lambda: subprocess.run(command, env=env, check=True)


def raw_docker(bundle: Path, outputs: Path) -> Callable[[], object]:
    command = [
        "docker", "run", "--rm", "--network", "none", "--read-only", "--user", "65534:65534",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--memory", "256m",
        "--memory-swap", "256m", "--cpus", "1", "--pids-limit", "128",
        "--tmpfs", "/tmp:size=64m", "-v", f"{bundle}:/workspace:ro", "-v", f"{outputs}:/outputs",
        "-w", "/workspace", IMAGE, "true",
    ]  # fmt: skip
    return lambda: subprocess.run(command, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    ns = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="skillcell-bench-"))
    tmp.chmod(0o755)
    bundle = tmp / "bundle"
    bundle.mkdir()
    config = Config(output_root=tmp / "outputs", cache_dir=tmp / "cache")
    engines = Engines(config)
    rows = []
    try:
        bwrap = engines.get("bwrap")
        if bwrap.available():
            with ExitStack() as stack:
                raw = timed(raw_bwrap(bwrap, config, bundle, stack), ns.runs)
            ours = engine_runs(bwrap, config, bundle, ns.runs)
            rows.append(("bwrap", statistics.median(raw), statistics.median(ours), "+10 ms"))
        else:
            print(f"bwrap skipped: {bwrap.available().reason}")
        try:
            docker = engines.get("docker")
            status = docker.available()
        except ImportError as exc:
            status = None
            print(f"docker skipped: {exc}")
        if status:
            outputs = tmp / "raw-outputs"
            outputs.mkdir()
            shutil.chown(outputs, 65534, 65534)
            raw = timed(raw_docker(bundle, outputs), ns.runs)
            ours = engine_runs(docker, config, bundle, ns.runs)
            rows.append(("docker", statistics.median(raw), statistics.median(ours), "+10 %"))
        elif status is not None:
            print(f"docker skipped: {status.reason}")
    finally:
        asyncio.run(engines.aclose())
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"trivial tool, median of {ns.runs} runs each, measured in the same run")
    print(f"{'engine':<8}{'raw ms':>10}{'skillcell ms':>14}{'added ms':>10}{'ratio':>8}"
          f"{'target':>9}  verdict")  # fmt: skip
    for name, raw_ms, ours_ms, target in rows:
        added = ours_ms - raw_ms
        ok = added <= 10 if target == "+10 ms" else ours_ms <= raw_ms * 1.10
        print(f"{name:<8}{raw_ms:>10.1f}{ours_ms:>14.1f}{added:>10.1f}{ours_ms / raw_ms:>8.2f}"
              f"{target:>9}  {'ok' if ok else 'OVER'}")  # fmt: skip


if __name__ == "__main__":
    main()
