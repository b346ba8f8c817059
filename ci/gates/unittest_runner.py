"""The test gate's unittest runner: ``python -m unittest`` as it runs, plus a junit report.

Run by the test gate as ``coverage run -m ci.gates.unittest_runner ARGS`` where ARGS are
exactly what ``python -m unittest`` takes (``discover -s tests -t .``, module names, -k,
...): unittest's own ``TestProgram`` parses them, finds the tests (``load_tests`` and all)
and runs them, so the tests and their count ("Ran N tests") are the project's own. A
``TestResult`` subclass records each test's outcome, and the junit report is written from
it into the file ``NOXGATE_UNITTEST_JUNIT`` names; no text is parsed.

Exit status: 0 all passed, 1 a test failed or errored, 5 no tests ran (as pytest says),
2 bad arguments (unittest's own usage error), 3 unittest could not load the tests at all.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import time
import traceback
import unittest
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from ci.core.files import atomic_write_text

JUNIT_ENV = "NOXGATE_UNITTEST_JUNIT"
# test files (os.pathsep-separated) whose test_* functions join the suite: the test gate's
# planted failing test under fault injection, written for pytest as plain functions
EXTRA_ENV = "NOXGATE_UNITTEST_EXTRA"
_ExcInfo = tuple[type[BaseException], BaseException, TracebackType]
_OptExcInfo = _ExcInfo | tuple[None, None, None]
_NO_TESTS = 5
_CANNOT_LOAD = 3


@dataclass(slots=True, kw_only=True)
class Case:
    """One test as the junit report shows it."""

    classname: str
    name: str
    file: str | None
    seconds: float = 0.0
    outcome: str = "passed"  # passed | failure | error | skipped
    message: str = ""
    detail: str = ""
    subtests_failed: list[str] = field(default_factory=list)


def _split_id(test: unittest.TestCase) -> tuple[str, str]:
    """(classname, name) from ``test.id()``: ``pkg.tests.test_x.TestX`` and ``test_y``."""
    ident = test.id()
    if not re.fullmatch(r"[\w.]+", ident):  # "setUpClass (pkg.tests.TestX)": not a dotted name
        return "", ident
    head, _, tail = ident.rpartition(".")
    return (head, tail) if head else ("", ident)


def _file_of(test: unittest.TestCase) -> str | None:
    """The test's source file relative to the working folder (None for doctests and the like)."""
    module = type(test).__module__
    if module == "doctest" or module.split(".")[0] == "unittest":
        return None  # a doctest, or unittest's stand-in for a module that did not load
    path = getattr(sys.modules.get(module), "__file__", None)
    if not path:
        return None
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return None


class JunitResult(unittest.TextTestResult):
    """unittest's text result (its output unchanged) that also keeps each test for junit."""

    def __init__(
        self,
        stream: unittest.runner._WritelnDecorator,  # typeshed names the stream so
        descriptions: bool,
        verbosity: int,
        **kwargs: int | None,
    ) -> None:
        """As ``TextTestResult``; each test's outcome is kept in ``cases``."""
        super().__init__(stream, descriptions, verbosity, **kwargs)
        self.cases: list[Case] = []
        self._started: dict[str, float] = {}

    def _case(self, test: unittest.TestCase) -> Case:
        ident = test.id()
        for case in reversed(self.cases):
            if f"{case.classname}.{case.name}".strip(".") == ident:
                return case
        classname, name = _split_id(test)
        case = Case(classname=classname, name=name, file=_file_of(test))
        self.cases.append(case)  # an error outside any test (a module that does not import)
        return case

    def startTest(self, test: unittest.TestCase) -> None:  # noqa: N802 - unittest's name
        """Start the clock on ``test``."""
        super().startTest(test)
        classname, name = _split_id(test)
        self.cases.append(Case(classname=classname, name=name, file=_file_of(test)))
        self._started[test.id()] = time.perf_counter()

    def stopTest(self, test: unittest.TestCase) -> None:  # noqa: N802 - unittest's name
        """Stop the clock on ``test``."""
        super().stopTest(test)
        began = self._started.pop(test.id(), None)
        if began is not None:
            self._case(test).seconds = time.perf_counter() - began

    def _problem(self, test: unittest.TestCase, outcome: str, err: _OptExcInfo) -> None:
        case = self._case(test)
        exc_type, exc, tb = err
        if exc_type is None or exc is None or case.outcome in {"failure", "error"}:
            return  # the first problem names the test's failure
        case.outcome = outcome
        case.message = f"{exc_type.__name__}: {exc}".splitlines()[0][:300]
        case.detail = "".join(traceback.format_exception(exc_type, exc, tb))

    def addError(self, test: unittest.TestCase, err: _OptExcInfo) -> None:  # noqa: N802
        """An error: kept for junit, reported as unittest reports it."""
        super().addError(test, err)
        self._problem(test, "error", err)

    def addFailure(self, test: unittest.TestCase, err: _OptExcInfo) -> None:  # noqa: N802
        """A failure: kept for junit, reported as unittest reports it."""
        super().addFailure(test, err)
        self._problem(test, "failure", err)

    def addSubTest(  # noqa: N802
        self, test: unittest.TestCase, subtest: unittest.TestCase, err: _OptExcInfo | None
    ) -> None:
        """A failed subtest fails its test (unittest counts the test once, as junit does)."""
        super().addSubTest(test, subtest, err)
        if err is not None and err[0] is not None:
            failed = issubclass(err[0], test.failureException)
            self._problem(test, "failure" if failed else "error", err)
            self._case(test).subtests_failed.append(subtest.id())

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:  # noqa: N802
        """A skipped test."""
        super().addSkip(test, reason)
        case = self._case(test)
        case.outcome, case.message = "skipped", reason

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:  # noqa: N802
        """An expected failure that passed: unittest calls the run unsuccessful, so a failure."""
        super().addUnexpectedSuccess(test)
        case = self._case(test)
        case.outcome, case.message = "failure", "unexpected success (marked expectedFailure)"


