"""Per-call cgroups for memory, pids and CPU limits, on cgroup v1 or v2 (detected).

A group is created before the sandbox starts; the sandbox's first process joins it by writing
its own pid to each `cgroup.procs` file before it execs, so every descendant is counted.
Killing the group kills the whole process tree, however it forked or daemonised.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from ..plan import Limits

ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


@dataclass
class Cgroup:
    dirs: tuple[Path, ...]  # one per controller hierarchy (v1) or one (v2)
    version: int

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in self.dirs:
            try:
                found |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        return found

    def oom_killed(self) -> bool:
        for d in self.dirs:
            for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
                try:
                    for line in (d / name).read_text().splitlines():
                        field, _, value = line.partition(" ")
                        if field == key and int(value) > 0:
                            return True
                except (OSError, ValueError):
                    continue
        return False

    def kill(self) -> None:
        if self.version == 2:
            try:
                (self.dirs[0] / "cgroup.kill").write_text("1")
            except OSError:
                pass
        # v1 has no cgroup.kill: signal every member until none is left (forks race the loop).
        deadline = time.monotonic() + 5
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        self.kill()
        for d in self.dirs:
            for _ in range(500):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.002)  # the last member may still be exiting


class Cgroups:
    """Creates per-call groups under a `skillcell` parent; None from detect() when not allowed."""

    def __init__(self, version: int, parents: dict[str, Path]) -> None:
        self.version = version
        self.parents = parents  # controller -> parent dir (v2: one dir for all)

    @classmethod
    def detect(cls, root: Path = ROOT) -> Cgroups | None:
        if os.geteuid() != 0:
            return None  # delegation to an unprivileged user is not worth guessing at
        try:
            if (root / "cgroup.controllers").exists():
                parent = root / "skillcell"
                parent.mkdir(exist_ok=True)
                wanted = {"memory", "pids", "cpu"}
                available = set((root / "cgroup.controllers").read_text().split())
                if not wanted <= available:
                    return None
                (root / "cgroup.subtree_control").write_text("+memory +pids +cpu")
                (parent / "cgroup.subtree_control").write_text("+memory +pids +cpu")
                return cls(2, {c: parent for c in wanted})
            parents = {}
            for controller in ("memory", "pids", "cpu"):
                parent = root / controller / "skillcell"
                parent.mkdir(exist_ok=True)
                parents[controller] = parent
            return cls(1, parents)
        except OSError:
            return None

    def create(self, name: str, limits: Limits) -> Cgroup:
        if self.version == 2:
            d = self.parents["memory"] / name
            d.mkdir()
            group = Cgroup((d,), 2)
            if limits.memory:
                _write(d / "memory.max", limits.memory)
                _write(d / "memory.swap.max", 0, optional=True)
            if limits.pids:
                _write(d / "pids.max", limits.pids)
            if limits.cpus:
                (d / "cpu.max").write_text(f"{int(limits.cpus * PERIOD_US)} {PERIOD_US}")
            return group
        dirs = {c: p / name for c, p in self.parents.items()}
        for d in dirs.values():
            d.mkdir()
        group = Cgroup(tuple(dirs.values()), 1)
        try:
            if limits.memory:
                _write(dirs["memory"] / "memory.limit_in_bytes", limits.memory)
                _write(dirs["memory"] / "memory.memsw.limit_in_bytes", limits.memory, optional=True)
            if limits.pids:
                _write(dirs["pids"] / "pids.max", limits.pids)
            if limits.cpus:
                _write(dirs["cpu"] / "cpu.cfs_period_us", PERIOD_US)
                _write(dirs["cpu"] / "cpu.cfs_quota_us", int(limits.cpus * PERIOD_US))
        except OSError:
            group.remove()
            raise
        return group


def _write(path: Path, value: int, *, optional: bool = False) -> None:
    try:
        path.write_text(str(value))
    except OSError:
        if not optional:
            raise
