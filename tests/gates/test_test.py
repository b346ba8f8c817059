from pathlib import Path

import pytest

from ci.core import config
from ci.core.clock import SystemClock
from ci.core.errors import ToolError
from ci.core.gate import GateStatus, context
from ci.core.runner import ProcessRunner
from ci.gates import coverage as coverage_module
from ci.gates import test as testgate

CODE = "def add(a, b):\n    return a + b\n\n\ndef unused(x):\n    if x:\n        return 1\n    return 2\n"


def project(tmp_path: Path, tests: dict[str, str], coverage_min: int = 50) -> config.Config:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "pkg"\nversion = "0"\n'
        f"[tool.ci.gates.test]\ncoverage_min = {coverage_min}\n"
    )
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text(CODE)
    (tmp_path / "tests").mkdir()
    for name, body in tests.items():
        (tmp_path / "tests" / name).write_text(body)
    return config.load(cwd=tmp_path)


PASSING = "from pkg import add\n\ndef test_add():\n    assert add(1, 2) == 3\n"
FAILING = "from pkg import add\n\ndef test_wrong():\n    assert add(1, 2) == 4, 'sum is off'\n"
HEADLESS = "import os\n\ndef test_env():\n    assert os.environ['MPLBACKEND'] == 'Agg'\n    assert os.environ['QT_QPA_PLATFORM'] == 'offscreen'\n    assert os.environ['TMPDIR'].endswith('test-' + os.environ['PYV']); assert 'reports' not in os.environ['TMPDIR']\n"


def run(cfg: config.Config, monkeypatch: pytest.MonkeyPatch) -> testgate.GateResult:
    ctx = context(cfg, ProcessRunner(), SystemClock(), {})
    monkeypatch.setenv("PYV", ctx.python)
    return testgate.run(ctx, ["-p", "no:cacheprovider", "-q"])


def test_passing_suite_writes_junit_and_coverage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = project(tmp_path, {"test_a.py": PASSING, "test_env.py": HEADLESS})
    result = run(cfg, monkeypatch)
    assert result.status is GateStatus.PASSED, result.summary
    assert result.summary.startswith("2 passed, 0 failed, 0 skipped; coverage")
    assert any(a.startswith("reports/junit-") for a in result.artifacts)
    assert any(a.startswith("reports/coverage-") for a in result.artifacts)


def test_failing_test_is_a_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = project(tmp_path, {"test_a.py": PASSING, "test_b.py": FAILING})
    result = run(cfg, monkeypatch)
    assert result.status is GateStatus.FAILED
    (finding,) = [f for f in result.findings if f.rule == "test"]
    assert "test_wrong" in finding.message
    assert "sum is off" in finding.message
    assert finding.file == "tests/test_b.py"


def test_no_tests_is_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = project(tmp_path, {"test_a.py": "X = 1\n"})
    result = run(cfg, monkeypatch)
    assert result.status is GateStatus.FAILED
    assert "no tests ran" in result.summary


def test_coverage_below_minimum_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = project(tmp_path, {"test_a.py": PASSING}, coverage_min=99)
    result = run(cfg, monkeypatch)
    assert result.status is GateStatus.FAILED
    assert any(
        f.rule == "coverage" and "below the minimum of 99%" in f.message for f in result.findings
    )


def test_pytest_usage_error_is_a_tool_error_naming_its_first_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = project(tmp_path, {"test_a.py": PASSING})
    ctx = context(cfg, ProcessRunner(), SystemClock(), {})
    with pytest.raises(
        testgate.ToolError,
        match=r"exit status 4\): .*error: unrecognized arguments: --no-such-flag",
    ):
        testgate.run(ctx, ["--no-such-flag"])


@pytest.mark.parametrize(
    ("code", "junit", "cov", "status", "needle"),
    [
        (
            0,
            testgate.JunitSummary(tests=3, failures=0, errors=0, skipped=1, failed=()),
            90.0,
            GateStatus.PASSED,
            "2 passed, 0 failed, 1 skipped",
        ),
        (5, None, None, GateStatus.FAILED, "no tests ran"),
        (
            0,
            testgate.JunitSummary(tests=0, failures=0, errors=0, skipped=0, failed=()),
            None,
            GateStatus.FAILED,
            "no tests ran",
        ),
        (2, None, 90.0, GateStatus.FAILED, "coverage 90.0%"),
        (
            0,
            testgate.JunitSummary(tests=1, failures=0, errors=0, skipped=0, failed=()),
            None,
            GateStatus.FAILED,
            "1 passed",
        ),
        (0, None, 10.0, GateStatus.FAILED, "coverage 10.0%"),
    ],
)
def test_judge(code, junit, cov, status, needle) -> None:
    got_status, summary, _ = testgate.judge(code, junit, cov, 85)
    assert got_status is status
    assert needle in summary