def junit_xml(cases: list[Case], tests_run: int, seconds: float) -> str:
    """The junit XML text of one unittest run (``tests`` is unittest's own count)."""
    counts = {k: sum(c.outcome == k for c in cases) for k in ("failure", "error", "skipped")}
    # an error outside any test (a module that does not import) is a case unittest did not
    # count as run; junit counts it so the report adds up
    extra = max(0, len(cases) - tests_run)
    suite = ET.Element(
        "testsuite",
        name="unittest",
        tests=str(tests_run + extra),
        failures=str(counts["failure"]),
        errors=str(counts["error"]),
        skipped=str(counts["skipped"]),
        time=f"{seconds:.3f}",
    )
    for case in cases:
        element = ET.SubElement(
            suite, "testcase", classname=case.classname, name=case.name, time=f"{case.seconds:.3f}"
        )
        if case.file:
            element.set("file", case.file)
        if case.outcome != "passed":
            tag = {"failure": "failure", "error": "error", "skipped": "skipped"}[case.outcome]
            message = case.message
            if len(case.subtests_failed) > 1:
                message += f" (+{len(case.subtests_failed) - 1} more failed subtests)"
            problem = ET.SubElement(element, tag, message=message)
            problem.text = case.detail or None
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="unicode")


def _extra_tests(paths: str) -> list[unittest.TestCase]:
    """The ``test_*`` functions of each file in ``paths``, as unittest cases."""
    found: list[unittest.TestCase] = []
    for index, path in enumerate(p for p in paths.split(os.pathsep) if p):
        spec = importlib.util.spec_from_file_location(f"_noxgate_extra_{index}", path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found += [
            unittest.FunctionTestCase(value)
            for name, value in vars(module).items()
            if name.startswith("test_") and callable(value)
        ]
    return found


class _Program(unittest.TestProgram):
    """unittest's own program, plus the tests ``NOXGATE_UNITTEST_EXTRA`` names."""

    def createTests(  # noqa: N802 - unittest's name
        self,
        from_discovery: bool = False,
        Loader: unittest.TestLoader | None = None,  # noqa: N803 - unittest's name
    ) -> None:
        """Find the tests as unittest does, then add the extra ones."""
        super().createTests(from_discovery, Loader)
        extra = os.environ.get(EXTRA_ENV, "")
        if extra:
            found: unittest.TestSuite | unittest.TestCase = self.test  # type: ignore[has-type]
            self.test = unittest.TestSuite([found, *_extra_tests(extra)])


class JunitRunner(unittest.TextTestRunner):
    """unittest's text runner with the junit-keeping result (-v, -b, -f work as ever)."""

    resultclass = JunitResult  # type: ignore[assignment] # typeshed's Callable omits kwargs


def main(argv: list[str]) -> int:
    """Run unittest with ``argv`` (``python -m unittest``'s arguments); 0, 1, 2, 3 or 5."""
    began = time.perf_counter()
    try:
        program = _Program(
            module=None, argv=["python -m unittest", *argv], testRunner=JunitRunner, exit=False
        )
    except SystemExit as exc:  # unittest's own usage error (it printed it)
        return exc.code if isinstance(exc.code, int) else 2
    except Exception as exc:  # discovery itself failed: say so in one line
        print(
            f"{type(exc).__name__}: {exc} (unittest could not load the tests)",
            file=sys.stderr,
        )
        return _CANNOT_LOAD
    result = program.result
    cases = result.cases if isinstance(result, JunitResult) else []
    junit = os.environ.get(JUNIT_ENV)
    if junit:
        atomic_write_text(
            Path(junit), junit_xml(cases, result.testsRun, time.perf_counter() - began)
        )
    if result.testsRun == 0 and not cases:
        return _NO_TESTS
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
