"""The MCP face of skillcell: one low-level Server, its handlers and the live catalog.

Serves both protocol eras with the same handlers: the handshake era (up to 2025-11-25, where
list changes go out as `notifications/*/list_changed` to each connection) and 2026-07-28
(where they go to `subscriptions/listen` streams through the subscription bus).
"""

from __future__ import annotations

import base64
import bisect
import json
import logging
import traceback
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    ResourcesListChanged,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError

from .. import __version__
from ..catalog import Catalog, Tool, fingerprint, index_path, scan, search_path
from ..config import Config
from ..errors import ArgumentError, SkillcellError, ToolNotFound
from ..manifest import Skill
from ..plan import ExecutionPlan, RunResult
from ..runner import Runner
from ..secrets import from_headers, scrub
from . import watch
from .results import DOC_NAME, OUTPUTS_URI, SKILLS_URI, call_result, error_result, read_output

log = logging.getLogger("skillcell.server")

PAGE_SIZE = 100
SECRETS_META_KEY = "skillcell/secrets"
CACHE_META_KEY = "skillcell/cache"  # false: run even when a cached result exists
INSTRUCTIONS = (
    "Each tool runs one script of a skill bundle in a sandbox; a failed run comes back as a "
    "result with isError. A skill's documentation is the resource "
    "skillcell://skills/<skill name>/SKILL.md; files a run writes come back as resource links "
    "(skillcell://outputs/...) readable with resources/read."
)


class SkillcellServer(Server[Any]):
    """A low-level Server that advertises listChanged for tools and resources.

    The streamable-HTTP session manager and the in-memory transport call
    `create_initialization_options()` with no arguments, so the default itself must change.
    """

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True, resources_changed=True),
            experimental_capabilities,
            extensions,
        )


@dataclass(frozen=True)
class Doc:
    resource: types.Resource
    text: str


@dataclass(frozen=True)
class Published:
    """One scan as MCP sees it: tool definitions and doc resources, built once per scan."""

    catalog: Catalog
    tools: dict[str, types.Tool]  # by name, sorted
    docs: dict[str, Doc]  # by URI, sorted

    @classmethod
    def of(cls, catalog: Catalog) -> Published:
        tools = {}
        for name in sorted(catalog.tools):
            tool = catalog.tools[name]
            try:
                tools[name] = types.Tool.model_validate(tool.definition())
            except ValidationError as exc:
                log.warning("%s: %s is not a valid MCP tool definition, not published: %s",
                            tool.skill.manifest, name, exc)  # fmt: skip
        by_skill: dict[str, list[str]] = {}
        for name in tools:
            by_skill.setdefault(catalog.tools[name].skill.name, []).append(name)
        docs = {}
        for skill in sorted(catalog.skills, key=lambda s: s.name):
            doc = _doc(skill, by_skill.get(skill.name, []))
            docs[doc.resource.uri] = doc
        return cls(catalog, tools, docs)

    def tools_key(self) -> list[Any]:
        return [t.model_dump(by_alias=True, exclude_none=True) for t in self.tools.values()]

    def docs_key(self) -> list[Any]:
        return [d.resource.model_dump(by_alias=True, exclude_none=True) for d in self.docs.values()]


def _doc(skill: Skill, tools: list[str]) -> Doc:
    uri = f"{SKILLS_URI}{skill.name}/{DOC_NAME}"
    text = skill.docs.strip() or f"# {skill.name}\n\n{skill.description}".strip()
    text += "\n"
    resource = types.Resource(
        uri=uri,
        name=skill.name,
        title=f"{skill.name} documentation",
        description=skill.description or None,
        mime_type="text/markdown",
        size=len(text.encode()),
        _meta={"skillcell/version": skill.version, "skillcell/tools": tools},
    )
    return Doc(resource, text)


