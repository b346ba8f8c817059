"""Performance benchmarks of the pipeline, run on a copy of the repository in a tmp folder.

    uv run python bench/run.py            # every figure, printed as a markdown section
    uv run python bench/run.py --write    # ... and recorded in docs/benchmarks.md

Each figure is the median of --runs runs (default 5) after one warm-up run; ratios compare
figures measured in the same run of this script. Nothing is changed in the repository
itself (except docs/benchmarks.md with --write).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Performance"
PYTHON = "3.12"
INVOKE = "invoke ci"
X = "\u00d7"  # the multiplication sign
# In-process time to list the tree, hash what the test gate reads and digest its key: what
# every no-op pays on top of starting Python.
KEY_TIMER = (
    "python -c 'import os, time; from ci import cache, clock, config, runner; "
    "c = config.load(); t = time.perf_counter(); "
    "s = cache.GateCache(c, runner.ProcessRunner(), clock.SystemClock(), dict(os.environ)); "
    's.key("test", c.default_python); s.save(); print(time.perf_counter() - t)\''
)


@dataclass
class Figure:
    name: str
    command: str
    samples: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    def cell(self) -> str:
        if not self.samples:
            return "not measured"
        if self.median < 0.1:  # in-process figures: milliseconds
            spread = f" ({min(self.samples) * 1e3:.1f}-{max(self.samples) * 1e3:.1f})"
            return f"{self.median * 1e3:.1f} ms{spread if len(self.samples) > 1 else ''}"
        spread = f" (min {min(self.samples):.2f}, max {max(self.samples):.2f})"
        return f"{self.median:.2f} s{spread if len(self.samples) > 1 else ''}"


class Project:
    """A committed copy of the repository with its own .venv; commands run as if activated."""

    def __init__(self, folder: Path) -> None:
        self.root = folder
        venv = folder / ".venv"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "GITHUB_"))}
        env.pop("CI", None)
        env.update(
            VIRTUAL_ENV=str(venv),
            PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            UV_PYTHON_DOWNLOADS="never",
        )
        env.pop("PYTHONHOME", None)
        self.env = env

    def run(self, command: str, *, check: bool = True, env: dict[str, str] | None = None) -> float:
        """Run a shell command in the copy; its wall time in seconds."""
        start = time.perf_counter()
        done = subprocess.run(
            command,
            shell=True,
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - start
        if check and done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
            msg = f"`{command}` exited {done.returncode}:\n{tail}"
            raise RuntimeError(msg)
        return elapsed

    def value(self, command: str) -> float:
        """Run a command that prints one number (seconds it measured itself)."""
        return float(self.output(command).strip().splitlines()[-1])

    def output(self, command: str) -> str:
        done = subprocess.run(
            command,
            shell=True,
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout + done.stderr


def make_copy(dest: Path) -> Project:
    """Copy the files git sees into ``dest``, commit them, and ``uv sync`` a .venv there."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = ROOT / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    project = Project(dest)
    for step in (
        "git init -q -b main",
        "git add -A",
        "git -c user.name=bench -c user.email=bench@example.invalid commit -q -m copy",
        "uv sync -q",
    ):
        project.run(step)
    return project


def measure(figure: Figure, run: Callable[[], float], runs: int, *, warmup: bool = True) -> Figure:
    if warmup:
        run()
    figure.samples = [run() for _ in range(runs)]
    print(f"  {figure.name}: {figure.cell()}", flush=True)
    return figure


def interleaved(
    figures: Sequence[tuple[Figure, Callable[[], float]]], runs: int, *, warmup: bool = True
) -> None:
    """Measure several figures in turns (a, b, a, b, ...) so load drifts hit them alike."""
    for _, run in figures if warmup else ():
        run()
    for _ in range(runs):
        for figure, run in figures:
            figure.samples.append(run())
    for figure, _ in figures:
        print(f"  {figure.name}: {figure.cell()}", flush=True)


def grow(project: Project, factor: int, base_files: int) -> int:
    """Add generated Python modules until the tree holds ``factor`` times ``base_files`` files."""
    sources = sorted((project.root / "ci").rglob("*.py"))
    gen = project.root / "generated"
    have = len(project.output("git ls-files").split())
    index = 0
    while have < factor * base_files:
        source = sources[index % len(sources)]
        target = gen / f"copy{index // len(sources)}" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text())
        have += 1
        index += 1
    project.run("git add -A && git -c user.name=b -c user.email=b@e.invalid commit -q -m grow")
    old = time.time() - 60  # like a checkout: not modified in the last seconds
    for path in gen.rglob("*"):
        os.utime(path, (old, old))
    return have


