"""The deploy fault inside the real deploy path: the command fails, the rollback is real."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ci.cli.main import main
from tests.support.deploy_project import ledger_of, record_command, toml_list, write_project


def test_deploy_fault_fails_the_command_and_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "deploys.log"
    command = toml_list(record_command(log))
    cfg = write_project(
        tmp_path / "app", f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
    )
    state = Path(os.environ["CI_STATE_DIR"])
    base = ["--config", str(cfg), "deploy", "--env", "staging"]
    assert main([*base, "--version", "1.0.0"]) == 0
    monkeypatch.setenv("CI_INJECT_FAULT", "deploy")
    assert main([*base, "--version", "1.1.0"]) == 5
    captured = capsys.readouterr()
    assert "fault injection: CI_INJECT_FAULT includes 'deploy'" in captured.out
    assert "rolled back to 1.0.0" in captured.err
    assert "Traceback" not in captured.out + captured.err
    # the faulty deploy never ran the real command; the rollback did, for real
    assert log.read_text() == "staging 1.0.0\nstaging 1.0.0\n"
    assert [(e.action, e.version, e.outcome) for e in ledger_of(state).verify()] == [
        ("deploy", "1.0.0", "started"),
        ("deploy", "1.0.0", "succeeded"),
        ("deploy", "1.1.0", "started"),
        ("deploy", "1.1.0", "failed"),
        ("rollback", "1.0.0", "started"),
        ("rollback", "1.0.0", "succeeded"),
    ]
