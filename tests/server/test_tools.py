"""tools/list and tools/call through an in-memory MCP client, in both protocol eras."""

from __future__ import annotations

import json
from functools import partial

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.server.conftest import (
    ERAS,
    Progress,
    connected,
    eventually,
    marker,
    processes_with,
    text,
)

pytestmark = pytest.mark.anyio

KIT_TOOLS = ["test_kit_echo", "test_kit_fail", "test_kit_files", "test_kit_mismatch",
             "test_kit_notjson", "test_kit_slow", "test_kit_structured"]  # fmt: skip
ALL_TOOLS = sorted([*KIT_TOOLS, "test_secretive_whoami"])


@pytest.mark.parametrize("mode", ERAS)
async def test_the_server_advertises_tools_and_resources_that_can_change(app, mode):
    async with connected(app, mode) as client:
        caps = client.server_capabilities
        assert caps.tools is not None and caps.tools.list_changed is True
        assert caps.resources is not None and caps.resources.list_changed is True


@pytest.mark.parametrize("mode", ERAS)
async def test_every_page_of_tools_together_is_the_whole_catalog_once(make_app, mode):
    app = make_app(page_size=3)
    async with connected(app, mode) as client:
        names, cursor, pages = [], None, 0
        while True:
            page = await client.list_tools(cursor=cursor)
            pages += 1
            names += [t.name for t in page.tools]
            if (cursor := page.next_cursor) is None:
                break
        assert (names, pages) == (ALL_TOOLS, 3)
        with pytest.raises(MCPError) as info:
            await client.list_tools(cursor="not-a-cursor")
        assert info.value.code == types.INVALID_PARAMS


@pytest.mark.parametrize("mode", ERAS)
async def test_a_tool_definition_carries_title_schemas_annotations_and_meta(app, mode):
    async with connected(app, mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    structured = tools["test_kit_structured"]
    assert structured.title == "Kit: structured"
    assert structured.input_schema["additionalProperties"] is False
    assert structured.output_schema is not None
    assert structured.output_schema["required"] == ["said", "length"]
    assert structured.annotations is not None and structured.annotations.open_world_hint is False
    assert structured.meta == {"skillcell/skill": "test/kit", "skillcell/version": "1.2.3",
                               "skillcell/script": "structured"}  # fmt: skip
    slow = tools["test_kit_slow"]
    assert slow.title == "Sleeper"
    assert slow.annotations is not None and slow.annotations.read_only_hint is True
    assert (tools["test_kit_echo"].description or "").startswith("Print the word.")


@pytest.mark.parametrize("mode", ERAS)
async def test_stdout_comes_back_as_text_with_the_run_described_in_meta(app, mode):
    async with connected(app, mode) as client:
        result = await client.call_tool("test_kit_echo", {"word": "hello"})
    assert result.is_error is False
    assert [c.text for c in result.content if isinstance(c, types.TextContent)] == ["hello\n"]
    assert result.structured_content is None
    meta = result.meta or {}
    assert meta["skillcell/engine"] == "bwrap"
    assert meta["skillcell/exit_code"] == 0
    assert meta["skillcell/cached"] is False
    assert meta["skillcell/duration_ms"] > 0
    assert isinstance(meta["skillcell/notes"], list)


@pytest.mark.parametrize("mode", ERAS)
async def test_an_unknown_tool_is_a_protocol_error(app, mode):
    async with connected(app, mode) as client:
        with pytest.raises(MCPError) as info:
            await client.call_tool("no_such_tool", {})
    assert info.value.code == types.INVALID_PARAMS
    assert "no_such_tool" in info.value.message


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("mode", ERAS)
async def test_invalid_arguments_are_a_tool_error_listing_every_problem_by_path(app, mode):
    async with connected(app, mode) as client:
        result = await client.call_tool("test_kit_echo", {"word": 3, "extra": True})
    assert result.is_error is True
    assert result.structured_content is None
    problems = (result.meta or {})["skillcell/argument_errors"]
    assert [p["path"] for p in problems] == ["$", "$.word"]
    message = text(result)
    assert "$.word: 3 is not of type 'string'" in message and "'extra' was unexpected" in message


@pytest.mark.parametrize("mode", ERAS)
async def test_output_matching_the_schema_comes_back_as_structured_content(app, mode):
    async with connected(app, mode) as client:
        result = await client.call_tool("test_kit_structured", {"word": "hi"})
    assert result.is_error is False
    assert result.structured_content == {"said": "hi", "length": 2}
    assert json.loads(text(result)) == {"said": "hi", "length": 2}


@pytest.mark.parametrize("mode", ERAS)
async def test_output_that_does_not_match_the_schema_is_an_error_saying_what_did_not(app, mode):
    async with connected(app, mode) as client:
        mismatch = await client.call_tool("test_kit_mismatch", {})
        notjson = await client.call_tool("test_kit_notjson", {})
    assert mismatch.is_error is True and mismatch.structured_content is None
    assert "$.said: 3 is not of type 'string'" in text(mismatch)
    assert "'length' is a required property" in text(mismatch)
    assert notjson.is_error is True and notjson.structured_content is None
    assert "not JSON" in text(notjson)
    assert "this is not json" in text(notjson)


@pytest.mark.parametrize("mode", ERAS)
async def test_a_failing_run_is_an_error_with_the_stderr_tail_and_stdout(app, mode):
    async with connected(app, mode) as client:
        result = await client.call_tool("test_kit_fail", {})
    assert result.is_error is True
    summary, stdout = (c.text for c in result.content if isinstance(c, types.TextContent))
    assert "failed with exit code 3" in summary
    assert "the disk is on fire\n\nstdout follows." in summary
    assert len(summary.encode()) < 4096 + 200  # the tail, not 12 KB of noise
    assert stdout == "partial result\n"
    assert (result.meta or {})["skillcell/exit_code"] == 3


@pytest.mark.parametrize("mode", ERAS)
async def test_progress_reports_each_stage_with_an_increasing_counter(app, mode):
    progress = Progress()
    async with connected(app, mode) as client:
        result = await client.call_tool("test_kit_slow", {"marker": marker(), "seconds": 1.3},
                                        progress_callback=progress)  # fmt: skip
    assert result.is_error is False
    messages = progress.messages
    assert messages[:2] == ["arguments validated", "engine chosen: bwrap"]
    assert "running (1s)" in messages
    assert messages[-2:] == ["exporting", "done"]
    counters = [p for p, _ in progress.seen]
    assert counters == sorted(set(counters))


@pytest.mark.parametrize("mode", ERAS)
async def test_a_cancelled_call_leaves_no_sandbox_running(app, mode):
    tag = marker()
    started = Progress("sandbox ready")
    async with connected(app, mode) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(client.call_tool, "test_kit_slow", {"marker": tag, "seconds": 60},
                                  progress_callback=started))  # fmt: skip
            with anyio.fail_after(10):
                await started.arrived.wait()
            await eventually(lambda: processes_with(tag))
            tg.cancel_scope.cancel()
        await eventually(lambda: not processes_with(tag))
        after = await client.call_tool("test_kit_echo", {"word": "still-here"})
        assert text(after) == "still-here\n"


