import json
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
