"""The lease watchdog: real holders, real process groups, real SIGSTOP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ci.core.errors import ToolError
from ci.core.runner import ProcessRunner, group_alive
from ci.core.watchdog import main as watchdog_main

PY = sys.executable
SLEEPER = "import time\nwhile True: time.sleep(0.05)"


def poll(until: Callable[[], bool], timeout: float = 30) -> bool:
    """True once ``until()`` holds; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def expire_in(path: Path, seconds: float) -> float:
    expires = time.time() + seconds
    tmp = path.with_suffix(".tmp")
    tmp.write_text(repr(expires))
    tmp.replace(path)
    return expires


def stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    return stat[0] == "T"


def watchdogs_of(expiry: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"ci.core.watchdog" in cmdline and str(expiry).encode() in cmdline:
                found.append(int(entry.name))
    return found


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Callable[[Path], tuple[subprocess.Popen[str], int]]]:
    """Start a holder process that runs a sleeper under a watchdog; (holder, command pgid)."""
    started: list[subprocess.Popen[str]] = []

    def start(expiry: Path) -> tuple[subprocess.Popen[str], int]:
        pgid_file = tmp_path / "pgid"
        code = (
            "import pathlib, sys\n"
            "from ci.core.runner import ProcessRunner\n"
            f"mark = pathlib.Path({str(pgid_file)!r})\n"
            "def on_start(pgid): mark.write_text(str(pgid))\n"
            "try:\n"
            f"    ProcessRunner().run([sys.executable, '-c', {SLEEPER!r}],"
            f" on_start=on_start, watch=pathlib.Path({str(expiry)!r}))\n"
            "except Exception as exc: print(exc)\n"
        )
        proc = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert poll(lambda: pgid_file.exists() and pgid_file.read_text() != ""), "no command"
        return proc, int(pgid_file.read_text())

    yield start
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.communicate()


def test_a_paused_holder_cannot_keep_its_command_past_the_lease(
    tmp_path: Path, holder: Callable[[Path], tuple[subprocess.Popen[str], int]]
) -> None:
    expiry = tmp_path / "expiry"
    expire_in(expiry, 3600)  # a lease that outlasts the holder's start, however slow
    proc, pgid = holder(expiry)
    os.kill(proc.pid, signal.SIGSTOP)  # the holder is frozen: it renews nothing, ends nothing
    assert poll(lambda: stopped(proc.pid))
    expire_in(expiry, 0.5)  # its last renewal, landed just before it froze
    assert poll(lambda: not group_alive(pgid)), "the command outlived its lease"
    assert stopped(proc.pid)  # ended by the watchdog, while the holder was still paused
    os.kill(proc.pid, signal.SIGCONT)
    out, _ = proc.communicate(timeout=30)
    assert "was ended by its watchdog" in out
    assert f"exit status {-signal.SIGTERM}" in out
    assert watchdogs_of(expiry) == []


def test_renewals_keep_the_command_running_and_their_end_stops_it(
    tmp_path: Path, holder: Callable[[Path], tuple[subprocess.Popen[str], int]]
) -> None:
    expiry = tmp_path / "expiry"
    expire_in(expiry, 3600)  # a lease that outlasts the holder's start, however slow
    proc, pgid = holder(expiry)
    first = expire_in(expiry, 2.0)
    expire_in(expiry, 600)  # renewed (as the holder's keeper does)
    assert poll(lambda: time.time() > first + 0.5)  # the first expiry has passed
    assert group_alive(pgid)
    expire_in(expiry, 0.5)  # the last renewal: none after it
    assert poll(lambda: not group_alive(pgid)), "no renewals, yet the command runs on"
    out, _ = proc.communicate(timeout=30)
    assert "the lease it ran under expired unrenewed" in out


def test_the_watchdog_ends_with_a_command_that_ends_by_itself(tmp_path: Path) -> None:
    expiry = tmp_path / "expiry"
    expire_in(expiry, 3600)
    done = ProcessRunner().run(
        [PY, "-c", "print('deployed')"], on_start=lambda pgid: None, watch=expiry
    )
    assert done.stdout.strip() == "deployed"
    assert watchdogs_of(expiry) == []


def test_no_expiry_file_means_the_command_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code = f"import pathlib; pathlib.Path({str(marker)!r}).touch()"
    with pytest.raises(ToolError, match="lease expiry file"):
        ProcessRunner().run([PY, "-c", code], on_start=lambda pgid: None, watch=tmp_path / "no")
    assert not marker.exists()


def test_bad_use_of_the_watchdog_is_exit_2() -> None:
    assert watchdog_main(["not-a-pgid"]) == 2
