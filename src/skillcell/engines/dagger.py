"""Dagger: every call is a pipeline in one Dagger engine session held for the server's lifetime.

Where the engine is (read from the environment at call time, here and nowhere else):
- `DAGGER_SESSION_PORT` + `DAGGER_SESSION_TOKEN`: set by `dagger run skillcell ...`. dagger-io
  then talks GraphQL to that session on 127.0.0.1 and starts no CLI of its own.
- otherwise a Dagger CLI: `_EXPERIMENTAL_DAGGER_CLI_BIN` if set, else `dagger` on PATH.
  dagger-io runs `dagger session` once, on the first call, and stops it in `aclose()`.
  skillcell never lets dagger-io download a CLI: with neither, the engine is unavailable.
- `_EXPERIMENTAL_DAGGER_RUNNER_HOST` (`docker-container://NAME`, `unix://...`, `tcp://...`):
  where that CLI finds its engine, e.g. a remote one. Only the `dagger` child process reads
  it; it reaches the child unchanged through the inherited environment. Without it the CLI
  starts the engine as a container with a local runtime (docker, podman, nerdctl, finch).

The pipeline of one call, in this order (tested query by query in tests/engines/test_dagger.py):
- `from(plan.image or python:3.11-slim)`; then, when the bundle has build hooks, the bundle
  copied to /workspace, the package caches mounted (pip, npm, apt: named cache volumes shared
  by every bundle's hooks, as trusted as the bundles you install), each hook run as
  `sh -c HOOK` as the image's user with network, and the caches unmounted again. Nothing of
  the call comes before this point, so Dagger's cache keeps these layers across calls; the
  hooks' output under /workspace (node_modules, a venv) is part of them. The bundle is
  copied in for the hooks rather than mounted because what Dagger keeps of writes into a
  mount is not something we could verify without an engine. This part is synced on its own
  (deadline PREPARE_TIMEOUT), so pulls, uploads and hooks never count against the tool's limit.
- /workspace: the bundle (or the hooks' /workspace) mounted read-only, and the workdir;
- HOME=/tmp, LANG=C.UTF-8 and the declared env; each secret through `setSecret` +
  `withSecretVariable` only, under a name carrying an HMAC of its value with a per-process
  key: Dagger keys secrets by name, so two values never share a cache entry, and no query
  but `setSecret`'s own argument carries the value;
- /inputs/args.json and the declared input files copied read-only under /inputs; an empty
  /outputs owned by the sandbox user; every command then runs as 65534:65534;
- a not-cacheable plan gets SKILLCELL_CALL=<call id> right before the exec, so Dagger runs it
  again; a cacheable one does not, and Dagger may answer it from its cache;
- `withExec(["timeout", "-s", "KILL", LIMIT, *argv], expect: ANY)`: argv as-is, no shell.
  Dagger's API has no exec timeout, so the image must have a `timeout` (coreutils or
  busybox; python:3.11-slim has one). Killed, it exits 137, which Dagger reports as a failed
  exec (never cached); it becomes exit 124 with timed_out. A client-side deadline of the
  limit plus a grace period backs this up.
- one `sync`, then exit code, stdout and stderr in one query on the synced container, then
  `/outputs` exported to a staging directory and published atomically (outputs.publish).
  Dagger writes nothing back to the host except this export.

What Dagger cannot do, said by `unsupported()` so selection refuses it unless the config
accepts the risk: switch networking off, or cap memory, CPUs or pids per exec (engine-level
only; dagger/dagger issues on per-exec resource limits and network isolation are open).
Streams and outputs are capped after they arrive: the engine transfers them whole.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import hmac
import importlib.util
import logging
import math
import os
import shlex
import shutil
import socket
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from .. import outputs
from ..config import Config
from ..errors import EngineError, EngineUnavailable
from ..plan import (
    ARGS_FILE,
    CPUS,
    MEMORY,
    NETWORK_OFF,
    OUTPUTS,
    PIDS,
    WORKSPACE,
    ExecutionPlan,
    RunResult,
)
from ..secrets import scrub
from . import Availability, Engine, Progress, no_progress

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "python:3.11-slim"
USER = "65534:65534"
SESSION_PORT = "DAGGER_SESSION_PORT"
SESSION_TOKEN = "DAGGER_SESSION_TOKEN"
CLI_BIN = "_EXPERIMENTAL_DAGGER_CLI_BIN"
RUNNER_HOST = "_EXPERIMENTAL_DAGGER_RUNNER_HOST"
INSTALL_HINT = "install it from https://docs.dagger.io/install"
RUNTIMES = ("docker", "podman", "nerdctl", "finch")  # what the CLI can start its engine with
CALL_ENV = "SKILLCELL_CALL"  # the cache buster of a not-cacheable plan
# (mount point, cache volume, sharing): apt takes a lock of its own, so writers queue.
CACHES = (
    ("/root/.cache/pip", "skillcell-pip", "SHARED"),
    ("/root/.npm", "skillcell-npm", "SHARED"),
    ("/var/cache/apt", "skillcell-apt", "LOCKED"),
)
ALWAYS_EXCLUDED = (".git", "__pycache__")
# What catalog.bundle_digest skips too: hooks remake them, so they are not uploaded for hooks.
HOOK_EXCLUDED = ("node_modules", ".venv", "venv")

PROBE_TIMEOUT = 0.5  # seconds for the TCP check of a session port: available() never hangs
CONNECT_TIMEOUT = 10.0  # seconds for each HTTP connect to the session
SESSION_START_TIMEOUT = 300.0  # seconds for a spawned `dagger session` (may pull its engine)
PREPARE_TIMEOUT = 600.0  # seconds for image pull, bundle upload and build hooks
COLLECT_TIMEOUT = 300.0  # seconds for reading the streams and exporting /outputs
CLIENT_GRACE = 15.0  # seconds past the tool's limit before the client gives up on the exec
CLOSE_TIMEOUT = 30.0  # seconds for `aclose()` to stop the session
FAILURE_TTL = 30.0  # seconds a failed session start keeps available() false
TAIL_LINES = 20
KILLED = 137  # 128 + SIGKILL: what `timeout -s KILL` (or an OOM kill) leaves


@dataclass
class _Streams:
    exit_code: int
    stdout: str
    stderr: str


class DaggerEngine(Engine):
    name = "dagger"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.default_image = DEFAULT_IMAGE
        self.client_grace = CLIENT_GRACE
        self.prepare_timeout = PREPARE_TIMEOUT
        # Names secrets by an HMAC of their value; per process, so names mean nothing elsewhere.
        self._secret_key = os.urandom(32)
        self._lock = anyio.Lock()
        self._connection: Any = None  # dagger.Connection, entered
        self._client: Any = None  # dagger.Client of that connection
        self._loop: object = None  # the event loop the session belongs to
        self._failure: tuple[float, str] | None = None  # (when, why) the last start failed

    # -- availability -------------------------------------------------------------------

    def available(self) -> Availability:
        if importlib.util.find_spec("dagger") is None:
            return Availability(False, "dagger-io is not installed (pip install dagger-io)")
        if self._failure is not None and time.monotonic() - self._failure[0] < FAILURE_TTL:
            return Availability(False, self._failure[1])
        return _probe(os.environ)

    def image_id(self, plan: ExecutionPlan) -> str:
        return plan.image or self.default_image  # the reference; its digest needs a query

    def unsupported(self, plan: ExecutionPlan) -> set[str]:
        # The image is honoured; networking and per-exec resource limits are not in the API.
        return {NETWORK_OFF, MEMORY, CPUS, PIDS}

    # -- run ----------------------------------------------------------------------------

    async def run(self, plan: ExecutionPlan, progress: Progress = no_progress) -> RunResult:
        started = time.monotonic()
        dagger = _import_dagger()
        client = await self._session()
        await progress("dagger session ready")
        staging = outputs.staging_dir(plan.output_dir)
        try:
            base, workspace = await self._prepare(client, plan)
            await progress("image ready")
            argv = exec_argv(plan)
            ctr = self._call_container(client, plan, base, workspace).with_exec(
                argv, expect=dagger.ReturnType.ANY
            )
            notes: list[str] = []
            exec_started = time.monotonic()
            try:
                with anyio.fail_after(plan.limits.timeout + self.client_grace):
                    synced = await ctr.sync()
            except TimeoutError:
                return self._abandoned(plan, started)
            except dagger.ExecError as exc:
                if list(exc.command) != argv:
                    raise self._error(exc, plan, "running") from exc
                # Outside expect=ANY: killed by a signal, our timeout's SIGKILL included.
                # Dagger keeps no snapshot of a failed exec, so there is no /outputs to export.
                elapsed = time.monotonic() - exec_started
                streams = _Streams(int(exc.exit_code), exc.stdout or "", exc.stderr or "")
                return self._result(plan, streams, started, elapsed, (), notes, killed=True)
            except dagger.DaggerError as exc:
                raise await self._failed(exc, plan, "running", client) from exc
            elapsed = time.monotonic() - exec_started
            await progress("exporting")
            try:
                with anyio.fail_after(COLLECT_TIMEOUT):
                    streams = await _read_streams(synced)
                    await synced.directory(OUTPUTS).export(str(staging))
            except TimeoutError as exc:
                raise EngineError(
                    self.name,
                    f"{plan.tool}: reading the results took over {COLLECT_TIMEOUT:g}s",
                ) from exc
            except dagger.DaggerError as exc:
                raise await self._failed(exc, plan, f"exporting {OUTPUTS}", client) from exc
            export = outputs.publish(staging, plan.output_dir, plan.limits.outputs)
            notes.extend(export.notes)
            return self._result(plan, streams, started, elapsed, export.files, notes)
        finally:
            outputs.discard(staging)  # a no-op once published

    def _result(
        self,
        plan: ExecutionPlan,
        streams: _Streams,
        started: float,
        elapsed: float,
        files: tuple[Path, ...],
        notes: list[str],
        *,
        killed: bool = False,
    ) -> RunResult:
        code = streams.exit_code
        # GNU and busybox `timeout -s KILL` die with their tool: 137, and a 137 before the
        # limit passed was some other SIGKILL (the engine host's OOM killer, say). 124 is the
        # other timeout convention (`timeout` sending a signal it survives), taken as one too.
        timed_out = code == 124 or (code == KILLED and elapsed >= plan.limits.timeout)
        if timed_out:
            code = 124
            notes.append(
                f"timed out after {plan.limits.timeout:g}s: killed inside the container "
                "by `timeout -s KILL`; its /outputs were not exported"
                if killed
                else f"timed out after {plan.limits.timeout:g}s"
            )
        elif killed:
            signal = code - 128 if 128 < code < 192 else None
            why = " (out of memory on the Dagger engine's host?)" if signal == 9 else ""
            notes.append(
                f"killed by signal {signal} (exit {code}) before its time limit{why}; "
                "its /outputs were not exported"
                if signal
                else f"the command failed outside what Dagger allows (exit {code})"
            )
        if code == 127 and _lacks_timeout(streams.stderr):
            notes.append(_no_timeout_hint(plan.image or self.default_image))
        out = outputs.CappedBuffer(plan.limits.stdout)
        err = outputs.CappedBuffer(plan.limits.stderr)
        out.write(streams.stdout.encode("utf-8", errors="replace"))
        err.write(streams.stderr.encode("utf-8", errors="replace"))
        return RunResult(
            exit_code=code,
            stdout=out.text(),
            stderr=err.text(),
            engine=self.name,
            duration_ms=(time.monotonic() - started) * 1000,
            outputs=files,
            output_dir=plan.output_dir if files else None,
            stdout_truncated=out.truncated,
            stderr_truncated=err.truncated,
            timed_out=timed_out,
            notes=tuple(notes),
        )

    def _abandoned(self, plan: ExecutionPlan, started: float) -> RunResult:
        waited = plan.limits.timeout + self.client_grace
        return RunResult(
            exit_code=124,
            stdout="",
            stderr="",
            engine=self.name,
            duration_ms=(time.monotonic() - started) * 1000,
            timed_out=True,
            notes=(
                f"timed out: no answer from the Dagger engine within {waited:g}s (the "
                f"{plan.limits.timeout:g}s limit plus {self.client_grace:g}s); the request "
                "was abandoned and nothing was exported",
            ),
        )

    # -- the pipeline -------------------------------------------------------------------

    async def _prepare(self, client: Any, plan: ExecutionPlan) -> tuple[Any, Any]:
        """The synced image (after the build hooks) and the directory to mount at /workspace.

        Synced before the call so that pulls, uploads and hooks never eat into the tool's time
        limit, and their failures name what failed.
        """
        dagger = _import_dagger()
        image = plan.image or self.default_image
        excluded = [*ALWAYS_EXCLUDED, *(HOOK_EXCLUDED if plan.build_hooks else ())]
        bundle = client.host().directory(str(plan.bundle.resolve()), exclude=excluded)
        ctr = client.container().from_(image)
        doing = f"preparing {image}"
        if plan.build_hooks:
            doing = f"running the build hooks on {image}"
            ctr = ctr.with_directory(WORKSPACE, bundle).with_workdir(WORKSPACE)
            for path, volume, sharing in CACHES:
                ctr = ctr.with_mounted_cache(
                    path, client.cache_volume(volume), sharing=dagger.CacheSharingMode(sharing)
                )
            for hook in plan.build_hooks:
                ctr = ctr.with_exec(["sh", "-c", hook])
            for path, _, _ in CACHES:
                ctr = ctr.without_mount(path)  # the tool never sees the shared caches
        try:
            with anyio.fail_after(self.prepare_timeout):
                ctr = await ctr.sync()
                if plan.build_hooks:
                    return ctr, ctr.directory(WORKSPACE)
                doing = f"uploading the bundle {plan.bundle}"
                return ctr, await bundle.sync()
        except TimeoutError as exc:
            raise EngineError(
                self.name, f"{plan.tool}: {doing} took over {self.prepare_timeout:g}s"
            ) from exc
        except dagger.ExecError as exc:
            raise self._hook_error(exc, plan) from exc
        except dagger.DaggerError as exc:
            raise await self._failed(exc, plan, doing, client) from exc

    def _call_container(self, client: Any, plan: ExecutionPlan, base: Any, workspace: Any) -> Any:
        """Everything of one call on top of the prepared image, up to (not including) the exec."""
        ctr = base.with_mounted_directory(WORKSPACE, workspace, read_only=True)
        ctr = ctr.with_workdir(WORKSPACE)
        env = {"HOME": "/tmp", "LANG": "C.UTF-8", **plan.env}
        for key in sorted(env):  # a stable order keeps Dagger's cache key stable
            ctr = ctr.with_env_variable(key, env[key])
        for key in sorted(plan.secrets):
            value = plan.secrets[key]
            ctr = ctr.with_secret_variable(
                key, client.set_secret(self.secret_name(key, value), value)
            )
        ctr = ctr.with_new_file(ARGS_FILE, plan.args_json.decode("utf-8"), permissions=0o444)
        for item in plan.input_files:
            source = client.host().file(str(item.host.resolve()))
            ctr = ctr.with_file(item.sandbox, source, permissions=0o444)
        ctr = ctr.with_directory(OUTPUTS, client.directory(), owner=USER)
        ctr = ctr.with_user(USER)
        if not plan.cacheable:
            ctr = ctr.with_env_variable(CALL_ENV, plan.call_id)
        return ctr

    def secret_name(self, key: str, value: str) -> str:
        """The name a secret is set under: its variable and an HMAC of the value, never the value."""
        digest = hmac.new(self._secret_key, f"{key}\0{value}".encode(), hashlib.sha256)
        return f"skillcell-{key}-{digest.hexdigest()[:32]}"

    # -- interactive --------------------------------------------------------------------

    async def interactive(self, plan: ExecutionPlan, command: Sequence[str]) -> int:
        """Open Dagger's terminal in the plan's container; the dagger CLI draws it."""
        hint = f"run it under the Dagger CLI: dagger run skillcell exec {plan.tool} -- CMD"
        if not sys.stdin.isatty():
            raise EngineError(self.name, f"an interactive terminal needs a TTY on stdin; {hint}")
        if not (os.environ.get(SESSION_PORT) and os.environ.get(SESSION_TOKEN)):
            # A `dagger session` spawned by dagger-io has pipes, not our terminal, to attach to.
            raise EngineError(self.name, f"Dagger's terminal is drawn by its CLI; {hint}")
        dagger = _import_dagger()
        try:
            # A connection of its own: `skillcell exec` is one command, and no aclose follows.
            async with dagger.Connection(self._sdk_config()) as client:
                base, workspace = await self._prepare(client, plan)
                ctr = self._call_container(client, plan, base, workspace)
                await ctr.terminal(cmd=list(command)).sync()
        except dagger.DaggerError as exc:
            raise self._error(exc, plan, "opening a terminal") from exc
        return 0

    # -- session ------------------------------------------------------------------------

    def _sdk_config(self, log_output: _LogTail | None = None) -> Any:
        dagger = _import_dagger()
        return dagger.Config(
            # The default retry re-sends a whole query (an exec included) up to 5 times.
            retry=None,
            # No read timeout: a query waits as long as its exec; our deadlines bound that.
            timeout=dagger.Timeout(None, connect=CONNECT_TIMEOUT),
            # The spawned CLI's stderr and dagger-io's spinner: kept off our stderr (an MCP
            # stdio server's log) unless debugging, and quoted when the session fails.
            log_output=log_output or _LogTail(self.config.log_level == "debug"),
        )

    async def _session(self) -> Any:
        """The engine's one dagger.Client, connected on first use."""
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError as exc:
            raise EngineError(self.name, "dagger-io (through gql) needs asyncio") from exc
        async with self._lock:
            if self._client is not None and self._loop is not loop:
                # Opened under an event loop that has ended: it cannot be closed from here.
                log.warning("dagger: dropping a session of a finished event loop")
                self._client = self._connection = None
            if self._client is None:
                self._client = await self._connect()
                self._loop = loop
            return self._client

    async def _connect(self) -> Any:
        dagger = _import_dagger()
        status = _probe(os.environ)
        if not status:
            raise EngineUnavailable(self.name, status.reason)
        cli_log = _LogTail(self.config.log_level == "debug")
        connection = dagger.Connection(self._sdk_config(cli_log))
        try:
            # dagger-io reads the CLI's first line in a worker thread that cannot be
            # cancelled: a CLI that never answers stalls past this deadline.
            with anyio.fail_after(SESSION_START_TIMEOUT), _cli_bin(os.environ):
                client = await connection.__aenter__()
        except TimeoutError as exc:
            why = f"no session within {SESSION_START_TIMEOUT:g}s"
            raise self._start_failed(why, await cli_log.settled()) from exc
        except dagger.DaggerError as exc:  # ProvisionError, ClientConnectionError, ...
            raise self._start_failed(str(exc), await cli_log.settled()) from exc
        self._connection = connection
        self._failure = None
        log.info("dagger: session open (%s)", status.reason)
        return client

    def _start_failed(self, why: str, cli_stderr: str) -> EngineUnavailable:
        reason = f"Dagger engine error: could not open a session: {_tail(why)}"
        if cli_stderr and cli_stderr not in why:
            reason += f"; the dagger CLI said:\n{_tail(cli_stderr)}"
        self._failure = (time.monotonic(), reason)
        return EngineUnavailable(self.name, reason)

    async def _drop_session(self, client: Any = None) -> None:
        """Close the session; with `client`, only if it is still that one (calls race here)."""
        async with self._lock:
            if client is not None and client is not self._client:
                return
            connection, self._connection, self._client = self._connection, None, None
        if connection is not None:
            with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
                try:
                    await connection.close()
                except Exception as exc:  # closing a broken session may fail; it is gone anyway
                    log.warning("dagger: closing the session failed: %s", exc)

    async def aclose(self) -> None:
        await self._drop_session()

    # -- errors -------------------------------------------------------------------------

    async def _failed(
        self, exc: Exception, plan: ExecutionPlan, doing: str, client: Any
    ) -> EngineError:
        dagger = _import_dagger()
        if isinstance(exc, dagger.TransportError):
            await self._drop_session(client)  # the next call opens a new one
        return self._error(exc, plan, doing)

    def _error(self, exc: Exception, plan: ExecutionPlan, doing: str) -> EngineError:
        """dagger-io's exception as ours, saying what failed and what to do; secrets scrubbed."""
        dagger = _import_dagger()
        where = f"{plan.tool}: {doing}"
        if isinstance(exc, dagger.ProvisionError | dagger.ClientConnectionError):
            message = f"{where}: no Dagger session: {exc}"
            return EngineUnavailable(self.name, scrub(message, plan.secrets))
        if isinstance(exc, dagger.ExecError):
            message = (
                f"{where}: `{shlex.join(exc.command)}` exited {exc.exit_code}"
                f"{_stderr_tail(exc.stderr)}"
            )
        elif isinstance(exc, dagger.QueryError):
            message = f"{where}: the Dagger engine answered: {exc}"
            if _lacks_timeout(str(exc)):
                message += f". {_no_timeout_hint(plan.image or self.default_image)}"
        elif isinstance(exc, dagger.TransportError):
            message = f"{where}: lost the Dagger session ({exc}); the next call opens a new one"
        elif isinstance(exc, dagger.InvalidQueryError):
            message = (
                f"{where}: dagger-io could not build the query ({exc}); the engine and "
                "dagger-io versions may not match"
            )
        else:
            message = f"{where}: {exc}"
        return EngineError(self.name, scrub(message, plan.secrets))

    def _hook_error(self, exc: Any, plan: ExecutionPlan) -> EngineError:
        command = list(exc.command)
        hooks = list(plan.build_hooks)
        if len(command) == 3 and command[:2] == ["sh", "-c"] and command[2] in hooks:
            number = hooks.index(command[2]) + 1
            message = (
                f"{plan.tool}: build hook {number} (`{command[2]}`) failed with exit "
                f"{exc.exit_code}; nothing was cached{_stderr_tail(exc.stderr)}"
            )
            return EngineError(self.name, scrub(message, plan.secrets))
        return self._error(exc, plan, "preparing the image")


