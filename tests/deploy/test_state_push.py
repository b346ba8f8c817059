"""``state push``: a local ledger copied to the git remote once, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.cli.main import main
from tests.support.deploy_project import record_command, toml_list
from tests.support.state_remote import clone, project_remote, state_file


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    command = toml_list(record_command(tmp_path / "deploys.log"))
    envs = f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
    remote = project_remote(tmp_path, envs, state='backend = "local"\n')
    return clone(remote, tmp_path / "laptop")


def run(repo: Path, *argv: str) -> int:
    return main(["--config", str(repo / "pyproject.toml"), *argv])


def test_the_local_ledger_moves_to_the_remote_byte_for_byte_once(
    tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("1.0.0", "1.1.0"):
        assert run(repo, "deploy", "--env", "staging", "--version", version) == 0
    local = (tmp_path / "state" / "ledger.jsonl").read_text(encoding="utf-8")
    capsys.readouterr()
    assert run(repo, "state", "push") == 0
    assert "pushed 4 of 4 ledger entries" in capsys.readouterr().out
    remote = tmp_path / "remote.git"
    assert state_file(remote, "ledger.jsonl") == local  # same bytes: same hashes, same anchor
    assert '"version": "1.1.0"' in state_file(remote, "state/staging.json")
    assert run(repo, "state", "push") == 0
    assert "already has the 4 entries" in capsys.readouterr().out
    # one more local deploy: the next push adds just that
    assert run(repo, "deploy", "--env", "staging", "--version", "1.2.0") == 0
    capsys.readouterr()
    assert run(repo, "state", "push") == 0
    assert "pushed 2 of 6" in capsys.readouterr().out
    # from here on the remote is the record: another machine continues the chain
    monkeypatch.setenv("CI_STATE_BACKEND", "git")
    other = clone(remote, tmp_path / "runner")
    monkeypatch.setenv("CI_STATE_DIR", str(tmp_path / "runner-state"))
    assert run(other, "rollback", "--env", "staging") == 0
    capsys.readouterr()
    assert run(other, "ledger", "verify") == 0
    assert "8 entries verified" in capsys.readouterr().out


def test_a_remote_with_another_history_is_refused_and_left_alone(
    tmp_path: Path, repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "remote.git"
    monkeypatch.setenv("CI_STATE_BACKEND", "git")
    assert run(repo, "deploy", "--env", "staging", "--version", "0.9.0") == 0
    before = state_file(remote, "ledger.jsonl")
    monkeypatch.setenv("CI_STATE_BACKEND", "local")
    assert run(repo, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    capsys.readouterr()
    assert run(repo, "state", "push") == 3
    err = capsys.readouterr().err
    assert "already has a ledger of 2 entries that differs" in err
    assert "at entry 1" in err
    assert state_file(remote, "ledger.jsonl") == before
