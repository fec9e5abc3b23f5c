"""A third-party client: the TypeScript MCP SDK (tests/ts-client), over stdio and HTTP.

`scripts/dev setup` runs `npm install` there. Without node_modules these tests skip, except
in CI (env CI set), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import anyio
import pytest

from tests.conftest import require
from tests.server.conftest import (
    EXTRA,
    ROOT,
    http_server,
    serve_command,
    server_env,
    sha,
    write_bundle,
)

pytestmark = pytest.mark.anyio
TS_CLIENT = ROOT / "tests" / "ts-client"


@pytest.fixture
def node() -> str:
    node = shutil.which("node")
    require(node is not None, "node is not installed")
    sdk = TS_CLIENT / "node_modules" / "@modelcontextprotocol" / "sdk"
    require(sdk.is_dir(), f"run `npm install` in {TS_CLIENT} (scripts/dev setup does)")
    assert node is not None
    return node


def check_common(out: dict[str, Any]) -> None:
    assert out["negotiated"] == "2025-11-25"  # the TS SDK 1.x speaks the handshake era only
    assert out["capabilities"]["tools"] == {"listChanged": True}
    tools = {t["name"]: t for t in out["tools"]}
    assert tools["test_kit_structured"]["outputSchema"]["required"] == ["said", "length"]
    assert tools["test_kit_structured"]["_meta"]["skillcell/skill"] == "test/kit"
    assert out["structured"]["ok"]["structuredContent"] == {"said": "typed", "length": 5}
    # The TS client resolves a response before it runs the handlers of notifications that
    # arrived just ahead of it, so the last progress notifications may be missing.
    assert out["progress"][0] == {"progress": 1, "message": "arguments validated"}
    assert out["echo"]["ok"]["content"] == [{"type": "text", "text": "from-ts\n"}]
    assert out["invalid"]["ok"]["isError"] is True
    # An error result carries no structuredContent, so the TS client does not throw on it.
    assert out["mismatch"]["ok"]["isError"] is True
    assert out["unknown"]["error"]["code"] == -32602
    assert out["secret"]["ok"]["content"][0]["text"].endswith(f"sha: {sha('meta-value-42')}\n")
    kinds = [c["type"] for c in out["files"]["ok"]["content"]]
    assert kinds.count("resource_link") == 3 and kinds.count("resource") == 1
    assert out["report"]["ok"]["contents"][0]["text"] == "report body\n"
    assert "skillcell://skills/test/guide/SKILL.md" in out["resources"]


async def test_the_typescript_sdk_lists_and_calls_tools_over_stdio(
    node, server_config, skills, tmp_path
):
    env = server_env(tmp_path, API_TOKEN="env-value-31337")
    done = await anyio.run_process(
        [node, str(TS_CLIENT / "client.mjs"), "stdio", *serve_command(skills)],
        env=env, cwd=str(tmp_path), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    out = json.loads(done.stdout)
    check_common(out)
    assert out["headerSecret"]["ok"]["content"][0]["text"].endswith(
        f"sha: {sha('env-value-31337')}\n"
    )


async def test_the_typescript_sdk_works_over_http_and_hears_list_changed(
    node, make_app, skills, tmp_path
):
    app = make_app(environ={"API_TOKEN": "env-value-31337"})
    env = {**os.environ, "WAIT_LIST_CHANGED": "1"}
    async with http_server(app) as url:
        command = [node, str(TS_CLIENT / "client.mjs"), "http", url, "tok"]
        async with await anyio.open_process(command, env=env) as client:
            assert client.stdout is not None and client.stderr is not None
            with anyio.fail_after(30):
                err = b""
                while b"READY" not in err:
                    err += await client.stderr.receive()
                write_bundle(skills, "extra", {"skill.package.yml": EXTRA.format(description="x")})
                out = b""
                async for chunk in client.stdout:
                    out += chunk
                assert await client.wait() == 0
    data = json.loads(out)
    check_common(data)
    assert data["headerSecret"]["ok"]["content"][0]["text"].endswith(
        f"sha: {sha('header-value-7')}\n"
    )
    assert data["notifications"] == ["notifications/tools/list_changed"]
