"""What the bwrap engine promises beyond the behaviour every engine shares (test_behaviour.py):
an open-world tool gets a network of its own (slirp4netns), never the host's; the root and
/dev are read-only; and a network plan that cannot get its own network is refused, never run
with the host's or with none."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from skillcell.engines import Engine, slirp
from skillcell.engines.bwrap import NETWORK_ON
from skillcell.errors import EngineError
from skillcell.plan import Limits
from tests.conftest import require
from tests.security.harness import Listener, host_address

from .conftest import engine_for, make_plan, python

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def bwrap(config):  # type: ignore[no-untyped-def]
    return engine_for("bwrap", config)


@pytest.fixture
def networked(bwrap: Engine) -> Engine:
    why = slirp.problem()
    require(why is None, f"no user-mode networking here: {why}")
    return bwrap


PROBE = """
import fcntl, json, socket, struct, sys
port, abstract, host_ip = int(sys.argv[1]), sys.argv[2], sys.argv[3]
report = {}
def attempt(label, action):
    try:
        report[label] = "reached: " + repr(action())
    except OSError as exc:
        report[label] = "blocked: " + str(exc)
def tcp(host):
    with socket.create_connection((host, port), timeout=3) as s:
        s.sendall(b"probe")
        return s.recv(100)
def unix():
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(3)
        s.connect("\\0" + abstract)
        return s.recv(100)
attempt("host loopback", lambda: tcp("127.0.0.1"))
attempt("slirp host alias", lambda: tcp("10.0.2.2"))
attempt("host address", lambda: tcp(host_ip))
attempt("abstract socket", unix)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    addr = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", b"tap0"))  # SIOCGIFADDR
report["tap0"] = socket.inet_ntoa(addr[20:24])
report["interfaces"] = sorted(name for _, name in socket.if_nameindex())
report["resolv.conf"] = open("/etc/resolv.conf").read()
print(json.dumps(report))
"""


async def test_an_open_world_tool_reaches_out_but_not_the_hosts_loopback_or_sockets(
    networked: Engine, config, bundle  # type: ignore[no-untyped-def]
) -> None:
    tcp = Listener("tcp", "0.0.0.0")  # on the host's loopback and on its other addresses
    name = f"skillcell-test-{os.getpid()}-{time.monotonic_ns()}"
    unix = Listener("abstract", name)
    host_ip = host_address()
    try:
        plan = make_plan(config, bundle, python(PROBE, str(tcp.port), name, host_ip),
                         network=True)  # fmt: skip
        result = await networked.run(plan)
    finally:
        tcp.close()
        unix.close()
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["host loopback"].startswith("blocked"), report  # the sandbox's own lo
    assert report["slirp host alias"].startswith("blocked"), report  # --disable-host-loopback
    assert report["abstract socket"].startswith("blocked"), report
    assert not unix.hits
    assert report["tap0"] == "10.0.2.100"
    assert report["interfaces"] == ["lo", "tap0"]
    assert "nameserver 10.0.2.3" in report["resolv.conf"].splitlines()
    if host_ip != "127.0.0.1":
        # The way out works: the host's own address, as from a container on a bridge.
        assert report["host address"] == "reached: b'host service\\n'", report
        assert tcp.hits == [b"probe"]


async def test_slirp4netns_runs_unprivileged_and_ends_with_the_call(
    networked: Engine, config, bundle  # type: ignore[no-untyped-def]
) -> None:
    marker = f"skillcell-test-{time.time_ns()}"
    seen: dict[int, dict[str, str]] = {}

    async def watch() -> None:
        while not seen:
            for pid in _children_of_helpers_with(marker):
                status = _status(pid)
                if status.get("Name") == "slirp4netns" and status.get("Seccomp") == "2":
                    seen[pid] = status
            await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        plan = make_plan(config, bundle, ["sh", "-c", "sleep 1", marker], network=True)
        result = await networked.run(plan)
        tg.cancel_scope.cancel()
    assert result.exit_code == 0, result.stderr
    assert seen, "slirp4netns was never seen"
    (pid, status), = seen.items()
    expected = config.bwrap_uid if os.geteuid() == 0 else os.getuid()
    assert status["Uid"].split() == [str(expected)] * 4
    assert status["NoNewPrivs"] == "1"
    assert int(status["CapBnd"], 16) & ~(1 << 10) == 0  # at most CAP_NET_BIND_SERVICE
    assert os.readlink(f"/proc/{os.getpid()}/ns/user") != status["userns"]  # not the host's
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped by the helper


async def test_a_network_sandbox_killed_from_outside_reads_as_killed(
    networked: Engine, config, bundle  # type: ignore[no-untyped-def]
) -> None:
    marker = f"{time.time_ns() % 10**6}.125"
    result = []

    async def call() -> None:
        result.append(await networked.run(make_plan(config, bundle, ["sleep", marker],
                                                    network=True)))  # fmt: skip

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        with anyio.fail_after(10):
            while not (outer := [p for p in _children_of_helpers_with(marker)
                                 if _status(p).get("Name") == "bwrap"]):  # fmt: skip
                await anyio.sleep(0.05)
        os.kill(outer[0], signal.SIGKILL)
    (run,) = result
    assert run.exit_code == 137, (run.exit_code, run.stderr)


async def test_without_slirp4netns_a_network_plan_is_refused_and_said_unsupported(
    bwrap: Engine, config, bundle, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setattr(slirp, "_which", lambda name: None)
    open_world = make_plan(config, bundle, ["true"], network=True)
    closed = make_plan(config, bundle, ["true"])
    assert NETWORK_ON in bwrap.unsupported(open_world)
    assert NETWORK_ON not in bwrap.unsupported(closed)
    with pytest.raises(EngineError, match="needs slirp4netns .* cannot reach the host's own"):
        await bwrap.run(open_world)
    assert (await bwrap.run(closed)).exit_code == 0  # the rest of the engine works on


FAKE_BWRAP = """
import os, sys
marker, info, block = sys.argv[1], int(sys.argv[3]), int(sys.argv[5])
child = os.fork()
if child == 0:
    os._exit(0)
