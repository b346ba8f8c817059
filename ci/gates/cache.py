"""Content-addressed gate results: each gate's declared inputs, their key, store, replay, LRU."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ci
from ci.core.clock import Clock
from ci.core.config import Config, env_flag, state_dir
from ci.core.files import atomic_write_bytes, write_json
from ci.core.gate import GateResult, GateStatus
from ci.core.runner import Runner
from ci.gates import registry
from ci.gates.filehash import HashIndex, select, tracked_files
from ci.run import preflight

KEY_SCHEMA = 1
ENTRY_SCHEMA = 1
PREFLIGHT_MAX_AGE_S = 24 * 3600


# Every gate reads these; CI_INJECT_FAULT makes a gate fail on purpose, so it is in every key.
COMMON_FILES = ("pyproject.toml", "uv.lock", "noxfile.py")
COMMON_ENV = ("CI_INJECT_FAULT",)

# Env vars that change which interpreters and tools the preflight finds.
_PREFLIGHT_ENV = (
    "PATH",
    "PYENV_VERSION",
    "VIRTUAL_ENV",
    "UV_PYTHON",
    "UV_PYTHON_DOWNLOADS",
    "UV_PYTHON_INSTALL_DIR",
    "UV_PYTHON_PREFERENCE",
)


def enabled(env: Mapping[str, str], no_cache: bool = False) -> bool:
    """False when ``--no-cache`` was given or ``CI_NO_CACHE`` is set."""
    return not no_cache and not env_flag("CI_NO_CACHE", env)


def digest(inputs: Mapping[str, Any]) -> str:
    """The key: sha256 of the canonical JSON of a gate's inputs."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def env_hash(value: str | None) -> str | None:
    """What the key keeps of an env var: a hash of its value (never the value), None if unset."""
    if value is None:
        return None
    return hashlib.sha256(b"noxgate-env\0" + value.encode("utf-8")).hexdigest()[:32]


