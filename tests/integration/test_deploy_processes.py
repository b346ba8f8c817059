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


def spawn(cfg: Path, version: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PY, "-m", "ci", "--config", str(cfg), "deploy", "--env", "staging", "--version", version],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ROOT_ENV},
    )


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


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
    while len(losers) < 19 and time.monotonic() - begin < 60:
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
    # losers took well under the time of even one interpreter start per queued process
    assert max(t for _, t, _ in losers) < 30


def test_a_sigkilled_holder_is_recovered_by_the_next_deploy(tmp_path: Path) -> None:
    state = Path(os.environ["CI_STATE_DIR"])
    gate, started = tmp_path / "gate", tmp_path / "started"
    command = toml_list(gated_command(gate, started))
    envs = f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
    cfg = write_project(tmp_path / "app", envs)
    victim = spawn(cfg, "1.0.0")
    wait_for(started)
    held = json.loads(lock.lock_path(state, "staging").read_text(encoding="utf-8"))
    assert held["pid"] == victim.pid
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert lock.lock_path(state, "staging").exists()  # the dead holder left its lock behind

    gate.write_text("go")
    survivor = spawn(cfg, "1.0.1")
    out, err = survivor.communicate(timeout=60)
    assert survivor.returncode == 0, err
    assert "recovered the lock of a dead holder" in out
    entries = ledger_of(state).verify()
    assert [(e.action, e.version, e.outcome) for e in entries] == [
        ("deploy", "1.0.0", "started"),
        ("lock", "1.0.0", "recovered"),
        ("deploy", "1.0.1", "started"),
        ("deploy", "1.0.1", "succeeded"),
    ]
    assert entries[1].details["holder"]["id"] == held["id"]
    assert not lock.lock_path(state, "staging").exists()


def test_an_interrupted_deploy_records_it_and_frees_the_lock(tmp_path: Path) -> None:
    state = Path(os.environ["CI_STATE_DIR"])
    gate, started = tmp_path / "gate", tmp_path / "started"
    command = toml_list(gated_command(gate, started))
    cfg = write_project(
        tmp_path / "app", f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
    )
    proc = spawn(cfg, "1.0.0")
    wait_for(started)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    gate.write_text("go")  # let the orphaned deploy_command finish
    assert proc.returncode == 130, err
    entries = ledger_of(state).verify()
    assert [(e.action, e.outcome) for e in entries] == [("deploy", "started"), ("deploy", "failed")]
    assert "interrupted" in entries[1].details["reason"]
    assert not lock.lock_path(state, "staging").exists()
