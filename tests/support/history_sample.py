"""A project with a run history, a ledger and waivers, recorded by the real hooks.

``recorded_project`` runs the gate hook (``history.record_gate``), the pipeline record,
the ledger's ``StateBackend.record`` and the deployer's lock-wait record over a few days of
made-up runs: what ``python -m ci dashboard`` then draws is what those hooks wrote.
``big_history`` writes a long history straight into the logs (the same records' JSON).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from ci.core.config import load
from ci.core.gate import GateContext, GateResult, GateStatus
from ci.deploy import state as deploystate
from ci.deploy.backend import NewEntry, StateBackend
from ci.deploy.lock import LOCKS_LOG, LockWait
from ci.deploy.store import LocalStore
from ci.run import history
from ci.run.history import Facts, GateRun, PipelineRun
from ci.testing.fakes import FakeRunner, FixedClock

FLAKY_TEST = "tests/test_api.py::test_retry_after_timeout"
EXPIRED_WAIVER = "PYSEC-2025-0042"
VALID_WAIVER = "GHSA-aaaa-bbbb-cccc"
START = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 26)

PYPROJECT = f"""\
[project]
name = "sample-app"
version = "1.4.0"

[tool.ci]
pythons = ["3.12"]

[tool.ci.gates.test]
budget_s = 30
coverage_min = 85

[tool.ci.gates.lint]
budget_s = 10

[[tool.ci.waivers]]
id = "{EXPIRED_WAIVER}"
reason = "not reachable: the XML parser never sees untrusted input"
expires = 2026-11-01

[[tool.ci.waivers]]
id = "{VALID_WAIVER}"
reason = "fixed upstream in the next minor release"
expires = 2027-02-28
approved_by = "security team"
"""


def junit(folder: Path, n: int) -> str:
    """A junit file of a few tests whose times drift with ``n``; its project path."""
    cases = [
        ("tests.test_db", "test_migrations_apply_in_order", 4.0 + n * 0.1),
        ("tests.test_api", "test_retry_after_timeout", 2.5),
        ("tests.test_api", "test_pagination", 1.2 + (n % 3) * 0.2),
        ("tests.test_cli", "test_help", 0.05),
    ]
    body = "".join(
        f'<testcase classname="{c}" name="{name}" time="{t:.3f}"/>' for c, name, t in cases
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "junit-3.12.xml").write_text(
        f'<testsuites><testsuite tests="{len(cases)}" failures="0" errors="0" skipped="0">'
        f"{body}</testsuite></testsuites>",
        encoding="utf-8",
    )
    return "reports/junit-3.12.xml"


def recorded_project(root: Path, runs: int = 8) -> Path:
    """Write the project and record ``runs`` runs over as many days; its state folder."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    config = load(root / "pyproject.toml")
    state = root / ".ci-state"
    for n in range(runs):
        clock = FixedClock(START + dt.timedelta(days=n * 3, hours=n))
        env = {
            "CI_STATE_DIR": str(state),
            "GITHUB_SHA": f"{n:040x}",
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_ACTOR": "maintainer",
        }
        ctx = GateContext(config=config, runner=FakeRunner(), clock=clock, env=env, python="3.12")
        results = [
            GateResult(
                gate="lint",
                status=GateStatus.CACHED if n % 3 == 2 else GateStatus.PASSED,
                duration_s=0.2 if n % 3 == 2 else 6.0 + n,
            ),
            GateResult(
                gate="test",
                variant="3.12",
                status=GateStatus.PASSED,
                duration_s=20.0 + 2 * n,
                coverage=88.0 + (n % 4) - (3 if n == 5 else 0),
                artifacts=(junit(root / "reports", n),),
                flaky=(FLAKY_TEST,) if n in {3, 6} else (),
            ),
            GateResult(
                gate="audit",
                status=GateStatus.FAILED if n == 2 else GateStatus.PASSED,
                duration_s=3.0,
            ),
        ]
        for result in results:
            assert history.record_gate(result, ctx)
        assert history.record_run(ctx, results, passed=n != 2, duration_s=35.0 + n)
    backend = StateBackend(LocalStore(state))
    ledger(backend)
    wait = LockWait(
        time="2026-11-20T10:00:00Z",
        actor="other-maintainer",
        env="production",
        operation="deploy",
        outcome="refused",
    )
    backend.append_log(LOCKS_LOG, wait.to_dict(), keep=100)
    return state


