"""What the security suite and benchmarks/security_report.py share: a sealed work area per
run, a Runner that remembers its calls, and the checks that nothing of a call outlived it.

Every run gets its own world-traversable temporary directory, installed as `tempfile.tempdir`
while it lasts, so the bwrap engine's runtime directory (its inputs-* and staging dirs) is
ours alone and a leftover there is certainly a leak of ours, not a colleague's call.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from skillcell.catalog import Catalog
from skillcell.config import Config
from skillcell.engines import Availability, Engines
from skillcell.plan import ExecutionPlan, Limits, RunResult
from skillcell.runner import Runner

HERE = Path(__file__).parent
HOSTILE_SKILLS = HERE / "hostile_skills"
ENGINES = ("bwrap", "docker")
SANDBOX_UID = 65534
CGROUP_ROOT = Path("/sys/fs/cgroup")
LIMITS = Limits(timeout=20, memory=256 << 20, cpus=1.0, pids=128, stdout=1 << 20,
                stderr=1 << 20, outputs=1 << 20, tmp=8 << 20)  # fmt: skip


@functools.cache
def engine_status(name: str) -> Availability:
    """Whether `name` can run calls here, and why not (never raises)."""
    with tempfile.TemporaryDirectory() as scratch:
        config = Config(output_root=Path(scratch) / "out", cache_dir=Path(scratch) / "cache")
        engines = Engines(config)
        try:
            status = engines.get(name).available()
        except ImportError as exc:
            return Availability(False, f"not installed: {exc}")
        finally:
            with contextlib.suppress(Exception):
                anyio.run(engines.aclose)
        return status


def require_engine(name: str) -> None:
    """Skip (fail in CI) when `name` cannot run calls on this machine."""
    from tests.conftest import require

    status = engine_status(name)
    require(bool(status), f"{name} is not available here: {status.reason}")


@contextlib.contextmanager
def sealed_tempdir() -> Iterator[Path]:
    """A fresh directory the sandbox uid can traverse, installed as tempfile.tempdir."""
    path = Path(tempfile.mkdtemp(prefix="skillcell-sec-", dir="/tmp"))
    path.chmod(0o711)
    previous = tempfile.tempdir
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(path, ignore_errors=True)


def runtime_dir(tmp: Path) -> Path:
    """Where the bwrap engine keeps per-call directories while `tmp` is tempfile.tempdir."""
    return tmp / f"skillcell-{os.geteuid()}"


def config_for(engine: str, root: Path, **changes: Any) -> Config:
    base = Config(
        output_root=root / "outputs",
        cache_dir=root / "cache",
        input_roots=(root / "inputs",),
        fallbacks=(engine,),
        cache_enabled=False,
        limits=LIMITS,
    )
    return replace(base, **changes)


class RecordingRunner(Runner):
    """A Runner that remembers the plan of every call it executed (for the leak checks)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plans: list[ExecutionPlan] = []

    async def execute(self, tool: Any, plan: ExecutionPlan, **kwargs: Any) -> RunResult:
        self.plans.append(plan)
        return await super().execute(tool, plan, **kwargs)

    @property
    def call_ids(self) -> list[str]:
        return [p.call_id for p in self.plans]


def make_runner(catalog: Catalog, config: Config, environ: Mapping[str, str] | None = None
                ) -> RecordingRunner:  # fmt: skip
    return RecordingRunner(lambda: catalog, config, environ={} if environ is None else environ)


