"""Notice bundles being added, removed or edited on the search path, cheaply.

Every `interval` seconds a worker thread takes a signature of the search path: the directories
walked and each bundle's manifest files with their size and mtime. Only when the signature
differs is the catalog rescanned. Polling, not inotify: it needs no dependency and behaves the
same on every filesystem, in containers and on network mounts, and a walk of a few hundred
directories costs about a millisecond.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus

from ..manifest import MANIFEST_FILES

log = logging.getLogger(__name__)

# The walk mirrors catalog.scan's: bundles are not descended, and neither are these.
_SKIP_DIRS = {".git", "__pycache__", "node_modules", ".venv", "venv"}
_MAX_DEPTH = 4

Signature = tuple[Any, ...]


def signature(roots: Sequence[Path]) -> Signature:
    """Changes whenever a scan of `roots` could give a different catalog."""
    entries: list[Any] = []
    for root in roots:
        entries.append((str(root), os.path.isdir(root)))
        stack = [(str(root), 0)]
        while stack:
            directory, depth = stack.pop()
            manifests = _manifests(directory)
            if manifests:
                entries.append((directory, manifests))
                continue
            entries.append(directory)
            if depth >= _MAX_DEPTH:
                continue
            try:
                with os.scandir(directory) as it:
                    children = sorted(e.path for e in it if e.is_dir() and not
                                      e.name.startswith(".") and e.name not in _SKIP_DIRS)  # fmt: skip
            except OSError:
                continue
            stack.extend((child, depth + 1) for child in children)
    return tuple(entries)


def _manifests(directory: str) -> tuple[tuple[str, int, int], ...]:
    found = []
    for name in MANIFEST_FILES:
        try:
            st = os.stat(os.path.join(directory, name))
        except OSError:
            continue
        found.append((name, st.st_size, st.st_mtime_ns))
    return tuple(found)


async def watch(
    roots: Sequence[Path],
    on_change: Callable[[], Awaitable[None]],
    *,
    interval: float = 1.0,
    initial: Signature | None = None,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Call `on_change` after the search path changes; runs until cancelled.

    `initial` is the signature taken before the catalog being served was scanned, so a change
    made while the server was starting is noticed too.
    """
    last = initial if initial is not None else await anyio.to_thread.run_sync(signature, roots)
    task_status.started()
    while True:
        await anyio.sleep(interval)
        try:
            current = await anyio.to_thread.run_sync(signature, roots)
        except Exception:  # a walk that fails once is retried on the next tick
            log.exception("cannot read the skill search path")
            continue
        if current == last:
            continue
        last = current
        try:
            await on_change()
        except Exception:
            log.exception("rescanning the skill search path failed")
