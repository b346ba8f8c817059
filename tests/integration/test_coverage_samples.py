"""The test gate measures what ``coverage run -m pytest`` measures, on real sample projects."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci.core import config
from ci.core.clock import SystemClock
from ci.core.gate import GateStatus, context
from ci.core.runner import ProcessRunner
from ci.gates import shards
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


@pytest.mark.parametrize(
    "coverage_toml",
    ["", '[tool.coverage.run]\nsource = ["sample"]\npatch = ["subprocess"]\n'],
    ids=["no-config", "patch-subprocess"],
)
def test_xdist_workers_are_measured_like_one_coverage_run(
    tmp_path: Path, coverage_toml: str
) -> None:
    root = coverage_samples.plain(
        tmp_path / "xdist", gate="workers = 2\n", extra_toml=coverage_toml
    )
    result = gate(root)
    assert result.status is GateStatus.PASSED, result.summary
    assert result.summary.startswith("3 passed, 0 failed, 0 skipped")
    # one process measures the same: the child process counts only with patch = subprocess
    expected = coverage_samples.reference(root, *([] if coverage_toml else ["--source=sample"]))
    assert total(root, result) == pytest.approx(expected, abs=0.1)
    serial = coverage_samples.plain(
        tmp_path / "serial", gate="workers = 1\n", extra_toml=coverage_toml
    )
    assert total(serial, gate(serial)) == pytest.approx(expected, abs=0.1)


def many_tests(count: int) -> str:
    body = "import sample\n"
    for i in range(count):
        body += (
            f"\n\ndef test_clamp_{i}():\n    assert sample.clamp({i}) == min({i}, sample.LIMIT)\n"
        )
    return body + "\n\ndef test_describe():\n    assert sample.describe(-1) == 'negative'\n"


def run_env(root: Path, env: dict[str, str]) -> testgate.GateResult:
    ctx = context(config.load(cwd=root), ProcessRunner(), SystemClock(), env)
    return testgate.run(ctx, ["-p", "no:cacheprovider", "-q"])


def test_three_shards_add_up_to_the_unsharded_run(tmp_path: Path) -> None:
    root = coverage_samples.plain(tmp_path / "sharded", gate="shards = 3\n")
    (root / "tests" / "test_many.py").write_text(many_tests(10))
    whole = run_env(root, {})
    assert whole.status is GateStatus.PASSED, whole.summary
    whole_junit = testgate.read_junit(root / f"reports/junit-{context_python()}.xml")
    whole_total = total(root, whole)

    parts = []
    for index in (1, 2, 3):
        shard = run_env(root, {"CI_TEST_SHARD": f"{index}/3"})
        assert shard.status is GateStatus.PASSED, shard.summary
        assert shard.summary.startswith(f"shard {index}/3: ")
        assert shard.variant.endswith(f"-shard{index}of3")
        parts.append(shard)
    folder = root / "reports" / "shards" / context_python()
    records = [shards.read_record(folder / f"record-{i}.json") for i in (1, 2, 3)]
    selected = [set(r.selected) for r in records]
    assert all(selected)  # every shard ran something
    assert set.union(*selected) == set(records[0].collected)
    assert sum(len(s) for s in selected) == len(records[0].collected) == whole_junit.tests

    combined = run_env(root, {"CI_TEST_COMBINE": str(folder)})
    assert combined.status is GateStatus.PASSED, combined.summary
    assert combined.summary.startswith(f"3 shards: {whole_junit.tests} passed, 0 failed")
    assert total(root, combined) == pytest.approx(whole_total, abs=0.1)
    # the unsharded run measured exactly what coverage run -m pytest measures
    assert whole_total == pytest.approx(
        coverage_samples.reference(root, "--source=sample"), abs=0.1
    )

    (folder / "record-2.json").unlink()
    with pytest.raises(testgate.ToolError, match=r"shard\(s\) 2 of 3 left no record"):
        run_env(root, {"CI_TEST_COMBINE": str(folder)})


def context_python() -> str:
    return context(config.load(cwd=Path.cwd()), ProcessRunner(), SystemClock(), {}).python
