"""The Dagger engine's real code against the recording Dagger API endpoint (tests/dagger_api.py).

No Dagger engine runs here, so these tests check what a real one would be asked to do: the
pipeline dagger-io sends, query by query, validated against the real Dagger schema (the
endpoint fails the test on any invalid query). They skip when that schema file is missing.
What only a real engine can show (the exec really killed at its limit, /outputs owned by
the sandbox user, the cache hit of a cacheable call) is listed in the engine's docstring.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import graphql
import pytest

from skillcell import outputs
from skillcell.config import Config
from skillcell.engines import Engines
from skillcell.engines.dagger import CALL_ENV, DEFAULT_IMAGE, USER, DaggerEngine, exec_argv
from skillcell.errors import EngineError, EngineUnavailable, NoEngine
from skillcell.plan import (
    CPUS,
    IMAGE,
    MEMORY,
    NETWORK_OFF,
    PIDS,
    ExecutionPlan,
    InputFile,
    Limits,
    Secrets,
)
from tests.dagger_api import Call, DaggerAPI, Step, running_dagger_api
from tests.engines.conftest import make_plan

pytest.importorskip("dagger")

pytestmark = pytest.mark.anyio

HOSTILE = "a b; rm -rf / $(id)"
SESSION_VARS = ("DAGGER_SESSION_PORT", "DAGGER_SESSION_TOKEN")
CLI_VARS = ("_EXPERIMENTAL_DAGGER_CLI_BIN", "_EXPERIMENTAL_DAGGER_RUNNER_HOST")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # dagger-io (through gql) needs asyncio


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[DaggerAPI]:
    monkeypatch.delenv("_EXPERIMENTAL_DAGGER_RUNNER_HOST", raising=False)
    with running_dagger_api(monkeypatch) as endpoint:
        yield endpoint


@pytest.fixture
async def engine(api: DaggerAPI, config: Config) -> AsyncIterator[DaggerEngine]:
    dagger_engine = DaggerEngine(config)
    yield dagger_engine
    await dagger_engine.aclose()


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle"
    path.mkdir()
    (path / "run.py").write_text("print('hi')\n")
    return path


def plan_for(config: Config, bundle: Path, *argv: str, **changes: Any) -> ExecutionPlan:
    return make_plan(config, bundle, argv or ("python3", "run.py"), **changes)


# --------------------------------------------------------------------------- reading back


def field_args(query: str, name: str) -> list[dict[str, graphql.ValueNode]]:
    """The argument nodes of every `name` field in a query text, parsed."""
    found: list[dict[str, graphql.ValueNode]] = []

    class Visitor(graphql.Visitor):
        def enter_field(self, node: graphql.FieldNode, *_: Any) -> None:
            if node.name.value == name:
                found.append({a.name.value: a.value for a in node.arguments or ()})

    graphql.visit(graphql.parse(query), Visitor())
    return found


def values(query: str, name: str, arg: str) -> list[Any]:
    return [graphql.value_from_ast_untyped(a[arg]) for a in field_args(query, name) if arg in a]


def tool_execs(api: DaggerAPI) -> list[Call]:
    """The `sync` of each call's pipeline (the one whose exec is the tool's, under timeout)."""
    return [c for c in api.calls_named("sync", "Container") if (c.argv or [""])[0] == "timeout"]


def tool_chain(api: DaggerAPI) -> tuple[Step, ...]:
    return tool_execs(api)[-1].chain


def steps(chain: tuple[Step, ...], name: str) -> list[tuple[int, Step]]:
    return [(i, s) for i, s in enumerate(chain) if s.field == name]


def env_of(chain: tuple[Step, ...]) -> dict[str, str]:
    return {s.args["name"]: s.args["value"] for _, s in steps(chain, "withEnvVariable")}


def writes_outputs(files: dict[str, str]) -> Any:
    """An `export` response that writes files where the engine asked, like the CLI would."""

    def export(call: Call) -> str:
        target = Path(call.all_args["path"])
        for name, text in files.items():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_text(text)
        return str(target)

    return export


# --------------------------------------------------------------------------- the pipeline


async def test_pipeline_runs_the_image_hooks_before_inputs_and_the_argv_whole(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n")
    plan = plan_for(
        config,
        bundle,
        "python3",
        "run.py",
        HOSTILE,
        image="python:3.12-slim",
        build_hooks=("pip install -r requirements.txt", "npm ci"),
        args={"text": HOSTILE},
        env={"MODE": "fast"},
        input_files=(InputFile(data, "/inputs/files/data.csv", "data", data.stat().st_dev, data.stat().st_ino),),
        limits=Limits(timeout=30),
    )
    api.responses["stdout"] = "ok\n"

    result = await engine.run(plan)

    assert (result.exit_code, result.stdout, result.timed_out) == (0, "ok\n", False)
    assert {c.args["address"] for c in api.calls_named("from")} == {"python:3.12-slim"}

    # The exec's argv travels as one GraphQL list: the wrapper, then the tool's argv as-is.
    expected = ["timeout", "-s", "KILL", "30", "python3", "run.py", HOSTILE]
    (exec_query,) = [q for q in api.api_queries if "timeout" in q.text and "withExec" in q.text]
    (exec_args,) = [a for a in field_args(exec_query.text, "withExec") if "expect" in a]
    assert isinstance(exec_args["args"], graphql.ListValueNode)
    assert graphql.value_from_ast_untyped(exec_args["args"]) == expected
    assert graphql.print_ast(exec_args["expect"]) == "ANY"

    chain = tool_chain(api)
    execs = steps(chain, "withExec")
    assert [s.args["args"] for _, s in execs] == [
        ["sh", "-c", "pip install -r requirements.txt"],
        ["sh", "-c", "npm ci"],
        expected,
    ]
    hooks_end = execs[1][0]
    # The hooks come before anything of this call, so their layers are cached across calls.
    ((args_at, args_step),) = steps(chain, "withNewFile")
    assert args_step.args["path"] == "/inputs/args.json"
    assert json.loads(args_step.args["contents"]) == {"text": HOSTILE}
    ((input_at, input_step),) = steps(chain, "withFile")
    assert input_step.args["path"] == "/inputs/files/data.csv"
    assert api.describe(input_step.args["source"]) == f'host.file(path: "{data}")'
    first_call_step = min(
        i
        for i, s in enumerate(chain)
        if s.field in ("withEnvVariable", "withSecretVariable", "withNewFile", "withFile")
    )
    assert hooks_end < first_call_step <= args_at < input_at < execs[-1][0]

    # The hooks got the bundle at /workspace and the package caches; the tool gets neither cache.
    ((copy_at, copy),) = [
        (i, s) for i, s in steps(chain, "withDirectory") if s.args["path"] == "/workspace"
    ]
    assert api.describe(copy.args["source"]).startswith(f'host.directory(path: "{bundle}"')
    caches = {
        s.args["path"]: (i, api.describe(s.args["cache"]))
        for i, s in steps(chain, "withMountedCache")
    }
    assert {path: key for path, (_, key) in caches.items()} == {
        "/root/.cache/pip": 'cacheVolume(key: "skillcell-pip")',
        "/root/.npm": 'cacheVolume(key: "skillcell-npm")',
        "/var/cache/apt": 'cacheVolume(key: "skillcell-apt")',
    }
    assert all(copy_at < i < execs[0][0] for i, _ in caches.values())
    unmounted = {s.args["path"]: i for i, s in steps(chain, "withoutMount")}
    assert set(unmounted) == set(caches)
    assert all(hooks_end < i < first_call_step for i in unmounted.values())

    # The sandbox: /workspace read-only (the hooks' result), workdir, env, user, /outputs.
    ((_, mount),) = steps(chain, "withMountedDirectory")
    assert mount.args["path"] == "/workspace" and mount.args["readOnly"] is True
    assert api.describe(mount.args["source"]).endswith(
        'withExec(args: ["sh", "-c", "npm ci"])'
        '.withoutMount(path: "/root/.cache/pip")'
        '.withoutMount(path: "/root/.npm")'
        '.withoutMount(path: "/var/cache/apt")'
        '.directory(path: "/workspace")'
    )
    assert [s.args["path"] for _, s in steps(chain, "withWorkdir")][-1] == "/workspace"
    assert env_of(chain) == {
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "MODE": "fast",
        CALL_ENV: plan.call_id,
    }
    ((user_at, user),) = steps(chain, "withUser")
    assert user.args["name"] == USER == "65534:65534"
    (outputs_step,) = [s for _, s in steps(chain, "withDirectory") if s.args["path"] == "/outputs"]
    assert outputs_step.args["owner"] == USER
    assert api.describe(outputs_step.args["source"]) == "directory"
    assert user_at < execs[-1][0]


async def test_without_hooks_the_bundle_is_mounted_read_only_and_the_default_image_used(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    await engine.run(plan_for(config, bundle, image=None))

    assert {c.args["address"] for c in api.calls_named("from")} == {DEFAULT_IMAGE}
    chain = tool_chain(api)
    assert [s.args["args"][:3] for _, s in steps(chain, "withExec")] == [["timeout", "-s", "KILL"]]
    assert not steps(chain, "withMountedCache") and not steps(chain, "withoutMount")
    ((_, mount),) = steps(chain, "withMountedDirectory")
    assert (mount.args["path"], mount.args["readOnly"]) == ("/workspace", True)
    assert api.describe(mount.args["source"]) == (
        f'host.directory(path: "{bundle}", exclude: [".git", "__pycache__"])'
    )


async def test_secrets_travel_only_through_set_secret_and_never_in_plain_text(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    secret = "s3cr3t-Value-9f8e"
    plan = plan_for(config, bundle, secrets=Secrets({"API_TOKEN": secret}), env={"X": "1"})

    await engine.run(plan)

    set_secret_queries = [q for q in api.api_queries if field_args(q.text, "setSecret")]
    (query,) = set_secret_queries
    (name,) = values(query.text, "setSecret", "name")
    assert values(query.text, "setSecret", "plaintext") == [secret]
    assert query.text.count(secret) == 1  # only as the plaintext argument
    assert secret not in name and name.startswith("skillcell-API_TOKEN-")
    for other in api.api_queries:
        if other is not query:
            assert secret not in other.text, other.text

    chain = tool_chain(api)
    ((_, step),) = steps(chain, "withSecretVariable")
    assert step.args["name"] == "API_TOKEN"
    assert api.describe(step.args["secret"]) == (
        f'setSecret(name: "{name}", plaintext: "{secret}")'
    )
    assert "API_TOKEN" not in env_of(chain)


async def test_two_secret_values_never_share_a_secret_name(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    for value in ("first-value", "second-value", "first-value"):
        await engine.run(plan_for(config, bundle, secrets=Secrets({"TOKEN": value})))

    names = [v for q in api.api_queries for v in values(q.text, "setSecret", "name")]
    first, second, again = names
    assert first != second  # Dagger keys secrets by name: different values, different keys
    assert first == again  # the same value keeps its name, so a cacheable call can hit
    assert DaggerEngine(config).secret_name("TOKEN", "first-value") != first  # per-process key


@pytest.mark.parametrize("cacheable", [False, True], ids=["not-cacheable", "cacheable"])
async def test_a_not_cacheable_call_busts_the_cache_right_before_its_exec(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path, cacheable: bool
) -> None:
    plan = plan_for(config, bundle, cacheable=cacheable)

    await engine.run(plan)

    chain = tool_chain(api)
    busters = [s for _, s in steps(chain, "withEnvVariable") if s.args["name"] == CALL_ENV]
    if cacheable:
        assert busters == []
    else:
        assert busters == [
            Step("Container", "withEnvVariable", {"name": CALL_ENV, "value": plan.call_id})
        ]
        assert chain[-2] == busters[0] and chain[-1].field == "withExec"


async def test_outputs_are_exported_to_staging_then_published(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    api.responses["Directory.export"] = writes_outputs({"report.txt": "done", "sub/x.json": "{}"})
    plan = plan_for(config, bundle)

    result = await engine.run(plan)

    (export,) = api.calls_named("export", "Directory")
    assert export.chain[-1] == Step("Container", "directory", {"path": "/outputs"})
    staging = plan.output_dir.parent / outputs.STAGING / plan.output_dir.name
    assert export.args == {"path": str(staging)}
    assert not staging.exists()
    assert result.output_dir == plan.output_dir
    assert result.outputs == (plan.output_dir / "report.txt", plan.output_dir / "sub/x.json")
    assert (plan.output_dir / "report.txt").read_text() == "done"


async def test_the_exit_code_and_streams_come_back_in_one_query_after_one_sync(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    api.responses.update({"exitCode": 3, "stdout": "partial\n", "stderr": "boom\n"})

    result = await engine.run(plan_for(config, bundle))

    assert (result.exit_code, result.stdout, result.stderr) == (3, "partial\n", "boom\n")
    assert not result.timed_out and not result.ok
    assert len(tool_execs(api)) == 1  # the pipeline is evaluated once
    reads = [q for q in api.api_queries if field_args(q.text, "exitCode")]
    assert len(reads) == 1 and "withExec" not in reads[0].text
    (node,) = field_args(reads[0].text, "node")
    assert api.chain(graphql.value_from_ast_untyped(node["id"]))[-1].field == "withExec"
    assert {"stdout", "stderr"} <= {c.field for c in api.calls if c.query_index == reads[0].index}


async def test_streams_are_capped_with_a_mark(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    api.responses.update({"stdout": "x" * 100, "stderr": "e" * 5})
    plan = plan_for(config, bundle, limits=Limits(stdout=10, stderr=10))

    result = await engine.run(plan)

    assert result.stdout.startswith("x" * 10 + "\n[skillcell: output truncated, 90 more bytes")
    assert result.stdout_truncated and not result.stderr_truncated
    assert result.stderr == "eeeee"


# --------------------------------------------------------------------------- time limits


async def test_exit_124_is_a_timeout(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    api.responses["exitCode"] = 124

    result = await engine.run(plan_for(config, bundle, limits=Limits(timeout=5)))

    assert (result.exit_code, result.timed_out) == (124, True)
    assert any("timed out after 5s" in note for note in result.notes)


async def test_killed_at_the_limit_is_a_timeout_with_what_it_printed(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    def killed(call: Call) -> int:
        time.sleep(0.1)  # the limit below passes while the tool "runs"
        return 137

    api.responses.update({"exitCode": killed, "stdout": "so far\n", "stderr": ""})
    plan = plan_for(config, bundle, limits=Limits(timeout=0.05))

    result = await engine.run(plan)

    assert exec_argv(plan)[:4] == ["timeout", "-s", "KILL", "0.05"]
    assert (result.exit_code, result.timed_out, result.stdout) == (124, True, "so far\n")
    assert result.outputs == () and not api.calls_named("export")
    assert any("killed inside the container" in note for note in result.notes)


async def test_a_sigkill_before_the_limit_is_not_called_a_timeout(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    api.responses["exitCode"] = 137

    result = await engine.run(plan_for(config, bundle, limits=Limits(timeout=60)))

    assert (result.exit_code, result.timed_out) == (137, False)
    assert any("killed by signal 9" in note for note in result.notes)


async def test_the_client_gives_up_when_the_engine_does_not_answer(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    def hang(call: Call) -> None:
        if (call.argv or [""])[0] == "timeout":
            time.sleep(1.5)

    api.failures["sync"] = hang
    engine.client_grace = 0.1
    plan = plan_for(config, bundle, limits=Limits(timeout=0.1))

    with anyio.fail_after(5):
        started = time.monotonic()
        result = await engine.run(plan)

    assert time.monotonic() - started < 1.4
    assert (result.exit_code, result.timed_out) == (124, True)
    assert any("no answer from the Dagger engine" in note for note in result.notes)


async def test_an_image_without_timeout_is_named_in_the_result(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    api.responses.update({"exitCode": 127, "stderr": "timeout: not found\n"})

    result = await engine.run(plan_for(config, bundle, image="distroless/python3"))

    assert result.exit_code == 127 and not result.timed_out
    assert any("distroless/python3 seems to have no `timeout`" in n for n in result.notes)


@pytest.mark.parametrize(
    ("limit", "text"),
    [(30, "30"), (2.5, "2.5"), (1e6, "1000000"), (0.0001, "0.001"), (0.0, "1")],
    ids=["whole", "fraction", "large", "tiny", "zero"],
)
def test_the_timeout_wrapper_takes_plain_seconds(
    config: Config, bundle: Path, limit: float, text: str
) -> None:
    plan = plan_for(config, bundle, "echo", HOSTILE, limits=Limits(timeout=limit))
    assert exec_argv(plan) == ["timeout", "-s", "KILL", text, "echo", HOSTILE]


# --------------------------------------------------------------------------- errors


async def test_a_query_error_is_an_engine_error_naming_the_image(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    api.failures["from"] = api.query_error("pull access denied for python:9")

    with pytest.raises(EngineError) as info:
        await engine.run(plan_for(config, bundle, image="python:9"))

    assert not isinstance(info.value, EngineUnavailable)
    assert "preparing python:9" in str(info.value) and "pull access denied" in str(info.value)
    assert not tool_execs(api)  # the tool never ran


async def test_a_failing_build_hook_is_an_engine_error_naming_the_hook(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    hooks = ("apt-get update", "pip install nope")
    api.responses["exitCode"] = lambda call: 1 if call.argv == ["sh", "-c", hooks[1]] else 0
    api.responses["stderr"] = "ERROR: No matching distribution found for nope\n"

    with pytest.raises(EngineError) as info:
        await engine.run(plan_for(config, bundle, build_hooks=hooks))

    message = str(info.value)
    assert "build hook 2 (`pip install nope`) failed with exit 1" in message
    assert "No matching distribution found for nope" in message
    assert not tool_execs(api)


async def test_a_failed_export_is_an_engine_error(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    api.failures["export"] = api.query_error("failed to copy /outputs: no space left on device")
    plan = plan_for(config, bundle)

    with pytest.raises(EngineError, match="exporting /outputs.*no space left on device"):
        await engine.run(plan)

    assert not plan.output_dir.exists()
    assert not (plan.output_dir.parent / outputs.STAGING / plan.output_dir.name).exists()


async def test_secrets_are_scrubbed_from_engine_errors(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    api.failures["withMountedDirectory"] = api.query_error("mount failed near hunter2-secret")
    plan = plan_for(config, bundle, secrets=Secrets({"PW": "hunter2-secret"}))

    with pytest.raises(EngineError) as info:
        await engine.run(plan)

    assert "hunter2-secret" not in str(info.value) and "mount failed" in str(info.value)


async def test_a_lost_session_is_an_engine_error_and_the_next_call_reconnects(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    await engine.run(plan_for(config, bundle))
    api.stop()  # the engine dies mid-session

    with pytest.raises(EngineError) as info:
        await engine.run(plan_for(config, bundle))

    assert "lost the Dagger session" in str(info.value)
    status = engine.available()
    assert not status and "no Dagger engine reachable" in status.reason
    with pytest.raises(EngineUnavailable, match="no Dagger engine reachable"):
        await engine.run(plan_for(config, bundle))


async def test_without_any_engine_available_is_false_fast_and_nothing_is_downloaded(
    monkeypatch: pytest.MonkeyPatch, config: Config, bundle: Path, tmp_path: Path
) -> None:
    for var in (*SESSION_VARS, *CLI_VARS):
        monkeypatch.delenv(var, raising=False)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    engine = DaggerEngine(config)

    started = time.monotonic()
    status = engine.available()
    assert time.monotonic() - started < 0.5
    assert not status
    assert status.reason.startswith("no Dagger engine reachable: no DAGGER_SESSION_PORT/")
    assert (
        "no dagger CLI on PATH" in status.reason
        and "https://docs.dagger.io/install" in status.reason
    )

    with pytest.raises(EngineUnavailable, match="no Dagger engine reachable"):
        await engine.run(plan_for(config, bundle))
    assert not (tmp_path / "cache").exists()  # dagger-io never tried to download its CLI
    await engine.aclose()


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"DAGGER_SESSION_PORT": "1"}, "must be set together"),
        ({"DAGGER_SESSION_PORT": "http", "DAGGER_SESSION_TOKEN": "t"}, "is not a port number"),
        ({"DAGGER_SESSION_PORT": "PORT", "DAGGER_SESSION_TOKEN": "t"}, "nothing answers on"),
        ({"_EXPERIMENTAL_DAGGER_CLI_BIN": "/nonexistent/dagger"}, "is not an executable file"),
    ],
    ids=["port-without-token", "bad-port", "closed-port", "missing-cli-bin"],
)
def test_unusable_settings_say_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, config: Config, env: dict[str, str], reason: str
) -> None:
    for var in (*SESSION_VARS, *CLI_VARS):
        monkeypatch.delenv(var, raising=False)
    for key, value in env.items():
        if value == "PORT":
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                value = str(sock.getsockname()[1])  # free once closed: nothing listens
        monkeypatch.setenv(key, value)

    started = time.monotonic()
    status = DaggerEngine(config).available()

    assert time.monotonic() - started < 1.0
    assert not status and status.reason.startswith("no Dagger engine reachable: ")
    assert reason in status.reason


def fake_cli(directory: Path, api: DaggerAPI) -> Path:
    """A `dagger` that answers `dagger session` like the real CLI: one JSON line with the
    session's port and token, then it lives until its stdin closes. It notes what it saw."""
    directory.mkdir(exist_ok=True)
    cli = directory / "dagger"
    log = directory / "log"
    cli.write_text(
        "#!/bin/sh\n"
        f'echo "$*" > {log}.args\n'
        f'echo "${{_EXPERIMENTAL_DAGGER_RUNNER_HOST:-unset}}" > {log}.runner\n'
        f'echo \'{{"port": {api.port}, "session_token": "{api.token}"}}\'\n'
        "cat > /dev/null\n"
        f"echo closed > {log}.closed\n"
    )
    cli.chmod(cli.stat().st_mode | stat.S_IXUSR)
    return cli


