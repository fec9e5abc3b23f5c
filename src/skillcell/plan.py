"""What a call will run (ExecutionPlan) and what came of it (RunResult): plain data.

Inside every sandbox: the bundle read-only at /workspace (the workdir), the validated
arguments at /inputs/args.json, declared input files read-only under /inputs, and /outputs
the only writable place besides /tmp.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

WORKSPACE = "/workspace"
INPUTS = "/inputs"
OUTPUTS = "/outputs"
ARGS_FILE = f"{INPUTS}/args.json"

# Policies an engine may be unable to enforce; selection skips it for a plan that needs one.
NETWORK_OFF = "network-off"
NETWORK_ON = "network-on"  # network access that cannot reach the host's own services
MEMORY = "memory-limit"
CPUS = "cpu-limit"
PIDS = "pids-limit"
IMAGE = "image"  # run in the manifest's image rather than the host's root


class Secrets(Mapping[str, str]):
    """Secret values by variable name; never shown by repr, str or logging."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Secrets({', '.join(f'{k}=***' for k in self._values)})"

    __str__ = __repr__

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secrets) and self._values == other._values


@dataclass(frozen=True)
class Limits:
    timeout: float = 60.0  # seconds of wall time
    memory: int | None = None  # bytes
    cpus: float | None = None
    pids: int | None = None
    stdout: int = 1 << 20  # bytes kept of each stream
    stderr: int = 1 << 20
    outputs: int = 64 << 20  # bytes in /outputs, all files together
    tmp: int = 64 << 20  # bytes of /tmp


@dataclass(frozen=True)
class InputFile:
    host: Path
    sandbox: str  # absolute path under /inputs
    param: str = ""  # the argument that named it
    # The identity of the file that was validated: engines copy only that very file, so a
    # symlink or FIFO swapped in afterwards is refused rather than followed.
    device: int = 0
    inode: int = 0


@dataclass(frozen=True)
class ExecutionPlan:
    call_id: str
    tool: str
    argv: tuple[str, ...]
    bundle: Path  # mounted read-only at /workspace
    output_dir: Path  # host directory the exported /outputs end up in (created on export)
    args: Mapping[str, object] = field(default_factory=dict)
    image: str | None = None
    build_hooks: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Secrets = field(default_factory=Secrets)
    input_files: tuple[InputFile, ...] = ()
    network: bool = False
    limits: Limits = Limits()
    cacheable: bool = False
    bundle_digest: str = ""
    # Policies the manifest (or a strict config) demands; an engine that cannot enforce one of
    # them is skipped. Default limits from the config are applied where possible but not demanded.
    required: frozenset[str] = frozenset()

    @property
    def args_json(self) -> bytes:
        return json.dumps(self.args, ensure_ascii=False, sort_keys=True).encode()


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    stdout: str
    stderr: str
    engine: str
    duration_ms: float
    outputs: tuple[Path, ...] = ()  # host paths of the exported files
    output_dir: Path | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    timed_out: bool = False
    cached: bool = False
    notes: tuple[str, ...] = ()  # what the engine could not honour, said plainly

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def truncated(self) -> bool:
        return self.stdout_truncated or self.stderr_truncated

    def to_json(self) -> dict[str, object]:
        return {
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "outputs": [str(p) for p in self.outputs],
            "engine": self.engine,
            "duration_ms": round(self.duration_ms, 3),
            "cached": self.cached,
            "truncated": self.truncated,
            "timed_out": self.timed_out,
            "notes": list(self.notes),
        }
