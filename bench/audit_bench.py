"""Offline audit benchmark: 200 pinned requirements against the whole shared advisory database.

Run: uv run python bench/audit_bench.py [--db DIR] [--pins N] [--runs R]
Times `python -m ci audit --requirements r.txt --advisory-db DIR --format json --output a.json`
end to end (interpreter start, local OSV server, pip-audit, severity scoring); prints medians.
It also checks that every advisory listing a pinned version was found.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ci.security.advisories import SUFFIXES, load_record  # noqa: E402

DEFAULT_DB = ROOT.parent.parent / "shared" / "data" / "pypa-advisory-database" / "vulns"


def pins(db: Path, count: int) -> tuple[dict[str, str], set[str]]:
    """``count`` pins (every other one vulnerable) and the ids a correct audit must report."""
    chosen: dict[str, str] = {}
    for folder in sorted(p for p in db.iterdir() if p.is_dir()):
        if len(chosen) == count:
            break
        records = [load_record(p) for p in sorted(folder.iterdir()) if p.suffix in SUFFIXES]
        versions = [
            str(v)
            for r in records
            if not r.get("withdrawn")
            for a in r.get("affected", [])
            for v in a.get("versions", [])
        ]
        if versions:
            # half the pins hit a listed version, half a version no record lists
            chosen[folder.name] = versions[0] if len(chosen) % 2 == 0 else "9999.0"
    expected = set()
    for name, version in chosen.items():
        for path in (db / name).iterdir():
            record = load_record(path)
            if record.get("withdrawn"):
                continue
            if any(version in map(str, a.get("versions", [])) for a in record.get("affected", [])):
                expected.add(record["id"])
    return chosen, expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--pins", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    chosen, expected = pins(args.db, args.pins)
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "r.txt"
        requirements.write_text("".join(f"{n}=={v}\n" for n, v in chosen.items()))
        output = Path(tmp) / "a.json"
        argv = [sys.executable, "-m", "ci", "audit", "--requirements", str(requirements)]
        argv += ["--advisory-db", str(args.db), "--format", "json", "--output", str(output)]
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
            times.append(time.perf_counter() - start)
            assert done.returncode == 1, done.stdout + done.stderr
        found = {f["id"] for f in json.loads(output.read_text())["findings"]}
    missing = expected - found
    print(f"{len(chosen)} pins, {len(expected)} advisories list a pinned version")
    print(f"found {len(found)} advisories; missing from the expected set: {len(missing)}")
    print(
        f"offline audit: median {statistics.median(times):.2f} s of {args.runs} runs (goal <= 5 s)"
    )


if __name__ == "__main__":
    main()
