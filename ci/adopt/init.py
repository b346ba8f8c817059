"""``init``: plan the bundle's files and pyproject edits for a target project, then apply them.

By default noxgate becomes a locked dependency of the target and init writes only the thin
files (``ci.adopt.thin``); ``--vendor`` copies the ``ci/`` package instead. ``plan`` is pure
(facts in, a ``Plan`` out); ``gather`` reads the target and the running bundle; ``apply``
writes the plan (undoing its writes if ``uv lock`` fails), locks and scans.
"""

from __future__ import annotations

import contextlib
import difflib
import enum
import json
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ci import __version__
from ci.adopt import layout, lockhint, pyproject_edit, thin
from ci.core import config
from ci.core import uv as bundle_uv
from ci.core.errors import ToolError, UsageError
from ci.core.files import atomic_write_bytes
from ci.core.runner import Runner
from ci.gates import lint_families, suites
from ci.release.version import DEFAULT_FORMAT, TagFormat, workflow_text

VERSION_FILE = "ci/VERSION"
WHEEL_BUNDLE = "_bundle"  # ci/_bundle/: noxfile, tasks and workflows inside an installed wheel
WORKFLOWS = ".github/workflows"
WORKFLOW_HEADER = "# noxgate bundle workflow: `python -m ci init --upgrade` keeps it current."
BASELINE = ".secrets.baseline"
TASKS_INIT = "tasks/__init__.py"
TASKS_SUBMODULE = f"tasks/{thin.TASKS_SUBMODULE}"
THIN_FILES = (
    "noxfile.py",
    "tasks.py",
    TASKS_INIT,
    TASKS_SUBMODULE,
    thin.DEPENDABOT,
    thin.STATE_FILE,
)
_SKIP_IN_BUNDLE = {"VERSION", "_build_info.json"}


