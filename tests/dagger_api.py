"""A local, recording stand-in for a Dagger engine session, for tests.

No Dagger engine can run on our machines, but ``dagger-io`` does not need one to
build and send its queries: when ``DAGGER_SESSION_PORT`` and ``DAGGER_SESSION_TOKEN``
are set it skips its CLI entirely and speaks GraphQL over HTTP to
``http://127.0.0.1:$PORT/query`` (HTTP basic auth, the token as user name).

:class:`DaggerAPI` is such an endpoint. It

* answers introspection from the real Dagger API schema
  (``../shared/dagger/schema.graphqls`` beside the repository, or the file named by
  ``SKILLCELL_DAGGER_SCHEMA``), so the SDK builds its queries against the real API;
* validates every query against that schema and records each failure in
  :attr:`DaggerAPI.errors` (together with unknown or mistyped object IDs, and any
  crash of the fake itself): a test asserts ``api.errors == []`` or calls
  :meth:`DaggerAPI.assert_clean`;
* records every query (:attr:`DaggerAPI.queries`) and every field it resolved
  (:attr:`DaggerAPI.calls`), and remembers the call chain behind every object ID it
  handed out (:meth:`DaggerAPI.describe`), so pipelines split over several queries
  (the SDK resolves object arguments to IDs with queries of their own) can be read
  back;
* resolves queries with plausible data: content-addressed IDs, ``sync`` returning
  the object's ID, ``export`` returning its path, canned leaf values
  (``api.responses["exitCode"] = 3``) and type-appropriate defaults otherwise;
* behaves like Dagger for ``withExec``: a non-zero exit code under the default
  ``expect: SUCCESS`` (or any exit code outside what ``expect`` allows) fails the
  evaluating fields downstream of that exec (``sync``, ``stdout``, ``exitCode``,
  ``export`` ...) with Dagger's exec error, whose extensions dagger-io turns into
  ``dagger.ExecError``;
* can be told to fail any field (``api.failures["withExec"] = api.exec_error(...)``);
* rejects a wrong token with HTTP 401.

Usage (a conftest.py fixture; :func:`running_dagger_api` sets the environment and
calls :meth:`DaggerAPI.assert_clean` at the end)::

    @pytest.fixture
    def dagger_api(monkeypatch):
        with running_dagger_api(monkeypatch) as api:
            yield api

    def test_x(dagger_api):
        dagger_api.responses["exitCode"] = 3
        ...  # run code that uses dagger-io
        assert dagger_api.calls_named("withExec")[0].args["args"] == ["python", "x.py"]

The module only needs the standard library and graphql-core (a dependency of gql,
hence of dagger-io); it works with graphql-core 3.2 and 3.3. ``pytest`` is imported
lazily, for the skip.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import secrets
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import graphql
from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
    is_abstract_type,
    is_composite_type,
    is_leaf_type,
)
from graphql.utilities import do_types_overlap
from graphql.validation import PossibleFragmentSpreadsRule, specified_rules

__all__ = [
    "SCHEMA_ENV",
    "Call",
    "DaggerAPI",
    "ProtocolError",
    "RecordedQuery",
    "Step",
    "default_schema_path",
    "require_schema",
    "running_dagger_api",
]

SCHEMA_ENV = "SKILLCELL_DAGGER_SCHEMA"

#: Leaf fields that make Dagger evaluate the pipeline behind them (and so run any
#: ``withExec`` in it). ``id`` and plain metadata (``envVariable``, ``workdir``...)
#: are lazy.
EVALUATING_FIELDS = frozenset(
    {
        "sync",
        "stdout",
        "stderr",
        "combinedOutput",
        "exitCode",
        "export",
        "exportImage",
        "publish",
        "contents",
        "entries",
        "glob",
        "digest",
        "size",
        "exists",
        "asTarball",
        "up",
    }
)


# --------------------------------------------------------------------------- schema


def default_schema_path() -> Path:
    """Where the Dagger API schema is expected: ``$SKILLCELL_DAGGER_SCHEMA`` or
    ``../shared/dagger/schema.graphqls`` beside the repository."""
    if override := os.environ.get(SCHEMA_ENV):
        return Path(override)
    return Path(__file__).resolve().parents[2] / "shared" / "dagger" / "schema.graphqls"


def require_schema(path: Path | str | None = None) -> Path:
    """Return the schema path, or ``pytest.skip`` the calling test if it is absent."""
    p = Path(path) if path is not None else default_schema_path()
    if not p.is_file():
        import pytest

        pytest.skip(
            f"Dagger API schema missing: {p} not found "
            f"(set {SCHEMA_ENV} to a copy of Dagger's schema.graphqls)"
        )
    return p


@functools.lru_cache(maxsize=4)
def _load_schema(path: str, mtime_ns: int) -> GraphQLSchema:
    del mtime_ns  # only part of the cache key
    return graphql.build_schema(Path(path).read_text(encoding="utf-8"))


_INTROSPECTION_CACHE: dict[tuple[Any, ...], dict[str, Any]] = {}
_INTROSPECTION_LOCK = threading.Lock()


def _types_overlap(schema: GraphQLSchema, a: Any, b: Any) -> bool:
    if do_types_overlap(schema, a, b):
        return True
    # graphql-core only intersects concrete implementations; Dagger's server also
    # accepts interface-implements-interface spreads (e.g. `... on Syncer` in a
    # `Node` context) even when no object type implements both.
    return (is_abstract_type(a) and schema.is_sub_type(a, b)) or (
        is_abstract_type(b) and schema.is_sub_type(b, a)
    )


class _PossibleFragmentSpreads(PossibleFragmentSpreadsRule):
    """PossibleFragmentSpreads, corrected the way Dagger's server corrects it."""

    def enter_inline_fragment(self, node: Any, *_args: Any) -> None:
        ctx = self.context
        frag_type, parent_type = ctx.get_type(), ctx.get_parent_type()
        if (
            is_composite_type(frag_type)
            and is_composite_type(parent_type)
            and not _types_overlap(ctx.schema, frag_type, parent_type)
        ):
            ctx.report_error(
                GraphQLError(
                    f"Fragment cannot be spread here as objects of type"
                    f" '{parent_type}' can never be of type '{frag_type}'.",
                    node,
                )
            )

    def enter_fragment_spread(self, node: Any, *_args: Any) -> None:
        ctx = self.context
        frag_type = self.get_fragment_type(node.name.value)
        parent_type = ctx.get_parent_type()
        if frag_type and parent_type and not _types_overlap(ctx.schema, frag_type, parent_type):
            ctx.report_error(
                GraphQLError(
                    f"Fragment '{node.name.value}' cannot be spread here as objects of"
                    f" type '{parent_type}' can never be of type '{frag_type}'.",
                    node,
                )
            )


