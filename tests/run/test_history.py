"""Run history: the records, the bounded masked logs, and the aggregations over them."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest

from ci.core import redact
from ci.core.config import Config, GateConfig, HistoryConfig, Waiver, parse
from ci.core.errors import ConfigError
from ci.core.gate import GateContext, GateResult, GateStatus
from ci.deploy.backend import StateBackend
from ci.deploy.ledger import Entry
from ci.deploy.lock import LockWait
from ci.deploy.store import LocalStore
from ci.run import history
from ci.run.history import Facts, GateRun, PipelineRun
from ci.testing.fakes import FakeRunner, FixedClock

JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite tests="4" failures="1" errors="0" skipped="1">
<testcase classname="tests.test_a" name="test_slow" time="2.5"/>
<testcase classname="tests.test_a" name="test_fast" time="0.01"/>
<testcase classname="tests.test_b" name="test_bad" time="0.3"><failure message="boom"/></testcase>
<testcase classname="tests.test_b" name="test_skip" time="0"><skipped/></testcase>
</testsuite></testsuites>
"""


def facts(day: int = 1, hour: int = 0) -> Facts:
    return Facts(
        time=f"2026-01-{day:02d}T{hour:02d}:00:00+00:00", commit="c" * 40, ref="refs/heads/main"
    )


def run(
    gate_id: str = "lint",
    status: str = "passed",
    duration: float = 1.0,
    *,
    cached: bool = False,
    day: int = 1,
    flaky: tuple[str, ...] = (),
    coverage: float | None = None,
    slowest: tuple[tuple[str, float], ...] = (),
    budget: float | None = None,
) -> GateRun:
    return GateRun(
        facts=facts(day),
        gate=gate_id.split("-", maxsplit=1)[0],
        id=gate_id,
        status="cached" if cached else status,
        duration_s=duration,
        cached=cached,
        flaky=flaky,
        coverage=coverage,
        slowest=slowest,
        budget_s=budget,
    )


def backend(tmp_path: Path) -> StateBackend:
    return StateBackend(LocalStore(tmp_path / "state"))


# ---- records -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        run(),
        run("test-3.12", "failed", 12.5, flaky=("tests/t.py::x",), coverage=88.25, budget=10),
        run("audit", cached=True),
        run("test-3.12", slowest=(("tests/a::slow", 2.5), ("tests/a::fast", 0.01))),
    ],
)
def test_gate_records_round_trip_with_their_schema(record: GateRun) -> None:
    data = record.to_dict()
    assert data["schema"] == history.SCHEMA
    assert data["kind"] == "gate"
    assert GateRun.from_dict(json.loads(json.dumps(data))) == record


def test_pipeline_records_round_trip() -> None:
    record = PipelineRun(
        facts=facts(), status="failed", duration_s=42.0, gates=(("lint", "passed"),)
    )
    assert PipelineRun.from_dict(record.to_dict()) == record


@pytest.mark.parametrize(
    ("status", "cached", "duration", "budget", "passed", "over"),
    [
        ("passed", False, 5.0, None, True, False),
        ("passed", False, 5.0, 4.0, True, True),
        ("passed", False, 4.0, 4.0, True, False),
        ("cached", True, 9.0, 4.0, True, False),  # a replay's time is not the gate's
        ("failed", False, 1.0, 4.0, False, False),
        ("error", False, 1.0, None, False, False),
        ("skipped", False, 0.0, None, False, False),
    ],
)
def test_passed_and_over_budget(  # noqa: PLR0917 - one parameter per column
    status: str, cached: bool, duration: float, budget: float | None, passed: bool, over: bool
) -> None:
    record = GateRun(
        facts=facts(),
        gate="g",
        id="g",
        status=status,
        cached=cached,
        duration_s=duration,
        budget_s=budget,
    )
    assert record.passed is passed
    assert record.over_budget is over


