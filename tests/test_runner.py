"""A call end to end through the Runner on the real bwrap sandbox: secrets, scrubbing, engine
selection and refusal, the result cache."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from skillcell.catalog import scan
from skillcell.config import Config
from skillcell.engines import Availability, Engine, Engines
from skillcell.errors import ArgumentError, NoEngine, SecretMissing
from skillcell.plan import CPUS, IMAGE, MEMORY, NETWORK_OFF, ExecutionPlan
from skillcell.runner import Runner
from tests.engines.conftest import engine_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def write_bundle(root: Path, name: str, manifest: str, files: dict[str, str] | None = None) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "skill.package.yml").write_text(manifest)
    for rel, text in (files or {}).items():
        (path / rel).write_text(text)
    return path


LEAKY = """\
name: test/leaky
env:
  API_TOKEN: {secret: true, description: the token}
  GREETING: {default: hello}
annotations: {openWorldHint: false}
timeout: 20s
scripts:
  leak:
    command: python3 leak.py
"""
LEAK_PY = """\
import os, sys
token = os.environ["API_TOKEN"]
print("token:", token)
sys.stdout.write(token[:3]); sys.stdout.flush(); sys.stdout.write(token[3:] + "\\n")
print("greeting:", os.environ["GREETING"])
print("stderr has it too:", token, file=sys.stderr)
"""

COUNTER = """\
name: test/counter
annotations: {openWorldHint: false, idempotentHint: true}
timeout: 20s
scripts:
  count:
    command: python3 count.py {{word}}
    inputSchema:
      type: object
      properties: {word: {type: string}, n: {type: integer, default: 2}}
      required: [word]
      additionalProperties: false