def tree_size(project: Project) -> tuple[int, int]:
    files = [project.root / p for p in project.output("git ls-files").split()]
    return len(files), sum(p.stat().st_size for p in files if p.is_file())


GROUPS = ("pipeline", "overhead", "env", "scaling")


def bench(runs: int, work: Path, groups: Sequence[str] = GROUPS, *, bytecode: bool = False) -> str:
    project = make_copy(work / "project")
    if bytecode:
        project.env.pop("PYTHONDONTWRITEBYTECODE", None)
    cpus = os.cpu_count() or 1
    print(f"copy at {project.root}; {runs} runs per figure", flush=True)
    figures: dict[str, Figure] = {}
    if "pipeline" in groups:
        figures.update(pipeline_figures(project, runs, cpus))
    if "overhead" in groups:
        figures.update(overhead_figures(project, runs))
    if "env" in groups:
        figures.update(env_figures(project, runs, work))
    if "gates" in groups:
        return gate_scaling(project, runs)
    if tuple(groups) != GROUPS:
        return render_some(figures, groups, runs, bytecode=bytecode)
    return render(figures, scaling_figures(project, runs), runs, cpus)


def render_some(
    figures: dict[str, Figure], groups: Sequence[str], runs: int, *, bytecode: bool
) -> str:
    """A figures-only table for a partial run (``--only``)."""
    flags = f"--only {','.join(groups)}" + (" --bytecode" if bytecode else "")
    load = os.getloadavg()
    lines = [
        f"Partial run: `uv run python bench/run.py --runs {runs} {flags}` "
        f"(load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end"
        + (", Python allowed to write bytecode in the copy" if bytecode else "")
        + ").",
        "",
        "| figure | command (in the copy) | median |",
        "|---|---|---|",
        *(f"| {f.name} | `{f.command}` | {f.cell()} |" for f in figures.values()),
    ]
    if "bare" in figures and "nox_lint" in figures:
        overhead = figures["nox_lint"].median - figures["bare"].median
        lines += [
            "",
            f"Session overhead (`nox -R -s lint` minus the bare tools): {overhead:.2f} s.",
        ]
    return "\n".join(lines) + "\n"


def pipeline_figures(project: Project, runs: int, cpus: int) -> dict[str, Figure]:
    """No-op vs warm --no-cache, and parallel vs sequential."""
    print("pipeline:", flush=True)
    project.run(INVOKE)  # first full run: fills the cache and creates the nox envs
    noop = measure(
        Figure("no-op `invoke ci` (every gate cached)", INVOKE), lambda: project.run(INVOKE), runs
    )
    par = Figure(
        f"warm `invoke ci --no-cache` (--jobs {cpus}, the default)", f"{INVOKE} --no-cache"
    )
    seq = Figure("warm `invoke ci --no-cache --jobs 1`", f"{INVOKE} --no-cache --jobs 1")
    # the first full run above was their warm-up: the nox envs exist and are synced
    interleaved(
        [(par, lambda: project.run(par.command)), (seq, lambda: project.run(seq.command))],
        runs,
        warmup=False,
    )
    return {"noop": noop, "par": par, "seq": seq}


def overhead_figures(project: Project, runs: int) -> dict[str, Figure]:
    """The lint session against the bare tools it runs."""
    print("session overhead:", flush=True)
    project.run("nox -s lint")  # -R skips installs: the session's env must exist first
    tools = "ruff check . && ruff format --check ."
    config = tomllib.loads((project.root / "pyproject.toml").read_text())
    if config.get("tool", {}).get("ci", {}).get("gates", {}).get("lint", {}).get("mypy"):
        tools += " && mypy"  # the lint gate runs mypy too here: the bare figure must as well
    bare = Figure(f"bare `{tools}`", tools)
    nox_lint = Figure("`nox -R -s lint` (gate runs: CI_NO_CACHE=1)", "CI_NO_CACHE=1 nox -R -s lint")
    nox_hit = Figure("`nox -R -s lint` (cache hit)", "nox -R -s lint")
    interleaved(
        [
            (bare, lambda: project.run(bare.command)),
            (nox_lint, lambda: project.run("nox -R -s lint", env={"CI_NO_CACHE": "1"})),
            (nox_hit, lambda: project.run(nox_hit.command)),
        ],
        runs,
    )
    return {"bare": bare, "nox_lint": nox_lint, "nox_hit": nox_hit}


