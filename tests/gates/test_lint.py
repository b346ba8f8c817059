import json
import os
import sys
from pathlib import Path

import pytest

from ci.core import config
from ci.core.clock import SystemClock
from ci.core.errors import ToolError
from ci.core.gate import GateStatus, context
from ci.core.runner import ProcessRunner
from ci.gates import lint
from ci.testing.fakes import FakeRunner


def project(tmp_path: Path, code: str, mypy: bool = False) -> config.Config:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0"\n'
        + (
            "[tool.ci.gates.lint]\nmypy = true\n[tool.mypy]\nfiles = ['demo.py']\nstrict = true\n"
            if mypy
            else ""
        )
    )
    (tmp_path / "demo.py").write_text(code)
    return config.load(cwd=tmp_path)


def test_clean_code_passes_with_real_ruff(tmp_path: Path) -> None:
    cfg = project(tmp_path, "VALUE = 1\n")
    result = lint.run(context(cfg, ProcessRunner(), SystemClock(), {}))
    assert result.status is GateStatus.PASSED


def test_unused_import_and_bad_format_are_findings(tmp_path: Path) -> None:
    cfg = project(tmp_path, "import os\nx=[1,\n 2]\n")
    result = lint.run(context(cfg, ProcessRunner(), SystemClock(), {}))
    assert result.status is GateStatus.FAILED
    rules = {(f.rule, f.file, f.line) for f in result.findings}
    assert ("F401", "demo.py", 1) in rules
    assert ("unformatted", "demo.py", 2) in rules


def test_mypy_findings_when_enabled(tmp_path: Path) -> None:
    cfg = project(tmp_path, "def f(x):\n    return x\n", mypy=True)
    result = lint.run(context(cfg, ProcessRunner(), SystemClock(), {}))
    assert any(f.rule.startswith("mypy:") and f.line == 1 for f in result.findings)


def test_ruff_crash_is_a_tool_error(tmp_path: Path) -> None:
    cfg = project(tmp_path, "x = 1\n")
    ruff = (sys.executable, "-m", "ruff", "check")
    fake = FakeRunner(script={ruff: (2, "", "error: bad config")})
    with pytest.raises(ToolError, match="ruff check crashed with exit status 2: error: bad config"):
        lint.run(context(cfg, fake, SystemClock(), {}))


def test_parsers(tmp_path: Path) -> None:
    items = [
        {
            "code": "E501",
            "message": "long",
            "filename": str(tmp_path / "a.py"),
            "location": {"row": 7},
        }
    ]
    (f,) = lint.ruff_findings(json.dumps(items), tmp_path)
    assert (f.file, f.line, f.rule) == ("a.py", 7, "E501")
    with pytest.raises(ToolError, match="not JSON"):
        lint.ruff_findings("oops", tmp_path)
    (m,) = lint.mypy_findings("ci/x.py:3: error: Missing return  [return]\nSuccess: no")
    assert (m.file, m.line, m.rule) == ("ci/x.py", 3, "mypy:return")


def test_missing_ruff_module_is_a_tool_error(tmp_path: Path) -> None:
    cfg = project(tmp_path, "x = 1\n")
    ruff = (sys.executable, "-m", "ruff", "check")
    fake = FakeRunner(script={ruff: (1, "", "/usr/bin/python: No module named ruff")})
    with pytest.raises(ToolError, match="No module named ruff"):
        lint.run(context(cfg, fake, SystemClock(), {}))


def test_a_ruff_without_format_json_is_read_from_its_plain_report(tmp_path: Path) -> None:
    # a project pinning an older ruff (0.4): `ruff format` knows no --output-format
    cfg = project(tmp_path, "x=1\n")
    ruff = (sys.executable, "-m", "ruff")
    usage = "error: unexpected argument '--output-format' found\n"
    fake = FakeRunner(
        script={
            (*ruff, "check"): (0, "[]", ""),
            (*ruff, "format", "--check", "--output-format=json"): (2, "", usage),
            (*ruff, "format", "--check", "."): (
                1,
                "Would reformat: demo.py\n1 file would be reformatted\n",
                "",
            ),
        }
    )
    result = lint.run(context(cfg, fake, SystemClock(), {}))
    assert [(f.rule, f.file, f.line) for f in result.findings] == [("unformatted", "demo.py", 1)]
    assert result.status is GateStatus.FAILED


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ("1 file already formatted\n", []),  # json.loads read '1' and stopped: "Extra data"
        ("Would reformat: demo.py\n1 file would be reformatted\n", [("unformatted", "demo.py")]),
    ],
)
def test_a_ruff_that_ignores_format_json_outside_preview_is_read_from_its_plain_report(
    tmp_path: Path, report: str, expected: list[tuple[str, str]]
) -> None:
    # ruff 0.15.5 as attrs pins it: the flag is only warned about, the report stays plain
    cfg = project(tmp_path, "x = 1\n")
    ruff = (sys.executable, "-m", "ruff")
    warning = (
        "warning: The --output-format flag for the formatter is unstable and requires "
        "preview mode to use.\n"
    )
    fake = FakeRunner(
        script={
            (*ruff, "check"): (0, "[]", ""),
            (*ruff, "format", "--check", "--output-format=json"): (
                1 if expected else 0,
                report,
                warning,
            ),
        }
    )
    result = lint.run(context(cfg, fake, SystemClock(), {}))
    assert [(f.rule, f.file) for f in result.findings] == expected
    assert result.status is (GateStatus.FAILED if expected else GateStatus.PASSED)


