"""Atomic, redacted, schema-versioned file writes."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from ci.core.redact import redact


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, replace.

    A rewritten file keeps its mode; a new one gets 0666 less the umask (0644 by default),
    as ``open()`` gives it (``mkstemp``'s 0600 would make a shared file private).
    """
    if path.is_dir():  # os.replace would blame the temp file
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode: int | None = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = None
    fd, tmp = _new_temp(path)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _new_temp(path: Path) -> tuple[int, Path]:
    """A new hidden temp file beside ``path``, created with mode 0666 less the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    msg = f"cannot create a temp file beside {path}"
    raise FileExistsError(errno.EEXIST, msg, str(path))


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


_PATH_PROBLEMS = {
    errno.EISDIR: "is a folder where a file is expected",
    errno.EACCES: "cannot be accessed (permission denied)",
    errno.EPERM: "cannot be changed (operation not permitted)",
    errno.ENOENT: "does not exist",
    errno.ELOOP: "is a loop of symbolic links",
    errno.EROFS: "is on a read-only file system",
    errno.ENAMETOOLONG: "is too long a name",
}


def path_problem(exc: OSError) -> str | None:
    """One line naming the path behind a file-system error and what to do; None for others.

    These are bad input (a state folder that is a file, a ledger that is a folder, a report
    nobody may read), not a crash of the bundle.
    """
    if not exc.filename:
        return None
    path = Path(os.fsdecode(exc.filename))
    if exc.errno == errno.ENOTDIR:
        blocker = next(
            (p for p in (*reversed(path.parents), path) if p.exists() and not p.is_dir()), path
        )
        return (
            f"{blocker} is a file where a folder is expected (to reach {path}); "
            "move it aside, or point the setting that names it at a folder"
        )
    if exc.errno == errno.EEXIST and path.exists() and not path.is_dir():
        return f"{path} is a file where a folder is expected; move it aside and rerun"
    problem = _PATH_PROBLEMS.get(exc.errno or 0)
    if problem is None:
        return None
    return f"{path} {problem}; fix or move it aside and rerun"


def mask_file(path: Path) -> bool:
    """Mask a file a tool wrote (junit, coverage XML) in place, atomically; True if it changed.

    Bytes that are not UTF-8 are kept as they are; a missing file is left missing.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    text = data.decode("utf-8", "surrogateescape")
    masked = redact(text)
    if masked == text:
        return False
    atomic_write_bytes(path, masked.encode("utf-8", "surrogateescape"))
    return True
