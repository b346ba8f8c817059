"""Which uv the bundle runs: its own, never one a project's environment puts first on PATH.

A project that depends on an older ``uv`` gets that uv into its virtual environment, whose
scripts folder comes first on PATH in ``uv run`` and in a nox session: the bundle's
``uv export --no-emit-local`` or ``uv lock`` must not meet it there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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