def test_corrupt_reports_are_tool_errors(tmp_path: Path) -> None:
    bad = tmp_path / "x.xml"
    bad.write_text("<nope")
    with pytest.raises(testgate.ToolError, match="not valid junit XML"):
        testgate.read_junit(bad)
    with pytest.raises(testgate.ToolError, match="not valid coverage XML"):
        testgate.read_coverage(bad)


SLOW = "import pytest\n\n@pytest.mark.integration\ndef test_slow():\n    assert sum([1, 2]) == 3\n"


def test_secondary_args_apply_only_off_the_default_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path, {"test_a.py": PASSING, "test_slow.py": SLOW})
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        + 'secondary_args = ["-m", "not integration", "-p", "no:warnings"]\n'
        + '[tool.pytest.ini_options]\nmarkers = ["integration: slow"]\n'
    )
    ctx = context(config.load(cwd=tmp_path), ProcessRunner(), SystemClock(), {})
    other = "3.99" if ctx.python != "3.99" else "3.98"
    (tmp_path / "pyproject.toml").write_text(
        pyproject.read_text().replace(
            "[tool.ci.gates.test]", f'[tool.ci]\npythons = ["{other}"]\n[tool.ci.gates.test]'
        )
    )
    secondary = context(config.load(cwd=tmp_path), ProcessRunner(), SystemClock(), {})
    assert testgate.run(secondary).summary.startswith("1 passed, 0 failed, 0 skipped")
    (tmp_path / "pyproject.toml").write_text(
        pyproject.read_text().replace(f'pythons = ["{other}"]', f'pythons = ["{ctx.python}"]')
    )
    default = context(config.load(cwd=tmp_path), ProcessRunner(), SystemClock(), {})
    assert testgate.run(default).summary.startswith("2 passed, 0 failed, 0 skipped")


def settings(fail_under: float) -> coverage_module.Settings:
    return coverage_module.Settings(
        version="7",
        config_file="/p/.coveragerc",
        selects_files=True,
        subprocess=False,
        branch=True,
        fail_under=fail_under,
    )


@pytest.mark.parametrize(
    ("coverage_min", "fail_under", "value", "source"),
    [
        (85, 0, 85, "coverage_min in [tool.ci.gates.test]"),
        (0, 100, 100, "fail_under in .coveragerc"),
        (90, 80, 90, "coverage_min in [tool.ci.gates.test]"),
        (80, 80, 80, "coverage_min in [tool.ci.gates.test]"),
    ],
)
def test_floor_is_the_higher_of_coverage_min_and_fail_under(
    coverage_min, fail_under, value, source
) -> None:
    got = coverage_module.floor(coverage_min, settings(fail_under))
    assert (got.value, got.source) == (value, source)


@pytest.mark.parametrize(
    ("output", "line"),
    [
        (
            "ERROR: usage: pytest [options]\npytest: error: unrecognized arguments: -z\n",
            "pytest: error: unrecognized arguments: -z",
        ),
        (
            "collected 3 items\nERROR: file or directory not found: x\n",
            "ERROR: file or directory not found: x",
        ),
        (
            "INTERNALERROR> Traceback (most recent call last):\n"
            'INTERNALERROR>   File "x.py", line 1, in f\n'
            "INTERNALERROR> RuntimeError: the fixture server did not start\n",
            "RuntimeError: the fixture server did not start",
        ),
        (
            "Traceback (most recent call last):\n  File 'a'\n"
            "coverage.exceptions.CoverageWarning: --include is ignored because --source is set\n",
            "coverage.exceptions.CoverageWarning: --include is ignored because --source is set",
        ),
        ("2 passed in 0.1s\n", ""),
    ],
)
def test_first_error_line(output: str, line: str) -> None:
    assert coverage_module.first_error_line(output) == line


JUNIT_OK = testgate.JunitSummary(tests=2, failures=0, errors=0, skipped=0, failed=())


