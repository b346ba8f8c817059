"""The deploy commands on the git backend, in-process, with a bare repository as the remote."""

from __future__ import annotations

import json
import stat
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ci.cli.main import main
from ci.core.runner import ProcessRunner
from ci.deploy import lock
from ci.deploy.gitstore import GitStore
from ci.deploy.ledger import verify_lines
from ci.deploy.store import Change
from tests.support.deploy_project import record_command, toml_list
from tests.support.state_remote import clone, git, project_remote, state_commits, state_file


def environments(log: Path) -> str:
    command = toml_list(record_command(log))
    return (
        "[tool.ci.environments.staging]\n"
        f"deploy_command = {command}\n"
        "[tool.ci.environments.production]\n"
        'after = "staging"\n'
        f"deploy_command = {command}\n"
    )


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return project_remote(tmp_path, environments(tmp_path / "deploys.log"))


def run(repo: Path, *argv: str) -> int:
    return main(["--config", str(repo / "pyproject.toml"), *argv])


def remote_entries(remote: Path) -> list[tuple[str, str, str, str]]:
    lines = state_file(remote, "ledger.jsonl").splitlines()
    return [(e.action, e.env, e.version, e.outcome) for e in verify_lines(lines)]


def plant(store: GitStore, holder: lock.LockInfo) -> None:
    """Write ``holder``'s lock on the remote, as that holder would have."""

    def change(folder: Path) -> Change[None]:
        lock.write(folder, holder)
        return Change(result=None, changed=True, message="a lock from elsewhere")

    store.update(change)


