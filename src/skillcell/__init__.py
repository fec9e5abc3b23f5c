"""skillcell: skill bundles as MCP tools, every call in a sandbox."""

from .catalog import Catalog, Tool, scan, search_path
from .config import Config, load_config
from .errors import (
    ArgumentError,
    ConfigError,
    EngineError,
    EngineUnavailable,
    ManifestError,
    NoEngine,
    SecretMissing,
    SkillcellError,
    ToolNotFound,
)
from .manifest import Skill, load_skill
from .plan import ExecutionPlan, Limits, RunResult

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "Catalog",
    "Config",
    "ConfigError",
    "EngineError",
    "EngineUnavailable",
    "ExecutionPlan",
    "Limits",
    "ManifestError",
    "NoEngine",
    "RunResult",
    "SecretMissing",
    "Skill",
    "SkillcellError",
    "Tool",
    "ToolNotFound",
    "load_config",
    "load_skill",
    "scan",
    "search_path",
]
