"""Real deploy processes from separate clones sharing one git remote as their state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ci.deploy.ledger import verify_lines
from tests.support.deploy_project import ROOT_ENV, toml_list
from tests.support.state_remote import clone, project_remote, state_commits, state_file
from tests.support.timed_deploys import assert_no_overlap, open_gates, timed_command, wait_for

PY = sys.executable
LABEL = "{env}@{version}"

pytestmark = pytest.mark.integration


def timed_remote(tmp_path: Path, lease_s: float) -> tuple[Path, Path, Path, Path]:
    """A remote whose staging and production run timed commands; (remote, log, gate, started)."""
    log, gate, started = tmp_path / "runs.log", tmp_path / "gate-", tmp_path / "started-"
    command = toml_list(timed_command(log, gate, started, patience=300, label=LABEL))
    envs = (
        "[tool.ci.environments.staging]\n"
        f"deploy_command = {command}\n"
        "[tool.ci.environments.production]\n"
        'after = "staging"\n'
        f"deploy_command = {command}\n"
    )
    remote = project_remote(tmp_path, envs, state=f'backend = "git"\nlease_s = {lease_s}\n')
    return remote, log, gate, started


def ci(repo: Path, *argv: str) -> subprocess.Popen[str]:
    """``python -m ci ARGV`` in clone ``repo``, as on its own machine (its own state folder)."""
    return subprocess.Popen(
        [PY, "-m", "ci", "--config", str(repo / "pyproject.toml"), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ROOT_ENV, "CI_STATE_DIR": str(repo / ".ci-state")},
    )


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def remote_ledger(remote: Path) -> list[tuple[str, str, str, str]]:
    entries = verify_lines(state_file(remote, "ledger.jsonl").splitlines())
    return [(e.action, e.env, e.version, e.outcome) for e in entries]


def test_ten_clones_deploy_at_once_one_wins_and_the_remote_ledger_is_one_chain(
    tmp_path: Path,
) -> None:
    remote, log, gate, started = timed_remote(tmp_path, lease_s=60)
    clones = [clone(remote, tmp_path / f"clone{n}") for n in range(10)]
    racers = {
        n: ci(repo, "deploy", "--env", "staging", "--version", f"1.0.{n}")
        for n, repo in enumerate(clones)
    }
    losers: dict[int, tuple[int, str]] = {}
    deadline = time.monotonic() + 600  # ten interpreters and git on a busy machine
    while len(losers) < 9 and time.monotonic() < deadline:
        for n, proc in racers.items():
            if n not in losers and proc.poll() is not None:
                code, _, err = finish(proc)
                losers[n] = (code, err)
        time.sleep(0.05)
    assert sorted(code for code, _ in losers.values()) == [4] * 9, losers
    assert all("environment staging is locked" in err for _, err in losers.values())
    assert all("Traceback" not in err for _, err in losers.values())
    (winner,) = set(racers) - set(losers)
    wait_for(Path(f"{started}staging@1.0.{winner}"), timeout=300)
    open_gates(gate, f"staging@1.0.{winner}")
    code, _, err = finish(racers[winner])
    assert code == 0, err

    # the losers queue with --wait instead: each runs in turn, never two at once
    queued = sorted(losers)[:4]
    open_gates(gate, *(f"staging@1.0.{n}" for n in queued))
    waiters = [
        ci(clones[n], "deploy", "--env", "staging", "--version", f"1.0.{n}", "--wait", "600")
        for n in queued
    ]
    for proc in waiters:
        code, _, err = finish(proc, timeout=900)
        assert code == 0, err
    assert_no_overlap(log)

    # one linear chain, every deploy exactly once, started then succeeded, none interleaved
    commits = state_commits(remote)
    assert [len(c) for c in commits] == [1] + [2] * (len(commits) - 1)
    assert all(commits[i][1] == commits[i - 1][0] for i in range(1, len(commits)))
    entries = remote_ledger(remote)
    deployed = [v for action, _, v, outcome in entries if outcome == "succeeded"]
    assert sorted(deployed) == sorted(f"1.0.{n}" for n in [winner, *queued])
    assert len(entries) == 2 * len(deployed)
    for first, second in zip(entries[::2], entries[1::2], strict=True):
        assert first[1:3] == second[1:3]
        assert (first[3], second[3]) == ("started", "succeeded")


def test_staging_from_a_production_from_b_rollback_from_c_verify_from_d(
    tmp_path: Path,
) -> None:
    remote, _log, gate, _started = timed_remote(tmp_path, lease_s=60)
    a, b, c, d = (clone(remote, tmp_path / name) for name in "abcd")
    open_gates(gate, *(f"{e}@{v}" for e in ("staging", "production") for v in ("1.0.0", "1.1.0")))

    def run(repo: Path, *argv: str) -> tuple[int, str, str]:
        return finish(ci(repo, *argv))

    code, _, err = run(b, "deploy", "--env", "production", "--version", "1.0.0")
    assert code == 3, err  # not on staging yet, as far as the remote knows
    assert "never deployed successfully to staging" in err
    for version in ("1.0.0", "1.1.0"):
        assert run(a, "deploy", "--env", "staging", "--version", version)[0] == 0
        # passes only because a's record is on the remote: b has never deployed staging
        code, _, err = run(b, "deploy", "--env", "production", "--version", version)
        assert code == 0, err
    code, out, err = run(c, "rollback", "--env", "production")
    assert code == 0, err
    assert "rolled production back to 1.0.0" in out
    code, out, err = run(d, "ledger", "verify")
    assert code == 0, err
    entries = remote_ledger(remote)
    assert f"{len(entries)} entries verified" in out
    assert len(entries) == 10
    assert entries[-2:] == [
        ("rollback", "production", "1.0.0", "started"),
        ("rollback", "production", "1.0.0", "succeeded"),
    ]
    code, out, err = run(d, "state", "--env", "production", "--json")
    assert code == 0, err
    assert json.loads(out)["current"]["version"] == "1.0.0"


def test_a_sigkilled_holder_is_refused_until_its_lease_expires_then_taken_over(
    tmp_path: Path,
) -> None:
    remote, log, gate, started = timed_remote(tmp_path, lease_s=6)
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")
    victim = ci(a, "deploy", "--env", "staging", "--version", "1.0.0")
    wait_for(Path(f"{started}staging@1.0.0"), timeout=300)
    lease = json.loads(state_file(remote, "locks/staging.lock"))
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    open_gates(gate, "staging@1.0.0", "staging@1.0.1")  # its orphaned command ends
    wait_for(Path(f"{gate}staging@1.0.0"))

    code, out, err = finish(ci(b, "deploy", "--env", "staging", "--version", "1.0.1"))
    if code == 4:  # inside the lease: refused, then queued until it runs out
        assert "lease runs until" in err or "still runs" in err
        code, out, err = finish(
            ci(b, "deploy", "--env", "staging", "--version", "1.0.1", "--wait", "300")
        )
    else:  # a busy machine reached b only after the lease ran out: b takes over at once
        assert time.time() >= lease["expires"], err
    assert code == 0, err
    assert "recovered the lock of a dead holder" in out
    assert_no_overlap(log)
    entries = remote_ledger(remote)
    assert entries == [
        ("deploy", "staging", "1.0.0", "started"),
        ("lock", "staging", "1.0.0", "recovered"),
        ("deploy", "staging", "1.0.1", "started"),
        ("deploy", "staging", "1.0.1", "succeeded"),
    ]
    recovery = json.loads(state_file(remote, "ledger.jsonl").splitlines()[1])
    assert recovery["details"]["holder"]["id"] == lease["id"]
    assert recovery["details"]["reason"] == "holder process is gone"  # and its lease ran out


def test_the_holder_renews_its_lease_while_its_command_runs(tmp_path: Path) -> None:
    remote, _log, gate, started = timed_remote(tmp_path, lease_s=6)
    a = clone(remote, tmp_path / "a")
    holder = ci(a, "deploy", "--env", "staging", "--version", "1.0.0")
    wait_for(Path(f"{started}staging@1.0.0"), timeout=300)
    expiries = [json.loads(state_file(remote, "locks/staging.lock"))["expires"]]
    # renewals every third of the lease move its expiry on: watch the remote see two of them
    deadline = time.monotonic() + 300
    while len(expiries) < 3:
        assert holder.poll() is None, finish(holder)
        assert time.monotonic() < deadline, f"the lease was not renewed twice: {expiries}"
        held = state_file(remote, "locks/staging.lock")
        if held and json.loads(held)["expires"] != expiries[-1]:
            expiries.append(json.loads(held)["expires"])
        time.sleep(0.2)
    open_gates(gate, "staging@1.0.0")
    code, _, err = finish(holder)
    assert code == 0, err
    assert expiries == sorted(expiries)  # each renewal moved it later
    assert not state_file(remote, "locks/staging.lock")
    # take, run, started, at least two renewals, succeeded, release
    assert len(state_commits(remote)) >= 7