def test_a_failed_verdict_always_names_why() -> None:
    failed = testgate.JunitSummary(
        tests=2,
        failures=1,
        errors=0,
        skipped=0,
        failed=(testgate.Finding(rule="test", message="tests/test_a.py::test_x: assert 1 == 2"),),
    )
    _, summary, _ = testgate.judge(1, failed, 90.0, 85)
    assert summary.endswith("failed: tests/test_a.py::test_x: assert 1 == 2")
    floor = coverage_module.Floor(value=100, source="fail_under in setup.cfg")
    _, summary, _ = testgate.judge(0, JUNIT_OK, 97.8, floor)
    assert summary.endswith(
        "failed: coverage 97.8% is below the minimum of 100% (fail_under in setup.cfg)"
    )
    status, summary, _ = testgate.judge(
        1, JUNIT_OK, 90.0, 0, output="2 passed\nERROR: session teardown failed: port in use\n"
    )
    assert status is GateStatus.FAILED
    assert summary.endswith(
        "failed: pytest exited with status 1 although no test failed: "
        "ERROR: session teardown failed: port in use"
    )
    status, summary, _ = testgate.judge(0, JUNIT_OK, 90.0, 85)
    assert status is GateStatus.PASSED
    assert "failed:" not in summary


SESSION_FAILS = (
    "import pytest\n\n\n@pytest.hookimpl(trylast=True)\ndef pytest_sessionfinish(session):\n"
    "    print('\\nRuntimeError: the shared fixture server did not stop')\n"
    "    session.exitstatus = 1\n"
)


def test_pytest_failing_without_a_failed_test_names_the_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = project(tmp_path, {"test_a.py": PASSING, "conftest.py": SESSION_FAILS})
    result = run(cfg, monkeypatch)
    assert result.status is GateStatus.FAILED
    assert result.summary.endswith(
        "pytest exited with status 1 although no test failed: "
        "RuntimeError: the shared fixture server did not stop"
    )


@pytest.mark.parametrize(
    ("workers", "xdist", "args", "notes"),
    [
        ("auto", True, ["-n", "auto", "--dist", "loadgroup"], 0),
        (4, True, ["-n", "4", "--dist", "loadgroup"], 0),
        (1, True, ["-n", "0"], 0),
        (1, False, [], 0),
        ("auto", False, [], 1),
        (None, True, [], 0),  # unset: the project's own pytest setup decides
        (None, False, [], 0),
    ],
)
def test_worker_args(workers, xdist, args, notes) -> None:
    got, said = testgate.worker_args(workers, xdist=xdist)
    assert got == args
    assert len(said) == notes


def test_a_number_of_workers_without_xdist_is_a_config_error() -> None:
    with pytest.raises(testgate.ConfigError, match="workers = 3 needs pytest-xdist"):
        testgate.worker_args(3, xdist=False)


# what pytest-benchmark does when xdist is active: a config-time warning, which a project's
# `filterwarnings = error` turns into an error (pytest exits 3)
BENCHMARK_LIKE = """
import pytest


def pytest_configure(config):
    if getattr(config.option, "numprocesses", None):
        config.issue_config_time_warning(
            pytest.PytestWarning("benchmarks are disabled because xdist is active"), 2
        )
"""


def test_the_default_adds_no_xdist_so_a_suite_that_passes_its_own_way_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path, {"test_a.py": PASSING, "conftest.py": BENCHMARK_LIKE}, coverage_min=0)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n'
    )
    result = run(config.load(cwd=tmp_path), monkeypatch)
    assert result.status is GateStatus.PASSED, result.summary
    assert result.summary.startswith("1 passed")


FLAKY = (
    "import os, pathlib\n\n\ndef test_flaky():\n"
    "    marker = pathlib.Path(os.environ['FLAKY_MARKER'])\n"
    "    if not marker.exists():\n"
    "        marker.write_text('failed once')\n"
    "        raise AssertionError('first attempt fails')\n"
)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_test_that_passes_only_on_rerun_is_flaky_and_red_with_reruns_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    (tmp_path / "p").mkdir()
    project(tmp_path / "p", {"test_a.py": PASSING, "test_f.py": FLAKY}, coverage_min=0)
    pyproject = tmp_path / "p" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f"workers = {workers}\n")
    monkeypatch.setenv("FLAKY_MARKER", str(tmp_path / "marker"))
    result = run(config.load(cwd=tmp_path / "p"), monkeypatch)
    assert result.status is GateStatus.FAILED
    assert result.flaky == ("tests/test_f.py::test_flaky",)
    assert "2 passed, 0 failed, 0 skipped; 1 flaky" in result.summary
    assert "failed: tests/test_f.py::test_flaky failed, then passed on rerun" in result.summary
    assert any(w.startswith("flaky test tests/test_f.py::test_flaky") for w in result.warnings)
    assert result.to_dict()["flaky"] == ["tests/test_f.py::test_flaky"]


