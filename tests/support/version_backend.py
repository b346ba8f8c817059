"""A project whose version is dynamic, answered by an in-tree PEP 517 backend (no downloads)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

# An in-tree PEP 517 backend whose version is dynamic (read from VERSION, as flit reads
# __version__): `python -m build --metadata` asks it without downloading anything.
BACKEND = textwrap.dedent("""
    import os


    def get_requires_for_build_wheel(config_settings=None):
        return []


    def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
        with open("VERSION", encoding="utf-8") as handle:
            text = handle.read().strip()
        if text == "crash":
            raise RuntimeError("the version file says crash")
        folder = os.path.join(metadata_directory, "demo-0.dist-info")
        os.makedirs(folder)
        with open(os.path.join(folder, "METADATA"), "w", encoding="utf-8") as handle:
            handle.write(f"Metadata-Version: 2.1\\nName: demo\\nVersion: {text}\\n")
        return "demo-0.dist-info"


    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        raise NotImplementedError
    """)

PYPROJECT = textwrap.dedent("""
    [build-system]
    requires = []
    build-backend = "demo_backend"
    backend-path = ["."]

    [project]
    name = "demo"
    dynamic = ["version"]
    """)


def dynamic_project(make_repo: Callable[..., Path], text: str, extra: str = "") -> Path:
    """A committed git repository whose backend reports ``text`` as the version."""
    files = {
        "pyproject.toml": PYPROJECT + extra,
        "demo_backend.py": BACKEND,
        "VERSION": f"{text}\n",
    }
    return make_repo(files)
