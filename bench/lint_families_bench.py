"""What the lint families add to the lint gate: each family's time on a project, and in all.

Run: uv run python bench/lint_families_bench.py [PROJECT] [--runs R]
Times ``ci.gates.lint_families.check`` (listing the files with git, then shellcheck,
yamllint, hadolint and the JSON/TOML parsers, each family once per run) and each family on
its own, in this interpreter's environment (the lint group's tools); prints medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ci.core import config  # noqa: E402
from ci.core.clock import SystemClock  # noqa: E402
from ci.core.gate import context  # noqa: E402
from ci.core.runner import ProcessRunner  # noqa: E402
from ci.gates import lint_families  # noqa: E402


def median_s(action: object, runs: int) -> float:
    """The median wall time of ``runs`` calls of ``action``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print the median time of every family together and of each alone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", nargs="?", type=Path, default=ROOT)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cfg = config.load(cwd=args.project.resolve())
    ctx = context(cfg, ProcessRunner(), SystemClock(), dict(os.environ))
    report = lint_families.check(ctx)
    print(f"{cfg.root}: {report.note}; {len(report.findings)} finding(s)")
    print(f"all families: {median_s(lambda: lint_families.check(ctx), args.runs):.2f} s")
    files = lint_families.project_files(ctx)
    listing = median_s(lambda: lint_families.project_files(ctx), args.runs)
    print(f"  listing the files: {listing:.2f} s")
    picked = lint_families.pick(cfg.root, files, cfg.gate("lint").families)
    for family, members in picked.items():
        if not members or family not in cfg.gate("lint").families:
            continue
        one = replace(cfg, gates={"lint": replace(cfg.gate("lint"), families=(family,))})
        alone = replace(ctx, config=one)
        took = median_s(lambda alone=alone: lint_families.check(alone), args.runs)  # type: ignore[misc]
        print(f"  {family} ({len(members)} file(s)), with the listing: {took:.2f} s")


if __name__ == "__main__":
    main()
