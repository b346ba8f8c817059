"""The target's own files ``init`` edits: pyproject.toml (with tomlkit), ruff.toml, .gitignore.

Each edit only adds what is missing, so editing an already edited text returns it unchanged.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from tomlkit.container import OutOfOrderTableProxy
from tomlkit.items import AoT, Array, InlineTable, Table
from tomlkit.toml_document import TOMLDocument

from ci.adopt import layout
from ci.core.config import BUNDLE_GROUP_PREFIX
from ci.core.errors import UsageError
from ci.gates import lint_families, registry

SMOKE_TEST = "test_noxgate_smoke.py"

# Bundle files formatted to the bundle's style, not the target's: kept out of its linter.
LINT_EXCLUDE = ("ci", "noxfile.py", "tasks.py")
GITIGNORE = (
    ".nox/",
    "reports/",
    ".ci-state/",
    "dist/",
    "dist-assets/",
    "*.egg-info/",
    "ci/_build_info.json",
)

# What the sessions of the bundle's noxfile sync, by group name: each built-in gate's
# ``requires`` (ci.gates.registry). ``packaging`` is the copied ci/ package's one runtime
# dependency, so every group carries it.
TOOL_GROUPS: Mapping[str, tuple[str, ...]] = {
    **{group: (*tools, "packaging>=24") for group, tools in registry.groups().items()},
    "dev": ("nox>=2026.10.20", "invoke>=2.2"),
}
BUNDLE_MIN_PYTHON = "3.11"  # the copied ci/ uses tomllib and StrEnum

TomlTable = TOMLDocument | Table | OutOfOrderTableProxy


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependency:
    """noxgate as a locked dependency: its requirement and where uv gets it from."""

    requirement: str  # "noxgate>=0.1.0"
    source: Source
    # the thin files init writes whole (managed by `init --upgrade`, like generated code):
    # kept out of the project's ruff, whose import-sorting rules they cannot all satisfy
    lint_exclude: tuple[str, ...] = ()


def edit_pyproject(
    text: str,
    project: layout.Project,
    *,
    ruff_here: bool,
    setup_texts: tuple[str, str],
    notes: list[str],
    dependency: Dependency | None = None,
    modules: frozenset[str] = frozenset(),
    families: Sequence[str] = (),
    test_runner: str | None = None,
) -> str:
    """``text`` with requires-python, ``[tool.ci]``, the groups and the excludes added.

    With ``dependency`` every group the sessions sync gets noxgate (no copy to exclude);
    without it (``init --vendor``) the copied ci/ is kept out of ruff and the build.
    ``families`` are the lint families the project has files for: their tools join lint.
    """
    doc = tomlkit.parse(text)
    add_requires_python(doc, project, notes)
    add_tool_ci(doc, project, test_runner=test_runner)
    add_groups(
        doc, project, noxgate=dependency.requirement if dependency else None, families=families
    )
    if dependency is not None:
        add_source(doc, dependency.source)
        pin_setuptools_discovery(doc, project, setup_texts, notes, modules=modules)
        if ruff_here and dependency.lint_exclude:
            ruff = _ensure(_ensure(doc, "tool"), "ruff", super_table=False)
            exclude_from_ruff(ruff, dependency.lint_exclude)
        return space_new_tables(text, tomlkit.dumps(doc))
    if ruff_here:
        exclude_from_ruff(_ensure(_ensure(doc, "tool"), "ruff", super_table=False))
    exclude_from_build(doc, project, setup_texts, notes)
    return space_new_tables(text, tomlkit.dumps(doc))


def edit_ruff_toml(text: str, entries: Sequence[str] = LINT_EXCLUDE) -> str:
    """A ruff.toml with the bundle's files added to ``extend-exclude``."""
    doc = tomlkit.parse(text)
    exclude_from_ruff(doc, entries)
    return tomlkit.dumps(doc)


def space_new_tables(old: str, new: str) -> str:
    """A blank line before each table header that now follows a line it did not follow before."""
    before = set(itertools.pairwise(old.splitlines()))
    lines = new.splitlines(keepends=True)
    out = lines[:1]
    for prev, line in itertools.pairwise(lines):
        header = line.startswith("[") and prev.strip() != ""
        if header and (prev.rstrip("\n"), line.rstrip("\n")) not in before:
            out.append("\n")
        out.append(line)
    return "".join(out)