VALIDATION_RULES = tuple(
    _PossibleFragmentSpreads if rule is PossibleFragmentSpreadsRule else rule
    for rule in specified_rules
)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Step:
    """One field call in a pipeline: ``Container.withExec(args: [...])``."""

    type: str
    field: str
    args: Mapping[str, Any]

    def __str__(self) -> str:
        if not self.args:
            return self.field
        inner = ", ".join(f"{k}: {json.dumps(v)}" for k, v in self.args.items())
        return f"{self.field}({inner})"

    def key(self) -> list[Any]:
        return [self.type, self.field, dict(self.args)]


@dataclass(frozen=True)
class _Obj:
    """An object value during execution: its concrete type and how it was made."""

    type: str
    chain: tuple[Step, ...]


@dataclass
class RecordedQuery:
    """One GraphQL request the endpoint received, and what it answered."""

    index: int
    text: str
    variables: dict[str, Any] | None
    operation_name: str | None
    introspection: bool = False
    valid: bool = True
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.response.get("errors") or [])

    @property
    def data(self) -> Any:
        return self.response.get("data")


@dataclass
class ProtocolError:
    """Something the real engine would reject, or a crash of this fake."""

    query_index: int
    message: str
    query: str

    def __str__(self) -> str:
        return f"query #{self.query_index}: {self.message}\n{self.query}"


