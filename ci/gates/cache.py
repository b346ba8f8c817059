"""Content-addressed gate results: each gate's declared inputs, their key, store, replay, LRU."""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
import tomllib
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ci
from ci.core.clock import Clock
from ci.core.config import Config, env_flag, state_dir
from ci.core.errors import CIError, ToolError
from ci.core.files import atomic_write_bytes, write_json
from ci.core.gate import GateInputs, GateResult, GateStatus, Lister
from ci.core.runner import Runner, confined
from ci.gates import registry
from ci.gates.filehash import MISSING, HashIndex, walk_tree
from ci.release import package

KEY_SCHEMA = 3
ENTRY_SCHEMA = 1

# A lister gate's key also covers these (a whole-tree key covers them anyway).
COMMON_FILES = ("pyproject.toml", "uv.lock", "noxfile.py")
# Visible to every gate and keyed: fault injection, the state folder (coverage baselines).
COMMON_ENV = ("CI_INJECT_FAULT", "CI_STATE_DIR")

# Visible to every gate and not keyed: each only locates the machine's own programs, homes,
# caches and scratch space, shapes terminal output, or decides whether a network connection
# is trusted (a connection that fails is an error, never a pass).
PASS_THROUGH = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "VIRTUAL_ENV",
    "TMPDIR",
    "TEMP",
    "TMP",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_RUNTIME_DIR",
    "UV_CACHE_DIR",
    "UV_PYTHON_INSTALL_DIR",
    "PIP_CACHE_DIR",
    "PYENV_ROOT",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "FORCE_COLOR",
    "COLUMNS",
    "LINES",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "SYSTEMROOT",
    "COMSPEC",
    "PATHEXT",
)
# Visible to every gate and keyed: the locale and time zone can change what tests see.
KEYED_ENV = ("LANG", "LANGUAGE", "LC_*", "TZ")
# Keyed, never passed on: they shape the interpreter running the gate itself (PYTHONPATH,
# PYTHONWARNINGS, ...). PYTHONHOME is left out: nox removes it inside its sessions.
INTERPRETER_ENV = "PYTHON*"

# Files tools look for in the folders above the project (pytest, ruff, mypy and uv walk up
# from it: configs, ignore files, repository markers, package markers): their content (or
# that they are folders) in every folder above the root is keyed.
ANCESTOR_FILES = (
    ".git",
    ".git/info/exclude",
    ".jj",
    ".hg",
    ".gitignore",
    ".hgignore",
    ".ignore",
    ".python-version",  # pyenv picks the uv and python a gate starts by it
    "pyvenv.cfg",  # coverage leaves code in a virtualenv unmeasured
    "conda-meta/history",
    "__init__.py",
    "__init__.pyi",
    "pyproject.toml",
    "setup.cfg",
    "tox.ini",
    "pytest.ini",
    ".pytest.ini",
    "ruff.toml",
    ".ruff.toml",
    "mypy.ini",
    ".mypy.ini",
    "uv.toml",
    ".editorconfig",
    ".shellcheckrc",  # shellcheck looks for it (and shellcheckrc) from each script's folder up
    "shellcheckrc",
    ".yamllint",  # yamllint looks for its project config up to / even when given one
    ".yamllint.yaml",
    ".yamllint.yml",
)
# User-level config files the built-in tools read (under XDG_CONFIG_HOME, else ~/.config,
# and HOME): keyed by content.
USER_CONFIG_FILES = (
    "{config}/ruff/pyproject.toml",
    "{config}/ruff/ruff.toml",
    "{config}/ruff/.ruff.toml",
    "{config}/mypy/config",
    "{home}/.mypy.ini",
    "{config}/uv/uv.toml",
    "{config}/pip/pip.conf",
    "{home}/.pip/pip.conf",
    "{home}/.pypirc",
    "{config}/git/config",
    "{config}/git/ignore",
    "{config}/git/attributes",  # core.attributesFile by default: eol and export-ignore rules
    "{home}/.gitconfig",
    "{home}/.shellcheckrc",
    "{config}/shellcheckrc",
    "{config}/hadolint.yaml",
    "{config}/hadolint.yml",
    "{home}/.hadolint/hadolint.yaml",
    "{home}/.hadolint/hadolint.yml",
    "{home}/.hadolint/config.yaml",
    "{home}/.hadolint/config.yml",
    "{home}/.hadolint.yaml",
    "{home}/.hadolint.yml",
)
# Keyed, never copied into a gate's private home: upload credentials no gate needs (a gate
# then sees the file missing on every run, whatever its content: the key only over-covers).
NOT_COPIED = frozenset({"{home}/.pypirc"})
# Inside the project's .git folder, what tools other than git read: ruff's ignore rules.
GIT_CONFIG_VARIABLES = ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM")  # keyed by the file they name
GIT_READ_BY_TOOLS = (".git/info/exclude", ".git/pyvenv.cfg", ".git/conda-meta/history")
# What a gate may learn from git beyond the files (``git tag``, ``git log``, ``git status``):
# every cached gate's key names the answers to these (HEAD, refs and tags, index, config).
GIT_STATE = {
    "head": ("rev-parse", "HEAD", "--symbolic-full-name", "HEAD"),
    "refs": ("for-each-ref", "--format=%(objectname) %(refname)"),
    "index": ("ls-files", "--stage", "-z"),
    "config": ("config", "--local", "--list", "-z"),
}

