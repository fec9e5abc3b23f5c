"""`skillcell serve` as a real subprocess speaking MCP over stdio."""

from __future__ import annotations

import json
import signal
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.server.subscriptions import ToolsListChanged

from tests.server.conftest import (
    ERA_VERSION,
    ERAS,
    EXTRA,
    Inbox,
    Progress,
    eventually,
    marker,
    processes_with,
    serve_command,
    server_env,
    write_bundle,
)

pytestmark = pytest.mark.anyio


def stdio_params(skills: Path, tmp_path: Path) -> StdioServerParameters:
    command, *args = serve_command(skills)
    return StdioServerParameters(command=command, args=args, env=server_env(tmp_path),
                                 cwd=str(tmp_path))  # fmt: skip


@pytest.mark.parametrize("mode", ERAS)
async def test_skillcell_serve_speaks_mcp_over_stdio(server_config, skills, tmp_path, mode):
    inbox = Inbox()
    tag = marker()
    with (tmp_path / "stderr.log").open("w") as errlog:
        transport = stdio_client(stdio_params(skills, tmp_path), errlog=errlog)
        async with Client(transport, mode=mode, message_handler=inbox) as client:
            assert client.protocol_version == ERA_VERSION[mode]
            assert "test_kit_echo" in [t.name for t in (await client.list_tools()).tools]

            progress = Progress()
            result = await client.call_tool("test_kit_structured", {"word": "piped"},
                                            progress_callback=progress)  # fmt: skip
            assert result.structured_content == {"said": "piped", "length": 5}
            assert progress.messages[-1] == "done"

            started = Progress("sandbox ready")
            async with anyio.create_task_group() as tg:
                tg.start_soon(partial(client.call_tool, "test_kit_slow",
                                      {"marker": tag, "seconds": 60}, progress_callback=started))  # fmt: skip
                with anyio.fail_after(10):
                    await started.arrived.wait()
                await eventually(lambda: processes_with(tag))
                tg.cancel_scope.cancel()
            await eventually(lambda: not processes_with(tag))

            extra = {"skill.package.yml": EXTRA.format(description="New.")}
            if mode == "legacy":
                write_bundle(skills, "extra", extra)
                await inbox.next(types.ToolListChangedNotification, 2.5)
            else:
                async with client.listen(tools_list_changed=True) as events:
                    write_bundle(skills, "extra", extra)
                    with anyio.fail_after(2.5):
                        assert isinstance(await events.__anext__(), ToolsListChanged)
            assert "test_extra_hello" in [t.name for t in (await client.list_tools()).tools]
    assert "Traceback" not in (tmp_path / "stderr.log").read_text()


async def test_sigterm_stops_the_server_and_the_sandboxes_of_runs_in_progress(
    server_config, skills, tmp_path
):
    tag = marker()
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "test_kit_slow", "arguments": {"marker": tag, "seconds": 60},
            "_meta": {"progressToken": "p"}}},
    ]  # fmt: skip
    async with await anyio.open_process(serve_command(skills), env=server_env(tmp_path),
                                        cwd=str(tmp_path)) as process:  # fmt: skip
        assert process.stdin is not None and process.stdout is not None
        for message in messages:
            await process.stdin.send((json.dumps(message) + "\n").encode())
        received: list[dict[str, Any]] = []
        buffer = b""
        with anyio.fail_after(10):
            while not any(m.get("params", {}).get("message") == "sandbox ready" for m in received):
                buffer += await process.stdout.receive()
                *lines, buffer = buffer.split(b"\n")
                received += [json.loads(line) for line in lines if line]
        await eventually(lambda: processes_with(tag))

        process.send_signal(signal.SIGTERM)  # stdin stays open: the server must not wait on it
        with anyio.fail_after(10):
            code = await process.wait()
        assert code == 0
        assert not processes_with(tag)
