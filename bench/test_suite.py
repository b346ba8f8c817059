"""Wall and CPU time of this repository's test session at two commits, with the same test count.

Usage: python bench/test_suite.py REF [REF ...] [--session test-3.12] [--runs 1]

Each REF is cloned fresh into a temporary folder and ``nox -s SESSION`` runs there (its own
venvs, synced from uv.lock; the uv cache is shared and warm). Reported per run: wall time,
CPU time of nox and every process it waited for, and the test counts from the junit report.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def counts(junit: Path) -> dict[str, int]:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if not junit.exists():
        return totals
    root = ET.parse(junit).getroot()
    for suite in [root] if root.tag == "testsuite" else root.iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    return totals


def measure(ref: str, session: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-tests-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "checkout", "-q", ref], cwd=clone, check=True)
        env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
        env |= {"CI_STATE_DIR": str(Path(tmp) / "state"), "CI_NO_CACHE": "1"}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "nox", "-s", session],
            cwd=clone,
            env=env,
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        python = session.rsplit("-", 1)[-1]
        return {
            "ref": ref,
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", ref],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip(),
            "session": session,
            "exit": done.returncode,
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "load_1min_at_end": os.getloadavg()[0],
            **counts(clone / "reports" / f"junit-{python}.xml"),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("refs", nargs="+")
    parser.add_argument("--session", default="test-3.12")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    for _ in range(args.runs):
        for ref in args.refs:
            print(json.dumps(measure(ref, args.session)), flush=True)


if __name__ == "__main__":
    main()
