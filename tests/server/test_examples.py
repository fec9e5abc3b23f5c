"""The examples/ directory: client configs that parse, an agent script and the `mcp run` file."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.server import MCPServer

from tests.server.conftest import ROOT, server_env, sha, text

EXAMPLES = ROOT / "examples"
CONFIGS = {
    "claude_desktop_config.json": "mcpServers",
    ".mcp.json": "mcpServers",
    ".cursor/mcp.json": "mcpServers",
    ".vscode/mcp.json": "servers",  # VS Code's own key
}


@pytest.mark.parametrize(("path", "key"), CONFIGS.items(), ids=list(CONFIGS))
def test_each_client_config_starts_skillcell_serve_with_secrets_in_its_env_block(path, key):
    servers = json.loads((EXAMPLES / path).read_text())[key]
    stdio = servers["skillcell"]
    assert stdio["command"] == "skillcell"
    assert stdio["args"][:2] == ["serve", "--skills"]
    assert "GITHUB_TOKEN" in stdio["env"]
    for server in servers.values():
        if server.get("type") == "http":
            assert server["url"] == "http://127.0.0.1:8765/mcp"
            assert server["headers"]["Authorization"].startswith("Bearer ")


def test_the_agent_example_lists_tools_and_calls_one_with_a_secret_in_meta(
    server_config, skills, tmp_path
):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "agent.py"), "--skills", str(skills),
         "--secret", "API_TOKEN=agent-secret-5", "test_secretive_whoami", "{}"],
        env=server_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "connected: 2026-07-28" in out
    assert "test_kit_echo" in out and "test_secretive_whoami" in out
    assert f"token: ***\nsha: {sha('agent-secret-5')}\n(engine bwrap," in out
    assert "agent-secret-5" not in out + done.stderr
    assert "... engine chosen: bwrap" in done.stderr


def test_the_mcp_run_file_exposes_an_mcp_server_object():
    # What `mcp run` does first: load the file by path and look for `mcp`.
    spec = importlib.util.spec_from_file_location("server_module", EXAMPLES / "mcp_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(module.mcp, MCPServer)


@pytest.mark.anyio
async def test_the_mcp_run_file_serves_skillcell_over_stdio(server_config, skills, tmp_path):
    # ... and then calls its run(); this needs no mcp[cli] extra installed.
    code = f"import runpy; runpy.run_path({str(EXAMPLES / 'mcp_server.py')!r})['mcp'].run()"
    params = StdioServerParameters(command=sys.executable, args=["-c", code], cwd=str(tmp_path),
                                   env=server_env(tmp_path, SKILLCELL_SKILLS_PATH=str(skills)))  # fmt: skip
    async with Client(stdio_client(params), mode="legacy") as client:
        result = await client.call_tool("test_kit_echo", {"word": "run"})
    assert text(result) == "run\n"
