"""skillcell for `mcp run` (the mcp[cli] command of the Python SDK).

    mcp run examples/mcp_server.py                         # stdio
    mcp run examples/mcp_server.py -t streamable-http      # http://127.0.0.1:8765/mcp

`mcp run` loads a file and accepts only an `MCPServer` instance named `mcp`, `server` or
`app`; skillcell is built on the low-level `Server`, so this subclass only borrows the type and
replaces `run()` with skillcell's own serving. It takes no options: the bundles come from
SKILLCELL_SKILLS_PATH (and ./skills), settings from SKILLCELL_CONFIG and the other SKILLCELL_*
variables, the HTTP port from SKILLCELL_PORT and a bearer token from SKILLCELL_TOKEN.
`skillcell serve` remains the full-featured entry point.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from mcp.server import MCPServer

from skillcell.config import load_config
from skillcell.server import serve


class SkillcellServer(MCPServer):
    def __init__(self) -> None:
        super().__init__(name="skillcell")

    def run(self, transport: str = "stdio", **kwargs: Any) -> None:  # type: ignore[override]
        if transport not in ("stdio", "streamable-http"):
            raise SystemExit(f"skillcell serves stdio or streamable-http, not {transport}")
        ns = argparse.Namespace(
            skills=[],
            http=transport == "streamable-http",
            host="127.0.0.1",
            port=int(os.environ.get("SKILLCELL_PORT", "8765")),
            token=None,  # serve() reads SKILLCELL_TOKEN
            allow_host=[],
            verbose=0,
        )
        raise SystemExit(serve(ns, load_config()))


mcp = SkillcellServer()
