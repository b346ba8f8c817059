from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ci.core.errors import LockHeldError, UsageError
from ci.deploy import lock
from ci.deploy.store import LocalStore


def info(env: str = "staging", **changes: object) -> lock.LockInfo:
    base = lock.new_info(
        env=env, operation="deploy", version="1.0.0", created="2026-01-01T00:00:00Z"
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_process_start_time_reads_proc_stat() -> None:
    mine = lock.process_start_time(os.getpid())
    assert isinstance(mine, int)
    assert mine > 0
    assert lock.process_start_time(dead_pid()) is None


def test_acquire_writes_the_holder_and_release_removes_it(tmp_path: Path) -> None:
    store, path = LocalStore(tmp_path), tmp_path / "locks" / "staging.lock"
    held = lock.acquire(store, info())
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["id"] == held.lock.id
    assert data["pid"] == os.getpid()
    assert data["start_time"] == lock.process_start_time(os.getpid())
    assert data["who"] == f"{held.lock.user}@{held.lock.host}"
    assert {"operation", "version", "created", "schema"} <= set(data)
    lock.release(store, held)
    assert not path.exists()


def test_a_live_holder_blocks_at_once_naming_it(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    first = lock.acquire(store, info())
    slept: list[float] = []
    told: list[lock.LockInfo] = []
    with pytest.raises(LockHeldError) as caught:
        lock.acquire(store, info(), sleep=slept.append, on_wait=told.append)
    assert (slept, told) == ([], [])  # no wait at all, not even a short one
    assert first.lock.id in str(caught.value)
    assert "unlock --env staging" in str(caught.value)


def test_wait_retries_with_backoff_until_released(tmp_path: Path) -> None:
    store, path = LocalStore(tmp_path), tmp_path / "locks" / "staging.lock"
    first = lock.acquire(store, info())
    told: list[str] = []

    def on_wait(holder: lock.LockInfo) -> None:  # the holder finishes once the wait begins
        told.append(holder.id)
        lock.release(store, first)

    second = lock.acquire(store, info(), wait_s=60, on_wait=on_wait)
    assert told == [first.lock.id]
    assert json.loads(path.read_text(encoding="utf-8"))["id"] == second.lock.id
    assert (first.tries, second.tries) == (1, 2)  # the run history counts the wait


def test_wait_is_bounded(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    lock.acquire(store, info())
    sleeps: list[float] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    told: list[lock.LockInfo] = []
    with pytest.raises(LockHeldError, match="after waiting 3 s"):
        lock.acquire(
            store, info(), wait_s=3, sleep=sleep, monotonic=lambda: clock[0], on_wait=told.append
        )
    assert len(told) == 1  # said once, however many tries
    assert sum(sleeps) == pytest.approx(3, abs=1e-6)
    assert max(sleeps) <= lock.MAX_BACKOFF_S * 1.5
    assert sleeps[1] > sleeps[0] * 0.6  # grows (with jitter), not a busy loop


def test_a_dead_holder_on_this_host_is_recovered(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ghost = info(pid=dead_pid(), start_time=12345)
    lock.write(tmp_path, ghost)
    got = lock.acquire(store, info())
    assert [d.holder.id for d in got.recovered] == [ghost.id]
    assert got.recovered[0].ended_group is None


def test_a_reused_pid_is_recognised_by_its_start_time(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    mine = lock.process_start_time(os.getpid())
    assert mine is not None
    impostor = info(start_time=mine + 1)  # our pid, but a different process start
    lock.write(tmp_path, impostor)
    got = lock.acquire(store, info())
    assert [d.holder.id for d in got.recovered] == [impostor.id]


def test_a_lock_from_another_host_is_never_broken(tmp_path: Path) -> None:
    store, path = LocalStore(tmp_path), tmp_path / "locks" / "staging.lock"
    remote = info(host="build-box-7", pid=dead_pid())
    lock.write(tmp_path, remote)
    with pytest.raises(LockHeldError, match="build-box-7"):
        lock.acquire(store, info())
    assert json.loads(path.read_text(encoding="utf-8"))["id"] == remote.id


def test_unlock_needs_the_exact_id(tmp_path: Path) -> None:
    store, path = LocalStore(tmp_path), tmp_path / "locks" / "staging.lock"
    stuck = info(host="build-box-7")
    lock.write(tmp_path, stuck)
    with pytest.raises(UsageError, match=stuck.id):
        lock.unlock(store, "staging", "not-the-id")
    assert path.exists()
    assert lock.unlock(store, "staging", stuck.id).holder.id == stuck.id
    assert not path.exists()
    with pytest.raises(UsageError, match="nothing to unlock"):
        lock.unlock(store, "staging", stuck.id)


def test_unlock_refuses_a_holder_running_on_this_host(tmp_path: Path) -> None:
    store, path = LocalStore(tmp_path), tmp_path / "locks" / "staging.lock"
    held = lock.acquire(store, info())
    with pytest.raises(UsageError, match=f"kill {os.getpid()}"):
        lock.unlock(store, "staging", held.lock.id)
    assert json.loads(path.read_text(encoding="utf-8"))["id"] == held.lock.id


def test_release_leaves_someone_elses_lock_alone(tmp_path: Path) -> None:
    store, path = LocalStore(tmp_path), tmp_path / "locks" / "staging.lock"
    held = lock.acquire(store, info())
    path.unlink()  # removed by hand meanwhile
    other = lock.acquire(store, info())
    lock.release(store, held)
    assert json.loads(path.read_text(encoding="utf-8"))["id"] == other.lock.id


def test_an_unreadable_lock_is_reported_not_broken(tmp_path: Path) -> None:
    store, path = LocalStore(tmp_path), tmp_path / "locks" / "staging.lock"
    path.parent.mkdir()
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(LockHeldError, match="unreadable"):
        lock.acquire(store, info())
    assert path.read_text(encoding="utf-8") == "{not json"


@pytest.fixture
def orphan() -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own group, as a dead holder's deploy command would be."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], process_group=0)
    yield proc
    proc.kill()
    proc.wait()


def test_a_dead_holder_whose_command_still_runs_keeps_the_lock(
    tmp_path: Path, orphan: subprocess.Popen[bytes]
) -> None:
    store, path = LocalStore(tmp_path), tmp_path / "locks" / "staging.lock"
    ghost = info(pid=dead_pid(), start_time=12345, pgid=orphan.pid, deadline=time.time() + 600)
    lock.write(tmp_path, ghost)
    with pytest.raises(LockHeldError, match=f"still runs \\(process group {orphan.pid}"):
        lock.acquire(store, info())
    assert orphan.poll() is None
    assert json.loads(path.read_text(encoding="utf-8"))["id"] == ghost.id


def test_an_overdue_orphan_is_ended_by_the_recovery(
    tmp_path: Path, orphan: subprocess.Popen[bytes]
) -> None:
    store = LocalStore(tmp_path)
    ghost = info(pid=dead_pid(), start_time=12345, pgid=orphan.pid, deadline=time.time() - 1)
    lock.write(tmp_path, ghost)
    threading.Thread(target=orphan.wait, daemon=True).start()  # reap it like its parent would
    got = lock.acquire(store, info())
    assert [(r.holder.id, r.ended_group) for r in got.recovered] == [(ghost.id, orphan.pid)]
    assert orphan.wait(timeout=5) < 0


def test_unlock_ends_a_dead_holders_command(
    tmp_path: Path, orphan: subprocess.Popen[bytes]
) -> None:
    store, path = LocalStore(tmp_path), tmp_path / "locks" / "staging.lock"
    ghost = info(pid=dead_pid(), start_time=12345, pgid=orphan.pid, deadline=time.time() + 600)
    lock.write(tmp_path, ghost)
    threading.Thread(target=orphan.wait, daemon=True).start()
    removed = lock.unlock(store, "staging", ghost.id)
    assert removed.ended_group == orphan.pid
    assert orphan.wait(timeout=5) < 0
    assert not path.exists()


def test_set_group_refuses_a_lock_that_is_no_longer_ours(tmp_path: Path) -> None:
    store, path = LocalStore(tmp_path), tmp_path / "locks" / "staging.lock"
    held = lock.acquire(store, info())
    lock.set_group(store, held, 4242, time.time() + 60)
    assert json.loads(path.read_text(encoding="utf-8"))["pgid"] == 4242
    path.unlink()
    with pytest.raises(lock.LockLostError, match="no longer ours"):
        lock.set_group(store, held, 4243, time.time() + 60)


def test_each_take_is_a_new_epoch_and_unlock_counts_one_too(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    first = lock.acquire(store, info())
    assert first.lock.epoch == 1
    assert json.loads(lock.lock_path(tmp_path, "staging").read_text())["epoch"] == 1
    lock.release(store, first)
    second = lock.acquire(store, info())
    assert second.lock.epoch == 2
    assert lock.acquire(store, info(env="production")).lock.epoch == 1  # per environment
    lock.write(tmp_path, replace(second.lock, pid=dead_pid()))  # its holder died
    lock.unlock(store, "staging", second.lock.id)
    assert lock.read_epoch(tmp_path, "staging") == 3  # the unlocked holder is fenced off
    assert lock.acquire(store, info()).lock.epoch == 4


def test_an_expired_lease_is_taken_over_only_after_the_grace() -> None:
    lease = info(host="build-box-7", expires=1000.0)
    assert lock.judge(lease, "here", 999.0) is lock.Holder.RUNNING
    # expired, but its watchdog may still be ending its command
    assert lock.judge(lease, "here", 1000.0 + lock.TAKEOVER_GRACE_S - 0.1) is lock.Holder.RUNNING
    assert lock.judge(lease, "here", 1000.0 + lock.TAKEOVER_GRACE_S) is lock.Holder.EXPIRED
    assert lock.TAKEOVER_GRACE_S > lock.WATCHDOG_KILL_S + 1
