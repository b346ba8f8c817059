"""The thin files ``init`` writes when noxgate is a locked dependency, and how it upgrades them.

Each file only declares and delegates to the installed noxgate: noxfile.py declares the gate
sessions (``ci.gates.sessions``), tasks.py imports the tasks (``ci.run.tasks``), the
workflows call nox and invoke. ``.noxgate-init.json`` records the text init last wrote for
each file, so ``init --upgrade`` merges three ways (as copier does): the user's edits since
then are kept, the bundle's changes since then are applied, a clash is left as conflict
markers to resolve.
"""

from __future__ import annotations

import ast
import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ci.core.errors import ToolError, UsageError
from ci.core.runner import Runner

STATE_FILE = ".noxgate-init.json"
STATE_SCHEMA = 1
DEPENDABOT = ".github/dependabot.yml"
BLOCK_START = "# --- noxgate (python -m ci init): keep it last; init --upgrade updates it"
BLOCK_END = "# --- end of the noxgate block"
TASK_NAMES = (
    "ci",
    "dashboard",
    "deploy",
    "nightly",
    "preflight",
    "record",
    "release",
    "rollback",
    "unlock",
)
TASKS_SUBMODULE = "noxgate.py"
# what the bundle's workflows run nox with (its own noxfile needs no installed noxgate), and
# what an adopted project's need: nox from the locked noxgate-dev group, beside noxgate
UVX_NOX = 'uvx --from "$NOX" nox'
# (the noxfile's script block is for a nox of its own: the locked environment needs none)
LOCKED_NOX = "uv run --locked --only-group noxgate-dev nox --script-mode none"
# the plan job's noxgate: the bundle's own project; a vendored ci/ beside a group that carries
# its one runtime dependency (packaging); an adopted project's noxgate-dev group
BUNDLE_CI = "uv run --locked --no-default-groups --group workflows python -m ci"
VENDORED_CI = "uv run --locked --only-group noxgate-workflows python -m ci"
LOCKED_CI = "uv run --locked --only-group noxgate-dev python -m ci"
# the nox a noxfile's PEP 723 script block asks for (nox builds its own environment from it)
SCRIPT_NOX = "nox>=2026.10.20"
SCRIPT_START = "# /// script"
SCRIPT_END = "# ///"
# PEP 723's block: "# /// TYPE", lines of "#" or "# ...", then "# ///" (as nox reads it)
_SCRIPT_BLOCK = re.compile(
    r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$"
)
_NOXGATE_ENTRY = re.compile(r"""(["'])noxgate(?![\w.-])[^"']*\1""")
_MAX_CONFLICTS = 127

NOXFILE = '''\
"""nox sessions: the gates of the installed noxgate (``python -m ci``).

Add sessions of your own above the ``declare`` call: a session named like
a gate's (``lint``, ``test``, ...) is kept, and the gate's is not added.
``nox -l`` lists them all.
"""

import os
from pathlib import Path

import nox
from ci.gates import sessions

# installed interpreters only; the workflows let GitHub runners download
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"

sessions.declare(Path(__file__).parent)
'''

NOXFILE_BLOCK = f"""\
{BLOCK_START}
# the gate sessions this noxfile does not declare itself (lint, test-3.12,
# security, package, workflows) from the installed noxgate; see `nox -l`
_noxgate_sessions = __import__("ci.gates.sessions", fromlist=["declare"])
_noxgate_sessions.declare(__import__("pathlib").Path(__file__).parent)
{BLOCK_END}
"""

TASKS = '''\
"""Maintainer tasks from noxgate (``uv run invoke --list``)."""

from ci.run.tasks import (
    ci,
    dashboard,
    deploy,
    nightly,
    preflight,
    record,
    release,
    rollback,
    unlock,
)

__all__ = [
    "ci",
    "dashboard",
    "deploy",
    "nightly",
    "preflight",
    "record",
    "release",
    "rollback",
    "unlock",
]
'''

DEPENDABOT_YML = """\
# Keeps the workflows' pinned actions and uv.lock (noxgate included) current.
version: 2
updates:
  - package-ecosystem: github-actions
    directory: /
    schedule:
      interval: weekly
  - package-ecosystem: uv
    directory: /
    schedule:
      interval: weekly
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    """``.noxgate-init.json``: the noxgate version and the text init last wrote per file."""

    version: str
    source: str
    files: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """The file's text: sorted keys, one file per line of ``files``, no time (stable)."""
        document = {
            "schema": STATE_SCHEMA,
            "version": self.version,
            "source": self.source,
            "files": dict(sorted(self.files.items())),
        }
        return json.dumps(document, indent=1, sort_keys=True) + "\n"