async def test_a_client_that_disconnects_mid_call_leaves_no_sandbox_running(app):
    tag = marker()
    started = Progress("sandbox ready")
    failures: list[MCPError] = []

    async def call(client) -> None:  # type: ignore[no-untyped-def]
        try:
            await client.call_tool("test_kit_slow", {"marker": tag, "seconds": 60},
                                   progress_callback=started)  # fmt: skip
        except MCPError as exc:
            failures.append(exc)

    # The call outlives its client; the app keeps running, so nothing but the disconnect
    # can have stopped the run.
    async with app.running():
        async with anyio.create_task_group() as tg, Client(app.server, mode="legacy") as client:
            tg.start_soon(call, client)
            with anyio.fail_after(10):
                await started.arrived.wait()
            await eventually(lambda: processes_with(tag))
        await eventually(lambda: not processes_with(tag))
    assert failures and failures[0].code == types.CONNECTION_CLOSED


@pytest.mark.parametrize("mode", ERAS)
async def test_32_concurrent_calls_each_get_their_own_result(app, mode):
    results: dict[str, types.CallToolResult] = {}

    async def call(client, word: str) -> None:  # type: ignore[no-untyped-def]
        results[word] = await client.call_tool("test_kit_structured", {"word": word})

    words = [f"word-{i:02d}-{'x' * i}" for i in range(32)]
    async with connected(app, mode) as client:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for word in words:
                    tg.start_soon(call, client, word)
    for word in words:
        assert results[word].structured_content == {"said": word, "length": len(word)}
    assert len({r.meta["skillcell/call_id"] for r in results.values()}) == 32  # type: ignore[index]


async def test_a_slow_call_blocks_neither_tools_list_nor_other_calls_which_queue(
    make_app, server_config
):
    from dataclasses import replace

    app = make_app(config=replace(server_config, concurrency=1))
    tag = marker()
    running = Progress("sandbox ready")
    queued = Progress("queued")
    async with connected(app, "legacy") as client, anyio.create_task_group() as tg:
        tg.start_soon(partial(client.call_tool, "test_kit_slow", {"marker": tag, "seconds": 60},
                              progress_callback=running))  # fmt: skip
        with anyio.fail_after(10):
            await running.arrived.wait()
        with anyio.fail_after(2):
            assert len((await client.list_tools()).tools) == 8
        tg.start_soon(partial(client.call_tool, "test_kit_echo", {"word": "waiting"},
                              progress_callback=queued))  # fmt: skip
        with anyio.fail_after(5):
            await queued.arrived.wait()
        assert queued.messages[-1] == "queued behind 1 running calls"
        tg.cancel_scope.cancel()
    await eventually(lambda: not processes_with(tag))
