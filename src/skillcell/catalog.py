"""Find skill bundles on the search path and map their scripts to MCP tools.

Tool names match `[A-Za-z0-9_-]{1,64}` (what LLM APIs accept). The name of script `s` of skill
`org/name` is `org_name_s`: each name segment and the script keep letters, digits and `-`
(anything else, `_` included, becomes `-`, so `_` only ever separates), joined by `_`. The
script is left out when it repeats the skill's last segment or is a legacy bundle's single
command. A name over 64 characters keeps 55 and gains `_` + 8 hex digits of a hash of the full
identity; a collision is resolved the same way for every bundle but the one found first, and
reported.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ManifestError, ToolNotFound
from .manifest import DEFAULT_SCRIPT, MANIFEST_FILES, Script, Skill, find_manifest, load_skill

MAX_TOOL_NAME = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9-]")
_SKIP_DIRS = {".git", "__pycache__", "node_modules", ".venv", "venv"}
_MAX_DEPTH = 4  # <root>/<org>/<name>/ and a little more


def search_path(
    cli_dirs: Sequence[Path | str] = (),
    *,
    environ: dict[str, str] | None = None,
    cwd: Path | None = None,
    home: Path | None = None,
    data_dir: Path | None = None,
) -> list[Path]:
    """The directories searched for bundles, first wins, duplicates removed."""
    environ = os.environ.copy() if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    home = Path.home() if home is None else home
    if data_dir is None:
        import platformdirs

        data_dir = Path(platformdirs.user_data_dir("skillcell"))
    # MCP client configs have no shell to expand ~, so expand it here.
    env_dirs = [
        home / p[2:] if p.startswith("~/") else home if p == "~" else Path(p)
        for p in environ.get("SKILLCELL_SKILLS_PATH", "").split(os.pathsep)
        if p
    ]
    candidates = [
        *map(Path, cli_dirs),
        *map(Path, env_dirs),
        cwd / "skills",
        cwd / "agents" / "skills",
        home / ".agents" / "skills",
        data_dir / "skills",
    ]
    seen: set[Path] = set()
    out = []
    for path in candidates:
        resolved = (cwd / path).resolve() if not path.is_absolute() else path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            out.append(resolved)
    return out


@dataclass(frozen=True)
class Tool:
    name: str
    skill: Skill
    script: Script

    @property
    def qualified(self) -> str:
        return f"{self.skill.name}:{self.script.name}"

    @property
    def annotations(self) -> dict[str, Any]:
        return self.skill.annotations_for(self.script)

    def definition(self) -> dict[str, Any]:
        """The MCP tool definition (JSON shape of tools/list)."""
        annotations = self.annotations
        title = annotations.get("title") or _title(self.skill, self.script)
        parts = [self.script.description, self.skill.description]
        definition: dict[str, Any] = {
            "name": self.name,
            "title": title,
            "description": "\n\n".join(p for p in parts if p) or self.qualified,
            "inputSchema": self.script.input_schema,
        }
        if self.script.output_schema is not None:
            definition["outputSchema"] = self.script.output_schema
        hints = {k: v for k, v in annotations.items()}
        if hints:
            definition["annotations"] = hints
        definition["_meta"] = {
            "skillcell/skill": self.skill.name,
            "skillcell/version": self.skill.version,
            "skillcell/script": self.script.name,
        }
        return definition

    def summary(self) -> dict[str, Any]:
        """The `list --json` shape."""
        d = self.definition()
        return {
            "name": self.name,
            "title": d["title"],
            "description": d["description"],
            "inputSchema": d["inputSchema"],
            "outputSchema": d.get("outputSchema"),
            "annotations": d.get("annotations", {}),
            "skill": self.skill.name,
            "script": self.script.name,
            "version": self.skill.version,
            "path": str(self.skill.path),
        }


@dataclass(frozen=True)
class Problem:
    """A bundle that was skipped, or something worth a warning."""

    path: Path
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@dataclass
class Catalog:
    skills: list[Skill] = field(default_factory=list)
    tools: dict[str, Tool] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def documents(self) -> list[Skill]:
        """Bundles with no runnable script: published as documentation only."""
        return [s for s in self.skills if not s.scripts]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def lookup(self, name: str) -> Tool:
        """By MCP tool name, or by `org/name[:script]`."""
        if name in self.tools:
            return self.tools[name]
        skill_name, _, script = name.partition(":")
        matches = [
            t
            for t in self.tools.values()
            if t.skill.name == skill_name and (not script or t.script.name == script)
        ]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ToolNotFound(name, [t.qualified for t in matches])
        close = [n for n in self.tools if name.lower() in n.lower()][:3]
        raise ToolNotFound(name, close)


def scan(roots: Iterable[Path], index: Path | None = None) -> Catalog:
    """Load every bundle under `roots`; broken bundles become problems, never exceptions.

    With `index`, skills parsed before are reused while their manifest files are unchanged
    (same size, mtime and inode): meta-validating every schema dominates a cold scan.
    """
    catalog = Catalog()
    by_name: dict[str, Skill] = {}
    known = _read_index(index) if index else {}
    fresh: dict[str, tuple[tuple[Any, ...], Skill]] = {}
    changed = False
    for root in roots:
        for directory in _bundle_dirs(root):
            signature = _signature(directory)
            cached = known.get(str(directory))
            if cached is not None and cached[0] == signature:
                skill = cached[1]
            else:
                changed = True
                try:
                    skill = load_skill(directory)
                except ManifestError as exc:
                    catalog.problems.append(Problem(exc.path, str(exc)))
                    continue
            fresh[str(directory)] = (signature, skill)
            catalog.problems += [Problem(skill.manifest, w, "warning") for w in skill.warnings]
            first = by_name.get(skill.name)
            if first is not None:
                catalog.problems.append(
                    Problem(
                        skill.path,
                        f"{skill.path}: {skill.name} is shadowed by {first.path}, found first",
                        "warning",
                    )
                )
                continue
            by_name[skill.name] = skill
            catalog.skills.append(skill)
    _name_tools(catalog)
    if index is not None and (changed or fresh.keys() != known.keys()):
        _write_index(index, fresh)
    return catalog


_INDEX_FORMAT = 1


def index_path(config: Any) -> Path:
    """Where the scan index of this configuration lives."""
    return Path(config.cache_dir) / "catalog-index.pickle"


def _signature(directory: Path) -> tuple[Any, ...]:
    sig = []
    for name in MANIFEST_FILES:
        try:
            st = os.stat(directory / name)
        except OSError:
            continue
        sig.append((name, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(sig)


def _read_index(path: Path) -> dict[str, tuple[tuple[Any, ...], Skill]]:
    import pickle

    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
        if data.get("format") == _INDEX_FORMAT:
            return dict(data["skills"])
    except Exception:  # a stale or damaged index is only a slower scan
        pass
    return {}


def _write_index(path: Path, skills: dict[str, tuple[tuple[Any, ...], Skill]]) -> None:
    import pickle
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".index-")
        with os.fdopen(fd, "wb") as f:
            pickle.dump({"format": _INDEX_FORMAT, "skills": skills}, f, protocol=5)
        os.replace(tmp, path)
    except OSError:
        pass


def fingerprint(roots: Iterable[Path]) -> tuple[Any, ...]:
    """Changes whenever a scan of `roots` could give a different catalog; cheap (stats only)."""
    return tuple(
        (str(directory), _signature(directory)) for root in roots for directory in _bundle_dirs(root)
    )


def _bundle_dirs(root: Path) -> Iterable[Path]:
    """Bundle directories under root, depth-first in sorted order; a bundle is not descended."""
    if not root.is_dir():
        return
    stack = [(root, 0)]
    while stack:
        directory, depth = stack.pop()
        if find_manifest(directory) is not None:
            yield directory
            continue
        if depth >= _MAX_DEPTH:
            continue
        try:
            children = sorted(
                (e for e in os.scandir(directory) if e.is_dir() and e.name not in _SKIP_DIRS
                 and not e.name.startswith(".")),  # fmt: skip
                key=lambda e: e.name,
                reverse=True,
            )
        except OSError:
            continue
        stack.extend((Path(e.path), depth + 1) for e in children)


def tool_name(skill: Skill, script: Script) -> str:
    segments = [_UNSAFE.sub("-", s) for s in skill.name.split("/")]
    if script.name != DEFAULT_SCRIPT and script.name != skill.name.split("/")[-1]:
        segments.append(_UNSAFE.sub("-", script.name))
    name = "_".join(segments)
    if len(name) > MAX_TOOL_NAME:
        name = _hashed(name, skill, script)
    return name


def _hashed(name: str, skill: Skill, script: Script) -> str:
    digest = hashlib.sha256(f"{skill.name}:{script.name}".encode()).hexdigest()[:8]
    return f"{name[:55]}_{digest}"


def _name_tools(catalog: Catalog) -> None:
    for skill in catalog.skills:
        for script in skill.scripts:
            name = tool_name(skill, script)
            if name in catalog.tools:
                taken = catalog.tools[name]
                renamed = _hashed(name, skill, script)
                catalog.problems.append(
                    Problem(
                        skill.manifest,
                        f"{skill.manifest}: tool name {name} of {skill.name}:{script.name} "
                        f"collides with {taken.qualified}; published as {renamed}",
                        "warning",
                    )
                )
                name = renamed
            catalog.tools[name] = Tool(name, skill, script)


def bundle_digest(directory: Path, memo: dict[tuple[Any, ...], str] | None = None) -> str:
    """A content digest of the bundle's files: paths, modes, bytes and link targets.

    Only regular files are read (a FIFO or device in a bundle is recorded by type, never
    opened), in chunks. With `memo`, a digest is reused while every file's size, mtime and
    inode stay the same.
    """
    entries = []
    for path in sorted(_bundle_files(directory)):
        try:
            st = path.lstat()
        except OSError:
            continue
        entries.append((path, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino))
    key = (str(directory), tuple(entries))
    if memo is not None and key in memo:
        return memo[key]
    h = hashlib.sha256()
    for path, mode, size, _, _ in entries:
        h.update(path.relative_to(directory).as_posix().encode() + b"\0")
        if stat.S_ISLNK(mode):
            h.update(b"L" + os.readlink(path).encode() + b"\0")
        elif not stat.S_ISREG(mode):
            h.update(b"S" + str(stat.S_IFMT(mode)).encode() + b"\0")
        else:
            h.update((b"X" if mode & 0o111 else b"F") + str(size).encode() + b"\0")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    digest = h.hexdigest()
    if memo is not None:
        if len(memo) > 256:
            memo.clear()
        memo[key] = digest
    return digest


def _bundle_files(directory: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for name in filenames:
            yield Path(dirpath) / name


def _title(skill: Skill, script: Script) -> str:
    base = skill.name.split("/")[-1].replace("-", " ").replace("_", " ").capitalize()
    if script.name in (DEFAULT_SCRIPT, skill.name.split("/")[-1]):
        return base
    return f"{base}: {script.name}"


__all__ = ["MANIFEST_FILES", "Catalog", "Problem", "Tool", "bundle_digest", "scan", "search_path"]
