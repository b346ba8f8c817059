from pathlib import Path

import pytest

from ci.adopt import layout
from ci.core.errors import ExitCode, UsageError


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def detect(root: Path) -> layout.Project:
    return layout.detect(layout.read_project(root), str(root))


PYPROJECT = """[build-system]
requires = ["{req}"]
build-backend = "{backend}"

[project]
name = "{name}"
version = "1.0"
requires-python = "{requires}"
"""


def pyproject(
    name: str = "demo-pkg",
    backend: str = "setuptools.build_meta",
    req: str = "setuptools",
    requires: str = ">=3.9",
    extra: str = "",
) -> str:
    return PYPROJECT.format(name=name, backend=backend, req=req, requires=requires) + extra


def test_setuptools_src_layout(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pyproject.toml": pyproject(),
            "src/demo_pkg/__init__.py": "",
            "tests/test_x.py": "",
        },
    )
    found = detect(root)
    assert found.name == "demo-pkg"
    assert found.backend == "setuptools"
    assert found.layout == "src"
    assert found.packages == ("demo_pkg",)
    assert found.tests == "tests"
    assert found.pythons == ("3.12", "3.11", "3.13")
    assert found.notes == ()


def test_hatchling_flat_layout_without_tests(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pyproject.toml": pyproject(backend="hatchling.build", req="hatchling"),
            "demo_pkg/__init__.py": "",
            "docs/conf.py": "",
        },
    )
    found = detect(root)
    assert (found.backend, found.layout, found.packages, found.tests) == (
        "hatchling",
        "flat",
        ("demo_pkg",),
        None,
    )


def test_flit_single_module_and_poetry_pdm_backends(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pyproject.toml": pyproject(name="tiny", backend="flit_core.buildapi", req="flit_core"),
            "tiny.py": "",
        },
    )
    assert detect(root).packages == ("tiny",)
    assert detect(root).backend == "flit"
    for backend, name in (("poetry.core.masonry.api", "poetry"), ("pdm.backend", "pdm")):
        write(tmp_path, {"pyproject.toml": pyproject(name="tiny", backend=backend)})
        assert detect(root).backend == name


def test_backend_configuration_names_the_packages(tmp_path: Path) -> None:
    hatch = '\n[tool.hatch.build.targets.wheel]\npackages = ["src/real_name"]\n'
    root = write(tmp_path, {"pyproject.toml": pyproject(extra=hatch), "src/real_name/a.py": ""})
    assert detect(root).packages == ("real_name",)
    flit = '\n[tool.flit.module]\nname = "other.sub"\n'
    write(tmp_path, {"pyproject.toml": pyproject(extra=flit)})
    assert detect(root).packages == ("other",)


def test_unmatched_name_falls_back_to_the_one_package_folder(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pyproject.toml": pyproject(name="py-thing"),
            "thing/__init__.py": "",
            "tests/__init__.py": "",
            "ci_tools/readme.txt": "",
        },
    )
    assert detect(root).packages == ("thing",)


def test_no_package_at_all_uses_the_name_and_says_so(tmp_path: Path) -> None:
    root = write(tmp_path, {"pyproject.toml": pyproject(name="Some.Name")})
    found = detect(root)
    assert found.packages == ("some_name",)
    assert "no package folder" in found.notes[0]


@pytest.mark.parametrize(
    ("requires", "pythons"),
    [
        (">=3.12", ("3.12", "3.13")),
        (">=3.8,<3.12", ("3.11",)),
        (">=3.11.4", ("3.12", "3.11", "3.13")),
        ("~=3.13.0", ("3.13",)),
        (None, ("3.12", "3.11", "3.13")),
    ],
)
def test_pythons_follow_requires_python(requires: str | None, pythons: tuple[str, ...]) -> None:
    assert layout.supported_pythons(requires) == pythons


@pytest.mark.parametrize("requires", ["<3.10", "==3.10.*", "not a spec"])
def test_requires_python_the_bundle_cannot_run_on_is_exit_2(requires: str) -> None:
    with pytest.raises(UsageError) as info:
        layout.supported_pythons(requires, "proj")
    assert info.value.exit_code is ExitCode.USAGE
    assert "proj" in str(info.value)


def test_admits_older_than() -> None:
    assert layout.admits_older_than(">=3.9", "3.11")
    assert layout.admits_older_than(None, "3.11")
    assert not layout.admits_older_than(">=3.11", "3.11")
    assert not layout.admits_older_than(">=3.12,<4", "3.11")


