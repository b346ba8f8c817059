import datetime as dt

import pytest

from ci.core.config import GateConfig, Mode, Waiver
from ci.core.gate import Finding, GateResult, GateStatus, apply_policy, judge_waivers


def result(status: GateStatus = GateStatus.PASSED, duration: float = 1.0) -> GateResult:
    return GateResult(
        gate="test",
        variant="3.12",
        status=status,
        duration_s=duration,
        summary="ok",
        findings=(Finding(rule="r", message="m", file="a.py", line=3),),
    )


def test_round_trip_and_id() -> None:
    r = result(GateStatus.FAILED)
    assert r.id == "test-3.12"
    assert GateResult.from_dict(r.to_dict()) == r
    assert r.findings[0].location() == "a.py:3"


@pytest.mark.parametrize(
    ("status", "mode", "blocks"),
    [
        (GateStatus.PASSED, Mode.REQUIRED, False),
        (GateStatus.FAILED, Mode.REQUIRED, True),
        (GateStatus.ERROR, Mode.REQUIRED, True),
        (GateStatus.FAILED, Mode.ADVISORY, False),
        (GateStatus.CACHED, Mode.REQUIRED, False),
        (GateStatus.SKIPPED, Mode.REQUIRED, False),
    ],
)
def test_blocking(status: GateStatus, mode: Mode, blocks: bool) -> None:
    r = apply_policy(result(status), GateConfig(name="test", mode=mode))
    assert r.blocking is blocks
    assert bool(r) is not blocks


def test_over_budget_warns_or_fails() -> None:
    warn = apply_policy(result(duration=5), GateConfig(name="test", budget_s=2))
    assert warn.status is GateStatus.PASSED
    assert "over its budget of 2 s" in warn.warnings[0]
    fail = apply_policy(result(duration=5), GateConfig(name="test", budget_s=2, budget_blocks=True))
    assert fail.status is GateStatus.FAILED
    assert "over its budget" in fail.summary
    within = apply_policy(
        result(duration=1), GateConfig(name="test", budget_s=2, budget_blocks=True)
    )
    assert within.status is GateStatus.PASSED and not within.warnings


def test_waivers_split_valid_and_expired() -> None:
    today = dt.date(2026, 6, 1)
    waivers = [
        Waiver(id="A", reason="r", expires=dt.date(2026, 12, 31)),
        Waiver(id="B", reason="r", expires=dt.date(2026, 5, 31)),
        Waiver(id="C", reason="r", expires=dt.date(2026, 6, 1)),
        Waiver(id="UNUSED", reason="r", expires=dt.date(2020, 1, 1)),
    ]
    verdict = judge_waivers(["A", "B", "C", "D"], waivers, today)
    assert verdict.waived == {"A", "C"}
    assert [w.id for w in verdict.expired] == ["B"]
    assert verdict.expired_messages() == [
        "waiver B expired on 2026-05-31: fix the finding or renew the waiver in [[tool.ci.waivers]]"
    ]
