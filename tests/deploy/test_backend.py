"""The state backend's fenced writes: a stale lease holder never overwrites the state."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.deploy import lock
from ci.deploy import state as deploystate
from ci.deploy.backend import NewEntry, StateBackend
from ci.deploy.store import LocalStore


def entry(action: str, version: str, outcome: str, **details: object) -> NewEntry:
    return NewEntry(
        time="2026-01-01T00:00:00Z",
        actor="tester",
        action=action,
        env="staging",
        version=version,
        outcome=outcome,
        details=details or None,
    )


def take(backend: StateBackend, version: str) -> lock.Acquired:
    info = lock.new_info(env="staging", operation="deploy", version=version, created="now")
    return backend.acquire(info, wait_s=0)


def test_a_write_from_an_older_epoch_is_refused_and_the_stale_holder_recorded(
    tmp_path: Path,
) -> None:
    backend = StateBackend(LocalStore(tmp_path))
    old = take(backend, "1.0.0")
    fence_a = old.lock.fence
    assert fence_a is not None
    _, state_a = backend.load("staging")
    state_a = backend.record(state_a, entry("deploy", "1.0.0", "started"), fence=fence_a)[1]
    # the lock moves on (its lease ran out and another holder took it over)
    lock.release(backend.store, old)
    new = take(backend, "1.0.1")
    fence_b = new.lock.fence
    assert fence_b is not None
    assert fence_b.epoch > fence_a.epoch
    _, state_b = backend.load("staging")
    state_b = backend.record(state_b, entry("deploy", "1.0.1", "started"), fence=fence_b)[1]

    # the paused holder resumes and writes its outcome from its stale view of the state
    with pytest.raises(lock.FencedError, match="refused") as refused:
        backend.record(state_a, entry("deploy", "1.0.0", "failed", reason="x"), fence=fence_a)
    assert refused.value.exit_code == 5
    entries = backend.entries()
    assert [(e.action, e.version, e.outcome) for e in entries] == [
        ("deploy", "1.0.0", "started"),
        ("deploy", "1.0.1", "started"),
        ("fence", "1.0.0", "refused"),
    ]
    stale = entries[-1].details
    assert stale["holder"] == {"lock": fence_a.lock_id, "who": fence_a.who, "epoch": fence_a.epoch}
    assert stale["epoch"] == fence_b.epoch
    assert stale["refused"]["outcome"] == "failed"

    # the state file still matches the ledger, and the current holder goes on unhindered
    assert backend.state_file_problem(deploystate.project(entries)["staging"]) is None
    backend.record(state_b, entry("deploy", "1.0.1", "succeeded"), fence=fence_b)
    _, final = backend.load("staging")  # exit 3 here if the state file had been left behind
    assert final.current_version == "1.0.1"
    assert final.status == deploystate.STATUS_OK


def test_the_current_epoch_writes_and_no_fence_is_not_checked(tmp_path: Path) -> None:
    backend = StateBackend(LocalStore(tmp_path))
    held = take(backend, "1.0.0")
    _, state = backend.load("staging")
    state = backend.record(state, entry("deploy", "1.0.0", "started"), fence=held.lock.fence)[1]
    state = backend.record(state, entry("deploy", "1.0.0", "succeeded"), fence=held.lock.fence)[1]
    assert state.current_version == "1.0.0"
    backend.record(state, entry("unlock", "1.0.0", "removed"))  # e.g. unlock: no lock held
    assert [e.outcome for e in backend.entries()] == ["started", "succeeded", "removed"]
