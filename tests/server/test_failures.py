"""Runs that cannot happen or do not finish are tool errors that say why, never protocol errors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.server.conftest import connected, text, write_bundle

pytestmark = pytest.mark.anyio

HOOKED = """\
name: test/hooked
annotations: {openWorldHint: false}
hooks: {build: ["false"]}
scripts:
  run:
    command: echo hi
"""
SLEEPY = """\
name: test/sleepy
annotations: {openWorldHint: false}
timeout: 1s
scripts:
  nap:
    command: python3 -c "__import__('time').sleep(30)"
"""


async def test_when_no_engine_can_run_a_tool_the_call_is_an_error_saying_why(
    make_app, server_config
):
    app = make_app(config=replace(server_config, fallbacks=()))
    async with connected(app, "legacy") as client:
        result = await client.call_tool("test_kit_echo", {"word": "x"})
    assert result.is_error is True
    assert text(result) == "no engine can run test_kit_echo: no engines configured"


async def test_an_engine_failure_is_an_error_naming_the_engine(make_app, skills):
    write_bundle(skills, "hooked", {"skill.package.yml": HOOKED})
    app = make_app()
    async with connected(app, "legacy") as client:
        result = await client.call_tool("test_hooked_run", {})
    assert result.is_error is True
    assert text(result).startswith("bwrap engine: build hook")  # refused, or run and failed


async def test_a_run_past_its_timeout_is_killed_and_reported(make_app, skills):
    write_bundle(skills, "sleepy", {"skill.package.yml": SLEEPY})
    app = make_app()
    async with connected(app, "auto") as client:
        result = await client.call_tool("test_sleepy_nap", {})
    assert result.is_error is True
    assert text(result).startswith("test_sleepy_nap did not finish in time and was stopped.")
    assert "killed: timed out after 1s" in text(result)
    assert (result.meta or {})["skillcell/timed_out"] is True
