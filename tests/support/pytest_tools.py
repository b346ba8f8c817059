"""Answers for the test gate's tool calls when a test fakes the tools (pytest under coverage)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

# What the coverage probe prints for a project without coverage configuration.
PROBE = json.dumps(
    {
        "version": "7.10",
        "config_file": None,
        "source": [],
        "include": [],
        "patch": [],
        "branch": False,
        "fail_under": 0.0,
    }
)


def script(python: str) -> dict[tuple[str, ...], tuple[int, str, str]]:
    """FakeRunner entries: the coverage probe, ``coverage run -m pytest`` and the report step."""
    return {(python, "-m", "coverage", "run"): (0, "", ""), (python, "-c"): (0, PROBE, "")}


def write_reports(argv: Sequence[str], percent: float = 100.0) -> None:
    """What a passing run leaves behind: junit from pytest, the XML and total from coverage."""
    for arg in argv:
        if arg.startswith("--junitxml="):
            junit = Path(arg.split("=", 1)[1])
            junit.parent.mkdir(parents=True, exist_ok=True)
            junit.write_text(
                '<testsuite tests="1" failures="0" errors="0" skipped="0">'
                '<testcase classname="tests.test_demo" name="test_x"/></testsuite>'
            )
    if len(argv) > 5 and argv[1] == "-c" and argv[5].endswith("coverage-total.json"):
        xml, result = Path(argv[4]), Path(argv[5])
        xml.parent.mkdir(parents=True, exist_ok=True)
        xml.write_text(
            '<coverage lines-valid="10" lines-covered="10" branches-valid="0" branches-covered="0"/>'
        )
        result.write_text(json.dumps({"total": percent}))
