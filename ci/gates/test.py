"""The test gate: headless pytest under coverage, junit and coverage reports, a coverage floor."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ci.core.config import state_dir
from ci.core.errors import ToolError
from ci.core.files import mask_file
from ci.core.gate import Finding, Gate, GateContext, GateInputs, GateResult, GateStatus
from ci.gates import coverage as coverage_module
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


def run(ctx: GateContext, pytest_args: Sequence[str] = ()) -> GateResult:
    """Run pytest headless under coverage on this interpreter, then judge tests and coverage."""
    start = time.monotonic()
    variant = ctx.python
    policy = ctx.config.gate("test")
    if variant != ctx.config.default_python:
        pytest_args = [*policy.secondary_args, *pytest_args]  # e.g. slow end-to-end tests once
    reports = ctx.reports
    scratch = scratch_dir(ctx.root, variant)
    scratch.mkdir(parents=True, exist_ok=True)
    junit = reports / f"junit-{variant}.xml"
    coverage_xml = reports / f"coverage-{variant}.xml"
    junit.unlink(missing_ok=True)
    coverage_xml.unlink(missing_ok=True)
    data_file = scratch / ".coverage"
    coverage_module.clear_data(data_file)
    env = {**HEADLESS_ENV, "TMPDIR": str(scratch), **coverage_module.quiet_env(data_file)}
    python = sys.executable
    settings = coverage_module.probe(ctx.runner, ctx.root, python, env)
    argv = [
        *coverage_module.run_prefix(python, settings, ctx.config.packages),
        "-m",
        "pytest",
        f"--basetemp={scratch / 'pytest'}",
        f"--junitxml={junit}",
        *_plugin_args(),
        *pytest_args,
    ]
    # fault injection: CI_INJECT_FAULT=test adds a planted failing test
    named_paths = any((ctx.root / a).exists() for a in pytest_args if not a.startswith("-"))
    suite = [] if named_paths else [ctx.config.tests]
    with faults.failing_test_paths(ctx.reports / "faults", ctx.env, suite) as planted:
        done = ctx.runner.run([*argv, *planted], cwd=ctx.root, env=env, stream=True)
    mask_file(junit)  # pytest wrote it (failure messages and all): masked before anyone reads it
    if done.returncode not in _PYTEST_VERDICTS:
        reason = coverage_module.first_error_line(done.output) or "see its output above"
        msg = f"pytest could not run (exit status {done.returncode}): {reason}"
        raise ToolError(msg)
    junit_summary = read_junit(junit) if junit.exists() else None
    total = coverage_module.finish(
        ctx.runner, ctx.root, python, env, data_file=data_file, xml=coverage_xml
    )
    mask_file(coverage_xml)  # coverage wrote it
    state = state_dir(ctx.root, ctx.env)
    baseline = coverage_module.load_baseline(reports, state, variant)
    status, summary, findings = judge(
        done.returncode,
        junit_summary,
        total.percent,
        coverage_module.floor(policy.coverage_min, settings),
        baseline=baseline,
        drop_max=policy.coverage_drop_max,
        output=done.output,
        no_data=total.reason,
    )
    if total.percent is not None and status is GateStatus.PASSED:
        _keep_baseline(ctx, state, variant, total.percent)
    artifacts = tuple(str(p.relative_to(ctx.root)) for p in (junit, coverage_xml) if p.exists())
    return GateResult(
        gate="test",
        variant=variant,
        status=status,
        duration_s=time.monotonic() - start,
        summary=summary,
        findings=findings,
        artifacts=artifacts,
    )


def _plugin_args() -> list[str]:
    """Switch pytest-cov off where it is installed: coverage already measures from start-up."""
    # pytest-cov starts measuring after plugins and conftest files imported the package,
    # and a --cov in the project's addopts would measure a second time.
    return ["--no-cov"] if importlib.util.find_spec("pytest_cov") is not None else []


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
) -> tuple[GateStatus, str, tuple[Finding, ...]]:
    """The verdict from pytest's exit status, its junit counts, coverage and its baseline.

    A failed verdict's summary always ends with why: the first failing test, the floor
    that was missed, or the first error line of pytest's output.
    """
    if not isinstance(floor, coverage_module.Floor):
        floor = coverage_module.Floor(value=floor, source="coverage_min in [tool.ci.gates.test]")
    if returncode == 5 or (junit is not None and junit.tests == 0):
        return GateStatus.FAILED, "no tests ran (pytest exit 5): check the test paths", ()
    findings = list(junit.failed if junit else ())
    parts = []
    if junit is not None:
        passed = junit.tests - junit.failures - junit.errors - junit.skipped
        parts.append(
            f"{passed} passed, {junit.failures + junit.errors} failed, {junit.skipped} skipped"
        )
    if coverage is None:
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
    if returncode != 0 and not any(f.rule == "test" for f in findings):
        line = coverage_module.first_error_line(output)
        detail = f": {line}" if line else "; see its output above"
        findings.append(
            Finding(
                rule="pytest",
                message=f"pytest exited with status {returncode} although no test failed{detail}",
            )
        )
    status = GateStatus.FAILED if findings else GateStatus.PASSED
    summary = "; ".join(parts) or f"pytest exit {returncode}"
    if findings:
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        summary += f"; failed: {findings[0].message}{more}"
    return status, summary, tuple(findings)


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
        tools=("pytest", "pytest-cov", "coverage"),
        env=("GITHUB_REF", "GITHUB_SHA", "CI_DEFAULT_BRANCH"),  # baseline recording
        config=("packages", "tests"),
    ),
    every_python=True,
    options=frozenset({"coverage_min", "coverage_drop_max", "secondary_args"}),
    requires=("pytest>=8.4", "pytest-cov>=7", "coverage[toml]>=7.10"),
)