@dataclass
class Call:
    """One field the endpoint resolved. Canned values and injected failures that are
    callables receive this."""

    api: DaggerAPI
    query_index: int
    type: str
    field: str
    args: dict[str, Any]  # as given in the query
    all_args: dict[str, Any]  # with the schema's defaults filled in
    chain: tuple[Step, ...]  # the pipeline of the object this field is read from

    @property
    def exec_step(self) -> Step | None:
        """This call if it is a ``withExec``, else the most recent one in :attr:`chain`."""
        if self.field == "withExec":
            return Step(self.type, self.field, self.all_args)
        for step in reversed(self.chain):
            if step.field == "withExec":
                return step
        return None

    @property
    def argv(self) -> list[str] | None:
        """The argv of :attr:`exec_step`, if any."""
        step = self.exec_step
        return list(step.args.get("args") or []) if step else None

    def describe(self) -> str:
        return ".".join(str(s) for s in (*self.chain, Step(self.type, self.field, self.args)))


class _Intentional(GraphQLError):
    """An error the fake raises on purpose (injected, or a simulated exec failure)."""


_NOTSET = object()


# --------------------------------------------------------------------------- endpoint


class DaggerAPI:
    """A threaded HTTP server that impersonates a Dagger engine session.

    Attributes a test may set before or between queries:

    ``responses``
        canned leaf values keyed by ``"Type.field"`` or ``"field"``; a value may be a
        callable taking a :class:`Call`. ``exitCode``, ``stdout`` and ``stderr`` also
        drive the ``withExec`` simulation (the callable's ``call.argv`` is the exec's).
    ``failures``
        fields to fail, same keys; the value is an exception (a ``GraphQLError`` keeps
        its extensions), or a callable taking a :class:`Call` and returning one or
        ``None`` (do not fail this time). See :meth:`exec_error`.
    ``evaluating_fields``
        leaf fields that run the pipeline's execs (default :data:`EVALUATING_FIELDS`).
    """

    def __init__(
        self,
        schema_path: Path | str | None = None,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        path = require_schema(schema_path)
        self.schema_path = path
        self.schema: GraphQLSchema = _load_schema(str(path), path.stat().st_mtime_ns)
        self.token = token or secrets.token_hex(16)
        self.host = host
        self._requested_port = port

        self.responses: dict[str, Any] = {"version": "v0.21.11"}
        self.failures: dict[str, Any] = {}
        self.evaluating_fields: set[str] = set(EVALUATING_FIELDS)

        self.queries: list[RecordedQuery] = []
        self.calls: list[Call] = []
        self.errors: list[ProtocolError] = []
        self.ids: dict[str, _Obj] = {}
        self.auth_failures = 0

        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> DaggerAPI:
        if self._server is not None:
            return self
        server = _Server((self.host, self._requested_port), _Handler)
        server.api = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="dagger-api", kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.drop_connections()  # like a dying engine: keep-alive sockets go too
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("DaggerAPI is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/query"

    def env(self) -> dict[str, str]:
        """The environment that points dagger-io at this endpoint."""
        return {"DAGGER_SESSION_PORT": str(self.port), "DAGGER_SESSION_TOKEN": self.token}

    def reset(self) -> None:
        """Forget recorded queries, calls and errors (IDs and settings stay)."""
        with self._lock:
            self.queries.clear()
            self.calls.clear()
            self.errors.clear()
            self.auth_failures = 0

    # ----------------------------------------------------------------- reading back

    @property
    def api_queries(self) -> list[RecordedQuery]:
        """Recorded queries other than introspection."""
        with self._lock:
            return [q for q in self.queries if not q.introspection]

    def calls_named(self, field_name: str, type_name: str | None = None) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self.calls
                if c.field == field_name and (type_name is None or c.type == type_name)
            ]

    def chain(self, object_id: str) -> tuple[Step, ...]:
        """The call chain behind an ID this endpoint handed out."""
        with self._lock:
            return self.ids[object_id].chain

    def describe(self, value: str | tuple[Step, ...], *, expand_ids: bool = True) -> str:
        """``container.from(address: "alpine").withExec(args: [...])`` for an ID or a
        chain; ID arguments are expanded to their own chains (``<Directory: ...>``)."""
        chain = self.chain(value) if isinstance(value, str) else value
        parts = []
        for step in chain:
            if expand_ids and step.args:
                args = {k: self._expand(v) for k, v in step.args.items()}
                step = Step(step.type, step.field, args)
            parts.append(str(step))
        return ".".join(parts)

    def _expand(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._expand(v) for v in value]
        if isinstance(value, str) and value in self.ids:
            obj = self.ids[value]
            return f"<{obj.type}: {self.describe(obj.chain)}>"
        return value

    def assert_clean(self) -> None:
        """Fail if any query was invalid against the schema, used an unknown or
        mistyped ID, or crashed the fake."""
        if self.errors:
            raise AssertionError(
                "Dagger API endpoint saw invalid requests:\n"
                + "\n".join(str(e) for e in self.errors)
            )

    # ----------------------------------------------------------------- error helpers

    @staticmethod
    def exec_error(
        exit_code: int = 1,
        stdout: str = "",
        stderr: str = "",
        *,
        cmd: list[str] | None = None,
        message: str | None = None,
    ) -> Callable[[Call], GraphQLError]:
        """A failure (for :attr:`failures`) shaped like the engine's exec error:
        extensions ``{"_type": "EXEC_ERROR", "cmd", "exitCode", "stdout",
        "stderr"}``, which dagger-io raises as ``dagger.ExecError``. ``cmd`` defaults
        to the argv of the pipeline's last ``withExec``."""

        def make(call: Call) -> GraphQLError:
            argv = cmd if cmd is not None else (call.argv or [])
            return _exec_error(argv, exit_code, stdout, stderr, message)

        return make

    @staticmethod
    def query_error(message: str, **extensions: Any) -> GraphQLError:
        """A plain GraphQL error (for :attr:`failures`); dagger-io raises
        ``dagger.QueryError``."""
        return GraphQLError(message, extensions=extensions or None)

    # ----------------------------------------------------------------- HTTP entry

    def check_auth(self, header: str | None) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.token}:".encode()).decode()
        ok = header is not None and secrets.compare_digest(header.strip(), expected)
        if not ok:
            with self._lock:
                self.auth_failures += 1
        return ok

    def handle(self, payload: Any) -> dict[str, Any]:
        """Answer one GraphQL-over-HTTP request body (already JSON-decoded)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            with self._lock:
                index = len(self.queries)
                self.queries.append(
                    RecordedQuery(index, json.dumps(payload), None, None, valid=False)
                )
                self._error(index, "request body is not a GraphQL request", str(payload))
            return {"errors": [{"message": "request body is not a GraphQL request"}]}

        text: str = payload["query"]
        variables = payload.get("variables")
        operation_name = payload.get("operationName")
        with self._lock:
            rec = RecordedQuery(len(self.queries), text, variables, operation_name)
            self.queries.append(rec)

        try:
            document = graphql.parse(text)
        except GraphQLError as e:
            rec.valid = False
            self._error(rec.index, f"syntax error: {e.message}", text)
            rec.response = {"errors": [e.formatted]}
            return rec.response

        problems = graphql.validate(self.schema, document, VALIDATION_RULES)
        if problems:
            rec.valid = False
            for p in problems:
                self._error(rec.index, f"invalid against the Dagger schema: {p.message}", text)
            rec.response = {"errors": [p.formatted for p in problems]}
            return rec.response

        rec.introspection = _is_introspection(document, operation_name)
        if rec.introspection:
            rec.response = self._introspect(text, document, variables, operation_name)
            return rec.response

        result = graphql.execute(
            self.schema,
            document,
            root_value=_Obj("Query", ()),
            context_value=rec.index,
            variable_values=variables,
            operation_name=operation_name,
            field_resolver=self._resolve,
            type_resolver=self._resolve_type,
        )
        assert not hasattr(result, "__await__"), "resolvers are synchronous"
        rec.response = dict(result.formatted)  # type: ignore[union-attr]
        return rec.response

    def _introspect(
        self, text: str, document: Any, variables: Any, operation_name: str | None
    ) -> dict[str, Any]:
        # Shared by all endpoints on the same schema object: answering the SDK's
        # introspection costs ~0.15 s, and every test connects afresh.
        key = (id(self.schema), text, json.dumps(variables, sort_keys=True), operation_name)
        with _INTROSPECTION_LOCK:
            cached = _INTROSPECTION_CACHE.get(key)
        if cached is None:
            result = graphql.execute(
                self.schema, document, variable_values=variables, operation_name=operation_name
            )
            cached = dict(result.formatted)  # type: ignore[union-attr]
            with _INTROSPECTION_LOCK:
                _INTROSPECTION_CACHE[key] = cached
        return cached

    def _error(self, index: int, message: str, query: str) -> None:
        with self._lock:
            self.errors.append(ProtocolError(index, message, query))

    # ----------------------------------------------------------------- resolution

    def _resolve_type(self, value: Any, info: Any, abstract_type: Any) -> str | None:
        return value.type if isinstance(value, _Obj) else None

    def _resolve(self, *pos: Any, **args: Any) -> Any:
        # Dagger has arguments called `source`: never bind them to parameters.
        parent, info = pos
        try:
            return self._resolve_field(parent, info, args)
        except _Intentional:
            raise
        except GraphQLError as e:
            self._error(info.context, e.message, self.queries[info.context].text)
            raise
        except Exception as e:  # a bug in the fake (or in a test's callable)
            self._error(info.context, f"{type(e).__name__}: {e}", self.queries[info.context].text)
            raise

    def _resolve_field(self, parent: _Obj, info: Any, all_args: dict[str, Any]) -> Any:
        given = {a.name.value for a in info.field_nodes[0].arguments or ()}
        args = {k: v for k, v in all_args.items() if k in given}
        call = Call(
            api=self,
            query_index=info.context,
            type=parent.type,
            field=info.field_name,
            args=args,
            all_args=dict(all_args),
            chain=parent.chain,
        )
        with self._lock:
            self.calls.append(call)

        field_def = info.parent_type.fields[info.field_name]
        self._check_id_args(field_def, all_args)
        self._inject_failure(call)

        return_type = info.return_type
        named = get_named_type(return_type)
        if is_leaf_type(named):
            if call.field in self.evaluating_fields:
                self._run_execs(call)
            return self._leaf(call, return_type, named)
        return self._object(call, return_type, named)

    def _object(self, call: Call, return_type: Any, named: Any) -> Any:
        if call.type == "Query" and call.field == "node":
            obj = self.ids.get(call.all_args["id"])
            if obj is None:
                raise GraphQLError(f"failed to load ID {call.all_args['id']!r}: unknown ID")
            return obj
        canned = self._canned(call)
        if canned is not _NOTSET:
            return canned
        if _is_list(return_type):
            return []
        step = Step(call.type, call.field, call.args)
        return _Obj(self._concrete(named), (*call.chain, step))

    def _concrete(self, named: Any) -> str:
        if isinstance(named, GraphQLObjectType):
            return named.name
        possible = sorted(t.name for t in self.schema.get_possible_types(named))
        if not possible:
            raise GraphQLError(f"no object type implements {named.name}")
        return possible[0]

    def _leaf(self, call: Call, return_type: Any, named: Any) -> Any:
        canned = self._canned(call)
        if canned is not _NOTSET:
            return canned
        if call.field in ("id", "sync") and named.name == "ID":
            return self._id_for(_Obj(call.type, call.chain))
        if call.field == "export" and "path" in call.all_args:
            return call.all_args["path"]
        if _is_list(return_type):
            return []
        return _default_scalar(named, isinstance(return_type, GraphQLNonNull))

    def _canned(self, call: Call) -> Any:
        for key in (f"{call.type}.{call.field}", call.field):
            if key in self.responses:
                value = self.responses[key]
                return value(call) if callable(value) else value
        return _NOTSET

    def _inject_failure(self, call: Call) -> None:
        for key in (f"{call.type}.{call.field}", call.field):
            if key in self.failures:
                failure = self.failures[key]
                if callable(failure) and not isinstance(failure, BaseException):
                    failure = failure(call)
                if failure is None:
                    return
                if isinstance(failure, GraphQLError):
                    raise _Intentional(failure.message, extensions=failure.extensions)
                raise _Intentional(str(failure))

    def _run_execs(self, call: Call) -> None:
        """Fail like Dagger if an exec in the pipeline exits outside its ``expect``."""
        for i, step in enumerate(call.chain):
            if step.field != "withExec":
                continue
            exec_call = Call(
                api=self,
                query_index=call.query_index,
                type="Container",
                field="exitCode",
                args={},
                all_args={},
                chain=call.chain[: i + 1],
            )
            code = self._exec_value(exec_call, "exitCode", 0)
            expect = step.args.get("expect", "SUCCESS")
            if _exit_allowed(expect, code):
                continue
            stdout = self._exec_value(exec_call, "stdout", "")
            stderr = self._exec_value(exec_call, "stderr", "")
            raise _exec_error(list(step.args.get("args") or []), code, stdout, stderr, None)

    def _exec_value(self, call: Call, name: str, default: Any) -> Any:
        for key in (f"Container.{name}", name):
            if key in self.responses:
                value = self.responses[key]
                if callable(value):
                    return value(
                        Call(self, call.query_index, "Container", name, {}, {}, call.chain)
                    )
                return value
        return default

    def _id_for(self, obj: _Obj) -> str:
        blob = json.dumps([obj.type, [s.key() for s in obj.chain]], sort_keys=True)
        digest = hashlib.sha256(blob.encode()).hexdigest()[:32]
        object_id = f"fakeid:{obj.type}:{digest}"
        with self._lock:
            self.ids.setdefault(object_id, obj)
        return object_id

    def _check_id_args(self, field_def: Any, all_args: dict[str, Any]) -> None:
        for name, arg_def in field_def.args.items():
            if get_named_type(arg_def.type).name != "ID" or all_args.get(name) is None:
                continue
            expected = _expected_type(arg_def)
            values = all_args[name] if isinstance(all_args[name], list) else [all_args[name]]
            for value in values:
                obj = self.ids.get(value)
                if obj is None:
                    raise GraphQLError(f"argument {name!r}: unknown ID {value!r}")
                if expected and not self._is_a(obj.type, expected):
                    raise GraphQLError(
                        f"argument {name!r}: expected a {expected} ID, got a {obj.type} ID"
                    )

    def _is_a(self, type_name: str, expected: str) -> bool:
        if type_name == expected:
            return True
        t, e = self.schema.get_type(type_name), self.schema.get_type(expected)
        return bool(
            t and e and is_abstract_type(e) and self.schema.is_sub_type(e, t)  # type: ignore[arg-type]
        )


# --------------------------------------------------------------------------- helpers


def _exit_allowed(expect: str, code: int) -> bool:
    # Dagger's ReturnType: ANY = 0-127 and 192-255, FAILURE = 1-127 and 192-255;
    # 128-191 (killed by a signal) always fails.
    if expect == "SUCCESS":
        return code == 0
    signalled = 128 <= code <= 191
    if expect == "ANY":
        return not signalled
    if expect == "FAILURE":
        return code != 0 and not signalled
    return False


def _exec_error(
    argv: list[str], exit_code: int, stdout: str, stderr: str, message: str | None
) -> _Intentional:
    return _Intentional(
        message
        or f'process "{" ".join(argv)}" did not complete successfully: exit code: {exit_code}',
        extensions={
            "_type": "EXEC_ERROR",
            "cmd": list(argv),
            "exitCode": exit_code,
            "stdout": stdout,
            "stderr": stderr,
        },
    )


def _is_list(t: Any) -> bool:
    while isinstance(t, GraphQLNonNull):
        t = t.of_type
    return isinstance(t, GraphQLList)


def _default_scalar(named: Any, non_null: bool) -> Any:
    if isinstance(named, GraphQLEnumType):
        return next(iter(named.values))
    assert isinstance(named, GraphQLScalarType)
    return {
        "String": "",
        "Int": 0,
        "Float": 0.0,
        "Boolean": True,
        "ID": "fakeid:" + secrets.token_hex(8),
        "JSON": "null",
        "Platform": "linux/amd64",
        "Void": "" if non_null else None,
    }.get(named.name, "")


def _expected_type(arg_def: Any) -> str | None:
    node = getattr(arg_def, "ast_node", None)
    for directive in getattr(node, "directives", None) or ():
        if directive.name.value == "expectedType":
            for arg in directive.arguments or ():
                if arg.name.value == "name":
                    return str(graphql.value_from_ast_untyped(arg.value))
    return None


def _is_introspection(document: Any, operation_name: str | None) -> bool:
    ops = [d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]
    if operation_name:
        ops = [o for o in ops if o.name and o.name.value == operation_name]
    if not ops:
        return False
    selections = ops[0].selection_set.selections or ()
    fields = [s for s in selections if isinstance(s, graphql.FieldNode)]
    return bool(fields) and all(f.name.value.startswith("__") for f in fields)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # open keep-alive connections must not block stop()
    api: DaggerAPI

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def drop_connections(self) -> None:
        with self.connections_lock:
            conns, self.connections = self.connections, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (e.g. on its own timeout) is not an error here.
        if isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_POST(self) -> None:
        api: DaggerAPI = self.server.api
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.split("?", 1)[0] != "/query":
            self._send(404, {"message": "not found"})
            return
        if not api.check_auth(self.headers.get("Authorization")):
            self._send(401, {"message": "unauthorized"}, {"WWW-Authenticate": "Basic"})
            return
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            self._send(400, {"message": "invalid JSON"})
            return
        self._send(200, api.handle(payload))

    def do_GET(self) -> None:
        self._send(405, {"message": "use POST"})

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def running_dagger_api(monkeypatch: Any, **kwargs: Any) -> Iterator[DaggerAPI]:
    """Run a :class:`DaggerAPI` with ``DAGGER_SESSION_PORT``/``DAGGER_SESSION_TOKEN``
    pointing at it (set through ``monkeypatch``), and fail on invalid queries at the
    end. Skips the test if the schema is missing. For a conftest.py fixture::

        @pytest.fixture
        def dagger_api(monkeypatch):
            with running_dagger_api(monkeypatch) as api:
                yield api
    """
    with DaggerAPI(**kwargs) as api:
        for key, value in api.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("_EXPERIMENTAL_DAGGER_CLI_BIN", raising=False)
        yield api
        api.assert_clean()
