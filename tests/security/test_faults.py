"""Faults an operator meets: the sandbox killed from outside, the bundle or an input file
deleted under a running call, the disk of the output root full, the Docker daemon dying
mid-call. Each call ends as a failed result or a clear SkillcellError, never a hang or a raw
traceback; and afterwards nothing is left: no process (marker scan), no container (label
skillcell.call), no cgroup, no inputs or staging directory."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from skillcell.catalog import scan
from skillcell.errors import EngineError, SkillcellError
from skillcell.plan import RunResult

from .harness import (
    ENGINES,
    RecordingRunner,
    config_for,
    containers_of,
    leftovers,
    make_runner,
    processes_with,
    require_engine,
    sealed_tempdir,
)

pytestmark = pytest.mark.anyio

SLEEPER = """\
name: sectest-fault/sleeper
description: Writes an output, sleeps, then reads its bundle and writes more.
network: false
timeout: 30s
scripts:
  main:
    command: python3 main.py {{marker}}
    inputSchema:
      type: object
      additionalProperties: false
      required: [marker]
      properties:
        marker: {type: string}
        sleep: {type: number, default: 0}
        write_kib: {type: integer, default: 0}
"""
SLEEPER_PY = """\
import json, sys, time
args = json.load(open("/inputs/args.json"))
open("/outputs/early.txt", "w").write("written before the fault")
print("started", flush=True)
time.sleep(args["sleep"])
print(open("/workspace/data.txt").read().strip(), flush=True)
if args["write_kib"]:
    with open("/outputs/big.bin", "wb") as f:
        for _ in range(args["write_kib"]):
            f.write(b"x" * 1024)
print("done")
"""
READER = """\
name: sectest-fault/reader
network: false
timeout: 30s
scripts:
  main:
    command: python3 -c "import sys; print(open(sys.argv[1]).read())" {{path}}
    inputFiles: [path]
    inputSchema:
      type: object
      additionalProperties: false
      required: [path]
      properties:
        path: {type: string}
"""


@dataclass
class Env:
    root: Path
    skills: Path
    runner: RecordingRunner
    engine: str
    marker: str

    def args(self, **extra: Any) -> dict[str, Any]:
        return {"marker": self.marker, **extra}

    def leftovers(self, docker_host: str | None = None) -> list[str]:
        return leftovers(markers=[self.marker], call_ids=self.runner.call_ids, tmp=self.root,
                         output_root=self.runner.config.output_root,
                         docker_host=docker_host)  # fmt: skip


def write_skills(root: Path) -> Path:
    skills = root / "skills"
    for name, manifest, files in (
        ("sleeper", SLEEPER, {"main.py": SLEEPER_PY, "data.txt": "bundle data\n"}),
        ("reader", READER, {}),
    ):
        (skills / name).mkdir(parents=True)
        (skills / name / "skill.package.yml").write_text(manifest)
        for rel, text in files.items():
            (skills / name / rel).write_text(text)
    return skills


@pytest.fixture(params=ENGINES)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    require_engine(request.param)
    with sealed_tempdir() as root:
        skills = write_skills(root)
        (root / "inputs").mkdir()
        catalog = scan([skills])
        assert not catalog.problems, catalog.problems
        runner = make_runner(catalog, config_for(request.param, root))
        marker = f"skillcellfault{uuid.uuid4().hex[:12]}"
        try:
            yield Env(root, skills, runner, request.param, marker)
        finally:
            await runner.aclose()
            for pid in processes_with(marker):  # never hand a stray to the next test
                os.kill(pid, signal.SIGKILL)


async def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    with anyio.fail_after(timeout):
        while not (found := predicate()):
            await anyio.sleep(0.05)
    return found


def outer_bwrap(marker: str) -> int | None:
    """The bwrap process skillcell started for the call (not its in-sandbox init)."""
    pids = set(processes_with(marker))
    for pid in sorted(pids):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if comm == "bwrap" and ppid not in pids:
            return pid
    return None


def running_container(marker: str, docker_host: str | None = None) -> str | None:
    import docker

    client = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
    try:
        for c in client.api.containers(filters={"label": "skillcell.call"}):
            if any(marker in part for part in c.get("Command", "").split()):
                return str(c["Id"])
    finally:
        client.close()
    return None


async def test_a_sandbox_killed_from_outside_is_a_failed_call_with_nothing_left(env: Env) -> None:
    result: list[RunResult] = []

    async def call() -> None:
        result.append((await env.runner.call("sectest-fault/sleeper", env.args(sleep=20))).result)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        if env.engine == "bwrap":
            pid = await wait_for(lambda: outer_bwrap(env.marker))
            await wait_for(lambda: len(processes_with(env.marker)) >= 3)  # the tool is up
            os.kill(pid, signal.SIGKILL)
        else:
            container = await wait_for(lambda: running_container(env.marker))
            subprocess.run(["docker", "kill", container], check=True, capture_output=True)
    start = time.monotonic()
    (run,) = result
    assert not run.ok and run.exit_code == 137, (run.exit_code, run.stderr, run.notes)
    assert time.monotonic() - start < 5
    assert not env.leftovers()


def unwrap(exc: BaseException) -> BaseException:
    """The one real error inside task-group wrapping (see the ExceptionGroup finding)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class _Broken:
    """An engine whose daemon is gone: every run raises the engine's own error."""

    name = "docker"

    def available(self) -> Any:
        from skillcell.engines import Availability

        return Availability(True, "stub")

    def unsupported(self, plan: Any) -> set[str]:
        return set()

    def image_id(self, plan: Any) -> str:
        return ""

    async def run(self, plan: Any, progress: Any = None) -> RunResult:
        await anyio.sleep(0.01)
        raise EngineError("docker", "lost the API at unix:///var/run/docker.sock")

    async def aclose(self) -> None:
        return None


