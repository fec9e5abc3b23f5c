"""RunResult -> CallToolResult, and the output files behind `skillcell://outputs/...` URIs.

Two channels, kept apart: a tool that ran and failed (non-zero exit, timeout, output that does
not match its schema) is a result with `isError: true`; only protocol misuse is a JSON-RPC
error. An error result never carries `structuredContent`: the TypeScript SDK validates it
against the output schema even then, and throws.
"""

from __future__ import annotations

import base64
import json
import mimetypes
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from ..catalog import Tool
from ..plan import ExecutionPlan, RunResult
from ..secrets import scrub

OUTPUTS_URI = "skillcell://outputs/"
SKILLS_URI = "skillcell://skills/"
DOC_NAME = "SKILL.md"
STDERR_TAIL = 4096  # bytes of stderr shown when a run fails
EMBED_MAX = 64 * 1024  # text output files smaller than this are embedded in the result
META = "skillcell/"


def error_result(text: str, meta: Mapping[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=text)], is_error=True, _meta=dict(meta or {})
    )


def run_meta(plan: ExecutionPlan, result: RunResult) -> dict[str, Any]:
    """What a client (not the model) may want to know about the run, under `skillcell/` keys."""
    return {
        f"{META}call_id": plan.call_id,
        f"{META}engine": result.engine,
        f"{META}duration_ms": round(result.duration_ms, 3),
        f"{META}cached": result.cached,
        f"{META}exit_code": result.exit_code,
        f"{META}timed_out": result.timed_out,
        f"{META}truncated": result.truncated,
        f"{META}notes": list(result.notes),
    }


def call_result(
    tool: Tool, plan: ExecutionPlan, result: RunResult, output_root: Path
) -> types.CallToolResult:
    """The MCP result of a finished run (reads the small output files it embeds)."""
    meta = run_meta(plan, result)
    files = _output_content(result, output_root, plan.secrets)
    if not result.ok:
        return types.CallToolResult(
            content=[
                types.TextContent(text=_failure(tool, result)),
                *([types.TextContent(text=result.stdout)] if result.stdout else []),
                *files,
            ],  # fmt: skip
            is_error=True,
            _meta=meta,
        )
    if result.stderr:
        meta[f"{META}stderr"] = _tail(result.stderr, STDERR_TAIL)
    schema = tool.script.output_schema
    if schema is None:
        text = [types.TextContent(text=result.stdout)] if result.stdout or not files else []
        return types.CallToolResult(content=[*text, *files], _meta=meta)
    structured, problem = _structured(tool, schema, result.stdout)
    if problem is not None:
        return types.CallToolResult(
            content=[
                types.TextContent(text=problem),
                *([types.TextContent(text=result.stdout)] if result.stdout else []),
                *files,
            ],  # fmt: skip
            is_error=True,
            _meta=meta,
        )
    return types.CallToolResult(
        content=[types.TextContent(text=result.stdout), *files],
        structured_content=structured,
        _meta=meta,
    )


def _failure(tool: Tool, result: RunResult) -> str:
    if result.timed_out:
        head = f"{tool.name} did not finish in time and was stopped."
    else:
        head = f"{tool.name} failed with exit code {result.exit_code}."
    lines = [head, *(f"note: {n}" for n in result.notes)]
    if result.stderr:
        lines += [f"stderr (last {STDERR_TAIL} bytes):" if len(result.stderr.encode()) > STDERR_TAIL
                  else "stderr:", _tail(result.stderr, STDERR_TAIL)]  # fmt: skip
    if result.stdout:
        lines.append("stdout follows.")
    return "\n".join(lines)


def _tail(text: str, size: int) -> str:
    data = text.encode()
    if len(data) <= size:
        return text
    return "..." + data[-size:].decode(errors="ignore")


def _structured(tool: Tool, schema: Mapping[str, Any], stdout: str) -> tuple[Any, str | None]:
    """(value, None) when stdout is JSON matching the schema, else (None, what is wrong)."""
    try:
        value = json.loads(stdout)
    except ValueError as exc:
        shown = stdout.strip()[:200] or "(nothing)"
        return None, (
            f"{tool.name} declares an output schema, but its output is not JSON "
            f"({exc}); it printed: {shown}"
        )
    if not isinstance(value, dict):
        return None, f"{tool.name} must print a JSON object, not {type(value).__name__}"
    errors = sorted(_validator(json.dumps(schema, sort_keys=True)).iter_errors(value),
                    key=lambda e: list(map(str, e.absolute_path)))  # fmt: skip
    if errors:
        listed = "\n".join(f"- {_json_path(e.absolute_path)}: {e.message[:200]}" for e in errors)
        return None, f"the output of {tool.name} does not match its output schema:\n{listed}"
    return value, None


@lru_cache(maxsize=256)
def _validator(frozen: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(
        json.loads(frozen), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _json_path(path: Sequence[Any]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


# --- output files ---------------------------------------------------------------------------


def output_uri(call_id: str, rel: str) -> str:
    return OUTPUTS_URI + quote(call_id, safe="") + "/" + quote(rel)


def _output_content(
    result: RunResult, output_root: Path, secrets: Mapping[str, str]
) -> list[types.ResourceLink | types.EmbeddedResource]:
    """A resource_link per exported file; small text files embedded as well."""
    if result.output_dir is None or not result.outputs:
        return []
    directory = result.output_dir
    if directory.resolve().parent != output_root.resolve():
        return []  # not a directory resources/read would serve
    out: list[types.ResourceLink | types.EmbeddedResource] = []
    for path in result.outputs:
        rel = path.relative_to(directory).as_posix()
        uri = output_uri(directory.name, rel)
        mime = _mime(rel)
        try:
            size = path.stat().st_size
        except OSError:
            continue
        out.append(types.ResourceLink(uri=uri, name=rel, mime_type=mime, size=size))
        if size < EMBED_MAX:
            text = _text(path.read_bytes())
            if text is not None:
                # The copy in the result is scrubbed like stdout; the file itself is the tool's.
                out.append(types.EmbeddedResource(resource=types.TextResourceContents(
                    uri=uri, mime_type=mime, text=scrub(text, secrets))))  # fmt: skip
    return out


def _text(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _mime(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def read_output(uri: str, output_root: Path) -> types.ReadResourceResult:
    """The file behind an outputs URI; only regular files under output_root, never a staging dir."""
    not_found = MCPError(INVALID_PARAMS, f"Resource not found: {uri}")
    call_id, _, rel = uri[len(OUTPUTS_URI) :].partition("/")
    call_id, rel = unquote(call_id), unquote(rel)
    # Hidden first segments are staging and cache directories: half-written, never served.
    if not call_id or call_id.startswith(".") or "/" in call_id or "\x00" in rel:
        raise not_found
    if any(part in ("", ".", "..") for part in rel.split("/")):
        raise not_found
    root = output_root.resolve()
    path = (root / call_id / rel).resolve()
    if not path.is_relative_to(root / call_id) or not path.is_file():
        raise not_found
    try:
        data = path.read_bytes()
    except OSError:
        raise not_found from None
    mime = _mime(rel)
    text = _text(data)
    if text is not None:
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type=mime, text=text)]
        )
    blob = base64.b64encode(data).decode("ascii")
    return types.ReadResourceResult(
        contents=[types.BlobResourceContents(uri=uri, mime_type=mime, blob=blob)]
    )