@pytest.mark.parametrize(
    "line",
    [
        {"kind": "gate"},  # fields missing
        {
            "schema": 2,
            "time": "2026-01-01T00:00:00",
            "gate": "g",
            "id": "g",
            "status": "passed",
            "duration_s": 1,
        },
        {
            "schema": 1,
            "time": "yesterday",
            "gate": "g",
            "id": "g",
            "status": "passed",
            "duration_s": 1,
        },
        {
            "schema": 1,
            "time": "2026-01-01T00:00:00",
            "gate": "g",
            "id": "g",
            "status": "passed",
            "duration_s": "slow",
        },
        {
            "schema": 1,
            "time": "2026-01-01T00:00:00",
            "gate": "g",
            "id": "g",
            "status": "passed",
            "duration_s": 1,
            "slowest": [1],
        },
    ],
)
def test_damaged_or_newer_lines_are_counted_not_used(line: dict[str, object]) -> None:
    good = run().to_dict()
    parsed = history.parse([good, line])
    assert parsed.gates == (run(),)
    assert parsed.skipped == 1


def test_gate_run_reads_budget_floor_counts_and_slowest_tests(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "junit-3.12.xml").write_text(JUNIT)
    config = Config(
        root=tmp_path,
        path=None,
        gates={"test": GateConfig(name="test", budget_s=120, coverage_min=90)},
    )
    result = GateResult(
        gate="test",
        variant="3.12",
        status=GateStatus.FAILED,
        duration_s=130.0,
        artifacts=("reports/junit-3.12.xml", "reports/missing.xml"),
        flaky=("tests/test_b.py::test_flaky",),
        coverage=91.5,
    )
    record = history.gate_run(result, facts(), config, tmp_path)
    assert (record.tests, record.failed) == (4, 1)
    assert record.slowest[0] == ("tests.test_a::test_slow", 2.5)
    assert len(record.slowest) == 4
    assert (record.budget_s, record.over_budget, record.coverage, record.coverage_min) == (
        120,
        True,
        91.5,
        90,
    )
    assert record.flaky == ("tests/test_b.py::test_flaky",)
    lint = history.gate_run(
        GateResult(gate="lint", status=GateStatus.CACHED), facts(), config, tmp_path
    )
    assert (lint.cached, lint.coverage_min, lint.tests) == (True, None, None)


@pytest.mark.parametrize(
    ("env", "script", "expected"),
    [
        (
            {"GITHUB_SHA": "s" * 40, "GITHUB_REF": "refs/pull/7/merge", "GITHUB_ACTOR": "octo"},
            {},
            ("s" * 40, "refs/pull/7/merge", "octo"),
        ),
        (
            {},
            {
                ("git", "rev-parse"): (0, "h" * 40 + "\n", ""),
                ("git", "symbolic-ref"): (0, "refs/heads/dev\n", ""),
            },
            ("h" * 40, "refs/heads/dev", "me"),
        ),
        ({}, {("git", "rev-parse"): (128, "", "not a git repository")}, ("", "", "me")),
        ({}, {}, ("", "", "me")),  # no git at all
    ],
)
def test_facts_come_from_github_or_git(
    env: dict[str, str],
    script: dict[tuple[str, ...], tuple[int, str, str]],
    expected: tuple[str, str, str],
) -> None:
    now = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    got = history.gather_facts(FakeRunner(script=script), Path(), env, now, "me")
    assert (got.commit, got.ref, got.actor) == expected
    assert got.time == "2026-03-01T12:00:00+00:00"


# ---- the logs ------------------------------------------------------------------------------


def test_the_gate_hook_appends_a_bounded_masked_record(tmp_path: Path) -> None:
    secret = "hunter2-history-secret"  # pragma: allowlist secret
    redact.install(redact.Redactor.of([secret]))
    config = Config(root=tmp_path, path=None, history=HistoryConfig(keep=3))
    env = {
        "CI_STATE_DIR": str(tmp_path / "state"),
        "GITHUB_SHA": "a" * 40,
        "GITHUB_REF": "refs/heads/main",
    }
    ctx = GateContext(config=config, runner=FakeRunner(), clock=FixedClock(), env=env)
    for n in range(5):
        result = GateResult(
            gate="test",
            variant="3.12",
            status=GateStatus.PASSED,
            duration_s=n,
            flaky=(f"tests/test_x.py::test_{secret}",),
        )
        assert history.record_gate(result, ctx)
    text = (tmp_path / "state" / "logs" / "gates.jsonl").read_text()
    assert secret not in text
    assert "***" in text
    read = history.read(backend(tmp_path))
    assert [r.duration_s for r in read.gates] == [2, 3, 4]
    assert all(json.loads(line)["schema"] == 1 for line in text.splitlines())