async def test_an_engine_error_reaches_the_caller_as_itself(tmp_path: Path) -> None:
    """Not wrapped in an ExceptionGroup (the CLI and the server catch EngineError)."""
    skills = write_skills(tmp_path)
    runner = make_runner(scan([skills]), config_for("docker", tmp_path))
    runner.engines._instances["docker"] = _Broken()  # type: ignore[assignment]
    with pytest.raises(EngineError, match="lost the API"):
        await runner.call("sectest-fault/sleeper", {"marker": "x"})


async def test_a_bundle_deleted_while_its_call_runs_ends_as_a_failed_call(env: Env) -> None:
    result: list[RunResult] = []

    async def call() -> None:
        result.append((await env.runner.call("sectest-fault/sleeper", env.args(sleep=1.5))).result)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await wait_for(lambda: len(processes_with(env.marker)) >= 2)
        shutil.rmtree(env.skills / "sleeper")
    (run,) = result
    assert not run.ok and "No such file or directory" in run.stderr, (run.exit_code, run.stderr)
    assert not env.leftovers()


async def test_a_call_to_a_bundle_deleted_before_it_runs_fails_with_a_clear_error(
    env: Env,
) -> None:
    shutil.rmtree(env.skills / "sleeper")
    with pytest.raises(BaseException) as info:
        await env.runner.call("sectest-fault/sleeper", env.args())
    error = unwrap(info.value)
    assert isinstance(error, SkillcellError), repr(error)
    assert "sleeper" in str(error)
    assert not env.leftovers()


async def test_an_input_file_deleted_after_validation_fails_clearly_and_leaves_nothing(
    env: Env,
) -> None:
    data = env.root / "inputs" / "data.csv"
    data.write_text("a,b\n")
    tool, plan = env.runner.prepare("sectest-fault/reader", {"path": "data.csv"},
                                    cwd=env.root / "inputs")  # fmt: skip
    data.unlink()
    with pytest.raises(BaseException) as info:
        await env.runner.execute(tool, plan)
    error = unwrap(info.value)
    assert isinstance(error, SkillcellError) and "data.csv" in str(error), repr(error)
    assert not env.leftovers()


