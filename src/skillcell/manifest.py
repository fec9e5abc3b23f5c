"""Turn a skill bundle directory into a Skill: every manifest form, strict, with readable errors.

Forms, in the order a bundle is probed (the first one present is the manifest):
  skill.package.yml / skill.package.yaml / skill.yml / skill.yaml
  SKILL.md   (YAML front matter; the body is the documentation)
  enact.md / enact.yaml / enact.yml   (legacy: top-level `command` with ${param})
A SKILL.md beside a package file fills in a missing description and the documentation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .arguments import check_schema
from .errors import ManifestError
from .templates import Template, TemplateError, infer_schema, parse_template

# libyaml's loader when the wheel has it: the pure-Python one dominates scan time.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PACKAGE_FILES = ("skill.package.yml", "skill.package.yaml", "skill.yml", "skill.yaml")
DOC_FILE = "SKILL.md"
LEGACY_FILES = ("enact.md", "enact.yaml", "enact.yml")
MANIFEST_FILES = PACKAGE_FILES + (DOC_FILE,) + LEGACY_FILES

ANNOTATION_HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
ENGINES = ("dagger", "docker", "bwrap", "local")
DEFAULT_SCRIPT = "default"  # the script name of a legacy single-command bundle

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
_SCRIPT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?)?[bB]?\s*$")
_SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
               "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}  # fmt: skip
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

# Enact fields we accept and carry no behaviour for.
_IGNORED = {"enact", "authors", "repository", "homepage", "examples", "signatures", "doc",
            "keywords", "metadata", "outputs"}  # fmt: skip
_SKILL_KEYS = {"name", "version", "description", "license", "tags", "from", "timeout", "env",
               "annotations", "resources", "network", "hooks", "scripts", "command", "inputSchema",
               "outputSchema", "engine", "cache", "inputFiles"}  # fmt: skip
_SCRIPT_KEYS = {"command", "description", "inputSchema", "outputSchema", "annotations",
                "timeout", "inputFiles"}  # fmt: skip


@dataclass(frozen=True)
class EnvVar:
    name: str
    description: str = ""
    secret: bool = False
    required: bool = False
    default: str | None = None


@dataclass(frozen=True)
class Resources:
    memory: int | None = None  # bytes
    cpus: float | None = None
    pids: int | None = None


@dataclass(frozen=True)
class Script:
    name: str
    command: str
    template: Template
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    annotations: dict[str, Any]  # the script's own; Skill.annotations_for merges
    timeout: float | None
    input_files: tuple[str, ...]  # string params that name host files to mount read-only


@dataclass(frozen=True)
class Skill:
    name: str
    path: Path
    manifest: Path
    version: str = "0.0.0"
    description: str = ""
    docs: str = ""
    license: str | None = None
    tags: tuple[str, ...] = ()
    image: str | None = None
    timeout: float | None = None
    env: tuple[EnvVar, ...] = ()
    annotations: dict[str, Any] = field(default_factory=dict)
    resources: Resources = Resources()
    network: bool | None = None
    engine: str | None = None
    cache: bool | None = None
    build_hooks: tuple[str, ...] = ()
    scripts: tuple[Script, ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)  # x-* keys, passed through
    warnings: tuple[str, ...] = ()

    def annotations_for(self, script: Script) -> dict[str, Any]:
        return {**self.annotations, **script.annotations}

    def script(self, name: str) -> Script | None:
        return next((s for s in self.scripts if s.name == name), None)


def find_manifest(directory: Path) -> Path | None:
    for name in MANIFEST_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def load_skill(directory: Path | str) -> Skill:
    """Load the bundle at `directory`; ManifestError names the file, the field and the reason."""
    directory = Path(directory)
    manifest = find_manifest(directory)
    if manifest is None:
        raise ManifestError(directory, "", f"no manifest ({', '.join(MANIFEST_FILES)})")
    data, body = _read(manifest)
    docs_file = directory / DOC_FILE
    if manifest.name != DOC_FILE and docs_file.is_file():
        try:
            doc_data, body = _read(docs_file)
        except ManifestError:
            doc_data = {}  # a broken SKILL.md beside a valid package file only loses its docs
        if "description" not in data and isinstance(doc_data.get("description"), str):
            data = {**data, "description": doc_data["description"]}
    return _Builder(manifest, directory).skill(data, body)


def _read(path: Path) -> tuple[dict[str, Any], str]:
    real = path.resolve()
    if not real.is_relative_to(path.parent.resolve()) or not real.is_file():
        # A link out of the bundle would publish whatever it points at (say /etc/shadow).
        raise ManifestError(path, "", "is a link to a file outside the bundle; refused")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(path, "", f"cannot read: {exc}") from exc
    body = ""
    if path.suffix == ".md":
        text, body = _split_front_matter(path, text)
    try:
        data = yaml.load(text, Loader=_Loader) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(path, "", f"invalid YAML: {where}{problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ManifestError(path, "", f"the manifest must be a mapping, not {type(data).__name__}")
    return data, body.strip()


def _split_front_matter(path: Path, text: str) -> tuple[str, str]:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return "", text  # plain markdown: documentation with no manifest fields
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "".join(lines[1:i]), "".join(lines[i + 1 :])
    raise ManifestError(path, "", "front matter starts with --- but is never closed")


class _Builder:
    """Reads one manifest mapping field by field, collecting warnings."""

    def __init__(self, manifest: Path, directory: Path) -> None:
        self.manifest = manifest
        self.directory = directory
        self.warnings: list[str] = []

    def fail(self, field: str, reason: str) -> ManifestError:
        return ManifestError(self.manifest, field, reason)

    def warn(self, field: str, reason: str) -> None:
        self.warnings.append(f"{self.manifest}: {field}: {reason}")

    def skill(self, data: dict[str, Any], body: str) -> Skill:
        for key in data:
            if not isinstance(key, str):
                raise self.fail(str(key), "field names must be strings")
            if key not in _SKILL_KEYS and key not in _IGNORED and not key.startswith("x-"):
                self.warn(key, "unknown field, ignored")
        name = self.text(data, "name", required=True)
        if not _NAME.match(name):
            raise self.fail("name", f"{name!r} is not a skill name like 'org/name'")
        scripts = self.scripts(data)
        timeout = self.duration(data.get("timeout"), "timeout")
        if scripts and timeout is None and all(s.timeout is None for s in scripts):
            self.warn("timeout", "not set; the configured default timeout applies")
        engine = data.get("engine")
        if engine is not None and engine not in ENGINES:
            raise self.fail("engine", f"{engine!r} is not one of {', '.join(ENGINES)}")
        return Skill(
            name=name,
            path=self.directory,
            manifest=self.manifest,
            version=str(data.get("version", "0.0.0")),
            description=self.text(data, "description") or _first_paragraph(body),
            docs=body,
            license=self.text(data, "license") or None,
            tags=self.tags(data.get("tags")),
            image=self.text(data, "from") or None,
            timeout=timeout,
            env=self.env(data.get("env")),
            annotations=self.annotations(data.get("annotations"), "annotations"),
            resources=self.resources(data.get("resources")),
            network=self.flag(data, "network"),
            engine=engine,
            cache=self.flag(data, "cache"),
            build_hooks=self.hooks(data.get("hooks")),
            scripts=tuple(scripts),
            extras={k: v for k, v in data.items() if k.startswith("x-")},
            warnings=tuple(self.warnings),
        )

    def scripts(self, data: dict[str, Any]) -> list[Script]:
        raw = data.get("scripts")
        if "command" in data:
            if raw is not None:
                raise self.fail("command", "give either `command` or `scripts`, not both")
            legacy = {
                "command": data["command"],
                "inputSchema": data.get("inputSchema"),
                "outputSchema": data.get("outputSchema"),
                "inputFiles": data.get("inputFiles"),
            }
            return [self.script(DEFAULT_SCRIPT, legacy, "command", legacy=True)]
        if raw is None:
            return []
        if not isinstance(raw, dict):
            raise self.fail("scripts", "must be a mapping of script name to command")
        return [self.script(str(name), spec, f"scripts.{name}") for name, spec in raw.items()]

    def script(self, name: str, spec: Any, where: str, *, legacy: bool = False) -> Script:
        if not _SCRIPT_NAME.match(name):
            raise self.fail(where, "script names use letters, digits, '.', '_' and '-'")
        if isinstance(spec, str):
            spec = {"command": spec}
        if not isinstance(spec, dict):
            raise self.fail(where, "must be a command string or a mapping with `command`")
        for key in spec:
            if key not in _SCRIPT_KEYS and not str(key).startswith("x-"):
                raise self.fail(f"{where}.{key}", "unknown field")
        command = spec.get("command")
        command_field = where if legacy else f"{where}.command"
        if not isinstance(command, str):
            raise self.fail(command_field, "a command string is required")
        try:
            # Legacy commands wrote ${param}; accept {{param}} there too.
            template = parse_template(command, legacy=legacy and "${" in command)
        except TemplateError as exc:
            raise self.fail(command_field, str(exc)) from None
        schema_field = "inputSchema" if legacy else f"{where}.inputSchema"
        schema = spec.get("inputSchema")
        if schema is None:
            schema = infer_schema(template)
        else:
            self.input_schema(schema, schema_field, template)
        output_schema = spec.get("outputSchema")
        if output_schema is not None:
            problem = check_schema(output_schema)
            if problem:
                out_field = "outputSchema" if legacy else f"{where}.outputSchema"
                raise self.fail(out_field, problem)
        files_field = "inputFiles" if legacy else f"{where}.inputFiles"
        return Script(
            name=name,
            command=command,
            template=template,
            description=str(spec.get("description") or ""),
            input_schema=schema,
            output_schema=output_schema,
            annotations=self.annotations(spec.get("annotations"), f"{where}.annotations"),
            timeout=self.duration(spec.get("timeout"), f"{where}.timeout"),
            input_files=self.input_files(spec.get("inputFiles"), files_field, schema),
        )

    def input_schema(self, schema: Any, where: str, template: Template) -> None:
        problem = check_schema(schema)
        if problem:
            raise self.fail(where, problem)
        if schema.get("type", "object") != "object":
            raise self.fail(f"{where}.type", "an input schema must describe an object")
        declared = schema.get("properties") or {}
        for name in template.placeholders:
            if name not in declared:
                raise self.fail(
                    f"{where}.properties",
                    f"the command uses {{{{{name}}}}} but the schema does not declare it",
                )

    def input_files(self, raw: Any, where: str, schema: dict[str, Any]) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise self.fail(where, "must be a list of parameter names")
        props = schema.get("properties") or {}
        for name in raw:
            spec = props.get(name)
            if not isinstance(spec, dict) or spec.get("type") != "string":
                raise self.fail(where, f"{name!r} must be a declared string parameter")
        return tuple(raw)

    def env(self, raw: Any) -> tuple[EnvVar, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            raise self.fail("env", "must be a mapping of variable name to its description")
        out = []
        for name, spec in raw.items():
            where = f"env.{name}"
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise self.fail(where, "not a valid environment variable name")
            if spec is None or isinstance(spec, str | int | float | bool):
                spec = {"default": spec} if spec is not None else {}
            if not isinstance(spec, dict):
                raise self.fail(where, "must be a mapping {description, secret, required, default}")
            for key in spec:
                if key not in ("description", "secret", "required", "default"):
                    raise self.fail(f"{where}.{key}", "unknown field")
            secret = self.flag(spec, "secret", where) or False
            default = spec.get("default")
            if secret and default is not None:
                self.warn(where, "a secret with a default value ships that value in the bundle")
            required = self.flag(spec, "required", where)
            out.append(
                EnvVar(
                    name=name,
                    description=str(spec.get("description") or ""),
                    secret=secret,
                    required=secret and default is None if required is None else required,
                    default=None if default is None else str(default),
                )
            )
        return tuple(out)

    def annotations(self, raw: Any, where: str) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise self.fail(where, "must be a mapping")
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "title":
                if not isinstance(value, str):
                    raise self.fail(f"{where}.title", "must be a string")
                out[key] = value
            elif key in ANNOTATION_HINTS:
                if not isinstance(value, bool):
                    raise self.fail(f"{where}.{key}", "must be true or false")
                out[key] = value
            else:
                self.warn(f"{where}.{key}", "not an MCP tool annotation, ignored")
        return out

    def resources(self, raw: Any) -> Resources:
        if raw is None:
            return Resources()
        if not isinstance(raw, dict):
            raise self.fail("resources", "must be a mapping {memory, cpus, pids}")
        for key in raw:
            if key not in ("memory", "cpus", "pids"):
                self.warn(f"resources.{key}", "not a resource skillcell limits, ignored")
        cpus = raw.get("cpus")
        if cpus is not None and (isinstance(cpus, bool) or not isinstance(cpus, int | float)
                                 or cpus <= 0):  # fmt: skip
            raise self.fail("resources.cpus", f"{cpus!r} is not a positive number")
        pids = raw.get("pids")
        if pids is not None and (isinstance(pids, bool) or not isinstance(pids, int) or pids < 1):
            raise self.fail("resources.pids", f"{pids!r} is not a positive whole number")
        memory = raw.get("memory")
        return Resources(
            memory=None if memory is None else self.size(memory, "resources.memory"),
            cpus=None if cpus is None else float(cpus),
            pids=pids,
        )

    def hooks(self, raw: Any) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            raise self.fail("hooks", "must be a mapping with `build`")
        build = raw.get("build", [])
        if isinstance(build, str):
            build = [build]
        if not isinstance(build, list) or not all(isinstance(x, str) and x for x in build):
            raise self.fail("hooks.build", "must be a list of shell commands")
        return tuple(build)

    def text(self, data: Mapping[str, Any], key: str, *, required: bool = False) -> str:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is required")
            return ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.fail(key, "must be a string")
        return str(value)

    def flag(self, data: Mapping[str, Any], key: str, where: str = "") -> bool | None:
        value = data.get(key)
        if value is not None and not isinstance(value, bool):
            raise self.fail(f"{where}.{key}" if where else key, "must be true or false")
        return value

    def tags(self, raw: Any) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
            raise self.fail("tags", "must be a list of strings")
        return tuple(raw)

    def duration(self, raw: Any, where: str) -> float | None:
        if raw is None:
            return None
        seconds = parse_duration(raw)
        if seconds is None or seconds <= 0:
            raise self.fail(where, f"{raw!r} is not a duration like 500ms, 30s, 2m or 1h")
        return seconds

    def size(self, raw: Any, where: str) -> int:
        size = parse_size(raw)
        if size is None or size <= 0:
            raise self.fail(where, f"{raw!r} is not a size like 512Mi, 1Gi or 256M")
        return size


def parse_duration(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    match = _DURATION.match(str(raw))
    if not match:
        return None
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def parse_size(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    match = _SIZE.match(str(raw))
    if not match:
        return None
    return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()])


def _first_paragraph(body: str) -> str:
    for block in body.split("\n\n"):
        text = " ".join(line.strip() for line in block.splitlines() if not line.startswith("#"))
        if text.strip():
            return text.strip()
    return ""
