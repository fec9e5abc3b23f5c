"""The Docker engine against a real Docker Engine API: each line of the sandbox policy, tried
the way a hostile or broken tool would try it.

Skipped when no Docker daemon (or no python:3.11-slim image) is reachable, except under CI,
where that is a failure: CI installs Docker (scripts/setup-engines.sh).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from skillcell import outputs
from skillcell.config import Config
from skillcell.engines.docker import (
    DEFAULT_IMAGE,
    DockerEngine,
    _exit_note,
    build_tag,
    exec_dirs,
    owner_alive,
    owner_label,
)
from skillcell.errors import EngineError, EngineUnavailable
from skillcell.plan import ExecutionPlan, InputFile, Limits, Secrets
from tests.conftest import require

pytestmark = [pytest.mark.docker]

TOOL = "test.docker"
ECHO_ARGS = "import json, sys; print(json.dumps(sys.argv[1:]))\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    """The SDK's low-level client, for looking at the daemon from outside the engine."""
    status = DockerEngine(Config()).available()
    require(bool(status), f"Docker unavailable: {status.reason}")
    import docker
    import docker.errors

    client = docker.from_env()
    try:
        client.api.inspect_image(DEFAULT_IMAGE)
    except docker.errors.ImageNotFound:
        client.close()
        require(False, f"image {DEFAULT_IMAGE} is missing: run scripts/setup-engines.sh")
    yield client.api
    client.close()


@pytest.fixture
async def engine(api: Any) -> AsyncIterator[DockerEngine]:
    engine = DockerEngine(Config())
    yield engine
    await engine.aclose()


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle"
    path.mkdir()
    (path / "echo_args.py").write_text(ECHO_ARGS)
    path.chmod(0o755)  # as an installed bundle would be; pytest's tmp dirs are 0700
    return path


def make_plan(bundle: Path, argv: list[str], **changes: Any) -> ExecutionPlan:
    call_id = uuid.uuid4().hex
    limits = changes.pop("limits", Limits(timeout=30))
    return ExecutionPlan(
        call_id=call_id,
        tool=TOOL,
        argv=tuple(argv),
        bundle=bundle,
        output_dir=bundle.parent / "outputs" / call_id,
        limits=limits,
        **changes,
    )


def py(code: str) -> list[str]:
    return ["python3", "-c", code]


def containers_of(api: Any, call_id: str) -> list[dict[str, Any]]:
    return list(api.containers(all=True, filters={"label": f"skillcell.call={call_id}"}))


# -- what the tool receives ------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_argument_with_shell_metacharacters_arrives_as_one_literal_argv_entry(
    engine: DockerEngine, bundle: Path
) -> None:
    nasty = "a b; rm -rf / #\n$(id) `id` 'single' \"double\" * && | > /tmp/x \\ $HOME"
    result = await engine.run(make_plan(bundle, ["python3", "echo_args.py", nasty, ""]))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [nasty, ""]


@pytest.mark.anyio
async def test_the_image_entrypoint_is_bypassed_so_argv_runs_exactly(
    engine: DockerEngine, bundle: Path, api: Any
) -> None:
    # An image whose entrypoint would swallow or rewrite the command.
    tag = f"skillcell-test/entrypoint:{uuid.uuid4().hex[:8]}"
    container = api.create_container(DEFAULT_IMAGE, entrypoint=["true"])
    api.commit(container["Id"], repository=tag.split(":")[0], tag=tag.split(":")[1],
               changes=['ENTRYPOINT ["echo", "hijacked"]'])  # fmt: skip
    api.remove_container(container["Id"])
    try:
        result = await engine.run(make_plan(bundle, ["echo", "exact"], image=tag))
    finally:
        api.remove_image(tag)
    assert result.stdout == "exact\n"


@pytest.mark.anyio
async def test_the_tool_runs_as_nobody_with_no_capabilities_and_no_new_privileges(
    engine: DockerEngine, bundle: Path
) -> None:
    code = (
        "import os\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
        "print(os.getuid(), os.getgid(), status['CapEff'].strip(), status['CapBnd'].strip(),"
        " status['NoNewPrivs'].strip())\n"
    )
    result = await engine.run(make_plan(bundle, py(code)))
    assert result.stdout.split() == ["65534", "65534", "0" * 16, "0" * 16, "1"]