def test_a_history_that_cannot_be_written_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "state").write_text("a file where the state folder goes")
    config = Config(root=tmp_path, path=None)
    ctx = GateContext(
        config=config,
        runner=FakeRunner(),
        clock=FixedClock(),
        env={"CI_STATE_DIR": str(tmp_path / "state")},
    )
    assert not history.record_gate(GateResult(gate="lint", status=GateStatus.PASSED), ctx)
    assert "warning: run history not recorded" in capsys.readouterr().err


def test_runs_and_lock_waits_are_read_back(tmp_path: Path) -> None:
    config = Config(root=tmp_path, path=None)
    ctx = GateContext(
        config=config,
        runner=FakeRunner(),
        clock=FixedClock(),
        env={"CI_STATE_DIR": str(tmp_path / "state")},
    )
    results = [
        GateResult(gate="lint", status=GateStatus.PASSED),
        GateResult(gate="audit", status=GateStatus.FAILED),
    ]
    assert history.record_run(ctx, results, passed=False, duration_s=3.0)
    wait = LockWait(
        time="2026-01-01T00:00:00Z", actor="a", env="staging", operation="deploy", outcome="refused"
    )
    backend(tmp_path).append_log(history.LOCKS_LOG, wait.to_dict(), keep=10)
    read = history.read(backend(tmp_path))
    assert read.runs[0].gates == (("lint", "passed"), ("audit", "failed"))
    assert not read.runs[0].passed
    assert read.locks == (wait,)
    assert not read.empty


@pytest.mark.parametrize(
    ("table", "keep"),
    [("", 2000), ("[tool.ci.history]\nkeep = 500\n", 500)],
)
def test_history_keep_is_configurable(table: str, keep: int) -> None:
    import tomllib

    config = parse(tomllib.loads(table), root=Path(), path=None)
    assert config.history.keep == keep


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[tool.ci.history]\nkeep = 0\n", "tool.ci.history.keep must be at least 1"),
        ("[tool.ci.history]\nkeep = 'all'\n", "tool.ci.history.keep must be at least 1"),
        ("[tool.ci.history]\nkept = 3\n", "unknown key 'kept' in [tool.ci.history]"),
    ],
)
def test_bad_history_config_names_the_key(table: str, message: str) -> None:
    import tomllib

    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(tomllib.loads(table), root=Path(), path=None)


# ---- aggregations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([3.0], 50, 3.0),
        ([3.0], 95, 3.0),
        ([1.0, 2.0], 50, 1.5),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([5.0, 1.0, 3.0], 50, 3.0),  # order does not matter
        (list(map(float, range(1, 101))), 95, 95.05),
        (list(map(float, range(1, 101))), 100, 100.0),
        (list(map(float, range(1, 101))), 0, 1.0),
        ([1.0] * 19 + [100.0], 95, 5.95),  # one outlier in twenty moves p95 a little
    ],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    got = history.percentile(values, q)
    assert got == pytest.approx(expected) if expected is not None else got is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], "flat"),
        ([1.0], "flat"),
        ([1.0, 1.0, 1.0, 1.0], "flat"),
        ([1.0, 1.0, 0.0, 0.0], "down"),
        ([0.0, 0.0, 1.0, 1.0], "up"),
        ([10.0, 10.2], "flat"),  # within 5 %
        ([10.0, 11.0], "up"),
        ([1.0] * 30 + [0.0] * 10, "down"),  # the last ten against the ten before
        ([0.0] * 10 + [1.0] * 20, "flat"),  # what happened before the window is not counted
    ],
)
def test_trend(values: list[float], expected: str) -> None:
    assert history.trend(values) == expected


def test_gate_stats_per_gate() -> None:
    runs = [
        run("lint", "passed", 2.0),
        run("lint", "failed", 4.0),
        run("lint", cached=True, duration=0.1),
        run("lint", "passed", 6.0),
        run("test-3.12", "passed", 100.0, budget=90),
        run("test-3.12", "passed", 80.0, budget=90),
    ]
    stats = {s.id: s for s in history.gate_stats(runs)}
    assert list(stats) == ["lint", "test-3.12"]
    lint = stats["lint"]
    assert (lint.runs, lint.passed, lint.cached) == (4, 3, 1)
    assert lint.pass_rate == pytest.approx(0.75)
    assert lint.cache_hit_rate == pytest.approx(0.25)
    assert (lint.p50_s, lint.p95_s) == (pytest.approx(4.0), pytest.approx(5.8))  # fresh runs only
    test = stats["test-3.12"]
    assert (test.budget_s, test.over_budget, test.pass_rate) == (90, 1, 1.0)
    assert history.cache_hit_rate(runs) == pytest.approx(1 / 6)
    assert history.cache_hit_rate([]) is None


