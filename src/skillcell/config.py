"""Configuration: a YAML file (platformdirs user config dir or --config), then SKILLCELL_* env.

```yaml
profile: development          # or production: strict images, no unsandboxed runs
engine: docker                # first choice; unset: the first usable of `fallbacks`
fallbacks: [dagger, docker, bwrap]
allow_unsandboxed: false      # must be true before the `local` engine runs anything
strict_images: false          # refuse engines that cannot run the manifest's `from` image
accept_risks:                 # per engine, policies it may leave unenforced
  dagger: [network-off]
limits: {timeout: 60s, memory: 512Mi, cpus: 1, pids: 256,
         stdout: 1Mi, stderr: 1Mi, outputs: 64Mi, tmp: 64Mi}
output_root: ~/.local/share/skillcell/outputs
input_roots: [~/data]         # where file arguments may be read from (unset: none when
                              # serving, the working directory for `skillcell run`)
concurrency: 8
cache: {enabled: true, dir: ~/.cache/skillcell, max_size: 1Gi}
docker: {host: unix:///var/run/docker.sock, user: "65534:65534", image: python:3.11-slim}
bwrap: {uid: 65534}
log_level: warning
```
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .manifest import ENGINES, parse_duration, parse_size
from .plan import CPUS, IMAGE, MEMORY, NETWORK_OFF, NETWORK_ON, PIDS, Limits

PROFILES = ("development", "production")
POLICIES = (NETWORK_OFF, NETWORK_ON, MEMORY, CPUS, PIDS, IMAGE)
DEFAULT_FALLBACKS = ("dagger", "docker", "bwrap")
LOG_LEVELS = ("debug", "info", "warning", "error")


def _data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("skillcell"))


def _cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("skillcell"))


@dataclass(frozen=True)
class Config:
    source: str = "defaults"
    profile: str = "development"
    engine: str | None = None
    fallbacks: tuple[str, ...] = DEFAULT_FALLBACKS
    allow_unsandboxed: bool = False
    strict_images: bool = False
    accept_risks: Mapping[str, frozenset[str]] = field(default_factory=dict)
    limits: Limits = Limits(memory=512 << 20, cpus=1.0, pids=256)
    output_root: Path = field(default_factory=lambda: _data_dir() / "outputs")
    input_roots: tuple[Path, ...] = ()
    concurrency: int = 8
    cache_enabled: bool = True
    cache_dir: Path = field(default_factory=_cache_dir)
    cache_max_bytes: int = 1 << 30
    docker_host: str | None = None
    docker_user: str = "65534:65534"
    docker_image: str = "python:3.11-slim"  # for tools whose manifest names no image
    bwrap_uid: int = 65534
    log_level: str = "warning"

    def engine_order(self, preferred: str | None = None) -> list[str]:
        """Engines to try, in order: the tool's, the configured default, then fallbacks."""
        order: list[str] = []
        for name in (preferred, self.engine, *self.fallbacks):
            if name and name not in order:
                order.append(name)
        if self.allow_unsandboxed and "local" not in order:
            order.append("local")
        return order


def config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("SKILLCELL_CONFIG"):
        return Path(environ["SKILLCELL_CONFIG"])
    import platformdirs

    return Path(platformdirs.user_config_dir("skillcell")) / "config.yaml"