@pytest.mark.anyio
async def test_the_environment_holds_home_lang_the_plan_env_and_secrets(
    engine: DockerEngine, bundle: Path
) -> None:
    code = "import os, json; print(json.dumps({k: os.environ.get(k) for k in "
    code += "['HOME', 'LANG', 'PATH', 'GREETING', 'API_TOKEN']}))"
    plan = make_plan(bundle, py(code), env={"GREETING": "hi there"},
                     secrets=Secrets({"API_TOKEN": "s3cr3t-v4lue"}))  # fmt: skip
    result = await engine.run(plan)
    env = json.loads(result.stdout)
    assert env["HOME"] == "/tmp"
    assert env["LANG"] == "C.UTF-8"
    assert "/usr/bin" in env["PATH"]
    assert env["GREETING"] == "hi there"
    assert env["API_TOKEN"] == "s3cr3t-v4lue"


@pytest.mark.anyio
async def test_args_json_and_declared_input_files_are_readable_and_nothing_else_of_the_host(
    engine: DockerEngine, bundle: Path, tmp_path: Path
) -> None:
    data = tmp_path / "private" / "data.csv"
    data.parent.mkdir()
    data.write_text("a,b\n1,2\n")
    data.chmod(0o600)  # the sandbox user must still get the declared file
    (tmp_path / "private" / "undeclared.txt").write_text("not for the tool")
    sandbox = "/inputs/files/table/data.csv"
    code = (
        "import json, os\n"
        "print(open('/inputs/args.json').read())\n"
        f"print(open({sandbox!r}).read(), end='')\n"
        "print(sorted(os.listdir('/inputs')))\n"
        "try:\n    open('/inputs/x', 'w')\nexcept OSError as e:\n    print('ro', e.errno)\n"
    )
    plan = make_plan(bundle, py(code), args={"table": sandbox, "n": 3},
                     input_files=(InputFile(data, sandbox, "data", data.stat().st_dev, data.stat().st_ino),))  # fmt: skip
    result = await engine.run(plan)
    lines = result.stdout.splitlines()
    assert json.loads(lines[0]) == {"table": sandbox, "n": 3}
    assert lines[1:3] == ["a,b", "1,2"]
    assert lines[3] == "['args.json', 'files']"
    assert lines[4] == "ro 30"  # EROFS
    assert str(tmp_path) not in result.stdout


# -- what the tool cannot do -----------------------------------------------------------------


@pytest.mark.anyio
async def test_host_shadow_host_files_and_the_docker_socket_are_invisible(
    engine: DockerEngine, bundle: Path, tmp_path: Path
) -> None:
    marker = tmp_path / f"host-only-{uuid.uuid4().hex}"
    marker.write_text("host secret")
    shadow = Path("/etc/shadow").read_bytes() if os.access("/etc/shadow", os.R_OK) else b""
    code = (
        "import os, sys\n"
        "try:\n    print('shadow', len(open('/etc/shadow', 'rb').read()))\n"
        "except OSError as e:\n    print('shadow denied', e.errno)\n"
        f"print('marker', os.path.exists({str(marker)!r}))\n"
        "for s in ['/var/run/docker.sock', '/run/docker.sock', '/run/podman/podman.sock']:\n"
        "    print(s, os.path.exists(s))\n"
    )
    result = await engine.run(make_plan(bundle, py(code)))
    # The image's own shadow (EACCES) or none at all (ENOENT); never the host's.
    assert result.stdout.splitlines()[0] in ("shadow denied 13", "shadow denied 2")
    assert "marker False" in result.stdout
    assert "True" not in result.stdout
    if shadow:
        assert shadow.decode(errors="replace") not in result.stdout


