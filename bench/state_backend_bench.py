"""Deploy state backends: what the git remote adds to a deploy, and twenty clones contending.

Run: uv run python bench/state_backend_bench.py [--runs 5] [--clones 20]

1. One project, a bare repository on disk as its remote. ``python -m ci deploy`` of a new
   version (deploy_command ``true``) ``--runs`` times with the local backend and as often
   with the git backend, alternating; medians of the whole command (interpreter start-up
   included), so the difference is the git backend's added time per deploy.
2. ``--clones`` clones deploy to one environment at once (deploy_command sleeps 2 s):
   how long the losers take to exit 4, and that exactly one won.
3. The same clones all deploy with ``--wait``: how long until every one has deployed in
   turn, and that the remote ledger is one linear chain with every deploy exactly once.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ci.deploy.ledger import verify_lines  # noqa: E402

PYPROJECT = """\
[project]
name = "bench-app"
version = "1.0.0"

[tool.ci]
pythons = ["3.12"]

[tool.ci.state]
backend = "local"
lease_s = 60

[tool.ci.environments.staging]
deploy_command = {command}
"""


def git(cwd: Path, *args: str) -> str:
    """Run git quietly; its stdout."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


def remote_with_project(tmp: Path, command: list[str]) -> Path:
    """A bare remote holding a project whose staging runs ``command``."""
    source = tmp / "source"
    source.mkdir()
    argv = "[" + ", ".join(f'"{a}"' for a in command) + "]"
    (source / "pyproject.toml").write_text(PYPROJECT.format(command=argv), encoding="utf-8")
    git(source, "init", "-q", "-b", "main")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "bench project")
    remote = tmp / "remote.git"
    git(tmp, "clone", "-q", "--bare", str(source), str(remote))
    return remote


def clone(remote: Path, target: Path) -> Path:
    """A clone of ``remote``."""
    git(target.parent, "clone", "-q", str(remote), str(target))
    return target


def ci(repo: Path, backend: str, *argv: str) -> subprocess.Popen[str]:
    """``python -m ci ARGV`` in ``repo`` with ``backend``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CI_STATE_DIR": str(repo / ".ci-state"),
        "CI_STATE_BACKEND": backend,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "ci", "--config", str(repo / "pyproject.toml"), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def added_time(tmp: Path, runs: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of a deploy with each backend, alternating.

    CPU is user + system time of the command and every process it waited for (git, the
    deploy command): steadier than wall time on a shared machine.
    """
    repo = clone(remote_with_project(tmp, ["true"]), tmp / "one")
    times: dict[str, list[tuple[float, float]]] = {"local": [], "git": []}
    for n in range(runs):
        for backend in ("local", "git"):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            proc = ci(repo, backend, "deploy", "--env", "staging", "--version", f"1.{n}.0")
            _, err = proc.communicate()
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            times[backend].append((wall, cpu))
            if proc.returncode != 0:
                raise SystemExit(f"{backend} deploy failed: {err}")
    return times


def contend(tmp: Path, clones: int) -> tuple[list[float], float]:
    """Losers' exit times and the winner's time, all deploying at once."""
    remote = remote_with_project(tmp, ["sleep", "2"])
    repos = [clone(remote, tmp / f"c{n}") for n in range(clones)]
    start = time.perf_counter()
    procs = [
        ci(repo, "git", "deploy", "--env", "staging", "--version", f"2.0.{n}")
        for n, repo in enumerate(repos)
    ]
    losers, winner = [], 0.0
    pending = list(procs)
    while pending:
        for proc in list(pending):
            if proc.poll() is not None:
                pending.remove(proc)
                proc.communicate()
                elapsed = time.perf_counter() - start
                if proc.returncode == 4:
                    losers.append(elapsed)
                elif proc.returncode == 0:
                    winner = elapsed
                else:
                    raise SystemExit(f"a contender exited {proc.returncode}")
        time.sleep(0.02)
    if len(losers) != clones - 1:
        raise SystemExit(f"{clones - len(losers)} deploys won at once")
    return losers, winner


def queue(tmp: Path, clones: int) -> tuple[float, int, int]:
    """Everyone deploys with --wait; (total time, ledger entries, state commits)."""
    remote = remote_with_project(tmp, ["true"])
    repos = [clone(remote, tmp / f"q{n}") for n in range(clones)]
    start = time.perf_counter()
    procs = [
        ci(repo, "git", "deploy", "--env", "staging", "--version", f"3.0.{n}", "--wait", "900")
        for n, repo in enumerate(repos)
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a queued deploy failed: {err}")
    total = time.perf_counter() - start
    ledger = git(remote, "show", "refs/noxgate/state:ledger.jsonl").splitlines()
    entries = verify_lines(ledger)
    versions = [e.version for e in entries if e.outcome == "succeeded"]
    if sorted(versions) != sorted(f"3.0.{n}" for n in range(clones)):
        raise SystemExit("a queued deploy is missing from the ledger, or there twice")
    commits = git(remote, "rev-list", "--parents", "refs/noxgate/state").splitlines()
    if any(len(line.split()) > 2 for line in commits):
        raise SystemExit("the state ref is not one linear chain")
    return total, len(entries), len(commits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clones", type=int, default=20)
    parser.add_argument("--only-added", action="store_true", help="skip the contention runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "a").mkdir()
        times = added_time(root / "a", args.runs)
        for what, index in (("wall", 0), ("CPU", 1)):
            local = statistics.median(t[index] for t in times["local"])
            remote = statistics.median(t[index] for t in times["git"])
            print(
                f"deploy {what} time, median of {args.runs}: local {local:.2f} s, git "
                f"{remote:.2f} s, added by the git backend {remote - local:.2f} s"
            )
        if args.only_added:
            return
        (root / "b").mkdir()
        losers, winner = contend(root / "b", args.clones)
        print(
            f"{args.clones} clones at once: 1 won ({winner:.1f} s, its command sleeps 2 s), "
            f"{len(losers)} exited 4 after median {statistics.median(losers):.1f} s "
            f"(max {max(losers):.1f} s)"
        )
        (root / "c").mkdir()
        total, entries, commits = queue(root / "c", args.clones)
        print(
            f"{args.clones} clones with --wait: all deployed in turn in {total:.1f} s "
            f"({total / args.clones:.1f} s each); ledger {entries} entries, "
            f"{commits} commits in one linear chain"
        )


if __name__ == "__main__":
    main()