class _LogTail:
    """A text stream for dagger-io's `log_output`: keeps the last lines, echoes if asked."""

    def __init__(self, echo: bool = False) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=200)
        self._echo = sys.stderr if echo else None

    def write(self, text: str) -> int:
        self._lines.append(text)
        if self._echo is not None:
            self._echo.write(text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:  # as they come: dagger-io's drain thread passes the pipe itself
            self.write(line)

    def flush(self) -> None:
        if self._echo is not None:
            self._echo.flush()

    def isatty(self) -> bool:
        return False  # so dagger-io's spinner does not animate into it

    def text(self) -> str:
        return "".join(self._lines)

    async def settled(self, wait: float = 0.5) -> str:
        """The text once a failed CLI's last words arrived (dagger-io drains them in a thread)."""
        deadline = time.monotonic() + wait
        while not self._lines and time.monotonic() < deadline:
            await anyio.sleep(0.02)
        return self.text()


def exec_argv(plan: ExecutionPlan) -> list[str]:
    """The argv Dagger runs: the tool's, under a `timeout` that SIGKILLs it at the limit."""
    return ["timeout", "-s", "KILL", _seconds(plan.limits.timeout), *plan.argv]


def _seconds(value: float) -> str:
    # Whole seconds when they are (busybox's timeout takes no fractions); never 1e+06.
    if value == int(value):
        return str(max(int(value), 1))
    return f"{math.ceil(value * 1000) / 1000:.3f}".rstrip("0")


async def _read_streams(synced: Any) -> _Streams:
    """Exit code, stdout and stderr of the synced container in one query (node(id:))."""
    # The SDK's own multi-field selection; its public getters would be one query each.
    ctx = synced._select_multiple(exit_code="exitCode", stdout="stdout", stderr="stderr")
    streams: _Streams = await ctx.execute(_Streams)
    return streams


def _probe(environ: Mapping[str, str]) -> Availability:
    """Where an engine would come from, without starting or downloading anything."""
    port, token = environ.get(SESSION_PORT, ""), environ.get(SESSION_TOKEN, "")
    if port or token:
        if not (port and token):
            return Availability(
                False,
                f"no Dagger engine reachable: {SESSION_PORT} and {SESSION_TOKEN} must be set "
                "together (`dagger run` sets both)",
            )
        if not port.isdigit() or not 0 < int(port) < 65536:
            return Availability(False, f"no Dagger engine reachable: {SESSION_PORT}={port!r} "
                                       "is not a port number")  # fmt: skip
        try:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=PROBE_TIMEOUT):
                pass
        except OSError as exc:
            return Availability(
                False,
                f"no Dagger engine reachable: nothing answers on 127.0.0.1:{port} "
                f"({SESSION_PORT}): {exc}; the `dagger run` session may have ended",
            )
        return Availability(True, f"Dagger session on 127.0.0.1:{port} (dagger run)")
    cli = environ.get(CLI_BIN, "")
    if cli:
        if not (os.path.isfile(cli) and os.access(cli, os.X_OK)):
            return Availability(
                False, f"no Dagger engine reachable: {CLI_BIN}={cli} is not an executable file"
            )
    else:
        cli = shutil.which("dagger", path=environ.get("PATH")) or ""
        if not cli:
            return Availability(
                False,
                f"no Dagger engine reachable: no {SESSION_PORT}/{SESSION_TOKEN} session, no "
                f"dagger CLI on PATH ({INSTALL_HINT}, or run skillcell under `dagger run`); "
                "skillcell does not let dagger-io download one",
            )
    runner = environ.get(RUNNER_HOST, "")
    if runner:
        return Availability(True, f"dagger CLI {cli}, engine at {runner} ({RUNNER_HOST})")
    if not any(shutil.which(r, path=environ.get("PATH")) for r in RUNTIMES):
        return Availability(
            False,
            f"no Dagger engine reachable: the dagger CLI {cli} starts its engine as a "
            f"container, but no container runtime ({', '.join(RUNTIMES)}) is on PATH; "
            f"install one or point {RUNNER_HOST} at a running engine",
        )
    return Availability(True, f"dagger CLI {cli} (starts its engine on first use)")


