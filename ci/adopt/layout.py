"""What kind of Python project a folder holds: backend, layout, packages, tests, Pythons, test deps.

Pure functions over ``ProjectFiles`` (the texts ``read_project`` gathered), so every
detection rule is testable without a disk.
"""

from __future__ import annotations

import configparser
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from ci.core.config import BUNDLE_GROUP_PREFIX, DEFAULT_PYTHONS
from ci.core.errors import UsageError

# What setuptools' flat-layout discovery also skips: never the project's own package.
NOT_PACKAGES = frozenset(
    {"ci", "test", "tests", "testing", "doc", "docs", "example", "examples", "build", "dist"}
    | {"scripts", "tools", "benchmarks", "bench", "venv", "env", "site", "htmlcov", "noxfile"}
    | {"setup", "conftest", "tasks"}
)
TEST_DIRS = ("tests", "test", "testing")
TEST_GROUP_NAMES = ("test", "tests", "testing")
REQUIREMENT_GLOBS = (
    "tests/requirements*.txt",
    "test/requirements*.txt",
    "requirements-test*.txt",
    "requirements_test*.txt",
    "test-requirements*.txt",
    "test_requirements*.txt",
    "requirements/test*.txt",
)
BACKENDS = {
    "setuptools": "setuptools",
    "hatchling": "hatchling",
    "flit_core": "flit",
    "flit": "flit",
    "poetry": "poetry",
    "pdm": "pdm",
}
_PATCH_RANGE = 40  # patch releases probed when matching requires-python


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectFiles:
    """The facts read from a target folder: file texts and the names of its folders."""

    pyproject: str | None = None
    setup_py: str | None = None
    setup_cfg: str | None = None
    tox_ini: str | None = None
    pre_commit: str | None = None  # .pre-commit-config.yaml
    requirement_files: Mapping[str, str] = field(default_factory=dict)
    dirs: frozenset[str] = frozenset()  # relative folder paths, depth <= 2 (e.g. "src/pkg")
    files: frozenset[str] = frozenset()  # relative file paths, depth <= 2, and x/y/__init__.py


@dataclass(frozen=True, slots=True, kw_only=True)
class Project:
    """What ``detect`` found out about a target project."""

    name: str
    backend: str
    layout: str  # "src" or "flat"
    packages: tuple[str, ...]
    tests: str | None  # the test folder, None when the project has no tests yet
    pythons: tuple[str, ...]
    requires_python: str | None
    test_requirements: tuple[str, ...]
    test_group: str | None  # an existing dependency group holding the project's test deps
    tool_pins: Mapping[str, str] = field(default_factory=dict)  # what the project declares, by name
    notes: tuple[str, ...] = ()


def read_project(root: Path) -> ProjectFiles:
    """Gather the texts and folder names ``detect`` looks at (reads only; never writes)."""

    def text(rel: str) -> str | None:
        path = root / rel
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None

    dirs: set[str] = set()
    files: set[str] = set()
    for child in root.iterdir():
        if child.name.startswith("."):
            continue
        if child.is_dir():
            dirs.add(child.name)
            for grandchild in child.iterdir():
                rel = f"{child.name}/{grandchild.name}"
                (dirs if grandchild.is_dir() else files).add(rel)
                if (grandchild / "__init__.py").is_file():  # src/<package>/__init__.py
                    files.add(f"{rel}/__init__.py")
        else:
            files.add(child.name)
    requirements: dict[str, str] = {}
    tox = text("tox.ini")
    wanted = [
        p.relative_to(root).as_posix() for g in REQUIREMENT_GLOBS for p in sorted(root.glob(g))
    ]
    for ref in [*wanted, *_tox_requirement_refs(tox or "")]:
        # pip-tools: X.txt pins the whole tree; its X.in names only the direct test deps
        source = ref[:-4] + ".in" if ref.endswith(".txt") and text(ref[:-4] + ".in") else ref
        body = text(source)
        if body is not None:
            requirements.setdefault(source, body)
    return ProjectFiles(
        pyproject=text("pyproject.toml"),
        setup_py=text("setup.py"),
        setup_cfg=text("setup.cfg"),
        tox_ini=tox,
        pre_commit=text(".pre-commit-config.yaml"),
        requirement_files=requirements,
        dirs=frozenset(dirs),
        files=frozenset(files),
    )