os.waitpid(child, 0)  # a pid with no process (or another one) behind it
os.write(info, ('{"child-pid": %d, "net-namespace": 1}' % child).encode())
os.close(info)
os.read(block, 1)  # bwrap would exec the tool here
open(marker, "w").write("the tool ran")
"""


def test_when_the_network_cannot_be_set_up_the_tool_never_starts(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.touch()
    marker = tmp_path / "ran"
    # A stand-in for bwrap that reports a sandbox slirp4netns cannot attach to.
    command = [sys.executable, "-c", FAKE_BWRAP, str(marker)]
    done = subprocess.run(slirp.helper_argv(status, command, len(command), None),
                          capture_output=True, timeout=30, check=False)  # fmt: skip
    assert done.returncode == slirp.SETUP_FAILED, done.stderr
    assert slirp.read_status(status), "no reason recorded"
    time.sleep(0.2)
    assert not marker.exists()


async def test_the_root_and_dev_are_read_only_and_dev_shm_is_bounded(
    bwrap: Engine, config, bundle  # type: ignore[no-untyped-def]
) -> None:
    code = (
        "import json\n"
        "report = {}\n"
        "for path in ('/pwned', '/etc/pwned', '/dev/pwned', '/tmp/ok', '/outputs/ok'):\n"
        "    try:\n"
        "        open(path, 'w').write('x'); report[path] = 'written'\n"
        "    except OSError as exc:\n"
        "        report[path] = exc.strerror\n"
        "written = 0\n"
        "try:\n"
        "    with open('/dev/shm/fill', 'wb') as f:\n"
        "        for _ in range(64):\n"
        "            f.write(b'x' * (1 << 20)); f.flush(); written += 1 << 20\n"
        "except OSError as exc:\n"
        "    report['shm'] = exc.strerror\n"
        "report['shm written'] = written\n"
        "print(json.dumps(report))\n"
    )
    limits = Limits(timeout=30, memory=256 << 20, tmp=4 << 20)
    result = await bwrap.run(replace(make_plan(config, bundle, python(code)), limits=limits))
    report = json.loads(result.stdout)
    for path in ("/pwned", "/etc/pwned", "/dev/pwned"):
        assert report[path] == "Read-only file system", report
    assert report["/tmp/ok"] == report["/outputs/ok"] == "written"
    assert report["shm"] == "No space left on device"
    assert report["shm written"] <= 4 << 20


def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        userns = os.readlink(f"/proc/{pid}/ns/user")
    except OSError:
        return {}
    fields = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
    return {**{k: v.strip() for k, v in fields.items()}, "userns": userns}


def _children_of_helpers_with(marker: str) -> list[int]:
    """Processes whose parent is a network helper running a command that holds `marker`."""
    helpers = set()
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if b"slirp.py" in cmdline and marker.encode() in cmdline:
            helpers.add(int(entry))
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid in helpers:
            children.append(int(entry))
    return children
