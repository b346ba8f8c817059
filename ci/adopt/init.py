"""``init``: plan the bundle's files and pyproject edits for a target project, then apply them.

``plan`` is pure (facts in, a ``Plan`` out); ``gather`` reads the target and the running
bundle; ``apply`` writes the plan (undoing its writes if ``uv lock`` fails), locks and scans.
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ci import __version__
from ci.adopt import layout, pyproject_edit
from ci.core import config
from ci.core.errors import ToolError, UsageError
from ci.core.files import atomic_write_bytes
from ci.core.runner import Runner
from ci.release.version import DEFAULT_FORMAT, TagFormat, workflow_text

VERSION_FILE = "ci/VERSION"
WHEEL_BUNDLE = "_bundle"  # ci/_bundle/: noxfile, tasks and workflows inside an installed wheel
WORKFLOWS = ".github/workflows"
WORKFLOW_HEADER = "# noxgate bundle workflow: `python -m ci init --upgrade` keeps it current."
BASELINE = ".secrets.baseline"
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The flags of ``init``."""

    upgrade: bool = False
    force: bool = False


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
    wanted = {
        *bundle.files,
        VERSION_FILE,
        "pyproject.toml",
        ".gitignore",
        "ruff.toml",
        ".ruff.toml",
        "ci.py",
        "ci/__init__.py",
        BASELINE,
    }
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


def plan(target: Target, bundle: Bundle, options: Options) -> Plan:
    """Work out every file change of ``init`` for ``target`` (pure; raises UsageError to refuse)."""
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
    files += _project_edits(target, project, notes)
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
    """Bundle files by target path: workflows get distinct names where the target's collide."""
    theirs = {rel: text for rel, text in target.workflows.items() if not _ours(text)}
    their_names = {_workflow_name(text) for text in theirs.values()} - {None}
    out: dict[str, str] = {}
    for rel, text in bundle.files.items():
        if not rel.startswith(f"{WORKFLOWS}/"):
            out[rel] = text
            continue
        name = _workflow_name(text)
        dest, body = rel, workflow_text(text, target.tag_format)
        if rel in theirs or name in their_names:
            dest = f"{WORKFLOWS}/noxgate-{rel.rsplit('/', 1)[-1]}"
            if name:
                body = re.sub(r"(?m)^name:\s*.*$", f"name: noxgate-{name}", text, count=1)
        out[dest] = f"{WORKFLOW_HEADER}\n{body}"
    return out


def _ours(text: str) -> bool:
    return text.startswith(WORKFLOW_HEADER)


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


def _project_edits(target: Target, project: layout.Project, notes: list[str]) -> list[FileChange]:
    """pyproject.toml, ruff.toml, .gitignore and a first test: the target's own files."""
    old_pyproject = target.existing.get("pyproject.toml", "")
    new_pyproject = pyproject_edit.edit_pyproject(
        old_pyproject,
        project,
        ruff_here=target.ruff_toml is None,
        setup_texts=(target.facts.setup_py or "", target.facts.setup_cfg or ""),
        notes=notes,
    )
    where = Path(target.where) / "pyproject.toml"
    config.parse(tomllib.loads(new_pyproject), root=where.parent, path=where)  # exit 2 if bad
    changes = [_change("pyproject.toml", old_pyproject, new_pyproject)]
    if target.ruff_toml is not None:
        old = target.existing[target.ruff_toml]
        changes.append(_change(target.ruff_toml, old, pyproject_edit.edit_ruff_toml(old)))
    old_ignore = target.existing.get(".gitignore")
    changes.append(_change(".gitignore", old_ignore, pyproject_edit.gitignore(old_ignore)))
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


def apply(plan_: Plan, root: Path, runner: Runner) -> int | None:
    """Write the plan, ``uv lock`` and scan; undo writes if locking fails.

    Returns how many possible secrets the first scan recorded (None when it did not scan).
    """
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
        lock(root, runner)
    except BaseException:
        _undo(done, root, new_dirs)
        raise
    return write_baseline(root, runner) if plan_.scan_baseline else None


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


def lock(root: Path, runner: Runner) -> None:
    """``uv lock`` in the target; ToolError (exit 6) naming uv's complaint when it fails."""
    done = runner.run(["uv", "lock"], cwd=root, env={"UV_PYTHON_DOWNLOADS": "never"})
    if not done:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or ["no output"]
        detail = " ".join(line.strip() for line in lines[-3:])
        msg = f"`uv lock` failed in {root}, nothing was changed: {detail}"
        raise ToolError(msg)


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