def read_state(text: str | None, where: str) -> State | None:
    """The state ``init`` recorded, or None when there is none; UsageError when unreadable."""
    if text is None:
        return None
    try:
        data = json.loads(text)
        files = data["files"]
        if data.get("schema") != STATE_SCHEMA or not isinstance(files, dict):
            raise TypeError
        return State(
            version=str(data["version"]),
            source=str(data.get("source", "")),
            files={str(k): str(v) for k, v in files.items()},
        )
    except (json.JSONDecodeError, KeyError, TypeError):
        msg = (
            f"{where}/{STATE_FILE} is not a state file written by `python -m ci init`; "
            "restore it from git, or delete it to adopt afresh (local edits are then kept)"
        )
        raise UsageError(msg) from None


def script_block(requirement: str) -> str:
    """A PEP 723 script block: plain ``nox`` (pipx, the nox action) installs noxgate from it.

    nox reads it before importing the noxfile and, where its own environment lacks the
    dependencies, builds one with them (``.nox/_nox_script_mode``) and runs there.
    """
    return (
        f"{SCRIPT_START}\n"
        f"# dependencies = [{json.dumps(SCRIPT_NOX)}, {json.dumps(requirement)}]\n"
        f"{SCRIPT_END}\n"
    )


def thin_noxfile(requirement: str) -> str:
    """The thin noxfile, with the script block that names noxgate as ``requirement``."""
    return script_block(requirement) + NOXFILE


def with_script(text: str, requirement: str) -> tuple[str, bool]:
    """``text`` whose script block names noxgate as ``requirement``; False when it cannot.

    A noxfile with no script block gets ours on top (after a ``#!`` line); one with its own
    block gets its noxgate entry replaced, and is left as it is (False) when that block
    names no noxgate (nox allows one block: the project adds the entry itself).
    """
    blocks = [m for m in _SCRIPT_BLOCK.finditer(text) if m["type"] == "script"]
    if not blocks:
        head, rest = ("", text)
        if text.startswith("#!"):
            first, _, rest = text.partition("\n")
            head = first + "\n"
        return head + script_block(requirement) + rest, True
    block = blocks[0]
    content = block.group(0)
    if not _NOXGATE_ENTRY.search(content):
        return text, False
    updated = _NOXGATE_ENTRY.sub(lambda m: json.dumps(requirement), content, count=1)
    return text[: block.start()] + updated + text[block.end() :], True


def noxfile(current: str | None, requirement: str) -> str:
    """The noxfile: the thin one, or the project's own with the gate sessions' block.

    Both carry the script block that lets a plain ``nox`` install noxgate (``requirement``).
    """
    if current is None:
        return thin_noxfile(requirement)
    text, _ = with_script(current, requirement)
    return with_block(text, NOXFILE_BLOCK)


def script_requirement(version: str, kind: str, location: str = "", tag: str = "") -> str:
    """How a script block names noxgate: as the project's dependency does, from where uv gets it.

    An index (the default one or another) by the same lower bound as the project's own
    ``noxgate>=V`` (its lock may hold a newer release than the one that ran init: an exact
    pin would send a ``uv run nox`` into nox's script mode to install a version the lock
    does not have); git and a folder as direct references (a folder relative to the
    project root, where nox is started).
    """
    if kind == "git":
        return f"noxgate @ git+{location}@{tag}"
    if kind == "path":
        return f"noxgate @ file:{location}"
    return f"noxgate>={version}"


def with_block(text: str, block: str) -> str:
    """``text`` with noxgate's block replaced, or appended when it has none."""
    start = text.find(BLOCK_START)
    if start >= 0:
        end = text.find(BLOCK_END, start)
        if end >= 0:
            tail = text[end + len(BLOCK_END) :]
            return text[:start] + block + tail.removeprefix("\n")
    if not text.strip():
        return block
    return text.rstrip("\n") + "\n\n\n" + block  # two blank lines, as after a def


