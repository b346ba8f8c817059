"""Coverage: measured as coverage.py recommends, its floor, baselines and the allowed drop."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.core.errors import ConfigError, ToolError
from ci.core.files import write_json
from ci.core.gate import Finding
from ci.core.runner import Runner

BASELINE = "coverage-baseline.json"
# Set in the test gate's pytest run: its plugin (ci.gates.pytest_plugin) acts only there.
GATE_RUN = "NOXGATE_TEST_GATE"
TEST_RECORD = "NOXGATE_TEST_RECORD"  # where the plugin writes flaky tests and durations
SHARD = "NOXGATE_SHARD"  # I/N: the plugin keeps shard I of N
SHARD_DURATIONS = "NOXGATE_SHARD_DURATIONS"  # the recorded durations the split uses
SHARD_RECORD = "NOXGATE_SHARD_RECORD"  # where the plugin writes what the shard collected and ran
EPSILON = 1e-9  # a drop of exactly coverage_drop_max is allowed


@dataclass(frozen=True, slots=True, kw_only=True)
class Baseline:
    """A coverage percentage to compare against and where it came from."""

    coverage: float
    source: str


def load_baseline(reports: Path, state: Path, variant: str) -> Baseline | None:
    """``reports/coverage-baseline.json``, else the default branch's last recorded run, or None."""
    for path in (reports / BASELINE, state / BASELINE):
        if path.exists():
            value = _value(path, variant)
            if value is not None:
                return Baseline(coverage=value, source=str(path))
    return None


def _value(path: Path, variant: str) -> float | None:
    """The baseline in ``path``: one number for all Pythons, or one per Python version."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        raw: Any = data["coverage"]
        if isinstance(raw, Mapping):
            raw = raw.get(variant)
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise TypeError(raw)
    except (OSError, ValueError, KeyError, TypeError):
        msg = (
            f'{path} is not a coverage baseline (expected {{"coverage": 87.5}} or '
            '{"coverage": {"3.12": 87.5}}); fix or delete it'
        )
        raise ConfigError(msg) from None
    return float(raw)


def judge_drop(current: float, baseline: Baseline, drop_max: float) -> Finding | None:
    """A finding when coverage fell more than ``drop_max`` points below the baseline."""
    drop = baseline.coverage - current
    if drop <= drop_max + EPSILON:
        return None
    return Finding(
        rule="coverage-drop",
        message=(
            f"coverage {current:.1f}% dropped {drop:.1f} pt below the baseline of "
            f"{baseline.coverage:.1f}% (allowed: {drop_max:g} pt)"
        ),
    )


def on_default_branch(env: Mapping[str, str]) -> bool:
    """True for a push to the default branch (``CI_DEFAULT_BRANCH``, else main) on GitHub."""
    branch = env.get("CI_DEFAULT_BRANCH") or "main"
    return env.get("GITHUB_REF") == f"refs/heads/{branch}"


def record_baseline(
    state: Path, variant: str, coverage: float, *, sha: str, when: dt.datetime
) -> Path:
    """Keep ``coverage`` as the baseline of ``variant`` for later runs."""
    path = state / BASELINE
    values: dict[str, float] = {}
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8")).get("coverage", {})
            values = {str(k): float(v) for k, v in old.items()} if isinstance(old, dict) else {}
        except (OSError, ValueError, AttributeError):
            values = {}  # a damaged baseline is replaced by this run's value
    values[variant] = round(coverage, 2)
    write_json(path, {"coverage": values, "sha": sha, "at": when.isoformat(timespec="seconds")})
    return path


# --- measuring -----------------------------------------------------------------------------
#
# Coverage is measured the way coverage.py's documentation recommends for accurate results:
# ``coverage run -m pytest`` starts measurement before pytest imports any plugin, conftest
# or package. The project's own configuration (.coveragerc, setup.cfg, tox.ini or
# pyproject.toml: source, include, omit, branch, plugins, patch, [paths]) applies as it is;
# the gate adds ``--source`` only when that configuration selects no files itself.

# Read through coverage's public API, in the project's folder and environment, so the
# settings are the ones ``coverage run`` there would use.
_PROBE = r"""
import json, sys
try:
    import coverage
