"""The test gate: headless pytest (or the project's unittest) under coverage, reports, a floor."""

from __future__ import annotations

import configparser
import hashlib
import importlib.util
import itertools
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ci.core.config import state_dir
from ci.core.errors import ConfigError, ToolError
from ci.core.files import atomic_write_text, mask_file
from ci.core.gate import Finding, Gate, GateContext, GateInputs, GateResult, GateStatus
from ci.core.runner import Completed
from ci.gates import coverage as coverage_module
from ci.gates import shards, suites, unittest_runner
from ci.testing import faults

HEADLESS_ENV = {"CI": "1", "UI_HEADLESS": "1", "MPLBACKEND": "Agg", "QT_QPA_PLATFORM": "offscreen"}
_PYTEST_VERDICTS = {0, 1, 2, 5}  # passed, failed, interrupted/collection errors, no tests


@dataclass(frozen=True, slots=True, kw_only=True)
class JunitSummary:
    """Counts and failures read from a junit XML file."""

    tests: int
    failures: int
    errors: int
    skipped: int
    failed: tuple[Finding, ...]


SHARD_ENV = "CI_TEST_SHARD"  # I/N: run shard I of N (a matrix job of a sharded suite)
COMBINE_ENV = "CI_TEST_COMBINE"  # a folder of shard outputs: judge them together, once


def run(ctx: GateContext, pytest_args: Sequence[str] = ()) -> GateResult:
    """Run pytest headless under coverage on this interpreter, then judge tests and coverage.

    With ``CI_TEST_SHARD=I/N`` only shard I runs and its outputs go to
    ``reports/shards/<python>/`` (tests judged, coverage left for the combined run); with
    ``CI_TEST_COMBINE=DIR`` nothing runs: the shards' junit and coverage in DIR are checked
    to add up to the whole suite, merged, and judged once against the floor.
    """
    if ctx.env.get(COMBINE_ENV):
        return combine(ctx, Path(ctx.env[COMBINE_ENV]))
    start = time.monotonic()
    variant = ctx.python
    policy = ctx.config.gate("test")
    chosen = suites.choose(
        suites.read_facts(ctx.root, ctx.config.tests), ctx.config.tests, policy.runner
    )
    if chosen.runner == "unittest":
        return run_unittest(ctx, chosen, pytest_args)
    shard = _shard(ctx, policy.shards)
    if variant != ctx.config.default_python:
        pytest_args = [*policy.secondary_args, *pytest_args]  # e.g. slow end-to-end tests once
    reports = ctx.reports
    out = reports if shard is None else shard_dir(reports, variant)
    scratch = scratch_dir(ctx.root, variant)
    scratch.mkdir(parents=True, exist_ok=True)
    suffix = variant if shard is None else str(shard.index)
    junit = out / f"junit-{suffix}.xml"
    coverage_xml = out / f"coverage-{suffix}.xml"
    data_file = scratch / ".coverage"
    coverage_module.clear_data(data_file)
    record = scratch / "test-record.json"
    for stale in (junit, coverage_xml, record):
        stale.unlink(missing_ok=True)
    state = state_dir(ctx.root, ctx.env)
    env = _pytest_env(scratch, data_file, record)
    if shard is not None:
        env |= _shard_env(ctx, shard, scratch, out, state)
    workers, notes = worker_args(policy.workers, xdist=_installed("xdist"))
    reruns = rerun_args(policy.reruns, installed=_installed("pytest_rerunfailures"))
    python = sys.executable
    settings = coverage_module.probe(ctx.runner, ctx.root, python, env)
    argv = [
        *coverage_module.run_prefix(python, settings, ctx.config.packages),
        "-m",
        "pytest",
        f"--basetemp={scratch / 'pytest'}",
        f"--junitxml={junit}",
        *_plugin_args(),
        *workers,
        *reruns,
        *pytest_args,
    ]
    # fault injection: CI_INJECT_FAULT=test adds a planted failing test
    named_paths = any((ctx.root / a).exists() for a in pytest_args if not a.startswith("-"))
    suite = [] if named_paths else [ctx.config.tests]
    with faults.failing_test_paths(ctx.reports / "faults", ctx.env, suite) as planted:
        done = ctx.runner.run([*argv, *planted], cwd=ctx.root, env=env, stream=True)
    # pytest and our plugin wrote them (failure messages, test ids and all): masked before
    # anyone reads them
    for written in (junit, record, *_shard_record(env)):
        mask_file(written)
    if done.returncode not in _PYTEST_VERDICTS:
        reason = coverage_module.first_error_line(done.output) or "see its output above"
        msg = f"pytest could not run (exit status {done.returncode}): {reason}"
        raise ToolError(msg)
    junit_summary = read_junit(junit) if junit.exists() else None
    if junit_summary is None and done.returncode == 0:
        rel = junit.relative_to(ctx.root) if junit.is_relative_to(ctx.root) else junit
        msg = (
            f"pytest exited 0 but wrote no junit report ({rel}), so no test result can be read: "
            "an argument such as --version, --help or --markers, or a plugin turning junitxml "
            "off, stopped it before any test; run the gate without it"
        )
        raise ToolError(msg)
    total = coverage_module.finish(
        ctx.runner, ctx.root, python, env, data_file=data_file, xml=coverage_xml
    )
    mask_file(coverage_xml)  # coverage wrote it
    flaky = read_flaky(record)
    status, summary, findings, variant = _verdict(
        ctx,
        done,
        shard=shard,
        junit_summary=junit_summary,
        total=total,
        settings=settings,
        flaky=flaky,
        record=record,
        data_file=data_file,
    )
    artifacts = tuple(str(p.relative_to(ctx.root)) for p in (junit, coverage_xml) if p.exists())
    return GateResult(
        gate="test",
        variant=variant,
        status=status,
        duration_s=time.monotonic() - start,
        summary=summary,
        findings=findings,
        artifacts=artifacts,
        warnings=(
            *notes,
            *flaky_notes(flaky, policy.reruns),
            *((chosen.note,) if chosen.note else ()),
        ),
        flaky=tuple(f.test for f in flaky),
        coverage=None if shard is not None else total.percent,  # shards: judged combined
    )


