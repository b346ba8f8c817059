"""The commands of one deploy: the configured ones, or the default wheel install + import.

The default deploy installs the built wheel into a venv with uv (offline) and imports it.
"""

from __future__ import annotations

import re
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from ci.core.config import Environment


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One command of a deploy: the deploy command or the healthcheck."""

    stage: str
    argv: tuple[str, ...]
    expect_output: str | None = None  # the default smoke test checks the installed version


def same_version(a: str | None, b: str | None) -> bool:
    """True when ``a`` and ``b`` are equal PEP 440 versions (1.0 == 1.0.0)."""
    if a is None or b is None:
        return False
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def find_wheel(dist: Path, project: str, version: str) -> Path | None:
    """The newest wheel of ``project`` at ``version`` anywhere under ``dist``, or None."""
    name = _normalize(project)
    if not name or not dist.is_dir():
        return None
    found = {p for p in dist.rglob("*.whl") if p.is_file() and _wheel_matches(p, name, version)}
    if not found:
        return None
    return max(found, key=lambda p: (p.stat().st_mtime, str(p)))


def needs_artifact(environment: Environment) -> bool:
    """True when the deploy uses the built wheel (the default deploy or ``{artifact}``)."""
    commands = (*environment.deploy_command, *environment.healthcheck_command)
    return not environment.deploy_command or any("{artifact}" in a for a in commands)


def plan_steps(
    environment: Environment,
    version: str,
    artifact: Path | None,
    *,
    venv: Path,
    uv: str,
    project: str,
    packages: Sequence[str],
) -> list[Step]:
    """The commands that put ``version`` on ``environment`` and check it (pure)."""
    values = {"{version}": version, "{env}": environment.name, "{artifact}": str(artifact or "")}
    steps: list[Step] = []
    if environment.deploy_command:
        steps.append(Step(stage="deploy", argv=fill(environment.deploy_command, values)))
    else:
        python = venv / "bin" / "python"
        if not python.exists():
            create = (uv, "venv", "--quiet", str(venv), "--python", sys.executable)
            steps.append(Step(stage="deploy", argv=create))
        # from uv's cache where it has what the wheel needs, from the index where it does not:
        # `uv sync` fills the cache with wheels but not with the index pages an install of a
        # wheel's dependencies reads, so --offline failed on a fresh machine (a release's
        # deploy follows its publish, which needs the network anyway)
        install = (
            *(uv, "pip", "install", "--quiet", "--python", str(python)),
            *("--reinstall-package", project, str(artifact or "MISSING")),
        )
        steps.append(Step(stage="deploy", argv=install))
    if environment.healthcheck_command:
        steps.append(Step(stage="healthcheck", argv=fill(environment.healthcheck_command, values)))
    elif not environment.deploy_command:
        modules = ", ".join(top_level(artifact) or packages[:1])
        code = f"import importlib.metadata as m, {modules}; print(m.version({project!r}))"
        smoke = (str(venv / "bin" / "python"), "-c", code)
        steps.append(Step(stage="healthcheck", argv=smoke, expect_output=version))
    return steps


def fill(argv: Sequence[str], values: Mapping[str, str]) -> tuple[str, ...]:
    """``argv`` with each placeholder in ``values`` replaced (other braces left alone)."""
    filled = []
    for arg in argv:
        text = arg
        for key, value in values.items():
            text = text.replace(key, value)
        filled.append(text)
    return tuple(filled)


def top_level(wheel: Path | None) -> list[str]:
    """The top-level packages and modules a wheel installs: what the smoke test imports."""
    if wheel is None or not wheel.is_file():
        return []
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return []
    found = set()
    for name in names:
        head, _, rest = name.partition("/")
        if head.endswith((".dist-info", ".data")):
            continue
        if rest == "__init__.py" or (not rest and head.endswith(".py")):
            found.add(head.removesuffix(".py"))
    return sorted(m for m in found if m.isidentifier())


def _wheel_matches(path: Path, name: str, version: str) -> bool:
    parts = path.name.split("-")
    return len(parts) >= 5 and _normalize(parts[0]) == name and same_version(parts[1], version)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()
