"""1,000 calls at concurrency 16 through a real MCP client over stdio, on every engine here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from skillcell.config import Config
from tests.engines.conftest import engine_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from load import print_report, run_load  # noqa: E402

pytestmark = pytest.mark.anyio


async def test_a_thousand_mixed_calls_all_come_back_right_with_flat_memory(tmp_path, capsys):
    engines = []
    for name in ("bwrap", "docker"):
        engine_for(name, Config())  # skips here, fails in CI, when the sandbox is missing
        engines.append(name)
    tmp_path.chmod(0o755)
    report = await run_load(1000, 16, engines, tmp_path)
    with capsys.disabled():
        print_report(report, 16)
    assert report.protocol_errors == []
    assert report.wrong == []
    assert report.ok == 1000
    assert set(report.by_engine) == {"bwrap", "docker"}
    assert min(report.by_engine.values()) > 450  # the calls really were mixed
    # After warm-up (thread pools, the Docker client) the server must not keep growing.
    assert report.rss_end - report.rss_warm < 15, (report.rss_warm, report.rss_end)