def add_requires_python(doc: TOMLDocument, project: layout.Project, notes: list[str]) -> None:
    """Give ``[project]`` a ``requires-python`` when it has none: uv locks per Python otherwise."""
    table = doc.get("project")
    if project.requires_python or not isinstance(table, Table):
        return
    if "requires-python" in [str(d) for d in table.get("dynamic", [])]:
        notes.append(
            "requires-python is dynamic: uv cannot read it, so `uv sync --locked` may call the "
            "lock stale on other Pythons; declare it in [project]"
        )
        return
    oldest = min(project.pythons, key=lambda v: tuple(int(x) for x in v.split(".")))
    table["requires-python"] = f">={oldest}"
    notes.append(
        f'[project] had no requires-python: added ">={oldest}" (the oldest Python the sessions '
        "test; uv needs one to lock for every Python); lower it if you support older ones"
    )


def _ensure(container: TomlTable, key: str, *, super_table: bool = True) -> TomlTable:
    """The table ``key`` of ``container``, created (as a dotted super table) when missing."""
    if key not in container:
        container[key] = tomlkit.table(is_super_table=super_table)
    node = container[key]
    if not isinstance(node, Table | OutOfOrderTableProxy):
        msg = f"pyproject.toml: {key} is not a table; fix it by hand first"
        raise UsageError(msg)
    return node


def add_tool_ci(
    doc: TOMLDocument, project: layout.Project, *, test_runner: str | None = None
) -> None:
    """Add ``[tool.ci]`` with the detected defaults, unless the target already has one.

    ``test_runner`` is written only where the test gate's detection was a close call.
    """
    tool = _ensure(doc, "tool")
    if "ci" in tool:
        return
    table = tomlkit.table()
    table.add(tomlkit.comment("added by `python -m ci init`; the bundle reads only this table"))
    table.add("packages", _array(project.packages))
    table.add("tests", project.tests or "tests")
    table.add("pythons", _array(project.pythons))
    gates = tomlkit.table(is_super_table=True)
    test = tomlkit.table()
    test.add(tomlkit.comment("raise to the coverage `nox -s test` reports once you know it"))
    test.add("coverage_min", 0)
    if test_runner is not None:
        test.add(tomlkit.comment("the tests could be meant for either runner: confirm"))
        test.add("runner", test_runner)
    gates.add("test", test)
    table.add("gates", gates)
    tool["ci"] = table


def _array(items: Iterable[str], *, multiline: bool = False) -> Array:
    array = tomlkit.array()
    for item in items:
        array.append(item)
    return array.multiline(multiline)


def tool_groups(
    project: layout.Project, *, noxgate: str | None, mypy: bool, families: Sequence[str] = ()
) -> dict[str, tuple[str, ...]]:
    """What each group the sessions sync needs (by the gates' group name), never over a pin.

    A tool the project declares itself (ruff and mypy also from its pre-commit revs) is
    written as the project declares it, so the lock never needs a newer one than the
    project allows; where its pytest pin rules out the bundle's floor, the pytest plugins
    go without a floor (the resolver picks ones that fit its pytest). mypy only when the
    lint gate runs it; the tools of the lint ``families`` the project has files for; with
    ``noxgate`` (a dependency) each group gets it, which brings ``packaging`` along.
    """
    pins = project.tool_pins
    loosen = _below_our_floor(pins.get("pytest"))
    out: dict[str, tuple[str, ...]] = {}
    for group, tools in TOOL_GROUPS.items():
        if group == "lint":
            tools = (*tools, *lint_families.requirements(families))  # noqa: PLW2901
        wanted = [_within_pins(t, pins, loosen=loosen) for t in tools]
        if not mypy:
            wanted = [t for t in wanted if _entry_key(t) != "mypy"]
        if noxgate is not None:
            wanted = [noxgate, *(t for t in wanted if _entry_key(t) != "packaging")]
        out[group] = tuple(wanted)
    return out


def _within_pins(tool: str, pins: Mapping[str, str], *, loosen: bool) -> str:
    """``tool`` as the project declares it, or ours; a pytest plugin bare when ``loosen``."""
    key = _entry_key(tool)
    if key in pins:
        return pins[key]
    if key.startswith("pytest-") and loosen:
        return key
    return tool