def env_figures(project: Project, runs: int, work: Path) -> dict[str, Figure]:
    """Cold creation of the test env: uv (what the noxfile does) vs virtualenv + pip."""
    print("cold test env:", flush=True)
    envs = work / "envs"
    requirements = work / "test-requirements.txt"
    project.run(
        "uv export -q --locked --no-default-groups --group test --no-hashes --no-emit-project "
        f"-o {requirements}"
    )
    uv_cmd = (
        f"uv venv -q --python {PYTHON} {envs / 'uv'} && UV_PROJECT_ENVIRONMENT={envs / 'uv'} "
        f"uv sync -q --locked --no-default-groups --group test --python {envs / 'uv'}"
    )
    pip = envs / "pip" / "bin" / "pip"
    pip_cmd = (
        f"python -m virtualenv -q --python {PYTHON} {envs / 'pip'} && "
        f"{pip} install -q --disable-pip-version-check -r {requirements} && "
        f"{pip} install -q --disable-pip-version-check --no-deps -e ."
    )

    def fresh(command: str, folder: Path) -> Callable[[], float]:
        def run() -> float:
            shutil.rmtree(folder, ignore_errors=True)
            return project.run(command)

        return run

    uv_env = Figure("uv venv + uv sync --locked (test group)", uv_cmd.replace(str(work), "$TMP"))
    pip_env = Figure("virtualenv + pip install -r (test group)", pip_cmd.replace(str(work), "$TMP"))
    interleaved(
        [(uv_env, fresh(uv_cmd, envs / "uv")), (pip_env, fresh(pip_cmd, envs / "pip"))], runs
    )
    return {"uv_env": uv_env, "pip_env": pip_env}


def scaling_figures(project: Project, runs: int) -> list[tuple[int, int, int, dict[str, Figure]]]:
    """The no-op, the key and the lint/secrets gates at 1x, 4x and 16x the tree's files."""
    print("scaling:", flush=True)
    base_files, _ = tree_size(project)
    gates = project.output(
        "python -c 'from ci.gates.registry import BUILTIN; print(*(g.name for g in BUILTIN))'"
    ).split()
    scaled = []
    for factor in (1, 4, 16):
        if factor > 1:
            grow(project, factor, base_files)
        files, size = tree_size(project)
        print(f" {factor}x: {files} files, {size / 1024:.0f} KiB", flush=True)
        project.run(INVOKE)  # the new files are inputs: fill the cache again
        row = {
            "noop": measure(Figure("no-op invoke ci", INVOKE), lambda: project.run(INVOKE), runs),
            "key": measure(
                Figure("key of the test gate, warm index", KEY_TIMER),
                lambda: project.value(KEY_TIMER),
                runs,
            ),
        }
        index = project.root / ".ci-state" / "cache" / "files.json"

        def cold_key(index: Path = index) -> float:
            index.unlink(missing_ok=True)
            return project.value(KEY_TIMER)

        row["cold_key"] = measure(
            Figure("key of the test gate, no index", f"rm files.json; {KEY_TIMER}"), cold_key, runs
        )
        for gate in ("lint", "secrets"):
            if gate in gates:
                command = f"python -m ci gate --no-cache {gate}"
                row[gate] = measure(
                    Figure(f"{gate} gate", command),
                    lambda command=command: project.run(command),
                    runs,
                )
        scaled.append((factor, files, size, row))
    return scaled


def gate_scaling(project: Project, runs: int) -> str:
    """The lint and secrets gates, uncached, at 1x, 4x and 16x the files (``--only gates``)."""
    print("gate scaling:", flush=True)
    base_files, _ = tree_size(project)
    lines = [
        f"`uv run python bench/run.py --only gates --runs {runs}`: median of {runs} runs after a "
        "warm-up, each gate run with `python -m ci gate --no-cache GATE` in the copy.",
        "",
        "| size | lint gate | secrets gate |",
        "|---|---|---|",
    ]
    for factor in (1, 4, 16):
        if factor > 1:
            grow(project, factor, base_files)
        files, size = tree_size(project)
        print(f" {factor}x: {files} files, {size / 1024:.0f} KiB", flush=True)
        cells = []
        for gate in ("lint", "secrets"):
            command = f"python -m ci gate --no-cache {gate}"
            figure = Figure(f"{gate} gate", command)
            cells.append(measure(figure, lambda c=command: project.run(c), runs).cell())
        lines.append(
            f"| {factor}{X} ({files} files, {size / 1024:.0f} KiB) | {' | '.join(cells)} |"
        )
    return "\n".join(lines) + "\n"


