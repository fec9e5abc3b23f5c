"""Drive skillcell from a program: start it over stdio, list its tools, call one, print it.

    python examples/agent.py                                  # the bundles in ./skills
    python examples/agent.py --skills DIR TOOL '{"arg": "value"}'

Uses the MCP Python SDK 2.x `Client`. The server inherits this process's environment, which
is how secrets reach tools (the same as the `env` block of a client config); a call can also
carry them in `_meta` under "skillcell/secrets", as the --secret option shows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, cast

import anyio
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_types import RequestParamsMeta

DEFAULT_TOOL = "skillcell_text-stats"
DEFAULT_ARGS = {"text": "Skills run in sandboxes. Every call gets a fresh one."}


async def main(skills: str, tool: str, arguments: dict[str, Any], secrets: dict[str, str]) -> int:
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "skillcell", "serve", "--skills", skills],
        env=dict(os.environ),  # SKILLCELL_* settings and secrets flow to the server
    )
    async with Client(stdio_client(server)) as client:
        print(f"connected: {client.protocol_version}")
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            for t in page.tools:
                print(f"  {t.name:<32} {t.title or ''}")
            if (cursor := page.next_cursor) is None:
                break

        async def progress(progress: float, total: float | None, message: str | None) -> None:
            print(f"  ... {message}", file=sys.stderr)

        # RequestParamsMeta is an open TypedDict; type checkers do not know extra keys yet.
        meta = cast(RequestParamsMeta, {"skillcell/secrets": secrets}) if secrets else None
        result = await client.call_tool(tool, arguments, meta=meta, progress_callback=progress)
    print(f"\n{tool} -> {'error' if result.is_error else 'ok'}")
    for block in result.content:
        if isinstance(block, types.TextContent):
            print(block.text.rstrip())
        elif isinstance(block, types.ResourceLink):
            print(f"[file] {block.uri}")
    if result.structured_content is not None:
        print(json.dumps(result.structured_content, indent=2))
    run = result.meta or {}
    print(f"(engine {run.get('skillcell/engine')}, {run.get('skillcell/duration_ms')} ms)")
    return 1 if result.is_error else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skills", default="skills", help="directory of skill bundles")
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a secret sent in the call's _meta (repeatable)",
    )
    parser.add_argument("tool", nargs="?", default=DEFAULT_TOOL)
    parser.add_argument("arguments", nargs="?", help="JSON object of arguments")
    ns = parser.parse_args()
    arguments = json.loads(ns.arguments) if ns.arguments else DEFAULT_ARGS
    secrets = dict(item.split("=", 1) for item in ns.secret)
    sys.exit(anyio.run(main, ns.skills, ns.tool, arguments, secrets))