def _below_our_floor(pin: str | None) -> bool:
    """True when the project's pytest requirement rules out the pytest the bundle asks for."""
    ours = next((t for g in TOOL_GROUPS.values() for t in g if _entry_key(t) == "pytest"), None)
    if pin is None or ours is None:
        return False
    floors = [s.version for s in Requirement(ours).specifier if s.operator in {">=", "~=", "=="}]
    spec = Requirement(pin).specifier
    return bool(floors) and not spec.contains(floors[0], prereleases=True)


def bundle_group(group: str) -> str:
    """The name of the group that holds the bundle's tools for a gates' group (``noxgate-test``)."""
    return f"{BUNDLE_GROUP_PREFIX}{group}"


def mypy_on(doc: TOMLDocument) -> bool:
    """Whether ``[tool.ci.gates.lint] mypy`` is true in the document."""
    lint = doc.get("tool", {}).get("ci", {}).get("gates", {}).get("lint", {})
    return bool(lint.get("mypy", False)) if isinstance(lint, Mapping) else False


def add_groups(
    doc: TOMLDocument,
    project: layout.Project,
    *,
    noxgate: str | None = None,
    families: Sequence[str] = (),
) -> None:
    """Add the bundle's groups (``noxgate-lint``, ``noxgate-test``, ...) the sessions sync.

    The project's own groups are read, not changed: ``noxgate-test`` includes its test group
    (and repeats the test requirements it keeps elsewhere: extras, requirement files, tox);
    only its ``dev`` group gets one entry, ``{include-group = "noxgate-dev"}``, so
    ``uv run`` (the default groups) finds ``python -m ci``, nox and invoke.
    """
    indent = _indent_of(doc.as_string())
    groups = _ensure(doc, "dependency-groups", super_table=False)
    requires = doc.get("project", {}).get("requires-python")  # as add_requires_python left it
    marker = (
        f"python_version >= '{BUNDLE_MIN_PYTHON}'"
        if layout.admits_older_than(str(requires) if requires else None, BUNDLE_MIN_PYTHON)
        else None
    )
    groups_wanted = tool_groups(project, noxgate=noxgate, mypy=mypy_on(doc), families=families)
    for group, tools in groups_wanted.items():
        wanted: list[str | dict[str, str]] = [_with_marker(t, marker) for t in tools]
        if group == "test":
            if project.test_group:
                wanted.insert(0, {"include-group": project.test_group})
            wanted = [*project.test_requirements, *wanted]
        _merge_group(groups, bundle_group(group), wanted, indent)
    _merge_group(groups, "dev", [{"include-group": bundle_group("dev")}], indent)


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """Where uv installs noxgate from: the default index, another index, git or a folder."""

    kind: str  # "index" (the default one), "url" (another index), "git", "path"
    location: str = ""
    tag: str = ""

    def describe(self) -> str:
        """How ``--source`` spells it (recorded in the init state)."""
        if self.kind == "git":
            return f"git+{self.location}@{self.tag}"
        return self.location or "the package index"


def parse_source(raw: str | None, *, target: Path) -> Source:
    """``--source``: empty/``pypi`` (the index), an index URL, ``git+URL@TAG`` or a folder."""
    text = (raw or "").strip()
    if text in {"", "pypi", "index"}:
        return Source(kind="index")
    if text.startswith("git+"):
        url, sep, tag = text[4:].rpartition("@")
        if not sep or not url or not tag:
            msg = f"--source {text!r}: write a git source as git+URL@TAG (e.g. git+URL@v0.2.0)"
            raise UsageError(msg)
        return Source(kind="git", location=url, tag=tag)
    if text.startswith(("http://", "https://")):
        return Source(kind="url", location=text)
    folder = Path(text).expanduser()
    folder = folder if folder.is_absolute() else Path.cwd() / folder
    if not (folder / "pyproject.toml").is_file():
        msg = (
            f"--source {text!r} is neither an index URL, git+URL@TAG nor a folder with a "
            "pyproject.toml (a noxgate checkout)"
        )
        raise UsageError(msg)
    try:
        location = os.path.relpath(folder.resolve(), target.resolve())
    except ValueError:  # another drive
        location = str(folder.resolve())
    return Source(kind="path", location=Path(location).as_posix())