@pytest.mark.anyio
async def test_the_bundle_and_the_root_filesystem_are_read_only_but_tmp_and_outputs_are_not(
    engine: DockerEngine, bundle: Path
) -> None:
    code = (
        "import os\n"
        "for path in ['/workspace/echo_args.py', '/workspace/new.txt', '/etc/evil', "
        "'/usr/bin/evil', '/tmp/scratch', '/outputs/result.txt']:\n"
        "    try:\n"
        "        open(path, 'a').write('x')\n"
        "        print(path, 'writable')\n"
        "    except OSError as e:\n"
        "        print(path, 'denied', e.errno)\n"
        "print('cwd', os.getcwd())\n"
    )
    result = await engine.run(make_plan(bundle, py(code)))
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["/workspace/echo_args.py"].startswith("denied")
    assert lines["/workspace/new.txt"].startswith("denied")
    assert lines["/etc/evil"].startswith("denied")
    assert lines["/usr/bin/evil"].startswith("denied")
    assert lines["/tmp/scratch"] == "writable"
    assert lines["/outputs/result.txt"] == "writable"
    assert lines["cwd"] == "/workspace"
    assert (bundle / "echo_args.py").read_text() == ECHO_ARGS
    assert not (bundle / "new.txt").exists()


@pytest.mark.anyio
async def test_a_bundle_the_sandbox_user_cannot_read_is_refused_with_the_fix(
    engine: DockerEngine, bundle: Path
) -> None:
    bundle.chmod(0o700)
    with pytest.raises(EngineError, match=r"not readable by the sandbox user 65534:65534.*chmod"):
        await engine.run(make_plan(bundle, ["true"]))


