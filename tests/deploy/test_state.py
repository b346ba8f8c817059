from __future__ import annotations

import os
from pathlib import Path

import pytest

from ci.cli.main import main
from ci.deploy.ledger import Entry
from ci.deploy.state import EnvState, apply, project
from tests.support.deploy_project import ledger_of, record_command, toml_list, write_project


def entry(seq: int, action: str, version: str, outcome: str, env: str = "staging") -> Entry:
    return Entry(
        seq=seq,
        time=f"t{seq}",
        actor="a",
        action=action,
        env=env,
        version=version,
        outcome=outcome,
        hash=f"h{seq}",
    )


def test_the_projection_is_a_pure_fold() -> None:
    entries = [
        entry(1, "deploy", "1.0", "started"),
        entry(2, "deploy", "1.0", "succeeded"),
        entry(3, "deploy", "1.1", "started"),
        entry(4, "deploy", "1.1", "succeeded"),
        entry(5, "deploy", "9.9", "started", env="production"),
        entry(6, "rollback", "1.0", "started"),
        entry(7, "rollback", "1.0", "succeeded"),
    ]
    states = project(entries)
    assert list(states) == ["production", "staging"]
    staging = states["staging"]
    assert staging.current_version == "1.0"
    assert staging.good == ("1.0",)
    assert staging.deployed == ("1.0", "1.1")
    assert staging.last_seq == 7
    assert states["production"].in_progress is not None
    assert project(entries) == states  # same input, same output
    folded = EnvState(env="staging")
    for item in entries:
        if item.env == "staging":
            folded = apply(folded, item)
    assert folded == staging


def test_a_lock_recovery_mid_deploy_marks_the_environment_failed() -> None:
    states = project(
        [
            entry(1, "deploy", "1.0", "started"),
            entry(2, "deploy", "1.0", "succeeded"),
            entry(3, "deploy", "2.0", "started"),
            entry(4, "lock", "2.0", "recovered"),
        ]
    )
    assert states["staging"].status == "failed"
    assert states["staging"].current_version == "1.0"
    assert states["staging"].in_progress is None


def test_an_interrupted_deploy_leaves_the_environment_failed_with_the_old_current() -> None:
    states = project(
        [
            entry(1, "deploy", "1.0", "started"),
            entry(2, "deploy", "1.0", "succeeded"),
            entry(3, "deploy", "2.0", "started"),
            entry(4, "deploy", "2.0", "interrupted"),
        ]
    )
    assert states["staging"].status == "failed"
    assert states["staging"].current_version == "1.0"
    assert states["staging"].in_progress is None
    assert states["staging"].previous_good() is None  # 1.0 is current: rollback --to 1.0


def test_state_rebuild_restores_deleted_and_corrupt_state_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = Path(os.environ["CI_STATE_DIR"])
    log = tmp_path / "log"
    command = toml_list(record_command(log, fail_on="1.3.0"))
    envs = (
        f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
        f'[tool.ci.environments.production]\nafter = "staging"\ndeploy_command = {command}\n'
    )
    cfg = str(write_project(tmp_path / "app", envs))
    steps = [
        ["deploy", "--env", "staging", "--version", "1.0.0"],
        ["deploy", "--env", "staging", "--version", "1.1.0"],
        ["deploy", "--env", "production", "--version", "1.0.0"],
        ["deploy", "--env", "staging", "--version", "1.2.0"],
        ["deploy", "--env", "staging", "--version", "1.3.0"],  # fails: automatic rollback
        ["rollback", "--env", "staging"],
        ["deploy", "--env", "production", "--version", "1.1.0"],
        ["rollback", "--env", "production", "--to", "1.0.0"],
    ]
    codes = [main(["--config", cfg, *step]) for step in steps]
    assert codes == [0, 0, 0, 0, 5, 0, 0, 0]
    files = sorted((state / "state").glob("*.json"))
    assert [f.name for f in files] == ["production.json", "staging.json"]
    original = {f.name: f.read_bytes() for f in files}

    (state / "state" / "staging.json").unlink()
    (state / "state" / "production.json").write_text('{"schema": 1, "env": "produ', "utf-8")
    (state / "state" / "qa.json").write_text("{}", "utf-8")  # nothing in the ledger for it
    capsys.readouterr()
    assert main(["--config", cfg, "deploy", "--env", "production", "--version", "1.2.0"]) == 3
    assert "run `python -m ci state rebuild`" in capsys.readouterr().err

    assert main(["--config", cfg, "state", "rebuild"]) == 0
    rebuilt = {f.name: f.read_bytes() for f in sorted((state / "state").glob("*.json"))}
    assert rebuilt == original
    assert main(["--config", cfg, "state", "rebuild"]) == 0
    again = {f.name: f.read_bytes() for f in sorted((state / "state").glob("*.json"))}
    assert again == original
    # and deploys work again from the rebuilt state
    assert main(["--config", cfg, "deploy", "--env", "staging", "--version", "1.2.0"]) == 0


