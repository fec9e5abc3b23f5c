"""The local Dagger API endpoint (tests/dagger_api.py), proven with the real dagger-io.

These tests drive the actual ``dagger-io`` SDK against :class:`DaggerAPI`: the SDK
introspects the real Dagger schema, builds its queries from it, and sends them over
HTTP exactly as it would to an engine session. They also prove that the mcp 2.x +
dagger-io dependency clash is solved by the gql pin (gql >= 4.4 switches to httpx2
whenever it is importable, which mcp 2.x makes true, and then rejects the classic
``httpx.URL`` dagger-io hands it).
"""

from __future__ import annotations

import base64
import importlib.metadata
import importlib.util
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import graphql
import pytest

try:  # tests/ is a package whose parent pytest put on sys.path (for tests/conftest.py)
    from tests.dagger_api import DaggerAPI, running_dagger_api
except ImportError:  # run without the package layout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dagger_api import DaggerAPI, running_dagger_api  # type: ignore[no-redef]

dagger = pytest.importorskip("dagger")


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[DaggerAPI]:
    with running_dagger_api(monkeypatch) as endpoint:
        yield endpoint


def _config() -> Any:
    # No retries (a retried exec is re-sent), short connect timeout, no read timeout.
    return dagger.Config(retry=None, timeout=dagger.Timeout(None, connect=5.0))


def _run(fn: Any, *args: Any) -> Any:
    # dagger-io (through gql) needs asyncio.
    return anyio.run(fn, *args, backend="asyncio")


def _field_args(query: str, field_name: str) -> list[dict[str, graphql.ValueNode]]:
    """The argument nodes of every ``field_name`` field in a query text."""
    found: list[dict[str, graphql.ValueNode]] = []

    class Visitor(graphql.Visitor):
        def enter_field(self, node: graphql.FieldNode, *_: Any) -> None:
            if node.name.value == field_name:
                found.append({a.name.value: a.value for a in node.arguments or ()})

    graphql.visit(graphql.parse(query), Visitor())
    return found


