"""Repeat calls over MCP: a cacheable tool's second call is served from the cache, marked so,
and `_meta {"skillcell/cache": false}` makes it run again."""

from __future__ import annotations

from typing import cast

import pytest
from mcp_types import RequestParamsMeta

from tests.server.conftest import ERAS, connected, text, write_bundle

pytestmark = pytest.mark.anyio

STAMP = """\
name: test/stamp
annotations: {openWorldHint: false, idempotentHint: true}
timeout: 30s
scripts:
  now:
    command: python3 -c "import sys, time; print(sys.argv[1], time.time_ns())" {{word}}
    inputSchema:
      type: object
      properties: {word: {type: string}}
      required: [word]
"""


@pytest.mark.parametrize("mode", ERAS)
async def test_a_repeat_call_is_cached_and_the_meta_switch_bypasses_it(make_app, skills, mode):
    write_bundle(skills, "stamp", {"skill.package.yml": STAMP})
    async with connected(make_app(), mode) as client:
        first = await client.call_tool("test_stamp_now", {"word": "w"})
        second = await client.call_tool("test_stamp_now", {"word": "w"})
        bypass = await client.call_tool(
            "test_stamp_now", {"word": "w"},
            meta=cast(RequestParamsMeta, {"skillcell/cache": False}),
        )  # fmt: skip
        wrong = await client.call_tool(
            "test_stamp_now", {"word": "w"}, meta=cast(RequestParamsMeta, {"skillcell/cache": 0})
        )
    assert text(second) == text(first)
    assert (first.meta or {})["skillcell/cached"] is False
    assert (second.meta or {})["skillcell/cached"] is True
    assert text(bypass) != text(first) and (bypass.meta or {})["skillcell/cached"] is False
    assert wrong.is_error and "skillcell/cache must be true or false" in text(wrong)
