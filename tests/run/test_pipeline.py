import json
import sys
import time
from pathlib import Path

import pytest

from ci.core import config
from ci.core.errors import ExitCode, UsageError
from ci.core.gate import GateResult, GateStatus, context
from ci.run import pipeline, report
from ci.testing.fakes import FakeRunner, FixedClock


def cfg(tmp_path: Path, extra: str = "") -> config.Config:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0"\n' + extra)
    return config.load(cwd=tmp_path)


def test_run_gate_writes_report_with_schema(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    (tmp_path / "ok.py").write_text("X = 1\n")
    ruff = (sys.executable, "-m", "ruff")
    fake = FakeRunner(script={ruff: (0, "[]", "")})
    result = pipeline.run_gate("lint", context(c, fake, FixedClock(), {}))
    assert result.status is GateStatus.PASSED
    data = json.loads((tmp_path / "reports" / "lint.json").read_text())
    assert data["schema"] == 1
    assert data["status"] == "passed"
    assert report.read_report(tmp_path / "reports" / "lint.json").id == result.id


def test_crashed_tool_becomes_error_record_exit_6(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    fake = FakeRunner(script={(sys.executable, "-m", "ruff"): (2, "", "boom")})
    result = pipeline.run_gate("lint", context(c, fake, FixedClock(), {}))
    assert result.status is GateStatus.ERROR
    assert "crashed" in result.summary
    assert pipeline.gate_exit_code(result) is ExitCode.TOOL_CRASHED


def test_advisory_failure_does_not_block(tmp_path: Path) -> None:
    c = cfg(tmp_path, '[tool.ci.gates.lint]\nmode = "advisory"\n')
    items = json.dumps(
        [
            {
                "code": "F401",
                "message": "unused",
                "filename": str(tmp_path / "a.py"),
                "location": {"row": 1},
            }
        ]
    )
    fake = FakeRunner(script={(sys.executable, "-m", "ruff"): (1, items, "")})
    result = pipeline.run_gate("lint", context(c, fake, FixedClock(), {}))
    assert result.status is GateStatus.FAILED
    assert pipeline.gate_exit_code(result) is ExitCode.OK


def test_unknown_gate(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown gate 'nope'"):
        pipeline.run_gate("nope", context(cfg(tmp_path), FakeRunner(), FixedClock(), {}))


def test_default_sessions_follow_config(tmp_path: Path) -> None:
    c = cfg(tmp_path, '[tool.ci]\npythons = ["3.13", "3.12"]\n')
    assert pipeline.default_sessions(c)[:2] == ["lint", "test-3.13"]


def test_run_sessions_collects_reports_and_summarises(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    nox = tuple(pipeline.nox_command())
    # a report left from an earlier run must not be attributed to this one
    old = GateResult(gate="old", status=GateStatus.FAILED)
    path = report.write_report(old, c.reports_path())
    stale = time.time() - 0.01  # even a report from a moment before the session is not its own
    import os

    os.utime(path, (stale, stale))
    fake = FakeRunner(
        script={(*nox, "-s", "lint"): (0, "", ""), (*nox, "-s", "test-3.12"): (1, "", "")}
    )
    outcomes = pipeline.run_sessions(c, fake, ["lint", "test-3.12"])
    rows = [r for o in outcomes for r in o.rows()]
    assert [(r.id, r.status) for r in rows] == [
        ("lint", GateStatus.PASSED),
        ("test-3.12", GateStatus.ERROR),
    ]
    table = pipeline.render_summary(outcomes)
    assert "test-3.12" in table and "nox exited 1" in table
    assert pipeline.pipeline_exit_code(outcomes) is ExitCode.TOOL_CRASHED


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ([GateStatus.PASSED, GateStatus.CACHED], ExitCode.OK),
        ([GateStatus.PASSED, GateStatus.FAILED], ExitCode.GATE_FAILED),
        ([GateStatus.ERROR, GateStatus.FAILED], ExitCode.GATE_FAILED),
        ([GateStatus.ERROR, GateStatus.PASSED], ExitCode.TOOL_CRASHED),
    ],
)
def test_pipeline_exit_code(statuses: list[GateStatus], code: ExitCode) -> None:
    outcomes = [
        pipeline.SessionOutcome(
            session=f"s{i}",
            returncode=0,
            duration_s=0,
            results=(GateResult(gate=f"g{i}", status=s),),
        )
        for i, s in enumerate(statuses)
    ]
    assert pipeline.pipeline_exit_code(outcomes) is code


def test_failed_advisory_gates_are_named_under_the_summary() -> None:
    from ci.core.config import Mode

    rows = (
        GateResult(
            gate="lint", status=GateStatus.FAILED, mode=Mode.ADVISORY, summary="3 finding(s)"
        ),
        GateResult(gate="test", variant="3.12", status=GateStatus.PASSED, mode=Mode.ADVISORY),
        GateResult(gate="audit", status=GateStatus.FAILED, summary="1 vulnerability"),
    )
    outcome = pipeline.SessionOutcome(session="all", returncode=1, duration_s=0.0, results=rows)
    assert pipeline.advisory_notes([outcome]) == [
        "advisory: lint failed (3 finding(s)): reported, not blocking; once fixed, make it "
        "required in [tool.ci.gates.lint]"
    ]