def test_not_a_python_project_is_exit_2(tmp_path: Path) -> None:
    write(tmp_path, {"package.json": "{}"})
    with pytest.raises(UsageError, match="not a Python project"):
        detect(tmp_path)


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({"setup.py": "from setuptools import setup\nsetup(name='x')\n"}, "has setup.py but no"),
        ({"pyproject.toml": '[tool.poetry]\nname = "p"\n'}, "[tool.poetry] only; uv"),
        ({"pyproject.toml": "[tool.poetry]\npackage-mode = false\n"}, "`uvx migrate-to-uv`"),
        ({"pyproject.toml": "[tool.black]\nx = 1\n"}, "has pyproject.toml but no [project]"),
        ({"pyproject.toml": '[project]\nversion = "1"\n'}, "[project] has no name"),
    ],
)
def test_a_project_without_a_project_table_is_refused(
    tmp_path: Path, files: dict[str, str], needle: str
) -> None:
    root = write(tmp_path, files)
    with pytest.raises(UsageError) as info:
        detect(root)
    assert needle in str(info.value)
    assert info.value.exit_code is ExitCode.USAGE


def test_a_project_whose_own_package_is_ci_is_refused(tmp_path: Path) -> None:
    root = write(tmp_path, {"pyproject.toml": pyproject(name="ci"), "src/ci/__init__.py": ""})
    with pytest.raises(UsageError, match="named 'ci'"):
        detect(root)


def test_test_requirements_from_extras_files_and_tox(tmp_path: Path) -> None:
    extras = """
[project.optional-dependencies]
test = ["pytest>=7", "hypothesis"]
docs = ["sphinx"]
cov = ["coverage>=7"]
"""
    tox = """[tox]
envlist = py39,py312

[testenv]
deps =
    -r{toxinidir}/requirements/ci.txt
    .[cov]
    freezegun  # time travel
    py39: backports.zoneinfo
    {env:EXTRA_DEP:}
    demo-pkg
commands = pytest
"""
    root = write(
        tmp_path,
        {
            "pyproject.toml": pyproject(extra=extras),
            "tox.ini": tox,
            "requirements/ci.txt": "responses==0.25\n-c constraints.txt\n",
            "tests/requirements-test.txt": "# test deps\npytest-mock\n--index-url https://x\n",
        },
    )
    found = detect(root)
    assert found.test_requirements == (
        "pytest>=7",
        "hypothesis",
        "responses==0.25",
        "pytest-mock",
        "coverage>=7",
        "freezegun",
    )
    assert "sphinx" not in found.test_requirements


def test_an_existing_test_group_is_used_instead_of_the_extra(tmp_path: Path) -> None:
    extra = """
[project.optional-dependencies]
tests = ["pytest"]

[dependency-groups]
tests = ["pytest>=8"]
"""
    root = write(tmp_path, {"pyproject.toml": pyproject(extra=extra)})
    found = detect(root)
    assert found.test_group == "tests"
    assert found.test_requirements == ()


def test_poetry_and_pdm_test_groups(tmp_path: Path) -> None:
    extra = """
[tool.poetry.group.test.dependencies]
pytest = "^8"
faker = "*"

[tool.pdm.dev-dependencies]
test = ["pytest-asyncio>=0.23"]
"""
    root = write(tmp_path, {"pyproject.toml": pyproject(extra=extra)})
    assert detect(root).test_requirements == ("pytest", "faker", "pytest-asyncio>=0.23")


def test_invalid_pyproject_is_exit_2(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "[project\nname="})
    with pytest.raises(UsageError, match="not valid TOML"):
        detect(tmp_path)


def test_pip_compiled_requirements_are_read_from_their_in_file(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pyproject.toml": pyproject(),
            "tox.ini": "[testenv]\ndeps = -r requirements/tests.txt\n",
            "requirements/tests.in": "pytest\nfreezegun\n",
            "requirements/tests.txt": "freezegun==1.4.0\npackaging==24.0\npytest==8.1.1\n",
        },
    )
    assert detect(root).test_requirements == ("pytest", "freezegun")


@pytest.mark.parametrize("testpaths", ['["checks/"]', '"checks other"'])
def test_pytest_testpaths_name_the_test_folder(tmp_path: Path, testpaths: str) -> None:
    extra = f"\n[tool.pytest.ini_options]\ntestpaths = {testpaths}\n"
    root = write(
        tmp_path,
        {"pyproject.toml": pyproject(extra=extra), "checks/test_a.py": "", "tests/x.py": ""},
    )
    assert detect(root).tests == "checks"


def test_tool_pins_come_from_groups_then_pre_commit() -> None:
    pre_commit = (
        "repos:\n"
        "  - repo: https://github.com/astral-sh/ruff-pre-commit\n"
        "    rev: v0.6.9\n"
        "    hooks:\n      - id: ruff\n"
        "  - repo: https://github.com/pre-commit/mirrors-mypy\n"
        "    rev: 'v1.11.2'\n"
    )
    assert layout.tool_pins({}, pre_commit) == {"ruff": "ruff==0.6.9", "mypy": "mypy==1.11.2"}
    data = {"dependency-groups": {"lint": ["Ruff>=0.5,<0.6"]}}
    assert layout.tool_pins(data, pre_commit) == {"ruff": "ruff<0.6,>=0.5", "mypy": "mypy==1.11.2"}
    assert layout.tool_pins({}, None) == {}