# A cacheable gate runs in a private home, fresh per run and removed after: HOME and the
# XDG folders point into it, and only the user files its key covers are copied in.
PRIVATE_XDG = (
    ("XDG_CONFIG_HOME", ".config"),
    ("XDG_CACHE_HOME", ".cache"),
    ("XDG_DATA_HOME", ".local/share"),
    ("XDG_STATE_HOME", ".local/state"),
)
# Tool caches that would answer from earlier runs (even of other content): they start empty
# in the private home's cache folder. pytest's goes there through PYTEST_ADDOPTS.
TOOL_CACHE_ENV = (("RUFF_CACHE_DIR", "ruff"), ("MYPY_CACHE_DIR", "mypy"))
PYTEST_CACHE = "pytest"
# Where the machine's programs and content-addressed download caches live by default under
# the user's real home: kept there (they locate programs, like PATH; not project input).
MACHINE_DIRS = (
    ("UV_CACHE_DIR", "{cache}/uv"),
    ("UV_PYTHON_INSTALL_DIR", "{data}/uv/python"),
    ("PYENV_ROOT", "{home}/.pyenv"),
    ("CARGO_HOME", "{home}/.cargo"),
    ("RUSTUP_HOME", "{home}/.rustup"),
)


def enabled(env: Mapping[str, str], no_cache: bool = False) -> bool:
    """False with ``--no-cache``, ``CI_NO_CACHE``, or for a tag on GitHub: those run fresh."""
    tag = env.get("GITHUB_REF_TYPE") == "tag" or env.get("GITHUB_REF", "").startswith("refs/tags/")
    return not no_cache and not tag and not env_flag("CI_NO_CACHE", env)


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


def declared_env(spec: GateInputs, config: Config, gate: str) -> tuple[str, ...]:
    """The env var names and patterns ``gate`` may see and keys: its own, common and the user's."""
    return (*COMMON_ENV, *KEYED_ENV, *spec.env, *config.gate(gate).env)


def gate_environment(env: Mapping[str, str], patterns: Sequence[str]) -> dict[str, str]:
    """The environment a cached gate runs with: the pass-through set and ``patterns``."""
    wanted = (*PASS_THROUGH, *patterns)
    return {n: v for n, v in env.items() if any(fnmatch.fnmatchcase(n, p) for p in wanted)}


def keyed_env(env: Mapping[str, str], patterns: Sequence[str]) -> dict[str, str | None]:
    """Hashes of the declared variables (an unset name is None) and of the interpreter's own."""
    keyed: dict[str, str | None] = {p: None for p in patterns if not _is_pattern(p)}
    for name, value in env.items():
        declared = any(fnmatch.fnmatchcase(name, p) for p in patterns)
        interpreter = (
            fnmatch.fnmatchcase(name, INTERPRETER_ENV)
            and name != "PYTHONHOME"
            and name not in PASS_THROUGH
        )
        if declared or interpreter:
            keyed[name] = env_hash(value)
    return dict(sorted(keyed.items()))


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


