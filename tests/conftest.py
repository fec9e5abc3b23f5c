"""Shared fixtures: isolated config and directories for every test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skillcell.config import Config

IN_CI = bool(os.environ.get("CI"))


def require(condition: bool, reason: str) -> None:
    """Skip when a real sandbox is missing here; in CI, which installs them all, fail instead."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        output_root=tmp_path / "outputs",
        cache_dir=tmp_path / "cache",
        input_roots=(tmp_path,),
    )
