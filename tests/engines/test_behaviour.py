"""The behaviour every sandbox engine shares, checked against the real sandbox, as an attacker
would try it. Each test runs once per engine available here (bwrap, docker)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from skillcell.config import Config
from skillcell.engines import Engine
from skillcell.plan import Limits, Secrets

from .conftest import make_plan, python

pytestmark = pytest.mark.anyio

HOSTILE = [
    "a b; rm -rf / $(id) `id` && echo pwned | cat > /tmp/x",
    "\"double\" 'single' \\back\\slash",
    "line one\nline two\r\n",
    "--help",
    "*",
    "${HOME} $PATH ~",
    "ünïcödé \u202e reversed \u200b",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_hostile_argument_arrives_as_one_literal_argv_entry(engine, config, bundle):
    plan = make_plan(config, bundle, python("import sys, json; print(json.dumps(sys.argv[1:]))",
                                            *HOSTILE))
    result = await engine.run(plan)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == HOSTILE


async def test_exit_code_stdout_and_stderr_come_back(engine, config, bundle):
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(7)"
    result = await engine.run(make_plan(config, bundle, python(code)))
    assert (result.exit_code, result.stdout.strip(), result.stderr.strip()) == (7, "out", "err")
    assert result.engine == engine.name


async def test_the_tool_runs_in_the_bundle_as_an_unprivileged_user(engine, config, bundle):
    code = "import os; print(os.getcwd(), os.getuid(), open('hello.txt').read().strip())"
    result = await engine.run(make_plan(config, bundle, python(code)))
    assert result.stdout.strip().split(maxsplit=2) == ["/workspace", "65534", "hello from the bundle"]


async def test_the_bundle_is_read_only(engine, config, bundle):
    code = "open('/workspace/evil.txt', 'w').write('x')"
    result = await engine.run(make_plan(config, bundle, python(code)))
    assert result.exit_code != 0
    assert "Read-only file system" in result.stderr or "Permission denied" in result.stderr
    assert not (bundle / "evil.txt").exists()


@pytest.mark.parametrize(
    "path",
    ["/etc/shadow", "/root", "/var/run/docker.sock", "/run/docker.sock", str(Path.cwd())],
    ids=["shadow", "root-home", "docker-socket", "run-docker-socket", "project-checkout"],
)
async def test_host_secrets_and_sockets_are_invisible(engine, config, bundle, path):
    code = (
        "import os, sys\n"
        "p = sys.argv[1]\n"
        "try:\n"
        "    print(os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read()[:50])\n"
        "except OSError as e:\n"
        "    print('denied', e.errno); sys.exit(3)\n"
    )
    result = await engine.run(make_plan(config, bundle, python(code, path)))
    if result.exit_code == 0:
        # Only an empty placeholder directory may exist (an image's own empty /root).
        assert result.stdout.strip() == "[]", result.stdout
    else:
        assert result.exit_code == 3, result.stderr


async def test_the_environment_holds_only_declared_variables(engine, config, bundle):
    os.environ["SKILLCELL_TEST_HOST_ONLY"] = "host-secret-value"
    try:
        code = "import os, json; print(json.dumps(dict(os.environ)))"
        plan = make_plan(config, bundle, python(code), env={"GREETING": "hi"},
                         secrets=Secrets({"API_KEY": "k-123"}))
        result = await engine.run(plan)
    finally:
        del os.environ["SKILLCELL_TEST_HOST_ONLY"]
    env = json.loads(result.stdout)
    assert env["GREETING"] == "hi" and env["API_KEY"] == "k-123"
    assert "SKILLCELL_TEST_HOST_ONLY" not in env
    assert not {k for k in env if "DOCKER" in k or k.startswith("SKILLCELL")}


async def test_arguments_are_readable_as_args_json(engine, config, bundle):
    plan = make_plan(config, bundle, python("print(open('/inputs/args.json').read())"),
                     args={"q": "x; y", "n": 3})
    result = await engine.run(plan)
    assert json.loads(result.stdout) == {"q": "x; y", "n": 3}


def _listener() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(10)

    def accept() -> None:
        try:
            while True:
                conn, _ = server.accept()
                conn.sendall(b"hello\n")
                conn.close()
        except OSError:
            return

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1]


CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=3)\n"
    "    print(s.recv(10).decode().strip())\n"
    "except OSError as e:\n"
    "    print('blocked', e); sys.exit(4)\n"
)


async def test_a_closed_world_tool_cannot_reach_a_server_on_the_host(engine, config, bundle):
    server, port = _listener()
    try:
        result = await engine.run(make_plan(config, bundle, python(CONNECT, str(port))))
    finally:
        server.close()
    assert result.exit_code == 4, result.stdout + result.stderr


async def test_a_timeout_kills_the_tool_and_leaves_nothing_running(engine, config, bundle):
    marker = f"{time.time_ns() % 10**6}.5"
    plan = make_plan(config, bundle, ["sleep", marker], limits=Limits(timeout=2))
    start = time.monotonic()
    result = await engine.run(plan)
    elapsed = time.monotonic() - start
    assert result.timed_out and result.exit_code == 124
    assert elapsed < 2 + 1.5, elapsed
    assert not _host_processes_with(marker)


async def test_cancelling_a_call_kills_the_sandbox(engine, config, bundle):
    marker = f"{time.time_ns() % 10**6}.25"
    plan = make_plan(config, bundle, ["sleep", marker])
    with anyio.move_on_after(1.5):
        await engine.run(plan)
    await anyio.sleep(0.2)
    assert not _host_processes_with(marker)


def _host_processes_with(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(pid))
    return found


async def test_a_memory_limit_stops_a_large_allocation(engine, config, bundle):
    code = "x = bytearray(1 << 30); x[::4096] = b'x' * len(x[::4096]); print('allocated')"
    plan = make_plan(config, bundle, python(code), limits=Limits(timeout=30, memory=128 << 20))
    result = await engine.run(plan)
    assert result.exit_code != 0
    assert "allocated" not in result.stdout


async def test_a_fork_bomb_is_bounded_by_the_pids_limit(engine, config, bundle):
    code = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    while n < 2000:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30); os._exit(0)\n"
        "        n += 1\n"
        "except OSError:\n"
        "    pass\n"
        "print(n)\n"
    )
    plan = make_plan(config, bundle, python(code), limits=Limits(timeout=20, pids=64))
    result = await engine.run(plan)
    assert int(result.stdout.split()[0]) < 64, result.stdout
    assert not result.timed_out  # the sleeping children died with the sandbox


async def test_a_flood_of_stdout_is_capped_and_the_call_returns(engine, config, bundle):
    code = "import sys\nfor _ in range(100): sys.stdout.write('x' * 1_000_000)\n"
    plan = make_plan(config, bundle, python(code),
                     limits=Limits(timeout=60, stdout=64 << 10))  # fmt: skip
    result = await engine.run(plan)
    assert result.exit_code == 0
    assert result.stdout_truncated
    assert result.stdout.startswith("x" * (64 << 10))
    assert len(result.stdout) < (64 << 10) + 200


async def test_files_written_to_outputs_are_exported_to_a_fresh_directory(engine, config, bundle):
    code = (
        "import os\n"
        "os.makedirs('/outputs/sub')\n"
        "open('/outputs/report.txt', 'w').write('report')\n"
        "open('/outputs/sub/data.json', 'w').write('{}')\n"
    )
    plan = make_plan(config, bundle, python(code))
    result = await engine.run(plan)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.relative_to(plan.output_dir).as_posix() for p in result.outputs) == [
        "report.txt",
        "sub/data.json",
    ]
    assert (plan.output_dir / "report.txt").read_text() == "report"
    assert not list((config.output_root / ".staging").glob("*"))


async def test_two_calls_never_see_each_others_outputs(engine, config, bundle):
    code = "import os, sys; print(os.listdir('/outputs')); open('/outputs/' + sys.argv[1], 'w')"
    first = await engine.run(make_plan(config, bundle, python(code, "one")))
    second = await engine.run(make_plan(config, bundle, python(code, "two")))
    assert first.stdout.strip() == second.stdout.strip() == "[]"
    assert first.output_dir != second.output_dir


async def test_a_symlink_in_outputs_is_not_exported(engine, config, bundle):
    code = "import os; os.symlink('/etc/shadow', '/outputs/leak'); open('/outputs/ok', 'w')"
    plan = make_plan(config, bundle, python(code))
    result = await engine.run(plan)
    assert [p.name for p in result.outputs] == ["ok"]
    assert not (plan.output_dir / "leak").exists()


async def test_outputs_over_the_cap_are_not_exported(engine, config, bundle):
    code = "open('/outputs/big', 'wb').write(b'x' * 3_000_000)"
    limits = Limits(timeout=30, outputs=1_000_000)
    plan = make_plan(config, bundle, python(code), limits=limits)
    result = await engine.run(plan)
    assert result.outputs == ()
    assert not plan.output_dir.exists()


async def test_an_input_file_is_readable_under_inputs(engine, config: Config, bundle, tmp_path):
    from skillcell.plan import InputFile

    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    plan = make_plan(config, bundle, python("print(open('/inputs/files/f/data.csv').read())"))
    plan = replace(plan, input_files=(InputFile(data, "/inputs/files/f/data.csv", "f", data.stat().st_dev, data.stat().st_ino),))
    result = await engine.run(plan)
    assert result.stdout.strip() == "a,b\n1,2"


async def test_inputs_are_read_only(engine: Engine, config, bundle):
    result = await engine.run(make_plan(config, bundle, python("open('/inputs/x', 'w')")))
    assert result.exit_code != 0