def test_promotion_reads_the_remote_record_from_another_clone(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")
    assert run(b, "deploy", "--env", "production", "--version", "1.0.0", "--approve") == 3
    assert "never deployed successfully to staging" in capsys.readouterr().err
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    assert run(b, "deploy", "--env", "production", "--version", "1.0.0") == 0
    assert remote_entries(remote) == [
        ("deploy", "staging", "1.0.0", "started"),
        ("deploy", "staging", "1.0.0", "succeeded"),
        ("deploy", "production", "1.0.0", "started"),
        ("deploy", "production", "1.0.0", "succeeded"),
    ]
    # nothing of it on either machine: the state lives on the remote only
    state_dir = Path(str(tmp_path / "state"))
    assert not (state_dir / "ledger.jsonl").exists()
    # the state file on the ref is the projection, written in the same commit as its entry
    doc = json.loads(state_file(remote, "state/production.json"))
    assert doc["current"]["version"] == "1.0.0"
    assert all(len(c) <= 2 for c in state_commits(remote))
    assert not state_file(remote, "locks/staging.lock")  # released


def test_state_rebuild_and_ledger_verify_read_the_remote(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, d = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "d")
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    assert run(a, "deploy", "--env", "staging", "--version", "1.1.0") == 0
    capsys.readouterr()
    assert run(d, "ledger", "verify") == 0
    out = capsys.readouterr().out
    assert "ledger.jsonl in refs/noxgate/state of git remote origin: 4 entries verified" in out
    commits = len(state_commits(remote))
    assert run(d, "state", "rebuild") == 0
    assert len(state_commits(remote)) == commits  # nothing to change: nothing committed
    capsys.readouterr()
    assert run(d, "state", "--env", "staging", "--json") == 0
    assert json.loads(capsys.readouterr().out)["current"]["version"] == "1.1.0"


def test_a_tampered_remote_ledger_blocks_deploys_and_verify_names_the_ref(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = clone(remote, tmp_path / "a")
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0") == 0

    # rewrite the ref with an edited ledger, as someone with push access could
    def tamper(folder: Path) -> Change[None]:
        path = folder / "ledger.jsonl"
        path.write_text(path.read_text().replace("1.0.0", "6.6.6", 1))
        return Change(result=None, changed=True, message="edit")

    GitStore(runner=ProcessRunner(), repo=a).update(tamper)
    capsys.readouterr()
    assert run(a, "ledger", "verify") == 1
    err = capsys.readouterr().err
    assert "ledger.jsonl in refs/noxgate/state of git remote origin failed verification" in err
    assert run(a, "deploy", "--env", "staging", "--version", "1.1.0") == 3


def test_a_held_lease_is_exit_4_and_unlock_by_id_records_it_on_the_remote(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = clone(remote, tmp_path / "a")
    other = lock.new_info(env="staging", operation="deploy", version="0.9.0", created="then")
    far = replace(other, host="build-box-7", expires=time.time() + 3600)
    plant(GitStore(runner=ProcessRunner(), repo=a), far)
    # the lease on the remote is what a second machine sees
    assert json.loads(state_file(remote, "locks/staging.lock"))["host"] == "build-box-7"
    capsys.readouterr()
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0") == 4
    err = capsys.readouterr().err
    assert "build-box-7" in err
    assert "lease until" in err
    assert run(a, "unlock", "--env", "staging", "--lock-id", far.id) == 0
    assert remote_entries(remote) == [("unlock", "staging", "0.9.0", "removed")]
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0") == 0


def test_an_expired_lease_of_another_host_is_taken_over_and_recorded(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = clone(remote, tmp_path / "a")
    other = lock.new_info(env="staging", operation="deploy", version="0.9.0", created="then")
    # expired, but inside the grace in which its watchdog ends its command: not yet
    grace = replace(other, host="build-box-7", expires=time.time() - 1)
    store = GitStore(runner=ProcessRunner(), repo=a)
    plant(store, grace)
    capsys.readouterr()
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0") == 4
    assert "taken over from" in capsys.readouterr().err
    lapsed = replace(grace, expires=time.time() - 1 - lock.TAKEOVER_GRACE_S)
    plant(store, lapsed)
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    assert "recovered the lock" in capsys.readouterr().out
    entries = remote_entries(remote)
    assert entries[0] == ("lock", "staging", "0.9.0", "recovered")
    ledger = state_file(remote, "ledger.jsonl").splitlines()[0]
    assert "its lease expired at" in json.loads(ledger)["details"]["reason"]


def test_an_unreachable_remote_is_exit_6_and_nothing_is_deployed(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = clone(remote, tmp_path / "a")
    git(a, "remote", "set-url", "origin", str(tmp_path / "moved-away.git"))
    capsys.readouterr()
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0") == 6
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0  # one line
    assert "git remote origin" in err
    assert "moved-away.git" in err
    assert not (tmp_path / "deploys.log").exists()
    assert run(a, "state", "--env", "staging") == 6
    assert run(a, "ledger", "verify") == 6


def test_a_refused_push_is_exit_3_and_nothing_is_deployed(
    tmp_path: Path, remote: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'read-only token' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    a = clone(remote, tmp_path / "a")
    capsys.readouterr()
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0") == 3
    err = capsys.readouterr().err
    assert "refused the push to refs/noxgate/state" in err
    assert "contents: write" in err
    assert not (tmp_path / "deploys.log").exists()


def test_ci_state_backend_overrides_the_config_and_rejects_unknown_values(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = clone(remote, tmp_path / "a")
    monkeypatch.setenv("CI_STATE_BACKEND", "local")
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    assert not state_file(remote, "ledger.jsonl")
    assert (tmp_path / "state" / "ledger.jsonl").is_file()
    monkeypatch.setenv("CI_STATE_BACKEND", "s3")
    assert run(a, "state", "--env", "staging") == 2


def test_a_remote_lost_mid_deploy_is_exit_6_and_the_lease_is_left_to_expire(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = tmp_path / "gone.git"
    command = toml_list(["git", "remote", "set-url", "origin", str(gone)])  # the network drops
    remote = project_remote(
        tmp_path, f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
    )
    a = clone(remote, tmp_path / "a")
    capsys.readouterr()
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0") == 6
    out, err = capsys.readouterr()
    assert "warning: the lock of staging" in out
    assert "runs out by itself within 300 s" in out
    assert "git remote origin" in err
    assert str(gone) in err
    assert remote_entries(remote) == [("deploy", "staging", "1.0.0", "started")]
    assert json.loads(state_file(remote, "locks/staging.lock"))["version"] == "1.0.0"


def test_an_outcome_the_lost_remote_never_took_is_journaled_and_reconciled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone.git"
    # the command succeeds, and the network drops on its way out
    command = toml_list(["git", "remote", "set-url", "origin", str(gone)])
    remote = project_remote(
        tmp_path, f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
    )
    a = clone(remote, tmp_path / "a")
    state_a = tmp_path / "state-a"
    monkeypatch.setenv("CI_STATE_DIR", str(state_a))
    capsys.readouterr()
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0") == 6
    err = capsys.readouterr().err
    assert "deploy 1.0.0 on staging succeeded, but this could not be recorded" in err
    assert str(state_a / "journal" / "staging.jsonl") in err
    assert (state_a / "journal" / "staging.jsonl").is_file()
    assert remote_entries(remote) == [("deploy", "staging", "1.0.0", "started")]

    git(a, "remote", "set-url", "origin", str(remote))  # the network is back
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0", "--dry-run") == 0
    assert "1 outcome(s) journaled here are not recorded yet" in capsys.readouterr().out
    assert run(a, "state", "--env", "staging", "--json") == 0
    out = capsys.readouterr().out
    assert "recorded the journaled outcome deploy 1.0.0 succeeded" in out
    doc = json.loads(out[out.index("{") :])
    assert (doc["status"], doc["current"]["version"], doc["state_file"]) == ("ok", "1.0.0", "ok")
    assert remote_entries(remote) == [
        ("deploy", "staging", "1.0.0", "started"),
        ("deploy", "staging", "1.0.0", "succeeded"),
    ]
    assert not state_file(remote, "locks/staging.lock")  # its lock went with it
    assert not (state_a / "journal" / "staging.jsonl").exists()
    assert run(a, "state", "--env", "staging") == 0  # reconciled once: nothing left to add
    assert len(remote_entries(remote)) == 2


def test_a_journaled_outcome_after_a_takeover_is_a_stale_holders_not_the_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone.git"
    command = toml_list(["git", "remote", "set-url", "origin", str(gone)])
    remote = project_remote(
        tmp_path, f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
    )
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")
    monkeypatch.setenv("CI_STATE_DIR", str(tmp_path / "state-a"))
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0") == 6
    git(a, "remote", "set-url", "origin", str(remote))
    # meanwhile the lease ran out and b took over (its lock removed by id: a new epoch)
    monkeypatch.setenv("CI_STATE_DIR", str(tmp_path / "state-b"))
    held = lock.LockInfo.from_dict(json.loads(state_file(remote, "locks/staging.lock")))
    plant(GitStore(runner=ProcessRunner(), repo=b), replace(held, host="build-box-7"))
    capsys.readouterr()
    assert run(b, "state", "--env", "staging", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] != "unknown"  # its lease still runs: in progress, not unknown yet
    assert shown["in_progress"]["version"] == "1.0.0"
    lapsed = replace(held, host="build-box-7", expires=time.time() - 1 - lock.TAKEOVER_GRACE_S)
    plant(GitStore(runner=ProcessRunner(), repo=b), lapsed)
    assert run(b, "state", "--env", "staging", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "unknown"  # its lease is over, its outcome never came
    assert "outcome was never recorded" in shown["unknown"]
    assert run(b, "state", "--env", "staging") == 0
    assert "current  unknown (last recorded: none)" in capsys.readouterr().out
    assert run(b, "unlock", "--env", "staging", "--lock-id", held.id) == 0  # a new epoch

    monkeypatch.setenv("CI_STATE_DIR", str(tmp_path / "state-a"))
    assert run(a, "state", "--env", "staging") == 0
    assert "recorded as a stale holder's" in capsys.readouterr().out
    entries = remote_entries(remote)
    assert entries[-1] == ("fence", "staging", "1.0.0", "refused")
    assert ("deploy", "staging", "1.0.0", "succeeded") not in entries


def test_the_deploy_command_gets_the_leases_epoch_as_its_fence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "fences"
    code = (
        f"import os, sys; open({str(seen)!r}, 'a').write(os.environ['CI_DEPLOY_FENCE'] + chr(10))"
    )
    command = toml_list([sys.executable, "-c", code])
    remote = project_remote(
        tmp_path, f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
    )
    a = clone(remote, tmp_path / "a")
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.0") == 0
    assert run(a, "deploy", "--env", "staging", "--version", "1.0.1") == 0
    assert seen.read_text().split() == ["1", "2"]
    assert state_file(remote, "locks/staging.epoch").strip() == "2"