@pytest.mark.parametrize(
    ("flaky_runs", "clean_runs", "rate", "within"),
    [
        (0, 0, None, True),
        (0, 20, 0.0, True),
        (1, 19, 0.05, False),  # at the target is not under it
        (1, 39, 0.025, True),
        (3, 7, 0.3, False),
    ],
)
def test_flaky_rate_against_the_five_percent_target(
    flaky_runs: int, clean_runs: int, rate: float | None, within: bool
) -> None:
    runs = [run("test-3.12", flaky=("tests/t.py::test_wobbly",), day=1) for _ in range(flaky_runs)]
    runs += [run("test-3.12", day=2) for _ in range(clean_runs)]
    runs += [run("test-3.12", cached=True, flaky=("tests/t.py::replayed",))]  # replays do not count
    runs += [run("lint", flaky=("not a test gate",))]
    stats = history.flaky_stats(runs)
    assert stats.rate == (pytest.approx(rate) if rate is not None else None)
    assert stats.within_target is within
    assert [t[0] for t in stats.tests] == (["tests/t.py::test_wobbly"] if flaky_runs else [])


def test_flaky_tests_most_often_first_with_last_seen() -> None:
    runs = [
        run("test-3.12", flaky=("b", "a"), day=1),
        run("test-3.12", flaky=("b", "b"), day=2),  # twice in one run counts once
        run("test-3.11", flaky=("c",), day=3),
    ]
    stats = history.flaky_stats(runs)
    assert stats.tests == (
        ("b", 2, facts(2).time),
        ("a", 1, facts(1).time),
        ("c", 1, facts(3).time),
    )


def test_slow_tests_by_median_over_recent_fresh_runs() -> None:
    runs = [
        run("test-3.12", slowest=(("t::a", 1.0), ("t::b", 5.0))),
        run("test-3.12", slowest=(("t::a", 3.0), ("t::b", 1.0))),
        run("test-3.12", slowest=(("t::a", 2.0), ("t::c", 0.5))),
        run("test-3.12", cached=True, slowest=(("t::z", 99.0),)),
    ]
    slow = history.slow_tests(runs, count=2)
    assert [(t.name, t.median_s, t.seen) for t in slow] == [("t::b", 3.0, 2), ("t::a", 2.0, 3)]
    assert history.slow_tests(runs, last=1)[0].name == "t::a"


def test_series_and_daily_pass_rate() -> None:
    runs = [
        run("test-3.12", coverage=90.0, day=1, duration=10),
        run("test-3.12", "failed", coverage=80.0, day=1, duration=12),
        run("test-3.12", cached=True, coverage=80.0, day=2),
        run("lint", day=2),
    ]
    assert [p.value for p in history.coverage_series(runs)["test-3.12"]] == [90.0, 80.0, 80.0]
    durations = history.duration_series(runs)
    assert [(p.value, p.label) for p in durations["test-3.12"]] == [(10, "passed"), (12, "failed")]
    assert history.daily_pass_rate(runs) == [("2026-01-01", 0.5, 2), ("2026-01-02", 1.0, 2)]
    assert history.daily_pass_rate(runs, days=1) == [("2026-01-02", 1.0, 2)]


def entry(
    seq: int,
    action: str,
    outcome: str,
    env: str = "staging",
    when: str = "2026-01-05T10:00:00Z",
    **details: object,
) -> Entry:
    return Entry(
        seq=seq,
        time=when,
        actor="a",
        action=action,
        env=env,
        version="1.0",
        outcome=outcome,
        details=details,
    )