_UNITTEST_VERDICTS = {0, 1, 5}  # passed, failed, no tests (ci.gates.unittest_runner)


def run_unittest(ctx: GateContext, suite: suites.Suite, args: Sequence[str] = ()) -> GateResult:
    """Run the suite with ``python -m unittest`` under coverage, as the project runs it.

    unittest finds and counts the tests itself (``load_tests`` hooks and all; subtests
    inside their test), through ``ci.gates.unittest_runner``, which writes the junit
    report from unittest's result object. ``args`` replace the detected unittest arguments.
    """
    start = time.monotonic()
    variant = ctx.python
    policy = ctx.config.gate("test")
    if policy.shards != 1 or ctx.env.get(SHARD_ENV):
        msg = (
            f"[tool.ci.gates.test] shards = {policy.shards} needs the pytest runner, and this "
            f'suite runs with unittest ({suite.reason}): set shards = 1, or runner = "pytest"'
        )
        raise ConfigError(msg)
    notes = [
        f"{key} applies to pytest only; the suite runs with unittest ({suite.reason})"
        for key, value in (
            ("workers", policy.workers),
            ("reruns", policy.reruns),
            ("secondary_args", policy.secondary_args),
        )
        if value
    ]
    reports = ctx.reports
    scratch = scratch_dir(ctx.root, variant)
    scratch.mkdir(parents=True, exist_ok=True)
    junit = reports / f"junit-{variant}.xml"
    coverage_xml = reports / f"coverage-{variant}.xml"
    data_file = scratch / ".coverage"
    coverage_module.clear_data(data_file)
    record = scratch / "test-record.json"
    for stale in (junit, coverage_xml, record):
        stale.unlink(missing_ok=True)
    env = _pytest_env(scratch, data_file, record) | {unittest_runner.JUNIT_ENV: str(junit)}
    python = sys.executable
    settings = coverage_module.probe(ctx.runner, ctx.root, python, env)
    unittest_args = list(args) or list(suite.args)
    argv = [
        *coverage_module.run_prefix(python, settings, ctx.config.packages),
        "-m",
        "ci.gates.unittest_runner",
        *unittest_args,
    ]
    # fault injection: CI_INJECT_FAULT=test adds a planted failing test to unittest's suite
    with faults.failing_test_paths(ctx.reports / "faults", ctx.env, []) as planted:
        if planted:
            env[unittest_runner.EXTRA_ENV] = os.pathsep.join(planted)
        done = ctx.runner.run(argv, cwd=ctx.root, env=env, stream=True)
    mask_file(junit)  # failure messages and tracebacks: masked before anyone reads them
    if done.returncode not in _UNITTEST_VERDICTS or (done.returncode != 5 and not junit.exists()):
        reason = coverage_module.first_error_line(done.output) or "see its output above"
        given = "given on the command line" if args else suite.reason
        msg = (
            f"python -m unittest {shlex.join(unittest_args)} ({given}) could not run "
            f"(exit status {done.returncode}): {reason}"
        )
        raise ToolError(msg)
    junit_summary = read_junit(junit) if junit.exists() else None
    total = coverage_module.finish(
        ctx.runner, ctx.root, python, env, data_file=data_file, xml=coverage_xml
    )
    mask_file(coverage_xml)
    status, summary, findings, variant = _verdict(
        ctx,
        done,
        shard=None,
        junit_summary=junit_summary,
        total=total,
        settings=settings,
        flaky=(),
        record=record,
        data_file=data_file,
        tool="unittest",
    )
    artifacts = tuple(str(p.relative_to(ctx.root)) for p in (junit, coverage_xml) if p.exists())
    return GateResult(
        gate="test",
        variant=variant,
        status=status,
        duration_s=time.monotonic() - start,
        summary=f"unittest: {summary}",
        findings=findings,
        artifacts=artifacts,
        warnings=tuple(notes),
        coverage=total.percent,
    )


