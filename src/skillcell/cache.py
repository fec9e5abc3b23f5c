"""Content-addressed result cache: the same inputs return the previous result at once.

An entry lives in `<dir>/results/<key[:2]>/<key>/`: `entry.json` (the result and a sha256 of
every file) and `files/` (the exported outputs). Entries are built in a private temporary
directory and renamed into place, so readers never see half an entry and two processes writing
the same key both succeed (the second rename loses and is discarded). A file whose bytes no
longer match its recorded digest makes the entry a miss; it is removed and later replaced.
Least-recently-used entries (by entry.json's mtime, touched on every hit) go first when the
store grows past its cap.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .plan import ExecutionPlan, RunResult

FORMAT = 1


def cache_key(plan: ExecutionPlan, engine: str, image_id: str, secret_key: bytes) -> str:
    """Everything that can change a result; secrets only as a keyed hash."""
    material: dict[str, Any] = {
        "format": FORMAT,
        "tool": plan.tool,
        "bundle": plan.bundle_digest,
        "argv": list(plan.argv),
        "args": plan.args_json.decode(),
        "env": dict(sorted(plan.env.items())),
        "inputs": {f.sandbox: _file_digest(f.host) for f in plan.input_files},
        "image": [plan.image, image_id],
        "hooks": list(plan.build_hooks),
        "engine": engine,
        "network": plan.network,
        "secrets": {
            name: hmac.new(secret_key, value.encode(), hashlib.sha256).hexdigest()
            for name, value in sorted(plan.secrets.items())
        },
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class ResultCache:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.dir = directory
        self.max_bytes = max_bytes

    @property
    def results(self) -> Path:
        return self.dir / "results"

    def secret_key(self) -> bytes:
        """A per-install random key, so secret hashes mean nothing elsewhere."""
        path = self.dir / "key"
        try:
            return bytes.fromhex(path.read_text())
        except (OSError, ValueError):
            pass
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".key-{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # first writer wins; everyone then reads the same key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return bytes.fromhex(path.read_text())

    def get(self, key: str, output_dir: Path) -> RunResult | None:
        entry = self.results / key[:2] / key
        if not (entry / "entry.json").exists():
            return None
        try:
            data = json.loads((entry / "entry.json").read_text())
            if data.get("format") != FORMAT or data.get("key") != key:
                raise ValueError("foreign entry")
            files = data["files"]
            for rel, digest in files.items():
                if _file_digest(entry / "files" / rel) != digest:
                    raise ValueError(f"{rel} changed")
        except (OSError, ValueError, KeyError, TypeError):
            shutil.rmtree(entry, ignore_errors=True)  # corrupt: a miss, replaced by the next run
            return None
        os.utime(entry / "entry.json")
        outputs: tuple[Path, ...] = ()
        if files:
            staging = output_dir.with_name(f".{output_dir.name}.{uuid.uuid4().hex}")
            shutil.copytree(entry / "files", staging)
            os.rename(staging, output_dir)
            outputs = tuple(output_dir / rel for rel in sorted(files))
        r = data["result"]
        return RunResult(
            exit_code=r["exit_code"],
            stdout=r["stdout"],
            stderr=r["stderr"],
            engine=r["engine"],
            duration_ms=r["duration_ms"],
            outputs=outputs,
            output_dir=output_dir if outputs else None,
            stdout_truncated=r["stdout_truncated"],
            stderr_truncated=r["stderr_truncated"],
            cached=True,
            notes=tuple(r["notes"]),
        )

    def put(self, key: str, result: RunResult, tool: str) -> None:
        tmp = self.dir / "tmp" / uuid.uuid4().hex
        (tmp / "files").mkdir(parents=True)
        try:
            files = {}
            if result.output_dir is not None:
                for path in result.outputs:
                    rel = path.relative_to(result.output_dir).as_posix()
                    (tmp / "files" / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, tmp / "files" / rel)
                    files[rel] = _file_digest(tmp / "files" / rel)
            entry = {
                "format": FORMAT,
                "key": key,
                "tool": tool,
                "files": files,
                "result": {
                    "exit_code": result.exit_code,
                    "stdout": result.stdout,
                    "stderr": result.stderr,
                    "engine": result.engine,
                    "duration_ms": result.duration_ms,
                    "stdout_truncated": result.stdout_truncated,
                    "stderr_truncated": result.stderr_truncated,
                    "notes": list(result.notes),
                },
            }
            (tmp / "entry.json").write_text(json.dumps(entry))
            final = self.results / key[:2] / key
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, final)
            except OSError:
                pass  # another process stored the same key first; its entry is as good
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.evict()

    def entries(self) -> list[tuple[Path, float, int]]:
        """(entry dir, last used, bytes) of every entry."""
        out: list[tuple[Path, float, int]] = []
        if not self.results.is_dir():
            return out
        for shard in self.results.iterdir():
            for entry in shard.iterdir():
                try:
                    used = (entry / "entry.json").stat().st_mtime
                except OSError:
                    used = 0.0
                size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
                out.append((entry, used, size))
        return out

    def evict(self) -> int:
        entries = self.entries()
        total = sum(size for _, _, size in entries)
        removed = 0
        for entry, _, size in sorted(entries, key=lambda e: e[1]):
            if total <= self.max_bytes:
                break
            shutil.rmtree(entry, ignore_errors=True)
            total -= size
            removed += 1
        return removed

    def info(self) -> Mapping[str, int]:
        entries = self.entries()
        return {"entries": len(entries), "bytes": sum(size for _, _, size in entries)}

    def clear(self, tool: str | None = None) -> int:
        removed = 0
        for entry, _, _ in self.entries():
            if tool is not None:
                try:
                    if json.loads((entry / "entry.json").read_text()).get("tool") != tool:
                        continue
                except (OSError, ValueError):
                    pass  # unreadable entries go with any clear
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
        return removed


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


__all__ = ["ResultCache", "cache_key"]
