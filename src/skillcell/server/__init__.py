"""The MCP server: the only package that knows MCP.

app.py      SkillcellApp: the low-level Server, its handlers, the live catalog
results.py  RunResult -> CallToolResult; output files as resources
watch.py    the search-path poller behind list_changed
http.py     streamable HTTP: DNS-rebinding protection, bearer token, uvicorn
serving.py  `skillcell serve`: stdio or HTTP, signals, logging
"""

from .app import SkillcellApp, SkillcellServer
from .serving import run_http, run_stdio, serve

__all__ = ["SkillcellApp", "SkillcellServer", "run_http", "run_stdio", "serve"]