def _post(api: DaggerAPI, body: Any, token: str | None = None) -> tuple[int, Any]:
    auth = base64.b64encode(f"{token if token is not None else api.token}:".encode()).decode()
    req = urllib.request.Request(
        api.url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


# --------------------------------------------------------------------------- the SDK


def test_real_sdk_pipeline_is_schema_valid_and_keeps_argv_whole(api: DaggerAPI) -> None:
    api.responses["exitCode"] = 3
    api.responses["stdout"] = "a b; rm -rf /\n"
    argv = ["echo", "a b; rm -rf /"]

    async def main() -> tuple[int, str]:
        async with dagger.connection(_config()):
            from dagger import dag

            ctr = (
                dag.container()
                .from_("alpine")
                .with_env_variable("GREETING", "hello")
                .with_secret_variable("TOKEN", dag.set_secret("tok", "s3cret"))
                .with_exec(argv, expect=dagger.ReturnType.ANY)
            )
            return await ctr.exit_code(), await ctr.stdout()

    exit_code, stdout = _run(main)

    assert (exit_code, stdout) == (3, "a b; rm -rf /\n")
    api.assert_clean()  # every query validated against the real schema
    assert api.queries[0].introspection  # the SDK fetched the schema first

    # The argv travels as one GraphQL list, one entry per argument, never re-split.
    exec_queries = [q for q in api.api_queries if "withExec" in q.text]
    assert len(exec_queries) == 2  # exitCode and stdout: one query each
    for q in exec_queries:
        (args,) = _field_args(q.text, "withExec")
        assert isinstance(args["args"], graphql.ListValueNode)
        assert graphql.value_from_ast_untyped(args["args"]) == argv
        assert graphql.print_ast(args["expect"]) == "ANY"
    assert [c.args["args"] for c in api.calls_named("withExec")] == [argv, argv]

    # The secret is made by setSecret in a query of its own; the pipeline only
    # refers to it by ID, so the plaintext never appears in the exec's query.
    (secret_query,) = [q for q in api.api_queries if "setSecret" in q.text]
    (set_secret,) = _field_args(secret_query.text, "setSecret")
    assert graphql.value_from_ast_untyped(set_secret["name"]) == "tok"
    assert all("s3cret" not in q.text for q in exec_queries)
    (with_secret,) = {c.args["secret"] for c in api.calls_named("withSecretVariable")}
    assert api.describe(with_secret) == 'setSecret(name: "tok", plaintext: "s3cret")'

    (env_call, _) = api.calls_named("withEnvVariable")
    assert env_call.args == {"name": "GREETING", "value": "hello"}
    assert {c.args["address"] for c in api.calls_named("from")} == {"alpine"}


def test_gql_pin_keeps_dagger_io_on_classic_httpx() -> None:
    """gql 4.0.0 is the only final release below 4.4.0 (4.1-4.3 exist only as betas);
    4.4.0b0 onwards import httpx2 whenever it is importable, as it is beside mcp 2.x."""
    version = tuple(int(p) for p in importlib.metadata.version("gql").split(".")[:2])
    assert (4, 0) <= version < (4, 1), importlib.metadata.version("gql")
    assert importlib.metadata.version("graphql-core").startswith("3.2.")

    import httpx
    from gql.transport import httpx as gql_httpx

    assert gql_httpx.httpx is httpx  # not httpx2
    if importlib.util.find_spec("mcp") is not None:
        # The clash needs httpx2 importable; with mcp 2.x installed it is.
        assert importlib.util.find_spec("httpx2") is not None


def test_exec_failure_raises_dagger_exec_error(api: DaggerAPI) -> None:
    api.responses.update({"exitCode": 2, "stdout": "out", "stderr": "err"})

    async def main() -> None:
        async with dagger.connection(_config()):
            from dagger import dag

            await dag.container().from_("alpine").with_exec(["sh", "-c", "exit 2"]).stdout()

    with pytest.raises(dagger.ExecError) as info:
        _run(main)
    err = info.value
    assert (err.exit_code, err.stdout, err.stderr) == (2, "out", "err")
    assert err.command == ["sh", "-c", "exit 2"]
    assert "exit code: 2" in str(err)


def test_signal_exit_fails_even_with_expect_any(api: DaggerAPI) -> None:
    api.responses["exitCode"] = 137  # SIGKILL, e.g. OOM: outside ReturnType.ANY

    async def main() -> int:
        async with dagger.connection(_config()):
            from dagger import dag

            ctr = dag.container().from_("alpine").with_exec(["x"], expect=dagger.ReturnType.ANY)
            return await ctr.exit_code()

    with pytest.raises(dagger.ExecError) as info:
        _run(main)
    assert info.value.exit_code == 137


def test_injected_failures(api: DaggerAPI) -> None:

    async def main() -> str:
        async with dagger.connection(_config()):
            from dagger import dag

            return await dag.container().from_("alpine").with_exec(["ls"]).stdout()

    api.failures["from"] = api.query_error("pull access denied for nope")
    with pytest.raises(dagger.QueryError) as q_info:
        _run(main)
    assert not isinstance(q_info.value, dagger.ExecError)
    assert "pull access denied" in str(q_info.value)

    api.failures.clear()
    api.failures["withExec"] = api.exec_error(1, stderr="ls: no such file")
    with pytest.raises(dagger.ExecError) as e_info:
        _run(main)
    assert e_info.value.command == ["ls"]
    assert e_info.value.stderr == "ls: no such file"


def test_sync_then_read_through_node_id(api: DaggerAPI, tmp_path: Path) -> None:
    api.responses["stdout"] = lambda call: " ".join(call.argv or []) + "\n"
    src = tmp_path / "skill"
    src.mkdir()

    async def main() -> tuple[str, str, str]:
        async with dagger.connection(_config()):
            from dagger import dag

            ctr = (
                dag.container()
                .from_("python:3.12-slim")
                .with_mounted_directory("/skill", dag.host().directory(str(src), exclude=[".git"]))
                .with_mounted_cache("/root/.cache/pip", dag.cache_volume("pip"))
                .with_new_file("/inputs/args.json", '{"n": 1}')
                .with_workdir("/skill")
                .with_exec(["python", "run.py"], expect=dagger.ReturnType.ANY)
            )
            synced = await ctr.sync()
            out = await synced.stdout()
            exported = await synced.directory("/outputs").export(str(tmp_path / "out"))
            return out, exported, await synced.id()

    out, exported, ctr_id = _run(main)

    assert out == "python run.py\n"
    assert exported == str(tmp_path / "out")
    api.assert_clean()
    # After sync, reads go through node(id:) and do not rebuild the pipeline.
    node_queries = [q for q in api.api_queries if q.text.lstrip("{ \n").startswith("node")]
    assert len(node_queries) == 3 and all("... on Container" in q.text for q in node_queries)
    assert sum("withExec" in q.text for q in api.api_queries) == 1
    chain = api.describe(ctr_id)
    assert (
        'withMountedDirectory(path: "/skill", source: "<Directory: host.directory(path: ' in chain
    )
    assert 'withMountedCache(path: "/root/.cache/pip", cache: "<CacheVolume: cacheVolume' in chain
    assert chain.endswith('withExec(args: ["python", "run.py"], expect: "ANY")')


# --------------------------------------------------------------------------- the fake


def test_introspection_and_validation_are_recorded(api: DaggerAPI) -> None:
    status, body = _post(api, {"query": graphql.get_introspection_query()})
    assert status == 200 and body["data"]["__schema"]["queryType"]["name"] == "Query"
    assert api.queries[-1].introspection and not api.errors

    status, body = _post(api, {"query": '{ container { withExec(argv: ["x"]) { id } } }'})
    assert status == 200 and body["errors"]
    assert api.queries[-1].valid is False
    assert any("argv" in e.message for e in api.errors)
    with pytest.raises(AssertionError, match="invalid against the Dagger schema"):
        api.assert_clean()
    api.errors.clear()

    # IDs are checked like the engine does: known, and of the expected type.
    status, body = _post(api, {"query": '{ container { withRootfs(directory: "nope") { id } } }'})
    assert body["errors"] and "unknown ID" in api.errors[-1].message
    api.errors.clear()


def test_wrong_token_is_rejected(api: DaggerAPI) -> None:
    status, _ = _post(api, {"query": "{ version }"}, token="wrong")
    assert status == 401 and api.auth_failures == 1

    async def main() -> None:
        # The isolated client: a failed dagger.connection() leaves the global
        # shared connection broken until dagger.close() is awaited.
        async with dagger.Connection(_config()):
            pass

    api_token, api.token = api.token, "rotated"
    try:
        with pytest.raises(dagger.ClientConnectionError, match="401"):
            _run(main)
    finally:
        api.token = api_token


def test_standalone_use_without_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    with DaggerAPI() as api:
        for key, value in api.env().items():
            monkeypatch.setenv(key, value)

        async def main() -> str:
            async with dagger.Connection(_config()) as client:
                return await client.version()

        assert _run(main) == "v0.21.11"
        port = api.port
    with pytest.raises(RuntimeError):
        _ = api.port
    assert port > 0
