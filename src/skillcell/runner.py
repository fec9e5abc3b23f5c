"""One call from name and arguments to a scrubbed RunResult; shared by the CLI and the server."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import anyio

from .arguments import validate_arguments
from .cache import ResultCache, cache_key
from .catalog import Catalog, Tool, bundle_digest
from .config import Config
from .engines import Engines, Progress, no_progress
from .outputs import TRUNCATED
from .plan import ExecutionPlan, RunResult
from .planner import cacheable as plan_cacheable
from .planner import make_plan
from .secrets import resolve_env, scrub, scrub_file

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
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.catalog = catalog
        # The server's environment is one source of secrets: the env block of an MCP config.
        self.environ = os.environ if environ is None else environ
        self.config = config
        self.engines = engines or Engines(config)
        self.cache = ResultCache(config.cache_dir, config.cache_max_bytes)
        self._digests: dict[tuple[Any, ...], str] = {}  # bundle digests by the files' stat

    async def aclose(self) -> None:
        await self.engines.aclose()

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
        return tool, self._plan(tool, valid, secret_sources, cwd)

    def prepare_unvalidated(self, name: str, args: dict[str, Any]) -> tuple[Tool, ExecutionPlan]:
        """A plan for `skillcell exec`, whose command replaces the script's anyway."""
        tool = self.catalog().lookup(name)
        return tool, self._plan(tool, {k: v for k, v in args.items() if v is not None}, (), None)

    def _plan(
        self,
        tool: Tool,
        valid: dict[str, Any],
        secret_sources: Sequence[Mapping[str, str]],
        cwd: Path | None,
    ) -> ExecutionPlan:
        sources = [*secret_sources, self.environ]
        env, secrets = resolve_env(tool.skill, tool.name, sources)
        return make_plan(
            tool,
            valid,
            config=self.config,
            call_id=uuid.uuid4().hex,
            env=env,
            secrets=secrets,
            cwd=cwd,
            bundle_digest=(bundle_digest(tool.skill.path, self._digests)
                           if plan_cacheable(tool) else ""),
        )

    async def call(
        self,
        name: str,
        args: Any,
        *,
        secret_sources: Sequence[Mapping[str, str]] = (),
        engine: str | None = None,
        progress: Progress = no_progress,
        cwd: Path | None = None,
        use_cache: bool = True,
    ) -> Call:
        tool, plan = self.prepare(name, args, secret_sources=secret_sources, cwd=cwd)
        await progress("arguments validated")
        result = await self.execute(
            tool, plan, engine=engine, progress=progress, use_cache=use_cache
        )
        return Call(tool, plan, result)

    async def execute(
        self,
        tool: Tool,
        plan: ExecutionPlan,
        *,
        engine: str | None = None,
        progress: Progress = no_progress,
        use_cache: bool = True,
    ) -> RunResult:
        selection = self.engines.select(plan, engine or tool.skill.engine)
        chosen = selection.engine
        await progress(f"engine chosen: {chosen.name}")
        key = None
        if use_cache and plan.cacheable and self.config.cache_enabled:
            key = cache_key(plan, chosen.name, chosen.image_id(plan), self.cache.secret_key())
            hit = self.cache.get(key, plan.output_dir)
            if hit is not None:
                await progress("done (cached)")
                return hit
        log.info("running %s on %s (call %s)", tool.name, chosen.name, plan.call_id)
        result = await _with_ticks(chosen.run(plan, progress), progress)
        await progress("done")
        notes = [*selection.notes, *result.notes]
        if plan.secrets:
            notes += [f"scrubbed a secret from {path.name}" for path in result.outputs
                      if scrub_file(path, plan.secrets)]  # fmt: skip
        result = replace(
            result,
            stdout=scrub(result.stdout, plan.secrets, cut=TRUNCATED),
            stderr=scrub(result.stderr, plan.secrets, cut=TRUNCATED),
            notes=tuple(scrub(n, plan.secrets) for n in notes),
        )
        if key is not None and result.ok:
            # Failed and timed-out runs are not worth repeating instantly: the next call retries.
            self.cache.put(key, result, tool.name)
        return result


async def _with_ticks(work: Any, progress: Progress) -> RunResult:
    """Await the engine's run while reporting elapsed time every TICK seconds."""

    async def ticker() -> None:
        start = anyio.current_time()
        while True:
            await anyio.sleep(TICK)
            await progress(f"running ({anyio.current_time() - start:.0f}s)")

    failure: Exception
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        try:
            return cast(RunResult, await work)
        except Exception as exc:
            # Raised outside the task group, so callers see EngineError, not an ExceptionGroup.
            failure = exc
        finally:
            tg.cancel_scope.cancel()
    raise failure