def ratio(a: Figure, b: Figure) -> float:
    return a.median / b.median


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def render(
    f: dict[str, Figure],
    scaled: list[tuple[int, int, int, dict[str, Figure]]],
    runs: int,
    cpus: int,
) -> str:
    noop_x = ratio(f["par"], f["noop"])
    par_x = ratio(f["par"], f["seq"])
    env_x = ratio(f["pip_env"], f["uv_env"])
    overhead = f["nox_lint"].median - f["bare"].median
    load = os.getloadavg()
    goals = [
        ("no-op `invoke ci` <= 1.5 s", f"{f['noop'].median:.2f} s", f["noop"].median <= 1.5),
        (
            f"no-op >= 10{X} faster than warm `invoke ci --no-cache`",
            f"{noop_x:.1f}{X}",
            noop_x >= 10,
        ),
        (
            f"parallel / sequential (warm, `--no-cache`) <= 0.75{X}",
            f"{par_x:.2f}{X}",
            par_x <= 0.75,
        ),
        (
            f"cold test env: uv >= 3{X} faster than virtualenv + pip",
            f"{env_x:.1f}{X}",
            env_x >= 3,
        ),
        (
            "session overhead (`nox -R -s lint` minus the bare tools) <= 1.0 s",
            f"{overhead:.2f} s",
            overhead <= 1.0,
        ),
    ]
    lines = [
        HEADING,
        "",
        "Reproduce every figure below with `uv run python bench/run.py` (add `--write` to record",
        "them here). The script copies the files git sees into a tmp folder, commits them,",
        "runs `uv sync` there and measures in that copy with its `.venv` activated. Each figure",
        f"is the median of {runs} runs after one warm-up run (min and max in brackets); ratios",
        "compare figures from the same run of the script. Interleaved figures were measured in",
        "turns (a, b, a, b, ...) so that load on the machine hits them alike.",
        "",
        f"Machine: {platform.platform()}, {cpus} CPUs, Python {platform.python_version()}, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) at the end.",
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r} here, so "
        "every process compiles its modules afresh.",
        "",
        "| goal | measured | verdict |",
        "|---|---|---|",
        *(f"| {goal} | {value} | {verdict(ok)} |" for goal, value, ok in goals),
        "",
        "| figure | command (in the copy) | median |",
        "|---|---|---|",
    ]
    for key in ("noop", "par", "seq", "bare", "nox_lint", "nox_hit", "uv_env", "pip_env"):
        figure = f[key]
        lines.append(f"| {figure.name} | `{figure.command}` | {figure.cell()} |")
    lines += [
        "",
        f"Scaling: the tree grown to 4{X} and 16{X} its number of files with generated copies",
        "of the `ci/` modules (committed, so they are inputs of lint and test); after each growth",
        'one full `invoke ci` fills the cache again. "key" is the in-process time to list the',
        "tree (`git ls-files`), hash the files the test gate reads and digest its key (what a",
        "no-op pays besides starting Python), with the file index warm and with it deleted",
        "(every file read and hashed again).",
        "",
    ]
    names = [
        ("noop", "no-op `invoke ci`"),
        ("key", "key, warm index"),
        ("cold_key", "key, no index"),
        ("lint", "lint gate (`python -m ci gate --no-cache lint`)"),
    ]
    if any("secrets" in row for *_, row in scaled):
        names.append(("secrets", "secrets gate (`python -m ci gate --no-cache secrets`)"))
    header = "| size | " + " | ".join(label for _, label in names) + " |"
    lines += [header, "|---" * (len(names) + 1) + "|"]
    for factor, files, size, row in scaled:
        cells = [row[k].cell() if k in row else "n/a" for k, _ in names]
        lines.append(
            f"| {factor}{X} ({files} files, {size / 1024:.0f} KiB) | " + " | ".join(cells) + " |"
        )
    if not any("secrets" in row for *_, row in scaled):
        lines += [
            "",
            "The secrets gate is not part of this tree yet, so it has no scaling figures.",
        ]
    return "\n".join(lines) + "\n"


def record(section: str) -> None:
    """Replace (or add) the Performance section of docs/benchmarks.md."""
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find(HEADING + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + ("" if end == -1 else text[end:])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"recorded in {path}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (default 5)")
    parser.add_argument(
        "--write", action="store_true", help="record the figures in docs/benchmarks.md"
    )
    parser.add_argument("--keep", action="store_true", help="keep the tmp copy and print its path")
    parser.add_argument(
        "--only",
        default=",".join(GROUPS),
        help=(
            f"comma-separated figure groups to measure (default: all of {','.join(GROUPS)}; "
            "`gates` alone: the lint and secrets gates at 1x, 4x, 16x the tree)"
        ),
    )
    parser.add_argument(
        "--bytecode",
        action="store_true",
        help="let Python write .pyc files in the copy (PYTHONDONTWRITEBYTECODE unset)",
    )
    args = parser.parse_args(argv)
    groups = [g for g in (*GROUPS, "gates") if g in args.only.split(",")]
    work = Path(tempfile.mkdtemp(prefix="noxgate-bench-"))
    try:
        section = bench(args.runs, work, groups, bytecode=args.bytecode)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(section)
    if args.write and tuple(groups) == GROUPS:
        record(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
