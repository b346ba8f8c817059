"""Run reports, annotations, the step summary and the gate hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from ci.core import redact
from ci.core.config import Config, GateConfig, Mode
from ci.core.errors import UsageError
from ci.core.gate import Finding, GateContext, GateResult, GateStatus
from ci.core.http import Retry, UrllibClient
from ci.github import summary
from ci.github.status import GitHubEnv
from ci.run import report
from ci.testing.fakes import FakeRunner, FixedClock
from tests.github_api import GitHubAPI

SHA = "a" * 40
TOKEN = "ghs_reporttoken123456"


def lint_failed() -> GateResult:
    return GateResult(
        gate="lint",
        status=GateStatus.FAILED,
        summary="2 finding(s)",
        duration_s=1.5,
        findings=(
            Finding(rule="F401", message="`os` imported but unused", file="a.py", line=3),
            Finding(rule="format", message="would be reformatted", file="b, c.py"),
        ),
    )


def test_gate_records_and_run_report_round_trip(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    report.write_report(lint_failed(), reports)
    report.write_report(GateResult(gate="test", variant="3.12", status=GateStatus.PASSED), reports)
    (reports / "pip-audit-raw.json").write_text('{"dependencies": []}', encoding="utf-8")
    (reports / "coverage-baseline.json").write_text('{"coverage": 90}', encoding="utf-8")
    github = GitHubEnv(repository="o/r", run_id="7", sha=SHA)
    run = report.write_run_report(reports, github, FixedClock())
    assert [r.id for r in run.results] == ["lint", "test-3.12"]
    assert not run
    data = json.loads((reports / "run.json").read_text(encoding="utf-8"))
    assert data["schema"] == 1
    assert data["status"] == "failed"
    assert data["run_url"] == "https://github.com/o/r/actions/runs/7"
    again = report.read_run_report(reports / "run.json")
    assert again.results == run.results
    assert again.sha == SHA
    single = report.read_run_report(reports / "lint.json")
    assert single.results == (lint_failed(),)


def test_read_run_report_names_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(UsageError, match=r"run.json is not a run report"):
        report.read_run_report(path)


def test_annotations_escape_and_choose_levels() -> None:
    advisory = GateResult(
        gate="audit",
        status=GateStatus.FAILED,
        mode=Mode.ADVISORY,
        findings=(
            Finding(rule="PYSEC-1", message="bad\nworse 100%", severity="high"),
            Finding(rule="PYSEC-2", message="waived", waived=True),
        ),
        warnings=("took 9.0 s, over its budget of 5 s",),
    )
    crashed = GateResult(gate="test", variant="3.12", status=GateStatus.ERROR, summary="boom")
    lines = report.annotation_lines([lint_failed(), advisory, crashed])
    assert lines == [
        "::error file=a.py,line=3,title=lint%3A F401::`os` imported but unused",
        "::error file=b%2C c.py,title=lint%3A format::would be reformatted",
        "::warning title=audit%3A PYSEC-1::bad%0Aworse 100%25",
        "::warning title=audit::took 9.0 s, over its budget of 5 s",
        "::error title=test-3.12 crashed::boom",
    ]


def test_annotations_are_capped() -> None:
    many = GateResult(
        gate="lint",
        status=GateStatus.FAILED,
        findings=tuple(
            Finding(rule="E1", message=str(i), file="x.py", line=i + 1) for i in range(80)
        ),
    )
    lines = report.annotation_lines([many], limit=10)
    assert len(lines) == 11
    assert lines[-1] == "::notice::70 more finding(s) in the step summary"


def test_summary_lists_gates_and_the_failing_steps_of_each_kind() -> None:
    results = [
        lint_failed(),
        GateResult(
            gate="test",
            variant="3.12",
            status=GateStatus.FAILED,
            findings=(
                Finding(rule="test", message="tests.test_a::test_x: assert 1 == 2"),
                Finding(rule="coverage", message="coverage 80.0% is below the minimum of 85%"),
            ),
        ),
        GateResult(
            gate="secrets",
            status=GateStatus.FAILED,
            findings=(Finding(rule="AWS Access Key", message="hash 12ab", file="cfg.py", line=4),),
        ),
        GateResult(
            gate="audit",
            status=GateStatus.FAILED,
            findings=(
                Finding(
                    rule="GHSA-xxxx", message="jinja2 3.1.2: fixed in 3.1.3", severity="critical"
                ),
            ),
        ),
        GateResult(gate="package", status=GateStatus.PASSED, warnings=("slow | very",)),
    ]
    config = Config(root=Path(), path=None, gates={"lint": GateConfig(name="lint", budget_s=30)})
    text = report.render_summary(
        results, title="noxgate run: failed", config=config, run_url="https://r"
    )
    assert text.startswith("## ❌ noxgate run: failed\n")
    assert "| `lint` | ❌ failed | required | 1.5 s | 30 s | 2 finding(s) |" in text
    assert "| `a.py:3` | F401 | `os` imported but unused |" in text
    assert "| `tests.test_a::test_x` | assert 1 == 2 |" in text
    assert "| coverage | coverage 80.0% is below the minimum of 85% |" in text
    assert "| `cfg.py:4` | AWS Access Key |" in text
    assert "| GHSA-xxxx | critical | jinja2 3.1.2: fixed in 3.1.3 |" in text
    assert "- `package`: slow \\| very" in text
    assert text.rstrip().endswith("[Workflow run](https://r)")
    assert "#### package" not in text


def test_fit_truncates_at_a_line_with_a_note() -> None:
    text = "\n".join(f"line {i} " + "x" * 90 for i in range(100)) + "\n"
    cut = summary.fit(text, 2000)
    assert len(cut.encode()) <= 2000
    assert "summary truncated to stay under GitHub's 1 MiB limit" in cut
    assert cut.startswith("line 0 ")
    assert summary.fit("short\n", 2000) == "short\n"


def test_append_step_summary_respects_the_limit_and_masks(tmp_path: Path) -> None:
    redact.install(redact.Redactor.of(["hunter2-secret"]))
    path = tmp_path / "summary.md"
    assert summary.append_step_summary(path, "first hunter2-secret\n", limit=4096)
    assert summary.append_step_summary(path, "x\n" * 5000, limit=4096)
    content = path.read_text(encoding="utf-8")
    assert content.startswith("first ***\n")
    assert len(content.encode()) <= 4096
    assert "truncated" in content
    assert not summary.append_step_summary(path, "more\n", limit=4096)


def context_for(root: Path, env: dict[str, str]) -> GateContext:
    config = Config(root=root, path=None, pythons=("3.12",))
    return GateContext(
        config=config, runner=FakeRunner(), clock=FixedClock(), env=env, python="3.12"
    )


def test_record_off_github_writes_files_and_posts_nothing(tmp_path: Path) -> None:
    ctx = context_for(tmp_path, {"CI_STATE_DIR": str(tmp_path / "state")})
    report.record(lint_failed(), ctx)
    assert (tmp_path / "reports" / "lint.json").exists()
    assert (tmp_path / "reports" / "run.json").exists()
    assert (tmp_path / "state" / "durations.jsonl").exists()


def test_record_on_github_warns_when_the_api_keeps_failing(
    httpserver: HTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = GitHubAPI(server=httpserver, token=TOKEN, fail_statuses=10)
    env = {
        "CI_STATE_DIR": str(tmp_path / "state"),
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": api.api_url,
        "GITHUB_REPOSITORY": api.repo,
        "GITHUB_SHA": SHA,
        "GITHUB_TOKEN": TOKEN,
    }
    sleeps: list[float] = []
    report.record(
        lint_failed(),
        context_for(tmp_path, env),
        client=UrllibClient(),
        retry=Retry(sleep=sleeps.append),
    )
    out = capsys.readouterr().out
    assert "warning: posting status ci/lint failed after 4 attempt(s) (HTTP 502" in out
    assert "the gate's result is unchanged" in out
    assert sleeps == [0.5, 1.0, 2.0]
    assert (tmp_path / "reports" / "lint.json").exists()