def test_state_that_lags_the_ledger_is_exit_3_not_a_silent_reset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = Path(os.environ["CI_STATE_DIR"])
    command = toml_list(record_command(tmp_path / "log"))
    cfg = str(
        write_project(
            tmp_path / "app", f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
        )
    )
    assert main(["--config", cfg, "deploy", "--env", "staging", "--version", "1.0.0"]) == 0
    old = (state / "state" / "staging.json").read_bytes()
    assert main(["--config", cfg, "deploy", "--env", "staging", "--version", "1.1.0"]) == 0
    (state / "state" / "staging.json").write_bytes(old)
    capsys.readouterr()
    assert main(["--config", cfg, "deploy", "--env", "staging", "--version", "1.2.0"]) == 3
    err = capsys.readouterr().err
    assert "does not match the ledger (it is at entry 2, the ledger at 4)" in err
    assert (state / "state" / "staging.json").read_bytes() == old


def test_a_tampered_ledger_blocks_deploys_and_rebuild(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = Path(os.environ["CI_STATE_DIR"])
    command = toml_list(record_command(tmp_path / "log"))
    cfg = str(
        write_project(
            tmp_path / "app", f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
        )
    )
    assert main(["--config", cfg, "deploy", "--env", "staging", "--version", "1.0.0"]) == 0
    path = ledger_of(state).path
    path.write_text(path.read_text("utf-8").replace("1.0.0", "6.6.6", 1), "utf-8")
    capsys.readouterr()
    assert main(["--config", cfg, "deploy", "--env", "staging", "--version", "1.1.0"]) == 3
    assert "failed verification at entry 1" in capsys.readouterr().err
    assert main(["--config", cfg, "state", "rebuild"]) == 3


def test_a_lost_state_folder_is_rebuilt_identically_and_never_silently_reset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = Path(os.environ["CI_STATE_DIR"])
    command = toml_list(record_command(tmp_path / "log"))
    envs = (
        f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
        f'[tool.ci.environments.production]\nafter = "staging"\ndeploy_command = {command}\n'
    )
    cfg = str(write_project(tmp_path / "app", envs))
    for step in (
        ["deploy", "--env", "staging", "--version", "1.0.0"],
        ["deploy", "--env", "staging", "--version", "1.1.0"],
        ["deploy", "--env", "production", "--version", "1.1.0"],
        ["rollback", "--env", "staging"],
    ):
        assert main(["--config", cfg, *step]) == 0
    folder = state / "state"
    original = {f.name: f.read_bytes() for f in sorted(folder.glob("*.json"))}
    assert set(original) == {"production.json", "staging.json"}

    (folder / "staging.json").unlink()  # a lost file is not a fresh environment
    capsys.readouterr()
    assert main(["--config", cfg, "deploy", "--env", "staging", "--version", "1.1.0"]) == 3
    assert "state rebuild" in capsys.readouterr().err
    assert not (folder / "staging.json").exists()

    for path in folder.iterdir():  # every state file gone
        path.unlink()
    folder.rmdir()
    assert main(["--config", cfg, "state", "rebuild"]) == 0
    assert {f.name: f.read_bytes() for f in sorted(folder.glob("*.json"))} == original
    assert main(["--config", cfg, "state", "--env", "staging", "--json"]) == 0
    assert '"version": "1.0.0"' in capsys.readouterr().out
