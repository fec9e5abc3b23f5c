"""Streamable HTTP at /mcp: DNS-rebinding protection, a bearer token, uvicorn.

Loopback by default. Host and Origin headers must name this machine (a web page cannot reach
the server through a rebound DNS name), and off loopback a bearer token is mandatory.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus
from mcp.server.transport_security import TransportSecuritySettings

from ..errors import ConfigError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from .app import SkillcellApp

log = logging.getLogger("skillcell.server")

MCP_PATH = "/mcp"
GRACE = 2.0  # seconds open streams get to finish on shutdown, after every run was stopped
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_WILDCARDS = ("", "0.0.0.0", "::")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_token(host: str, token: str | None) -> None:
    """Refuse to expose the tools beyond this machine without a bearer token."""
    if not token and not is_loopback(host):
        raise ConfigError(
            "serve --http",
            "--host",
            f"refusing to listen on {host} without a bearer token: a non-loopback address "
            "exposes every tool to the network. Pass --token TOKEN or set SKILLCELL_TOKEN "
            "(or listen on 127.0.0.1)",
        )


def security_settings(host: str, allowed_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    """Host and Origin values accepted: loopback names, the bound host and `allowed_hosts`."""
    names = [*_LOOPBACK_NAMES, *allowed_hosts]
    if host in _WILDCARDS:
        # Clients reach a wildcard bind by this machine's names; others need --allow-host.
        names += [socket.gethostname(), socket.getfqdn()]
    else:
        names.append(f"[{host}]" if ":" in host and not host.startswith("[") else host)
    unique = list(dict.fromkeys(n for n in names if n))
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[h for n in unique for h in (n, f"{n}:*")],
        allowed_origins=[
            o
            for n in unique
            for scheme in ("http", "https")
            for o in (f"{scheme}://{n}", f"{scheme}://{n}:*")
        ],  # fmt: skip
    )


class BearerTokenMiddleware:
    """Every HTTP request must carry `Authorization: Bearer <token>`; lifespan passes."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer realm="skillcell"')]})  # fmt: skip
                await send({"type": "http.response.body",
                            "body": b'{"error":"a valid bearer token is required"}'})  # fmt: skip
                return
        await self.app(scope, receive, send)


def asgi_app(
    app: SkillcellApp, *, host: str, token: str | None, allowed_hosts: Sequence[str] = ()
) -> ASGIApp:
    starlette = app.server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        host=host,
        transport_security=security_settings(host, allowed_hosts),
        # Stateful: the handshake era needs a session for its GET stream (list_changed).
        stateless_http=False,
        # A client that vanished without DELETE keeps its session (and any run) this long.
        session_idle_timeout=600,
    )
    return BearerTokenMiddleware(starlette, token) if token else starlette


def listen(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free one); ConfigError when that is impossible."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError("serve --http", "--host", f"cannot listen on {host}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            "serve --http", "--port", f"cannot listen on {host}:{port}: {exc}"
        ) from exc
    return sock


async def serve_http(
    app: SkillcellApp,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    allowed_hosts: Sequence[str] = (),
    sock: socket.socket | None = None,
    stop: anyio.Event,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until `stop` is set; reports the URL once the socket listens (port 0 picks one).

    `sock`, when given, is an already listening socket (see `listen`); host and port then only
    name it.

    On stop every run is cancelled first (the engines kill their sandboxes), then open streams
    get GRACE seconds, then the session manager cancels whatever is left.
    """
    import uvicorn

    require_token(host, token)

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the caller owns SIGINT/SIGTERM: runs are stopped before uvicorn hears of it

    sock = sock or listen(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    url = f"http://{shown}:{bound_port}{MCP_PATH}"
    config = uvicorn.Config(
        asgi_app(app, host=host, token=token, allowed_hosts=allowed_hosts),
        log_config=None,  # our logging: stderr only
        access_log=log.isEnabledFor(logging.DEBUG),
        lifespan="on",  # runs the MCP session manager
        timeout_graceful_shutdown=int(GRACE),
        ws="none",
    )
    server = Server(config)

    async def stopper() -> None:
        await stop.wait()
        log.info("stopping: cancelling runs in progress")
        app.stop_runs()
        server.should_exit = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(stopper)
        log.info("serving MCP over streamable HTTP at %s%s", url,
                 " (bearer token required)" if token else "")  # fmt: skip
        task_status.started(url)
        await server.serve(sockets=[sock])
        tg.cancel_scope.cancel()
