"""Engines under test: every real sandbox available here, each given the same plans."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from skillcell.config import Config
from skillcell.engines import Engine, Engines
from skillcell.plan import ExecutionPlan, Limits
from tests.conftest import require

SANDBOXES = ("bwrap", "docker", "podman")
# Podman serves the Docker Engine API; scripts/setup-engines.sh starts it here when asked.
PODMAN_HOST = os.environ.get("SKILLCELL_TEST_PODMAN_HOST", "unix:///run/skillcell-podman.sock")
IMAGE = "python:3.11-slim"


def engine_for(name: str, config: Config) -> Engine:
    """A real engine, or a skip (a failure in CI). "podman" is the docker engine on Podman."""
    if name == "podman":
        name, config = "docker", replace(config, docker_host=PODMAN_HOST)
    try:
        engine = Engines(config).get(name)
    except ImportError as exc:
        require(False, f"{name} engine cannot be imported: {exc}")
        raise
    status = engine.available()
    require(bool(status), f"{name} is not available here: {status.reason}")
    return engine


@pytest.fixture(params=SANDBOXES)
def engine(request: pytest.FixtureRequest, config: Config) -> Engine:
    return engine_for(request.param, config)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle"
    path.mkdir()
    (path / "hello.txt").write_text("hello from the bundle\n")
    return path


def make_plan(
    config: Config, bundle: Path, argv: Sequence[str], **changes: Any
) -> ExecutionPlan:
    call_id = uuid.uuid4().hex
    limits = changes.pop("limits", Limits(timeout=30, memory=256 << 20, cpus=1.0, pids=128))
    plan = ExecutionPlan(
        call_id=call_id,
        tool="test_tool",
        argv=tuple(argv),
        bundle=bundle,
        output_dir=config.output_root / call_id,
        image=IMAGE,
        limits=limits,
    )
    return replace(plan, **changes)


def python(code: str, *args: str) -> list[str]:
    return ["python3", "-c", code, *args]