class _TcpServer:
    """A TCP listener on every host address that records whether anyone connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def _host_addresses() -> list[str]:
    found = {"127.0.0.1"}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))  # no packet is sent: just picks a route
            found.add(probe.getsockname()[0])
        except OSError:
            pass
    for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
        found.add(str(info[4][0]))
    return sorted(found)


CONNECT = (
    "import json, socket, sys\n"
    "port = int(sys.argv[1])\n"
    "out = {}\n"
    "for host in sys.argv[2:]:\n"
    "    try:\n"
    "        socket.create_connection((host, port), timeout=2).close()\n"
    "        out[host] = 'connected'\n"
    "    except OSError as e:\n"
    "        out[host] = type(e).__name__\n"
    "out['interfaces'] = [l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]]\n"
    "print(json.dumps(out))\n"
)


@pytest.mark.anyio
async def test_without_network_a_tcp_server_on_the_host_is_unreachable(
    engine: DockerEngine, bundle: Path
) -> None:
    server = _TcpServer()
    addresses = _host_addresses()
    try:
        result = await engine.run(make_plan(bundle, py(CONNECT) + [str(server.port), *addresses]))
    finally:
        server.close()
    seen = json.loads(result.stdout)
    assert all(seen[a] != "connected" for a in addresses), seen
    assert seen["interfaces"] == ["lo"]
    assert server.connections == 0


@pytest.mark.anyio
async def test_with_network_allowed_the_hosts_loopback_services_stay_out_of_reach(
    engine: DockerEngine, bundle: Path
) -> None:
    # network: true means Docker's bridge network, never the host's network namespace.
    server = _TcpServer()
    try:
        plan = make_plan(bundle, py(CONNECT) + [str(server.port), "127.0.0.1"], network=True)
        result = await engine.run(plan)
    finally:
        server.close()
    seen = json.loads(result.stdout)
    assert seen["127.0.0.1"] != "connected"
    assert server.connections == 0
    if seen["interfaces"] == ["lo"]:  # dockerd --bridge=none: no bridge to join
        assert any("no bridge network" in note for note in result.notes)


# -- limits ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_timeout_kills_the_container_promptly_and_leaves_nothing_behind(
    engine: DockerEngine, bundle: Path, api: Any
) -> None:
    await engine.run(make_plan(bundle, ["true"]))  # first-use costs (connect, sweep) apart
    plan = make_plan(bundle, ["sh", "-c", "echo started; sleep 30"], limits=Limits(timeout=2))
    start = time.monotonic()
    result = await engine.run(plan)
    elapsed = time.monotonic() - start
    assert result.timed_out
    assert result.exit_code == 124
    assert result.stdout == "started\n"  # output before the kill is kept
    assert any("timed out after 2s" in note for note in result.notes)
    assert 2.0 <= elapsed < 3.5, elapsed
    assert containers_of(api, plan.call_id) == []


@pytest.mark.anyio
async def test_cancelling_the_call_removes_its_container_at_once(
    engine: DockerEngine, bundle: Path, api: Any
) -> None:
    plan = make_plan(bundle, ["sleep", "30"])
    start = time.monotonic()
    with anyio.move_on_after(1.5) as scope:
        await engine.run(plan)
    assert scope.cancelled_caught
    assert time.monotonic() - start < 4
    assert containers_of(api, plan.call_id) == []
    assert not plan.output_dir.exists()


@pytest.mark.anyio
async def test_a_memory_limit_stops_a_large_allocation_with_137_and_says_so(
    engine: DockerEngine, bundle: Path
) -> None:
    plan = make_plan(bundle, py("b = b'x' * (1 << 30); print('allocated')"),
                     limits=Limits(timeout=30, memory=128 << 20))  # fmt: skip
    result = await engine.run(plan)
    assert result.exit_code == 137
    assert "allocated" not in result.stdout
    assert any("out of memory" in note and "128Mi" in note for note in result.notes)


@pytest.mark.anyio
async def test_a_fork_bomb_is_bounded_by_the_pids_limit(engine: DockerEngine, bundle: Path) -> None:
    code = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    while n < 1000:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except OSError as e:\n"
        "    print('forks', n, 'errno', e.errno)\n"
    )
    plan = make_plan(bundle, py(code), limits=Limits(timeout=30, pids=32))
    start = time.monotonic()
    result = await engine.run(plan)
    words = result.stdout.split()
    assert words[0] == "forks" and int(words[1]) < 32, result.stdout
    assert words[3] == "11"  # EAGAIN
    assert time.monotonic() - start < 10  # the sleeping children die with the container


@pytest.mark.anyio
async def test_a_shell_fork_bomb_ends_at_the_timeout_and_is_cleaned_up(
    engine: DockerEngine, bundle: Path, api: Any
) -> None:
    plan = make_plan(bundle, ["sh", "-c", "b() { b | b & }; b; sleep 30"],
                     limits=Limits(timeout=3, pids=64))  # fmt: skip
    result = await engine.run(plan)
    assert result.timed_out
    assert containers_of(api, plan.call_id) == []


@pytest.mark.anyio
async def test_cpus_are_capped(engine: DockerEngine, bundle: Path) -> None:
    code = (
        "import os\n"
        "for f in ['/sys/fs/cgroup/cpu/cpu.cfs_quota_us', '/sys/fs/cgroup/cpu.max']:\n"
        "    if os.path.exists(f):\n"
        "        print(open(f).read().split()[0])\n"
    )
    result = await engine.run(make_plan(bundle, py(code), limits=Limits(timeout=30, cpus=0.5)))
    assert result.stdout.split()[0] == "50000"  # half of the 100 ms period


@pytest.mark.anyio
async def test_a_100MB_stdout_flood_is_capped_and_the_call_returns(
    engine: DockerEngine, bundle: Path
) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    plan = make_plan(bundle, ["sh", "-c", "head -c 104857600 /dev/zero; echo done >&2"],
                     limits=Limits(timeout=60, stdout=1 << 20))  # fmt: skip
    result = await engine.run(plan)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result.exit_code == 0
    assert result.stdout_truncated
    assert result.stdout.startswith("\0" * (1 << 20))
    assert f"{100 * (1 << 20) - (1 << 20)} more bytes dropped" in result.stdout
    assert result.stderr == "done\n"
    assert grown < 48 * 1024, f"the server grew by {grown} KiB"


# -- results ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_exit_codes_and_the_two_streams_come_back_separately(
    engine: DockerEngine, bundle: Path
) -> None:
    plan = make_plan(bundle, ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"])
    result = await engine.run(plan)
    assert result.exit_code == 3
    assert result.stdout == "to-out\n"
    assert result.stderr == "to-err\n"
    assert not result.ok
    assert result.engine == "docker"


@pytest.mark.anyio
async def test_a_secret_printed_by_the_tool_is_returned_but_never_logged(
    engine: DockerEngine, bundle: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = f"tok-{uuid.uuid4().hex}"
    plan = make_plan(bundle, ["sh", "-c", 'echo "token=$API_TOKEN"'],
                     secrets=Secrets({"API_TOKEN": secret}))  # fmt: skip
    result = await engine.run(plan)
    assert result.stdout == f"token={secret}\n"  # scrubbing is the runner's job
    assert secret not in caplog.text
    assert secret not in repr(plan)


@pytest.mark.anyio
async def test_files_written_to_outputs_are_exported_and_links_are_dropped(
    engine: DockerEngine, bundle: Path
) -> None:
    script = (
        "mkdir -p /outputs/sub && echo report > /outputs/report.txt"
        " && echo '{}' > /outputs/sub/data.json && ln -s /etc/passwd /outputs/link"
    )
    plan = make_plan(bundle, ["sh", "-c", script])
    result = await engine.run(plan)
    assert result.exit_code == 0, result.stderr
    assert result.output_dir == plan.output_dir
    assert result.outputs == (plan.output_dir / "report.txt", plan.output_dir / "sub/data.json")
    assert (plan.output_dir / "report.txt").read_text() == "report\n"
    assert not (plan.output_dir / "link").exists()
    assert any("dropped link" in note for note in result.notes)


@pytest.mark.parametrize(
    "script",
    [
        pytest.param("head -c 700000 /dev/zero > /outputs/a; head -c 700000 /dev/zero > /outputs/b",
                     id="files-together-over-the-cap"),
        pytest.param("head -c 3000000 /dev/zero > /outputs/big", id="one-file-over-the-cap"),
    ],
)  # fmt: skip
@pytest.mark.anyio
async def test_outputs_over_the_cap_are_not_exported(
    engine: DockerEngine, bundle: Path, script: str
) -> None:
    plan = make_plan(bundle, ["sh", "-c", script], limits=Limits(timeout=30, outputs=1 << 20))
    result = await engine.run(plan)
    assert result.outputs == ()
    assert not plan.output_dir.exists()
    assert any("exceed the 1048576-byte cap" in note for note in result.notes)


def test_exit_notes_name_out_of_memory_kills_for_docker_and_podman() -> None:
    plan = make_plan(Path("/b"), ["x"], limits=Limits(memory=128 << 20))
    unlimited = make_plan(Path("/b"), ["x"], limits=Limits(memory=None))
    assert _exit_note(137, True, plan) == (137, "killed: out of memory (limit 128Mi)")
    assert _exit_note(137, False, plan) == (
        137, "killed (137), probably out of memory (limit 128Mi)")  # fmt: skip
    assert _exit_note(137, False, unlimited) == (137, "killed (137)")
    assert _exit_note(3, False, plan) == (3, "")


@pytest.mark.anyio
async def test_concurrent_calls_each_get_their_own_container_and_outputs(
    engine: DockerEngine, bundle: Path
) -> None:
    plans = [
        make_plan(bundle, ["sh", "-c", f"echo {n} > /outputs/n.txt; echo {n}"]) for n in range(4)
    ]
    results: dict[int, Any] = {}

    async def one(n: int) -> None:
        results[n] = await engine.run(plans[n])

    async with anyio.create_task_group() as tg:
        for n in range(4):
            tg.start_soon(one, n)
    for n, plan in enumerate(plans):
        assert results[n].stdout == f"{n}\n"
        assert (plan.output_dir / "n.txt").read_text() == f"{n}\n"


@pytest.mark.anyio
async def test_a_tool_silent_for_longer_than_the_api_timeout_still_reports(
    engine: DockerEngine, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skillcell.engines import docker as docker_engine

    monkeypatch.setattr(docker_engine, "API_TIMEOUT", 1)  # requests give up after 1 s
    steps: list[str] = []

    async def progress(message: str) -> None:
        steps.append(message)

    plan = make_plan(bundle, ["sh", "-c", "sleep 2.5; echo late"])
    result = await engine.run(plan, progress)
    assert (result.exit_code, result.stdout) == (0, "late\n")
    assert steps == ["image ready", "exporting"]


# -- images and build hooks ------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_missing_image_that_cannot_be_pulled_is_an_engine_error_saying_what_to_do(
    engine: DockerEngine, bundle: Path
) -> None:
    image = f"skillcell-test/absent-{uuid.uuid4().hex[:8]}:1"
    with pytest.raises(EngineError, match="is not available locally and could not be pulled"):
        await engine.run(make_plan(bundle, ["true"], image=image))


@pytest.fixture
def build_plan(bundle: Path, api: Any) -> Iterator[ExecutionPlan]:
    """A plan with build hooks whose derived image is removed afterwards."""
    plan = make_plan(
        bundle,
        ["sh", "-c", "cat nonce; touch /workspace/x 2>/dev/null && echo writable || echo ro"],
        build_hooks=(
            "cat /proc/sys/kernel/random/uuid > /workspace/nonce",
            "test -f /workspace/echo_args.py",
        ),
        bundle_digest=uuid.uuid4().hex,  # a fresh digest: no image from an earlier test run
    )
    yield plan
    image = api.inspect_image(DEFAULT_IMAGE)["Id"]
    tag = build_tag(image, plan.build_hooks, plan.bundle_digest)
    try:
        api.remove_image(tag, force=True)
    except Exception:
        pass


@pytest.mark.anyio
async def test_build_hooks_run_once_and_later_calls_reuse_the_image_read_only(
    engine: DockerEngine, build_plan: ExecutionPlan, api: Any
) -> None:
    steps: list[str] = []

    async def progress(message: str) -> None:
        steps.append(message)

    first = await engine.run(build_plan, progress)
    assert any(step.startswith("running build hooks") for step in steps)
    steps.clear()
    second = await engine.run(replace(build_plan, call_id=uuid.uuid4().hex), progress)
    assert not any(step.startswith("running build hooks") for step in steps)
    assert first.exit_code == second.exit_code == 0, first.stderr
    nonce, mode = first.stdout.split()
    assert second.stdout.split() == [nonce, mode]  # the hook ran once: same nonce
    assert mode == "ro"
    assert not (build_plan.bundle / "nonce").exists()  # hooks never touch the host bundle
    assert containers_of(api, build_plan.call_id) == []


@pytest.mark.anyio
async def test_a_failing_build_hook_reports_its_log_tail_and_caches_nothing(
    engine: DockerEngine, bundle: Path, api: Any
) -> None:
    import docker.errors

    plan = make_plan(bundle, ["true"], bundle_digest=uuid.uuid4().hex,
                     build_hooks=("echo step one", "echo about to fail >&2; exit 7"))  # fmt: skip
    with pytest.raises(EngineError) as caught:
        await engine.run(plan)
    message = str(caught.value)
    assert "exit 7" in message and "about to fail" in message and "build hook 2" in message
    tag = build_tag(api.inspect_image(DEFAULT_IMAGE)["Id"], plan.build_hooks, plan.bundle_digest)
    with pytest.raises(docker.errors.ImageNotFound):
        api.inspect_image(tag)
    assert containers_of(api, plan.call_id) == []


@pytest.mark.anyio
async def test_cancelling_during_the_build_kills_the_build_and_caches_nothing(
    engine: DockerEngine, bundle: Path, api: Any
) -> None:
    import docker.errors

    plan = make_plan(bundle, ["true"], bundle_digest=uuid.uuid4().hex,
                     build_hooks=("sleep 30",))  # fmt: skip
    start = time.monotonic()
    with anyio.move_on_after(1.5):
        await engine.run(plan)
    assert time.monotonic() - start < 4
    assert containers_of(api, plan.call_id) == []
    tag = build_tag(api.inspect_image(DEFAULT_IMAGE)["Id"], plan.build_hooks, plan.bundle_digest)
    with pytest.raises(docker.errors.ImageNotFound):
        api.inspect_image(tag)


# -- the engine's own housekeeping -----------------------------------------------------------


def test_an_unreachable_api_is_reported_quickly_with_the_host() -> None:
    engine = DockerEngine(replace(Config(), docker_host="unix:///nonexistent/docker.sock"))
    start = time.monotonic()
    status = engine.available()
    assert time.monotonic() - start < 3.5
    assert not status
    assert status.reason.startswith("no Docker/Podman API at unix:///nonexistent/docker.sock: ")
    assert engine.available() is status  # cached: a second ask is free


@pytest.mark.anyio
async def test_without_the_sdk_the_engine_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "docker", None)  # import docker now raises ImportError
    engine = DockerEngine(Config())
    status = engine.available()
    assert not status
    assert status.reason == "Docker SDK not installed (pip install 'skillcell[docker]')"
    with pytest.raises(EngineUnavailable, match=r"pip install 'skillcell\[docker\]'"):
        await engine.run(make_plan(tmp_path, ["true"]))


def test_owner_labels_tell_dead_processes_from_live_ones() -> None:
    me = owner_label()
    host, boot, pid, start = me.split("/")
    finished = subprocess.Popen(["true"])
    finished.wait()
    assert owner_alive(me, me)
    assert not owner_alive(f"{host}/{boot}/{finished.pid}/123", me)
    assert not owner_alive(f"{host}/{boot}/{pid}/{int(start or 0) + 1}", me)  # pid reused
    assert not owner_alive(f"{host}/another-boot/{pid}/{start}", me)
    assert owner_alive(f"other-host/{boot}/{finished.pid}/1", me)
    assert not owner_alive("", me)


@pytest.mark.anyio
async def test_first_use_sweeps_leftovers_of_dead_processes_and_spares_live_ones(
    api: Any, bundle: Path
) -> None:
    host, boot, _, _ = owner_label().split("/")
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = f"{host}/{boot}/{finished.pid}/1"
    ids = {}
    for name, owner in (("dead", dead), ("live", owner_label())):
        labels = {"skillcell": "1", "skillcell.call": uuid.uuid4().hex, "skillcell.owner": owner}
        ids[name] = api.create_container(DEFAULT_IMAGE, entrypoint=["sleep"], command=["300"],
                                         labels=labels)["Id"]  # fmt: skip
        api.start(ids[name])
    engine = DockerEngine(Config())
    try:
        await engine.run(make_plan(bundle, ["true"]))
        left = {c["Id"] for c in api.containers(all=True, filters={"label": "skillcell=1"})}
        assert ids["dead"] not in left
        assert ids["live"] in left
    finally:
        await engine.aclose()
        for container in ids.values():
            try:
                api.remove_container(container, force=True)
            except Exception:
                pass


def test_exec_argv_runs_the_command_in_the_same_sandbox(bundle: Path, api: Any) -> None:
    engine = DockerEngine(Config())
    plan = make_plan(bundle, ["true"], args={"x": 1}, env={"GREETING": "hi"},
                     secrets=Secrets({"API_TOKEN": "exec-secret"}),
                     limits=Limits(timeout=30, memory=256 << 20, pids=64))  # fmt: skip
    script = (
        "id -u; cat /inputs/args.json; echo; echo $GREETING $API_TOKEN; ls /workspace;"
        " echo out > /outputs/o.txt; touch /workspace/x 2>/dev/null || echo ro;"
        " cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '"
    )
    argv = engine.exec_argv(plan, ["sh", "-c", script])
    assert "--network" in argv and argv[argv.index("--network") + 1] == "none"
    assert "exec-secret" not in " ".join(argv)  # passed by name, the value via the environment
    inputs, staging = exec_dirs(plan)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                              env={**os.environ, "API_TOKEN": "exec-secret"}, stdin=subprocess.DEVNULL)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "65534", '{"x": 1}', "hi exec-secret", "echo_args.py", "ro", "lo"]  # fmt: skip
        export = outputs.publish(staging, plan.output_dir, plan.limits.outputs)
        assert [p.name for p in export.files] == ["o.txt"]
        assert containers_of(api, plan.call_id) == []
    finally:
        outputs.discard(staging)
        import shutil

        shutil.rmtree(inputs, ignore_errors=True)
