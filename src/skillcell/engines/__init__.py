"""Engines run an ExecutionPlan in a sandbox. One module per engine, one small interface.

Selection walks the tool's engine, the configured default, then the fallbacks. An engine is
skipped when it is unavailable or cannot enforce a policy the plan requires (unless the config
accepts that risk for that engine); when every engine is skipped the call fails with NoEngine
listing each one and why. `local` is only ever considered when allow_unsandboxed is on.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..config import Config
from ..errors import EngineError, NoEngine
from ..plan import ExecutionPlan, RunResult

Progress = Callable[[str], Awaitable[None]]

_MODULES = {
    "dagger": "skillcell.engines.dagger:DaggerEngine",
    "docker": "skillcell.engines.docker:DockerEngine",
    "bwrap": "skillcell.engines.bwrap:BwrapEngine",
    "local": "skillcell.engines.local:LocalEngine",
}


async def no_progress(message: str) -> None:
    return None


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""  # why not, or a short description of what was found

    def __bool__(self) -> bool:
        return self.ok


class Engine(ABC):
    name: str = ""

    def __init__(self, config: Config) -> None:
        self.config = config

    @abstractmethod
    def available(self) -> Availability:
        """Whether this engine can run anything here; fast, never hangs."""

    @abstractmethod
    def unsupported(self, plan: ExecutionPlan) -> set[str]:
        """The policies of `plan` (see plan.py) that this engine cannot enforce."""

    @abstractmethod
    async def run(self, plan: ExecutionPlan, progress: Progress = no_progress) -> RunResult:
        """Run the plan. Timeout and cancellation kill the sandbox; a non-zero exit is a result."""

    async def interactive(self, plan: ExecutionPlan, command: Sequence[str]) -> int:
        """Run `command` in exactly the plan's sandbox with the terminal attached (exec)."""
        raise EngineError(self.name, "interactive exec is not supported by this engine")

    def image_id(self, plan: ExecutionPlan) -> str:
        """The identity of the image the plan would run in, where the engine knows it."""
        return ""

    async def aclose(self) -> None:
        """Release long-lived resources (sessions, clients)."""


@dataclass(frozen=True)
class Selection:
    engine: Engine
    notes: tuple[str, ...]  # risks accepted by the config, said in the result


class Engines:
    """The engine instances of one process, created on first use."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._instances: dict[str, Engine] = {}

    def get(self, name: str) -> Engine:
        if name not in self._instances:
            if name not in _MODULES:
                raise KeyError(name)
            module, _, cls = _MODULES[name].partition(":")
            self._instances[name] = getattr(importlib.import_module(module), cls)(self.config)
        return self._instances[name]

    def select(self, plan: ExecutionPlan, preferred: str | None = None) -> Selection:
        reasons: dict[str, str] = {}
        for name in self.config.engine_order(preferred):
            if name == "local" and not self.config.allow_unsandboxed:
                reasons[name] = "unsandboxed runs are off (set allow_unsandboxed: true)"
                continue
            try:
                engine = self.get(name)
            except ImportError as exc:
                reasons[name] = f"not installed: {exc}"
                continue
            status = engine.available()
            if not status:
                reasons[name] = status.reason
                continue
            missing = engine.unsupported(plan) & plan.required
            accepted = missing & self.config.accept_risks.get(name, frozenset())
            if missing - accepted:
                reasons[name] = f"cannot enforce {', '.join(sorted(missing - accepted))}"
                continue
            notes = tuple(
                f"{name} did not enforce {policy} (accepted by config accept_risks.{name})"
                for policy in sorted(accepted)
            )
            return Selection(engine, notes)
        raise NoEngine(plan.tool, reasons)

    def report(self) -> dict[str, Availability]:
        """Every known engine and whether it can run here (for `skillcell doctor`)."""
        out = {}
        for name in _MODULES:
            if name == "local" and not self.config.allow_unsandboxed:
                out[name] = Availability(False, "unsandboxed runs are off (allow_unsandboxed)")
                continue
            try:
                out[name] = self.get(name).available()
            except ImportError as exc:
                out[name] = Availability(False, f"not installed: {exc}")
        return out

    async def aclose(self) -> None:
        for engine in self._instances.values():
            await engine.aclose()
        self._instances.clear()
