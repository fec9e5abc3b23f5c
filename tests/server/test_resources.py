"""Skill documentation and run outputs as MCP resources."""

from __future__ import annotations

import base64
import os

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.server.conftest import ERAS, connected

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ERAS)
async def test_files_a_run_writes_come_back_as_links_readable_through_resources_read(app, mode):
    async with connected(app, mode) as client:
        result = await client.call_tool("test_kit_files", {})
        assert result.is_error is False
        call_id = (result.meta or {})["skillcell/call_id"]
        links = {c.name: c for c in result.content if isinstance(c, types.ResourceLink)}
        assert sorted(links) == ["big.txt", "report.txt", "sub/data.bin"]
        assert links["report.txt"].uri == f"skillcell://outputs/{call_id}/report.txt"
        assert links["report.txt"].mime_type == "text/plain"
        assert links["big.txt"].size == 70000
        embedded = [c.resource for c in result.content if isinstance(c, types.EmbeddedResource)]
        # Only the small text file is embedded: big.txt is over 64 KiB, data.bin is binary.
        assert [(r.uri, getattr(r, "text", None)) for r in embedded] == [
            (links["report.txt"].uri, "report body\n")
        ]

        report = (await client.read_resource(links["report.txt"].uri)).contents[0]
        assert isinstance(report, types.TextResourceContents) and report.text == "report body\n"
        data = (await client.read_resource(links["sub/data.bin"].uri)).contents[0]
        assert isinstance(data, types.BlobResourceContents)
        assert base64.b64decode(data.blob) == bytes(range(256))
        big = (await client.read_resource(links["big.txt"].uri)).contents[0]
        assert isinstance(big, types.TextResourceContents) and len(big.text) == 70000


@pytest.mark.parametrize(
    "path",
    [
        "{call}/../../../etc/passwd",
        "{call}/%2E%2E/%2E%2E/escape.txt",
        "%2E%2E/escape.txt",
        "{call}/sub/../../{call}/report.txt",
        "{call}/",
        ".staging/{call}/report.txt",
        "evil/link",
        "evil/linkdir/hostname",
        "{call}",
    ],
    ids=[
        "dotdot",
        "encoded-dotdot",
        "root-escape",
        "dotdot-inside",
        "directory",
        "staging",
        "symlink-out",
        "symlinked-dir-out",
        "no-file",
    ],  # fmt: skip
)
async def test_only_files_under_the_output_root_can_be_read(app, tmp_path, path):
    (tmp_path / "escape.txt").write_text("outside")
    root = app.config.output_root
    (root / "evil").mkdir(parents=True)
    os.symlink("/etc/hostname", root / "evil" / "link")
    os.symlink("/etc", root / "evil" / "linkdir")
    (root / ".staging" / "x").mkdir(parents=True)
    async with connected(app, "legacy") as client:
        result = await client.call_tool("test_kit_files", {})
        call_id = (result.meta or {})["skillcell/call_id"]
        (root / ".staging" / call_id).mkdir()
        (root / ".staging" / call_id / "report.txt").write_text("half-written")
        with pytest.raises(MCPError) as info:
            await client.read_resource("skillcell://outputs/" + path.format(call=call_id))
    assert info.value.code == types.INVALID_PARAMS


@pytest.mark.parametrize("mode", ERAS)
async def test_each_skill_s_documentation_is_a_markdown_resource(app, mode):
    async with connected(app, mode) as client:
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        assert sorted(listed) == [
            "skillcell://skills/test/guide/SKILL.md",
            "skillcell://skills/test/kit/SKILL.md",
            "skillcell://skills/test/secretive/SKILL.md",
        ]
        guide = listed["skillcell://skills/test/guide/SKILL.md"]
        assert guide.mime_type == "text/markdown"
        assert guide.description == "How to use the kit, documentation only."
        assert (listed["skillcell://skills/test/kit/SKILL.md"].meta or {})["skillcell/tools"][0] \
            == "test_kit_echo"  # fmt: skip
        doc = (await client.read_resource("skillcell://skills/test/guide/SKILL.md")).contents[0]
        assert isinstance(doc, types.TextResourceContents)
        assert doc.mime_type == "text/markdown"
        assert doc.text == "# Guide\n\nCall `test_kit_echo` with a word.\n"
        kit = (await client.read_resource("skillcell://skills/test/kit/SKILL.md")).contents[0]
        assert isinstance(kit, types.TextResourceContents)
        assert kit.text.startswith("# test/kit\n\nSmall tools for the server tests.")
        with pytest.raises(MCPError) as info:
            await client.read_resource("skillcell://skills/test/nothing/SKILL.md")
        assert info.value.code == types.INVALID_PARAMS


async def test_output_files_are_not_listed_as_resources(app):
    async with connected(app, "legacy") as client:
        await client.call_tool("test_kit_files", {})
        uris = [str(r.uri) for r in (await client.list_resources()).resources]
    assert all(u.startswith("skillcell://skills/") for u in uris)
