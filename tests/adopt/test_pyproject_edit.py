import tomllib

from packaging.requirements import Requirement

from ci.adopt import layout, pyproject_edit
from ci.gates import registry
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
    for group in ("lint", "security", "package", "workflows"):
        for entry in own.get(group, []):
            if not isinstance(entry, str) or entry.startswith(("types-", "tomlkit")):
                continue  # stubs, and what mypy needs to check noxgate's own ci/ (init's tomlkit)
            requirement = Requirement(entry)
            assert requirement.name.lower() in ours, f"{group}: {entry}"
            assert ours[requirement.name.lower()].specifier == requirement.specifier, entry
