"""The pipeline's sessions: each declares its environment and delegates to ``python -m ci``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))  # ci.core.config is stdlib-only: safe to import before any sync

from ci.core.config import load  # noqa: E402

CONFIG = load(cwd=ROOT)
# Use the interpreters that are installed; GitHub runners opt in to downloads via these env vars.
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
nox.needs_version = ">=2026.10.20"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.download_python = os.environ.get("NOX_DOWNLOAD_PYTHON", "never")  # type: ignore[assignment]
nox.options.sessions = ["lint", f"test-{CONFIG.default_python}", "security", "package", "workflows"]


def sync(session: nox.Session, *groups: str) -> None:
    """Install the locked project and dependency ``groups`` into the session's venv."""
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--no-default-groups",
        *(f"--group={group}" for group in groups),
        f"--python={session.virtualenv.location}",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location, "UV_PYTHON_DOWNLOADS": "never"},
    )


@nox.session(python=CONFIG.default_python)
def lint(session: nox.Session) -> None:
    """Lint: ruff check, ruff format --check and mypy."""
    sync(session, "lint")
    session.run("python", "-m", "ci", "gate", "lint", *session.posargs)


@nox.session(python=list(CONFIG.pythons))
def test(session: nox.Session) -> None:
    """Test: headless pytest with junit and coverage reports under reports/."""
    sync(session, "test")
    session.run("python", "-m", "ci", "gate", "test", *session.posargs)


@nox.session(python=CONFIG.default_python)
def security(session: nox.Session) -> None:
    """Security: secrets in the tracked tree, and an audit of the locked dependencies."""
    sync(session, "security")
    session.run("python", "-m", "ci", "gate", "secrets", *session.posargs)
    session.run("python", "-m", "ci", "gate", "audit")


@nox.session(python=CONFIG.default_python)
def package(session: nox.Session) -> None:
    """Package: wheel + sdist built twice (reproducible), stamped, twine-checked, checksummed."""
    sync(session, "package")
    session.run("python", "-m", "ci", "gate", "package", *session.posargs)


@nox.session(python=CONFIG.default_python)
def workflows(session: nox.Session) -> None:
    """Workflows: zizmor (offline), GitHub's workflow schema and the bundle's own rules."""
    sync(session, "workflows")
    session.run("python", "-m", "ci", "gate", "workflows", *session.posargs)