def task_names_defined(text: str) -> set[str]:
    """Names a tasks module binds at top level (functions, assignments, imports)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def tasks_module(current: str | None) -> str:
    """tasks.py: the thin one, or the project's own with the tasks it does not define."""
    if current is None:
        return TASKS
    mine = task_names_defined(without_block(current))
    names = [n for n in TASK_NAMES if n not in mine]
    block = (
        f"{BLOCK_START}\n"
        "# noxgate's maintainer tasks beside yours (yours win a name clash)\n"
        + _bind(_TASKS_MODULE, names)
        + f"{BLOCK_END}\n"
    )
    return with_block(current, block) if names else current


_MODULE = "_noxgate_tasks"
_TASKS_MODULE = '"ci.run.tasks"'
_SUBMODULE = 'f"{__name__}.noxgate"'  # tasks/noxgate.py, from tasks/__init__.py


def _bind(module: str, names: Sequence[str]) -> str:
    """Bind ``names`` of ``module`` (an expression) here, with no import statement.

    An import below the project's code trips E402 or, where that is off, an unused
    ``noqa`` (RUF100) depending on the ruff version: ``__import__`` trips neither.
    """
    items = "".join(f'            "{name}",\n' for name in names)
    return (
        f'{_MODULE} = __import__({module}, fromlist=["__all__"])\n'
        "globals().update(\n"
        "    {\n"
        f"        name: getattr({_MODULE}, name)\n"
        "        for name in (\n"
        f"{items}"
        "        )\n"
        "    }\n"
        ")\n"
    )


def without_block(text: str) -> str:
    """``text`` without noxgate's block (what the project itself wrote)."""
    start = text.find(BLOCK_START)
    end = text.find(BLOCK_END, start)
    if start < 0 or end < 0:
        return text
    return text[:start] + text[end + len(BLOCK_END) :].removeprefix("\n")


def tasks_package_init(current: str) -> str:
    """A ``tasks/__init__.py`` that also offers noxgate's tasks (from ``tasks/noxgate.py``)."""
    own = without_block(current)
    namespace = re.search(r"(?m)^(ns|namespace)\s*=\s*Collection\b", own)
    if namespace:
        var = namespace[1]
        body = (
            "# noxgate's maintainer tasks beside yours (yours win a name clash)\n"
            f'{_MODULE} = __import__({_SUBMODULE}, fromlist=["__all__"])\n'
            f"for _name in {_MODULE}.__all__:\n"
            f"    if _name not in {var}.tasks:\n"
            f"        {var}.add_task(getattr({_MODULE}, _name))\n"
        )
    else:
        mine = task_names_defined(own)
        names = [n for n in TASK_NAMES if n not in mine]
        if not names:
            return current
        body = "# noxgate's maintainer tasks beside yours (yours win a name clash)\n" + _bind(
            _SUBMODULE, names
        )
    return with_block(current, f"{BLOCK_START}\n{body}{BLOCK_END}\n")


def workflow(text: str) -> str:
    """A bundle workflow as an adopted project runs it: nox and noxgate from noxgate-dev."""
    lines = [
        line
        for line in text.splitlines(keepends=True)
        if not re.match(r"^\s*NOX:\s*nox", line)  # the pin of the bundle's own nox
    ]
    text = "".join(lines).replace(UVX_NOX, LOCKED_NOX)
    return text.replace(BUNDLE_CI, LOCKED_CI).replace(VENDORED_CI, LOCKED_CI)


@dataclass(frozen=True, slots=True, kw_only=True)
class Merged:
    """The outcome of a three-way merge of one file."""

    text: str
    conflicts: int


def merge(current: str, base: str, new: str, runner: Runner) -> Merged:
    """Three-way merge with ``git merge-file``: the user's edits (base -> current) and ours."""
    if current in {base, new}:
        return Merged(text=new, conflicts=0)
    if base == new:
        return Merged(text=current, conflicts=0)
    with tempfile.TemporaryDirectory(prefix="ci-init-merge-") as work:
        paths = []
        for name, text in (("yours", current), ("last-init", base), ("noxgate", new)):
            path = Path(work) / name
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        done = runner.run(["git", "merge-file", "-p", *_labels(), *paths])
    # git merge-file exits with the number of conflicts (capped at 127), negative on errors
    if not 0 <= done.returncode <= _MAX_CONFLICTS or (done.returncode and not done.stdout):
        msg = f"git merge-file failed (exit {done.returncode}): {done.stderr.strip()[:200]}"
        raise ToolError(msg)
    return Merged(text=done.stdout, conflicts=done.returncode)


def _labels() -> Sequence[str]:
    return ("-L", "yours", "-L", "last init", "-L", "noxgate")
