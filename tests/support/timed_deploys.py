"""Deploy commands that log when they run, and checks that no two of them ran at once."""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

from ci.deploy import lock

PY = sys.executable


def wait_for(path: Path, timeout: float = 30) -> None:
    """Wait until ``path`` exists (fails the test after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def timed_command(
    log: Path, gate: Path, started: Path, *, patience: float = 60, label: str = "{version}"
) -> list[str]:
    """A deploy_command that logs its start and end times, and waits for ``gate<label>``.

    It writes ``started<label>`` (its pid) once running, and logs its end on SIGTERM too,
    so the log shows exactly when each deploy command ran. ``label`` names the run
    (``{version}``, or e.g. ``{env}@{version}`` when several environments share the log).
    """
    code = (
        "import os, pathlib, signal, sys, time\n"
        "v = sys.argv[1]\n"
        f"log = open({str(log)!r}, 'a')\n"
        "def note(what):\n"
        "    log.write(f'{what} {v} {time.time()!r}\\n'); log.flush()\n"
        "def stop(signum, frame):\n"
        "    note('end'); sys.exit(1)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "note('start')\n"
        f"mark = pathlib.Path({str(started)!r} + v + '.tmp')\n"
        "mark.write_text(str(os.getpid())); mark.rename(str(mark)[:-4])\n"
        f"gate = pathlib.Path({str(gate)!r} + v)\n"
        f"deadline = time.monotonic() + {patience}\n"
        "while not gate.exists() and time.monotonic() < deadline: time.sleep(0.02)\n"
        "note('end')\n"
    )
    return [PY, "-c", code, label]


def intervals(log: Path) -> dict[str, tuple[float, float]]:
    """``version -> (start, end)`` from a timed_command log (every command must have ended)."""
    seen: dict[str, dict[str, float]] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        what, version, stamp = line.split()
        seen.setdefault(version, {})[what] = float(stamp)
    assert all(set(times) == {"start", "end"} for times in seen.values()), seen
    return {v: (t["start"], t["end"]) for v, t in seen.items()}


def assert_no_overlap(log: Path) -> None:
    """Fail when two commands of a timed_command log ran at the same time."""
    runs = sorted(intervals(log).values())
    for (_, end), (start, _) in itertools.pairwise(runs):
        assert start >= end, f"two deploy commands ran at once: {runs}"


def open_gates(gate: Path, *versions: str) -> None:
    """Let the timed commands of ``versions`` finish."""
    for version in versions:
        Path(f"{gate}{version}").write_text("go")


def process_gone(pid: int, timeout: float = 30) -> bool:
    """True once ``pid`` is gone (or only a zombie), False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while lock.pid_alive(pid) and lock.process_start_time(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