async def test_a_dagger_cli_on_path_is_started_once_with_the_runner_host_passed_through(
    api: DaggerAPI,
    monkeypatch: pytest.MonkeyPatch,
    config: Config,
    bundle: Path,
    tmp_path: Path,
) -> None:
    cli = fake_cli(tmp_path / "bin", api)
    for var in SESSION_VARS:
        monkeypatch.delenv(var)
    monkeypatch.setenv("PATH", f"{cli.parent}:/usr/bin:/bin")
    monkeypatch.setenv("_EXPERIMENTAL_DAGGER_RUNNER_HOST", "tcp://engine.example:1234")
    engine = DaggerEngine(config)

    status = engine.available()
    assert status and str(cli) in status.reason and "tcp://engine.example:1234" in status.reason
    for _ in range(2):
        result = await engine.run(plan_for(config, bundle))
        assert result.exit_code == 0
    log = cli.parent / "log"
    assert log.with_suffix(".args").read_text().startswith("session --label")
    assert log.with_suffix(".runner").read_text().strip() == "tcp://engine.example:1234"
    assert "_EXPERIMENTAL_DAGGER_CLI_BIN" not in os.environ  # pointed at only while connecting
    assert sum(q.introspection for q in api.queries) == 1
    assert not log.with_suffix(".closed").exists()

    await engine.aclose()
    assert log.with_suffix(".closed").read_text().strip() == "closed"  # the session ended


