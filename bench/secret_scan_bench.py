"""Tree secret scan vs bare `detect-secrets scan` of the same files, with the same settings.

Run: uv run python bench/secret_scan_bench.py [--files N] [--runs R] [--skip-repo]
Two trees: this repository's tracked files, and a generated git repository of N (10,000)
files of realistic source (Python modules, JSON, YAML, Markdown; a few planted secrets).
For each run and tree, both commands run as subprocesses, one after the other:
`python -m ci secrets --repo TREE --format json` (the gate's tree scan, interpreter start
included) and `detect-secrets scan FILE...` over exactly the files the tree scan reads, with
the tree's baseline settings when it has a baseline (a copy, passed as --baseline).
Prints each run, then medians; the ratio is taken within each run. Exits 1 when the
findings differ (file, line, type, detect-secrets' hashed_secret) in any run.
"""

from __future__ import annotations

import argparse
import json
import os
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
from ci.security import secrets  # noqa: E402
from tests.support import secret_corpus  # noqa: E402

Key = tuple[str, str, str]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def generated_repo(parent: Path, files: int) -> Path:
    """A committed git repository of ``files`` generated source files."""
    repo = parent / "generated"
    repo.mkdir()
    secret_corpus.generated(repo, files)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(
        repo,
        "-c",
        "user.name=Bench",
        "-c",
        "user.email=bench@example.invalid",
        "commit",
        "-qm",
        "tree",
    )
    return repo


def scanned_files(repo: Path) -> list[str]:
    """Exactly the files the tree scan reads: tracked regular files, less the baseline."""
    names = secrets.tree_files(repo, ProcessRunner())
    return [name for name in names if name != secrets.BASELINE]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _first_lines(findings: dict[Key, int], key: Key, line: int) -> None:
    findings[key] = min(line, findings.get(key, line))


def ours(repo: Path) -> tuple[float, float, dict[Key, int]]:
    """Wall and CPU time of the tree scan command, and what it found (detect-secrets' hashes)."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ci", "secrets", "--repo", str(repo), "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    if done.returncode not in {0, 1}:
        msg = f"ci secrets exited {done.returncode}: {done.stderr.strip()[-300:]}"
        raise SystemExit(msg)
    # the JSON report carries the gate's hash; the same scan in-process gives detect-secrets'
    baseline = repo / secrets.BASELINE
    loaded = secrets.load_baseline(baseline) if baseline.exists() else None
    with secrets._settings(loaded, files_exist=True):
        _, found = secrets.scan_files(repo, scanned_files(repo))
    findings: dict[Key, int] = {}
    for f in found:
        _first_lines(findings, (f.file, f.type, f.baseline_hash), f.line)
    reported = {(f["file"], f["line"], f["type"]) for f in json.loads(done.stdout)["findings"]}
    if reported != {(f.file, f.line, f.type) for f in found}:
        raise SystemExit("the command's report and the in-process scan differ")
    return elapsed, cpu, findings


def bare(repo: Path, names: list[str], scratch: Path) -> tuple[float, float, dict[Key, int]]:
    """Wall and CPU time of `detect-secrets scan` over ``names`` (its workers too), findings."""
    command = [str(Path(sys.executable).with_name("detect-secrets")), "scan"]
    baseline = repo / secrets.BASELINE
    copy = scratch / "baseline.json"
    if baseline.exists():
        shutil.copyfile(baseline, copy)
        command += ["--baseline", str(copy)]
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run([*command, *names], cwd=repo, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    if done.returncode != 0:
        msg = f"detect-secrets exited {done.returncode}: {done.stderr.strip()[-300:]}"
        raise SystemExit(msg)
    results = json.loads(copy.read_text() if baseline.exists() else done.stdout)["results"]
    findings: dict[Key, int] = {}
    for file, items in results.items():
        for item in items:
            _first_lines(findings, (file, item["type"], item["hashed_secret"]), item["line_number"])
    return elapsed, cpu, findings


def measure(
    name: str, repo: Path, runs: int, scratch: Path
) -> tuple[list[float], list[float], bool]:
    """Both scans ``runs`` times, alternating; (ours, bare, all findings equal)."""
    names = scanned_files(repo)
    mine: list[float] = []
    theirs: list[float] = []
    cpu_ratios: list[float] = []
    same = True
    for run in range(runs):
        fast, fast_cpu, found = ours(repo)
        slow, slow_cpu, expected = bare(repo, names, scratch)
        equal = found == expected
        same = same and equal
        mine.append(fast)
        theirs.append(slow)
        cpu_ratios.append(slow_cpu / fast_cpu)
        print(
            f"{name} run {run + 1}: {len(names)} files, tree scan {fast:.2f} s, "
            f"detect-secrets scan {slow:.2f} s, {slow / fast:.1f}x; CPU {fast_cpu:.2f} s vs "
            f"{slow_cpu:.2f} s, {slow_cpu / fast_cpu:.1f}x; "
            f"{len(found)} findings, {'identical' if equal else 'DIFFERENT'}",
            flush=True,
        )
        if not equal:
            only_ours = sorted(set(found.items()) - set(expected.items()))[:5]
            only_theirs = sorted(set(expected.items()) - set(found.items()))[:5]
            print(f"  only the tree scan: {only_ours}\n  only detect-secrets: {only_theirs}")
    ratios = [slow / fast for fast, slow in zip(mine, theirs, strict=True)]
    print(
        f"{name}: median tree scan {statistics.median(mine):.2f} s, detect-secrets scan "
        f"{statistics.median(theirs):.2f} s, median ratio {statistics.median(ratios):.1f}x "
        f"(CPU {statistics.median(cpu_ratios):.1f}x)",
        flush=True,
    )
    return mine, theirs, same


def main() -> int:
    """Run the benchmark; 1 when findings differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-repo", action="store_true", help="only the generated tree")
    args = parser.parse_args()
    print(f"load: {os.getloadavg()}", flush=True)
    same = True
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        if not args.skip_repo:
            same &= measure("this repository", ROOT, args.runs, scratch)[2]
        start = time.perf_counter()
        repo = generated_repo(scratch, args.files)
        print(f"generated {args.files} files in {time.perf_counter() - start:.1f} s", flush=True)
        same &= measure(f"generated {args.files}-file tree", repo, args.runs, scratch)[2]
    print(f"load: {os.getloadavg()}", flush=True)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
