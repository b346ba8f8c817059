"""Declared gates: the command's exit status is the verdict, a missing program is exit 6."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ci.cli.app import App
from ci.cli.main import main
from ci.core.errors import ExitCode
from ci.core.runner import ProcessRunner
from ci.gates.command import tail_of
from ci.testing.fakes import FixedClock

PY = sys.executable
FAILING = (
    "import sys; [print('line', i) for i in range(30)]; print('docs: 2 warnings'); sys.exit(3)"
)


def project(tmp_path: Path, command: list[str], extra: str = "") -> Path:
    body = json.dumps(command)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "1.0"\n\n'
        f"[tool.ci.gates.docs]\ncommand = {body}\n{extra}",
        encoding="utf-8",
    )
    return tmp_path


def gate(root: Path, *args: str) -> int:
    app = App(cwd=root, runner=ProcessRunner(), clock=FixedClock(), env={})
    return main(["gate", "docs", *args], app)


def test_passing_command_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = project(tmp_path, [PY, "-c", "import sys; print('built', sys.argv[1:])"])
    assert gate(root, "--", "-W") == ExitCode.OK
    out = capsys.readouterr().out
    assert "built ['-W']" in out  # the session's arguments reach the command
    assert "docs: passed (required)" in out
    record = json.loads((root / "reports" / "docs.json").read_text())
    assert record["status"] == "passed"


def test_failing_command_is_exit_1_with_the_tail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, [PY, "-c", FAILING])
    assert gate(root) == ExitCode.GATE_FAILED
    out = capsys.readouterr().out
    assert "exited 3: docs: 2 warnings" in out
    record = json.loads((root / "reports" / "docs.json").read_text())
    assert record["status"] == "failed"
    [finding] = record["findings"]
    assert finding["rule"] == "exit 3"
    lines = finding["message"].splitlines()
    assert lines[-1] == "docs: 2 warnings"
    assert len(lines) == 20 and lines[0] == "line 11"


def test_advisory_failure_reports_but_exits_0(tmp_path: Path) -> None:
    root = project(tmp_path, [PY, "-c", FAILING], 'mode = "advisory"\n')
    assert gate(root) == ExitCode.OK
    record = json.loads((root / "reports" / "docs.json").read_text())
    assert record["status"] == "failed" and record["mode"] == "advisory"


def test_missing_program_is_exit_6_never_a_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, ["no-such-docs-builder-xyz", "html"])
    assert gate(root) == ExitCode.TOOL_CRASHED
    assert "no-such-docs-builder-xyz was not found" in capsys.readouterr().out
    record = json.loads((root / "reports" / "docs.json").read_text())
    assert record["status"] == "error"


def test_tail_keeps_the_last_non_blank_lines() -> None:
    assert tail_of("a\n\nb\n  \nc\n", 2) == "b\nc"
    assert tail_of("") == ""
