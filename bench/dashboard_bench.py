"""The dashboard on a long history: 10,000 pipeline runs of six gates each (60,000 gate runs).

Run: uv run python bench/dashboard_bench.py [--runs N] [--repeat R]
Writes the history's logs straight into a temporary state folder (the records' own JSON,
``tests/support/history_sample.big_history``), plus the small ledger and waivers of the
sample project, then times ``python -m ci dashboard`` in-process R times: reading the logs,
the aggregations, drawing the charts and writing the page. Prints the median, the slowest,
and the page's size (targets: <= 2 s, < 2 MB), wall-clock and CPU time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ci.cli.app import App  # noqa: E402
from ci.cli.main import main  # noqa: E402
from ci.deploy.backend import StateBackend  # noqa: E402
from ci.deploy.store import LocalStore  # noqa: E402
from tests.support import history_sample  # noqa: E402


def build(folder: Path, runs: int) -> Path:
    """A project with ``runs`` runs in its history; its folder."""
    project = folder / "big"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        history_sample.PYPROJECT + f"\n[tool.ci.history]\nkeep = {runs * 6}\n",
        encoding="utf-8",
    )
    state = project / ".ci-state"
    history_sample.big_history(state, runs)
    history_sample.ledger(StateBackend(LocalStore(state)))
    return project


def calibrate() -> float:
    """CPU seconds of a fixed pure-Python loop: how fast this machine is right now."""
    start = time.process_time()
    sum(range(10**8))
    return time.process_time() - start


def main_() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = build(Path(tmp), args.runs)
        state = project / ".ci-state"
        logs = sum(p.stat().st_size for p in (state / "logs").glob("*.jsonl"))
        env = {"CI_STATE_DIR": str(state), "PATH": os.environ.get("PATH", "")}
        page = project / "reports" / "dashboard.html"
        times, cpu = [], []
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            with contextlib.redirect_stdout(io.StringIO()):
                code = main(["dashboard"], App(cwd=project, env=env))
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            assert code == 0, code
        size = page.stat().st_size
        print(f"history: {args.runs} pipeline runs, {args.runs * 6} gate runs, {logs / 1e6:.1f} MB")
        print(
            f"dashboard: wall median {statistics.median(times):.2f} s (slowest {max(times):.2f}), "
            f"CPU median {statistics.median(cpu):.2f} s (slowest {max(cpu):.2f}) of "
            f"{args.repeat}; page {size / 1e6:.2f} MB ({size} bytes)"
        )
        print(
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; calibration: "
            f"sum(range(10**8)) took {calibrate():.2f} s CPU here"
        )


if __name__ == "__main__":
    main_()