def ledger(backend: StateBackend) -> None:
    """Deploys to staging and production, an approval, a failure, a rollback, a takeover."""
    staging, production = deploystate.empty("staging"), deploystate.empty("production")
    steps: list[tuple[str, str, str, str, dict[str, object]]] = [
        ("staging", "deploy", "1.3.0", "started", {}),
        ("staging", "deploy", "1.3.0", "succeeded", {}),
        (
            "production",
            "deploy",
            "1.3.0",
            "started",
            {"approval": {"by": "release-manager", "reason": "CAB-42 approved", "how": "flag"}},
        ),
        ("production", "deploy", "1.3.0", "succeeded", {}),
        ("staging", "deploy", "1.4.0", "started", {}),
        ("staging", "deploy", "1.4.0", "failed", {"reason": "healthcheck exited 1"}),
        ("staging", "rollback", "1.3.0", "started", {}),
        ("staging", "rollback", "1.3.0", "succeeded", {}),
        ("staging", "lock", "1.4.0", "recovered", {"reason": "holder process is gone"}),
    ]
    for day, (env, action, version, outcome, details) in enumerate(steps):
        new = NewEntry(
            time=f"2026-11-{10 + day:02d}T12:00:00Z",
            actor="maintainer",
            action=action,
            env=env,
            version=version,
            outcome=outcome,
            details=details,
        )
        if env == "staging":
            _, staging = backend.record(staging, new)
        else:
            _, production = backend.record(production, new)


def big_history(state: Path, runs: int) -> None:
    """``runs`` pipeline runs of six gates each, written straight into the logs."""
    logs = state / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    gates, pipelines = [], []
    for n in range(runs):
        facts = Facts(
            time=(start + dt.timedelta(hours=n)).isoformat(timespec="seconds"),
            commit=f"{n:040x}",
            ref="refs/heads/main",
            actor="ci",
        )
        for gate_id in ("lint", "workflows", "test-3.12", "secrets", "audit", "package"):
            cached = n % 4 == 1 and gate_id != "test-3.12"
            record = GateRun(
                facts=facts,
                gate=gate_id.split("-")[0],
                id=gate_id,
                status="cached" if cached else ("failed" if n % 37 == 0 else "passed"),
                duration_s=0.1 if cached else 5.0 + (n * 7919 % 100) / 10,
                budget_s=60.0 if gate_id == "test-3.12" else None,
                cached=cached,
                coverage=85.0 + (n % 50) / 10 if gate_id == "test-3.12" else None,
                coverage_min=85.0 if gate_id == "test-3.12" else None,
                slowest=tuple(
                    (f"tests/test_{k}.py::test_case_{n % 40}", 3.0 - k * 0.2) for k in range(10)
                )
                if gate_id == "test-3.12"
                else (),
                flaky=(f"tests/test_net.py::test_flaky_{n % 7}",)
                if gate_id == "test-3.12" and n % 29 == 0
                else (),
            )
            gates.append(json.dumps({**record.to_dict()}, sort_keys=True))
        pipelines.append(
            json.dumps(
                PipelineRun(facts=facts, status="passed", duration_s=60.0 + n % 30).to_dict(),
                sort_keys=True,
            )
        )
    (logs / "gates.jsonl").write_text("\n".join(gates) + "\n", encoding="utf-8")
    (logs / "runs.jsonl").write_text("\n".join(pipelines) + "\n", encoding="utf-8")
