"""Secrets come from the client: the server's environment, HTTP headers, the call's _meta."""

from __future__ import annotations

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.server.conftest import ERAS, connected, http_server, secrets_meta, sha, text

pytestmark = pytest.mark.anyio

WHOAMI = "test_secretive_whoami"


def reported(result: types.CallToolResult) -> str:
    """The hash of the token the tool saw (the token itself is scrubbed)."""
    assert result.is_error is False, result.content
    lines = text(result).splitlines()
    assert lines[0] == "token: ***"
    return lines[1].removeprefix("sha: ")


def dump(result: types.CallToolResult) -> str:
    return result.model_dump_json(by_alias=True)


@pytest.mark.parametrize("mode", ERAS)
async def test_a_secret_from_the_server_environment_reaches_the_tool_and_never_the_result(
    make_app, mode
):
    app = make_app(environ={"API_TOKEN": "env-value-31337"})
    async with connected(app, mode) as client:
        result = await client.call_tool(WHOAMI, {})
    assert reported(result) == sha("env-value-31337")
    assert "env-value-31337" not in dump(result)


@pytest.mark.parametrize("mode", ERAS)
async def test_a_secret_in_the_call_meta_wins_over_the_environment(make_app, mode):
    app = make_app(environ={"API_TOKEN": "env-value-31337"})
    async with connected(app, mode) as client:
        result = await client.call_tool(
            WHOAMI, {}, meta=secrets_meta({"API_TOKEN": "meta-value-42"})
        )
    assert reported(result) == sha("meta-value-42")
    assert "meta-value-42" not in dump(result)


@pytest.mark.parametrize("mode", ERAS)
async def test_a_missing_secret_is_a_tool_error_naming_it(app, mode):
    async with connected(app, mode) as client:
        result = await client.call_tool(WHOAMI, {})
    assert result.is_error is True
    assert "API_TOKEN" in text(result)


async def test_secrets_in_meta_that_are_not_strings_are_refused_without_echoing_them(app):
    async with connected(app, "legacy") as client:
        result = await client.call_tool(WHOAMI, {}, meta=secrets_meta({"API_TOKEN": ["v-999"]}))
    assert result.is_error is True
    assert "skillcell/secrets" in text(result) and "v-999" not in dump(result)


async def test_secrets_are_never_taken_from_tool_arguments(app):
    async with connected(app, "legacy") as client:
        result = await client.call_tool(WHOAMI, {"API_TOKEN": "from-the-model"})
    # The script declares no parameters: the argument is rejected, never used as the secret.
    assert result.is_error is True
    assert "'API_TOKEN' was unexpected" in text(result)
    assert "from-the-model" not in dump(result)


@pytest.mark.parametrize("mode", ERAS)
async def test_over_http_a_header_secret_beats_the_environment_and_meta_beats_the_header(
    make_app, mode
):
    app = make_app(environ={"API_TOKEN": "env-value-31337"})
    headers = {"Authorization": "Bearer tok", "X-Skillcell-Secret-Api-Token": "header-value-7"}
    async with http_server(app) as url:
        transport = streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers))
        async with Client(transport, mode=mode) as client:
            from_header = await client.call_tool(WHOAMI, {})
            from_meta = await client.call_tool(
                WHOAMI, {}, meta=secrets_meta({"API_TOKEN": "meta-value-42"})
            )
    assert reported(from_header) == sha("header-value-7")
    assert reported(from_meta) == sha("meta-value-42")
    assert "header-value-7" not in dump(from_header) + dump(from_meta)
