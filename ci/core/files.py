"""Atomic, redacted, schema-versioned file writes."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ci.core.redact import redact


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (masked) to ``path`` atomically."""
    atomic_write_bytes(path, redact(text).encode("utf-8"))


def write_json(path: Path, payload: dict[str, Any], schema: int = 1) -> None:
    """Write ``payload`` with ``"schema"`` first as indented JSON, masked and atomic."""
    document = {"schema": schema, **{k: v for k, v in payload.items() if k != "schema"}}
    atomic_write_text(path, json.dumps(document, indent=2, sort_keys=False) + "\n")


def append_line(path: Path, line: str) -> None:
    """Append one masked line in a single ``O_APPEND`` write: concurrent writers never mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (redact(line).rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
