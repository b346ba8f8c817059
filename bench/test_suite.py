"""Wall and CPU time of this repository's test tiers and of ``.ci/run``, with the machine's load.

Usage: python bench/test_suite.py [REF ...] [--tiers unit,integration,ci-run] [--fresh-home]

Each REF (default HEAD) is cloned fresh into a temporary folder. Each tier runs there the way
the README's test command runs it (``nox -s test-3.12``, pytest under coverage):

- ``unit``: ``nox -s test-3.12 -- -m "not integration"`` (no nox, uv or git subprocess of a
  sample project);
- ``integration``: ``nox -s test-3.12 -- -m integration``;
- ``ci-run``: ``bash .ci/run``, the whole CI entry point (every Python, then lint).

Reported per tier, one JSON line each: exit status, wall time, CPU time of every process the
tier waited for, the load average before and after, and the test counts of the junit report
(a tier's gate may exit 1 on the coverage floor alone: the floor is for the whole suite).
``--fresh-home`` runs each tier with a new empty HOME, no git identity and no global git
config, as ``.ci/run`` does.
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
TIERS = {
    "unit": ["nox", "-s", "test-3.12", "--", "-m", "not integration"],
    "integration": ["nox", "-s", "test-3.12", "--", "-m", "integration"],
    "ci-run": ["bash", ".ci/run"],
}
IDENTITY = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")


def counts(reports: Path) -> dict[str, int]:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for junit in sorted(reports.glob("junit-*.xml")):
        root = ET.parse(junit).getroot()
        for suite in [root] if root.tag == "testsuite" else root.iter("testsuite"):
            for key in totals:
                totals[key] += int(suite.get(key, "0"))
    return totals


def environment(tmp: Path, *, fresh_home: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env |= {"CI_STATE_DIR": str(tmp / "state"), "CI_NO_CACHE": "1"}
    if fresh_home:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        if root.returncode == 0:
            env["PYENV_ROOT"] = root.stdout.strip()
        home = tmp / "home"
        home.mkdir()
        env |= {"HOME": str(home), "GIT_CONFIG_GLOBAL": os.devnull}
        for name in IDENTITY:
            env.pop(name, None)
    return env


def measure(ref: str, tier: str, *, fresh_home: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-tests-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "checkout", "-q", ref], cwd=clone, check=True)
        env = environment(Path(tmp), fresh_home=fresh_home)
        load_before = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        done = subprocess.run(
            TIERS[tier],
            cwd=clone,
            env=env,
            check=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=clone,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return {
            "ref": ref,
            "commit": commit,
            "tier": tier,
            "exit": done.returncode,
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "load_1min_before": load_before,
            "load_1min_after": os.getloadavg()[0],
            **counts(clone / "reports"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("refs", nargs="*", default=["HEAD"])
    parser.add_argument(
        "--tiers", default="unit,integration", help="comma-separated: " + ",".join(TIERS)
    )
    parser.add_argument("--fresh-home", action="store_true")
    args = parser.parse_args()
    tiers = [t.strip() for t in args.tiers.split(",") if t.strip()]
    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        sys.exit(f"unknown tier(s): {', '.join(unknown)}; choose from {', '.join(TIERS)}")
    for ref in args.refs:
        for tier in tiers:
            print(json.dumps(measure(ref, tier, fresh_home=args.fresh_home)), flush=True)


if __name__ == "__main__":
    main()