def test_a_dagger_cli_without_a_container_runtime_is_not_available(
    monkeypatch: pytest.MonkeyPatch, config: Config, tmp_path: Path
) -> None:
    for var in (*SESSION_VARS, *CLI_VARS):
        monkeypatch.delenv(var, raising=False)
    cli = tmp_path / "bin" / "dagger"
    cli.parent.mkdir()
    cli.write_text("#!/bin/sh\nexit 1\n")
    cli.chmod(0o755)
    monkeypatch.setenv("PATH", str(cli.parent))

    status = DaggerEngine(config).available()

    assert not status and "no container runtime" in status.reason
    assert "_EXPERIMENTAL_DAGGER_RUNNER_HOST" in status.reason


async def test_a_cli_that_cannot_start_an_engine_makes_the_engine_unavailable_for_a_while(
    monkeypatch: pytest.MonkeyPatch, config: Config, bundle: Path, tmp_path: Path
) -> None:
    for var in (*SESSION_VARS, *CLI_VARS):
        monkeypatch.delenv(var, raising=False)
    cli = tmp_path / "bin" / "dagger"
    cli.parent.mkdir()
    cli.write_text("#!/bin/sh\necho 'failed to connect to the docker API' >&2\nexit 1\n")
    cli.chmod(0o755)
    monkeypatch.setenv("_EXPERIMENTAL_DAGGER_CLI_BIN", str(cli))
    monkeypatch.setenv("_EXPERIMENTAL_DAGGER_RUNNER_HOST", "docker-container://gone")
    engine = DaggerEngine(config)
    assert engine.available()

    with pytest.raises(EngineUnavailable) as info:
        await engine.run(plan_for(config, bundle))

    assert "Dagger engine error: could not open a session" in str(info.value)
    assert "failed to connect to the docker API" in str(info.value)
    status = engine.available()  # so selection falls back instead of failing every call
    assert not status and status.reason.startswith("Dagger engine error:")