def test_mypy_findings_under_force_color_are_read(tmp_path: Path) -> None:
    # FORCE_COLOR is passed through to gates (CI sets it): mypy then colours its report
    cfg = project(tmp_path, "def f(x):\n    return x\n", mypy=True)
    runner = ProcessRunner({**os.environ, "FORCE_COLOR": "1", "MYPY_FORCE_COLOR": "1"})
    result = lint.run(context(cfg, runner, SystemClock(), {}))
    assert result.status is GateStatus.FAILED
    assert any(f.rule == "mypy:no-untyped-def" and f.line == 1 for f in result.findings)


def test_mypy_findings_with_columns_and_error_ends_are_read(tmp_path: Path) -> None:
    cfg = project(tmp_path, "def f(x):\n    return x\n", mypy=True)
    with (tmp_path / "pyproject.toml").open("a") as handle:
        handle.write("show_column_numbers = true\nshow_error_end = true\n")
    cfg = config.load(cwd=tmp_path)
    result = lint.run(context(cfg, ProcessRunner(), SystemClock(), {}))
    assert [(f.rule, f.file, f.line) for f in result.findings] == [
        ("mypy:no-untyped-def", "demo.py", 1)
    ]


def test_ruff_fix_in_the_project_config_neither_edits_nor_hides(tmp_path: Path) -> None:
    project(tmp_path, "import os\n")
    with (tmp_path / "pyproject.toml").open("a") as handle:
        handle.write("[tool.ruff]\nfix = true\n")
    cfg = config.load(cwd=tmp_path)
    result = lint.run(context(cfg, ProcessRunner(), SystemClock(), {}))
    assert ("F401", "demo.py", 1) in {(f.rule, f.file, f.line) for f in result.findings}
    assert (tmp_path / "demo.py").read_text() == "import os\n"


@pytest.mark.parametrize(
    ("tool", "answer", "expected"),
    [
        (("check",), (1, "[]", ""), "ruff check exited with status 1"),
        (("format",), (1, "[]", "warning: x\nerror: odd\n"), "ruff format --check .*: error: odd"),
        (
            ("mypy",),
            (1, "demo.py:1: \x1b[31merror:\x1b[m odd\nFound 1 error\n", ""),
            "mypy exited with status 1 .*: demo.py:1: \x1b",
        ),
    ],
)
def test_a_failing_linter_with_no_readable_finding_is_a_tool_error(
    tmp_path: Path, tool: tuple[str, ...], answer: tuple[int, str, str], expected: str
) -> None:
    cfg = project(tmp_path, "x = 1\n", mypy=True)
    ruff = (sys.executable, "-m", "ruff")
    script = {
        (*ruff, "check"): (0, "[]", ""),
        (*ruff, "format"): (0, "[]", ""),
        (sys.executable, "-m", "mypy"): (0, "Success: no issues found\n", ""),
    }
    key = (sys.executable, "-m", "mypy") if tool == ("mypy",) else (*ruff, *tool)
    script[key] = answer
    fake = FakeRunner(script=script)
    with pytest.raises(ToolError, match=expected) as caught:
        lint.run(context(cfg, fake, SystemClock(), {}))
    assert "no finding" in str(caught.value)


def test_a_crash_names_the_first_error_line(tmp_path: Path) -> None:
    # a bad value in the project's own ruff config: ruff exits 2
    project(tmp_path, "x = 1\n")
    with (tmp_path / "pyproject.toml").open("a") as handle:
        handle.write('[tool.ruff]\nline-length = "x"\n')
    cfg = config.load(cwd=tmp_path)
    with pytest.raises(
        ToolError, match=r"ruff check crashed with exit status 2: .*TOML parse error"
    ):
        lint.run(context(cfg, ProcessRunner(), SystemClock(), {}))


# --- ruff keeps to the project's own scope ------------------------------------------------

NOTEBOOK = json.dumps(
    {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "a1",
                "metadata": {},
                "outputs": [],
                "source": ["import os\n"],
            }
        ],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    },
    indent=1,
)


def ruff_hook(rev: str, extra: str = "") -> str:
    return (
        "repos:\n  - repo: https://github.com/astral-sh/ruff-pre-commit\n"
        f"    rev: {rev}\n    hooks:\n      - id: ruff\n{extra}      - id: ruff-format\n{extra}"
    )