def test_reruns_allowed_turn_a_flaky_test_green_and_still_name_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "p").mkdir()
    project(tmp_path / "p", {"test_a.py": PASSING, "test_f.py": FLAKY, "test_b.py": FAILING}, 0)
    pyproject = tmp_path / "p" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "reruns = 2\n")
    monkeypatch.setenv("FLAKY_MARKER", str(tmp_path / "marker"))
    result = run(config.load(cwd=tmp_path / "p"), monkeypatch)
    # the broken test stays red after its reruns; the flaky one is named, not blamed
    assert result.status is GateStatus.FAILED
    assert [f.rule for f in result.findings] == ["test"]
    assert result.flaky == ("tests/test_f.py::test_flaky",)
    (tmp_path / "p" / "tests" / "test_b.py").unlink()
    (tmp_path / "marker").unlink()
    result = run(config.load(cwd=tmp_path / "p"), monkeypatch)
    assert result.status is GateStatus.PASSED, result.summary
    assert result.flaky == ("tests/test_f.py::test_flaky",)
    assert "(allowed)" in result.warnings[-1]


def test_reruns_without_the_plugin_is_a_config_error() -> None:
    with pytest.raises(testgate.ConfigError, match="reruns = 2 needs pytest-rerunfailures"):
        testgate.rerun_args(2, installed=False)
    assert testgate.rerun_args(0, installed=False) == []
    assert testgate.rerun_args(0, installed=True) == ["--reruns", "1"]


@pytest.mark.parametrize("option", ["--markers", "--version"])
def test_pytest_exiting_0_without_a_junit_report_is_a_tool_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    # pytest answers these and exits 0, having run no test; conftest imports the package,
    # so coverage has data and nothing else would stop the gate from passing
    cfg = project(tmp_path, {"test_a.py": PASSING, "conftest.py": "import pkg\n"}, coverage_min=0)
    ctx = context(cfg, ProcessRunner(), SystemClock(), {})
    with pytest.raises(ToolError, match=r"pytest exited 0 but wrote no junit report"):
        testgate.run(ctx, ["-p", "no:cacheprovider", option])


def test_pytest_collecting_only_is_no_tests_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = project(tmp_path, {"test_a.py": PASSING, "conftest.py": "import pkg\n"}, coverage_min=0)
    ctx = context(cfg, ProcessRunner(), SystemClock(), {})
    result = testgate.run(ctx, ["-p", "no:cacheprovider", "--collect-only"])
    assert result.status is GateStatus.FAILED
    assert "no tests ran" in result.summary
    del monkeypatch


# --- a unittest suite: the project's own runner, its own count, its own floor ---------------

DOCTESTED = '''def add(a, b):
    """Add.

    >>> add(1, 2)
    3
    """
    return a + b


def mul(a, b):
    """Multiply.

    >>> mul(2, 3)
    6
    """
    return a * b
'''
# three TestCase tests (one with subtests) and, through load_tests, the package's two doctests
UNITTEST_SUITE = """import doctest
import unittest

import pkg


def load_tests(loader, tests, ignore):
    tests.addTests(doctest.DocTestSuite(pkg))
    return tests


class TestPkg(unittest.TestCase):
    def test_add(self):
        self.assertEqual(pkg.add(1, 2), 3)

    def test_mul(self):
        self.assertEqual(pkg.mul(2, 3), 6)

    def test_each(self):
        for i in range(4):
            with self.subTest(i=i):
                self.assertEqual(pkg.add(i, 0), i)
"""
MAKEFILE = (
    "test:\n\tcoverage run -m unittest discover -s tests -t .\n\tcoverage report --fail-under=99\n"
)


def unittest_project(tmp_path: Path, *, makefile: str = MAKEFILE, gate: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "pkg"\nversion = "0"\n[tool.ci.gates.test]\ncoverage_min = 50\n{gate}'
    )
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text(DOCTESTED)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("")
    (tmp_path / "tests" / "test_pkg.py").write_text(UNITTEST_SUITE)
    if makefile:
        (tmp_path / "Makefile").write_text(makefile)
    return tmp_path


def run_plain(root: Path, args: tuple[str, ...] = ()) -> testgate.GateResult:
    ctx = context(config.load(cwd=root), ProcessRunner(), SystemClock(), {})
    return testgate.run(ctx, args)