def test_deploy_stats_from_the_ledger() -> None:
    entries = [
        entry(1, "deploy", "started"),
        entry(2, "deploy", "succeeded"),
        entry(3, "deploy", "started", env="production", approval={"by": "rel", "reason": "ok"}),
        entry(4, "deploy", "failed", env="production"),
        entry(5, "rollback", "started", env="production"),
        entry(6, "rollback", "succeeded", env="production"),
        entry(7, "lock", "recovered", when="2026-01-13T00:00:00Z", reason="holder process is gone"),
        entry(8, "unlock", "removed"),
        entry(9, "deploy", "interrupted", when="2026-01-13T00:00:00Z"),
        entry(10, "deploy", "succeeded", when="2026-01-13T01:00:00Z"),
    ]
    stats = history.deploy_stats(entries)
    assert stats.deploys["staging"] == Counter({"started": 1, "succeeded": 2, "interrupted": 1})
    assert stats.rollbacks["production"]["succeeded"] == 1
    assert (stats.total_deploys, stats.total_rollbacks, stats.interrupted) == (3, 1, 1)
    assert stats.per_week == (("2026-W02", 2, 1), ("2026-W03", 1, 0))
    assert [e.seq for e in stats.takeovers] == [7]
    assert [e.seq for e in stats.unlocks] == [8]
    assert [(e.seq, by, why) for e, by, why in stats.approvals] == [(3, "rel", "ok")]
    assert history.deploy_stats([]).total_deploys == 0


@pytest.mark.parametrize(
    ("expires", "days", "expired"),
    [
        (dt.date(2026, 1, 10), 9, False),
        (dt.date(2026, 1, 1), 0, False),  # the last day it still holds
        (dt.date(2025, 12, 31), -1, True),
        (dt.date(2025, 1, 1), -365, True),
    ],
)
def test_waivers_days_to_expiry(expires: dt.date, days: int, expired: bool) -> None:
    waiver = Waiver(id="PYSEC-1", reason="r", expires=expires)
    [due] = history.waivers_due([waiver], dt.date(2026, 1, 1))
    assert (due.days_left, due.expired) == (days, expired)


def test_waivers_soonest_first() -> None:
    waivers = [
        Waiver(id="later", reason="r", expires=dt.date(2027, 1, 1)),
        Waiver(id="gone", reason="r", expires=dt.date(2025, 1, 1)),
        Waiver(id="soon", reason="r", expires=dt.date(2026, 2, 1)),
    ]
    assert [d.waiver.id for d in history.waivers_due(waivers, dt.date(2026, 1, 1))] == [
        "gone",
        "soon",
        "later",
    ]


def test_merge_brings_other_jobs_logs_in_once_in_time_order(tmp_path: Path) -> None:
    jobs = tmp_path / "history-in"
    for name, day in (("history-lint", 3), ("history-test-0", 1)):
        other = StateBackend(LocalStore(jobs / name))
        other.append_log(history.GATES_LOG, run(name, day=day).to_dict(), keep=10)
    newer = {**run("future", day=2).to_dict(), "schema": 2}
    StateBackend(LocalStore(jobs / "history-x")).append_log(history.GATES_LOG, newer, keep=10)
    here = backend(tmp_path)
    here.append_log(history.GATES_LOG, run("earlier", day=2).to_dict(), keep=10)
    assert history.merge(here, [jobs], keep=10) == 3
    assert history.merge(here, [jobs], keep=10) == 0  # a second merge adds nothing
    lines = [
        json.loads(x)
        for x in (tmp_path / "state" / "logs" / "gates.jsonl").read_text().splitlines()
    ]
    assert [(x["id"], x["schema"]) for x in lines] == [
        ("history-test-0", 1),
        ("earlier", 1),
        ("future", 2),
        ("history-lint", 1),
    ]
    read = history.read(here)
    assert [r.id for r in read.gates] == ["history-test-0", "earlier", "history-lint"]
    assert read.skipped == 1  # schema 2: kept in the log, not read by this version
    fresh = StateBackend(LocalStore(tmp_path / "fresh"))
    assert history.merge(fresh, [jobs], keep=2) == 3
    assert [r.id for r in history.read(fresh).gates] == ["history-lint"]  # the newest two kept


def test_merge_of_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    from ci.core.errors import UsageError

    with pytest.raises(UsageError, match="is not a folder of run history logs"):
        history.merge(backend(tmp_path), [tmp_path / "nowhere"], keep=10)
