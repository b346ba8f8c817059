"""Content hashes of a tree's files, memoized by (path, size, mtime_ns, inode) in a small index."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.core.errors import CIError
from ci.core.files import write_json
from ci.core.runner import Runner

INDEX_SCHEMA = 1
MISSING = "missing"  # the hash of a tracked file deleted from the working tree
# A file changed again within the same mtime tick would keep its stat; like git's "racy"
# entries, anything modified this recently is hashed every time instead of trusted.
RACY_S = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class FileHash:
    """One file's content hash and whether it is executable."""

    path: str
    sha256: str
    executable: bool = False


def glob_regex(patterns: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any of ``patterns`` (``**`` spans folders, ``*`` and ``?`` do not)."""
    parts = [_glob_part(p) for p in patterns]
    return re.compile("|".join(f"(?:{p})" for p in parts) if parts else "(?!)")


@functools.lru_cache(maxsize=256)
def _glob_part(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out) + r"\Z"


def select(paths: Iterable[str], include: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """The ``paths`` matching an ``include`` glob and no ``exclude`` glob, sorted."""
    wanted = glob_regex(include)
    unwanted = glob_regex(exclude)
    return sorted(p for p in paths if wanted.match(p) and not unwanted.match(p))


def tracked_files(root: Path, runner: Runner) -> list[str] | None:
    """Files git would see in ``root``: tracked plus untracked-but-not-ignored; None if no repo."""
    try:
        done = runner.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root
        )
    except CIError:
        return None  # no git on PATH: the caller treats the tree as uncacheable
    if not done:
        return None
    return sorted({p for p in done.stdout.split("\0") if p})


class HashIndex:
    """Memoized file hashing; ``save()`` writes the index back only when it changed."""

    def __init__(self, path: Path, root: Path) -> None:
        """Load the index at ``path``; relative names are files under ``root``."""
        self.path = path
        self.root = root
        self.entries: dict[str, list[Any]] = {}
        self.extra: dict[str, Any] = {}
        self._dirty = False
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("schema") == INDEX_SCHEMA:
                self.entries = dict(data.get("files", {}))
                self.extra = dict(data.get("extra", {}))
        except (OSError, ValueError, AttributeError):
            pass  # a lost or corrupt index only costs one full re-hash

    def hash(self, path: Path, name: str | None = None) -> FileHash:
        """The content hash of ``path`` (recorded under ``name``, default the path itself)."""
        key = name or str(path)
        try:
            st = path.stat()
        except OSError:
            return FileHash(path=key, sha256=MISSING)
        executable = bool(st.st_mode & 0o111)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        known = self.entries.get(key)
        if known is not None and known[:3] == stamp:
            return FileHash(path=key, sha256=str(known[3]), executable=executable)
        try:
            digest = _sha256_file(path)
        except OSError:
            return FileHash(path=key, sha256=MISSING)
        if time.time() - st.st_mtime_ns / 1e9 > RACY_S:
            self.entries[key] = [*stamp, digest]
            self._dirty = True
        return FileHash(path=key, sha256=digest, executable=executable)

    def hash_tree(self, root: Path, paths: Iterable[str]) -> dict[str, FileHash]:
        """Hashes of ``paths`` relative to ``root``, keyed by path."""
        return {p: self.hash(root / p, p) for p in paths}

    def remember(self, name: str, value: Any) -> None:  # noqa: ANN401 - any JSON value
        """Keep a small derived value (e.g. versions parsed from uv.lock) in the index."""
        if self.extra.get(name) != value:
            self.extra[name] = value
            self._dirty = True

    def save(self) -> None:
        """Write the index atomically if anything was added."""
        if not self._dirty:
            return
        live = {k: v for k, v in self.entries.items() if _exists(self.root / k)}
        write_json(self.path, {"files": live, "extra": self.extra}, schema=INDEX_SCHEMA)
        self._dirty = False


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
