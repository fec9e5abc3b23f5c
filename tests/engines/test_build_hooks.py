"""Build hooks (dependency steps) run once per bundle and hooks, then every call reuses them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from skillcell.catalog import bundle_digest
from skillcell.errors import EngineError

from .conftest import engine_for, make_plan, python

pytestmark = pytest.mark.anyio

# Appends a line per run, so the number of lines counts how often the hook ran.
HOOK = "mkdir -p deps && echo run >> deps/built.txt && echo 'VALUE = 42' > deps/lib.py"
READ = "import sys; sys.path.insert(0, 'deps'); import lib; print(lib.VALUE, len(open('deps/built.txt').read().split()))"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["bwrap", "docker", "podman"])
def hook_engine(request, config):  # type: ignore[no-untyped-def]
    return engine_for(request.param, config)


def hooked(config, bundle, *hooks):  # type: ignore[no-untyped-def]
    plan = make_plan(config, bundle, python(READ), build_hooks=hooks or (HOOK,))
    return replace(plan, bundle_digest=bundle_digest(bundle))


async def test_a_build_hook_runs_once_across_many_calls(hook_engine, config, bundle):
    results = [await hook_engine.run(hooked(config, bundle)) for _ in range(3)]
    assert [r.stdout.split() for r in results] == [["42", "1"]] * 3, results[0].stderr


async def test_changing_the_bundle_runs_the_hook_again(hook_engine, config, bundle):
    probe = python(READ + "; import os; print(os.path.exists('new-file.txt'))")
    first = await hook_engine.run(replace(hooked(config, bundle), argv=tuple(probe)))
    (bundle / "new-file.txt").write_text("changed")
    second = await hook_engine.run(replace(hooked(config, bundle), argv=tuple(probe)))
    assert first.stdout.split() == ["42", "1", "False"], first.stderr
    assert second.stdout.split() == ["42", "1", "True"], second.stderr


async def test_the_prepared_workspace_is_read_only_at_run_time(hook_engine, config, bundle):
    plan = replace(hooked(config, bundle), argv=tuple(python("open('deps/lib.py', 'a')")))
    result = await hook_engine.run(plan)
    assert result.exit_code != 0


async def test_a_failed_hook_is_reported_with_its_log_and_not_kept(hook_engine, config, bundle):
    failing = "echo compiling; echo 'error: no compiler' >&2; exit 3"
    with pytest.raises(EngineError, match="no compiler"):
        await hook_engine.run(hooked(config, bundle, failing))
    # Fixed hooks build afresh: nothing of the failed attempt was kept.
    ok = await hook_engine.run(hooked(config, bundle))
    assert ok.stdout.split() == ["42", "1"]