def shard_dir(reports: Path, variant: str) -> Path:
    """Where the shards of ``variant`` leave junit, coverage data and records."""
    return reports / "shards" / variant


def _shard(ctx: GateContext, configured: int) -> shards.Shard | None:
    """The shard this run is, from ``CI_TEST_SHARD`` (None: the whole suite)."""
    raw = ctx.env.get(SHARD_ENV, "")
    if not raw:
        return None
    shard = shards.Shard.parse(raw)
    if shard.count != configured:
        msg = (
            f"{SHARD_ENV}={raw} does not match [tool.ci.gates.test] shards = {configured}: "
            "regenerate the workflow's shard matrix"
        )
        raise ConfigError(msg)
    return shard


def _shard_env(
    ctx: GateContext, shard: shards.Shard, scratch: Path, out: Path, state: Path
) -> dict[str, str]:
    """What the plugin needs to keep this shard's tests: the split's durations, a record."""
    durations = scratch / "shard-durations.json"
    atomic_write_text(durations, json.dumps(shards.load_durations(ctx.root, state)))
    record = out / f"record-{shard.index}.json"
    record.unlink(missing_ok=True)
    return {
        coverage_module.SHARD: str(shard),
        coverage_module.SHARD_DURATIONS: str(durations),
        coverage_module.SHARD_RECORD: str(record),
    }


def _shard_record(env: dict[str, str]) -> tuple[Path, ...]:
    """The shard record the plugin writes in this run, if it is a shard's run."""
    record = env.get(coverage_module.SHARD_RECORD)
    return (Path(record),) if record else ()


def _keep_shard_outputs(out: Path, shard: shards.Shard, data_file: Path, record: Path) -> None:
    """Keep the shard's combined coverage data and test record beside its junit."""
    if data_file.exists():
        shutil.copyfile(data_file, out / f"coverage-{shard.index}.data")
    if record.exists():
        shutil.copyfile(record, out / f"tests-{shard.index}.json")


def _keep_durations(state: Path, record: Path) -> None:
    """Record this run's test durations for the shard split (a failure only costs balance)."""
    try:
        measured = json.loads(record.read_text(encoding="utf-8"))["durations"]
        shards.record_durations(state, measured)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return


