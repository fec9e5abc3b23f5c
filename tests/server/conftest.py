"""Server tests: small bundles in a tmp dir, the real bwrap sandbox, real MCP clients."""

from __future__ import annotations

import hashlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, cast

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp_types import RequestParamsMeta

from skillcell.config import Config
from skillcell.server import SkillcellApp, run_http
from tests.engines.conftest import engine_for

ROOT = Path(__file__).resolve().parents[2]
# Client(mode=...): "legacy" speaks the initialize handshake (2025-11-25); "auto" probes
# server/discover and gets 2026-07-28 from skillcell.
HANDSHAKE, MODERN = "2025-11-25", "2026-07-28"
ERAS = [pytest.param("legacy", id="handshake-era"), pytest.param("auto", id="2026-07-28-era")]
ERA_VERSION = {"legacy": HANDSHAKE, "auto": MODERN}

KIT = """\
name: test/kit
version: 1.2.3
description: Small tools for the server tests.
annotations: {openWorldHint: false}
timeout: 60s
scripts:
  echo:
    description: Print the word.
    command: python3 kit.py echo {{word}}
    inputSchema: &word
      type: object
      properties: {word: {type: string, minLength: 1}}
      required: [word]
      additionalProperties: false
  structured:
    command: python3 kit.py structured {{word}}
    inputSchema: *word
    outputSchema: &said
      type: object
      properties: {said: {type: string}, length: {type: integer}}
      required: [said, length]
      additionalProperties: false
  mismatch:
    command: python3 kit.py mismatch
    outputSchema: *said
  notjson:
    command: python3 kit.py notjson
    outputSchema: *said
  fail:
    command: python3 kit.py fail
  files:
    command: python3 kit.py files
  slow:
    annotations: {title: Sleeper, readOnlyHint: true}
    command: python3 kit.py slow {{marker}} {{seconds}}
    inputSchema:
      type: object
      properties: {marker: {type: string}, seconds: {type: number}}
      required: [marker, seconds]
"""
KIT_PY = """\
import json, os, sys, time
cmd = sys.argv[1]
if cmd == "echo":
    print(sys.argv[2])
elif cmd == "structured":
    print(json.dumps({"said": sys.argv[2], "length": len(sys.argv[2])}))
elif cmd == "mismatch":
    print(json.dumps({"said": 3}))
elif cmd == "notjson":
    print("this is not json")
elif cmd == "fail":
    print("partial result")
    sys.stderr.write("noise " * 2000 + "\\nthe real reason: the disk is on fire\\n")
    sys.exit(3)
elif cmd == "files":
    os.makedirs("/outputs/sub", exist_ok=True)
    open("/outputs/report.txt", "w").write("report body\\n")
    open("/outputs/sub/data.bin", "wb").write(bytes(range(256)))
    open("/outputs/big.txt", "w").write("y" * 70000)
    print("wrote 3 files")
elif cmd == "slow":
    print("started", flush=True)
    time.sleep(float(sys.argv[3]))
    print("slept")
"""
SECRETIVE = """\
name: test/secretive
description: Shows which secret it got.
annotations: {openWorldHint: false}
timeout: 30s
env:
  API_TOKEN: {secret: true, required: true, description: the service token}
scripts:
  whoami:
    command: python3 whoami.py
"""
WHOAMI_PY = """\
import hashlib, os
token = os.environ["API_TOKEN"]
print("token:", token)
print("sha:", hashlib.sha256(token.encode()).hexdigest()[:16])
"""
GUIDE = """\
---
name: test/guide
description: How to use the kit, documentation only.
---
# Guide

Call `test_kit_echo` with a word.
"""
EXTRA = """\
name: test/extra
description: {description}
annotations: {{openWorldHint: false}}
scripts:
  hello:
    command: echo hello
"""


def write_bundle(root: Path, name: str, files: dict[str, str]) -> Path:
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (path / rel).write_text(text)
    return path


def text(result_or_block: Any) -> str:
    """The text of a result's first content block (or of a block)."""
    block = getattr(result_or_block, "content", [result_or_block])[0]
    assert isinstance(block, types.TextContent), block
    return block.text


