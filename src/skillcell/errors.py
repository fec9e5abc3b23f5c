"""Every error skillcell raises on purpose.

    SkillcellError
    ├── ManifestError      a bundle cannot be turned into a Skill (file, field, reason)
    ├── ConfigError        the configuration is wrong (file, key, reason)
    ├── ToolNotFound       no tool by that name in the catalog
    ├── ArgumentError      arguments do not match the tool's input schema (all problems)
    ├── SecretMissing      a required secret was not supplied by the client
    ├── NoEngine           no engine can run this plan (each engine and why it was skipped)
    └── EngineError        an engine itself broke (daemon gone, image missing, ...)
        └── EngineUnavailable   the engine cannot be reached at all

A tool that runs and exits non-zero is not an error: it is a RunResult.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class SkillcellError(Exception):
    """Base class: the message is written for the person who has to fix it."""


class ManifestError(SkillcellError):
    def __init__(self, path: Path | str, field: str, reason: str) -> None:
        self.path = Path(path)
        self.field = field
        self.reason = reason
        where = f"{self.path}: {field}: " if field else f"{self.path}: "
        super().__init__(where + reason)


class ConfigError(SkillcellError):
    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source = source
        self.key = key
        self.reason = reason
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + reason)


class ToolNotFound(SkillcellError):
    def __init__(self, name: str, suggestions: Sequence[str] = ()) -> None:
        self.name = name
        hint = f" (did you mean {', '.join(suggestions)}?)" if suggestions else ""
        super().__init__(f"no tool named {name!r}{hint}; `skillcell list` shows them")


class ArgumentError(SkillcellError):
    """Arguments failed validation; `problems` holds (json_path, message) for each."""

    def __init__(self, tool: str, problems: Sequence[tuple[str, str]]) -> None:
        self.tool = tool
        self.problems = tuple(problems)
        lines = "; ".join(f"{path}: {msg}" for path, msg in self.problems)
        super().__init__(f"invalid arguments for {tool}: {lines}")


class SecretMissing(SkillcellError):
    def __init__(self, tool: str, names: Sequence[str]) -> None:
        self.tool = tool
        self.names = tuple(names)
        super().__init__(
            f"{tool} needs the secret(s) {', '.join(self.names)}: set them in the MCP client "
            "config's env block, as X-Skillcell-Secret-<NAME> headers over HTTP, or in the "
            "call's _meta under skillcell/secrets"
        )


class NoEngine(SkillcellError):
    """Every engine was skipped; `reasons` maps engine name to why."""

    def __init__(self, tool: str, reasons: dict[str, str]) -> None:
        self.tool = tool
        self.reasons = dict(reasons)
        detail = "; ".join(f"{name}: {why}" for name, why in self.reasons.items())
        super().__init__(f"no engine can run {tool}: {detail or 'no engines configured'}")


class EngineError(SkillcellError):
    def __init__(self, engine: str, message: str) -> None:
        self.engine = engine
        super().__init__(f"{engine} engine: {message}")


class EngineUnavailable(EngineError):
    pass