@pytest.fixture
def full_disk(env: Env) -> Iterator[Path]:
    """A 1 MiB tmpfs as the output root (root only); unmounted afterwards."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    target = env.root / "small-output-root"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(target)],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


async def test_outputs_on_a_full_disk_fail_clearly_with_nothing_partial_left(
    env: Env, full_disk: Path
) -> None:
    config = replace(env.runner.config, output_root=full_disk,
                     limits=replace(env.runner.config.limits, outputs=64 << 20))  # fmt: skip
    runner = make_runner(env.runner.catalog(), config)
    try:
        call = await runner.call("sectest-fault/sleeper", env.args(write_kib=3000))
        result: RunResult | None = call.result
        error = None
    except BaseException as exc:  # noqa: BLE001 - judged below
        result, error = None, unwrap(exc)
    finally:
        await runner.aclose()
    if result is None:
        assert isinstance(error, SkillcellError) and "space" in str(error).lower(), repr(error)
    else:
        big = [p for p in result.outputs if p.name == "big.bin"]
        assert not big or big[0].stat().st_size == 3000 << 10, "a truncated file was exported"
        assert result.ok or any("space" in n.lower() for n in result.notes), result.notes
    problems = leftovers(markers=[env.marker], call_ids=runner.call_ids, tmp=env.root,
                         output_root=full_disk)  # fmt: skip
    assert not problems, problems


# -- the Docker daemon dying mid-call (a second, private dockerd; the shared one is never touched)


@dataclass
class Daemon:
    base: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.base}/docker.sock"

    def start(self, timeout: float = 40, exec_root: str = "exec") -> None:
        argv = ["dockerd", "--host", self.host, "--data-root", str(self.base / "data"),
                "--exec-root", str(self.base / exec_root), "--pidfile", str(self.base / "docker.pid"),
                "--iptables=false", "--ip-masq=false", "--bridge=none", "--log-level=error"]  # fmt: skip
        with open(self.base / "dockerd.log", "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                            start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dockerd exited: {(self.base / 'dockerd.log').read_text()[-500:]}"
                )
            if self.docker("version").returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("dockerd did not answer")

    def docker(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["docker", "-H", self.host, *args], capture_output=True,
                              check=False, **kwargs)  # fmt: skip

    def kill(self) -> None:
        """A daemon crash: SIGKILL to dockerd; its containerd and the shims live on."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def restart(self, marker: str) -> None:
        """Bring the daemon back after a crash. Its orphaned containerd, shims and the
        container's processes are the daemon's to clean, not skillcell's; they go first, as
        in a host-level crash of the whole runtime, so the new daemon starts in a second."""
        for pid in [*processes_with(str(self.base)), *processes_with(marker)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while processes_with(str(self.base)) and time.monotonic() < deadline:
            time.sleep(0.05)
        # A fresh exec root: the dead runtime's state has nothing left to reattach to, and the
        # daemon marks the call's container exited from its own records (data root).
        self.start(exec_root="exec-2")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # Its containerd and shims, should any outlive it; then its mounts; then its files.
        for pid in processes_with(str(self.base)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                  if line.split()[4].startswith(str(self.base))]  # fmt: skip
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


@dataclass
class DaemonDeath:
    error: BaseException | None
    result: RunResult | None
    seconds: float
    leftovers_while_down: list[str]
    next_call: RunResult | None
    containers_after: list[str]
    other_leftovers: list[str]


@pytest.fixture(scope="module")
def daemon_death() -> Iterator[DaemonDeath]:
    """Run a call on a private dockerd, SIGKILL the daemon mid-call, restart it, call again."""
    require_engine("docker")
    if os.geteuid() != 0 or not shutil.which("dockerd"):
        pytest.skip("a private dockerd needs root and the dockerd binary")
    base = Path(tempfile.mkdtemp(prefix="scd-", dir="/tmp"))  # short: unix socket paths
    daemon = Daemon(base)
    try:
        daemon.start()
        daemon.docker("import", "-", TINY_IMAGE, input=tiny_rootfs()).check_returncode()
        yield anyio.run(_kill_daemon_mid_call, daemon)
    finally:
        daemon.stop()


TINY_IMAGE = "skillcell-sec/tiny:1"
TINY_SLEEPER = f"""\
name: sectest-fault/tiny-sleeper
from: {TINY_IMAGE}
network: false
timeout: 60s
scripts:
  main: sleep {{{{seconds}}}}
"""


def tiny_rootfs() -> bytes:
    """A tar of /usr/bin/sleep and the libraries it loads: an image in milliseconds."""
    files = {"/usr/bin/sleep": "/usr/bin/sleep"}
    for line in subprocess.run(["ldd", "/usr/bin/sleep"], capture_output=True, text=True,
                               check=True).stdout.splitlines():  # fmt: skip
        path = line.split("=>")[-1].split("(")[0].strip()
        if path.startswith("/"):
            files[path] = os.path.realpath(path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for target, source in files.items():
            tar.add(source, arcname=target.lstrip("/"))
    return buffer.getvalue()


async def _kill_daemon_mid_call(daemon: Daemon) -> DaemonDeath:
    with sealed_tempdir() as root:
        skills = write_skills(root)
        (skills / "tiny-sleeper").mkdir()
        (skills / "tiny-sleeper" / "skill.package.yml").write_text(TINY_SLEEPER)
        catalog = scan([skills])
        runner = make_runner(catalog, config_for("docker", root, docker_host=daemon.host))
        marker = f"25.{uuid.uuid4().int % 10**12}"
        outcome: dict[str, Any] = {"error": None, "result": None}

        async def call() -> None:
            try:
                args = {"seconds": marker}
                outcome["result"] = (await runner.call("sectest-fault/tiny-sleeper", args)).result
            except BaseException as exc:  # noqa: BLE001 - recorded for the tests below
                outcome["error"] = exc

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await wait_for(lambda: running_container(marker, daemon.host), timeout=30)
                start = time.monotonic()
                daemon.kill()
            seconds = time.monotonic() - start
            down = leftovers(markers=[], call_ids=runner.call_ids, tmp=root,
                             output_root=runner.config.output_root, grace=0)  # fmt: skip
            daemon.restart(marker)
            first_call = list(runner.call_ids)
            try:
                again = (await runner.call("sectest-fault/tiny-sleeper", {"seconds": "0"})).result
            except BaseException:  # noqa: BLE001
                again = None
            containers = containers_of(first_call, daemon.host)
            other = leftovers(markers=[], call_ids=runner.call_ids[len(first_call):], tmp=root,
                              output_root=runner.config.output_root,
                              docker_host=daemon.host)  # fmt: skip
        finally:
            await runner.aclose()
        return DaemonDeath(outcome["error"], outcome["result"], seconds, down, again,
                           containers, other)  # fmt: skip


def test_the_docker_daemon_dying_mid_call_is_a_clear_engine_error(
    daemon_death: DaemonDeath,
) -> None:
    assert isinstance(daemon_death.error, EngineError), repr(daemon_death.error)
    assert "docker" in str(daemon_death.error)


def test_the_docker_daemon_dying_mid_call_ends_the_call_at_once(daemon_death: DaemonDeath) -> None:
    assert daemon_death.result is None and daemon_death.error is not None
    assert isinstance(unwrap(daemon_death.error), Exception)
    assert daemon_death.seconds < 5, "the call waited on a dead daemon"
    assert not daemon_death.leftovers_while_down, daemon_death.leftovers_while_down


def test_once_the_daemon_is_back_calls_run_again_and_leave_nothing(
    daemon_death: DaemonDeath,
) -> None:
    assert daemon_death.next_call is not None and daemon_death.next_call.ok
    assert not daemon_death.other_leftovers, daemon_death.other_leftovers


def test_once_the_daemon_is_back_the_dead_calls_container_is_removed(
    daemon_death: DaemonDeath,
) -> None:
    assert not daemon_death.containers_after