def _verdict(
    ctx: GateContext,
    done: Completed,
    *,
    shard: shards.Shard | None,
    junit_summary: JunitSummary | None,
    total: coverage_module.Total,
    settings: coverage_module.Settings,
    flaky: Sequence[Flaky],
    record: Path,
    data_file: Path,
    tool: str = "pytest",
) -> tuple[GateStatus, str, tuple[Finding, ...], str]:
    """Judge one run: a shard's tests alone, or a whole run's tests and coverage floor."""
    policy = ctx.config.gate("test")
    variant = ctx.python
    state = state_dir(ctx.root, ctx.env)
    if shard is not None:
        _keep_shard_outputs(shard_dir(ctx.reports, variant), shard, data_file, record)
        status, summary, findings = judge(
            done.returncode,
            junit_summary,
            None,
            0,
            output=done.output,
            flaky=flaky,
            reruns=policy.reruns,
            shard=str(shard),
            tool=tool,
        )
        variant = f"{variant}-shard{shard.index}of{shard.count}"
    else:
        _keep_durations(state, record)  # only whole runs: every shard must split alike
        baseline = coverage_module.load_baseline(ctx.reports, state, variant)
        status, summary, findings = judge(
            done.returncode,
            junit_summary,
            total.percent,
            coverage_module.floor(
                policy.coverage_min, settings, coverage_module.declared_floor(ctx.root)
            ),
            baseline=baseline,
            drop_max=policy.coverage_drop_max,
            output=done.output,
            no_data=total.reason,
            flaky=flaky,
            reruns=policy.reruns,
            tool=tool,
        )
        if total.percent is not None and status is GateStatus.PASSED:
            _keep_baseline(ctx, state, variant, total.percent)
    return status, summary, findings, variant


def _pytest_env(scratch: Path, data_file: Path, record: Path) -> dict[str, str]:
    """What pytest runs with: headless, its own TMPDIR, coverage quiet, the gate's record."""
    return {
        **HEADLESS_ENV,
        "TMPDIR": str(scratch),
        **coverage_module.quiet_env(data_file),
        coverage_module.GATE_RUN: "1",
        coverage_module.TEST_RECORD: str(record),
    }


def combine(ctx: GateContext, folder: Path) -> GateResult:
    """Judge the shards in ``folder`` as one run: all present, adding up, coverage combined."""
    start = time.monotonic()
    variant = ctx.python
    policy = ctx.config.gate("test")
    folder = folder if folder.is_absolute() else ctx.root / folder
    records = [shards.read_record(p) for p in sorted(folder.glob("record-*.json"))]
    problems = shards.check_union(records, policy.shards)
    if problems:
        msg = f"the test shards in {folder} do not add up to the suite: {'; '.join(problems)}"
        raise ToolError(msg)
    reports = ctx.reports
    junit = reports / f"junit-{variant}.xml"
    coverage_xml = reports / f"coverage-{variant}.xml"
    merge_junit([folder / f"junit-{r.shard.index}.xml" for r in records], junit)
    scratch = scratch_dir(ctx.root, variant)
    scratch.mkdir(parents=True, exist_ok=True)
    data_file = scratch / ".coverage"
    coverage_module.clear_data(data_file)
    env = {**coverage_module.quiet_env(data_file)}
    python = sys.executable
    settings = coverage_module.probe(ctx.runner, ctx.root, python, env)
    data = sorted(folder.glob("coverage-*.data"))
    total = coverage_module.finish(
        ctx.runner, ctx.root, python, env, data_file=data_file, xml=coverage_xml, extra_data=data
    )
    flaky = tuple(f for p in sorted(folder.glob("tests-*.json")) for f in read_flaky(p))
    junit_summary = read_junit(junit)
    state = state_dir(ctx.root, ctx.env)
    failed = junit_summary.failures + junit_summary.errors
    status, summary, findings = judge(
        1 if failed else 0,
        junit_summary,
        total.percent,
        coverage_module.floor(
            policy.coverage_min, settings, coverage_module.declared_floor(ctx.root)
        ),
        baseline=coverage_module.load_baseline(reports, state, variant),
        drop_max=policy.coverage_drop_max,
        no_data=total.reason,
        flaky=flaky,
        reruns=policy.reruns,
    )
    if total.percent is not None and status is GateStatus.PASSED:
        _keep_baseline(ctx, state, variant, total.percent)
    artifacts = tuple(str(p.relative_to(ctx.root)) for p in (junit, coverage_xml) if p.exists())
    return GateResult(
        gate="test",
        variant=variant,
        status=status,
        duration_s=time.monotonic() - start,
        summary=f"{len(records)} shards: {summary}",
        findings=findings,
        artifacts=artifacts,
        warnings=flaky_notes(flaky, policy.reruns),
        flaky=tuple(f.test for f in flaky),
        coverage=total.percent,
    )