def detect(facts: ProjectFiles, where: str = "TARGET") -> Project:
    """Work out name, backend, layout, packages, tests, Pythons and test deps of a project."""
    if facts.pyproject is None and facts.setup_py is None:
        msg = f"{where} is not a Python project (no pyproject.toml or setup.py); pick its root"
        raise UsageError(msg)
    data = _toml(facts.pyproject, where)
    project = _table(data, "project")
    if not project:
        msg = _no_project_table(data, facts, where)
        raise UsageError(msg)
    notes: list[str] = []
    name = str(project.get("name") or "")
    if not name:
        msg = f"{where}/pyproject.toml: [project] has no name; add one and rerun"
        raise UsageError(msg)
    backend = _backend(data)
    packages, layout = _packages(data, facts, name)
    if not packages:
        packages = (_import_name(name),)
        notes.append(
            f"no package folder found for {name!r}; using {packages[0]!r} in [tool.ci] packages"
        )
    if "ci" in packages:
        msg = (
            f"{where}: the project's own import package is named 'ci', the name the bundle "
            "needs for its copy; rename the package before adopting the bundle"
        )
        raise UsageError(msg)
    requires = project.get("requires-python")
    requires_python = str(requires) if isinstance(requires, str) else None
    groups = _table(data, "dependency-groups")
    test_group = next((g for g in TEST_GROUP_NAMES if g in groups), None)
    test_requirements = tuple(_test_requirements(data, facts, name, test_group))
    return Project(
        name=name,
        backend=backend,
        layout=layout,
        packages=packages,
        tests=_tests_dir(data, facts),
        pythons=supported_pythons(requires_python, where),
        requires_python=requires_python,
        test_requirements=test_requirements,
        test_group=test_group,
        tool_pins=tool_pins(data, facts.pre_commit, test_requirements),
        notes=tuple(notes),
    )


PINNED_TOOLS = ("ruff", "mypy")
# pre-commit hook repositories whose rev is the tool's version
PRE_COMMIT_REPOS = {
    "ruff": ("astral-sh/ruff-pre-commit", "charliermarsh/ruff-pre-commit"),
    "mypy": ("pre-commit/mirrors-mypy",),
}


def tool_pins(
    data: Mapping[str, Any], pre_commit: str | None, extra: Iterable[str] = ()
) -> dict[str, str]:
    """The requirement (name and specifier) of every package the project declares, by name.

    Its dependencies, optional dependencies, dependency groups (not the bundle's
    ``noxgate-*``) and ``extra`` requirements (test requirements kept elsewhere), as
    written; ruff and mypy also from the ``rev`` of their ``.pre-commit-config.yaml`` hooks
    (``==`` that version). The bundle adds none of these at a version of its own.
    """
    found: dict[str, str] = {}
    groups = _table(data, "dependency-groups")
    lists: list[Any] = [_table(data, "project").get("dependencies", [])]
    lists += [v for k, v in groups.items() if not str(k).startswith(BUNDLE_GROUP_PREFIX)]
    lists += [*_table(data, "project", "optional-dependencies").values(), list(extra)]
    for entries in lists:
        for entry in entries if isinstance(entries, list) else []:
            try:
                requirement = Requirement(str(entry)) if isinstance(entry, str) else None
            except InvalidRequirement:
                continue
            if requirement is None or requirement.url:
                continue
            name = canonicalize_name(requirement.name)
            if name not in found:
                found[name] = f"{name}{requirement.specifier}" if requirement.specifier else name
    for tool, version in pre_commit_revs(pre_commit or "").items():
        found.setdefault(tool, f"{tool}=={version}")
    return found


def pre_commit_revs(text: str) -> dict[str, str]:
    """Tool -> version from the ``repo:``/``rev:`` pairs of a pre-commit config (no YAML lib)."""
    revs: dict[str, str] = {}
    repo = None
    for line in text.splitlines():
        match = re.match(r"^\s*-?\s*repo:\s*['\"]?([^'\"\s#]+)", line)
        if match:
            repo = match[1].rstrip("/").removesuffix(".git")
            continue
        match = re.match(r"^\s*rev:\s*['\"]?v?([0-9][\w.+-]*)", line)
        if match and repo:
            for tool, repos in PRE_COMMIT_REPOS.items():
                if any(repo.endswith(r) for r in repos):
                    revs.setdefault(tool, match[1])
            repo = None
    return revs


