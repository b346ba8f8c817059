"""The git remote as a state store: real git, a bare repository on disk as the remote."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from ci.core.errors import ConfigError, ExitCode
from ci.core.runner import ProcessRunner
from ci.deploy.backend import NewEntry, StateBackend
from ci.deploy.gitstore import REF, GitStore, PushRefusedError, RemoteUnreachableError
from ci.deploy.state import empty
from ci.deploy.store import Change
from tests.support.http_faults import closed_url
from tests.support.state_remote import clone, git, project_remote, state_commits, state_file


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return project_remote(tmp_path, "")


def store(repo: Path, **kw: object) -> GitStore:
    return GitStore(runner=ProcessRunner(), repo=repo, sleep=lambda _s: None, **kw)  # type: ignore[arg-type]


def bump(folder: Path) -> Change[int]:
    """Add one to the counter file."""
    path = folder / "counter"
    value = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(value))
    return Change(result=value, changed=True, message=f"counter {value}")


def test_an_update_is_a_commit_on_the_ref_and_a_view_reads_it(tmp_path: Path, remote: Path) -> None:
    a = store(clone(remote, tmp_path / "a"))
    with a.view() as folder:
        assert list(folder.iterdir()) == []  # no ref yet: no files
    assert a.update(bump) == 1
    assert a.update(bump) == 2
    assert state_file(remote, "counter") == "2"
    commits = state_commits(remote)
    assert [len(c) for c in commits] == [1, 2]  # a root, then one parent: a linear chain
    with store(clone(remote, tmp_path / "b")).view() as folder:
        assert (folder / "counter").read_text() == "2"
    # ordinary clones and fetches never bring the ref along
    plain = clone(remote, tmp_path / "plain")
    git(plain, "fetch", "-q", "origin")
    assert "noxgate" not in git(plain, "for-each-ref")


def test_a_change_that_writes_nothing_pushes_nothing(tmp_path: Path, remote: Path) -> None:
    a = store(clone(remote, tmp_path / "a"))
    a.update(bump)
    before = state_commits(remote)
    assert a.update(lambda folder: Change(result="x", changed=False)) == "x"

    def same(folder: Path) -> Change[None]:
        (folder / "counter").write_text((folder / "counter").read_text())
        return Change(result=None, changed=True)

    a.update(same)
    assert state_commits(remote) == before


def test_a_lost_race_is_redone_on_the_winners_state(tmp_path: Path, remote: Path) -> None:
    a = store(clone(remote, tmp_path / "a"))
    b = store(clone(remote, tmp_path / "b"))
    a.update(bump)
    calls: list[int] = []

    def bump_after_b_wins(folder: Path) -> Change[int]:
        calls.append(1)
        if len(calls) == 1:
            b.update(bump)  # another writer lands between our read and our push
        return bump(folder)

    assert a.update(bump_after_b_wins) == 3  # redone on top of b's 2, not a lost update
    assert len(calls) == 2
    assert state_file(remote, "counter") == "3"
    assert all(len(c) <= 2 for c in state_commits(remote))


def test_an_unreachable_remote_is_exit_6_naming_it_never_a_fallback(tmp_path: Path) -> None:
    remote = project_remote(tmp_path, "")
    a = store(clone(remote, tmp_path / "a"))
    git(tmp_path / "a", "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    with pytest.raises(RemoteUnreachableError) as caught:
        a.update(bump)
    assert caught.value.exit_code == ExitCode.TOOL_CRASHED
    text = str(caught.value)
    assert text.startswith(f"git remote origin ({tmp_path / 'gone.git'}) could not be reached")
    # git's own reason, not its closing boilerplate ("... and the repository exists.")
    assert f"'{tmp_path / 'gone.git'}' does not appear to be a git repository;" in text
    assert "the repository exists" not in text
    assert "Could not read from remote" not in text
    assert 'backend = "local"' in text
    assert not (tmp_path / "a" / ".ci-state").exists()


def test_a_refused_connection_is_named_as_the_reason_the_remote_could_not_be_reached(
    tmp_path: Path,
) -> None:
    remote = project_remote(tmp_path, "")
    a = store(clone(remote, tmp_path / "a"))
    url = closed_url("/state.git")
    git(tmp_path / "a", "remote", "set-url", "origin", url)
    with pytest.raises(RemoteUnreachableError) as caught:
        a.remote_head()
    text = str(caught.value)
    assert text.startswith(f"git remote origin ({url}) could not be reached to read {REF}: ")
    assert "unable to access" in text
    assert "the repository exists" not in text


def test_a_refused_push_is_exit_3_naming_the_remote_and_the_fix(
    tmp_path: Path, remote: Path
) -> None:
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'no pushes here' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    a = store(clone(remote, tmp_path / "a"))
    with pytest.raises(PushRefusedError) as caught:
        a.update(bump)
    assert caught.value.exit_code == ExitCode.PREFLIGHT
    assert f"refused the push to {REF}" in str(caught.value)
    assert "contents: write" in str(caught.value)


def test_a_missing_remote_or_repository_is_a_config_error(tmp_path: Path, remote: Path) -> None:
    a = store(clone(remote, tmp_path / "a"), remote="upstream")
    with pytest.raises(ConfigError, match=r"remote = 'upstream' is not a remote"):
        a.update(bump)
    loose = tmp_path / "loose"
    loose.mkdir()
    with pytest.raises(ConfigError, match="needs a git repository"):
        store(loose).update(bump)


def test_a_token_reaches_git_as_a_header_for_the_github_remote_only(tmp_path: Path) -> None:
    remote = project_remote(tmp_path, "")
    repo = clone(remote, tmp_path / "a")
    env = {"GITHUB_TOKEN": "t0ken-value", "GITHUB_SERVER_URL": "https://github.example"}
    assert store(repo, env=env)._auth() == {}  # a local path: no header
    git(repo, "remote", "set-url", "origin", "https://github.example/o/r.git")
    header = store(repo, env=env)._auth()
    assert header["GIT_CONFIG_KEY_0"] == "http.https://github.example/.extraheader"
    basic = base64.b64encode(b"x-access-token:t0ken-value").decode()
    assert header["GIT_CONFIG_VALUE_0"] == f"AUTHORIZATION: basic {basic}"
    git(repo, "remote", "set-url", "origin", "https://user:t0ken-value@github.example/o/r.git")
    assert "t0ken-value" not in store(repo, env=env).label


def test_the_backend_records_entries_and_state_files_in_one_commit(
    tmp_path: Path, remote: Path
) -> None:
    backend = StateBackend(store(clone(remote, tmp_path / "a")))
    new = NewEntry(
        time="t", actor="a", action="deploy", env="staging", version="1.0", outcome="started"
    )
    entry, after = backend.record(empty("staging"), new)
    assert entry.seq == 1
    assert after.in_progress is not None
    assert state_file(remote, "ledger.jsonl").strip() == entry.line()
    assert '"in_progress": {' in state_file(remote, "state/staging.json")
    assert len(state_commits(remote)) == 1
    other = StateBackend(store(clone(remote, tmp_path / "b")))
    assert other.entries() == [entry]
    assert other.load("staging")[1] == after


def test_logs_are_bounded_and_named(tmp_path: Path, remote: Path) -> None:
    backend = StateBackend(store(clone(remote, tmp_path / "a")))
    for n in range(5):
        backend.append_log("runs", {"n": n}, keep=3)
    assert [r["n"] for r in backend.read_log("runs")] == [2, 3, 4]
    assert backend.read_log("never-written") == []
    with pytest.raises(Exception, match="may only hold"):
        backend.append_log("../escape", {}, keep=1)


def test_a_ref_left_with_no_files_reads_as_empty(tmp_path: Path, remote: Path) -> None:
    a = store(clone(remote, tmp_path / "a"))
    a.update(bump)

    def remove(folder: Path) -> Change[None]:
        (folder / "counter").unlink()
        return Change(result=None, changed=True, message="remove")

    a.update(remove)
    assert len(state_commits(remote)) == 2
    with store(clone(remote, tmp_path / "b")).view() as folder:
        assert list(folder.iterdir()) == []
    assert a.update(bump) == 1
