"""A lease holder frozen by SIGSTOP: its command ends with its lease, and its writes are fenced.

Two hosts share one git remote as their state: the holder (this host) and a taker with
its own host name (``unshare -u``, a UTS namespace: root only), so the taker judges the
holder by its lease alone, as another machine would. ``NOXGATE_PAUSE_LEASE_S`` sets the
lease (default 3 s): the run takes about the lease plus the takeover grace.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ci.deploy.ledger import verify_lines
from tests.support.deploy_project import ROOT_ENV, toml_list
from tests.support.state_remote import clone, project_remote, state_file
from tests.support.timed_deploys import (
    assert_no_overlap,
    intervals,
    open_gates,
    timed_command,
    wait_for,
)

PY = sys.executable
LEASE_S = float(os.environ.get("NOXGATE_PAUSE_LEASE_S", "3"))
OTHER_HOST = "noxgate-other-host"

pytestmark = pytest.mark.integration


def other_host_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(
        ["unshare", "-u", "sh", "-c", f"hostname {OTHER_HOST} && hostname"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0 and done.stdout.strip() == OTHER_HOST


def ci(repo: Path, *argv: str, host: str | None = None) -> subprocess.Popen[str]:
    """``python -m ci ARGV`` in clone ``repo`` with its own state folder (and host name)."""
    command = [PY, "-m", "ci", "--config", str(repo / "pyproject.toml"), *argv]
    if host is not None:
        command = ["unshare", "-u", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *command]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ROOT_ENV, "CI_STATE_DIR": str(repo / ".ci-state")},
    )


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "T"


@pytest.mark.skipif(not other_host_works(), reason="needs `unshare -u` (root) for a second host")
def test_a_paused_holder_never_overlaps_the_takeover_and_cannot_write_after_it(
    tmp_path: Path,
) -> None:
    log, gate, started = tmp_path / "runs.log", tmp_path / "gate-", tmp_path / "started-"
    command = toml_list(timed_command(log, gate, started, patience=120))
    remote = project_remote(
        tmp_path,
        f"[tool.ci.environments.staging]\ndeploy_command = {command}\n",
        state=f'backend = "git"\nlease_s = {LEASE_S}\n',
    )
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")

    holder = ci(a, "deploy", "--env", "staging", "--version", "1.0.0")
    wait_for(Path(f"{started}1.0.0"), timeout=300)
    lease = json.loads(state_file(remote, "locks/staging.lock"))
    os.kill(holder.pid, signal.SIGSTOP)  # a frozen VM, a suspended runner
    # 1.0.0's gate never opens: only its lease's watchdog can end it
    open_gates(gate, "1.0.1", "1.0.2")
    taker = ci(
        b, "deploy", "--env", "staging", "--version", "1.0.1", "--wait", "300", host=OTHER_HOST
    )
    code, out, err = finish(taker)
    assert code == 0, err
    assert "recovered the lock of a dead holder" in out
    assert stopped(holder.pid)  # the holder slept through all of it

    os.kill(holder.pid, signal.SIGCONT)
    code, _, err = finish(holder)
    # no overlap: the watchdog ended 1.0.0 before 1.0.1 started
    assert set(intervals(log)) == {"1.0.0", "1.0.1"}
    assert_no_overlap(log)
    assert code == 5, err  # it lost its lease: its late outcome is refused, not written
    assert "was refused and the stale holder recorded instead" in err
    assert "Traceback" not in err
    entries = verify_lines(state_file(remote, "ledger.jsonl").splitlines())
    assert [(e.action, e.version, e.outcome) for e in entries] == [
        ("deploy", "1.0.0", "started"),
        ("lock", "1.0.0", "recovered"),
        ("deploy", "1.0.1", "started"),
        ("deploy", "1.0.1", "succeeded"),
        ("fence", "1.0.0", "refused"),
    ]
    assert entries[1].details["holder"]["epoch"] == lease["epoch"]
    assert entries[-1].details["holder"]["epoch"] == lease["epoch"] < entries[-1].details["epoch"]

    # a consistent state after: both hosts see 1.0.1, and deploys go on (no exit 3)
    for repo, host in ((a, None), (b, OTHER_HOST)):
        code, out, err = finish(ci(repo, "state", "--env", "staging", "--json", host=host))
        assert code == 0, err
        doc = json.loads(out)
        assert (doc["status"], doc["current"]["version"], doc["state_file"]) == (
            "ok",
            "1.0.1",
            "ok",
        )
    code, _, err = finish(ci(a, "deploy", "--env", "staging", "--version", "1.0.2"))
    assert code == 0, err
    assert_no_overlap(log)
