"""Hostile bundles (hostile_skills/) through the real Runner on every sandbox here: each attack
is contained, ends as a (usually failed) call, leaves nothing behind, and while the bombs go
off a normal call is still served promptly. The attacks and their checks live in matrix.py,
shared with benchmarks/security_report.py, which renders the table in docs/security.md."""

from __future__ import annotations

from typing import Any

import pytest

from .harness import ENGINES, require_engine
from .matrix import ATTACKS, Attack, run_attack

pytestmark = pytest.mark.anyio


def _cases() -> list[Any]:
    cases: list[Any] = []
    for attack in ATTACKS:
        for engine in ENGINES:
            finding = attack.finding(engine)
            marks = [pytest.mark.xfail(strict=True, reason=finding)] if finding else []
            cases.append(pytest.param(attack, engine, id=f"{attack.name}-{engine}", marks=marks))
    return cases


@pytest.mark.parametrize(("attack", "engine"), _cases())
async def test_a_hostile_skill_is_contained(attack: Attack, engine: str) -> None:
    require_engine(engine)
    verdict = await run_attack(attack, engine)
    assert verdict.holds, verdict.explain()


def test_there_are_at_least_fifteen_hostile_bundles_each_a_real_skill() -> None:
    from skillcell.catalog import scan

    from .harness import HOSTILE_SKILLS

    bundles = sorted(p for p in HOSTILE_SKILLS.iterdir() if p.is_dir() and p.name != "probe")
    assert len(bundles) >= 15
    catalog = scan([HOSTILE_SKILLS])
    assert not catalog.problems, catalog.problems
    assert {a.bundle or a.name for a in ATTACKS} <= {b.name for b in bundles}
