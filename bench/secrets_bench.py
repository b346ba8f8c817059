"""Secret scan benchmarks: full history of a 10,000-commit repository, and a 10-commit PR range.

Run: uv run python bench/secrets_bench.py [--commits N] [--runs R]
Prints medians of R runs; the ratio compares the history scan with plain `git log -p` of the
same commits, measured in the same run.
"""

from __future__ import annotations

import argparse
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

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
]


def _line(i: int, j: int) -> str:
    a, b = WORDS[(i + j) % len(WORDS)], WORDS[(i * 7 + j) % len(WORDS)]
    return f"def {a}_{i}_{j}(value: int) -> int:  # {b} handler {i * 31 + j}\n"


def generate(repo: Path, commits: int, files: int = 200) -> None:
    """A repository of ``commits`` commits, each rewriting one of ``files`` Python files."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    stream = []
    contents: dict[int, list[str]] = {}
    for i in range(commits):
        index = i % files
        body = contents.setdefault(index, [])
        body[:] = (body + [_line(i, j) + "    return value\n" for j in range(3)])[-40:]
        data = "".join(body).encode()
        message = f"change {i}\n".encode()
        stream.append(b"commit refs/heads/main\n")
        stream.append(
            f"committer Bench <bench@example.invalid> {1_700_000_000 + i} +0000\n".encode()
        )
        stream.append(b"data %d\n%s" % (len(message), message))
        stream.append(f"M 644 inline src/module_{index}.py\n".encode())
        stream.append(b"data %d\n%s\n" % (len(data), data))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(stream), check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, check=True)


def add_pr(repo: Path, count: int) -> None:
    """``count`` ordinary commits on a branch, the last with a planted token."""
    subprocess.run(["git", "checkout", "-q", "-b", "pr"], cwd=repo, check=True)
    for i in range(count):
        path = repo / "src" / f"pr_{i}.py"
        text = "".join(_line(90_000 + i, j) for j in range(5))
        if i == count - 1:
            text += 'TOKEN = "' + "ghp_" + "x1Y2z3" * 6 + '"\n'
        path.write_text(text)
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        env = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid"}
        env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.invalid"}
        subprocess.run(
            ["git", "commit", "-q", "-m", f"pr {i}"],
            cwd=repo,
            check=True,
            env={**env, "PATH": "/usr/bin:/bin"},
        )


def timed(fn: object, runs: int) -> float:
    values = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        values.append(time.perf_counter() - start)
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        start = time.perf_counter()
        generate(repo, args.commits)
        print(f"generated {args.commits} commits in {time.perf_counter() - start:.1f} s")
        runner = ProcessRunner()

        def git_log() -> None:
            argv = ["git", "log", "-p", "--all", "--no-color"]
            for _ in runner.lines(argv, cwd=repo):
                pass

        def history() -> None:
            report = secrets.scan(secrets.ScanOptions(repo=repo, mode=secrets.Mode.HISTORY), runner)
            assert report.scanned == args.commits, report.scanned

        log_s = timed(git_log, args.runs)
        scan_s = timed(history, args.runs)
        print(f"git log -p (read through a pipe): median {log_s:.2f} s")
        print(f"history scan:                     median {scan_s:.2f} s")
        print(f"ratio: {scan_s / log_s:.2f}x (goal <= 3x)")

        add_pr(repo, 10)

        def pr_range() -> None:
            done = subprocess.run(
                [sys.executable, "-m", "ci", "secrets", "--repo", str(repo), "--since", "main"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 1, done.stdout + done.stderr

        pr_s = timed(pr_range, args.runs)
        print(
            "PR range scan of 10 commits (python -m ci secrets --since main): "
            f"median {pr_s:.2f} s (goal <= 2 s)"
        )


if __name__ == "__main__":
    main()
