from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ci.cli.main import main
from ci.deploy import lock
from ci.deploy.store import LocalStore
from tests.support.deploy_project import PY, ledger_of, record_command, toml_list, write_project


@pytest.fixture
def state() -> Path:
    return Path(os.environ["CI_STATE_DIR"])


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "deploys.log"


def two_envs(log: Path, *, fail_on: str = "", health: list[str] | None = None) -> str:
    command = toml_list(record_command(log, fail_on=fail_on))
    health_line = f"healthcheck_command = {toml_list(health)}\n" if health else ""
    return (
        "[tool.ci.environments.staging]\n"
        f"deploy_command = {command}\n{health_line}"
        "[tool.ci.environments.production]\n"
        'after = "staging"\n'
        "requires_approval = true\n"
        'required_secrets = ["GEMINI_API_KEY"]\n'
        f"deploy_command = {command}\n"
    )


def run(cfg: Path, *argv: str) -> int:
    return main(["--config", str(cfg), *argv])


def actions(state: Path) -> list[tuple[str, str, str]]:
    return [(e.action, e.version, e.outcome) for e in ledger_of(state).verify()]


def state_json(cfg: Path, env: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert run(cfg, "state", "--env", env, "--json") == 0
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


def test_deploy_records_started_and_succeeded_and_runs_the_command(
    tmp_path: Path, state: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_project(tmp_path / "app", two_envs(log))
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    assert log.read_text() == "staging 1.0.0\n"
    assert actions(state) == [("deploy", "1.0.0", "started"), ("deploy", "1.0.0", "succeeded")]
    doc = state_json(cfg, "staging", capsys)
    assert doc["current"]["version"] == "1.0.0"  # type: ignore[index]
    assert doc["current"]["actor"] == "Test Author"  # type: ignore[index]
    assert doc["lock"] is None
    assert [h["outcome"] for h in doc["history"]] == ["started", "succeeded"]  # type: ignore[attr-defined]
    assert (state / "state" / "staging.json").is_file()
    assert not (state / "locks" / "staging.lock").exists()


def test_redeploying_the_current_version_is_a_noop(
    tmp_path: Path, state: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_project(tmp_path / "app", two_envs(log))
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    before = (state / "ledger.jsonl").read_bytes()
    capsys.readouterr()
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0") == 0  # same version, PEP 440
    assert "nothing to do" in capsys.readouterr().out
    assert (state / "ledger.jsonl").read_bytes() == before
    assert log.read_text() == "staging 1.0.0\n"


def test_a_failing_deploy_command_rolls_back_to_the_checkpoint(
    tmp_path: Path, state: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_project(tmp_path / "app", two_envs(log, fail_on="2.0.0"))
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    capsys.readouterr()
    assert run(cfg, "deploy", "--env", "staging", "--version", "2.0.0") == 5
    err = capsys.readouterr().err
    assert "deploy of 2.0.0 to staging failed (deploy exited 1); rolled back to 1.0.0" in err
    assert log.read_text().splitlines() == ["staging 1.0.0", "staging 2.0.0", "staging 1.0.0"]
    assert actions(state)[2:] == [
        ("deploy", "2.0.0", "started"),
        ("deploy", "2.0.0", "failed"),
        ("rollback", "1.0.0", "started"),
        ("rollback", "1.0.0", "succeeded"),
    ]
    entries = ledger_of(state).verify()
    assert entries[2].details["from"] == "1.0.0"  # the checkpoint
    assert entries[4].details["automatic"] is True
    doc = state_json(cfg, "staging", capsys)
    assert doc["current"]["version"] == "1.0.0"  # type: ignore[index]
    assert doc["status"] == "ok"


def test_a_failing_healthcheck_rolls_back(
    tmp_path: Path, state: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    health = [PY, "-c", "import sys; sys.exit(3 if sys.argv[1] == '2.0.0' else 0)", "{version}"]
    cfg = write_project(tmp_path / "app", two_envs(log, health=health))
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    assert run(cfg, "deploy", "--env", "staging", "--version", "2.0.0") == 5
    assert "healthcheck exited 3); rolled back to 1.0.0" in capsys.readouterr().err
    assert actions(state)[-3:] == [
        ("deploy", "2.0.0", "failed"),
        ("rollback", "1.0.0", "started"),
        ("rollback", "1.0.0", "succeeded"),
    ]
    assert state_json(cfg, "staging", capsys)["current"]["version"] == "1.0.0"  # type: ignore[index]


def test_a_failing_first_deploy_says_there_is_nothing_to_roll_back_to(
    tmp_path: Path, state: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_project(tmp_path / "app", two_envs(log, fail_on="1.0.0"))
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 5
    assert "nothing to roll back to" in capsys.readouterr().err
    doc = state_json(cfg, "staging", capsys)
    assert doc["current"] is None
    assert doc["status"] == "failed"


def test_a_deploy_that_overruns_its_timeout_fails_and_rolls_back(
    tmp_path: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = [
        PY,
        "-c",
        "import sys, time; time.sleep(30 if sys.argv[1] == '2.0.0' else 0)",
        "{version}",
    ]
    envs = f"[tool.ci.environments.staging]\ndeploy_command = {toml_list(slow)}\ntimeout_s = 1\n"
    cfg = write_project(tmp_path / "app", envs)
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    assert run(cfg, "deploy", "--env", "staging", "--version", "2.0.0") == 5
    err = capsys.readouterr().err
    assert "did not finish within 1 s" in err
    assert "rolled back to 1.0.0" in err


def test_production_without_its_secret_is_exit_3_naming_it(
    tmp_path: Path, state: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_project(tmp_path / "app", two_envs(log))
    assert run(cfg, "deploy", "--env", "production", "--version", "1.0.0", "--approve") == 3
    err = capsys.readouterr().err
    assert "GEMINI_API_KEY is not set: add it as a repository secret" in err
    assert "locally, export it" in err
    assert not (state / "ledger.jsonl").exists()


def test_without_approval_in_ci_is_exit_3(
    tmp_path: Path, log: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GEMINI_API_KEY", "k-123456789")
    cfg = write_project(tmp_path / "app", two_envs(log))
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    assert run(cfg, "deploy", "--env", "production", "--version", "1.0.0") == 3
    assert "production requires approval: rerun with --approve" in capsys.readouterr().err


def test_a_version_never_deployed_to_staging_is_exit_3(
    tmp_path: Path,
    state: Path,
    log: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "k-123456789")
    cfg = write_project(tmp_path / "app", two_envs(log, fail_on="1.1.0"))
    args = ("deploy", "--env", "production", "--approve", "--reason", "release day")
    assert run(cfg, *args, "--version", "1.0.0") == 3
    assert "1.0.0 was never deployed successfully to staging" in capsys.readouterr().err
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.1.0") == 5  # failed: not enough
    assert run(cfg, *args, "--version", "1.1.0") == 3
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    assert run(cfg, *args, "--version", "1.0.0") == 0
    started = next(e for e in ledger_of(state).verify() if e.env == "production")
    assert started.details["approval"] == {
        "by": "Test Author",
        "reason": "release day",
        "how": "flag",
    }


def test_allowed_actors_and_refs(
    tmp_path: Path, log: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    command = toml_list(record_command(log))
    envs = (
        "[tool.ci.environments.staging]\n"
        f"deploy_command = {command}\n"
        'allowed_actors = ["alice", "release-*"]\n'
        'allowed_refs = ["refs/tags/v*"]\n'
    )
    cfg = write_project(tmp_path / "app", envs)
    monkeypatch.setenv("GITHUB_ACTOR", "mallory")
    monkeypatch.setenv("GITHUB_REF", "refs/tags/v1.0.0")
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 3
    assert "'mallory' may not deploy to staging" in capsys.readouterr().err
    monkeypatch.setenv("GITHUB_ACTOR", "release-bot")
    monkeypatch.setenv("GITHUB_REF", "refs/heads/main")
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 3
    assert "only takes deploys from refs/tags/v* (this is refs/heads/main)" in (
        capsys.readouterr().err
    )
    monkeypatch.setenv("GITHUB_REF", "refs/tags/v1.0.0")
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 0


def test_allowed_refs_from_the_local_git_tag(
    make_repo, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = toml_list(record_command(log))
    envs = (
        f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
        'allowed_refs = ["refs/tags/v*"]\n'
    )
    repo = make_repo({"README.md": "x\n"})
    cfg = write_project(repo, envs)
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 3
    assert "this is refs/heads/main" in capsys.readouterr().err
    from tests.conftest import git

    git(repo, "tag", "v1.0.0")
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 0


def test_rollback_walks_down_the_good_versions_and_to_is_idempotent(
    tmp_path: Path, state: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_project(tmp_path / "app", two_envs(log))
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        assert run(cfg, "deploy", "--env", "staging", "--version", version) == 0
    assert run(cfg, "rollback", "--env", "staging") == 0
    assert state_json(cfg, "staging", capsys)["current"]["version"] == "1.1.0"  # type: ignore[index]
    assert run(cfg, "rollback", "--env", "staging") == 0
    assert state_json(cfg, "staging", capsys)["current"]["version"] == "1.0.0"  # type: ignore[index]
    assert run(cfg, "rollback", "--env", "staging") == 3
    assert "nothing to roll back to" in capsys.readouterr().err
    assert run(cfg, "rollback", "--env", "staging", "--to", "1.2.0") == 0
    count = len(actions(state))
    assert run(cfg, "rollback", "--env", "staging", "--to", "1.2.0") == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len(actions(state)) == count
    assert run(cfg, "rollback", "--env", "staging", "--to", "9.9.9") == 3
    assert "never deployed successfully" in capsys.readouterr().err
    assert log.read_text().splitlines()[-3:] == ["staging 1.1.0", "staging 1.0.0", "staging 1.2.0"]


def test_a_failing_rollback_is_exit_5_and_recorded(
    tmp_path: Path, state: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_project(tmp_path / "app", two_envs(log))
    for version in ("1.0.0", "1.1.0"):
        assert run(cfg, "deploy", "--env", "staging", "--version", version) == 0
    write_project(tmp_path / "app", two_envs(log, fail_on="1.0.0"))
    assert run(cfg, "rollback", "--env", "staging") == 5
    assert "rollback of staging to 1.0.0 failed" in capsys.readouterr().err
    assert actions(state)[-1] == ("rollback", "1.0.0", "failed")
    assert state_json(cfg, "staging", capsys)["status"] == "failed"


def test_dry_run_changes_nothing(
    tmp_path: Path, state: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_project(tmp_path / "app", two_envs(log))
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "deploy plan (dry run" in out
    assert "checkpoint   none" in out
    assert not log.exists()
    assert not (state / "ledger.jsonl").exists()
    assert not (state / "locks" / "staging.lock").exists()


def test_secrets_never_reach_output_ledger_or_state(
    tmp_path: Path,
    state: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "gk-very-secret-value")
    leak = [PY, "-c", "import os, sys; print(os.environ['GEMINI_API_KEY']); sys.exit(1)"]
    envs = (
        "[tool.ci.environments.staging]\n"
        'required_secrets = ["GEMINI_API_KEY"]\n'
        f"deploy_command = {toml_list(leak)}\n"
    )
    cfg = write_project(tmp_path / "app", envs)
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 5
    captured = capsys.readouterr()
    assert "gk-very-secret-value" not in captured.out + captured.err
    assert "***" in captured.out
    for path in state.rglob("*"):
        if path.is_file():
            assert b"gk-very-secret-value" not in path.read_bytes(), path


def test_bad_version_and_unknown_environment_are_usage_errors(
    tmp_path: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_project(tmp_path / "app", two_envs(log))
    assert run(cfg, "deploy", "--env", "staging", "--version", "not-a-version") == 2
    assert "PEP 440" in capsys.readouterr().err
    assert run(cfg, "deploy", "--env", "qa", "--version", "1.0.0") == 2
    assert "configured: production, staging" in capsys.readouterr().err


def test_a_held_lock_is_exit_4_and_unlock_needs_its_id(
    tmp_path: Path, state: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_project(tmp_path / "app", two_envs(log))
    remote = lock.LockInfo(
        id="3f0c-remote",
        env="staging",
        user="ci",
        host="other-host",
        pid=1,
        start_time=1,
        operation="deploy",
        version="0.9.0",
        created="2026-01-01T00:00:00Z",
    )
    path = lock.lock_path(state, "staging")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(remote.to_dict()), encoding="utf-8")
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 4
    assert "ci@other-host (pid 1) is running deploy 0.9.0" in capsys.readouterr().err
    waits = (state / "logs" / "locks.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(w)["outcome"] for w in waits] == ["refused"]  # the run history's contention
    assert state_json(cfg, "staging", capsys)["lock"]["id"] == "3f0c-remote"  # type: ignore[index]
    assert run(cfg, "unlock", "--env", "staging", "--lock-id", "wrong") == 2
    assert run(cfg, "unlock", "--env", "staging", "--lock-id", "3f0c-remote") == 0
    assert actions(state) == [("unlock", "0.9.0", "removed")]
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 0


def test_interactive_approval_is_asked_and_recorded(
    tmp_path: Path, state: Path, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ci.core.clock import SystemClock
    from ci.core.config import load
    from ci.core.errors import ExitCode, PreflightError
    from ci.core.runner import ProcessRunner
    from ci.deploy.deployer import Deployer, Result

    monkeypatch.setenv("GEMINI_API_KEY", "k-123456789")
    cfg = write_project(tmp_path / "app", two_envs(log))
    assert run(cfg, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    answers = iter(["y", "hotfix for the login page"])
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return next(answers)

    deployer = Deployer(
        config=load(cfg),
        runner=ProcessRunner(),
        clock=SystemClock(),
        env=dict(os.environ),
        ask=ask,
        out=lambda _line: None,
    )
    result = deployer.deploy("production", "1.0.0")
    assert result == Result(action="deploy", env="production", version="1.0.0", changed=True)
    assert result.exit_code is ExitCode.OK
    assert asked[0] == "approve deploying 1.0.0 to production? [y/N] "
    started = next(e for e in ledger_of(state).verify() if e.env == "production")
    assert started.details["approval"]["reason"] == "hotfix for the login page"
    assert started.details["approval"]["how"] == "prompt"

    refuse = Deployer(
        config=load(cfg),
        runner=ProcessRunner(),
        clock=SystemClock(),
        env=dict(os.environ),
        ask=lambda _prompt: "n",
        out=lambda _line: None,
    )
    with pytest.raises(PreflightError, match="was not approved"):
        refuse.deploy("production", "1.1.0")


def test_wait_gets_the_lock_once_the_holder_releases_it(
    tmp_path: Path, state: Path, log: Path
) -> None:
    from ci.core.clock import SystemClock
    from ci.core.config import load
    from ci.core.runner import ProcessRunner
    from ci.deploy.deployer import Deployer

    cfg = write_project(tmp_path / "app", two_envs(log))
    info = lock.new_info(env="staging", operation="deploy", version="0.0.1", created="now")
    held = lock.acquire(LocalStore(state), info)
    said: list[str] = []

    def out(line: str) -> None:
        said.append(line)
        if "waiting up to" in line:  # the holder finishes once the deploy waits for it
            lock.release(LocalStore(state), held)

    deployer = Deployer(
        config=load(cfg),
        runner=ProcessRunner(),
        clock=SystemClock(),
        env=dict(os.environ),
        ask=lambda _prompt: "n",
        out=out,
    )
    deployer.deploy("staging", "1.0.0", wait_s=60)
    assert said[0].startswith("environment staging is locked: ")
    assert f"lock id {held.lock.id}; waiting up to 60 s for it" in said[0]
    assert log.read_text() == "staging 1.0.0\n"
    waits = (state / "logs" / "locks.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(w)["outcome"] for w in waits] == ["waited"]