def gate_config(config: Config, gate: str, fields: Sequence[str]) -> dict[str, Any]:
    """The gate's own policy table plus the named [tool.ci] fields, JSON-ready."""
    chosen: dict[str, Any] = {"gate": dataclasses.asdict(config.gate(gate))}
    for name in fields:
        value = getattr(config, name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            value = [dataclasses.asdict(v) for v in value]
        chosen[name] = value
    canonical: dict[str, Any] = json.loads(json.dumps(chosen, sort_keys=True, default=str))
    return canonical


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """A stored passing result and the files it produced."""

    key: str
    path: Path
    result: GateResult
    artifacts: tuple[tuple[str, str], ...]  # (path relative to the root, file in the entry)


class GateCache:
    """The cache under ``CI_STATE_DIR/cache``: keys from inputs, entries, replay and eviction."""

    def __init__(
        self, config: Config, runner: Runner, clock: Clock, env: Mapping[str, str]
    ) -> None:
        """Open (lazily) the cache of ``config.root``."""
        self.config = config
        self.runner = runner
        self.clock = clock
        self.env = env
        self.dir = state_dir(config.root, env) / "cache"
        self.index = HashIndex(self.dir / "files.json", config.root)
        self._tree: list[str] | None = None
        self._tree_read = False
        self._lock_versions: dict[str, str] | None = None

    # -- inputs and keys -------------------------------------------------------------

    def tree(self) -> list[str] | None:
        """The files git sees (read once per process); None outside a git work tree."""
        if not self._tree_read:
            self._tree = tracked_files(self.config.root, self.runner)
            self._tree_read = True
        return self._tree

    def inputs(self, gate: str, python: str, args: Sequence[str] = ()) -> dict[str, Any] | None:
        """Everything ``gate``'s result depends on, or None when it cannot be cached here."""
        spec = registry.get(self.config, gate).inputs  # the gate's declared inputs
        if spec is None or (args and not spec.args):
            return None
        tree = self.tree()
        if tree is None:
            return None
        root = self.config.root
        paths = select(tree, (*COMMON_FILES, *spec.files), (*spec.exclude, *self._own_output()))
        hashes = self.index.hash_tree(root, paths)
        lock = hashes.get("uv.lock") or self.index.hash(root / "uv.lock", "uv.lock")
        versions = self.lock_versions(lock.sha256)
        inputs: dict[str, Any] = {
            "key_schema": KEY_SCHEMA,
            "gate": gate,
            "python": python,
            "args": list(args),
            "files": {p: h.sha256 + ("+x" if h.executable else "") for p, h in hashes.items()},
            "bundle": self.bundle_hashes(),
            "uv.lock": lock.sha256,
            "tools": {t: versions.get(t) for t in spec.tools},
            "config": gate_config(self.config, gate, spec.config),
            "env": {n: env_hash(self.env.get(n)) for n in sorted({*COMMON_ENV, *spec.env})},
        }
        if spec.daily:
            inputs["date"] = self.clock.today().isoformat()
        if spec.head:
            inputs["head"] = self._head()
        if spec.folder_from:
            inputs["folder"] = self._folder_listing(spec.folder_from)
        return inputs

    def _own_output(self) -> list[str]:
        """Folders the pipeline itself writes: never inputs, even when git does not ignore them."""
        folders = [".nox", ".venv", self.config.reports_dir.strip("/")]
        state = state_dir(self.config.root, self.env)
        if not state.is_absolute():
            state = self.config.root / state
        if state.resolve().is_relative_to(self.config.root.resolve()):
            folders.append(state.resolve().relative_to(self.config.root.resolve()).as_posix())
        return [f"{folder}/**" for folder in folders if folder not in {"", "."}]

    def key(self, gate: str, python: str, args: Sequence[str] = ()) -> str | None:
        """The cache key of ``gate`` on ``python`` with ``args``, or None when uncacheable."""
        inputs = self.inputs(gate, python, args)
        return None if inputs is None else digest(inputs)

    def bundle_hashes(self) -> dict[str, str]:
        """Hashes of the ci package's own modules: a changed gate invalidates its results."""
        package = Path(ci.__file__).parent
        names = sorted(
            str(p.relative_to(package))
            for p in package.rglob("*.py")
            if "__pycache__" not in p.parts
        )
        return {n: self.index.hash(package / n, str(package / n)).sha256 for n in names}

    def lock_versions(self, lock_sha: str) -> dict[str, str]:
        """Package versions pinned in uv.lock (parsed once per lock hash, kept in the index)."""
        if self._lock_versions is not None:
            return self._lock_versions
        known = self.index.extra.get("lock")
        if isinstance(known, dict) and known.get("sha256") == lock_sha:
            self._lock_versions = dict(known.get("versions", {}))
            return self._lock_versions
        versions: dict[str, str] = {}
        try:
            document = tomllib.loads((self.config.root / "uv.lock").read_text(encoding="utf-8"))
            for package in document.get("package", []):
                if isinstance(package, dict) and "version" in package:
                    versions[str(package["name"])] = str(package["version"])
        except (OSError, ValueError):
            versions = {}  # the lock hash alone still keys the result
        self.index.remember("lock", {"sha256": lock_sha, "versions": versions})
        self._lock_versions = versions
        return versions

    def _folder_listing(self, names: Sequence[str]) -> str | None:
        """A hash of the listing of the first folder ``names`` point to (env, then config)."""
        raw = next(
            (
                str(value)
                for value in (self.env.get(n) or getattr(self.config, n, None) for n in names)
                if value
            ),
            None,
        )
        if raw is None:
            return None
        folder = self.config.root / raw  # an absolute raw path stays as it is
        digest_ = hashlib.sha256(str(folder).encode())
        for parent, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                path = Path(parent) / name
                try:
                    st = path.stat()
                except OSError:
                    continue
                rel = path.relative_to(folder).as_posix()
                digest_.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return digest_.hexdigest()

    def _head(self) -> str | None:
        done = self.runner.run(["git", "rev-parse", "HEAD"], cwd=self.config.root)
        return done.stdout.strip() if done else None

    # -- entries -----------------------------------------------------------------------

    def entry_dir(self, key: str) -> Path:
        """Where the entry of ``key`` lives."""
        return self.dir / "entries" / key[:2] / key

    def lookup(self, key: str) -> Entry | None:
        """The stored entry of ``key`` (marked as just used), or None."""
        folder = self.entry_dir(key)
        try:
            data = json.loads((folder / "result.json").read_text(encoding="utf-8"))
            entry = Entry(
                key=key,
                path=folder,
                result=GateResult.from_dict(data["result"]),
                artifacts=tuple((str(a["path"]), str(a["file"])) for a in data["artifacts"]),
            )
            os.utime(folder / "result.json")  # LRU: the last use is the file's mtime
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if data.get("schema") != ENTRY_SCHEMA or data.get("key") != key:
            return None
        return entry

    def store(self, key: str, result: GateResult, inputs: Mapping[str, Any]) -> bool:
        """Keep a passing ``result`` and copies of its artifacts; False when not stored."""
        if result.status is not GateStatus.PASSED:
            return False
        folder = self.entry_dir(key)
        root = self.config.root
        artifacts = []
        for index, rel in enumerate(result.artifacts):
            source = (root / rel).resolve()
            if not source.is_file() or not source.is_relative_to(root.resolve()):
                continue
            name = f"artifact-{index}"
            atomic_write_bytes(folder / name, source.read_bytes())
            artifacts.append({"path": rel, "file": name})
        payload = {
            "key": key,
            "created": self.clock.now().isoformat(),
            "result": result.to_dict(),
            "artifacts": artifacts,
            "inputs": inputs,
        }
        write_json(folder / "result.json", payload, schema=ENTRY_SCHEMA)  # written last: commit
        self.evict()
        return True

    def replay(self, entry: Entry, started: float | None = None) -> GateResult:
        """Restore the entry's artifacts and return its result marked ``cached``."""
        begin = time.monotonic() if started is None else started
        root = self.config.root
        for rel, name in entry.artifacts:
            target = root / rel
            if not target.resolve().is_relative_to(root.resolve()):
                continue  # never write outside the project, whatever the entry says
            atomic_write_bytes(target, (entry.path / name).read_bytes())
        original = entry.result
        note = f"cached, ran in {original.duration_s:.1f} s"
        return dataclasses.replace(
            original,
            status=GateStatus.CACHED,
            duration_s=time.monotonic() - begin,
            summary=f"{original.summary} ({note})" if original.summary else note,
        )

    def entries(self) -> list[tuple[Path, float, int]]:
        """Every stored entry: (folder, last use, size in bytes), oldest use first."""
        found = []
        for result in (self.dir / "entries").glob("*/*/result.json"):
            try:
                used = result.stat().st_mtime
                size = sum(f.stat().st_size for f in result.parent.iterdir())
            except OSError:
                continue
            found.append((result.parent, used, size))
        return sorted(found, key=lambda item: item[1])

    def evict(self, max_bytes: int | None = None) -> list[Path]:
        """Delete least recently used entries until the cache fits ``cache.max_mb``."""
        limit = self.config.cache.max_mb * 1024 * 1024 if max_bytes is None else max_bytes
        entries = self.entries()
        total = sum(size for _, _, size in entries)
        removed = []
        for folder, _, size in entries:
            if total <= limit:
                break
            remove_entry(folder)
            total -= size
            removed.append(folder)
        return removed

    def clear(self) -> int:
        """Delete every entry and the file index; the number of entries removed."""
        entries = self.entries()
        for folder, _, _ in entries:
            remove_entry(folder)
        shutil.rmtree(self.dir, ignore_errors=True)
        return len(entries)

    def save(self) -> None:
        """Write the file-hash index back if it learned anything (best effort)."""
        with contextlib.suppress(OSError):  # a read-only state folder costs only re-hashing
            self.index.save()

    # -- preflight ---------------------------------------------------------------------

    def preflight(self) -> tuple[list[preflight.Check], bool]:
        """The preflight checks, reused when uv.lock, pyproject.toml and PATH are unchanged.

        Returns the checks and whether they came from the cache. Only a passing preflight is
        kept, for at most a day; interpreters it found must still exist.
        """
        path = self.dir / "preflight.json"
        key = self._preflight_key()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            fresh = time.time() - float(data["at"]) < PREFLIGHT_MAX_AGE_S
            if data.get("key") == key and fresh and all(os.path.exists(p) for p in data["paths"]):
                checks = [
                    preflight.Check(
                        name=str(c["name"]),
                        status=preflight.Status(c["status"]),
                        detail=c["detail"],
                    )
                    for c in data["checks"]
                ]
                return checks, True
        except (OSError, ValueError, KeyError, TypeError):
            pass
        checks = preflight.gather(self.config, self.runner)
        if all(checks):
            paths = [c.detail for c in checks if c.status is preflight.Status.OK and _is_path(c)]
            payload = {
                "key": key,
                "at": time.time(),
                "paths": paths,
                "checks": [
                    {"name": c.name, "status": c.status.value, "detail": c.detail} for c in checks
                ],
            }
            write_json(path, payload)
        return checks, False

    def _preflight_key(self) -> str:
        root = self.config.root
        files = {
            name: self.index.hash(root / name, name).sha256
            for name in ("pyproject.toml", "uv.lock")
        }
        tools = {}
        for tool in preflight.REQUIRED_TOOLS:
            where = self.runner.which(tool)
            tools[tool] = [where, _mtime(where)]
        return digest(
            {
                "files": files,
                "tools": tools,
                "config": str(self.config.path),
                "bundle": self.bundle_hashes(),
                "env": {n: env_hash(self.env.get(n)) for n in _PREFLIGHT_ENV},
            }
        )


def remove_entry(folder: Path) -> None:
    """Delete one entry: its result.json first, so a half-deleted entry is never a hit."""
    (folder / "result.json").unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


def _is_path(check: preflight.Check) -> bool:
    return check.name.startswith("python") or check.name in preflight.REQUIRED_TOOLS


def _mtime(path: str | None) -> int | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