@contextlib.contextmanager
def _cli_bin(environ: Mapping[str, str]) -> Iterator[None]:
    """Point dagger-io at the CLI found on PATH while it connects, so it never downloads one.

    dagger-io reads only os.environ for this; it is restored once the session is up.
    """
    if environ.get(SESSION_PORT) or environ.get(CLI_BIN):
        yield
        return
    cli = shutil.which("dagger", path=environ.get("PATH"))
    if cli is None:  # _probe already refused; never fall through to the download
        raise EngineUnavailable("dagger", "no dagger CLI on PATH")
    os.environ[CLI_BIN] = cli
    try:
        yield
    finally:
        os.environ.pop(CLI_BIN, None)


def _lacks_timeout(text: str) -> bool:
    """Whether an error says the image has no `timeout` to run the tool under."""
    lowered = text.lower()
    return "timeout" in lowered and ("not found" in lowered or "no such file" in lowered)


def _no_timeout_hint(image: str) -> str:
    return (
        f"the image {image} seems to have no `timeout` command, which the dagger engine runs "
        "the tool under to kill it at its time limit: use an image with coreutils or busybox"
    )


def _import_dagger() -> Any:
    try:
        import dagger
    except ImportError as exc:
        raise EngineUnavailable("dagger", f"dagger-io is not importable: {exc}") from exc
    return dagger


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _stderr_tail(stderr: str | None) -> str:
    tail = _tail(stderr or "")
    return f". Last lines of its stderr:\n{tail}" if tail else ""