def supported_pythons(requires_python: str | None, where: str = "TARGET") -> tuple[str, ...]:
    """The bundle's Pythons that ``requires-python`` admits, the default (3.12) first."""
    if not requires_python:
        return DEFAULT_PYTHONS
    try:
        spec = SpecifierSet(requires_python)
    except InvalidSpecifier:
        msg = f"{where}: requires-python = {requires_python!r} is not a version specifier"
        raise UsageError(msg) from None
    found = tuple(
        v for v in DEFAULT_PYTHONS if any(spec.contains(f"{v}.{p}") for p in range(_PATCH_RANGE))
    )
    if not found:
        msg = (
            f"{where}: requires-python = {requires_python!r} admits none of "
            f"{', '.join(sorted(DEFAULT_PYTHONS))}, which the bundle runs on"
        )
        raise UsageError(msg)
    return found


def admits_older_than(requires_python: str | None, version: str) -> bool:
    """True when ``requires-python`` (or its absence) admits a Python older than ``version``."""
    if not requires_python:
        return True
    spec = SpecifierSet(requires_python)
    major, minor = (int(x) for x in version.split("."))
    older = [f"{major}.{m}.{p}" for m in range(minor) for p in range(_PATCH_RANGE)]
    return any(spec.contains(v) for v in older)


def _toml(text: str | None, where: str) -> Mapping[str, Any]:
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{where}/pyproject.toml is not valid TOML ({exc}); fix it first"
        raise UsageError(msg) from None


def _table(data: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    node: Any = data
    for key in keys:
        node = node.get(key, {}) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}


def _no_project_table(data: Mapping[str, Any], facts: ProjectFiles, where: str) -> str:
    """Why a target without ``[project]`` cannot adopt the bundle, and what to do."""
    need = (
        "uv, which every session uses, needs a [project] table with name, version (or dynamic) "
        "and requires-python"
    )
    if "poetry" in _table(data, "tool"):
        return (
            f"{where} keeps its metadata in [tool.poetry] only; uv, which every session uses, "
            "needs a [project] table: run `uvx migrate-to-uv` in it (or add [project] with "
            "name, version and requires-python; poetry-core >= 2 reads it), then run init again"
        )
    has = "setup.py" if facts.setup_py is not None else "pyproject.toml"
    return f"{where} has {has} but no [project] table; {need}: add one and rerun"


def _backend(data: Mapping[str, Any]) -> str:
    raw = str(_table(data, "build-system").get("build-backend") or "setuptools")
    for prefix, name in BACKENDS.items():
        if raw.startswith(prefix):
            return name
    return raw


def _import_name(name: str) -> str:
    return re.sub(r"[-.]+", "_", name).lower()


def _packages(
    data: Mapping[str, Any], facts: ProjectFiles, name: str
) -> tuple[tuple[str, ...], str]:
    """The import packages (or modules) of the project, and whether it uses src/."""
    layout = "src" if "src" in facts.dirs else "flat"
    explicit = _configured_packages(data)
    if explicit:
        return explicit, layout
    wanted = _import_name(name)
    base = "src/" if layout == "src" else ""
    for rel in sorted(facts.dirs):
        if rel.lower() == f"{base}{wanted}" and f"{rel}/__init__.py" in facts.files:
            return (rel.rsplit("/", 1)[-1],), layout
    for rel in sorted(facts.files):
        if rel.lower() == f"{base}{wanted}.py":
            return (rel.rsplit("/", 1)[-1][:-3],), layout
    found = sorted(
        rel[len(base) :]
        for rel in facts.dirs
        if rel.startswith(base)
        and "/" not in rel[len(base) :]
        and f"{rel}/__init__.py" in facts.files
        and rel[len(base) :] not in NOT_PACKAGES
    )
    return tuple(found), layout


