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

from .errors import ArgumentError
from .plan import InputFile

STAGING = ".staging"
TRUNCATED = "\n[skillcell: output truncated,"  # what a capped stream ends with


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
            out += f"{TRUNCATED} {self.dropped} more bytes dropped]"
        return out


def staging_dir(
    output_dir: Path, owner_uid: int | None = None, base: Path | None = None, cap: int | None = None
) -> Path:
    """A fresh, empty directory the sandbox may write /outputs into (under `base` if given).

    As root, with a `cap`, the directory is a tmpfs of that size: a tool that keeps writing
    fills its own small filesystem, never the host's disk.
    """
    staging = (base or output_dir.parent / STAGING) / output_dir.name
    if staging.exists():
        discard(staging)
    staging.mkdir(parents=True)
    if cap is not None and os.geteuid() == 0:
        _mount_tmpfs(staging, cap, owner_uid or 0)
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
            rel = path.relative_to(staging)
            if not _printable(name):
                # Names that are not text (or hold control characters) cannot be shown or sent.
                shutil.rmtree(path) if stat.S_ISDIR(st.st_mode) else path.unlink()
                notes.append(f"dropped {ascii(str(rel))}: its name is not printable UTF-8")
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                # A symlink could point the host at anything; only plain files leave the sandbox.
                path.unlink()
                notes.append(f"dropped {rel}: not a regular file")
                continue
            total += st.st_size
            kept.append(rel)
    if total > cap:
        discard(staging)
        notes.append(f"outputs discarded: {total} bytes exceed the {cap}-byte cap")
        return Export((), tuple(notes))
    if not kept:
        discard(staging)
        return Export((), tuple(notes))
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    if staging.parent != output_dir.parent / STAGING or os.path.ismount(staging):
        # Staged elsewhere (a tmpfs, another filesystem): copy beside the target, then rename.
        near = output_dir.parent / STAGING / f"{output_dir.name}.export"
        try:
            shutil.copytree(staging, near, symlinks=True)
        except (OSError, shutil.Error) as exc:
            shutil.rmtree(near, ignore_errors=True)
            discard(staging)
            notes.append(f"outputs discarded: they could not be stored in {output_dir.parent} "
                         f"({_first_error(exc)})")  # fmt: skip
            return Export((), tuple(notes))
        discard(staging)
        staging = near
    if os.geteuid() == 0:
        for dirpath, dirnames, filenames in os.walk(staging):
            for name in [*dirnames, *filenames]:
                os.lchown(Path(dirpath) / name, 0, 0)
        os.chown(staging, 0, 0)
    os.chmod(staging, 0o755)
    os.rename(staging, output_dir)
    return Export(tuple(output_dir / rel for rel in sorted(kept)), tuple(notes))


def _printable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates
        return False
    return name.isprintable()


def _first_error(exc: BaseException) -> str:
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list):
        return str(exc.args[0][0][-1])
    return str(exc)


_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MNT_DETACH = 2, 4, 8, 2


def _mount_tmpfs(path: Path, cap: int, uid: int) -> None:
    import ctypes

    # Room for a file one byte over the cap, so overflowing is seen as over, not as complete.
    size = (cap + 8192 + 4095) // 4096 * 4096
    options = f"size={size},nr_inodes=16384,mode=0700,uid={uid},gid={uid}".encode()
    libc = ctypes.CDLL(None, use_errno=True)
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    if libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", flags, options) != 0:
        # Without mount rights the cap is still checked at publish, after the fact.
        return


def discard(staging: Path) -> None:
    if os.path.ismount(staging):
        import ctypes

        ctypes.CDLL(None, use_errno=True).umount2(str(staging).encode(), _MNT_DETACH)
    shutil.rmtree(staging, ignore_errors=True)


def copy_input(tool: str, item: InputFile, target: Path) -> None:
    """Copy the validated input file to `target` (0644), refusing anything swapped in since."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    problem = f"{item.host} changed after the arguments were checked"
    try:
        fd = os.open(item.host, flags)
    except OSError as exc:
        raise ArgumentError(tool, [(f"$.{item.param}", f"{problem}: {exc.strerror}")]) from None
    with os.fdopen(fd, "rb") as source:
        st = os.fstat(source.fileno())
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (item.device, item.inode):
            raise ArgumentError(tool, [(f"$.{item.param}", problem)])
        with open(target, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    target.chmod(0o644)
