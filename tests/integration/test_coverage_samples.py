"""The test gate measures what ``coverage run -m pytest`` measures, on real sample projects."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.core import config
from ci.core.clock import SystemClock
from ci.core.gate import GateStatus, context
from ci.core.runner import ProcessRunner
from ci.gates import test as testgate
from ci.gates.test import read_coverage
from tests.support import coverage_samples

pytestmark = pytest.mark.integration


def gate(root: Path, *args: str) -> testgate.GateResult:
    ctx = context(config.load(cwd=root), ProcessRunner(), SystemClock(), {})
    return testgate.run(ctx, ["-p", "no:cacheprovider", "-q", *args])


def total(root: Path, result: testgate.GateResult) -> float:
    (xml,) = [a for a in result.artifacts if a.startswith("reports/coverage-")]
    return read_coverage(root / xml)


def test_a_conftest_import_is_measured_like_coverage_run(tmp_path: Path) -> None:
    root = coverage_samples.plain(tmp_path / "plain")
    result = gate(root)
    assert result.status is GateStatus.PASSED, result.summary
    expected = coverage_samples.reference(root, "--source=sample")
    assert total(root, result) == pytest.approx(expected, abs=0.1)
    assert f"coverage {expected:.1f}%" in result.summary


def test_coveragerc_include_with_warnings_as_errors_runs_and_matches(tmp_path: Path) -> None:
    root = coverage_samples.coveragerc_include(tmp_path / "include")
    result = gate(root)
    assert result.status is GateStatus.PASSED, result.summary
    expected = coverage_samples.reference(root)
    assert total(root, result) == pytest.approx(expected, abs=0.1)
    # the project's own settings applied: branch coverage on, only src/sample measured
    xml = (root / "reports").glob("coverage-*.xml")
    text = next(xml).read_text()
    assert 'branch-rate="0"' not in text.split("\n", 2)[1]
    assert "conftest" not in text


def test_the_projects_fail_under_is_the_floor_and_the_summary_says_so(tmp_path: Path) -> None:
    root = coverage_samples.coveragerc_include(tmp_path / "strict", fail_under=100)
    result = gate(root)
    assert result.status is GateStatus.FAILED
    assert "is below the minimum of 100% (fail_under in .coveragerc)" in result.summary
    assert result.summary.startswith("2 passed, 0 failed, 0 skipped; coverage ")
    # at 100% as coverage run measures it, the same floor passes
    (root / "tests" / "test_sample.py").write_text(coverage_samples.TESTS_FULL)
    assert coverage_samples.reference(root) == 100.0
    result = gate(root)
    assert result.status is GateStatus.PASSED, result.summary
    assert "coverage 100.0% (min 100%)" in result.summary