def merge_junit(parts: Sequence[Path], target: Path) -> None:
    """One junit file holding every suite of ``parts`` (ToolError when one is missing)."""
    merged = ET.Element("testsuites")
    for part in parts:
        try:
            root = ET.parse(part).getroot()  # noqa: S314 - our own pytest's output
        except (OSError, ET.ParseError) as exc:
            msg = f"{part} is not a readable junit report ({exc}); re-run that shard"
            raise ToolError(msg) from None
        merged.extend([root] if root.tag == "testsuite" else list(root.iter("testsuite")))
    atomic_write_text(target, ET.tostring(merged, encoding="unicode"))


def worker_args(workers: int | str | None, *, xdist: bool) -> tuple[list[str], tuple[str, ...]]:
    """pytest-xdist arguments for ``[tool.ci.gates.test] workers``, and a note when it cannot.

    Unset (None), the bundle adds nothing: the project's suite runs as its own pytest
    configuration says (xdist only where its addopts turn it on), since an option the
    bundle added must not fail a suite that passes the project's own way.
    """
    if workers is None:
        return [], ()
    if not xdist:
        if workers in ("auto", 1):
            note = "pytest-xdist is not installed in the test environment: tests ran in one process"
            return [], (note,) if workers == "auto" else ()
        msg = (
            f"[tool.ci.gates.test] workers = {workers} needs pytest-xdist: add it to the test "
            "dependency group (uv add --group test pytest-xdist)"
        )
        raise ConfigError(msg)
    if workers == 1:
        return ["-n", "0"], ()  # one process, even where the project's addopts say otherwise
    # loadgroup: tests marked xdist_group("name") run one after another on one worker
    return ["-n", str(workers), "--dist", "loadgroup"], ()


def rerun_args(reruns: int, *, installed: bool) -> list[str]:
    """pytest-rerunfailures arguments: failed tests rerun so a flaky one is told from a broken one.

    With ``reruns = 0`` a failed test is still rerun once, to tell flaky from broken; that
    rerun never turns the gate green.
    """
    if not installed:
        if reruns:
            msg = (
                f"[tool.ci.gates.test] reruns = {reruns} needs pytest-rerunfailures: add it to "
                "the test dependency group (uv add --group test pytest-rerunfailures)"
            )
            raise ConfigError(msg)
        return []
    return ["--reruns", str(max(reruns, 1))]


@dataclass(frozen=True, slots=True, kw_only=True)
class Flaky:
    """A test that failed, then passed when rerun in the same run."""

    test: str
    reruns: int