def secrets_meta(secrets: Mapping[str, Any]) -> RequestParamsMeta:
    return cast(RequestParamsMeta, {"skillcell/secrets": dict(secrets)})


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def skills(tmp_path: Path) -> Path:
    root = tmp_path / "skills"
    write_bundle(root, "kit", {"skill.package.yml": KIT, "kit.py": KIT_PY})
    write_bundle(root, "secretive", {"skill.package.yml": SECRETIVE, "whoami.py": WHOAMI_PY})
    write_bundle(root, "guide", {"SKILL.md": GUIDE})
    return root


@pytest.fixture
def server_config(config: Config) -> Config:
    engine_for("bwrap", config)  # skips here (fails in CI) without a working bubblewrap
    return replace(config, fallbacks=("bwrap",), concurrency=8)


@pytest.fixture
def make_app(server_config: Config, skills: Path) -> Callable[..., SkillcellApp]:
    def make(**kwargs: Any) -> SkillcellApp:
        config = kwargs.pop("config", server_config)
        kwargs.setdefault("environ", {})
        return SkillcellApp(config, roots=[skills], **kwargs)

    return make


@pytest.fixture
def app(make_app: Callable[..., SkillcellApp]) -> SkillcellApp:
    return make_app()


@asynccontextmanager
async def connected(app: SkillcellApp, mode: str, **kwargs: Any) -> AsyncIterator[Client]:
    """An in-memory client of a running app (the catalog watcher included)."""
    async with app.running(), Client(app.server, mode=mode, **kwargs) as client:
        assert client.protocol_version == ERA_VERSION[mode]
        yield client


@asynccontextmanager
async def http_server(app: SkillcellApp, token: str | None = "tok") -> AsyncIterator[str]:
    """skillcell's own HTTP entry point in this event loop, on a free loopback port."""
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        url = await tg.start(partial(run_http, app, port=0, token=token,
                                     handle_signals=False, stop=stop))  # fmt: skip
        try:
            yield url
        finally:
            stop.set()


def marker() -> str:
    return f"skillcell-test-{uuid.uuid4().hex}"


def processes_with(text: str) -> list[int]:
    """Live processes whose command line contains `text` (the sandbox and what runs in it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if text.encode() in cmdline and "State:\tZ" not in (entry / "status").read_text():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


async def eventually(predicate: Callable[[], Any], timeout: float = 10) -> None:
    """For process state, which no event announces: poll, bounded."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.05)


class Progress:
    """A progress_callback that records messages and signals when one arrives."""

    def __init__(self, wanted: str | None = None) -> None:
        self.seen: list[tuple[float, str | None]] = []
        self.wanted = wanted
        self.arrived = anyio.Event()

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, message))
        if self.wanted is None or (message or "").startswith(self.wanted):
            self.arrived.set()

    @property
    def messages(self) -> list[str | None]:
        return [m for _, m in self.seen]


class Inbox:
    """Server notifications delivered to Client(message_handler=...), awaitable by type."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = anyio.Event()

    async def __call__(self, message: Any) -> None:
        self.items.append(message)
        self._changed.set()
        self._changed = anyio.Event()

    async def next(self, kind: type, timeout: float = 5) -> Any:
        """The first unread notification of `kind`; the ones before it are consumed too."""
        with anyio.fail_after(timeout):
            while True:
                for i, item in enumerate(self.items):
                    if isinstance(item, kind):
                        del self.items[: i + 1]
                        return item
                await self._changed.wait()


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment of a `skillcell serve` subprocess isolated in tmp_path."""
    config = tmp_path / "config.yaml"
    config.write_text("fallbacks: [bwrap]\n")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLCELL_")}
    env.update({
        "SKILLCELL_CONFIG": str(config),
        "SKILLCELL_OUTPUT_ROOT": str(tmp_path / "outputs"),
        "SKILLCELL_CACHE_DIR": str(tmp_path / "cache"),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **extra,
    })  # fmt: skip
    return env


def serve_command(skills: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "skillcell", "serve", "--skills", str(skills), *extra]
