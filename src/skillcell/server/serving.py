"""`skillcell serve`: the catalog over stdio (default) or streamable HTTP, until told to stop.

SIGINT and SIGTERM stop it cleanly: runs in progress are cancelled (each engine kills its
sandbox), the engines are released, then the process exits. Logging goes to stderr only.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Any, cast

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.abc import TaskStatus
from anyio.lowlevel import EventLoopToken
from anyio.streams.memory import MemoryObjectSendStream

from ..config import Config
from ..errors import ConfigError
from .app import SkillcellApp
from .http import listen, require_token, serve_http

log = logging.getLogger("skillcell.server")
EXIT_USAGE = 2


def serve(ns: argparse.Namespace, config: Config) -> int:
    """Entry point of `skillcell serve`; the exit code."""
    configure_logging(getattr(ns, "verbose", 0), config.log_level)
    token = getattr(ns, "token", None) or os.environ.get("SKILLCELL_TOKEN") or None
    http = bool(getattr(ns, "http", False))
    host = getattr(ns, "host", "127.0.0.1")
    sock = None
    if http:
        try:
            require_token(host, token)
            sock = listen(host, getattr(ns, "port", 8765))  # fail before anything starts
        except ConfigError as exc:
            print(f"skillcell serve: {exc.reason}", file=sys.stderr)
            return EXIT_USAGE
    app = SkillcellApp(config, list(getattr(ns, "skills", None) or ()))
    log.info("serving %d tools of %d skills found in %s", len(app.catalog.tools),
             len(app.catalog.skills), ", ".join(map(str, app.roots)))  # fmt: skip
    if sock is not None:
        anyio.run(partial(run_http, app, host=host, token=token, sock=sock,
                          allowed_hosts=getattr(ns, "allow_host", None) or ()))  # fmt: skip
    else:
        anyio.run(run_stdio, app)
    return 0


def configure_logging(verbose: int, level: str) -> None:
    """-v / -vv win over the configured level; records go to stderr, never stdout."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    if verbose:
        root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    else:
        root.setLevel(logging.getLevelName(level.upper()))


async def run_stdio(app: SkillcellApp, *, handle_signals: bool = True) -> None:
    """Serve one client over stdin/stdout until it closes stdin or a signal arrives."""
    from mcp.server.stdio import stdio_server

    async with app.running(), anyio.create_task_group() as tg:
        if handle_signals:
            await tg.start(_on_signals, lambda: _stop_stdio(app, tg.cancel_scope))
        async with stdio_server(stdin=cast(Any, _StdinLines())) as (read, write):
            await app.server.run(read, write, app.server.create_initialization_options())
        log.info("the client closed stdin; stopping")
        tg.cancel_scope.cancel()


class _StdinLines:
    """The client's stdin, line by line, read from a private descriptor by a daemon thread.

    The SDK reads stdin in an anyio worker thread, which can be neither cancelled nor left
    behind at exit: after SIGTERM the server would wait for the client's next line. A daemon
    thread blocked in os.read() is simply dropped when the process exits. fd 0 itself is
    pointed at /dev/null, so nothing else can read the protocol stream.
    """

    def __init__(self) -> None:
        self.fd = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)

    async def __aiter__(self) -> AsyncIterator[str]:
        send, receive = anyio.create_memory_object_stream[bytes]()
        token = anyio.lowlevel.current_token()
        threading.Thread(target=self._pump, args=(send, token), name="skillcell-stdin",
                         daemon=True).start()  # fmt: skip
        async with receive:
            async for line in receive:
                yield line.decode("utf-8", errors="replace")

    def _pump(self, send: MemoryObjectSendStream[bytes], token: EventLoopToken) -> None:
        pending = b""
        try:
            while chunk := os.read(self.fd, 1 << 16):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    anyio.from_thread.run(send.send, line + b"\n", token=token)
            if pending:
                anyio.from_thread.run(send.send, pending, token=token)
        except Exception:  # the server stopped reading: nothing left to deliver to
            return
        finally:
            try:
                anyio.from_thread.run_sync(send.close, token=token)
            except Exception:
                pass


def _stop_stdio(app: SkillcellApp, scope: anyio.CancelScope) -> None:
    app.stop_runs()
    scope.cancel()


async def run_http(
    app: SkillcellApp,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    allowed_hosts: Sequence[str] = (),
    sock: socket.socket | None = None,
    handle_signals: bool = True,
    stop: anyio.Event | None = None,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve streamable HTTP until `stop` is set or a signal arrives; started() gives the URL."""
    stop = stop or anyio.Event()
    async with app.running(), anyio.create_task_group() as tg:
        if handle_signals:
            await tg.start(_on_signals, stop.set)
        async with anyio.create_task_group() as server:
            url = await server.start(partial(serve_http, app, host=host, port=port, token=token,
                                             allowed_hosts=allowed_hosts, sock=sock, stop=stop))  # fmt: skip
            task_status.started(url)
        tg.cancel_scope.cancel()  # served and shut down: the signal watcher is done too


async def _on_signals(
    stop: Callable[[], None], *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """First SIGINT/SIGTERM stops gracefully; a second one exits at once."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            log.warning("received %s: shutting down", signal.Signals(signum).name)
            stop()
            break
        async for signum in signals:
            log.warning("received %s again: exiting now", signal.Signals(signum).name)
            os._exit(128 + signum)
