"""Which runner a project's tests are meant for (pytest or unittest), and its arguments.

pytest runs most unittest suites, but not faithfully all of them: it never calls a
module's ``load_tests`` (so tests that hook adds, doctests often, are lost) and counts
each subtest as a test. The test gate therefore runs ``python -m unittest`` where that is
the project's own runner. The rules, first match wins (``[tool.ci.gates.test] runner``
overrides them all):

1. The project's own test command (its Makefile, tox.ini or noxfile.py) runs
   ``-m unittest``: unittest, with that command's arguments; one that runs pytest: pytest.
2. A test module defines ``load_tests`` and nothing configures pytest (no pytest.ini,
   ``[tool.pytest...]``, ``[pytest]``/``[tool:pytest]`` section, conftest.py): unittest.
3. Nothing configures or requires pytest and the tests use ``unittest.TestCase``: unittest.
4. Otherwise pytest.

Without a declared command unittest runs ``discover -s TESTS`` (with ``-t .`` when TESTS
is a package), which is what ``python -m unittest`` finds from the project's root.
"""

from __future__ import annotations

import configparser
import re
import shlex
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci.core.config import BUNDLE_GROUP_PREFIX

# where projects keep the command their tests run with, in the order they are read
COMMAND_FILES = ("Makefile", "makefile", "GNUmakefile", "tox.ini", "noxfile.py")
_SHELL_STOP = frozenset({"&&", "||", ";", "|", ">", ">>", "2>&1", "<"})
_MAX_TEST_FILES = 2000  # a huge tree is sampled, not read whole
_UNITTEST_SHELL = re.compile(r"-m\s+unittest\b(?P<rest>[^\n]*)")
_UNITTEST_NOX = re.compile(
    r"""["']-m["']\s*,\s*["']unittest["'](?P<rest>(?:\s*,\s*["'][^"'\n]*["'])*)"""
)
_PYTEST_COMMAND = re.compile(r"(?:^|[\s\"'(,])(?:py\.test|pytest)(?![-_.\w])|-m\s+pytest\b")


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What the runner choice is made from: file texts and what the test modules hold."""

    command_files: Mapping[str, str] = field(default_factory=dict)  # name -> text
    pyproject: str = ""
    setup_cfg: str = ""
    tox_ini: str = ""
    pytest_files: tuple[str, ...] = ()  # pytest.ini, conftest.py, ... that exist
    tests_is_package: bool = False
    load_tests: tuple[str, ...] = ()  # test modules that define load_tests
    testcase_modules: int = 0  # test modules that use unittest.TestCase
    pytest_modules: int = 0  # test modules that import pytest


@dataclass(frozen=True, slots=True, kw_only=True)
class Suite:
    """The runner the test gate uses, the unittest arguments, and why."""

    runner: str  # "pytest" | "unittest"
    args: tuple[str, ...] = ()  # unittest's arguments (after ``python -m unittest``)
    reason: str = ""
    note: str = ""  # set when the choice was a close call: how to make it explicit


def read_facts(root: Path, tests: str) -> Facts:
    """Gather the facts ``choose`` reads from the project in ``root`` (reads only)."""

    def text(name: str) -> str:
        path = root / name
        try:
            return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        except OSError:
            return ""

    commands = {name: text(name) for name in COMMAND_FILES if text(name)}
    folder = root / tests
    pytest_files = tuple(
        name
        for name in ("pytest.ini", ".pytest.ini", "conftest.py", f"{tests}/conftest.py")
        if (root / name).is_file()
    )
    load_tests: list[str] = []
    testcase = pytest_modules = 0
    modules = sorted(folder.rglob("*.py")) if folder.is_dir() else []
    for path in modules[:_MAX_TEST_FILES]:
        body = text(path.relative_to(root).as_posix())
        if re.search(r"^def load_tests\(", body, re.MULTILINE):
            load_tests.append(path.relative_to(root).as_posix())
        if re.search(r"\bunittest\.TestCase\b|^from unittest import", body, re.MULTILINE):
            testcase += 1
        if re.search(r"^\s*(?:import pytest|from pytest\b)", body, re.MULTILINE):
            pytest_modules += 1
    return Facts(
        command_files=commands,
        pyproject=text("pyproject.toml"),
        setup_cfg=text("setup.cfg"),
        tox_ini=text("tox.ini"),
        pytest_files=pytest_files,
        tests_is_package=(folder / "__init__.py").is_file(),
        load_tests=tuple(load_tests),
        testcase_modules=testcase,
        pytest_modules=pytest_modules,
    )


def choose(facts: Facts, tests: str, configured: str | None = None) -> Suite:
    """The runner for the project ``facts`` describe (``configured``: the project's choice)."""
    default_args = ("discover", "-s", tests, *(("-t", ".") if facts.tests_is_package else ()))
    declared = declared_command(facts.command_files)
    args = declared[1] if declared and declared[0] == "unittest" else default_args
    if configured is not None:
        why = "runner in [tool.ci.gates.test]"
        return Suite(runner=configured, args=args if configured == "unittest" else (), reason=why)
    if declared is not None:
        runner, _, where = declared
        return Suite(
            runner=runner,
            args=args if runner == "unittest" else (),
            reason=f"the project's own test command in {where} runs {runner}",
        )
    configures_pytest = _configures_pytest(facts)
    if facts.load_tests:
        if configures_pytest:
            note = (
                f"{facts.load_tests[0]} defines load_tests, which pytest ignores, but the "
                f"project configures pytest ({configures_pytest}): the tests run with pytest; "
                'set [tool.ci.gates.test] runner = "unittest" if they are meant for unittest'
            )
            return Suite(
                runner="pytest", reason=f"pytest is configured ({configures_pytest})", note=note
            )
        return Suite(
            runner="unittest",
            args=default_args,
            reason=f"{facts.load_tests[0]} defines load_tests, which pytest does not call",
        )
    requires_pytest = configures_pytest or _requires_pytest(facts)
    if not requires_pytest and facts.testcase_modules and not facts.pytest_modules:
        return Suite(
            runner="unittest",
            args=default_args,
            reason="the tests are unittest.TestCase classes and nothing sets up pytest",
        )
    return Suite(runner="pytest", reason="pytest is the default runner")


def declared_command(files: Mapping[str, str]) -> tuple[str, tuple[str, ...], str] | None:
    """(runner, unittest arguments, file) of the first test command the project declares.

    A line that runs ``-m unittest`` gives its arguments up to the first shell operator;
    words holding a substitution (``$(ARGS)``, ``{posargs}``, ``*session.posargs``) are
    left out. A file that runs pytest and no unittest declares pytest.
    """
    for name in COMMAND_FILES:
        text = _without_comments(files.get(name, ""), name)
        if not text:
            continue
        found = _UNITTEST_NOX.search(text) if name == "noxfile.py" else None
        if found is not None:
            words = re.findall(r"""["']([^"'\n]*)["']""", found["rest"])
            return "unittest", _plain(words), name
        found = _UNITTEST_SHELL.search(text)
        if found is not None:
            return "unittest", _plain(_shell_words(found["rest"])), name
        if _PYTEST_COMMAND.search(text):
            return "pytest", (), name
    return None


def _without_comments(text: str, name: str) -> str:
    """``text`` less its comment lines (``#`` in all of these formats; ``;`` in tox.ini)."""
    marks = ("#", ";") if name == "tox.ini" else ("#",)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(marks))