@pytest.mark.parametrize(
    ("pre_commit", "ruff_table", "notebook_linted"),
    [
        pytest.param(None, "", True, id="no-hook-ruff-decides"),
        pytest.param(ruff_hook("v0.5.2"), "", False, id="hook-before-notebooks"),
        pytest.param(
            ruff_hook("v0.9.1", "        types_or: [python, pyi]\n"), "", False, id="python-only"
        ),
        pytest.param(ruff_hook("v0.9.1"), "", True, id="hook-with-notebooks"),
        pytest.param(
            ruff_hook("v0.5.2"),
            '[tool.ruff]\nextend-include = ["*.ipynb"]\n',
            True,
            id="config-includes-notebooks",
        ),
    ],
)
def test_ruff_checks_notebooks_only_where_the_project_does(
    tmp_path: Path, pre_commit: str | None, ruff_table: str, notebook_linted: bool
) -> None:
    cfg = project(tmp_path, "VALUE = 1\n")
    if ruff_table:
        with (tmp_path / "pyproject.toml").open("a") as handle:
            handle.write(ruff_table)
    if pre_commit:
        (tmp_path / ".pre-commit-config.yaml").write_text(pre_commit)
    (tmp_path / "explore.ipynb").write_text(NOTEBOOK)
    (tmp_path / "stubs.pyi").write_text("import os\n")  # every hook above takes stubs
    result = lint.run(context(config.load(cwd=cfg.root), ProcessRunner(), SystemClock(), {}))
    files = {f.file for f in result.findings if f.rule == "F401"}
    assert ("explore.ipynb" in files) is notebook_linted
    assert "stubs.pyi" in files


def test_ruff_keeps_the_project_excludes(tmp_path: Path) -> None:
    cfg = project(tmp_path, "VALUE = 1\n")
    with (tmp_path / "pyproject.toml").open("a") as handle:
        handle.write('[tool.ruff]\nextend-exclude = ["tests/data"]\n')
    (tmp_path / "tests" / "data").mkdir(parents=True)
    (tmp_path / "tests" / "data" / "broken.py").write_text("def f(:\n")
    result = lint.run(context(config.load(cwd=cfg.root), ProcessRunner(), SystemClock(), {}))
    assert result.status is GateStatus.PASSED, result.findings


@pytest.mark.parametrize(
    "hook_scope",
    [
        pytest.param("        exclude: ^docs/\n", id="hook-exclude"),
        pytest.param("        files: ^(demo|tests/.*)\\.py$\n", id="hook-files"),
    ],
)
def test_ruff_skips_what_the_project_ruff_hook_skips_by_name(
    tmp_path: Path, hook_scope: str
) -> None:
    cfg = project(tmp_path, "VALUE = 1\n")
    with (tmp_path / "pyproject.toml").open("a") as handle:
        handle.write('[tool.ruff]\nextend-exclude = ["tests/data"]\n')
    (tmp_path / ".pre-commit-config.yaml").write_text(ruff_hook("v0.9.1", hook_scope))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "conf.py").write_text("import os\n")  # the hooks never see it
    (tmp_path / "tests" / "data").mkdir(parents=True)
    (tmp_path / "tests" / "data" / "broken.py").write_text("def f(:\n")  # ruff's own exclude
    (tmp_path / "tests" / "test_demo.py").write_text("import sys\n")  # in the hooks' scope
    result = lint.run(context(config.load(cwd=cfg.root), ProcessRunner(), SystemClock(), {}))
    assert {(f.rule, f.file) for f in result.findings} == {("F401", "tests/test_demo.py")}


def test_ruff_is_not_run_over_the_tree_when_its_hook_skips_every_file(tmp_path: Path) -> None:
    cfg = project(tmp_path, "import os\n")
    (tmp_path / ".pre-commit-config.yaml").write_text(ruff_hook("v0.9.1", "        files: ^src/\n"))
    result = lint.run(context(config.load(cwd=cfg.root), ProcessRunner(), SystemClock(), {}))
    assert result.status is GateStatus.PASSED, result.findings


def test_ruff_format_leaves_out_what_the_hook_skips_without_flags_it_lacks(tmp_path: Path) -> None:
    # `ruff format` has no --extend-exclude: an old hook (no notebooks) must not crash it
    cfg = project(tmp_path, "VALUE = 1\n")
    (tmp_path / ".pre-commit-config.yaml").write_text(ruff_hook("v0.5.2"))
    unformatted = json.loads(NOTEBOOK)
    unformatted["cells"][0]["source"] = ["x  =  1\n"]
    (tmp_path / "explore.ipynb").write_text(json.dumps(unformatted, indent=1))
    (tmp_path / "bad.py").write_text("y  =  2\n")
    result = lint.run(context(config.load(cwd=cfg.root), ProcessRunner(), SystemClock(), {}))
    formatted = {f.file for f in result.findings if f.rule != "F401"}
    assert "bad.py" in formatted  # format still checks the project's Python files
    assert "explore.ipynb" not in formatted