# --------------------------------------------------------------------------- session, policy


async def test_one_session_serves_many_calls_until_aclose(
    api: DaggerAPI, engine: DaggerEngine, config: Config, bundle: Path
) -> None:
    def connects() -> int:
        return sum(q.introspection for q in api.queries)

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(engine.run, plan_for(config, bundle))
    await engine.run(plan_for(config, bundle))

    assert connects() == 1
    assert sum(bool(field_args(q.text, "version")) for q in api.api_queries) == 1
    assert len(tool_execs(api)) == 5

    await engine.aclose()
    await engine.run(plan_for(config, bundle))
    assert connects() == 2


def test_dagger_cannot_enforce_network_off_or_resource_limits(config: Config, bundle: Path) -> None:
    engine = DaggerEngine(config)
    assert engine.unsupported(plan_for(config, bundle)) == {NETWORK_OFF, MEMORY, CPUS, PIDS}
    assert IMAGE not in engine.unsupported(plan_for(config, bundle, image="alpine"))
    assert engine.image_id(plan_for(config, bundle, image="alpine:3")) == "alpine:3"


async def test_selection_refuses_a_closed_world_plan_unless_the_config_accepts_the_risk(
    api: DaggerAPI, config: Config, bundle: Path
) -> None:
    config = replace(config, engine=None, fallbacks=("dagger",))
    closed = plan_for(config, bundle, network=False, required=frozenset({NETWORK_OFF}))

    with pytest.raises(NoEngine) as info:
        Engines(config).select(closed)
    assert info.value.reasons == {"dagger": "cannot enforce network-off"}

    accepting = replace(config, accept_risks={"dagger": frozenset({NETWORK_OFF})})
    engines = Engines(accepting)
    selection = engines.select(closed)
    assert selection.engine.name == "dagger"
    assert selection.notes == (
        "dagger did not enforce network-off (accepted by config accept_risks.dagger)",
    )
    capped = replace(closed, required=frozenset({NETWORK_OFF, MEMORY}))
    with pytest.raises(NoEngine, match="cannot enforce memory-limit"):
        engines.select(capped)
    await engines.aclose()