except ImportError:
    print(json.dumps({"missing": True}))
    raise SystemExit(0)
cov = coverage.Coverage()
def option(name, default=None):
    try:
        return cov.get_option(name)
    except Exception:
        return default
config = getattr(cov, "config", None)
print(json.dumps({
    "version": coverage.__version__,
    "config_file": getattr(config, "config_file", None),
    "source": option("run:source") or [],
    "source_pkgs": option("run:source_pkgs") or [],
    "source_dirs": option("run:source_dirs") or [],
    "include": option("run:include") or [],
    "patch": option("run:patch") or [],
    "branch": bool(option("run:branch")),
    "fail_under": float(option("report:fail_under") or 0.0),
}))
"""

# Combine every data file of the run (main process, xdist workers, subprocesses), print the
# project's own terminal report, write the XML report and print the total as JSON.
_FINISH = r"""
import json, sys
import coverage
from coverage.exceptions import NoDataError
data_file, xml_out, result_out, *paths = sys.argv[1:]
def result(**values):
    with open(result_out, "w", encoding="utf-8") as out:
        json.dump(values, out)
cov = coverage.Coverage(data_file=data_file)
try:
    cov.combine(data_paths=paths, strict=True)
    cov.save()
except NoDataError:
    pass  # no data file at all: reported below
cov.load()
try:
    cov.report(file=sys.stdout)
    total = cov.xml_report(outfile=xml_out)
except NoDataError as exc:
    result(total=None, reason=str(exc))
else:
    result(total=total)
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The project's coverage configuration as ``coverage run`` in its folder reads it."""

    version: str
    config_file: str | None
    selects_files: bool  # source, source_pkgs, source_dirs or include is set
    subprocess: bool  # [run] patch = subprocess: child processes are measured too
    branch: bool
    fail_under: float

    def where(self) -> str:
        """The file the settings came from, for messages."""
        return Path(self.config_file).name if self.config_file else "coverage's defaults"


@dataclass(frozen=True, slots=True, kw_only=True)
class Floor:
    """The coverage minimum the gate applies, and where it comes from."""

    value: float
    source: str


def floor(coverage_min: float, settings: Settings | None, declared: Floor | None = None) -> Floor:
    """One rule: the highest of ``coverage_min``, the project's fail_under, its declared floor.

    A floor the project set for itself (in its coverage configuration, or on a
    ``--fail-under`` of its own test command, see ``declared_floor``) is never lowered by
    adopting the bundle, and the bundle's floor applies to projects that set none.
    """
    best = Floor(value=coverage_min, source="coverage_min in [tool.ci.gates.test]")
    if settings is not None and settings.fail_under > best.value:
        best = Floor(value=settings.fail_under, source=f"fail_under in {settings.where()}")
    if declared is not None and declared.value > best.value:
        best = declared
    return best


# where projects run coverage themselves; their --fail-under is a floor they set
FLOOR_FILES = ("Makefile", "makefile", "GNUmakefile", "tox.ini", "noxfile.py")
# `coverage report --fail-under=99`, `--fail-under 99`, pytest-cov's `--cov-fail-under=99`,
# a noxfile's `"--fail-under", "99"` or `"--fail-under=99"`
_FAIL_UNDER = re.compile(
    r"""--(?:cov-)?fail-under(?:=|\s+|["']\s*,\s*["'])["']?(?P<value>\d+(?:\.\d+)?)"""
)


def declared_floor(root: Path) -> Floor | None:
    """The highest ``--fail-under`` on a command line of the project's Makefile, tox.ini or noxfile.

    A plain regular expression over each file's lines that are not comments: what a
    maintainer typed is read, no make, tox or nox is run.
    """
    best: Floor | None = None
    for name in FLOOR_FILES:
        path = root / name
        try:
            text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        except OSError:
            continue
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                continue
            for found in _FAIL_UNDER.finditer(line):
                value = float(found["value"])
                if value <= 100 and (best is None or value > best.value):
                    best = Floor(value=value, source=f"--fail-under={value:g} in {name}")
    return best