def load_config(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """The effective configuration; ConfigError names the file, key and reason."""
    environ = os.environ if environ is None else environ
    explicit = path is not None or bool(environ.get("SKILLCELL_CONFIG"))
    file = Path(path) if path is not None else config_path(environ)
    data: dict[str, Any] = {}
    source = "defaults"
    if file.is_file():
        source = str(file)
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(source, "", f"cannot read: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(source, "", "must be a mapping")
        data = loaded or {}
    elif explicit:
        raise ConfigError(str(file), "", "no such file")
    config = _Reader(source).build(data)
    return _Reader("environment").apply_env(config, environ)


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.source, key, reason)

    def build(self, data: dict[str, Any]) -> Config:
        known = {
            "profile", "engine", "fallbacks", "allow_unsandboxed", "strict_images",
            "accept_risks", "limits", "output_root", "input_roots", "concurrency", "cache",
            "docker", "bwrap", "log_level",
        }  # fmt: skip
        for key in data:
            if key not in known:
                raise self.fail(str(key), f"unknown key (known: {', '.join(sorted(known))})")
        config = self.profile(Config(source=self.source), data.get("profile", "development"))
        changes: dict[str, Any] = {}
        if "engine" in data:
            changes["engine"] = self.engine(data["engine"], "engine")
        if "fallbacks" in data:
            raw = data["fallbacks"]
            if not isinstance(raw, list):
                raise self.fail("fallbacks", "must be a list of engine names")
            changes["fallbacks"] = tuple(self.engine(e, "fallbacks") for e in raw)
        for key in ("allow_unsandboxed", "strict_images"):
            if key in data:
                changes[key] = self.flag(data[key], key)
        if "accept_risks" in data:
            changes["accept_risks"] = self.risks(data["accept_risks"])
        if "limits" in data:
            changes["limits"] = self.limits(config.limits, data["limits"])
        if "output_root" in data:
            changes["output_root"] = self.path(data["output_root"], "output_root")
        if "input_roots" in data:
            raw = data["input_roots"]
            if not isinstance(raw, list):
                raise self.fail("input_roots", "must be a list of directories")
            changes["input_roots"] = tuple(self.path(p, "input_roots") for p in raw)
            for root in changes["input_roots"]:
                if root == Path("/") or root == Path.home().resolve():
                    raise self.fail("input_roots", f"{root} would let tools read the whole "
                                                   "host (or home); name narrower directories")  # fmt: skip
        if "concurrency" in data:
            changes["concurrency"] = self.positive_int(data["concurrency"], "concurrency")
        if "log_level" in data:
            changes["log_level"] = self.log_level(data["log_level"], "log_level")
        changes.update(self.sections(data))
        config = replace(config, **changes)
        self.check_profile(config)
        return config

    def check_profile(self, config: Config) -> None:
        if config.profile == "production" and config.allow_unsandboxed:
            raise self.fail("allow_unsandboxed", "the production profile never runs tools "
                                                 "unsandboxed; remove it or use development")  # fmt: skip

    def sections(self, data: dict[str, Any]) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        cache = self.section(data, "cache", {"enabled", "dir", "max_size"})
        if "enabled" in cache:
            changes["cache_enabled"] = self.flag(cache["enabled"], "cache.enabled")
        if "dir" in cache:
            changes["cache_dir"] = self.path(cache["dir"], "cache.dir")
        if "max_size" in cache:
            changes["cache_max_bytes"] = self.size(cache["max_size"], "cache.max_size")
        docker = self.section(data, "docker", {"host", "user", "image"})
        if "host" in docker:
            changes["docker_host"] = str(docker["host"])
        if "user" in docker:
            changes["docker_user"] = str(docker["user"])
        if "image" in docker:
            changes["docker_image"] = str(docker["image"])
        bwrap = self.section(data, "bwrap", {"uid"})
        if "uid" in bwrap:
            changes["bwrap_uid"] = self.positive_int(bwrap["uid"], "bwrap.uid")
        return changes

    def section(self, data: dict[str, Any], name: str, keys: set[str]) -> dict[str, Any]:
        raw = data.get(name) or {}
        if not isinstance(raw, dict):
            raise self.fail(name, "must be a mapping")
        for key in raw:
            if key not in keys:
                raise self.fail(f"{name}.{key}", f"unknown key (known: {', '.join(sorted(keys))})")
        return raw

    def profile(self, config: Config, name: Any) -> Config:
        if name not in PROFILES:
            raise self.fail("profile", f"{name!r} is not one of {', '.join(PROFILES)}")
        if name == "production":
            return replace(config, profile=name, strict_images=True, allow_unsandboxed=False)
        return replace(config, profile=name)

    def engine(self, value: Any, key: str) -> str:
        if value not in ENGINES:
            raise self.fail(key, f"{value!r} is not one of {', '.join(ENGINES)}")
        return str(value)

    def risks(self, raw: Any) -> dict[str, frozenset[str]]:
        if not isinstance(raw, dict):
            raise self.fail("accept_risks", "must map an engine to a list of policies")
        out = {}
        for engine, policies in raw.items():
            self.engine(engine, f"accept_risks.{engine}")
            if not isinstance(policies, list) or any(p not in POLICIES for p in policies):
                raise self.fail(f"accept_risks.{engine}", f"policies are {', '.join(POLICIES)}")
            out[engine] = frozenset(policies)
        return out

    def limits(self, base: Limits, raw: Any) -> Limits:
        if not isinstance(raw, dict):
            raise self.fail("limits", "must be a mapping")
        changes: dict[str, Any] = {}
        for key, value in raw.items():
            where = f"limits.{key}"
            if key == "timeout":
                seconds = parse_duration(value)
                if seconds is None or seconds <= 0:
                    raise self.fail(where, f"{value!r} is not a duration like 30s or 2m")
                changes[key] = seconds
            elif key in ("memory", "stdout", "stderr", "outputs", "tmp"):
                changes[key] = None if value is None and key == "memory" else self.size(value, where)
            elif key == "cpus":
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
                ):
                    raise self.fail(where, f"{value!r} is not a positive number")
                changes[key] = None if value is None else float(value)
            elif key == "pids":
                changes[key] = None if value is None else self.positive_int(value, where)
            else:
                raise self.fail(where, "unknown limit")
        return replace(base, **changes)

    def apply_env(self, config: Config, environ: Mapping[str, str]) -> Config:
        """SKILLCELL_* overrides, read here and nowhere else."""
        data: dict[str, Any] = {}
        env = {k[len("SKILLCELL_") :].lower(): v for k, v in environ.items()
               if k.startswith("SKILLCELL_")}  # fmt: skip
        if "profile" in env:
            config = self.profile(config, env["profile"])
        if "engine" in env:
            data["engine"] = self.engine(env["engine"], "SKILLCELL_ENGINE")
        if "fallbacks" in env:
            data["fallbacks"] = tuple(
                self.engine(e.strip(), "SKILLCELL_FALLBACKS")
                for e in env["fallbacks"].split(",") if e.strip()
            )  # fmt: skip
        for key in ("allow_unsandboxed", "strict_images"):
            if key in env:
                data[key] = self.env_flag(env[key], f"SKILLCELL_{key.upper()}")
        if "cache" in env:
            data["cache_enabled"] = self.env_flag(env["cache"], "SKILLCELL_CACHE")
        if "output_root" in env:
            data["output_root"] = self.path(env["output_root"], "SKILLCELL_OUTPUT_ROOT")
        if "cache_dir" in env:
            data["cache_dir"] = self.path(env["cache_dir"], "SKILLCELL_CACHE_DIR")
        if "concurrency" in env:
            data["concurrency"] = self.positive_int(env["concurrency"], "SKILLCELL_CONCURRENCY")
        if "log_level" in env:
            data["log_level"] = self.log_level(env["log_level"], "SKILLCELL_LOG_LEVEL")
        if "timeout" in env:
            data["limits"] = self.limits(config.limits, {"timeout": env["timeout"]})
        if "docker_host" in env:
            data["docker_host"] = env["docker_host"]
        config = replace(config, **data)
        self.check_profile(config)
        return config

    def flag(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def env_flag(self, value: str, key: str) -> bool:
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise self.fail(key, f"{value!r} is not a boolean (1/0, true/false)")

    def positive_int(self, value: Any, key: str) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise self.fail(key, f"{value!r} is not a whole number") from None
        if number < 1 or isinstance(value, (bool, float)):
            raise self.fail(key, f"{value!r} is not a positive whole number")
        return number

    def size(self, value: Any, key: str) -> int:
        size = parse_size(value)
        if size is None or size <= 0:
            raise self.fail(key, f"{value!r} is not a size like 64Mi or 1Gi")
        return size

    def path(self, value: Any, key: str) -> Path:
        if not isinstance(value, str) or not value:
            raise self.fail(key, "must be a path")
        return Path(os.path.expanduser(value)).resolve()

    def log_level(self, value: Any, key: str) -> str:
        if str(value).lower() not in LOG_LEVELS:
            raise self.fail(key, f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
        return str(value).lower()