def add_source(doc: TOMLDocument, source: Source) -> None:
    """``[tool.uv.sources] noxgate`` (and an explicit ``[[tool.uv.index]]``) when not the index."""
    if source.kind == "index":
        return
    uv = _ensure(_ensure(doc, "tool"), "uv")
    entry = tomlkit.inline_table()
    if source.kind == "url":
        indexes = uv.get("index")
        if indexes is None:
            indexes = tomlkit.aot()
            uv["index"] = indexes
        if not isinstance(indexes, AoT):
            msg = "pyproject.toml: [tool.uv] index is not an array of tables; fix it by hand"
            raise UsageError(msg)
        if not any(str(i.get("name")) == "noxgate" for i in indexes):
            index = tomlkit.table()
            index.add("name", "noxgate")
            index.add("url", source.location)
            index.add("explicit", True)
            indexes.append(index)
        entry.update({"index": "noxgate"})
    elif source.kind == "git":
        entry.update({"git": source.location, "tag": source.tag})
    else:
        entry.update({"path": source.location})
    sources = _ensure(uv, "sources", super_table=False)
    if "noxgate" not in sources:
        sources["noxgate"] = entry


def group_requires_python(text: str, group: str, floor: str) -> str:
    """``text`` with ``[tool.uv.dependency-groups] GROUP = {requires-python = ">=FLOOR"}``.

    uv's setting for a dependency group that needs a newer Python than the project: uv
    then locks (and installs) that group for those Pythons only (``ci.adopt.lockhint``).
    """
    doc = tomlkit.parse(text)
    groups = _ensure(_ensure(_ensure(doc, "tool"), "uv"), "dependency-groups", super_table=False)
    entry = groups.get(group)
    if entry is None:
        entry = tomlkit.inline_table()
        groups[group] = entry
    if not isinstance(entry, InlineTable | Table):
        msg = f"pyproject.toml: [tool.uv.dependency-groups] {group} is not a table; fix it by hand"
        raise UsageError(msg)
    entry["requires-python"] = f">={floor}"
    return space_new_tables(text, tomlkit.dumps(doc))


def _with_marker(requirement: str, marker: str | None) -> str:
    """``requirement`` with ``marker`` added (joined by ``and`` to a marker it already has)."""
    if not marker:
        return requirement
    head, sep, own = requirement.partition(";")
    if sep and own.strip():
        return f"{head.rstrip()}; ({own.strip()}) and {marker}"
    return f"{head.rstrip()}; {marker}"


def _merge_group(
    groups: TomlTable, name: str, wanted: Sequence[str | dict[str, str]], indent: str
) -> None:
    """Append each wanted entry whose package (or included group) the group lacks."""
    array = groups.get(name)
    if array is not None and not isinstance(array, Array):
        msg = f"pyproject.toml: [dependency-groups] {name} is not a list; fix it by hand first"
        raise UsageError(msg)
    have = {_entry_key(entry) for entry in array or []}
    missing = []
    for entry in wanted:
        key = _entry_key(entry)
        if key not in have:
            have.add(key)
            missing.append(_toml_value(entry))
    if array is None:
        array = tomlkit.array()
        for item in missing:
            array.add_line(item, indent=indent)  # one per line, indented like the file's arrays
        array.add_line(indent="")
        groups[name] = array
        return
    for item in missing:
        array.append(item)
    if len(array) > 1 and "\n" not in array.as_string():
        array.multiline(True)


def _toml_value(entry: str | dict[str, str]) -> str | InlineTable:
    if isinstance(entry, str):
        return entry
    inline = tomlkit.inline_table()
    inline.update(entry)
    return inline


def _indent_of(text: str) -> str:
    """The indentation the file's multi-line arrays use (4 spaces when it has none)."""
    match = re.search(r"\[[ \t]*\n([ \t]+)[\"'{\w]", text)
    return match[1] if match else "    "


def _entry_key(entry: object) -> str:
    if isinstance(entry, Mapping):
        return f"include-group:{entry.get('include-group', '')}"
    try:
        return canonicalize_name(Requirement(str(entry)).name)
    except InvalidRequirement:
        return str(entry)


def exclude_from_ruff(table: TomlTable, entries: Sequence[str] = LINT_EXCLUDE) -> None:
    """Keep the bundle's files out of the target's ruff (its findings are its own)."""
    current = table.get("extend-exclude")
    if current is None:
        table["extend-exclude"] = _array(entries)
        return
    if not isinstance(current, Array):
        msg = "ruff config: extend-exclude is not a list; fix it by hand first"
        raise UsageError(msg)
    present = {str(item).strip("/") for item in current}
    for item in entries:
        if item not in present:
            current.append(item)


