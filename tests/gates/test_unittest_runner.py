import os
import subprocess
import sys
from pathlib import Path

from ci.gates import test as testgate
from ci.gates import unittest_runner

SUITE = """import unittest


class Good(unittest.TestCase):
    def test_ok(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertEqual(i, i)

    @unittest.skip("not here")
    def test_skipped(self):
        pass

    @unittest.expectedFailure
    def test_known_bug(self):
        self.assertEqual(1, 2)


class Bad(unittest.TestCase):
    def test_fails(self):
        self.assertEqual(1, 2, "one is not two")

    @unittest.expectedFailure
    def test_fixed_bug(self):
        pass


class BrokenSetup(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise RuntimeError("fixture server did not start")

    def test_never(self):
        pass
"""


def run(root: Path, *args: str) -> tuple[int, str, Path]:
    junit = root / "out" / "junit.xml"
    env = {**os.environ, unittest_runner.JUNIT_ENV: str(junit)}
    done = subprocess.run(
        [sys.executable, "-m", "ci.gates.unittest_runner", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return done.returncode, done.stderr, junit


def test_the_junit_report_counts_as_unittest_does(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_suite.py").write_text(SUITE)
    code, output, junit = run(tmp_path, "discover", "-s", "tests")
    assert code == 1
    # unittest's own words on this Python (3.12 stopped counting skipped tests as run)
    own = subprocess.run(
        [sys.executable, "-m", "unittest", "discover", "-s", "tests"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    ran = next(line for line in own.stderr.splitlines() if line.startswith("Ran "))
    assert ran.split(" in ")[0] in output  # setUpClass's test never ran
    summary = testgate.read_junit(junit)
    # 5 run + the setUpClass error unittest reports outside any test
    assert (summary.tests, summary.failures, summary.errors, summary.skipped) == (6, 2, 1, 1)
    messages = sorted(f.message for f in summary.failed)
    assert any("test_fails: AssertionError: 1 != 2 : one is not two" in m for m in messages)
    assert any("test_fixed_bug: unexpected success" in m for m in messages)
    assert any(
        m.startswith("setUpClass (test_suite.BrokenSetup): RuntimeError: fixture server did not")
        for m in messages
    ), messages
    files = {f.file for f in summary.failed if "test_fails" in f.message}
    assert files == {"tests/test_suite.py"}


def test_no_tests_is_5_and_bad_arguments_keep_unittests_own_status(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    assert run(tmp_path, "discover", "-s", "tests")[0] == 5
    assert run(tmp_path, "--no-such-flag")[0] == 2


def test_a_start_folder_that_cannot_load_is_one_line_and_status_3(tmp_path: Path) -> None:
    code, output, junit = run(tmp_path, "discover", "-s", "missing")
    assert code == 3
    assert output.startswith("ImportError: Start directory is not importable: 'missing'")
    assert "(unittest could not load the tests)" in output
    assert "Traceback" not in output
    assert not junit.exists()
