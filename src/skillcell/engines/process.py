"""Run a host process to completion: capped stream capture, a timeout that kills, cancellation.

Shared by the engines that sandbox a local process (bwrap, local). The process starts in its
own session so one signal reaches its whole group; `kill` lets the engine add what else must
die with it (a cgroup).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import anyio
from anyio.abc import ByteReceiveStream, Process

from ..outputs import CappedBuffer, Export
from ..plan import ExecutionPlan, RunResult

TIMEOUT_EXIT = 124  # what coreutils' timeout reports


@dataclass
class Outcome:
    exit_code: int
    stdout: CappedBuffer
    stderr: CappedBuffer
    timed_out: bool
    duration_ms: float

    def result(
        self, engine: str, plan: ExecutionPlan, export: Export, notes: Sequence[str] = ()
    ) -> RunResult:
        return RunResult(
            exit_code=self.exit_code,
            stdout=self.stdout.text(),
            stderr=self.stderr.text(),
            engine=engine,
            duration_ms=self.duration_ms,
            outputs=export.files,
            output_dir=plan.output_dir if export.files else None,
            stdout_truncated=self.stdout.truncated,
            stderr_truncated=self.stderr.truncated,
            timed_out=self.timed_out,
            notes=(*notes, *export.notes),
        )


async def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    stdout_cap: int,
    stderr_cap: int,
    cwd: str | None = None,
    kill: Callable[[], None] | None = None,
) -> Outcome:
    out, err = CappedBuffer(stdout_cap), CappedBuffer(stderr_cap)
    start = time.monotonic()
    process = await anyio.open_process(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )

    def kill_all() -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if kill is not None:
            kill()

    timed_out = False
    try:
        with anyio.move_on_after(timeout) as scope:
            async with anyio.create_task_group() as tg:
                assert process.stdout is not None and process.stderr is not None
                tg.start_soon(_drain, process.stdout, out)
                tg.start_soon(_drain, process.stderr, err)
                await process.wait()
                # Whatever the tool left running in the background dies with it (and stops
                # holding our pipes open).
                kill_all()
        if scope.cancelled_caught:
            timed_out = True
            kill_all()
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                kill_all()
            await _reap(process)
    code = TIMEOUT_EXIT if timed_out else _exit_code(process.returncode)
    return Outcome(code, out, err, timed_out, (time.monotonic() - start) * 1000)


async def _drain(stream: ByteReceiveStream, buffer: CappedBuffer) -> None:
    # Keep reading past the cap (and drop it) so a flooding tool never blocks on a full pipe.
    async for chunk in stream:
        buffer.write(chunk)


async def _reap(process: Process) -> None:
    with anyio.move_on_after(5):
        await process.wait()
    await process.aclose()


def _exit_code(returncode: int | None) -> int:
    if returncode is None:
        return -1
    return 128 - returncode if returncode < 0 else returncode  # killed by signal N -> 128+N