class Change(enum.StrEnum):
    """What ``init`` does to one file."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    KEEP = "keep"  # differs from the bundle; left alone (init without --upgrade)
    SAME = "unchanged"


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundle:
    """The running bundle: its version and the text of every file it copies (by target path)."""

    version: str
    files: Mapping[str, str]  # "noxfile.py", "tasks.py", "ci/...", ".github/workflows/x.yml"


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What ``plan`` needs to know about the target folder."""

    where: str
    facts: layout.ProjectFiles
    existing: Mapping[str, str]  # text of each file init may touch, by relative path
    ci_files: frozenset[str]  # every file under the target's ci/ (for upgrades)
    workflows: Mapping[str, str]  # text of each file in .github/workflows/
    ruff_toml: str | None  # "ruff.toml" or ".ruff.toml" when the target keeps ruff there
    tag_format: TagFormat = DEFAULT_FORMAT  # the workflows' tag filters follow it
    lint_families: tuple[str, ...] = ()  # the lint families it has files for (lint_families_of)


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The flags of ``init``."""

    upgrade: bool = False
    force: bool = False
    vendor: bool = False
    source: pyproject_edit.Source | None = None  # None: as recorded, else the package index


@dataclass(frozen=True, slots=True, kw_only=True)
class FileChange:
    """One file ``init`` writes, deletes or leaves alone, with its old and new text."""

    path: str
    change: Change
    old: str | None
    new: str | None
    bundle: bool  # a bundle file (shown as a diff by --upgrade)

    def diff(self) -> str:
        """A unified diff from the target's text to the new text."""
        return "".join(
            difflib.unified_diff(
                (self.old or "").splitlines(keepends=True),
                (self.new or "").splitlines(keepends=True),
                fromfile=f"a/{self.path}" if self.old is not None else "/dev/null",
                tofile=f"b/{self.path}" if self.new is not None else "/dev/null",
            )
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Everything ``init`` will do to a target, worked out before anything is touched."""

    project: layout.Project
    adopted: str | None  # the bundle version already in the target, if any
    files: tuple[FileChange, ...]
    scan_baseline: bool
    notes: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()  # files an upgrade left with conflict markers

    @property
    def changes(self) -> tuple[FileChange, ...]:
        """The files that will really be written or deleted."""
        return tuple(
            f for f in self.files if f.change in {Change.CREATE, Change.UPDATE, Change.DELETE}
        )


def load_bundle(source: Path | None = None) -> Bundle:
    """The running bundle's files: ``ci/`` beside noxfile.py, tasks.py and the workflows.

    From a checkout they sit beside ``ci/``; an installed wheel carries them in ``ci/_bundle/``.
    """
    root = source or Path(__file__).resolve().parents[2]
    package = root / "ci"
    extras = root
    if not (root / "noxfile.py").is_file() and (package / WHEEL_BUNDLE).is_dir():
        extras = package / WHEEL_BUNDLE
    files: dict[str, str] = {}
    for name in ("noxfile.py", "tasks.py"):
        path = extras / name
        if not path.is_file():
            msg = (
                f"the running bundle has no {name} beside its ci/ package ({root}); run init "
                "from a noxgate checkout (uv run python -m ci init TARGET)"
            )
            raise UsageError(msg)
        files[name] = path.read_text(encoding="utf-8")
    for path in sorted((root / "ci").rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and _bundle_file(rel):
            files[rel] = path.read_text(encoding="utf-8")
    workflows = extras / (WORKFLOWS if extras == root else "workflows")
    for path in sorted(workflows.glob("*.yml")) if workflows.is_dir() else []:
        text = path.read_text(encoding="utf-8")
        files[f"{WORKFLOWS}/{path.name}"] = _strip_header(text)
    return Bundle(version=__version__, files=files)


def _bundle_file(rel: str) -> bool:
    parts = rel.split("/")
    return (
        "__pycache__" not in parts
        and WHEEL_BUNDLE not in parts
        and not rel.endswith((".pyc", ".pyo"))
        and parts[-1] not in _SKIP_IN_BUNDLE
        and not parts[-1].startswith(".")
    )


def _strip_header(text: str) -> str:
    first, _, rest = text.partition("\n")
    return rest if first == WORKFLOW_HEADER else text


def gather(root: Path, bundle: Bundle) -> Target:
    """Read what ``plan`` needs from the target folder (reads only)."""
    if not root.is_dir():
        msg = f"{root} is not a folder; pass the root of a Python project"
        raise UsageError(msg)
    if (root / "ci").resolve() == Path(__file__).resolve().parents[1]:
        msg = f"{root} is the running bundle itself; pass another project's root"
        raise UsageError(msg)
    facts = layout.read_project(root)
    refuse_links_out(root, [WORKFLOWS, "ci", "tests"])
    wanted = {
        *bundle.files,
        *THIN_FILES,
        VERSION_FILE,
        "pyproject.toml",
        ".gitignore",
        "ruff.toml",
        ".ruff.toml",
        "ci.py",
        "ci/__init__.py",
        BASELINE,
    }
    refuse_links_out(root, wanted)
    ci_dir = root / "ci"
    ci_files = frozenset(
        p.relative_to(root).as_posix()
        for p in (ci_dir.rglob("*") if ci_dir.is_dir() else [])
        if p.is_file() and _bundle_file(p.relative_to(root).as_posix())
    )
    existing = {}
    for rel in wanted | ci_files:
        path = root / rel
        if path.is_file():
            existing[rel] = path.read_text(encoding="utf-8", errors="replace")
    wf_dir = root / WORKFLOWS
    workflows = {
        f"{WORKFLOWS}/{p.name}": p.read_text(encoding="utf-8", errors="replace")
        for p in sorted(wf_dir.iterdir() if wf_dir.is_dir() else [])
        if p.is_file() and p.suffix in {".yml", ".yaml"}
    }
    ruff_toml = next((n for n in ("ruff.toml", ".ruff.toml") if (root / n).is_file()), None)
    return Target(
        where=str(root),
        facts=facts,
        existing=existing,
        ci_files=ci_files,
        workflows=workflows,
        ruff_toml=ruff_toml,
    )


def plan(target: Target, bundle: Bundle, options: Options, runner: Runner) -> Plan:
    """Work out every file change of ``init`` for ``target`` (raises UsageError to refuse).

    Pure but for ``git merge-file``, which ``--upgrade`` runs on text in a temporary folder.
    """
    if options.vendor:
        return _plan_vendor(target, bundle, options)
    return _plan_thin(target, bundle, options, runner)


def _plan_vendor(target: Target, bundle: Bundle, options: Options) -> Plan:
    """``init --vendor``: copy the bundle's ``ci/`` with its noxfile, tasks and workflows."""
    project = layout.detect(target.facts, target.where)
    adopted = target.existing.get(VERSION_FILE, "").strip() or None
    _refuse_foreign_ci(target, adopted)
    wanted = {**_bundle_targets(target, bundle), VERSION_FILE: f"{bundle.version}\n"}
    notes = list(project.notes)
    files: list[FileChange] = []
    refused: list[str] = []
    kept: list[str] = []
    for rel, new in wanted.items():
        old = (
            target.existing.get(rel) if not rel.startswith(WORKFLOWS) else target.workflows.get(rel)
        )
        if old is None:
            files.append(FileChange(path=rel, change=Change.CREATE, old=None, new=new, bundle=True))
        elif old == new:
            files.append(FileChange(path=rel, change=Change.SAME, old=old, new=new, bundle=True))
        elif adopted is None and not options.force:
            refused.append(rel)  # the project's own noxfile.py or tasks.py
        elif adopted is not None and not (options.upgrade or options.force):
            kept.append(rel)
            files.append(FileChange(path=rel, change=Change.KEEP, old=old, new=new, bundle=True))
        else:
            files.append(FileChange(path=rel, change=Change.UPDATE, old=old, new=new, bundle=True))
    if refused:
        msg = (
            f"{target.where} already has its own {' and '.join(refused)}; init would replace "
            f"{'them' if len(refused) > 1 else 'it'} with the bundle's: pass --force to replace, "
            "or move yours aside first"
        )
        raise UsageError(msg)
    if options.upgrade:
        files += _stale_bundle_files(target, set(wanted))
    files += _project_edits(target, project, notes, dependency=None)
    notes += _release_notes(target)
    if kept:
        notes.append(
            f"{len(kept)} bundle file(s) differ from bundle {bundle.version} "
            f"(target has {adopted}); run `init --upgrade` to see and apply the diff"
        )
    return Plan(
        project=project,
        adopted=adopted,
        files=tuple(files),
        scan_baseline=BASELINE not in target.existing,
        notes=tuple(notes),
    )


def _plan_thin(target: Target, bundle: Bundle, options: Options, runner: Runner) -> Plan:
    """The dependency way: the thin files, merged three ways on ``--upgrade``."""
    project = layout.detect(target.facts, target.where)
    _refuse_shadowing_ci(target)
    state = thin.read_state(target.existing.get(thin.STATE_FILE), target.where)
    source = options.source or (
        pyproject_edit.parse_source(state.source, target=Path(target.where))
        if state and state.source
        else pyproject_edit.Source(kind="index")
    )
    notes = list(project.notes)
    files: list[FileChange] = []
    recorded: dict[str, str] = dict(state.files) if state else {}
    script = thin.script_requirement(
        bundle.version, source.kind, location=source.location, tag=source.tag
    )
    outcomes = [
        _thin_file(rel, render, target=target, state=state, options=options, runner=runner)
        for rel, render in _thin_targets(target, bundle, script).items()
    ]
    for outcome in outcomes:
        if outcome.change is not None:
            files.append(outcome.change)
        if outcome.change is not None and outcome.record is not None:
            recorded[outcome.change.path] = outcome.record
        notes += outcome.notes
    behind = [o.change.path for o in outcomes if o.change and o.change.change is Change.KEEP]
    conflicts = [o.change.path for o in outcomes if o.change and o.conflicts]
    if behind:
        notes.append(
            f"{len(behind)} file(s) differ from what noxgate {bundle.version} writes "
            f"({', '.join(behind)}); run `init --upgrade` to merge (your edits are kept)"
        )
    version = state.version if state and behind else bundle.version
    new_state = thin.State(version=version, source=_describe(source), files=recorded)
    old_state = target.existing.get(thin.STATE_FILE)
    files.append(_thin_change(thin.STATE_FILE, old_state, new_state.to_json()))
    requirement = f"noxgate>={bundle.version}"
    whole = tuple(
        rel
        for rel in ("noxfile.py", "tasks.py", TASKS_SUBMODULE)
        if (text := recorded.get(rel)) is not None and thin.BLOCK_START not in text
    )
    dependency = pyproject_edit.Dependency(
        requirement=requirement, source=source, lint_exclude=whole
    )
    files += _project_edits(target, project, notes, dependency=dependency)
    notes += _dependabot_notes(target, recorded)
    notes += _script_notes(target, recorded, source)
    notes += _release_notes(target)
    return Plan(
        project=project,
        adopted=state.version if state else None,
        files=tuple(files),
        scan_baseline=BASELINE not in target.existing,
        notes=tuple(notes),
        conflicts=tuple(conflicts),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _ThinOutcome:
    change: FileChange | None
    record: str | None = None  # the new base to record for the next upgrade
    notes: tuple[str, ...] = ()
    conflicts: int = 0


def _thin_file(
    rel: str,
    render: Render,
    *,
    target: Target,
    state: thin.State | None,
    options: Options,
    runner: Runner,
) -> _ThinOutcome:
    """What init does to one thin file: create, append its block, keep, or merge three ways."""
    current = _current(target, rel)
    base = state.files.get(rel) if state else None
    if current is None and base is not None:
        return _ThinOutcome(change=None, notes=(f"{rel} was deleted since init wrote it: left so",))
    new = render(base if base is not None else current, base is not None)
    if current is None:
        change = FileChange(path=rel, change=Change.CREATE, old=None, new=new, bundle=True)
        return _ThinOutcome(change=change, record=new)
    if base is None:
        if new == current or thin.BLOCK_START in new:  # first adoption: the block added
            return _ThinOutcome(change=_thin_change(rel, current, new), record=new)
        return _ThinOutcome(change=None, notes=(f"{rel} is the project's own: left as it is",))
    if new == base:  # nothing new from noxgate: the project's edits stay as they are
        return _ThinOutcome(change=_thin_change(rel, current, current))
    if not options.upgrade:
        keep = FileChange(path=rel, change=Change.KEEP, old=current, new=new, bundle=True)
        return _ThinOutcome(change=keep)
    merged = thin.merge(current, base, new, runner)
    change = _thin_change(rel, current, merged.text)
    return _ThinOutcome(change=change, record=new, conflicts=merged.conflicts)


def _dependabot_notes(target: Target, recorded: Mapping[str, str]) -> list[str]:
    """What a project's own dependabot.yml lacks for noxgate's pins to stay current."""
    text = target.existing.get(thin.DEPENDABOT)
    if text is None or thin.DEPENDABOT in recorded:
        return []
    lacking = [e for e in ("github-actions", "uv") if e not in text]
    if not lacking:
        return []
    return [
        f"{thin.DEPENDABOT} is the project's own and has no {' or '.join(lacking)} "
        "ecosystem: add it so the pins and uv.lock (noxgate included) stay current"
    ]


def _script_notes(
    target: Target, recorded: Mapping[str, str], source: pyproject_edit.Source
) -> list[str]:
    """What a plain ``nox`` (not ``uv run nox``) needs that the noxfile cannot say itself."""
    text = recorded.get("noxfile.py") or target.existing.get("noxfile.py") or ""
    notes = []
    if not thin.with_script(text, "noxgate")[1]:
        notes.append(
            "noxfile.py has its own script block without noxgate: add "
            f'"noxgate>={__version__}" to its dependencies so a plain `nox` finds the gates'
        )
    if source.kind == "url":
        notes.append(
            f"noxgate comes from the index {source.location}: a plain `nox` installs it from "
            f"there with UV_INDEX={source.location} set (its script block names the version)"
        )
    return notes


# how to render a thin file from its origin: what init last wrote (recorded=True) or, the
# first time, the project's file (None when it has none)
Render = Callable[[str | None, bool], str]


def _thin_targets(target: Target, bundle: Bundle, script: str) -> dict[str, Render]:
    """Each thin file by path, with how to render it."""

    def wholly(text: str) -> Render:
        return lambda _origin, _recorded: text

    def own_or_thin(thin_text: str, with_block: Callable[[str], str]) -> Render:
        def render(origin: str | None, recorded: bool) -> str:
            if origin is None or origin == thin_text:
                return thin_text
            if recorded and thin.BLOCK_START not in origin:  # init wrote it whole
                return thin_text
            return with_block(origin)  # the project's own file, with noxgate's block

        return render

    out: dict[str, Render] = {
        "noxfile.py": own_or_thin(
            thin.thin_noxfile(script), lambda text: thin.noxfile(text, script)
        )
    }
    if TASKS_INIT in target.existing and "tasks.py" not in target.existing:
        out[TASKS_SUBMODULE] = wholly(thin.TASKS)
        out[TASKS_INIT] = lambda origin, _recorded: thin.tasks_package_init(origin or "")
    else:
        out["tasks.py"] = own_or_thin(thin.TASKS, thin.tasks_module)
    for rel, text in _bundle_targets(target, bundle).items():
        if rel.startswith(f"{WORKFLOWS}/"):
            out[rel] = wholly(thin.workflow(text))
    out[thin.DEPENDABOT] = wholly(thin.DEPENDABOT_YML)
    return out


def _current(target: Target, rel: str) -> str | None:
    return (
        target.workflows.get(rel) if rel.startswith(f"{WORKFLOWS}/") else target.existing.get(rel)
    )


def _thin_change(rel: str, old: str | None, new: str) -> FileChange:
    kind = Change.CREATE if old is None else Change.SAME if old == new else Change.UPDATE
    return FileChange(path=rel, change=kind, old=old, new=new, bundle=True)


def _describe(source: pyproject_edit.Source) -> str:
    return "" if source.kind == "index" else source.describe()


def _refuse_shadowing_ci(target: Target) -> None:
    """A project's own importable ``ci`` would shadow noxgate's for ``python -m ci``."""
    own = next((rel for rel in ("ci.py", "ci/__init__.py") if rel in target.existing), None) or (
        "src/ci/" if "src/ci" in target.facts.dirs else None
    )
    if own:
        msg = (
            f"{target.where} has its own importable `ci` ({own}); it would shadow noxgate's "
            "`python -m ci`: rename yours first"
        )
        raise UsageError(msg)


def _refuse_foreign_ci(target: Target, adopted: str | None) -> None:
    """The bundle's ci/ must not shadow or replace a project's own top-level ``ci``."""
    if adopted is not None:
        return
    own = None
    if "ci.py" in target.existing:
        own = "ci.py"
    elif "ci" in target.facts.dirs or "src/ci" in target.facts.dirs:
        own = "ci/" if "ci" in target.facts.dirs else "src/ci/"
    if own:
        msg = (
            f"{target.where} already has its own top-level {own} (no ci/VERSION, so it is not "
            "a copy of this bundle); the bundle needs the name 'ci': rename yours first"
        )
        raise UsageError(msg)


def _bundle_targets(target: Target, bundle: Bundle) -> dict[str, str]:
    """Bundle files by target path: workflows get distinct names where the target's collide.

    Where the project releases from a tag-triggered workflow of its own, the bundle's
    release workflow is left out: one tag push must publish once (``_release_notes``).
    """
    theirs = {rel: text for rel, text in target.workflows.items() if not _ours(text)}
    their_names = {_workflow_name(text) for text in theirs.values()} - {None}
    own_release = bool(own_release_workflows(target))
    out: dict[str, str] = {}
    for rel, text in bundle.files.items():
        if not rel.startswith(f"{WORKFLOWS}/"):
            out[rel] = text
            continue
        if own_release and releases_on_tags(text):
            continue
        name = _workflow_name(text)
        dest, body = (
            rel,
            workflow_text(text, target.tag_format).replace(
                thin.BUNDLE_CI,
                thin.VENDORED_CI,  # the project's groups, not the bundle's
            ),
        )
        if rel in theirs or name in their_names:
            dest = f"{WORKFLOWS}/noxgate-{rel.rsplit('/', 1)[-1]}"
            if name:
                body = re.sub(r"(?m)^name:\s*.*$", f"name: noxgate-{name}", body, count=1)
        out[dest] = f"{WORKFLOW_HEADER}\n{body}"
    return out


def _ours(text: str) -> bool:
    return text.startswith(WORKFLOW_HEADER)


# steps that publish a release: the upload actions and commands, and noxgate's own
_PUBLISHES = re.compile(
    r"pypa/gh-action-pypi-publish|\b(?:twine\s+upload|uv\s+publish|flit\s+publish|"
    r"poetry\s+publish|hatch\s+publish|pdm\s+publish|invoke\s+release|ci\s+release)\b"
)
# a job or step that runs only for a tag or a release event
_TAG_REF = re.compile(r"refs/tags|ref_type\s*==\s*'tag'|github\.event_name\s*==\s*'release'")


def releases_on_tags(text: str) -> bool:
    """True when a workflow publishes a release for a tag (a push of tags, or a release event)."""
    if not _PUBLISHES.search(text):
        return False
    return bool(_TAG_REF.search(text)) or _tag_triggered(_on_block(text))


def _on_block(text: str) -> str:
    """The text of a workflow's top-level ``on:`` key (its inline value and nested lines)."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"""^(?:on|"on"|'on'|true)\s*:(.*)$""", line)
        if not match:
            continue
        block = [match[1]]
        for nested in lines[index + 1 :]:
            if nested.strip() and not nested[0].isspace() and not nested.startswith("#"):
                break
            block.append(nested)
        return "\n".join(block)
    return ""


def _tag_triggered(block: str) -> bool:
    """True when an ``on:`` block has a ``tags:`` filter or the ``release`` event."""
    inline = block.split("\n", 1)[0].split("#", 1)[0]
    return bool(re.search(r"(?m)^\s*(?:tags|release)\s*:", block)) or bool(
        re.search(r"\brelease\b", inline)
    )


def own_release_workflows(target: Target) -> list[str]:
    """The project's own workflows (not the bundle's) that publish a release for a tag."""
    return sorted(
        rel for rel, text in target.workflows.items() if not _ours(text) and releases_on_tags(text)
    )


def _release_notes(target: Target) -> list[str]:
    """Why the bundle's release workflow was left out, when it was."""
    own = own_release_workflows(target)
    if not own:
        return []
    return [
        f"{', '.join(own)} already publishes on tags: noxgate's release workflow is not added "
        "(one tag push publishes once) and releasing stays with it; to release with noxgate "
        "instead, delete it and rerun init"
    ]


def _workflow_name(text: str) -> str | None:
    match = re.search(r"(?m)^name:\s*['\"]?([^'\"\n#]+?)['\"]?\s*(?:#.*)?$", text)
    return match[1] if match else None


def _stale_bundle_files(target: Target, wanted: set[str]) -> list[FileChange]:
    """Files of an older bundle that the running one no longer has (deleted by --upgrade)."""
    stale = sorted(rel for rel in target.ci_files if rel not in wanted)
    stale += sorted(
        rel for rel, text in target.workflows.items() if _ours(text) and rel not in wanted
    )
    out = []
    for rel in stale:
        old = target.existing.get(rel) or target.workflows.get(rel)
        out.append(FileChange(path=rel, change=Change.DELETE, old=old, new=None, bundle=True))
    return out


def _project_edits(
    target: Target,
    project: layout.Project,
    notes: list[str],
    *,
    dependency: pyproject_edit.Dependency | None,
) -> list[FileChange]:
    """pyproject.toml, ruff.toml, .gitignore and a first test: the target's own files."""
    old_pyproject = target.existing.get("pyproject.toml", "")
    # the test gate detects its runner; only a close call is written down, to be confirmed
    tests = project.tests or "tests"
    suite = suites.choose(suites.read_facts(Path(target.where), tests), tests)
    if suite.note:
        notes.append(f"{suite.note} (init wrote runner = {suite.runner!r})")
    new_pyproject = pyproject_edit.edit_pyproject(
        old_pyproject,
        project,
        ruff_here=target.ruff_toml is None,
        setup_texts=(target.facts.setup_py or "", target.facts.setup_cfg or ""),
        notes=notes,
        dependency=dependency,
        modules=frozenset(p for p in project.packages if f"{p}.py" in target.facts.files),
        families=target.lint_families,
        test_runner=suite.runner if suite.note else None,
    )
    where = Path(target.where) / "pyproject.toml"
    config.parse(tomllib.loads(new_pyproject), root=where.parent, path=where)  # exit 2 if bad
    changes = [_change("pyproject.toml", old_pyproject, new_pyproject)]
    if target.ruff_toml is not None and (dependency is None or dependency.lint_exclude):
        old = target.existing[target.ruff_toml]
        entries = dependency.lint_exclude if dependency else pyproject_edit.LINT_EXCLUDE
        new = pyproject_edit.edit_ruff_toml(old, entries)
        changes.append(_change(target.ruff_toml, old, new))
    old_ignore = target.existing.get(".gitignore")
    ignore = pyproject_edit.gitignore(old_ignore, vendor=dependency is None)
    changes.append(_change(".gitignore", old_ignore, ignore))
    if project.tests is None:
        rel = f"tests/{pyproject_edit.SMOKE_TEST}"
        changes.append(_change(rel, None, pyproject_edit.smoke_test(project.packages)))
        notes.append(f"the project has no tests: wrote {rel}, a first test that imports it")
    return changes


def _change(rel: str, old: str | None, new: str) -> FileChange:
    kind = Change.CREATE if old is None else Change.SAME if old == new else Change.UPDATE
    return FileChange(path=rel, change=kind, old=old, new=new, bundle=False)


def render(plan_: Plan, *, dry_run: bool, upgrade: bool) -> str:
    """The plan as the lines ``init`` prints: one per file, diffs for --upgrade, then notes."""
    p = plan_.project
    lines = [
        f"project: {p.name} ({p.backend}, {p.layout} layout); packages {', '.join(p.packages)}; "
        f"tests {p.tests or '(none yet)'}; pythons {', '.join(p.pythons)}",
    ]
    if plan_.adopted:
        lines.append(f"bundle: target has {plan_.adopted}")
    head = "plan (dry run, nothing is written):" if dry_run else "changes:"
    lines.append(head)
    shown = [f for f in plan_.files if f.change is not Change.SAME]
    for change in shown:
        lines.append(f"  {change.change.value:<9} {change.path}")
    if not shown:
        lines.append("  nothing: the target is up to date")
    same = sum(1 for f in plan_.files if f.change is Change.SAME)
    if same:
        lines.append(f"  ({same} file(s) already as the bundle has them)")
    if upgrade or dry_run:
        # a first init creates the whole bundle: list it; diff only what already existed
        diffs = [f.diff() for f in plan_.changes if upgrade or f.change is not Change.CREATE]
        diffs = [d for d in diffs if d]
        if diffs:
            lines.append("")
            lines.extend(d.rstrip("\n") for d in diffs)
            lines.append("")
    steps = ["uv lock"]
    if plan_.scan_baseline:
        steps.append(f"detect-secrets scan > {BASELINE}")
    lines.append(("then: " if dry_run else "and: ") + "; ".join(steps))
    lines.extend(f"note: {note}" for note in plan_.notes)
    return "\n".join(lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """What ``apply`` did beyond the plan."""

    secrets: int | None  # possible secrets the first scan recorded (None: it did not scan)
    notes: tuple[str, ...] = ()  # settings written so that uv could lock, and why


def apply(plan_: Plan, root: Path, runner: Runner, *, uv: str = "uv") -> Applied:
    """Write the plan, ``uv lock`` (with the bundle's ``uv``) and scan; undo writes if it fails."""
    refuse_links_out(root, [change.path for change in plan_.changes])
    done: list[FileChange] = []
    new_dirs: list[Path] = []
    try:
        for change in plan_.changes:
            path = root / change.path
            if change.change is Change.DELETE:
                path.unlink(missing_ok=True)
            else:
                new_dirs += _missing_dirs(path.parent, root)
                # verbatim bytes: source and TOML must not pass through the masking filter
                atomic_write_bytes(path, (change.new or "").encode("utf-8"))
            done.append(change)
        fixes = lock(root, runner, uv=uv, project=plan_.project)
    except BaseException:
        _undo(done, root, new_dirs)
        raise
    secrets = write_baseline(root, runner) if plan_.scan_baseline else None
    return Applied(secrets=secrets, notes=tuple(fix.note() for fix in fixes))


def refuse_links_out(root: Path, rels: Iterable[str]) -> None:
    """UsageError when a symlink on the way to any of ``rels`` leads outside ``root``.

    ``init`` reads and writes only inside the target: a ``.github`` that links to another
    project must not be written through.
    """
    top = root.resolve()
    for rel in sorted(rels):
        path = root
        for part in Path(rel).parts:
            path = path / part
            if path.is_symlink() and not path.resolve().is_relative_to(top):
                msg = (
                    f"{path} is a symbolic link to {path.resolve()}, outside {root}; init "
                    "writes only inside the target: replace the link by a real file or folder"
                )
                raise UsageError(msg)


def _missing_dirs(folder: Path, root: Path) -> list[Path]:
    """The folders between ``root`` and ``folder`` that do not exist yet, outermost first."""
    missing = []
    while folder != root and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing[::-1]


def _undo(done: Sequence[FileChange], root: Path, new_dirs: Sequence[Path]) -> None:
    for change in reversed(done):
        path = root / change.path
        if change.old is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write_bytes(path, change.old.encode("utf-8"))
    for folder in sorted(set(new_dirs), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


MAX_LOCK_HINTS = 4  # settings init may write, one per retry of `uv lock`


def lock(
    root: Path, runner: Runner, *, uv: str = "uv", project: layout.Project | None = None
) -> tuple[lockhint.GroupFloor, ...]:
    """``uv lock`` in the target; ToolError (exit 6) naming uv's cause when it fails.

    With ``project``, where one of its dependency groups needs a newer Python than its
    ``requires-python``, the ``[tool.uv.dependency-groups]`` setting that says so is written
    to pyproject.toml and uv locks again (``ci.adopt.lockhint``); returns the settings
    written. When uv still cannot lock, pyproject.toml is put back as it was.
    """
    pyproject = root / "pyproject.toml"
    before = pyproject.read_bytes() if project is not None and pyproject.is_file() else None
    fixes: list[lockhint.GroupFloor] = []
    try:
        while True:
            done = runner.run([uv, "lock"], cwd=root, env={"UV_PYTHON_DOWNLOADS": "never"})
            if done:
                return tuple(fixes)
            failure = bundle_uv.read_lock_failure(done.stderr, project.name if project else "")
            found = None
            if project is not None and before is not None and len(fixes) < MAX_LOCK_HINTS:
                text = pyproject.read_text(encoding="utf-8")
                written = {fix.group: fix.floor for fix in fixes}
                found = lockhint.hint(
                    failure, tomllib.loads(text), pythons=project.pythons, written=written
                )
            if not isinstance(found, lockhint.GroupFloor):
                raise ToolError(_lock_failed(root, failure, fixes, found))
            new = pyproject_edit.group_requires_python(text, found.group, found.floor)
            atomic_write_bytes(pyproject, new.encode("utf-8"))
            fixes = [*(fix for fix in fixes if fix.group != found.group), found]
    except BaseException:
        if fixes and before is not None:
            atomic_write_bytes(pyproject, before)
        raise


def _lock_failed(
    root: Path,
    failure: bundle_uv.LockFailure,
    fixes: Sequence[lockhint.GroupFloor],
    refusal: lockhint.Refusal | None,
) -> str:
    """The one line for a ``uv lock`` init could not make pass: uv's cause, what init tried."""
    tried = f" (also with {'; '.join(fix.setting for fix in fixes)})" if fixes else ""
    why = f"; {refusal.reason}" if refusal else ""
    return f"`uv lock` failed in {root}, nothing was changed: {failure.cause}{tried}{why}"


def write_baseline(root: Path, runner: Runner) -> int:
    """Scan the target's files with detect-secrets, write ``.secrets.baseline``, count findings."""
    files = scan_files(root, runner)
    done = runner.run([*_detect_secrets(), "scan", "--all-files", *files], cwd=root)
    if not done:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        msg = f"detect-secrets scan failed in {root}: {tail[0]}; rerun init to retry the scan"
        raise ToolError(msg)
    try:
        results = json.loads(done.stdout)["results"]
    except (json.JSONDecodeError, KeyError, TypeError):
        msg = "detect-secrets scan printed something that is not a baseline; rerun init"
        raise ToolError(msg) from None
    atomic_write_bytes(root / BASELINE, done.stdout.encode("utf-8"))
    return sum(len(items) for items in results.values())


def lint_families_of(root: Path, runner: Runner) -> tuple[str, ...]:
    """The lint families the project has files for, with YAML for the workflows init writes."""
    found = lint_families.present(root, scan_files(root, runner))
    return tuple(f for f in config.LINT_FAMILIES if f in found or f == "yaml")


def scan_files(root: Path, runner: Runner) -> list[str]:
    """The files a first scan covers: git's tracked and unignored files, else a tree walk."""
    if (root / ".git").exists():
        done = runner.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=root
        )
        if done:
            return sorted(line for line in done.stdout.splitlines() if line and line != BASELINE)
    skip = {".git", ".nox", ".venv", "venv", "build", "dist", "reports", ".ci-state", "__pycache__"}
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skip and not d.endswith(".egg-info"))
        for name in names:
            rel = (Path(folder) / name).relative_to(root).as_posix()
            if rel != BASELINE and not name.endswith((".pyc", ".pyo")):
                found.append(rel)
    return sorted(found)


def _detect_secrets() -> list[str]:
    """How to start detect-secrets: from this interpreter when it has it, else through uvx."""
    import importlib.util  # noqa: PLC0415 - only init needs it

    if importlib.util.find_spec("detect_secrets") is not None:
        return [sys.executable, "-m", "detect_secrets"]
    return ["uvx", "--from", "detect-secrets>=1.5", "detect-secrets"]