# --------------------------------------------------------------------------- interactive


async def test_interactive_needs_the_dagger_cli_and_a_terminal(
    api: DaggerAPI,
    engine: DaggerEngine,
    config: Config,
    bundle: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = plan_for(config, bundle)
    monkeypatch.setattr(sys, "stdin", _Stdin(tty=False))
    with pytest.raises(EngineError, match="dagger run skillcell exec test_tool"):
        await engine.interactive(plan, ["/bin/sh"])

    monkeypatch.setattr(sys, "stdin", _Stdin(tty=True))
    for var in SESSION_VARS:
        monkeypatch.delenv(var)
    with pytest.raises(EngineError, match="drawn by its CLI.*dagger run skillcell exec"):
        await engine.interactive(plan, ["/bin/sh"])
    assert api.queries == []


async def test_interactive_opens_a_terminal_in_the_same_sandbox(
    api: DaggerAPI,
    engine: DaggerEngine,
    config: Config,
    bundle: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", _Stdin(tty=True))
    plan = plan_for(config, bundle, secrets=Secrets({"TOKEN": "tty-secret"}))

    assert await engine.interactive(plan, ["bash", "-l"]) == 0

    (terminal,) = api.calls_named("terminal")
    assert terminal.args == {"cmd": ["bash", "-l"]}
    chain = terminal.chain
    assert [s.args["name"] for _, s in steps(chain, "withUser")] == [USER]
    assert [s.args["name"] for _, s in steps(chain, "withSecretVariable")] == ["TOKEN"]
    assert not steps(chain, "withExec")
    assert all("tty-secret" not in q.text for q in api.api_queries if "terminal" in q.text)


class _Stdin:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty
