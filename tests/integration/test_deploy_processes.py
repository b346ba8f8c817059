"""Real ``python -m ci deploy`` processes racing for one environment's lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ci.deploy import lock
from tests.support.deploy_project import ROOT_ENV, ledger_of, toml_list, write_project
from tests.support.timed_deploys import (
    assert_no_overlap,
    open_gates,
    process_gone,
    timed_command,
    wait_for,
)

PY = sys.executable

pytestmark = pytest.mark.integration


def gated_command(gate: Path, started: Path) -> list[str]:
    """A deploy_command that signals it started, then waits until ``gate`` exists."""
    code = (
        "import pathlib, sys, time; "
        f"pathlib.Path({str(started)!r}).write_text(sys.argv[1]); "
        f"gate = pathlib.Path({str(gate)!r}); "
        "deadline = time.monotonic() + 60\n"
        "while not gate.exists() and time.monotonic() < deadline: time.sleep(0.02)"
    )
    return [PY, "-c", code, "{version}"]


def spawn(cfg: Path, version: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(PY, "-m", "ci", "--config", str(cfg)),
            *("deploy", "--env", "staging", "--version", version, *extra),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ROOT_ENV},
    )


def test_twenty_concurrent_deploys_one_wins_nineteen_exit_4_fast(tmp_path: Path) -> None:
    gate, started = tmp_path / "gate", tmp_path / "started"
    command = toml_list(gated_command(gate, started))
    envs = f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
    cfg = write_project(tmp_path / "app", envs)
    procs = [spawn(cfg, f"1.0.{n}") for n in range(20)]
    losers: list[tuple[int, float, str]] = []
    begin = time.monotonic()
    pending = list(procs)
    # The winner blocks in its deploy_command until the gate opens; everyone else must
    # finish on their own, without waiting for it.
    # generous: twenty interpreters start at once on a busy machine
    while len(losers) < 19 and time.monotonic() - begin < 300:
        for proc in list(pending):
            if proc.poll() is not None:
                _, err = proc.communicate()
                losers.append((proc.returncode, time.monotonic() - begin, err))
                pending.remove(proc)
        time.sleep(0.02)
    assert len(pending) == 1, "exactly one deploy should still hold the lock"
    assert [code for code, _, _ in losers] == [4] * 19
    assert all("environment staging is locked" in err for _, _, err in losers)
    assert all("Traceback" not in err for _, _, err in losers)
    wait_for(started)
    gate.write_text("go")
    winner = pending[0]
    _, err = winner.communicate(timeout=60)
    assert winner.returncode == 0, err
    version = started.read_text()
    entries = ledger_of(Path(os.environ["CI_STATE_DIR"])).verify()
    assert [(e.action, e.version, e.outcome) for e in entries] == [
        ("deploy", version, "started"),
        ("deploy", version, "succeeded"),
    ]


def timed_project(tmp_path: Path, extra: str = "") -> tuple[Path, Path, Path, Path]:
    log, gate, started = tmp_path / "runs.log", tmp_path / "gate-", tmp_path / "started-"
    command = toml_list(timed_command(log, gate, started))
    envs = f"[tool.ci.environments.staging]\ndeploy_command = {command}\n{extra}"
    return write_project(tmp_path / "app", envs), log, gate, started


def test_a_sigkilled_holder_keeps_the_lock_while_its_command_runs(tmp_path: Path) -> None:
    state = Path(os.environ["CI_STATE_DIR"])
    cfg, log, gate, started = timed_project(tmp_path)
    victim = spawn(cfg, "1.0.0")
    wait_for(Path(f"{started}1.0.0"))
    held = json.loads(lock.lock_path(state, "staging").read_text(encoding="utf-8"))
    assert held["pid"] == victim.pid
    orphan = int(Path(f"{started}1.0.0").read_text())
    assert held.get("pgid") == orphan  # the command runs in its own group, written in the lock
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert lock.pid_alive(orphan)  # the holder is gone, its deploy command is not

    refused = spawn(cfg, "1.0.1")
    _, err = refused.communicate(timeout=60)
    assert refused.returncode == 4, err
    assert f"still runs (process group {orphan}" in err

    queued = spawn(cfg, "1.0.2", "--wait", "60")
    assert queued.stdout is not None
    # it says when it starts waiting (or ends, if it never does: the wait is bounded)
    said = ""
    while "waiting up to" not in said and (line := queued.stdout.readline()):
        said = line
    assert "waiting up to 60 s for it" in said, said + queued.communicate()[1]
    assert "environment staging is locked" in said
    assert "is running deploy 1.0.0" in said
    assert queued.poll() is None  # waiting, not deploying
    assert "start 1.0.2" not in log.read_text(encoding="utf-8")
    open_gates(gate, "1.0.0", "1.0.2")
    out, err = queued.communicate(timeout=60)
    assert queued.returncode == 0, err
    assert "recovered the lock of a dead holder" in out
    assert_no_overlap(log)
    entries = ledger_of(state).verify()
    assert [(e.action, e.version, e.outcome) for e in entries] == [
        ("deploy", "1.0.0", "started"),
        ("lock", "1.0.0", "recovered"),
        ("deploy", "1.0.2", "started"),
        ("deploy", "1.0.2", "succeeded"),
    ]
    assert entries[1].details["holder"]["id"] == held["id"]
    assert not lock.lock_path(state, "staging").exists()


def test_an_orphaned_command_past_its_timeout_is_ended_by_the_recovery(tmp_path: Path) -> None:
    state = Path(os.environ["CI_STATE_DIR"])
    cfg, log, gate, started = timed_project(tmp_path, "timeout_s = 1\n")
    victim = spawn(cfg, "1.0.0")
    wait_for(Path(f"{started}1.0.0"))
    orphan = int(Path(f"{started}1.0.0").read_text())
    victim.send_signal(signal.SIGKILL)
    victim.communicate()

    # 1.0.0's gate never opens: only the recovery can end it, once its deadline passed
    open_gates(gate, "1.0.1")
    taker = spawn(cfg, "1.0.1", "--wait", "60")
    out, err = taker.communicate(timeout=90)
    assert taker.returncode == 0, err
    assert f"ended its command, process group {orphan}" in out
    assert process_gone(orphan)
    assert_no_overlap(log)
    entries = ledger_of(state).verify()
    assert [(e.action, e.outcome) for e in entries] == [
        ("deploy", "started"),
        ("lock", "recovered"),
        ("deploy", "started"),
        ("deploy", "succeeded"),
    ]
    assert f"process group {orphan}" in entries[1].details["reason"]


@pytest.mark.parametrize(
    ("signum", "code", "name"),
    [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")],
)
def test_an_interrupted_deploy_ends_its_command_records_it_and_frees_the_lock(
    tmp_path: Path, signum: int, code: int, name: str
) -> None:
    state = Path(os.environ["CI_STATE_DIR"])
    cfg, log, gate, started = timed_project(tmp_path)
    proc = spawn(cfg, "1.0.0")
    wait_for(Path(f"{started}1.0.0"))
    command = int(Path(f"{started}1.0.0").read_text())
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert process_gone(command, timeout=0)  # ended before the deploy exited
    assert not lock.lock_path(state, "staging").exists()
    entries = ledger_of(state).verify()
    assert [(e.action, e.outcome) for e in entries] == [
        ("deploy", "started"),
        ("deploy", "interrupted"),
    ]
    assert name in entries[1].details["reason"]

    open_gates(gate, "1.0.1")
    after = spawn(cfg, "1.0.1")
    _, err = after.communicate(timeout=60)
    assert after.returncode == 0, err
    assert_no_overlap(log)


def test_a_deploy_started_with_signals_blocked_is_still_interruptible(tmp_path: Path) -> None:
    # a parent that has SIGINT and SIGTERM blocked hands that mask to its children
    state = Path(os.environ["CI_STATE_DIR"])
    cfg, _log, _gate, started = timed_project(tmp_path)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        proc = spawn(cfg, "1.0.0")
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
    wait_for(Path(f"{started}1.0.0"))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    entries = ledger_of(state).verify()
    assert [(e.action, e.outcome) for e in entries] == [
        ("deploy", "started"),
        ("deploy", "interrupted"),
    ]