def probe(runner: Runner, root: Path, python: str, env: Mapping[str, str]) -> Settings:
    """The project's coverage settings; ToolError when coverage is missing, ConfigError if bad."""
    done = runner.run([python, "-c", _PROBE], cwd=root, env=env)
    last = done.stdout.strip().splitlines()[-1:] or [""]
    try:
        data = json.loads(last[0])
    except ValueError:
        data = None
    if not done or not isinstance(data, dict):
        reason = first_error_line(done.output) or f"exit status {done.returncode}"
        msg = f"the project's coverage configuration cannot be read: {reason}; fix it"
        raise ConfigError(msg)
    if data.get("missing"):
        msg = (
            "coverage is not installed in the test environment: add coverage to the "
            "test dependency group (uv add --group test coverage)"
        )
        raise ToolError(msg)
    selects = any(data.get(k) for k in ("source", "source_pkgs", "source_dirs", "include"))
    return Settings(
        version=str(data.get("version", "")),
        config_file=data.get("config_file") or None,
        selects_files=selects,
        subprocess="subprocess" in (data.get("patch") or []),
        branch=bool(data.get("branch")),
        fail_under=float(data.get("fail_under") or 0.0),
    )


def run_prefix(python: str, settings: Settings, packages: Sequence[str]) -> list[str]:
    """``python -m coverage run --parallel-mode [--source=...]``: what goes before ``-m pytest``."""
    argv = [python, "-m", "coverage", "run", "--parallel-mode"]
    if not settings.selects_files and packages:
        argv.append(f"--source={','.join(packages)}")
    return argv


def quiet_env(data_file: Path) -> dict[str, str]:
    """Env for a measured run: data in ``data_file``, no start-up measurement inherited."""
    # An outer measurement (the bundle's own tests measure themselves) must not start
    # coverage in the project's processes: empty values switch coverage's start-up hook off.
    return {
        "COVERAGE_FILE": str(data_file),
        "COVERAGE_PROCESS_START": "",
        "COVERAGE_PROCESS_CONFIG": "",
        "COVERAGE_RCFILE": "",
    }


def clear_data(data_file: Path) -> None:
    """Remove the data files an earlier run left next to ``data_file``."""
    for stale in data_file.parent.glob(data_file.name + "*"):
        stale.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Total:
    """The combined total, or why there is none."""

    percent: float | None
    reason: str = ""


def finish(
    runner: Runner,
    root: Path,
    python: str,
    env: Mapping[str, str],
    *,
    data_file: Path,
    xml: Path,
    extra_data: Sequence[Path] = (),
) -> Total:
    """Combine the run's data files (and ``extra_data``), print the report, write ``xml``."""
    result = data_file.with_name("coverage-total.json")
    result.unlink(missing_ok=True)
    paths = [str(data_file.parent), *map(str, extra_data)]
    argv = [python, "-c", _FINISH, str(data_file), str(xml), str(result), *paths]
    done = runner.run(argv, cwd=root, env=env, stream=True)
    try:
        data = json.loads(result.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if not done or not isinstance(data, dict):
        reason = first_error_line(done.output) or f"exit status {done.returncode}"
        msg = f"coverage could not combine or report the data: {reason}"
        raise ToolError(msg)
    total = data.get("total")
    if total is None:
        return Total(percent=None, reason=str(data.get("reason") or "no data"))
    return Total(percent=float(total))


_ERROR = re.compile(
    r"^\s*(?:INTERNALERROR>\s*|E\s+)?(?P<line>[\w.]*(?:Error|Exception|Warning|Exit)\b.*"
    r"|ERROR\b.*|\S.*?: error: .*)$"
)


def first_error_line(output: str) -> str:
    """The first line of ``output`` that names an error (a tool's own words), or ''."""
    for raw in output.splitlines():
        match = _ERROR.match(raw)
        # an argparse usage line only announces the error on the next line
        if match and match["line"].strip() and not match["line"].startswith("ERROR: usage:"):
            return match["line"].strip()[:300]
    return ""