class SkillcellApp:
    """The catalog being served, the runner, and the MCP server that exposes them."""

    def __init__(
        self,
        config: Config,
        skills: tuple[Path | str, ...] | list[Path | str] = (),
        *,
        roots: list[Path] | None = None,
        environ: Mapping[str, str] | None = None,
        page_size: int = PAGE_SIZE,
        poll_interval: float = 1.0,
    ) -> None:
        self.config = config
        self.roots = list(roots) if roots is not None else search_path(skills)
        self.page_size = page_size
        self.poll_interval = poll_interval
        self._problems: set[str] = set()
        # Taken before the first scan, so a bundle added while we start is noticed too.
        self._signature = fingerprint(self.roots)
        self._state = Published.of(self._scan())
        self.runner = Runner(lambda: self._state.catalog, config, environ=environ)
        self.limiter = anyio.CapacityLimiter(config.concurrency)
        self.bus = InMemorySubscriptionBus()
        self.listen_handler = ListenHandler(self.bus)
        self._legacy: set[Connection] = set()
        self._runs: set[anyio.CancelScope] = set()
        self._stopping = False
        self.server = SkillcellServer(
            "skillcell",
            version=__version__,
            title="skillcell",
            instructions=INSTRUCTIONS,
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
            on_list_resources=self.list_resources,
            on_read_resource=self.read_resource,
            on_subscriptions_listen=self.listen_handler,
            # The 2026 HTTP transport checks Mcp-Param-* headers against the input schema;
            # without this it would run tools/list (every page) before each call.
            get_tool_input_schema=self._input_schema,
        )
        self.server.middleware.append(self._track_connection)

    @property
    def catalog(self) -> Catalog:
        return self._state.catalog

    # --- lifecycle ---------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[SkillcellApp]:
        """Watch the search path while serving; on exit stop every run and release engines."""
        self._stopping = False
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(partial(watch.watch, self.roots, self.rescan,
                                       interval=self.poll_interval, initial=self._signature))  # fmt: skip
                try:
                    yield self
                finally:
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                self.stop_runs()
                await self.runner.aclose()

    def stop_runs(self) -> None:
        """Cancel every run in progress (their sandboxes are killed) and refuse new ones."""
        self._stopping = True
        for scope in list(self._runs):
            scope.cancel()
        self.listen_handler.close()

    # --- catalog -----------------------------------------------------------------------------

    def _scan(self) -> Catalog:
        catalog = scan(self.roots, index=index_path(self.config))
        current = {str(p): p for p in catalog.problems}
        for text, problem in current.items():
            if text not in self._problems:
                # A broken bundle is skipped, never fatal: say so once, on stderr.
                log.log(logging.WARNING if problem.severity == "error" else logging.INFO,
                        "skill bundle %s", text)  # fmt: skip
        self._problems = set(current)
        return catalog

    async def rescan(self) -> None:
        """Scan the search path again and announce what changed, in both protocol eras."""
        old = self._state
        new = await anyio.to_thread.run_sync(lambda: Published.of(self._scan()))
        self._state = new
        tools_changed = old.tools_key() != new.tools_key()
        docs_changed = old.docs_key() != new.docs_key()
        log.info("search path changed: %d tools, %d documents%s", len(new.tools), len(new.docs),
                 "" if tools_changed or docs_changed else " (nothing to announce)")  # fmt: skip
        if tools_changed:
            await self.bus.publish(ToolsListChanged())
            for conn in self._ready_connections():
                await conn.send_tool_list_changed()
        if docs_changed:
            await self.bus.publish(ResourcesListChanged())
            for conn in self._ready_connections():
                await conn.send_resource_list_changed()

    def _ready_connections(self) -> list[Connection]:
        # Nothing may be sent to a client before its notifications/initialized.
        return [c for c in self._legacy if c.initialized.is_set()]

    async def _track_connection(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """Remember handshake-era connections: list_changed has no broadcast API there."""
        # mcp 2.3 has no public accessor for a request's Connection; check on SDK upgrades.
        conn: Connection | None = getattr(ctx.session, "_connection", None)
        if (conn is not None and conn not in self._legacy and conn.has_standalone_channel
                and conn.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS):  # fmt: skip
            self._legacy.add(conn)
            conn.exit_stack.callback(self._legacy.discard, conn)
        return await call_next(ctx)

    def _input_schema(self, name: str) -> Mapping[str, Any] | None:
        tool = self._state.tools.get(name)
        return tool.input_schema if tool is not None else None

    # --- tools -------------------------------------------------------------------------------

    async def list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        state = self._state
        names, next_cursor = _page(list(state.tools), params, self.page_size)
        return types.ListToolsResult(tools=[state.tools[n] for n in names], next_cursor=next_cursor)

    async def call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        hidden: dict[str, str] = {}
        try:
            return await self._call_tool(ctx, params, hidden)
        except MCPError:
            raise
        except Exception as exc:
            # An escaping exception would reach the client as its own text (JSON-RPC code 0).
            log.error("tools/call %s failed inside skillcell:\n%s", params.name,
                      scrub("".join(traceback.format_exception(exc)), hidden))  # fmt: skip
            return error_result(f"skillcell failed while running {params.name}: an internal "
                                "error; the server's log has the details")  # fmt: skip

    async def _call_tool(
        self,
        ctx: ServerRequestContext[Any, Any],
        params: types.CallToolRequestParams,
        hidden: dict[str, str],
    ) -> types.CallToolResult:
        name = params.name
        if name not in self._state.tools:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {name}")
        supplied = _meta_secrets(ctx.meta)
        if supplied is None:
            return error_result(f"_meta.{SECRETS_META_KEY} must be an object mapping secret "
                                "names to string values")  # fmt: skip
        use_cache = ctx.meta.get(CACHE_META_KEY, True) if isinstance(ctx.meta, Mapping) else True
        if not isinstance(use_cache, bool):
            return error_result(f"_meta.{CACHE_META_KEY} must be true or false")
        headers = from_headers(ctx.request.headers) if ctx.request is not None else {}
        hidden.update(headers)
        hidden.update({f"meta:{k}": v for k, v in supplied.items()})
        args = params.arguments if params.arguments is not None else {}
        progress = _Progress(ctx.session)
        try:
            # Off the event loop: a cacheable tool's plan hashes its whole bundle.
            tool, plan = await anyio.to_thread.run_sync(partial(
                self.runner.prepare, name, args, secret_sources=[supplied, headers]))  # fmt: skip
        except ToolNotFound:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {name}") from None  # rescanned away
        except ArgumentError as exc:
            return _argument_error(exc, hidden)
        except SkillcellError as exc:  # SecretMissing: names the secret, never a value
            return error_result(scrub(str(exc), hidden))
        hidden.update({f"plan:{k}": v for k, v in plan.secrets.items()})
        await progress("arguments validated")
        try:
            result = await self._execute(tool, plan, progress, use_cache=use_cache)
        except SkillcellError as error:  # NoEngine, EngineError
            return error_result(scrub(str(error), hidden), {"skillcell/call_id": plan.call_id})
        if result is None:
            return error_result(f"skillcell is shutting down: the run of {name} was stopped "
                                "and its sandbox removed", {"skillcell/call_id": plan.call_id})  # fmt: skip
        log.info("%s finished: exit %d on %s in %.0f ms%s (call %s)", name, result.exit_code,
                 result.engine, result.duration_ms, ", cached" if result.cached else "",
                 plan.call_id)  # fmt: skip
        if not result.outputs:
            return call_result(tool, plan, result, self.config.output_root)
        return await anyio.to_thread.run_sync(
            call_result, tool, plan, result, self.config.output_root
        )

    async def _execute(
        self, tool: Tool, plan: ExecutionPlan, progress: _Progress, *, use_cache: bool = True
    ) -> RunResult | None:
        """Run within the concurrency limit; None when stop_runs() cancelled the run."""
        scope = anyio.CancelScope()
        if self._stopping:
            scope.cancel()
        self._runs.add(scope)
        try:
            with scope:
                if self.limiter.available_tokens < 1:
                    await progress(f"queued behind {self.limiter.borrowed_tokens} running calls")
                async with self.limiter:
                    return await self.runner.execute(
                        tool, plan, progress=progress, use_cache=use_cache
                    )
        finally:
            self._runs.discard(scope)
        return None

    # --- resources ---------------------------------------------------------------------------

    async def list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        state = self._state
        uris, next_cursor = _page(list(state.docs), params, self.page_size)
        return types.ListResourcesResult(
            resources=[state.docs[u].resource for u in uris], next_cursor=next_cursor
        )

    async def read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        doc = self._state.docs.get(uri)
        if doc is not None:
            return types.ReadResourceResult(contents=[types.TextResourceContents(
                uri=uri, mime_type="text/markdown", text=doc.text)])  # fmt: skip
        if uri.startswith(OUTPUTS_URI):
            try:
                return await anyio.to_thread.run_sync(read_output, uri, self.config.output_root)
            except MCPError:
                raise
            except Exception:
                log.exception("resources/read %s failed", uri)
                raise MCPError(INTERNAL_ERROR, f"cannot read {uri}") from None
        raise MCPError(INVALID_PARAMS, f"Resource not found: {uri}")


class _Progress:
    """Runner progress messages as MCP progress notifications with an increasing counter."""

    def __init__(self, session: ServerSession) -> None:
        self.session = session
        self.count = 0

    async def __call__(self, message: str) -> None:
        self.count += 1
        try:
            # A no-op unless the caller sent a progress token.
            await self.session.report_progress(self.count, None, message)
        except Exception as exc:  # a client gone away must not fail the run it asked for
            log.debug("progress not delivered: %s", exc)


def _meta_secrets(meta: Any) -> dict[str, str] | None:
    """The call's `_meta` secrets; None when they are not a mapping of strings."""
    raw = meta.get(SECRETS_META_KEY) if isinstance(meta, Mapping) else None
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        return None
    return dict(raw)


def _argument_error(exc: ArgumentError, hidden: Mapping[str, str]) -> types.CallToolResult:
    # SEP-1303: invalid arguments are a tool execution error the model can correct.
    problems = [{"path": path, "message": scrub(message, hidden)} for path, message in exc.problems]
    lines = "\n".join(f"- {p['path']}: {p['message']}" for p in problems)
    return error_result(f"Invalid arguments for {exc.tool}:\n{lines}",
                        {"skillcell/argument_errors": problems})  # fmt: skip


def _page(
    keys: list[str], params: types.PaginatedRequestParams | None, size: int
) -> tuple[list[str], str | None]:
    """One page of sorted keys. The cursor names the last key given, so a catalog that changes
    between pages neither repeats nor skips what stayed."""
    start = 0
    if params is not None and params.cursor:
        start = bisect.bisect_right(keys, _decode_cursor(params.cursor))
    page = keys[start : start + size]
    more = start + size < len(keys)
    return page, (_encode_cursor(page[-1]) if more and page else None)


def _encode_cursor(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


def _decode_cursor(cursor: str) -> str:
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor.encode()))["after"]
    except Exception:
        raise MCPError(INVALID_PARAMS, "Invalid cursor") from None
    if not isinstance(after, str):
        raise MCPError(INVALID_PARAMS, "Invalid cursor")
    return after
