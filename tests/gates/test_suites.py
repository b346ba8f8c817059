from pathlib import Path

import pytest

from ci.gates import suites

TESTCASE = "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_x(self):\n        pass\n"
LOAD_TESTS = TESTCASE + "\n\ndef load_tests(loader, tests, pattern):\n    return tests\n"


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    return root


def choose(root: Path, configured: str | None = None) -> suites.Suite:
    return suites.choose(suites.read_facts(root, "tests"), "tests", configured)


@pytest.mark.parametrize(
    ("files", "text", "expected"),
    [
        (
            "Makefile",
            "test:\n\t$(PYTHON) -m unittest discover -s tests -p 'check_*.py' $(ARGS) && echo\n",
            ("unittest", ("discover", "-s", "tests", "-p", "check_*.py"), "Makefile"),
        ),
        (
            "tox.ini",
            "[testenv]\ncommands =\n    coverage run -m unittest {posargs}\n",
            ("unittest", (), "tox.ini"),
        ),
        (
            "noxfile.py",
            'def tests(session):\n    session.run("python", "-m", "unittest", "discover", "-s",'
            ' "src", *session.posargs)\n',
            ("unittest", ("discover", "-s", "src"), "noxfile.py"),
        ),
        ("Makefile", "test:\n\tpython -m pytest -q\n", ("pytest", (), "Makefile")),
        ("tox.ini", "[testenv]\ncommands = pytest {posargs}\n", ("pytest", (), "tox.ini")),
        ("Makefile", "# python -m unittest\nlint:\n\truff check .\n", None),
        ("Makefile", "clean:\n\trm -rf .pytest_cache pytest.ini\n", None),
    ],
)
def test_declared_command(files: str, text: str, expected: object) -> None:
    assert suites.declared_command({files: text}) == expected


def test_load_tests_without_pytest_config_is_unittest(tmp_path: Path) -> None:
    root = tree(tmp_path, {"tests/__init__.py": "", "tests/test_a.py": LOAD_TESTS})
    suite = choose(root)
    assert suite.runner == "unittest"
    assert suite.args == ("discover", "-s", "tests", "-t", ".")
    assert "tests/test_a.py defines load_tests" in suite.reason


def test_load_tests_with_pytest_configured_stays_pytest_and_says_how_to_switch(
    tmp_path: Path,
) -> None:
    root = tree(
        tmp_path,
        {"tests/test_a.py": LOAD_TESTS, "pyproject.toml": "[tool.pytest.ini_options]\n"},
    )
    suite = choose(root)
    assert suite.runner == "pytest"
    assert 'runner = "unittest"' in suite.note


def test_plain_testcase_suite_without_pytest_is_unittest_and_not_a_package(
    tmp_path: Path,
) -> None:
    root = tree(tmp_path, {"tests/test_a.py": TESTCASE})
    suite = choose(root)
    assert (suite.runner, suite.args) == ("unittest", ("discover", "-s", "tests"))


@pytest.mark.parametrize(
    "extra",
    [
        {"pyproject.toml": '[dependency-groups]\ntest = ["pytest>=8"]\n'},
        {"tests/conftest.py": ""},
        {"setup.cfg": "[tool:pytest]\naddopts = -q\n"},
        {"tests/test_b.py": "import pytest\n\n\ndef test_b():\n    pass\n"},
    ],
)
def test_testcase_suite_that_sets_up_pytest_is_pytest(tmp_path: Path, extra: dict) -> None:
    root = tree(tmp_path, {"tests/test_a.py": TESTCASE, **extra})
    assert choose(root).runner == "pytest"


def test_the_bundles_own_groups_do_not_make_a_suite_pytest(tmp_path: Path) -> None:
    pyproject = '[dependency-groups]\nnoxgate-test = ["pytest>=8.4"]\n'
    root = tree(tmp_path, {"tests/test_a.py": TESTCASE, "pyproject.toml": pyproject})
    assert choose(root).runner == "unittest"


def test_the_declared_command_wins_and_runner_overrides_all(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {"tests/test_a.py": LOAD_TESTS, "Makefile": "test:\n\tpytest\n"},
    )
    assert choose(root).runner == "pytest"
    forced = choose(root, "unittest")
    assert (forced.runner, forced.args) == ("unittest", ("discover", "-s", "tests"))
    assert choose(root, "pytest").runner == "pytest"
