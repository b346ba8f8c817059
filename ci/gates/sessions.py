"""The nox sessions of the gate registry, declared into a noxfile (bundle or project's own).

API, for a noxfile::

    from ci.gates import sessions
    sessions.declare(ROOT)          # last, after the noxfile's own sessions

``declare(root, config=None, defaults=True) -> Declared`` registers one nox session per
gate session of ``ci.gates.registry.sessions`` (built-in and ``[tool.ci.gates.NAME]``
ones): it syncs the locked project with the gates' dependency group (``uv sync --locked
--no-default-groups --group G``) and runs ``python -m ci gate NAME`` for each of its
gates, the session's positional arguments going to the first. A per-Python gate (test)
becomes ``NAME-3.12``, ``NAME-3.11``, ... over ``[tool.ci] pythons``.

Nothing the noxfile already declares is replaced: a session whose name the noxfile has
registered before the call is kept as it is (``Declared.kept``), so a project that adopts
the bundle keeps its own ``test`` session and gets the others added. With ``defaults``
the main job's sessions (``registry.main_sessions``) become nox's default sessions: added
to ``nox.options.sessions`` when the noxfile set it, else set to the noxfile's own default
sessions plus them. With ``defaults=False`` the added sessions are not run by a plain
``nox``. A malformed ``[tool.ci]`` prints one line and exits 2, any other error the bundle
raises on purpose its own code (the noxfile is an entry point, like ``python -m ci``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nox

from ci.core import config as config_module
from ci.core import uv as bundle_uv
from ci.core.config import Config
from ci.core.errors import CIError
from ci.gates import registry
from ci.gates.registry import Session


@dataclass(frozen=True, slots=True, kw_only=True)
class Declared:
    """What ``declare`` did: sessions added, sessions the noxfile kept, nox's defaults."""

    added: tuple[str, ...]
    kept: tuple[str, ...]
    defaults: tuple[str, ...]


def declare(root: Path, *, config: Config | None = None, defaults: bool = True) -> Declared:
    """Register a nox session for every gate session the noxfile does not declare itself."""
    try:
        config = config or config_module.load(cwd=root)
        wanted = registry.sessions(config)
        main = registry.main_sessions(config)
    except CIError as exc:  # a bad [tool.ci] (exit 2) or pyproject.toml: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    existing = nox.registry.get()
    added, kept = [], []
    for session in wanted:
        if session.name in existing:
            kept.append(session.name)
            continue
        python: str | list[str] = (
            list(session.pythons) if session.parametrized else session.pythons[0]
        )
        nox.session(python=python, name=session.name, default=defaults)(body(session))
        added.append(session.name)
    chosen: tuple[str, ...] = ()
    if defaults:
        own = [name for name, func in existing.items() if getattr(func, "default", True)]
        current = list(nox.options.sessions or own)
        chosen = tuple(current + [name for name in main if name not in current])
        nox.options.sessions = list(chosen)
    return Declared(added=tuple(added), kept=tuple(kept), defaults=chosen)


def body(session: Session) -> Callable[[Any], None]:
    """The function nox runs for ``session``: sync its group, then run each gate."""

    def run(nox_session: Any) -> None:  # noqa: ANN401 - nox.Session (nox ships no types)
        # the bundle's uv, also for the gates: not one the project's venv puts first on PATH
        uv = bundle_uv.find(os.environ)
        sync(nox_session, session.group, uv=uv)
        env = {bundle_uv.UV_ENV: uv} if os.path.isabs(uv) else {}
        for index, gate in enumerate(session.gates):
            args = nox_session.posargs if index == 0 else []
            nox_session.run("python", "-m", "ci", "gate", gate.name, *args, env=env)

    run.__doc__ = session.doc
    run.__name__ = run.__qualname__ = session.name.replace("-", "_")
    return run


def sync(session: Any, group: str | None, *, uv: str = "uv") -> None:  # noqa: ANN401 - nox.Session
    """Install the locked project (and dependency ``group``) into the session's venv with ``uv``."""
    location = session.virtualenv.location
    session.run_install(
        uv,
        "sync",
        "--locked",
        "--no-default-groups",
        *([f"--group={group}"] if group else []),
        f"--python={location}",
        env={"UV_PROJECT_ENVIRONMENT": location, "UV_PYTHON_DOWNLOADS": "never"},
        external=True,
    )
