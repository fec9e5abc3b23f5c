"""The live catalog: bundles added, edited or removed on the search path are announced."""

from __future__ import annotations

import logging
import shutil
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.server.subscriptions import ResourcesListChanged, ToolsListChanged

from tests.server.conftest import EXTRA, Inbox, connected, text, write_bundle

pytestmark = pytest.mark.anyio
NOTICED = 2.5  # the promise is "within 2 s" of the change; a little slack for a loaded machine


async def tool_names(client: Any) -> list[str]:
    return [t.name for t in (await client.list_tools()).tools]


async def test_adding_a_bundle_is_announced_to_handshake_era_clients(app, skills):
    inbox = Inbox()
    async with connected(app, "legacy", message_handler=inbox) as client:
        assert "test_extra_hello" not in await tool_names(client)
        write_bundle(skills, "extra", {"skill.package.yml": EXTRA.format(description="New.")})
        await inbox.next(types.ToolListChangedNotification, NOTICED)
        await inbox.next(types.ResourceListChangedNotification, NOTICED)
        assert "test_extra_hello" in await tool_names(client)
        assert text(await client.call_tool("test_extra_hello", {})) == "hello\n"


async def test_adding_a_bundle_is_announced_to_2026_era_listeners(app, skills):
    async with connected(app, "auto") as client:
        async with client.listen(tools_list_changed=True, resources_list_changed=True) as events:
            assert events.honored.tools_list_changed is True
            write_bundle(skills, "extra", {"skill.package.yml": EXTRA.format(description="New.")})
            with anyio.fail_after(NOTICED):
                seen = {type(await events.__anext__()), type(await events.__anext__())}
            assert seen == {ToolsListChanged, ResourcesListChanged}
        assert "test_extra_hello" in await tool_names(client)


async def test_editing_then_removing_a_bundle_is_announced_and_broken_ones_are_logged(
    app, skills, caplog
):
    caplog.set_level(logging.INFO, logger="skillcell")
    inbox = Inbox()
    extra = write_bundle(skills, "extra", {"skill.package.yml": EXTRA.format(description="Old.")})
    async with connected(app, "legacy", message_handler=inbox) as client:
        await client.list_tools()
        (extra / "skill.package.yml").write_text(EXTRA.format(description="Edited."))
        write_bundle(skills, "broken", {"skill.package.yml": "name: test/broken\nscripts: [1, 2\n"})
        await inbox.next(types.ToolListChangedNotification, NOTICED)
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["test_extra_hello"].description == "Edited."
        assert any("broken" in r.getMessage() and r.levelno == logging.WARNING
                   for r in caplog.records)  # fmt: skip

        shutil.rmtree(extra)
        await inbox.next(types.ToolListChangedNotification, NOTICED)
        assert "test_extra_hello" not in await tool_names(client)
