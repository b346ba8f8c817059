"""Packaging benchmark: warm `nox -s package` and `python -m ci package` vs bare `python -m build`.

Run from the repository root: `uv run python bench/package.py [--runs N]`. Every command
runs N times (after one warm-up run that fills the nox venv and the uv/pip caches) and the
median wall time is reported; the stamp + bundle overhead is timed in-process.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ci.core.runner import ProcessRunner  # noqa: E402
from ci.release import package  # noqa: E402


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU times of ``runs`` runs of ``argv`` (after one warm-up), fresh outdirs.

    CPU time (user + system of every process the command waited for) is the steadier
    figure on a shared machine, where wall time swings with other people's load.
    """
    walls, cpus = [], []
    for index in range(runs + 1):
        with tempfile.TemporaryDirectory() as out:
            cmd = [a.replace("{out}", out) for a in argv]
            cpu, start = _children_cpu(), time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
            if index:  # the first run only warms caches
                walls.append(time.perf_counter() - start)
                cpus.append(_children_cpu() - cpu)
    return walls, cpus


def overhead(runs: int) -> list[float]:
    """Time of stamping the wheel and writing the bundle, on a real wheel of this project."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--outdir", out, str(ROOT)],
            check=True,
            capture_output=True,
        )
        wheel = next(Path(out).glob("*.whl"))
        facts = package.source_facts(ROOT, ProcessRunner())
        times = []
        for _ in range(runs):
            copy = Path(out) / "copy.whl"
            shutil.copy(wheel, copy)
            start = time.perf_counter()
            info = package.make_build_info(
                name="noxgate",
                version="0",
                facts=facts,
                epoch=package.source_date_epoch(facts, {}),
                uv_lock=ROOT / "uv.lock",
                python="3",
                env={},
            )
            package.stamp_wheel(copy, info.to_json(), ("ci",))
            package.make_bundle(ROOT, Path(out) / "b.tar.gz", "noxgate-0", info.to_json(), 0)
            times.append(time.perf_counter() - start)
        return times


def main() -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    py = sys.executable
    rows = {
        "bare `python -m build` (pip installer)": timed(
            [py, "-m", "build", "--outdir", "{out}", "."], runs
        ),
        "bare `python -m build --installer uv`": timed(
            [py, "-m", "build", "--installer", "uv", "--outdir", "{out}", "."], runs
        ),
        "`python -m ci package` (1 build + stamp + bundle + twine check)": timed(
            [py, "-m", "ci", "package", "--outdir", "{out}"], runs
        ),
        "`python -m ci package --verify-reproducible` (2 builds)": timed(
            [py, "-m", "ci", "package", "--outdir", "{out}", "--verify-reproducible"], runs
        ),
        "warm `nox -s package` (= the gate: 2 builds, checks)": timed(
            [py, "-m", "nox", "-s", "package"], runs
        ),
    }
    base_wall, base_cpu = (
        statistics.median(t) for t in rows["bare `python -m build` (pip installer)"]
    )
    print(f"| command | wall, median of {runs} (s) | vs bare | CPU, median (s) | vs bare |")
    print("|---|---|---|---|---|")
    for name, (walls, cpus) in rows.items():
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        print(
            f"| {name} | {wall:.2f} | {wall / base_wall:.2f}x | {cpu:.2f} | {cpu / base_cpu:.2f}x |"
        )
    stamp = overhead(20)
    label = "stamp wheel + write bundle (in-process, median of 20)"
    print(f"| {label} | {statistics.median(stamp):.3f} | | | |")


if __name__ == "__main__":
    main()
