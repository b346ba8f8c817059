from pathlib import Path

import pytest

from ci.gates import coverage as coverage_module


@pytest.mark.parametrize(
    ("files", "value", "source"),
    [
        ({"Makefile": "test:\n\tcoverage report --fail-under=99\n"}, 99, "Makefile"),
        ({"tox.ini": "[testenv]\ncommands = coverage report --fail-under 97.5\n"}, 97.5, "tox.ini"),
        (
            {"noxfile.py": 'session.run("coverage", "report", "--fail-under", "90")\n'},
            90,
            "noxfile.py",
        ),
        (
            {"Makefile": "a:\n\tpytest --cov-fail-under=80\nb:\n\tx --fail-under=95\n"},
            95,
            "Makefile",
        ),
    ],
)
def test_declared_floor(tmp_path: Path, files: dict[str, str], value: float, source: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    got = coverage_module.declared_floor(tmp_path)
    assert got is not None
    assert (got.value, got.source) == (value, f"--fail-under={value:g} in {source}")


def test_no_declared_floor_in_comments_or_missing_files(tmp_path: Path) -> None:
    assert coverage_module.declared_floor(tmp_path) is None
    (tmp_path / "Makefile").write_text("# coverage report --fail-under=99\n")
    assert coverage_module.declared_floor(tmp_path) is None


def test_the_floor_is_the_highest_of_the_three() -> None:
    declared = coverage_module.Floor(value=99, source="--fail-under=99 in Makefile")
    assert coverage_module.floor(0, None, declared) == declared
    assert coverage_module.floor(100, None, declared).value == 100