def read_flaky(path: Path) -> tuple[Flaky, ...]:
    """The flaky tests the gate's pytest plugin recorded (none when it wrote nothing)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return tuple(Flaky(test=str(f["test"]), reruns=int(f["reruns"])) for f in data["flaky"])
    except (OSError, ValueError, KeyError, TypeError):
        return ()


def flaky_notes(flaky: Sequence[Flaky], reruns: int) -> tuple[str, ...]:
    """One warning line per flaky test, for the summary and the run history."""
    counted = "allowed" if reruns else "not counted: reruns = 0"
    return tuple(
        f"flaky test {f.test}: failed, then passed on rerun {f.reruns} ({counted})" for f in flaky
    )


def _installed(module: str) -> bool:
    """True when ``module`` can be imported here (the test session's environment)."""
    return importlib.util.find_spec(module) is not None


def _plugin_args() -> list[str]:
    """Switch pytest-cov off where it is installed: coverage already measures from start-up."""
    # pytest-cov starts measuring after plugins and conftest files imported the package,
    # and a --cov in the project's addopts would measure a second time.
    args = ["-p", "ci.gates.pytest_plugin"]
    return [*args, "--no-cov"] if _installed("pytest_cov") else args


def _keep_baseline(ctx: GateContext, state: Path, variant: str, coverage: float) -> None:
    """On the default branch, this run's coverage becomes the baseline later runs compare to."""
    if coverage_module.on_default_branch(ctx.env):
        sha = ctx.env.get("GITHUB_SHA", "")
        coverage_module.record_baseline(state, variant, coverage, sha=sha, when=ctx.clock.now())


def scratch_dir(root: Path, variant: str) -> Path:
    """A per-project, per-Python temp folder outside the tree (tests must not see our config)."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"noxgate-{digest}" / f"test-{variant}"


def judge(
    returncode: int,
    junit: JunitSummary | None,
    coverage: float | None,
    floor: coverage_module.Floor | float,
    *,
    baseline: coverage_module.Baseline | None = None,
    drop_max: float = 0.5,
    output: str = "",
    no_data: str = "",
    flaky: Sequence[Flaky] = (),
    reruns: int = 0,
    shard: str = "",
    tool: str = "pytest",
) -> tuple[GateStatus, str, tuple[Finding, ...]]:
    """The verdict from the runner's exit status, its junit counts, coverage and its baseline.

    A failed verdict's summary always ends with why: the first failing test, the floor
    that was missed, or the first error line of the runner's (``tool``'s) output.
    """
    if not isinstance(floor, coverage_module.Floor):
        floor = coverage_module.Floor(value=floor, source="coverage_min in [tool.ci.gates.test]")
    if returncode == 5 or (junit is not None and junit.tests == 0):
        return GateStatus.FAILED, f"no tests ran ({tool} exit 5): check the test paths", ()
    findings = list(junit.failed if junit else ())
    parts = []
    if junit is not None:
        passed = junit.tests - junit.failures - junit.errors - junit.skipped
        parts.append(
            f"{passed} passed, {junit.failures + junit.errors} failed, {junit.skipped} skipped"
        )
    if flaky:
        parts.append(f"{len(flaky)} flaky")
        if not reruns:  # a rerun may not turn the gate green
            findings += [
                Finding(
                    rule="flaky",
                    message=f"{f.test} failed, then passed on rerun; [tool.ci.gates.test] "
                    "reruns = 0, so a rerun does not count: fix the test or allow reruns",
                    file=f.test.split("::", 1)[0],
                )
                for f in flaky
            ]
    if shard:
        parts.append("coverage judged when the shards are combined")
    elif coverage is None:
        why = f" ({no_data.rstrip('.')})" if no_data else ""
        findings.append(
            Finding(
                rule="coverage",
                message=f"no coverage data was collected{why}: check that [tool.ci] packages "
                "or the project's coverage source names the packages the tests import",
            )
        )
    else:
        parts.append(f"coverage {coverage:.1f}% (min {floor.value:g}%)")
        if coverage < floor.value - coverage_module.EPSILON:
            findings.append(
                Finding(
                    rule="coverage",
                    message=f"coverage {coverage:.1f}% is below the minimum of "
                    f"{floor.value:g}% ({floor.source})",
                )
            )
        if baseline is not None:
            parts[-1] += f", baseline {baseline.coverage:.1f}%"
            dropped = coverage_module.judge_drop(coverage, baseline, drop_max)
            if dropped is not None:
                findings.append(dropped)
    if returncode != 0 and not any(f.rule in {"test", "flaky"} for f in findings):
        line = coverage_module.first_error_line(output)
        detail = f": {line}" if line else "; see its output above"
        findings.append(
            Finding(
                rule=tool,
                message=f"{tool} exited with status {returncode} although no test failed{detail}",
            )
        )
    status = GateStatus.FAILED if findings else GateStatus.PASSED
    summary = "; ".join(parts) or f"{tool} exit {returncode}"
    if shard:
        summary = f"shard {shard}: {summary}"
    if findings:
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        summary += f"; failed: {findings[0].message}{more}"
    return status, summary, tuple(findings)


# pytest options that choose or order the tests from what .pytest_cache recorded
CACHE_READING_OPTIONS = frozenset(
    {
        "--lf",
        "--last-failed",
        "--ff",
        "--failed-first",
        "--nf",
        "--new-first",
        "--sw",
        "--stepwise",
        "--sw-skip",
        "--stepwise-skip",
        "--sw-reset",
        "--stepwise-reset",
        "--randomly-seed=last",  # pytest-randomly: the seed of the last run
    }
)
# where pytest reads addopts: (file, section); pyproject.toml is read apart
_INI_FILES: tuple[tuple[str, str], ...] = (
    ("pytest.ini", "pytest"),
    (".pytest.ini", "pytest"),
    ("tox.ini", "pytest"),
    ("setup.cfg", "tool:pytest"),
)


def reads_pytest_cache(root: Path, args: Sequence[str]) -> str:
    """Why pytest would pick tests from .pytest_cache in this run (never keyed), or ""."""
    given = [*args]
    for words in _addopts(root):
        given += words
    options = set(given)
    options |= {f"{a}={b}" for a, b in itertools.pairwise(given) if a == "--randomly-seed"}
    found = sorted(options & CACHE_READING_OPTIONS)
    if not found:
        return ""
    return (
        f"pytest {' '.join(found)} picks tests from .pytest_cache, which no key covers: "
        "such a test run is never cached"
    )


def _addopts(root: Path) -> list[list[str]]:
    """The addopts of every pytest config file in ``root`` (unreadable ones count as none)."""
    found: list[list[str]] = []
    try:
        with (root / "pyproject.toml").open("rb") as handle:
            tool = tomllib.load(handle).get("tool", {})
    except (OSError, tomllib.TOMLDecodeError):
        tool = {}
    pytest_table = tool.get("pytest", {}) if isinstance(tool, dict) else {}
    for table in (pytest_table, pytest_table.get("ini_options", {})):
        value = table.get("addopts") if isinstance(table, dict) else None
        if isinstance(value, str):
            found.append(_split(value))
        elif isinstance(value, list):
            found.append([str(v) for v in value])
    for name, section in _INI_FILES:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(root / name, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        if parser.has_option(section, "addopts"):
            found.append(_split(parser.get(section, "addopts")))
    return found


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def read_junit(path: Path) -> JunitSummary:
    """Counts and failing tests from a pytest junit XML file."""
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - our own pytest's output
    except ET.ParseError as exc:
        msg = f"{path} is not valid junit XML ({exc})"
        raise ToolError(msg) from None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failed = []
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        for case in suite.iter("testcase"):
            problem = case.find("failure")
            if problem is None:
                problem = case.find("error")
            if problem is not None:
                name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
                message = (problem.get("message") or problem.tag).splitlines()[0][:300]
                failed.append(
                    Finding(rule="test", message=f"{name}: {message}", file=_case_file(case))
                )
    return JunitSummary(failed=tuple(failed), **totals)


def _case_file(case: ET.Element) -> str | None:
    if case.get("file"):
        return case.get("file")
    classname = case.get("classname", "")
    parts = classname.split(".")
    while parts and parts[-1][:1].isupper():  # drop test classes
        parts.pop()
    return "/".join(parts) + ".py" if parts else None


def read_coverage(path: Path) -> float:
    """Total coverage percent (lines and branches, as ``coverage report`` counts it)."""
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - our own coverage's output
    except ET.ParseError as exc:
        msg = f"{path} is not valid coverage XML ({exc})"
        raise ToolError(msg) from None
    lines_valid = int(root.get("lines-valid", "0"))
    lines_covered = int(root.get("lines-covered", "0"))
    branches_valid = int(root.get("branches-valid", "0"))
    branches_covered = int(root.get("branches-covered", "0"))
    total = lines_valid + branches_valid
    return 100.0 if total == 0 else 100.0 * (lines_covered + branches_covered) / total


GATE = Gate(
    name="test",
    session="test",
    doc="Test: headless pytest with junit and coverage reports under reports/.",
    run=run,
    group="test",
    inputs=GateInputs(
        # the drop check compares with these; the state one is rewritten on the default branch
        extra_files=(
            f"{{reports}}/{coverage_module.BASELINE}",
            f"{{state}}/{coverage_module.BASELINE}",
        ),
        tools=("pytest", "pytest-cov", "pytest-xdist", "pytest-rerunfailures", "coverage"),
        # baseline recording; which shard runs, or which shards are combined. The recorded
        # durations that split shards are not keyed: every whole run rewrites them, and a
        # replayed shard that split otherwise fails the combining run's union check.
        env=("GITHUB_REF", "GITHUB_SHA", "CI_DEFAULT_BRANCH", SHARD_ENV, COMBINE_ENV),
        config=("packages", "tests"),
        uncacheable=reads_pytest_cache,
    ),
    every_python=True,
    options=frozenset(
        {
            "coverage_min",
            "coverage_drop_max",
            "secondary_args",
            "workers",
            "reruns",
            "shards",
            "runner",
        }
    ),
    requires=(
        "pytest>=8.4",
        "pytest-rerunfailures>=16",
        "coverage[toml]>=7.10",
    ),
)
