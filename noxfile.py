"""The pipeline's sessions: one per gate session of the registry, each calls ``python -m ci``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))  # ci needs the stdlib and packaging (nox's): safe before a sync

from ci.gates import sessions  # noqa: E402

# Use the interpreters that are installed; GitHub runners opt in to downloads via these env vars.
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
nox.needs_version = ">=2026.10.20"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.download_python = os.environ.get("NOX_DOWNLOAD_PYTHON", "never")  # type: ignore[assignment]

sessions.declare(ROOT)
