"""Stream capture with a cap, and the atomic export of /outputs to a per-call directory.

Engines let the sandbox write /outputs into a staging directory beside the final one (same
filesystem), then `publish` checks it and renames it into place in one step, so a reader never
sees a half-written result and two calls never share a directory.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

STAGING = ".staging"


@dataclass
class CappedBuffer:
    """Keeps the first `cap` bytes of a stream and counts the rest."""

    cap: int
    data: bytearray = field(default_factory=bytearray)
    dropped: int = 0

    def write(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        self.dropped += max(0, len(chunk) - max(room, 0))

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def text(self) -> str:
        out = self.data.decode("utf-8", errors="replace")
        if self.dropped:
            out += f"\n[skillcell: output truncated, {self.dropped} more bytes dropped]"
        return out


def staging_dir(output_dir: Path, owner_uid: int | None = None, base: Path | None = None) -> Path:
    """A fresh, empty directory the sandbox may write /outputs into (under `base` if given)."""
    staging = (base or output_dir.parent / STAGING) / output_dir.name
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    if owner_uid is not None and os.geteuid() == 0:
        os.chown(staging, owner_uid, owner_uid)
    staging.chmod(0o700)
    return staging


@dataclass(frozen=True)
class Export:
    files: tuple[Path, ...]
    notes: tuple[str, ...]


def publish(staging: Path, output_dir: Path, cap: int) -> Export:
    """Move the staged outputs into place atomically; drop links and specials; enforce the cap.

    Over the cap nothing is published: a partial set of files would look like a result.
    """
    notes: list[str] = []
    total = 0
    kept: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(staging):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                # A symlink could point the host at anything; only plain files leave the sandbox.
                path.unlink()
                notes.append(f"dropped {path.relative_to(staging)}: not a regular file")
                continue
            total += st.st_size
            kept.append(path.relative_to(staging))
    if total > cap:
        shutil.rmtree(staging, ignore_errors=True)
        notes.append(f"outputs discarded: {total} bytes exceed the {cap}-byte cap")
        return Export((), tuple(notes))
    if not kept:
        shutil.rmtree(staging, ignore_errors=True)
        return Export((), tuple(notes))
    if os.geteuid() == 0:
        for dirpath, dirnames, filenames in os.walk(staging):
            for name in [*dirnames, *filenames]:
                os.lchown(Path(dirpath) / name, 0, 0)
        os.chown(staging, 0, 0)
    os.chmod(staging, 0o755)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    if staging.parent != output_dir.parent / STAGING:
        # Staged elsewhere (another filesystem): copy beside the target first, then rename.
        near = output_dir.parent / STAGING / output_dir.name
        shutil.copytree(staging, near, symlinks=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging = near
    os.rename(staging, output_dir)
    return Export(tuple(output_dir / rel for rel in sorted(kept)), tuple(notes))


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
