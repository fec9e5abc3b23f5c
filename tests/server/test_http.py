"""Streamable HTTP: both eras, DNS-rebinding protection, the bearer token, shutdown."""

from __future__ import annotations

import re
import signal
from functools import partial

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.subscriptions import ToolsListChanged

from skillcell.errors import ConfigError
from skillcell.server.http import is_loopback, require_token, security_settings
from tests.server.conftest import (
    ERA_VERSION,
    ERAS,
    EXTRA,
    Inbox,
    Progress,
    eventually,
    http_server,
    marker,
    processes_with,
    serve_command,
    server_env,
    text,
    write_bundle,
)

pytestmark = pytest.mark.anyio

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {},
    "clientInfo": {"name": "raw", "version": "0"}}}  # fmt: skip
JSON_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def client_for(url: str, token: str | None = "tok", **headers: str):  # type: ignore[no-untyped-def]
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers={**auth, **headers}, timeout=httpx2.Timeout(30, read=120))
    return streamable_http_client(url, http_client=http)


@pytest.mark.parametrize("mode", ERAS)
async def test_streamable_http_serves_tools_progress_and_list_changed(app, skills, mode):
    inbox = Inbox()
    async with http_server(app) as url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/mcp", url)
        async with Client(client_for(url), mode=mode, message_handler=inbox) as client:
            assert client.protocol_version == ERA_VERSION[mode]
            assert "test_kit_echo" in [t.name for t in (await client.list_tools()).tools]
            progress = Progress()
            result = await client.call_tool("test_kit_structured", {"word": "web"},
                                            progress_callback=progress)  # fmt: skip
            assert result.structured_content == {"said": "web", "length": 3}
            assert progress.messages[0] == "arguments validated"

            extra = {"skill.package.yml": EXTRA.format(description="New.")}
            if mode == "legacy":  # over the session's GET stream
                write_bundle(skills, "extra", extra)
                await inbox.next(types.ToolListChangedNotification, 2.5)
            else:
                async with client.listen(tools_list_changed=True) as events:
                    write_bundle(skills, "extra", extra)
                    with anyio.fail_after(2.5):
                        assert isinstance(await events.__anext__(), ToolsListChanged)
            assert "test_extra_hello" in [t.name for t in (await client.list_tools()).tools]


async def test_requests_without_the_bearer_token_or_from_foreign_hosts_are_refused(app):
    async with http_server(app) as url, httpx2.AsyncClient() as http:
        port = url.split(":")[2].split("/")[0]
        auth = {**JSON_HEADERS, "Authorization": "Bearer tok"}
        refused = {
            "no token": await http.post(url, json=INITIALIZE, headers=JSON_HEADERS),
            "wrong token": await http.post(url, json=INITIALIZE,
                                           headers={**JSON_HEADERS, "Authorization": "Bearer no"}),
            "rebound host": await http.post(url, json=INITIALIZE,
                                            headers={**auth, "Host": f"evil.example:{port}"}),
            "foreign origin": await http.post(url, json=INITIALIZE,
                                              headers={**auth, "Origin": "http://evil.example"}),
        }  # fmt: skip
        accepted = await http.post(url, json=INITIALIZE,
                                   headers={**auth, "Origin": f"http://localhost:{port}"})  # fmt: skip
    assert {why: r.status_code for why, r in refused.items()} == {
        "no token": 401, "wrong token": 401, "rebound host": 421, "foreign origin": 403}  # fmt: skip
    assert refused["no token"].headers["www-authenticate"].startswith("Bearer")
    assert accepted.status_code == 200 and accepted.headers.get("mcp-session-id")


async def test_on_loopback_the_token_is_optional(app):
    async with (
        http_server(app, token=None) as url,
        Client(client_for(url, token=None), mode="legacy") as client,
    ):
        assert (await client.call_tool("test_kit_echo", {"word": "open"})).is_error is False


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.com", False),
    ],  # fmt: skip
)
def test_only_loopback_addresses_may_be_served_without_a_token(host, loopback):
    assert is_loopback(host) is loopback
    require_token(host, "t")
    if loopback:
        require_token(host, None)
    else:
        with pytest.raises(ConfigError, match="without a bearer token"):
            require_token(host, None)


def test_a_public_bind_accepts_this_machine_s_names_and_the_allowed_extra_hosts_only():
    import socket

    settings = security_settings("0.0.0.0", ["box.example.com"])
    for host in ("box.example.com:8765", f"{socket.gethostname()}:8765", "127.0.0.1:8765"):
        assert f"{host.rsplit(':', 1)[0]}:*" in settings.allowed_hosts
    assert "http://box.example.com:*" in settings.allowed_origins
    assert not any("evil" in h for h in settings.allowed_hosts)
    assert settings.enable_dns_rebinding_protection is True


def test_serve_refuses_a_public_address_without_a_token_and_a_port_in_use(tmp_path, skills):
    import socket
    import subprocess

    def serve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(serve_command(skills, "--http", *args), env=server_env(tmp_path),
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    public = serve("--host", "0.0.0.0")
    assert public.returncode == 2 and public.stdout == ""
    assert "refusing to listen on 0.0.0.0 without a bearer token" in public.stderr
    assert "SKILLCELL_TOKEN" in public.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = serve("--port", str(port))
    assert busy.returncode == 2
    assert busy.stderr.strip() == (
        f"skillcell serve: cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use"
    )


@pytest.mark.parametrize("mode", ERAS)
async def test_aborting_the_call_over_http_leaves_no_sandbox_running(app, mode):
    tag = marker()
    started = Progress("sandbox ready")
    async with http_server(app) as url, Client(client_for(url), mode=mode) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(client.call_tool, "test_kit_slow", {"marker": tag, "seconds": 60},
                                  progress_callback=started))  # fmt: skip
            with anyio.fail_after(10):
                await started.arrived.wait()
            await eventually(lambda: processes_with(tag))
            tg.cancel_scope.cancel()
        await eventually(lambda: not processes_with(tag))


async def test_stopping_the_server_answers_runs_in_progress_and_removes_their_sandboxes(app):
    tag = marker()
    started = Progress("sandbox ready")
    results: list[types.CallToolResult] = []
    stop = anyio.Event()

    async def call(client: Client) -> None:
        results.append(await client.call_tool(
            "test_kit_slow", {"marker": tag, "seconds": 60}, progress_callback=started))  # fmt: skip

    from skillcell.server import run_http

    async with anyio.create_task_group() as server:
        url = await server.start(partial(run_http, app, port=0, token="tok",
                                         handle_signals=False, stop=stop))  # fmt: skip
        async with Client(client_for(url), mode="legacy") as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(call, client)
                with anyio.fail_after(10):
                    await started.arrived.wait()
                await eventually(lambda: processes_with(tag))
                stop.set()
            assert results[0].is_error is True
            assert "shutting down" in text(results[0])
            assert not processes_with(tag)


async def test_skillcell_serve_http_runs_until_sigterm(server_config, skills, tmp_path):
    command = serve_command(skills, "--http", "--port", "0", "--token", "tok", "-v")
    async with await anyio.open_process(command, env=server_env(tmp_path),
                                        cwd=str(tmp_path)) as process:  # fmt: skip
        assert process.stderr is not None
        log = b""
        with anyio.fail_after(20):
            while not (found := re.search(rb"streamable HTTP at (\S+/mcp)", log)):
                log += await process.stderr.receive()
        url = found.group(1).decode()
        async with Client(client_for(url), mode="legacy") as client:
            result = await client.call_tool("test_kit_echo", {"word": "served"})
            assert text(result) == "served\n"
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(10):
            assert await process.wait() == 0
