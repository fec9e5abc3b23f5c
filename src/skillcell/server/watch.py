"""Notice bundles being added, removed or edited on the search path, cheaply.

Every `interval` seconds a worker thread takes `catalog.fingerprint` of the search path: each
bundle directory with its manifest files' size, mtime and inode. Only when the fingerprint
differs is the catalog rescanned. Polling, not inotify: it needs no dependency and behaves the
same on every filesystem, in containers and on network mounts, and a walk of a few hundred
directories costs about a millisecond.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus

from ..catalog import fingerprint

log = logging.getLogger(__name__)

Signature = tuple[Any, ...]


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
    last = initial if initial is not None else await anyio.to_thread.run_sync(fingerprint, roots)
    task_status.started()
    while True:
        await anyio.sleep(interval)
        try:
            current = await anyio.to_thread.run_sync(fingerprint, roots)
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