def _shell_words(rest: str) -> list[str]:
    try:
        words = shlex.split(rest.split("\\\n", maxsplit=1)[0])
    except ValueError:
        words = rest.split()
    kept = []
    for word in words:
        if word in _SHELL_STOP:
            break
        kept.append(word)
    return kept


def _plain(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(w for w in words if w and not re.search(r"\$|\{.*\}|^\*", w))


def _configures_pytest(facts: Facts) -> str:
    """Where the project configures pytest (a file or section), or ""."""
    if facts.pytest_files:
        return facts.pytest_files[0]
    tool = _toml(facts.pyproject).get("tool", {})
    if isinstance(tool, dict) and "pytest" in tool:
        return "[tool.pytest] in pyproject.toml"
    for text, section, where in (
        (facts.tox_ini, "pytest", "tox.ini"),
        (facts.setup_cfg, "tool:pytest", "setup.cfg"),
    ):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(text)
        except configparser.Error:
            continue
        if parser.has_section(section):
            return f"[{section}] in {where}"
    return ""


def _requires_pytest(facts: Facts) -> bool:
    """True when the project's own dependencies (not the bundle's groups) name pytest."""
    data = _toml(facts.pyproject)
    project = data.get("project", {}) if isinstance(data.get("project"), dict) else {}
    lists: list[Any] = [project.get("dependencies", [])]
    extras = project.get("optional-dependencies", {})
    lists += list(extras.values()) if isinstance(extras, dict) else []
    groups = data.get("dependency-groups", {})
    if isinstance(groups, dict):
        lists += [v for k, v in groups.items() if not str(k).startswith(BUNDLE_GROUP_PREFIX)]
    entries = [e for lst in lists if isinstance(lst, list) for e in lst if isinstance(e, str)]
    if any(re.match(r"^\s*pytest\b(?![-_.\w])", e) for e in entries):
        return True
    return bool(re.search(r"^\s*pytest\b(?![-_.\w])", facts.tox_ini, re.MULTILINE))


def _toml(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text) if text else {}
    except tomllib.TOMLDecodeError:
        return {}
