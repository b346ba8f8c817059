"""Which uv the bundle runs, and what a failed ``uv lock`` said.

The bundle runs its own uv, never one a project's environment puts first on PATH: a project
that depends on an older ``uv`` gets that uv into its virtual environment, whose scripts
folder comes first on PATH in ``uv run`` and in a nox session, and the bundle's
``uv export --no-emit-local`` or ``uv lock`` must not meet it there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

UV_ENV = "UV"  # uv sets it for what `uv run` starts, nox reads it: the uv that started us


def find(env: Mapping[str, str]) -> str:
    """The uv the bundle runs, by path when it can tell (else ``"uv"``).

    ``$UV`` when it names an executable (uv sets it for the processes ``uv run`` starts,
    and the sessions pass theirs on); else the first ``uv`` on PATH outside a virtual
    environment's scripts folder.
    """
    named = env.get(UV_ENV, "")
    if named and os.path.isabs(named) and _executable(Path(named)):
        return named
    for folder in env.get("PATH", "").split(os.pathsep):
        if not folder or in_virtual_environment(Path(folder)):
            continue
        candidate = Path(folder) / ("uv.exe" if os.name == "nt" else "uv")
        if _executable(candidate):
            return str(candidate)
    return "uv"


def in_virtual_environment(folder: Path) -> bool:
    """True when ``folder`` is a virtual environment's scripts folder (``.venv/bin``)."""
    return (folder.parent / "pyvenv.cfg").is_file()


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@dataclass(frozen=True, slots=True, kw_only=True)
class LockFailure:
    """What a failed ``uv lock`` said (``read_lock_failure``)."""

    cause: str  # one line: uv's error and the cause it gives
    group: str | None = None  # the project's dependency group uv found unsatisfiable (normalised)
    requirement: str | None = None  # what uv says that group depends on ("sphinx==8.2.3")
    floors: tuple[str, ...] = ()  # the Python floors uv says candidates need, lowest first


# "And because docsy:docs depends on sphinx==8.2.3 and ...": a group of the project, and what
# it depends on (uv spells the project and the group normalised; once a group has a Python
# floor, uv writes the requirement with it: "sphinx{python_full_version >= '3.11'}==8.2.3")
_GROUP_DEPENDS = (
    r"(?<![\w.-])PROJECT:([a-z0-9][a-z0-9._-]*)\s+depends\s+on\s+([^\s{]+(?:\{[^}]*\})?\S*)"
)
_MARKER = re.compile(r"\{[^}]*\}")
_CHAIN = re.compile(r"^(?:cause|Caused by):\s*")
# older uv drew its report: a multiplication sign before the error, an arrow before the cause
_DRAWN = {"\N{MULTIPLICATION SIGN} ": "error: ", "\u2570\u2500\u25b6 ": "cause: "}
_FLOOR = re.compile(r"\bPython\s*>=\s*(\d+\.\d+(?:\.\d+)?)")
# the sentences of a resolver's derivation: "... cannot be used. (1)  Because ..."
_SENTENCE = re.compile(r"(?<=\.)(?:\s+\(\d+\))?\s+(?=(?:And\s+)?because\b)", re.IGNORECASE)


def read_lock_failure(stderr: str, project: str) -> LockFailure:
    """Read a failed ``uv lock``'s stderr for ``project`` (its name as in ``[project]``).

    ``cause`` is uv's ``error:`` line with the first and last lines of its chain of causes
    or, for a resolver failure, the last sentence of its derivation (which names what is
    unsatisfiable); hints are left out. ``group``, ``requirement`` and ``floors`` are set
    when uv names a dependency group of the project as unsatisfiable and Python versions
    that candidates need.
    """
    lines = [_older_uv(line.rstrip()) for line in stderr.splitlines()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("error:")), None)
    if start is None:
        kept = [line.strip() for line in lines if line.strip()]
        return LockFailure(cause=kept[-1] if kept else "no output")
    head = lines[start].strip().removeprefix("error:").strip().rstrip(":")
    body: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith(("hint:", "warning:", "error:")):
            break
        body.append(line.strip())
    chain = [_CHAIN.sub("", b) for b in body if _CHAIN.match(b)]
    if len(chain) > 1:  # an error's chain of causes: the first and the root one
        return LockFailure(cause=": ".join([head, *dict.fromkeys([chain[0], chain[-1]])]))
    derivation = " ".join(_CHAIN.sub("", " ".join(body)).split())
    if not derivation:
        return LockFailure(cause=head)
    last = _SENTENCE.split(derivation)[-1]
    words = re.split(r"[-_.]+", project.lower())
    pattern = _GROUP_DEPENDS.replace("PROJECT", "[-_.]+".join(map(re.escape, words)))
    named = re.findall(pattern, derivation, flags=re.IGNORECASE)
    group, requirement = named[-1] if named else (None, None)
    floors = sorted(set(_FLOOR.findall(stderr)), key=lambda v: tuple(int(x) for x in v.split(".")))
    return LockFailure(
        cause=f"{head}: {last}",
        group=group.lower() if group else None,
        requirement=_MARKER.sub("", requirement).rstrip(",.") if requirement else None,
        floors=tuple(floors),
    )


def _older_uv(line: str) -> str:
    """A line of an older uv's drawn report in the words of today's (``error:``, ``cause:``)."""
    stripped = line.strip()
    for drawn, word in _DRAWN.items():
        if stripped.startswith(drawn):
            return word + stripped.removeprefix(drawn)
    return line.replace("\u2502", " ")
