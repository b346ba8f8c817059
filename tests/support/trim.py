"""Trim a clone's test suite to a few files, for rehearsals that must not test themselves."""

from __future__ import annotations

import shutil
from collections.abc import Collection
from pathlib import Path


def keep_only(tests: Path, keep: Collection[str]) -> None:
    """Delete everything under ``tests`` but the paths in ``keep`` (relative, ``/``-separated)."""
    for path in sorted(tests.rglob("*"), reverse=True):  # children before their folders
        rel = path.relative_to(tests).as_posix()
        if any(rel == k or rel.startswith(f"{k}/") or k.startswith(f"{rel}/") for k in keep):
            continue
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