def _configured_packages(data: Mapping[str, Any]) -> tuple[str, ...]:
    """Packages named in the backend's own configuration, when it names them."""
    module = _table(data, "tool", "flit", "module").get("name")
    if isinstance(module, str):
        return (module.split(".")[0],)
    hatch = _table(data, "tool", "hatch", "build", "targets", "wheel").get("packages")
    if isinstance(hatch, list) and hatch:
        return tuple(dict.fromkeys(str(p).rstrip("/").rsplit("/", 1)[-1] for p in hatch))
    setuptools = _table(data, "tool", "setuptools").get("packages")
    if isinstance(setuptools, list) and setuptools:
        return tuple(dict.fromkeys(str(p).split(".")[0] for p in setuptools))
    poetry = _table(data, "tool", "poetry").get("packages")
    if isinstance(poetry, list):
        names = [p["include"] for p in poetry if isinstance(p, Mapping) and "include" in p]
        if names:
            return tuple(dict.fromkeys(str(n).split("/")[0] for n in names))
    return ()


def _tests_dir(data: Mapping[str, Any], facts: ProjectFiles) -> str | None:
    testpaths = _table(data, "tool", "pytest", "ini_options").get("testpaths")
    if isinstance(testpaths, str):  # pytest also takes one space-separated string
        testpaths = testpaths.split()
    if isinstance(testpaths, list) and testpaths and str(testpaths[0]).strip("/") in facts.dirs:
        return str(testpaths[0]).strip("/")
    return next((d for d in TEST_DIRS if d in facts.dirs), None)


def _test_requirements(
    data: Mapping[str, Any], facts: ProjectFiles, name: str, test_group: str | None
) -> list[str]:
    """The project's own test dependencies from every place projects keep them."""
    found: list[str] = []
    extras = _table(data, "project", "optional-dependencies")
    if test_group is None:
        for extra in TEST_GROUP_NAMES:
            found += [str(r) for r in extras.get(extra, []) if isinstance(r, str)]
    for rel in sorted(facts.requirement_files):
        found += _requirement_lines(facts.requirement_files[rel].splitlines())
    if facts.tox_ini:
        deps = _tox_deps(facts.tox_ini)
        for extra in _self_extras(deps):
            found += [str(r) for r in extras.get(extra, []) if isinstance(r, str)]
        found += _requirement_lines(deps)
    poetry = _table(data, "tool", "poetry", "group")
    for group in TEST_GROUP_NAMES:
        found += [
            n for n in _table(poetry, group, "dependencies") if isinstance(n, str) and n != "python"
        ]
    pdm_dev = _table(data, "tool", "pdm", "dev-dependencies")
    for group in TEST_GROUP_NAMES:
        found += [str(r) for r in pdm_dev.get(group, []) if isinstance(r, str)]
    return unique_requirements(found, skip={canonicalize_name(name)})


def unique_requirements(lines: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """Valid requirement strings, first occurrence of each name kept, ``skip`` names dropped."""
    seen = set(skip)
    kept = []
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        key = canonicalize_name(requirement.name)
        if key not in seen:
            seen.add(key)
            kept.append(str(requirement))
    return kept


def _requirement_lines(lines: Iterable[str]) -> list[str]:
    """Plain requirement lines: comments, options, paths and tox substitutions dropped."""
    kept = []
    for raw in lines:
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line or line.startswith(("-", ".", "/", "{")) or "{" in line:
            continue
        if re.match(r"^[\w{},.!-]+:\s", line):  # a tox factor-conditional line: not for every env
            continue
        kept.append(line)
    return kept


def _tox_deps(text: str) -> list[str]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return []
    if not parser.has_option("testenv", "deps"):
        return []
    return parser.get("testenv", "deps").splitlines()


def _tox_requirement_refs(text: str) -> list[str]:
    """Files named by ``-r`` lines of tox.ini's ``[testenv] deps`` (relative to the root)."""
    refs = []
    for line in _tox_deps(text):
        match = re.match(r"^\s*-r\s*(\S+)", line)
        if match:
            ref = match[1].replace("{toxinidir}/", "").replace("{toxinidir}", "")
            if ref and ".." not in ref and not ref.startswith("/"):
                refs.append(ref)
    return refs


def _self_extras(deps: Iterable[str]) -> list[str]:
    """Extras of the project itself that tox installs (``.[test]``, ``-e .[test,cov]``)."""
    extras = []
    for line in deps:
        match = re.match(r"^\s*(?:-e\s*)?\.\[([\w,\s-]+)\]", line)
        if match:
            extras += [e.strip() for e in match[1].split(",") if e.strip()]
    return extras