def test_a_load_tests_suite_runs_with_unittest_counting_its_doctests_and_the_makefile_floor(
    tmp_path: Path,
) -> None:
    root = unittest_project(tmp_path)
    result = run_plain(root)
    assert result.status is GateStatus.PASSED, result.summary
    # unittest's own count: 3 TestCase tests + 2 doctests; subtests count inside their test
    assert result.summary.startswith("unittest: 5 passed, 0 failed, 0 skipped"), result.summary
    assert "(min 99%)" in result.summary  # the Makefile's --fail-under, above coverage_min 50
    junit = testgate.read_junit(root / "reports" / f"junit-{result.variant}.xml")
    assert (junit.tests, junit.failures, junit.errors) == (5, 0, 0)
    assert result.coverage == 100.0


def test_the_same_suite_under_runner_pytest_loses_the_doctests(tmp_path: Path) -> None:
    root = unittest_project(tmp_path, gate='runner = "pytest"\n')
    result = run_plain(root, ("-p", "no:cacheprovider", "-q"))
    # what the gate used to count: no doctests (load_tests is never called), and each
    # subtest counted as a test by pytest's subtests support (3 + 4 on pytest 9)
    assert not result.summary.startswith("5 passed"), result.summary
    junit = (root / "reports" / f"junit-{result.variant}.xml").read_text()
    assert 'name="test_add"' in junit
    assert 'classname="pkg"' not in junit  # the doctests of pkg


def test_the_makefile_floor_fails_a_suite_below_it(tmp_path: Path) -> None:
    root = unittest_project(tmp_path)
    with (root / "pkg" / "__init__.py").open("a") as handle:
        handle.write("\n\ndef unused(x):\n    return x * 2\n")
    result = run_plain(root)
    assert result.status is GateStatus.FAILED
    (finding,) = [f for f in result.findings if f.rule == "coverage"]
    assert "below the minimum of 99% (--fail-under=99 in Makefile)" in finding.message


def test_a_failing_unittest_test_and_subtest_are_findings_with_their_file(tmp_path: Path) -> None:
    root = unittest_project(tmp_path)
    suite = root / "tests" / "test_pkg.py"
    suite.write_text(
        suite.read_text().replace("pkg.add(i, 0), i)", "pkg.add(i, 0), 2, 'off by some')")
    )
    result = run_plain(root)
    assert result.status is GateStatus.FAILED
    assert result.summary.startswith("unittest: 4 passed, 1 failed"), result.summary
    (finding,) = [f for f in result.findings if f.rule == "test"]
    assert "test_each" in finding.message
    assert "off by some" in finding.message
    assert "(+2 more failed subtests)" in finding.message  # i = 0, 1 and 3 are off
    assert finding.file == "tests/test_pkg.py"


def test_unittest_arguments_the_project_cannot_run_are_a_tool_error(tmp_path: Path) -> None:
    makefile = "test:\n\tpython -m unittest discover -s no_such_folder\n"
    root = unittest_project(tmp_path, makefile=makefile)
    with pytest.raises(
        ToolError,
        match=r"discover -s no_such_folder \(the project's own test command in Makefile runs "
        r"unittest\) could not run \(exit status 3\): ImportError: Start directory is not",
    ):
        run_plain(root)


def test_shards_with_the_unittest_runner_is_a_config_error(tmp_path: Path) -> None:
    root = unittest_project(tmp_path, gate="shards = 2\n")
    with pytest.raises(testgate.ConfigError, match=r"shards = 2 needs the pytest runner"):
        run_plain(root)


def test_fault_injection_plants_a_failing_test_in_a_unittest_suite(tmp_path: Path) -> None:
    root = unittest_project(tmp_path)
    ctx = context(
        config.load(cwd=root), ProcessRunner(), SystemClock(), {"CI_INJECT_FAULT": "test"}
    )
    result = testgate.run(ctx, ())
    assert result.status is GateStatus.FAILED
    assert result.summary.startswith("unittest: 5 passed, 1 failed"), result.summary
    assert any("test_injected_fault" in f.message for f in result.findings)


def test_a_setup_cfg_fail_under_is_the_floor_of_a_unittest_suite(tmp_path: Path) -> None:
    root = unittest_project(tmp_path, makefile="")
    (root / "setup.cfg").write_text("[coverage:report]\nfail_under = 98\n")
    with (root / "pkg" / "__init__.py").open("a") as handle:
        handle.write("\n\ndef unused(x):\n    return x * 2\n")
    result = run_plain(root)
    assert result.status is GateStatus.FAILED
    assert "below the minimum of 98% (fail_under in setup.cfg)" in result.summary
