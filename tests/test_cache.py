"""The result cache: what makes a key, how the store behaves under eviction and corruption."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from skillcell.cache import ResultCache, cache_key
from skillcell.plan import ExecutionPlan, InputFile, RunResult, Secrets

KEY = b"k" * 32


def base_plan(tmp_path: Path) -> ExecutionPlan:
    data = tmp_path / "in.csv"
    if not data.exists():
        data.write_text("a,b\n")
    return ExecutionPlan(
        call_id="c1", tool="t", argv=("python3", "x.py", "a"), bundle=tmp_path,
        output_dir=tmp_path / "out", image="python:3.11-slim", env={"MODE": "fast"},
        secrets=Secrets({"TOKEN": "s1"}), bundle_digest="d1", cacheable=True,
        input_files=(InputFile(data, "/inputs/files/f/in.csv", "f"),),
    )  # fmt: skip


CHANGES = [
    ("argv", lambda p, t: replace(p, argv=("python3", "x.py", "b"))),
    ("bundle-files", lambda p, t: replace(p, bundle_digest="d2")),
    ("env", lambda p, t: replace(p, env={"MODE": "slow"})),
    ("secret-value", lambda p, t: replace(p, secrets=Secrets({"TOKEN": "s2"}))),
    ("image", lambda p, t: replace(p, image="python:3.12-slim")),
    ("hooks", lambda p, t: replace(p, build_hooks=("pip install x",))),
    ("network", lambda p, t: replace(p, network=True)),
]


@pytest.mark.parametrize(("what", "change"), CHANGES, ids=[c[0] for c in CHANGES])
def test_any_change_that_can_change_the_result_changes_the_key(tmp_path, what, change):
    plan = base_plan(tmp_path)
    assert cache_key(plan, "bwrap", "", KEY) != cache_key(change(plan, tmp_path), "bwrap", "", KEY)


def test_the_call_id_and_output_directory_do_not_change_the_key(tmp_path):
    plan = base_plan(tmp_path)
    other = replace(plan, call_id="c2", output_dir=tmp_path / "elsewhere")
    assert cache_key(plan, "bwrap", "", KEY) == cache_key(other, "bwrap", "", KEY)


def test_the_engine_image_id_and_input_file_contents_change_the_key(tmp_path):
    plan = base_plan(tmp_path)
    first = cache_key(plan, "bwrap", "", KEY)
    assert first != cache_key(plan, "docker", "", KEY)
    assert first != cache_key(plan, "bwrap", "sha256:other", KEY)
    (tmp_path / "in.csv").write_text("a,b\n1,2\n")
    assert first != cache_key(plan, "bwrap", "", KEY)


def test_secrets_enter_the_key_only_through_the_install_key(tmp_path):
    plan = base_plan(tmp_path)
    assert cache_key(plan, "bwrap", "", KEY) != cache_key(plan, "bwrap", "", b"x" * 32)


def result(tmp_path: Path, text: str, files: dict[str, str] | None = None) -> RunResult:
    out = tmp_path / f"out-{text}"
    paths = []
    for name, body in (files or {}).items():
        out.mkdir(exist_ok=True)
        (out / name).write_text(body)
        paths.append(out / name)
    return RunResult(exit_code=0, stdout=text, stderr="", engine="bwrap", duration_ms=1.0,
                     outputs=tuple(paths), output_dir=out if paths else None)  # fmt: skip


def test_a_hit_returns_stdout_and_files_exactly_into_a_fresh_directory(tmp_path):
    cache = ResultCache(tmp_path / "cache", 1 << 20)
    cache.put("k" * 64, result(tmp_path, "hello", {"a.txt": "A"}), "t")
    hit = cache.get("k" * 64, tmp_path / "call2")
    assert hit is not None and hit.cached and hit.stdout == "hello"
    assert [p.read_text() for p in hit.outputs] == ["A"]
    assert hit.output_dir == tmp_path / "call2"


def test_the_least_recently_used_entries_go_first_at_the_cap(tmp_path):
    cache = ResultCache(tmp_path / "cache", 1 << 20)
    for i, name in enumerate("abc"):
        cache.put(name * 64, result(tmp_path, name, {"f": "x" * 1000}), "t")
        if i == 0:
            cache.max_bytes = cache.info()["bytes"] * 3 + 100  # room for three entries
        entry = cache.results / (name * 2) / (name * 64) / "entry.json"
        os.utime(entry, (time.time() - 100 + i, time.time() - 100 + i))
    assert cache.get("a" * 64, tmp_path / "touch") is not None  # a is now the most recent
    cache.put("d" * 64, result(tmp_path, "d", {"f": "x" * 1000}), "t")
    assert cache.get("b" * 64, tmp_path / "b2") is None
    assert cache.get("a" * 64, tmp_path / "a2") is not None
    assert cache.info()["bytes"] <= cache.max_bytes


@pytest.mark.parametrize(
    "damage",
    ["truncate-entry", "garbage-entry", "change-file", "remove-file", "other-key"],
)
def test_a_damaged_entry_is_a_miss_and_is_removed(tmp_path, damage):
    cache = ResultCache(tmp_path / "cache", 1 << 20)
    key = "e" * 64
    cache.put(key, result(tmp_path, "hello", {"a.txt": "A"}), "t")
    entry = cache.results / key[:2] / key
    if damage == "truncate-entry":
        (entry / "entry.json").write_text((entry / "entry.json").read_text()[:20])
    elif damage == "garbage-entry":
        (entry / "entry.json").write_bytes(b"\x00\xff" * 10)
    elif damage == "change-file":
        (entry / "files" / "a.txt").write_text("B")
    elif damage == "remove-file":
        (entry / "files" / "a.txt").unlink()
    else:
        other = cache.results / "ff" / ("f" * 64)
        other.parent.mkdir(parents=True)
        entry.rename(other)
        entry = other
        key = "f" * 64
    assert cache.get(key, tmp_path / "call") is None
    assert not entry.exists()
    assert not (tmp_path / "call").exists()


def test_clear_removes_one_tools_entries_or_all(tmp_path):
    cache = ResultCache(tmp_path / "cache", 1 << 20)
    cache.put("a" * 64, result(tmp_path, "a"), "tool_a")
    cache.put("b" * 64, result(tmp_path, "b"), "tool_b")
    assert cache.clear("tool_a") == 1
    assert cache.info()["entries"] == 1
    assert cache.clear() == 1


def test_the_install_key_is_made_once_and_private(tmp_path):
    cache = ResultCache(tmp_path / "cache", 1 << 20)
    assert cache.secret_key() == cache.secret_key()
    assert (tmp_path / "cache" / "key").stat().st_mode & 0o077 == 0