# -- leaks ----------------------------------------------------------------------------------


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains `marker` (sandboxed ones included)."""
    found = []
    needle = marker.encode()
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if needle in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:
            continue
    return found


def cgroups_of(call_ids: Sequence[str]) -> list[Path]:
    found: list[Path] = []
    for call_id in call_ids:
        found += CGROUP_ROOT.glob(f"*/skillcell/call-{call_id}")  # v1
        found += CGROUP_ROOT.glob(f"skillcell/call-{call_id}")  # v2
    return found


def containers_of(call_ids: Sequence[str], docker_host: str | None = None) -> list[str]:
    """Containers (running or not) labelled with one of `call_ids` on that daemon."""
    if not call_ids:
        return []
    try:
        import docker
    except ImportError:
        return []
    try:
        client = (docker.DockerClient(base_url=docker_host, timeout=10) if docker_host
                  else docker.from_env(timeout=10))  # fmt: skip
    except Exception:
        return []
    try:
        wanted = set(call_ids)
        return [c["Id"][:12] for c in client.api.containers(all=True, filters={"label": "skillcell.call"})
                if (c.get("Labels") or {}).get("skillcell.call") in wanted]  # fmt: skip
    except Exception:
        return []
    finally:
        client.close()


def leftovers(
    *,
    markers: Sequence[str],
    call_ids: Sequence[str],
    tmp: Path,
    output_root: Path,
    docker_host: str | None = None,
    grace: float = 3.0,
) -> list[str]:
    """Everything a finished call left behind; waits up to `grace` s for the slow to vanish."""
    deadline = time.monotonic() + grace
    while True:
        problems = []
        for marker in markers:
            if pids := processes_with(marker):
                problems.append(f"processes still running: {pids}")
        if groups := cgroups_of(call_ids):
            problems.append(f"cgroups left: {[str(g) for g in groups]}")
        if containers := containers_of(call_ids, docker_host):
            problems.append(f"containers left: {containers}")
        runtime = runtime_dir(tmp)
        for pattern in ("inputs-*", "outputs/*"):
            if found := sorted(runtime.glob(pattern)):
                problems.append(f"temp dirs left: {[str(p) for p in found]}")
        staging = output_root / ".staging"
        if staging.is_dir() and (found := sorted(staging.iterdir())):
            problems.append(f"staging left: {[p.name for p in found]}")
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.1)


# -- measuring the server while a call runs -------------------------------------------------


@dataclass
class LoopLag:
    """The longest the event loop went without running a 20 ms ticker (a blocked server)."""

    worst: float = 0.0

    async def watch(self, stop: anyio.Event) -> None:
        while not stop.is_set():
            start = time.monotonic()
            await anyio.sleep(0.02)
            self.worst = max(self.worst, time.monotonic() - start - 0.02)


@dataclass
class RssPeak:
    """Peak growth of this process's resident memory while active (sampled every 10 ms)."""

    start: int = 0
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssPeak:
        self.start = self.peak = rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss())

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.start)


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# -- host-side bait ---------------------------------------------------------------------------


class Listener:
    """A TCP, UDP or abstract-unix server on the host that records who reached it."""

    def __init__(self, kind: str, address: str = "127.0.0.1") -> None:
        self.kind = kind
        self.hits: list[bytes] = []
        if kind == "tcp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((address, 0))
            self.sock.listen(16)
        elif kind == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((address, 0))
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind("\0" + address)
            self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1] if kind != "abstract" else 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                if self.kind == "udp":
                    data, _ = self.sock.recvfrom(512)
                    self.hits.append(data)
                    continue
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.hits.append(conn.recv(100) or b"<connected>")
                    conn.sendall(b"host service\n")
                except OSError:
                    self.hits.append(b"<connected>")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def host_address() -> str:
    """This host's primary non-loopback IPv4 address (no packet is sent to find it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def unblock_fifo_later(path: Path, after: float) -> threading.Thread:
    """After `after` s, release whoever is blocked opening the FIFO for reading (EOF)."""

    def release() -> None:
        time.sleep(after)
        end = time.monotonic() + 1
        while time.monotonic() < end:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader is blocked on it; ENOENT: already gone
                time.sleep(0.05)
                continue
            os.close(fd)

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    return thread


def copy_bundle(name: str, skills: Path) -> Path:
    target = skills / name
    shutil.copytree(HOSTILE_SKILLS / name, target, symlinks=True)
    return target


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    value = fn()
    return value, time.monotonic() - start