"""
COUNT_PY = """\
import sys, time
print(sys.argv[1].upper(), time.time_ns())
open("/outputs/word.txt", "w").write(sys.argv[1])
"""


@pytest.fixture
def skills(tmp_path: Path) -> Path:
    root = tmp_path / "skills"
    write_bundle(root, "leaky", LEAKY, {"leak.py": LEAK_PY})
    write_bundle(root, "counter", COUNTER, {"count.py": COUNT_PY})
    return root


@pytest.fixture
def runner(skills: Path, config: Config) -> Runner:
    engine_for("bwrap", config)
    catalog = scan([skills])
    assert not catalog.problems, catalog.problems
    return Runner(lambda: catalog, replace(config, fallbacks=("bwrap",)), environ={})


async def test_a_secret_printed_by_the_tool_never_appears_in_the_result(runner):
    call = await runner.call(
        "test_leaky_leak", {}, secret_sources=[{"API_TOKEN": "tok-SECRET-4242"}]
    )
    result = call.result
    assert result.exit_code == 0, result.stderr
    assert "tok-SECRET-4242" not in result.stdout + result.stderr
    assert result.stdout.splitlines() == ["token: ***", "***", "greeting: hello"]
    assert "SECRET" not in repr(call.plan)


async def test_a_missing_required_secret_fails_the_call_naming_it(runner):
    with pytest.raises(SecretMissing, match="API_TOKEN"):
        await runner.call("test_leaky_leak", {})


async def test_the_most_specific_secret_source_wins(runner):
    call = await runner.call(
        "test/leaky", {}, secret_sources=[{"API_TOKEN": "from-meta"}, {"API_TOKEN": "from-env"}]
    )
    assert call.plan.secrets["API_TOKEN"] == "from-meta"


async def test_invalid_arguments_fail_before_anything_runs(runner, config):
    with pytest.raises(ArgumentError) as info:
        await runner.call("test_counter_count", {"word": 3, "extra": True})
    assert [path for path, _ in info.value.problems] == ["$", "$.word"]
    assert not config.output_root.exists()


async def test_a_cacheable_tool_returns_the_first_result_on_a_repeat_call(runner):
    first = (await runner.call("test_counter_count", {"word": "hi"})).result
    second = (await runner.call("test_counter_count", {"word": "hi"})).result
    other = (await runner.call("test_counter_count", {"word": "ho"})).result
    assert not first.cached and second.cached and not other.cached
    assert second.stdout == first.stdout and other.stdout != first.stdout
    assert second.output_dir != first.output_dir
    assert [p.read_text() for p in second.outputs] == ["hi"]


async def test_a_cache_bypass_runs_the_tool_again(runner):
    first = (await runner.call("test_counter_count", {"word": "hi"})).result
    again = (await runner.call("test_counter_count", {"word": "hi"}, use_cache=False)).result
    assert not again.cached and again.stdout != first.stdout


async def test_a_corrupted_cache_entry_is_a_miss_and_is_replaced(runner, config):
    first = (await runner.call("test_counter_count", {"word": "hi"})).result
    for stored in (config.cache_dir / "results").rglob("word.txt"):
        stored.write_text("tampered")
    second = (await runner.call("test_counter_count", {"word": "hi"})).result
    third = (await runner.call("test_counter_count", {"word": "hi"})).result
    assert not second.cached and second.stdout != first.stdout
    assert third.cached and [p.read_text() for p in third.outputs] == ["hi"]


async def test_concurrent_identical_calls_all_succeed(runner):
    results = []

    async def one() -> None:
        results.append((await runner.call("test_counter_count", {"word": "same"})).result)

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(one)
    assert all(r.exit_code == 0 and r.stdout.startswith("SAME") for r in results)
    assert len({r.output_dir for r in results}) == 6


class _Refusing(Engine):
    """A stand-in for an engine that exists but cannot enforce network-off or memory limits."""

    name = "dagger"

    def available(self) -> Availability:
        return Availability(True, "test")

    def unsupported(self, plan: ExecutionPlan) -> set[str]:
        return {NETWORK_OFF, MEMORY, CPUS}

    async def run(self, plan, progress=None):  # type: ignore[no-untyped-def]
        raise AssertionError("selection must not pick an engine that cannot enforce the plan")


def _plan(**changes) -> ExecutionPlan:  # type: ignore[no-untyped-def]
    base = ExecutionPlan(call_id="x", tool="t", argv=("true",), bundle=Path("/"),
                         output_dir=Path("/nonexistent"))  # fmt: skip
    return replace(base, **changes)


def test_an_engine_that_cannot_enforce_a_declared_policy_is_skipped(config):
    engines = Engines(replace(config, fallbacks=("dagger", "bwrap")))
    engines._instances["dagger"] = _Refusing(config)
    engine_for("bwrap", config)
    chosen = engines.select(_plan(required=frozenset({NETWORK_OFF})))
    assert chosen.engine.name == "bwrap"
    assert engines.select(_plan(required=frozenset())).engine.name == "dagger"


def test_when_no_engine_can_run_a_plan_the_error_lists_each_engine_and_why(config):
    engines = Engines(replace(config, fallbacks=("dagger", "bwrap")))
    engines._instances["dagger"] = _Refusing(config)
    with pytest.raises(NoEngine) as info:
        engines.select(_plan(required=frozenset({MEMORY, IMAGE})))
    assert set(info.value.reasons) == {"dagger", "bwrap"}
    assert "memory-limit" in info.value.reasons["dagger"]
    assert "image" in info.value.reasons["bwrap"]


def test_a_risk_accepted_by_the_config_is_allowed_and_said_in_the_notes(config):
    accepting = replace(config, fallbacks=("dagger",),
                        accept_risks={"dagger": frozenset({NETWORK_OFF})})  # fmt: skip
    engines = Engines(accepting)
    engines._instances["dagger"] = _Refusing(accepting)
    chosen = engines.select(_plan(required=frozenset({NETWORK_OFF})))
    assert chosen.engine.name == "dagger"
    assert chosen.notes == ("dagger did not enforce network-off (accepted by config "
                            "accept_risks.dagger)",)  # fmt: skip


async def test_the_local_engine_runs_only_when_the_config_allows_it(skills, config):
    catalog = scan([skills])
    closed = Runner(lambda: catalog, replace(config, fallbacks=("local",)), environ={})
    with pytest.raises(NoEngine, match="allow_unsandboxed"):
        await closed.call("test_counter_count", {"word": "x"}, use_cache=False)
    open_ = Runner(lambda: catalog, replace(config, fallbacks=(), allow_unsandboxed=True),
                   environ={})  # fmt: skip
    # The counter is closed-world: local cannot enforce that, so it is refused even when allowed.
    with pytest.raises(NoEngine, match="network-off"):
        await open_.call("test_counter_count", {"word": "x"}, use_cache=False)


def test_args_json_is_the_validated_arguments_with_defaults(runner):
    _, plan = runner.prepare("test/counter", {"word": "w"})
    assert json.loads(plan.args_json) == {"word": "w", "n": 2}


async def test_an_engine_failure_surfaces_as_an_engine_error_not_a_group(tmp_path, config):
    from skillcell.errors import EngineError

    manifest = COUNTER.replace("timeout: 20s", "timeout: 20s\nhooks: {build: ['echo no compiler >&2; false']}")
    write_bundle(tmp_path / "hooked", "c", manifest, {"count.py": COUNT_PY})
    engine_for("bwrap", config)
    catalog = scan([tmp_path / "hooked"])
    runner = Runner(lambda: catalog, replace(config, fallbacks=("bwrap",)), environ={})
    with pytest.raises(EngineError, match="no compiler"):
        await runner.call("test_counter_count", {"word": "x"})


async def test_a_tool_that_is_not_cacheable_runs_every_time(tmp_path, config):
    manifest = COUNTER.replace("idempotentHint: true", "idempotentHint: false")
    write_bundle(tmp_path / "plain", "c", manifest, {"count.py": COUNT_PY})
    engine_for("bwrap", config)
    catalog = scan([tmp_path / "plain"])
    runner = Runner(lambda: catalog, replace(config, fallbacks=("bwrap",)), environ={})
    results = [(await runner.call("test_counter_count", {"word": "w"})).result for _ in range(3)]
    assert not any(r.cached for r in results)
    assert len({r.stdout for r in results}) == 3  # each run stamped its own time
