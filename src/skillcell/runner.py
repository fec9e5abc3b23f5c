"""One call from name and arguments to a scrubbed RunResult; shared by the CLI and the server."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio

from .arguments import validate_arguments
from .catalog import Catalog, Tool, bundle_digest
from .config import Config
from .engines import Engines, Progress, no_progress
from .plan import ExecutionPlan, RunResult
from .planner import make_plan
from .secrets import resolve_env, scrub

log = logging.getLogger(__name__)
TICK = 1.0  # seconds between "running" progress reports


@dataclass(frozen=True)
class Call:
    tool: Tool
    plan: ExecutionPlan
    result: RunResult


class Runner:
    def __init__(
        self,
        catalog: Callable[[], Catalog],
        config: Config,
        engines: Engines | None = None,
    ) -> None:
        self.catalog = catalog
        self.config = config
        self.engines = engines or Engines(config)

    def prepare(
        self,
        name: str,
        args: Any,
        *,
        secret_sources: Sequence[Mapping[str, str]] = (),
        cwd: Path | None = None,
    ) -> tuple[Tool, ExecutionPlan]:
        """Lookup, validation, env and secrets, plan: every error a caller can fix, before I/O."""
        tool = self.catalog().lookup(name)
        valid = validate_arguments(tool.name, tool.script.input_schema, args)
        sources = [*secret_sources, os.environ]
        env, secrets = resolve_env(tool.skill, tool.name, sources)
        plan = make_plan(
            tool,
            valid,
            config=self.config,
            call_id=uuid.uuid4().hex,
            env=env,
            secrets=secrets,
            cwd=cwd,
            bundle_digest=bundle_digest(tool.skill.path) if self.config.cache_enabled else "",
        )
        return tool, plan

    async def call(
        self,
        name: str,
        args: Any,
        *,
        secret_sources: Sequence[Mapping[str, str]] = (),
        engine: str | None = None,
        progress: Progress = no_progress,
        cwd: Path | None = None,
    ) -> Call:
        tool, plan = self.prepare(name, args, secret_sources=secret_sources, cwd=cwd)
        await progress("arguments validated")
        result = await self.execute(tool, plan, engine=engine, progress=progress)
        return Call(tool, plan, result)

    async def execute(
        self,
        tool: Tool,
        plan: ExecutionPlan,
        *,
        engine: str | None = None,
        progress: Progress = no_progress,
    ) -> RunResult:
        selection = self.engines.select(plan, engine or tool.skill.engine)
        await progress(f"engine chosen: {selection.engine.name}")
        log.info("running %s on %s (call %s)", tool.name, selection.engine.name, plan.call_id)
        result = await _with_ticks(selection.engine.run(plan, progress), progress)
        await progress("done")
        return replace(
            result,
            stdout=scrub(result.stdout, plan.secrets),
            stderr=scrub(result.stderr, plan.secrets),
            notes=tuple(scrub(n, plan.secrets) for n in (*selection.notes, *result.notes)),
        )


async def _with_ticks(work: Any, progress: Progress) -> RunResult:
    """Await the engine's run while reporting elapsed time every TICK seconds."""
    result: list[RunResult] = []

    async def ticker() -> None:
        start = anyio.current_time()
        while True:
            await anyio.sleep(TICK)
            await progress(f"running ({anyio.current_time() - start:.0f}s)")

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        result.append(await work)
        tg.cancel_scope.cancel()
    return result[0]