def nox_envdir(root: Path, session: str) -> Path:
    """Where nox keeps session ``session``'s virtualenv (nox's own naming, under .nox)."""
    # Mirrors nox.sessions._normalize_path; tests hold it equal to nox's.
    name = unicodedata.normalize("NFKD", session).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^\w\s-]", "-", name).strip().lower()
    name = re.sub(r"[-\s]+", "-", name).strip("-")
    if not name:
        name = hashlib.sha1(session.encode("utf-8")).hexdigest()[:8]  # noqa: S324 - nox's name
    envdir = os.path.join(".nox", name)
    if len(envdir) > 100 - len("bin/pythonX.Y"):
        envdir = os.path.join(".nox", hashlib.sha1(name.encode("ascii")).hexdigest()[:8])  # noqa: S324
    return root / envdir


def venv_fingerprint(prefix: Path, index: HashIndex) -> str:
    """What is installed in the venv at ``prefix``: its pyvenv.cfg and site-packages listing.

    Folders (packages, ``*.dist-info`` with their versions) count by name; files at the top of
    site-packages (``.pth`` files, ``sitecustomize.py``, single-module packages) by content.
    Edits inside an installed package are not seen.
    """
    listing = hashlib.sha256()
    config = prefix / "pyvenv.cfg"
    listing.update(f"cfg\0{index.hash(config, str(config)).sha256}\n".encode())
    sites = sorted({*prefix.glob("lib/python*/site-packages"), *prefix.glob("Lib/site-packages")})
    for site in sites:
        listing.update(f"site\0{site.relative_to(prefix).as_posix()}\n".encode())
        try:
            entries = sorted(os.scandir(site), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name == "__pycache__":
                continue
            if entry.is_dir():
                listing.update(f"d\0{entry.name}\n".encode())
            else:
                content = index.hash(Path(entry.path), entry.path).sha256
                listing.update(f"f\0{entry.name}\0{content}\n".encode())
    return listing.hexdigest() if sites or config.exists() else MISSING


def gate_env(gate: str, config: Config, env: Mapping[str, str]) -> dict[str, str] | None:
    """The environment gate ``gate`` runs with (None: a gate without inputs sees everything)."""
    spec = registry.get(config, gate).inputs
    return None if spec is None else gate_environment(env, declared_env(spec, config, gate))


def session_venv(gate: str, python: str, config: Config) -> Path:
    """The virtualenv nox runs ``gate`` in (the first of its session's names that exists)."""
    session = registry.get(config, gate).session
    names = [session, f"{session}-{python}"]
    found = [nox_envdir(config.root, n) for n in names if nox_envdir(config.root, n).exists()]
    return found[0] if found else nox_envdir(config.root, names[0])


def content_hash(path: Path) -> str:
    """The sha256 of a small file outside the tree, ``dir`` for a folder, or ``missing``."""
    if path.is_dir():
        return "dir"
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return MISSING


@dataclass(frozen=True, slots=True, kw_only=True)
class Key:
    """A gate's key inputs (None: not cacheable here, and why), and what the gate is handed."""

    inputs: dict[str, Any] | None = None
    reason: str = ""
    scan: tuple[str, ...] | None = None  # the files a lister gate scans: exactly those keyed
    environ: dict[str, str] | None = None  # the filtered environment the gate runs with

    @property
    def digest(self) -> str | None:
        """The key itself, or None."""
        return None if self.inputs is None else digest(self.inputs)


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
        self._tree: tuple[dict[str, Any], str] | None = None
        self._listed: dict[Lister, tuple[dict[str, str], str]] = {}
        self._git: dict[str, Any] | None = None
        self._git_state: dict[str, str | None] | None = None
        self._outside: dict[str, str] | None = None
        self._bundle: dict[str, str] | None = None
        self._lock_versions: dict[str, str] | None = None

    # -- inputs and keys -------------------------------------------------------------

    def resolve(
        self, gate: str, python: str, args: Sequence[str] = (), venv: Path | None = None
    ) -> Key:
        """Everything ``gate``'s verdict depends on, or why it cannot be cached here.

        ``venv`` is the virtualenv the gate runs in (default: this interpreter's).
        """
        spec = registry.get(self.config, gate).inputs  # the gate's declared inputs
        if spec is None:
            return Key(reason=f"gate {gate!r} declares no cache inputs")
        if args and not spec.args:
            return Key(reason=f"gate {gate} with arguments ({' '.join(args)}) is never cached")
        if spec.uncacheable is not None and (why := spec.uncacheable(self.config.root, args)):
            return Key(reason=why)
        scan: tuple[str, ...] | None = None
        patterns = declared_env(spec, self.config, gate)
        environ = gate_environment(self.env, patterns)
        # git answers the key's questions with the environment the gate will have
        runner = confined(self.runner, environ)
        if spec.lister is None:
            files, reason = self.tree()
        else:
            files, reason = self.listed(spec.lister, runner)
            scan = tuple(files)
            files = {**files, **self._some(COMMON_FILES)}
        if reason:
            return Key(reason=reason)
        lock = self.index.hash(self.config.root / "uv.lock", "uv.lock")
        versions = self.lock_versions(lock.sha256)
        prefix = Path(sys.prefix) if venv is None else venv
        inputs: dict[str, Any] = {
            "key_schema": KEY_SCHEMA,
            "gate": gate,
            "python": python,
            "args": list(args),
            "files": files,
            "extra_files": self._extra(spec.extra_files),
            "outside": self.outside(),
            "venv": venv_fingerprint(prefix, self.index),
            "bundle": self.bundle_hashes(),
            "uv.lock": lock.sha256,
            "tools": {t: versions.get(t) for t in spec.tools},
            "config": gate_config(self.config, gate, spec.config),
            "env": keyed_env(self.env, patterns),
            "git_state": self.git_state(runner),
        }
        if spec.daily:
            inputs["date"] = self.clock.today().isoformat()
        if spec.git_facts:
            inputs["git"] = self.git_facts(runner)
        if spec.folder_from:
            inputs["folder"] = self._folder_listing(spec.folder_from)
        return Key(inputs=inputs, scan=scan, environ=environ)

    def inputs(
        self, gate: str, python: str, args: Sequence[str] = (), venv: Path | None = None
    ) -> dict[str, Any] | None:
        """The inputs of ``gate``'s key, or None when it cannot be cached here."""
        return self.resolve(gate, python, args, venv).inputs

    def skipped(self) -> list[str]:
        """Folders the walk leaves out besides the fixed tool folders: reports and state."""
        root = self.config.root.resolve()
        folders = [self.config.reports_dir.strip("/")]
        state = state_dir(self.config.root, self.env)
        if not state.is_absolute():
            state = self.config.root / state
        if state.resolve().is_relative_to(root):
            folders.append(state.resolve().relative_to(root).as_posix())
        return [f for f in folders if f not in {"", "."}]

    def tree(self) -> tuple[dict[str, str], str]:
        """Hashes of every file, folder and link of the covered tree (walked once), or a reason."""
        if self._tree is None:
            root = self.config.root
            walked = walk_tree(root, self.skipped())
            if walked.escapes:
                shown = ", ".join(walked.escapes[:3])
                reason = (
                    f"{shown} leads out of the project (or into a tool folder): a symlink's "
                    "target outside the tree is not in the key"
                )
                self._tree = ({}, reason)
            else:
                files: dict[str, str] = {}
                for rel in walked.files:
                    h = self.index.hash(root / rel, rel)
                    files[rel] = h.sha256 + ("+x" if h.executable else "")
                files.update({d + "/": "dir" for d in walked.dirs})
                files.update({rel: "-> " + target for rel, target in walked.links.items()})
                files.update(dict.fromkeys(walked.special, "special"))
                files.update(dict.fromkeys(walked.git, "git"))
                self._tree = (dict(sorted(files.items())), "")
        return self._tree

    def listed(self, lister: Lister, runner: Runner) -> tuple[dict[str, str], str]:
        """Hashes of exactly the files ``lister`` names (what the gate will scan), or a reason."""
        if lister not in self._listed:
            try:
                base, names = lister(self.config.root, runner)
            except CIError as exc:
                self._listed[lister] = ({}, str(exc))
            else:
                hashes = self.index.hash_tree(base, names)
                files = {p: h.sha256 + ("+x" if h.executable else "") for p, h in hashes.items()}
                self._listed[lister] = (files, "")
        return self._listed[lister]

    def _some(self, names: Sequence[str]) -> dict[str, str]:
        root = self.config.root
        return {n: self.index.hash(root / n, n).sha256 for n in names}

    def _extra(self, names: Sequence[str]) -> dict[str, str]:
        """Content hashes of files outside the tree the gate reads (by their declared name)."""
        return {n: content_hash(self.extra_path(n)) for n in names}

    def extra_path(self, name: str) -> Path:
        """Where a declared file outside the tree is (``{reports}/``, ``{state}/``, ``~/``, ...)."""
        if name == "~" or name.startswith("~/"):
            return Path(self.home(), name[2:])
        state = state_dir(self.config.root, self.env)
        places = {"reports": str(self.config.reports_path()), "state": str(state)}
        return self.config.root / name.format(**places)

    def home(self) -> str:
        """The user's real home folder."""
        return self.env.get("HOME") or os.path.expanduser("~")

    def outside(self) -> dict[str, str]:
        """Config files tools read from outside the project: in folders above it, and user ones."""
        if self._outside is not None:
            return self._outside
        found: dict[str, str] = {}
        root = self.config.root.resolve()
        for folder in root.parents:
            for name in ANCESTOR_FILES:
                path = folder / name
                if os.path.lexists(path):
                    found[str(path)] = content_hash(path)
        home = self.home()
        config = self.env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
        for pattern in USER_CONFIG_FILES:
            path = Path(pattern.format(home=home, config=config))
            if os.path.lexists(path):
                found[pattern] = content_hash(path)
        for variable in GIT_CONFIG_VARIABLES:  # git reads the file they name, if any
            named = self.env.get(variable)
            if named and os.path.isabs(named):
                found[named] = content_hash(Path(named)) if os.path.lexists(named) else "absent"
        for name in GIT_READ_BY_TOOLS:
            found[name] = content_hash(root / name)
        self._outside = found
        return found

    def git_facts(self, runner: Runner) -> dict[str, Any]:
        """What git tells a build: package.source_facts, the tracked files, ``git describe``."""
        if self._git is None:
            root = self.config.root
            facts = dataclasses.asdict(package.source_facts(root, runner))
            listed = runner.run(["git", "ls-files", "-z", "--cached"], cwd=root)
            described = runner.run(
                ["git", "describe", "--tags", "--long", "--dirty", "--always"], cwd=root
            )
            facts["tracked"] = hashlib.sha256(listed.stdout.encode()).hexdigest()
            facts["describe"] = described.stdout.strip() if described else None
            self._git = facts
        return self._git

    def git_state(self, runner: Runner) -> dict[str, str | None]:
        """Hashes of what git answers a gate besides the files: HEAD, refs and tags, index, config.

        None for a question git cannot answer (no repository, no commit yet).
        """
        if self._git_state is None:
            state: dict[str, str | None] = {}
            for name, args in GIT_STATE.items():
                try:
                    done = runner.run(["git", *args], cwd=self.config.root)
                except CIError:
                    state[name] = None  # no git on PATH: nothing for a gate to ask either
                    continue
                state[name] = hashlib.sha256(done.stdout.encode()).hexdigest() if done else None
            self._git_state = state
        return self._git_state

    def again(self) -> GateCache:
        """The same cache computing every key afresh (file hashes still memoized by stamp)."""
        fresh = GateCache(self.config, self.runner, self.clock, self.env)
        fresh.index = self.index
        return fresh

    @contextlib.contextmanager
    def private_home(self, gate: str, environ: Mapping[str, str]) -> Iterator[dict[str, str]]:
        """``environ`` with a private HOME and XDG folders for one run of ``gate``, removed after.

        Only the user files its key covers (the tools' user configs, the ``~/`` files the
        gate declares) are copied in; tool caches (ruff, mypy, pytest) start empty there.
        """
        try:
            folder = Path(tempfile.mkdtemp(prefix=f"noxgate-{gate}-home-"))  # mode 0700
        except OSError as exc:
            msg = (
                f"cannot make a private home for gate {gate} in {tempfile.gettempdir()} "
                f"({exc.strerror}); point TMPDIR at a writable folder"
            )
            raise ToolError(msg) from None
        try:
            yield self._private_environment(gate, environ, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _private_environment(
        self, gate: str, environ: Mapping[str, str], folder: Path
    ) -> dict[str, str]:
        home = self.home()
        real = {
            "home": home,
            "config": self.env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"),
            "cache": self.env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"),
            "data": self.env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share"),
        }
        private = {**environ, "HOME": str(folder)}
        for name, rel in PRIVATE_XDG:
            (folder / rel).mkdir(parents=True, exist_ok=True)
            private[name] = str(folder / rel)
        caches = folder / ".cache"
        for name, rel in TOOL_CACHE_ENV:
            private[name] = str(caches / rel)
        # later -o options win: the project's addopts or a declared PYTEST_ADDOPTS cannot
        # point pytest back at a cache folder of earlier runs
        addopts = environ.get("PYTEST_ADDOPTS", "")
        pytest_cache = f"-o cache_dir={shlex.quote(str(caches / PYTEST_CACHE))}"
        private["PYTEST_ADDOPTS"] = f"{addopts} {pytest_cache}".strip()
        for name, default in MACHINE_DIRS:
            where = default.format(**real)
            if name not in environ and os.path.isdir(where):
                private[name] = where
        mine = {"home": str(folder), "config": str(folder / ".config")}
        for pattern in USER_CONFIG_FILES:
            if pattern not in NOT_COPIED:
                _copy_file(Path(pattern.format(**real)), Path(pattern.format(**mine)))
        spec = registry.get(self.config, gate).inputs
        for name in spec.extra_files if spec is not None else ():
            if name.startswith("~/"):
                _copy_file(self.extra_path(name), folder / name[2:])
        return private

    def key(
        self, gate: str, python: str, args: Sequence[str] = (), venv: Path | None = None
    ) -> str | None:
        """The cache key of ``gate`` on ``python`` with ``args``, or None when uncacheable."""
        return self.resolve(gate, python, args, venv).digest

    def bundle_hashes(self) -> dict[str, str]:
        """Hashes of the ci package's own modules: a changed gate invalidates its results."""
        if self._bundle is None:
            folder = Path(ci.__file__).parent
            names = sorted(
                str(p.relative_to(folder))
                for p in folder.rglob("*.py")
                if "__pycache__" not in p.parts
            )
            self._bundle = {n: self.index.hash(folder / n, str(folder / n)).sha256 for n in names}
        return self._bundle

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
                # ctime and inode too: no edit can keep them (an mtime can be set back)
                stamp = f"{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}"
                digest_.update(f"{rel}\0{stamp}\n".encode())
        return digest_.hexdigest()

    # -- entries -----------------------------------------------------------------------

    def entry_dir(self, key: str) -> Path:
        """Where the entry of ``key`` lives."""
        return self.dir / "entries" / key[:2] / key

    def lookup(self, key: str) -> Entry | None:
        """The stored entry of ``key`` (marked as just used), or None (also for a broken one)."""
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
        if not all((folder / name).is_file() for _, name in entry.artifacts):
            # a stored report is gone (deleted, a half-copied state folder): the entry cannot
            # be replayed whole, so it is a miss; the gate runs and stores a new entry here
            remove_entry(folder)
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


def _copy_file(source: Path, target: Path) -> None:
    """Copy a regular file (content and mode) if there is one; anything else is skipped.

    A file that cannot be read is not there for the gate (its key says ``missing`` or holds
    what it was: the run re-computes the key before anything is stored).
    """
    with contextlib.suppress(OSError):
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            shutil.copymode(source, target)


def remove_entry(folder: Path) -> None:
    """Delete one entry: its result.json first, so a half-deleted entry is never a hit."""
    (folder / "result.json").unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
