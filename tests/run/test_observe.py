"""Durations history, slowest tests, coverage baselines and budgets."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from ci.core.config import GateConfig
from ci.core.errors import ConfigError
from ci.core.gate import GateResult, GateStatus, apply_policy
from ci.gates import coverage
from ci.gates import test as testgate
from ci.run import observe

WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_durations_are_appended_and_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(observe, "KEEP_LINES", 3)
    monkeypatch.setattr(observe, "TRIM_BYTES", 400)  # about three lines
    for seconds in (1.0, 2.0, 3.0, 4.0):
        result = GateResult(gate="lint", status=GateStatus.PASSED, duration_s=seconds)
        observe.record_duration(tmp_path, result, WHEN, "abc")
    rows = observe.read_durations(tmp_path)
    assert [r["duration_s"] for r in rows] == [2.0, 3.0, 4.0]
    assert (tmp_path / observe.DURATIONS).stat().st_size <= 400
    assert rows[0] == {
        "schema": 1,
        "gate": "lint",
        "status": "passed",
        "duration_s": 2.0,
        "at": "2026-01-02T03:04:05+00:00",
        "sha": "abc",
    }
    assert observe.median_duration(rows, "lint") == 3.0
    assert observe.median_duration(rows, "test") is None


def test_parallel_writers_lose_no_duration(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def write(index: int) -> None:
        result = GateResult(gate=f"g{index}", status=GateStatus.PASSED, duration_s=index)
        observe.record_duration(tmp_path, result, WHEN)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(64)))
    rows = observe.read_durations(tmp_path)
    assert sorted(r["gate"] for r in rows) == sorted(f"g{i}" for i in range(64))


def test_damaged_duration_lines_are_skipped(tmp_path: Path) -> None:
    (tmp_path / observe.DURATIONS).write_text('{"gate": "a", "duration_s": 1}\n{broken\n[]\n')
    assert observe.read_durations(tmp_path) == [{"gate": "a", "duration_s": 1}]


def test_slowest_tests_from_junit(tmp_path: Path) -> None:
    cases = "".join(
        f'<testcase classname="tests.test_m" name="test_{i}" time="{i / 10}"/>' for i in range(15)
    )
    junit = tmp_path / "junit.xml"
    junit.write_text(f'<testsuites><testsuite tests="15">{cases}</testsuite></testsuites>')
    slow = observe.slowest_tests(junit)
    assert len(slow) == 10
    assert slow[0] == observe.SlowTest(name="tests.test_m::test_14", seconds=1.4)
    assert slow[-1].name == "tests.test_m::test_5"
    assert observe.slowest_tests(tmp_path / "missing.xml") == []


def test_budget_warns_or_blocks() -> None:
    slow = GateResult(gate="lint", status=GateStatus.PASSED, duration_s=12.0)
    warned = apply_policy(slow, GateConfig(name="lint", budget_s=10))
    assert warned.status is GateStatus.PASSED
    assert warned.warnings == ("took 12.0 s, over its budget of 10 s",)
    blocked = apply_policy(slow, GateConfig(name="lint", budget_s=10, budget_blocks=True))
    assert blocked.status is GateStatus.FAILED


def test_baseline_from_reports_wins_over_the_recorded_one(tmp_path: Path) -> None:
    reports, state = tmp_path / "reports", tmp_path / "state"
    assert coverage.load_baseline(reports, state, "3.12") is None
    coverage.record_baseline(state, "3.12", 91.234, sha="abc", when=WHEN)
    recorded = coverage.load_baseline(reports, state, "3.12")
    assert recorded == coverage.Baseline(coverage=91.23, source=str(state / coverage.BASELINE))
    assert coverage.load_baseline(reports, state, "3.11") is None
    reports.mkdir()
    (reports / coverage.BASELINE).write_text('{"coverage": 88}', encoding="utf-8")
    assert coverage.load_baseline(reports, state, "3.11") == coverage.Baseline(
        coverage=88.0, source=str(reports / coverage.BASELINE)
    )


def test_malformed_baseline_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / coverage.BASELINE).write_text('{"coverage": "high"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="is not a coverage baseline"):
        coverage.load_baseline(tmp_path, tmp_path / "state", "3.12")


def test_recording_keeps_other_versions(tmp_path: Path) -> None:
    coverage.record_baseline(tmp_path, "3.11", 80, sha="a", when=WHEN)
    coverage.record_baseline(tmp_path, "3.12", 90, sha="b", when=WHEN)
    data = json.loads((tmp_path / coverage.BASELINE).read_text(encoding="utf-8"))
    assert data["coverage"] == {"3.11": 80.0, "3.12": 90.0}
    assert data["schema"] == 1


def test_default_branch_detection() -> None:
    assert coverage.on_default_branch({"GITHUB_REF": "refs/heads/main"})
    assert not coverage.on_default_branch({"GITHUB_REF": "refs/pull/3/merge"})
    assert coverage.on_default_branch(
        {"GITHUB_REF": "refs/heads/trunk", "CI_DEFAULT_BRANCH": "trunk"}
    )


@pytest.mark.parametrize(
    ("current", "fails"),
    [(90.0, False), (89.5, False), (89.49, True), (70.0, True)],
)
def test_coverage_drop_beyond_the_maximum_fails_the_test_gate(current: float, fails: bool) -> None:
    baseline = coverage.Baseline(coverage=90.0, source="x")
    junit = testgate.JunitSummary(tests=3, failures=0, errors=0, skipped=0, failed=())
    status, summary, findings = testgate.judge(
        0, junit, current, 50.0, baseline=baseline, drop_max=0.5
    )
    assert "baseline 90.0%" in summary
    assert (status is GateStatus.FAILED) is fails
    assert [f.rule for f in findings] == (["coverage-drop"] if fails else [])


def test_append_line_masks_and_appends(tmp_path: Path) -> None:
    from ci.core import redact
    from ci.core.files import append_line

    redact.install(redact.Redactor.of(["s3cret-value"]))
    path = tmp_path / "sub" / "log.jsonl"
    append_line(path, "one s3cret-value\n")
    append_line(path, "two")
    assert path.read_text(encoding="utf-8") == "one ***\ntwo\n"


def test_a_durations_file_with_bytes_that_are_not_utf8_keeps_its_good_lines(
    tmp_path: Path,
) -> None:
    good = json.dumps({"gate": "lint", "duration_s": 1.5})
    (tmp_path / observe.DURATIONS).write_bytes(b"\xff\xfe garbage\n" + good.encode() + b"\n")
    assert observe.read_durations(tmp_path) == [{"gate": "lint", "duration_s": 1.5}]
