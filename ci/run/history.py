"""Run history: one compact record per gate run and per pipeline run, and what they add up to.

Records go to bounded logs of the state backend (``logs/gates.jsonl``, ``logs/runs.jsonl``,
``logs/locks.jsonl`` in ``.ci-state/`` or on the git remote), each line canonical JSON with
``"schema"``, masked before it is written, the oldest dropped past ``[tool.ci.history] keep``.
The aggregations (percentiles, rates, trends, the ledger's deploys) are pure functions over
the records: the dashboard and the step summary draw what they return.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci.core.config import Config, Waiver
from ci.core.errors import CIError, UsageError
from ci.core.gate import GateContext, GateResult, GateStatus
from ci.core.runner import Runner
from ci.deploy import lock
from ci.deploy.backend import StateBackend, open_backend
from ci.deploy.ledger import Entry
from ci.gates.test import read_junit
from ci.run import observe

GATES_LOG = "gates"
RUNS_LOG = "runs"
LOCKS_LOG = lock.LOCKS_LOG
SCHEMA = 1
SLOWEST_KEPT = 10  # slowest tests a gate record keeps
FLAKY_TARGET = 0.05  # the share of test runs with a flaky test the project aims to stay under
PASSING = frozenset({GateStatus.PASSED.value, GateStatus.CACHED.value})


# ---- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """Where and when a run happened: time, commit, ref and who ran it."""

    time: str
    commit: str = ""
    ref: str = ""
    actor: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class GateRun:
    """One gate run as the history keeps it."""

    facts: Facts
    gate: str
    id: str
    status: str
    mode: str = "required"
    duration_s: float = 0.0
    budget_s: float | None = None
    cached: bool = False
    coverage: float | None = None
    coverage_min: float | None = None
    tests: int | None = None
    failed: int | None = None
    slowest: tuple[tuple[str, float], ...] = ()
    flaky: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when the gate passed (a replayed pass counts)."""
        return self.status in PASSING

    @property
    def over_budget(self) -> bool:
        """True when a fresh run took longer than its budget."""
        return self.budget_s is not None and not self.cached and self.duration_s > self.budget_s

    def to_dict(self) -> dict[str, Any]:
        """The record's JSON form; fields without a value are left out (a long history is big)."""
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "kind": "gate",
            "time": self.facts.time,
            "commit": self.facts.commit,
            "ref": self.facts.ref,
            "actor": self.facts.actor,
            "gate": self.gate,
            "id": self.id,
            "status": self.status,
            "mode": self.mode,
            "duration_s": round(self.duration_s, 3),
            "cached": self.cached,
        }
        optional = {
            "budget_s": self.budget_s,
            "over_budget": self.over_budget or None,
            "coverage": self.coverage,
            "coverage_min": self.coverage_min,
            "tests": self.tests,
            "failed": self.failed,
            "slowest": [[name, round(s, 3)] for name, s in self.slowest] or None,
            "flaky": list(self.flaky) or None,
        }
        data.update((key, value) for key, value in optional.items() if value is not None)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateRun:
        """Rebuild a record from ``to_dict`` output (KeyError, TypeError or ValueError if bad)."""
        get = data.get  # a long history has tens of thousands: keep each read cheap
        slowest = get("slowest")
        flaky = get("flaky")
        return cls(
            facts=_facts(data),
            gate=str(data["gate"]),
            id=str(data["id"]),
            status=str(data["status"]),
            mode=str(get("mode", "required")),
            duration_s=float(data["duration_s"]),
            budget_s=_number(get("budget_s")),
            cached=get("cached") is True,
            coverage=_number(get("coverage")),
            coverage_min=_number(get("coverage_min")),
            tests=_count(get("tests")),
            failed=_count(get("failed")),
            slowest=tuple((str(n), float(t)) for n, t in slowest) if slowest else (),
            flaky=tuple(map(str, flaky)) if flaky else (),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineRun:
    """One run of the main job (``invoke ci``): its verdict, duration and gates."""

    facts: Facts
    status: str
    duration_s: float
    gates: tuple[tuple[str, str], ...] = ()  # (gate id, status)
    kind: str = "pipeline"  # or "release"

    @property
    def passed(self) -> bool:
        """True when no required gate blocked."""
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        """The record's JSON form."""
        return {
            "schema": SCHEMA,
            "kind": self.kind,
            "time": self.facts.time,
            "commit": self.facts.commit,
            "ref": self.facts.ref,
            "actor": self.facts.actor,
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
            "gates": [{"id": i, "status": s} for i, s in self.gates],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineRun:
        """Rebuild a record from ``to_dict`` output (KeyError, TypeError or ValueError if bad)."""
        return cls(
            facts=_facts(data),
            status=str(data["status"]),
            duration_s=float(data["duration_s"]),
            gates=tuple((str(g["id"]), str(g["status"])) for g in data.get("gates") or ()),
            kind=str(data.get("kind", "pipeline")),
        )


def _facts(data: Mapping[str, Any]) -> Facts:
    get = data.get
    return _facts_of(
        str(data["time"]), str(get("commit") or ""), str(get("ref") or ""), str(get("actor") or "")
    )


@functools.lru_cache(maxsize=1024)
def _facts_of(time: str, commit: str, ref: str, actor: str) -> Facts:
    """One Facts per run: the gate records of a run share it (a long history reads faster)."""
    dt.datetime.fromisoformat(time)  # ValueError for a damaged stamp
    return Facts(time=time, commit=commit, ref=ref, actor=actor)


def _number(value: object) -> float | None:
    if value is None:
        return None
    if type(value) is float and math.isfinite(value):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def gate_run(result: GateResult, facts: Facts, config: Config, root: Path) -> GateRun:
    """The history record of ``result``: budget, coverage floor, counts and slowest tests."""
    policy = config.gate(result.gate)
    tests = failed = None
    slowest: list[tuple[str, float]] = []
    for artifact in result.artifacts:
        path = root / artifact
        if path.name.startswith("junit") and path.suffix == ".xml" and path.is_file():
            try:
                summary = read_junit(path)
            except CIError:
                continue
            tests = summary.tests
            failed = summary.failures + summary.errors
            slowest = [(t.name, t.seconds) for t in observe.slowest_tests(path, SLOWEST_KEPT)]
    return GateRun(
        facts=facts,
        gate=result.gate,
        id=result.id,
        status=result.status.value,
        mode=result.mode.value,
        duration_s=result.duration_s,
        budget_s=policy.budget_s,
        cached=result.status is GateStatus.CACHED,
        coverage=result.coverage,
        coverage_min=policy.coverage_min if result.gate == "test" else None,
        tests=tests,
        failed=failed,
        slowest=tuple(slowest),
        flaky=result.flaky,
    )


def gather_facts(
    runner: Runner, root: Path, env: Mapping[str, str], now: dt.datetime, actor: str
) -> Facts:
    """The run's facts: GitHub's variables where set, else git's answer (empty if none)."""
    commit = env.get("GITHUB_SHA", "")
    ref = env.get("GITHUB_REF", "")
    if not commit or not ref:
        head = _git(runner, root, "rev-parse", "HEAD")
        commit = commit or head
        ref = ref or _git(runner, root, "symbolic-ref", "-q", "HEAD")
    return Facts(
        time=now.isoformat(timespec="seconds"),
        commit=commit,
        ref=ref,
        actor=env.get("GITHUB_ACTOR") or actor,
    )


def _git(runner: Runner, root: Path, *args: str) -> str:
    try:
        done = runner.run(["git", *args], cwd=root)
    except (CIError, OSError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def append(
    backend: StateBackend,
    log: str,
    record: GateRun | PipelineRun,
    *,
    keep: int,
) -> None:
    """Append ``record`` to ``log`` (the backend masks it and drops the oldest past ``keep``)."""
    backend.append_log(log, record.to_dict(), keep=keep)


def append_quietly(
    backend: StateBackend, log: str, record: GateRun | PipelineRun, *, keep: int
) -> bool:
    """``append``, but a history that cannot be written is a warning, never a failed run."""
    try:
        append(backend, log, record, keep=keep)
    except (CIError, OSError) as exc:
        print(f"warning: run history not recorded ({exc})", file=sys.stderr)
        return False
    return True


def record_gate(result: GateResult, ctx: GateContext) -> bool:
    """Append ``result``'s record to the gate log of the project's state backend (best effort)."""
    try:
        backend = open_backend(ctx.config, ctx.env, ctx.runner)
    except CIError as exc:
        print(f"warning: run history not recorded ({exc})", file=sys.stderr)
        return False
    facts = gather_facts(ctx.runner, ctx.root, ctx.env, ctx.clock.now(), lock.login_name())
    record = gate_run(result, facts, ctx.config, ctx.root)
    return append_quietly(backend, GATES_LOG, record, keep=ctx.config.history.keep)


def record_run(
    ctx: GateContext,
    results: Sequence[GateResult],
    *,
    passed: bool,
    duration_s: float,
    kind: str = "pipeline",
) -> bool:
    """Append one pipeline (or release) run to the run log (best effort)."""
    try:
        backend = open_backend(ctx.config, ctx.env, ctx.runner)
    except CIError as exc:
        print(f"warning: run history not recorded ({exc})", file=sys.stderr)
        return False
    facts = gather_facts(ctx.runner, ctx.root, ctx.env, ctx.clock.now(), lock.login_name())
    record = PipelineRun(
        facts=facts,
        status="passed" if passed else "failed",
        duration_s=duration_s,
        gates=tuple((r.id, r.status.value) for r in results),
        kind=kind,
    )
    return append_quietly(backend, RUNS_LOG, record, keep=ctx.config.history.keep)


# ---- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class History:
    """Every readable record of the three logs, oldest first, and how many were unreadable."""

    gates: tuple[GateRun, ...] = ()
    runs: tuple[PipelineRun, ...] = ()
    locks: tuple[lock.LockWait, ...] = ()
    skipped: int = 0

    @property
    def empty(self) -> bool:
        """True when nothing has been recorded yet."""
        return not (self.gates or self.runs)


def parse(
    gates: Iterable[Mapping[str, Any]],
    runs: Iterable[Mapping[str, Any]] = (),
    locks: Iterable[Mapping[str, Any]] = (),
) -> History:
    """The records of raw log lines; a line of a newer schema or damaged is counted, not used."""
    skipped = 0

    def keep(rows: Iterable[Mapping[str, Any]], build: Any) -> list[Any]:  # noqa: ANN401
        nonlocal skipped
        out = []
        for row in rows:
            try:
                if row.get("schema", SCHEMA) != SCHEMA:
                    raise ValueError(row.get("schema"))
                out.append(build(row))
            except (KeyError, TypeError, ValueError, AttributeError):
                skipped += 1
        return out

    return History(
        gates=tuple(keep(gates, GateRun.from_dict)),
        runs=tuple(keep(runs, PipelineRun.from_dict)),
        locks=tuple(keep(locks, _lock_wait)),
        skipped=skipped,
    )


def _lock_wait(data: Mapping[str, Any]) -> lock.LockWait:
    _facts(data)  # the same check of its time stamp
    return lock.LockWait.from_dict(data)


def read(backend: StateBackend) -> History:
    """The history the state backend holds."""
    logs = (backend.read_log(name) for name in (GATES_LOG, RUNS_LOG, LOCKS_LOG))
    return parse(*logs)


def merge(backend: StateBackend, folders: Sequence[Path], *, keep: int) -> int:
    """Merge the history logs found under ``folders`` (other jobs' runs) into ``backend``.

    A folder may hold the logs themselves or any tree of them (downloaded CI artifacts);
    records already in the history are not added twice. How many records were new.
    """
    added = 0
    for name in (GATES_LOG, RUNS_LOG, LOCKS_LOG):
        records: list[dict[str, Any]] = []
        for folder in folders:
            if not folder.is_dir():
                msg = f"{folder} is not a folder of run history logs ({name}.jsonl files)"
                raise UsageError(msg)
            for path in sorted(folder.rglob(f"{name}.jsonl")):
                records += _records(path)
        if records:
            added += backend.merge_log(name, records, keep=keep)
    return added


def _records(path: Path) -> list[dict[str, Any]]:
    found = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            found.append(doc)
    return found


# ---- aggregations --------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation between ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def rate(hits: int, total: int) -> float | None:
    """``hits / total``, or None when there is nothing to divide."""
    return hits / total if total else None


def trend(values: Sequence[float], window: int = 10, tolerance: float = 0.05) -> str:
    """``up``, ``down`` or ``flat``: the mean of the last ``window`` values against the one before.

    Fewer than two values: ``flat``. The relative change must pass ``tolerance`` to count.
    """
    if len(values) < 2:
        return "flat"
    half = min(window, len(values) // 2)
    recent = statistics.fmean(values[-half:])
    before = statistics.fmean(values[-2 * half : -half])
    scale = max(abs(before), abs(recent), 1e-9)
    change = (recent - before) / scale
    if change > tolerance:
        return "up"
    if change < -tolerance:
        return "down"
    return "flat"


@dataclass(frozen=True, slots=True, kw_only=True)
class GateStats:
    """One gate id over the history."""

    id: str
    runs: int
    passed: int
    cached: int
    p50_s: float | None  # of fresh runs (a replay's duration says nothing about the gate)
    p95_s: float | None
    budget_s: float | None
    over_budget: int
    pass_trend: str

    @property
    def pass_rate(self) -> float | None:
        """The share of runs that passed."""
        return rate(self.passed, self.runs)

    @property
    def cache_hit_rate(self) -> float | None:
        """The share of runs replayed from the cache."""
        return rate(self.cached, self.runs)


def gate_stats(runs: Sequence[GateRun]) -> list[GateStats]:
    """Per gate id (in order of first appearance): pass rate, p50/p95, cache hits, budget."""
    by_id: dict[str, list[GateRun]] = defaultdict(list)
    for run in runs:
        by_id[run.id].append(run)
    stats = []
    for gate_id, mine in by_id.items():
        fresh = [r.duration_s for r in mine if not r.cached]
        stats.append(
            GateStats(
                id=gate_id,
                runs=len(mine),
                passed=sum(r.passed for r in mine),
                cached=sum(r.cached for r in mine),
                p50_s=percentile(fresh, 50),
                p95_s=percentile(fresh, 95),
                budget_s=mine[-1].budget_s,
                over_budget=sum(r.over_budget for r in mine),
                pass_trend=trend([1.0 if r.passed else 0.0 for r in mine]),
            )
        )
    return stats


def cache_hit_rate(runs: Sequence[GateRun]) -> float | None:
    """The share of all gate runs that were replayed from the cache."""
    return rate(sum(r.cached for r in runs), len(runs))


@dataclass(frozen=True, slots=True, kw_only=True)
class FlakyStats:
    """Flaky tests over the history: which, how often, and the rate against the target."""

    test_runs: int  # fresh test gate runs
    with_flaky: int  # of them, runs where a test failed and then passed on rerun
    tests: tuple[tuple[str, int, str], ...]  # (test, times flaky, last seen), most often first
    target: float = FLAKY_TARGET

    @property
    def rate(self) -> float | None:
        """The share of test runs that had a flaky test."""
        return rate(self.with_flaky, self.test_runs)

    @property
    def within_target(self) -> bool:
        """True when the rate is under the target (or nothing ran)."""
        return self.rate is None or self.rate < self.target


def flaky_stats(runs: Sequence[GateRun], target: float = FLAKY_TARGET) -> FlakyStats:
    """The flaky-test rate of fresh test gate runs and the tests that were flaky."""
    tested = [r for r in runs if r.gate == "test" and not r.cached]
    counts: Counter[str] = Counter()
    last: dict[str, str] = {}
    for run in tested:
        for test in dict.fromkeys(run.flaky):
            counts[test] += 1
            last[test] = run.facts.time
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return FlakyStats(
        test_runs=len(tested),
        with_flaky=sum(bool(r.flaky) for r in tested),
        tests=tuple((name, n, last[name]) for name, n in ordered),
        target=target,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SlowTest:
    """A test and its median recorded time."""

    name: str
    median_s: float
    seen: int


def slow_tests(runs: Sequence[GateRun], count: int = 10, last: int = 50) -> list[SlowTest]:
    """The ``count`` slowest tests by their median time over the last ``last`` fresh runs."""
    times: dict[str, list[float]] = defaultdict(list)
    fresh = [r for r in runs if r.slowest and not r.cached][-last:]
    for run in fresh:
        for name, seconds in run.slowest:
            times[name].append(seconds)
    ranked = [
        SlowTest(name=n, median_s=statistics.median(v), seen=len(v)) for n, v in times.items()
    ]
    ranked.sort(key=lambda t: (-t.median_s, t.name))
    return ranked[:count]


@dataclass(frozen=True, slots=True, kw_only=True)
class Point:
    """One value at a time, for a chart."""

    time: str
    value: float
    label: str = ""


def coverage_series(runs: Sequence[GateRun]) -> dict[str, list[Point]]:
    """Coverage per test gate id over time (runs that measured it)."""
    series: dict[str, list[Point]] = defaultdict(list)
    for run in runs:
        if run.coverage is not None:
            series[run.id].append(Point(time=run.facts.time, value=run.coverage))
    return dict(series)


def duration_series(runs: Sequence[GateRun]) -> dict[str, list[Point]]:
    """Fresh-run durations per gate id over time, labelled with the verdict."""
    series: dict[str, list[Point]] = defaultdict(list)
    for run in runs:
        if not run.cached:
            point = Point(time=run.facts.time, value=run.duration_s, label=run.status)
            series[run.id].append(point)
    return dict(series)


def daily_pass_rate(runs: Sequence[GateRun], days: int = 30) -> list[tuple[str, float, int]]:
    """(day, share of gate runs that passed, runs) for the last ``days`` days with runs."""
    per_day: dict[str, list[bool]] = defaultdict(list)
    for run in runs:
        per_day[run.facts.time[:10]].append(run.passed)
    return [(day, sum(v) / len(v), len(v)) for day, v in sorted(per_day.items())[-days:]]


# ---- the ledger and waivers ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DeployStats:
    """What the ledger says about deploys: counts, frequency, takeovers, approvals."""

    deploys: Mapping[str, Counter[str]] = field(default_factory=dict)  # env -> outcome -> n
    rollbacks: Mapping[str, Counter[str]] = field(default_factory=dict)
    per_week: tuple[tuple[str, int, int], ...] = ()  # (ISO week, deploys, rollbacks)
    takeovers: tuple[Entry, ...] = ()  # locks recovered from a dead or expired holder
    unlocks: tuple[Entry, ...] = ()  # locks removed by hand
    approvals: tuple[tuple[Entry, str, str], ...] = ()  # (deploy entry, by, reason)
    interrupted: int = 0

    @property
    def total_deploys(self) -> int:
        """Deploys that finished (succeeded or failed), every environment."""
        return sum(c["succeeded"] + c["failed"] for c in self.deploys.values())

    @property
    def total_rollbacks(self) -> int:
        """Rollbacks that finished, every environment."""
        return sum(c["succeeded"] + c["failed"] for c in self.rollbacks.values())


def deploy_stats(entries: Sequence[Entry]) -> DeployStats:
    """Deploys and rollbacks per environment and week, takeovers, unlocks and approvals."""
    deploys: dict[str, Counter[str]] = defaultdict(Counter)
    rollbacks: dict[str, Counter[str]] = defaultdict(Counter)
    weeks: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    approvals = []
    for entry in entries:
        if entry.action == "deploy":
            deploys[entry.env][entry.outcome] += 1
            approval = entry.details.get("approval")
            if entry.outcome == "started" and isinstance(approval, Mapping):
                approvals.append(
                    (entry, str(approval.get("by", "")), str(approval.get("reason", "")))
                )
        elif entry.action == "rollback":
            rollbacks[entry.env][entry.outcome] += 1
        if entry.action in {"deploy", "rollback"} and entry.outcome in {"succeeded", "failed"}:
            weeks[_week(entry.time)][0 if entry.action == "deploy" else 1] += 1
    return DeployStats(
        deploys=dict(deploys),
        rollbacks=dict(rollbacks),
        per_week=tuple((w, d, r) for w, (d, r) in sorted(weeks.items())),
        takeovers=tuple(e for e in entries if e.action == "lock" and e.outcome == "recovered"),
        unlocks=tuple(e for e in entries if e.action == "unlock"),
        approvals=tuple(approvals),
        interrupted=sum(e.outcome == "interrupted" for e in entries),
    )


def _week(stamp: str) -> str:
    try:
        day = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).date()
    except ValueError:
        return "unknown"
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True, slots=True, kw_only=True)
class WaiverDue:
    """A waiver and the days until it expires (negative: expired that many days ago)."""

    waiver: Waiver
    days_left: int

    @property
    def expired(self) -> bool:
        """True once its date has passed."""
        return self.days_left < 0


def waivers_due(waivers: Iterable[Waiver], today: dt.date) -> list[WaiverDue]:
    """Every waiver with its days to expiry, soonest first."""
    due = [WaiverDue(waiver=w, days_left=(w.expires - today).days) for w in waivers]
    due.sort(key=lambda d: (d.days_left, d.waiver.id))
    return due
