"""The files a gate key covers (a walk of the project tree) and their memoized content hashes."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.core.errors import CIError
from ci.core.files import write_json
from ci.core.runner import Runner

INDEX_SCHEMA = 2
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


# What a key never covers, because tools write it or it is tool state, not project input:
# these names at any depth (.git also stands for a submodule's .git file) ...
EXCLUDED_NAMES = frozenset(
    {".git", ".nox", ".tox", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
)
EXCLUDED_SUFFIXES = (".egg-info",)
# ... these at the top of the project only (a package may have a subfolder named build) ...
# (dist-assets/ is where the package gate keeps everything that is not a distribution)
EXCLUDED_TOP = frozenset({"dist", "dist-assets", "build"})
# ... and any folder holding this file: a virtual environment, whatever its name.
VENV_MARKER = "pyvenv.cfg"


@dataclass(frozen=True, slots=True, kw_only=True)
class Tree:
    """Everything under a project root that a key covers, as the file system shows it."""

    files: dict[str, os.stat_result]  # regular files by path relative to the root
    dirs: tuple[str, ...]
    links: dict[str, str]  # symlinks that stay inside the covered tree, and their targets
    special: tuple[str, ...]  # sockets, fifos, devices: keyed by name only
    escapes: tuple[str, ...]  # symlinks leading out of the covered tree or into a left-out folder
    git: tuple[str, ...] = ()  # .git folders and files (repositories, submodules): by name only


def excluded_name(name: str, *, top: bool) -> bool:
    """True when a file or folder called ``name`` is never part of a key."""
    return (
        name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES) or (top and name in EXCLUDED_TOP)
    )


def walk_tree(root: Path, skip: Iterable[str] = ()) -> Tree:
    """Every file and folder under ``root`` except the excluded ones and ``skip`` (relative)."""
    top = Path(os.path.realpath(root))
    skipped = {s.strip("/") for s in skip if s.strip("/") not in {"", "."}}
    files: dict[str, os.stat_result] = {}
    dirs: list[str] = []
    links: dict[str, str] = {}
    special: list[str] = []
    escapes: list[str] = []
    markers: list[str] = []
    pending = [("", top)]
    while pending:
        prefix, folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable: a gate cannot read it either
        for entry in entries:
            rel = prefix + entry.name
            if entry.name == ".git":
                markers.append(rel)  # tools look for it (a repository's root): it counts
                continue
            if excluded_name(entry.name, top=not prefix) or rel in skipped:
                continue
            if entry.is_symlink():
                target = os.readlink(entry.path)
                if covered(top, Path(os.path.realpath(entry.path)), skipped):
                    links[rel] = target
                else:
                    escapes.append(rel)
            elif entry.is_dir(follow_symlinks=False):
                if os.path.exists(os.path.join(entry.path, VENV_MARKER)):
                    continue
                dirs.append(rel)
                pending.append((rel + "/", Path(entry.path)))
            elif entry.is_file(follow_symlinks=False):
                files[rel] = entry.stat(follow_symlinks=False)
            else:
                special.append(rel)
    return Tree(
        files=files,
        dirs=tuple(sorted(dirs)),
        links=links,
        special=tuple(sorted(special)),
        escapes=tuple(sorted(escapes)),
        git=tuple(sorted(markers)),
    )


def covered(top: Path, path: Path, skipped: Collection[str] = ()) -> bool:
    """True when the resolved ``path`` lies in the tree a key covers (``top`` resolved)."""
    if not path.is_relative_to(top):
        return False
    parts = path.relative_to(top).parts
    for depth, name in enumerate(parts):
        if excluded_name(name, top=depth == 0) or "/".join(parts[: depth + 1]) in skipped:
            return False
    folder = path if path.is_dir() else path.parent
    while folder != top and folder.is_relative_to(top):
        if (folder / VENV_MARKER).exists():
            return False
        folder = folder.parent
    return True


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
        # ctime is in the stamp because no one can set it back: an edit that keeps the size
        # and restores the mtime (os.utime, touch -d) still changes it.
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        known = self.entries.get(key)
        if known is not None and known[:4] == stamp:
            return FileHash(path=key, sha256=str(known[4]), executable=executable)
        try:
            digest = _sha256_file(path)
        except OSError:
            return FileHash(path=key, sha256=MISSING)
        if time.time() - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 > RACY_S:
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