def exclude_from_build(
    doc: TOMLDocument, project: layout.Project, setup_texts: tuple[str, str], notes: list[str]
) -> None:
    """Keep the copied ci/ out of the target's wheel where its backend would pick it up."""
    find = doc.get("tool", {}).get("setuptools", {}).get("packages", {})
    table = find.get("find") if isinstance(find, Table | OutOfOrderTableProxy) else None
    if isinstance(table, Table | OutOfOrderTableProxy):
        if "." in [str(w) for w in table.get("where", ["."])]:
            current = table.get("exclude")
            if current is None:
                table["exclude"] = _array(("ci", "ci.*"))
            elif isinstance(current, Array):
                for item in ("ci", "ci.*"):
                    if item not in [str(x) for x in current]:
                        current.append(item)
    elif project.backend == "pdm" and project.layout == "flat":
        build = _ensure(_ensure(_ensure(doc, "tool"), "pdm"), "build", super_table=False)
        if "includes" not in build:
            current = build.get("excludes")
            if current is None:
                build["excludes"] = _array(("ci",))
            elif isinstance(current, Array) and "ci" not in [str(x) for x in current]:
                current.append("ci")
    setup_py, setup_cfg = setup_texts
    if (
        "find_packages(" in setup_py and "ci" not in setup_py.split("find_packages(", 1)[1][:200]
    ) or (re.search(r"(?m)^\s*packages\s*=\s*find:", setup_cfg)):
        notes.append(
            "setup.py/setup.cfg finds packages by itself: add 'ci' and 'ci.*' to its excludes so "
            "the copied bundle stays out of your wheel"
        )


def pin_setuptools_discovery(
    doc: TOMLDocument,
    project: layout.Project,
    setup_texts: tuple[str, str],
    notes: list[str],
    *,
    modules: frozenset[str] = frozenset(),
) -> None:
    """Name a flat-layout setuptools project's packages, so reports/ never joins its wheel.

    setuptools' automatic discovery takes every top-level folder for a (namespace) package
    and refuses to build when it finds more than one: the gates write ``reports/`` there.
    """
    if project.backend != "setuptools" or project.layout != "flat" or any(setup_texts):
        return
    tool = doc.get("tool", {})
    setuptools = tool.get("setuptools", {}) if isinstance(tool, Mapping) else {}
    if isinstance(setuptools, Mapping) and ({"packages", "py-modules"} & set(setuptools)):
        return
    mine = set(project.packages)
    if mine & modules and mine - modules:
        notes.append(
            "setuptools' flat-layout discovery would take reports/ (the gates' output) for a "
            "package: name your packages and modules in [tool.setuptools] to build"
        )
        return
    setuptools_table = _ensure(_ensure(doc, "tool"), "setuptools")
    if mine <= modules:
        setuptools_table["py-modules"] = _array(project.packages)
    else:
        table = _ensure(setuptools_table, "packages")
        find = tomlkit.table()
        find.add(tomlkit.comment("named by `python -m ci init`: reports/ is not a package"))
        find.add("include", _array(p for name in project.packages for p in (name, f"{name}.*")))
        table["find"] = find
    notes.append(
        "setuptools' flat-layout discovery would take reports/ (the gates' output) for a "
        f"package: [tool.setuptools.packages.find] now names yours ({', '.join(project.packages)})"
    )


def gitignore(old: str | None, *, vendor: bool = True) -> str:
    """``.gitignore`` with the folders the gates write to added (existing lines kept)."""
    text = old or ""
    have = {line.strip().strip("/") for line in text.splitlines()}
    entries = GITIGNORE if vendor else tuple(e for e in GITIGNORE if not e.startswith("ci/"))
    missing = [entry for entry in entries if entry.strip("/") not in have]
    if not missing:
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    block = "# noxgate (python -m ci init): reports, session venvs and build output\n"
    return text + ("\n" if text else "") + block + "".join(f"{m}\n" for m in missing)


def smoke_test(packages: Sequence[str]) -> str:
    """A first test for a project without tests: each package imports."""
    names = ", ".join(json.dumps(p) for p in packages)
    return (
        '"""A first test written by `python -m ci init`: the project\'s packages import."""\n'
        "\n"
        "import importlib\n"
        "\n"
        "import pytest\n"
        "\n"
        "\n"
        f'@pytest.mark.parametrize("name", [{names}])\n'
        "def test_package_imports(name: str) -> None:\n"
        '    """The package imports without error."""\n'
        "    module = importlib.import_module(name)\n"
        "    assert module.__name__ == name\n"
    )
