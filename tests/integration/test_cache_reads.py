"""Every built-in gate, traced with strace on two sample projects, reads only what its key covers.

Each gate runs as ``python -m ci gate --no-cache NAME`` under ``strace -f`` (file calls of
every process it starts). A read (open, stat, access, exec, readlink, ...) is fine when its
path is in the gate's key, or falls under the short rule below; anything else fails the test.

The rule (what a key leaves out on purpose):
- the machine: system folders, the programs found on PATH, interpreters (the running one,
  pyenv's, uv's), the gate's virtualenv and the folders its ``.pth`` files name (their
  content is keyed), and uv's download cache ``~/.cache/uv`` (content-addressed); nothing
  else under the user's home but the configs the key names: the gate runs in a private home
  (made by the run) holding copies of those, and ruff, mypy and pytest keep their caches there;
- folders above the project, for listing only (their config files are keyed by name);
- the project's output folders: ``__pycache__``, the reports and state folders, ``dist/``,
  ``build/``, ``*.egg-info``; ``.git`` only when git itself reads it (HEAD, refs and tags,
  index and config are keyed from git's answers);
- anything the run itself created first (scratch folders, build trees);
- Python's pseudo file names (``<string>``, ``<frozen site>``) that ``inspect`` and
  ``traceback`` look up relative to the working folder when they walk the stack.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import ci
from ci.core.clock import SystemClock
from ci.core.config import load, state_dir
from ci.core.runner import ProcessRunner
from ci.gates import cache, registry
from ci.gates.filehash import excluded_name
from tests.conftest import git
from tests.support.gate_project import write_gate_project
from tests.support.strace import STRACE, Access, accesses, traced

pytestmark = pytest.mark.integration

GATES = ("lint", "test", "secrets", "audit", "package", "workflows")
SYSTEM = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev", "/run")
# ruff's, mypy's and pytest's caches are not here: the gate keeps them in its private home, so
# a read of the project's .ruff_cache (an answer from an earlier run) is outside the key
TOOL_FOLDERS = frozenset({"__pycache__"})
ADVISORIES = Path(__file__).resolve().parents[1] / "fixtures" / "advisories"


@dataclass
class Coverage:
    """The paths a gate's key covers, and the rule's allowances, for one traced run."""

    root: Path
    tree: bool  # the whole tree is keyed (else only ``listed``)
    listed: set[str]
    keyed: set[str]  # absolute paths outside the tree that are keyed by name
    keyed_folders: list[str]
    allowed: list[str]  # folders the rule allows
    outputs: list[str]  # output and state folders inside the tree
    created: set[str] = field(default_factory=set)

    def ok(self, access: Access) -> bool:
        """True when ``access`` reads something the key covers or the rule allows."""
        path = access.path
        real = os.path.realpath(path)
        if access.write:
            self.created.add(path)
            return True
        if any(_under(p, created) for p in (path, real) for created in self.created):
            return True
        if path in self.keyed or any(_under(path, f) for f in self.keyed_folders):
            return True
        if any(_under(p, f) for p in (path, real) for f in self.allowed):
            return True
        root = str(self.root)
        if any(_under(f, path) for f in (root, *self.allowed, *self.keyed_folders)):
            return True  # the folders above the project and above the allowed ones
        name = Path(path).name
        if name.startswith("<") and name.endswith(">"):
            return True  # a code object's pseudo file name (<string>, <frozen site>) that
            # inspect or traceback looks up relative to the working folder: not a file read
        if name.startswith("python3") and path.endswith(".zip"):
            return True  # the interpreter looks for a zipped standard library
        if _under(path, root):
            return self._inside(access, Path(path).relative_to(self.root).as_posix())
        above = {*self.root.parents}
        above |= {p for f in self.allowed if f.startswith("/") for p in Path(f).parents}
        return any(
            Path(path).relative_to(folder).as_posix() in cache.ANCESTOR_FILES
            for folder in above
            if Path(path).is_relative_to(folder)
        )

    def _inside(self, access: Access, rel: str) -> bool:
        parts = rel.split("/")
        if ".git" in parts:  # a .git anywhere counts by name; inside, git reads for the key
            inside = parts.index(".git") < len(parts) - 1
            return not inside or access.program == "git" or rel in cache.GIT_READ_BY_TOOLS
        if any(p in TOOL_FOLDERS for p in parts) or any(_under(rel, o) for o in self.outputs):
            return True
        if any(excluded_name(p, top=i == 0) for i, p in enumerate(parts)):
            return parts[0] in {"dist", "build"} or any(p.endswith(".egg-info") for p in parts)
        if self.tree:
            return True
        return rel in self.listed or any(f.startswith(rel + "/") for f in self.listed)


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def coverage_of(root: Path, gate: str, env: dict[str, str]) -> Coverage:
    """What the key of ``gate`` covers in ``root`` (as the cache computes it) and the rule."""
    config = load(cwd=root)
    store = cache.GateCache(config, ProcessRunner(), SystemClock(), env)
    resolved = store.resolve(gate, config.default_python)
    assert resolved.inputs is not None, resolved.reason
    inputs = resolved.inputs
    spec = registry.get(config, gate).inputs
    assert spec is not None
    home = env.get("HOME", os.path.expanduser("~"))
    keyed = {str(Path(p)) for p in inputs["outside"] if p.startswith("/")}
    keyed |= {
        p.format(home=home, config=env.get("XDG_CONFIG_HOME") or f"{home}/.config")
        for p in cache.USER_CONFIG_FILES
    }
    state = state_dir(root, env)
    places = {"reports": str(config.reports_path()), "state": str(state)}
    keyed |= {str(root / name.format(**places)) for name in spec.extra_files}
    folders = [str(Path(ci.__file__).parent)]
    if inputs.get("folder"):
        folders.append(env.get("CI_ADVISORY_DB", ""))
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    allowed = [*SYSTEM, *prefixes, *_pth_folders(Path(sys.prefix))]
    allowed += [os.path.dirname(os.path.realpath(sys.executable))]
    allowed += [f"{home}/.cache/uv", f"{home}/.pyenv", f"{home}/.local/share/uv"]
    # where the machine's programs live (rustup, cargo, pyenv, uv): the private home keeps them
    homes = {"home": home, "cache": f"{home}/.cache", "data": f"{home}/.local/share"}
    allowed += [default.format(**homes) for _, default in cache.MACHINE_DIRS]
    # a suite run by a cached test gate has a private HOME: the machine folders it was given
    # (uv's cache among them) are named by these variables instead
    allowed += [env[name] for name, _ in cache.MACHINE_DIRS if env.get(name)]
    # the interpreter's user site folders (a venv never imports from them) and line editing
    allowed += [f"{home}/.local/lib", f"{home}/.local/Python", f"{home}/.local/bin"]
    allowed += [f"{home}/.inputrc", f"{home}/.terminfo"]
    allowed += [str(state)]
    path_dirs = [d for d in env.get("PATH", "").split(os.pathsep) if d]
    listed = set(resolved.scan or ()) | set(cache.COMMON_FILES)
    return Coverage(
        root=root,
        tree=spec.lister is None,
        listed=listed,
        keyed=keyed,
        keyed_folders=[f for f in folders if f],
        allowed=allowed + path_dirs,
        outputs=[config.reports_dir, "dist", "dist-assets", "build"],
    )


def keys(root: Path, env: dict[str, str]) -> dict[str, str | None]:
    """Every built-in gate's key in ``root`` now."""
    config = load(cwd=root)
    store = cache.GateCache(config, ProcessRunner(), SystemClock(), env)
    return {gate: store.key(gate, config.default_python) for gate in GATES}


def _pth_folders(prefix: Path) -> list[str]:
    """Folders the venv's .pth files put on sys.path (their content is in the venv's key)."""
    found = []
    for pth in prefix.glob("lib/python*/site-packages/*.pth"):
        for line in pth.read_text(encoding="utf-8", errors="replace").splitlines():
            if line and not line.startswith(("#", "import")) and os.path.isdir(line.strip()):
                found.append(os.path.realpath(line.strip()))
    return found


def outside_the_key(found: Iterable[Access], coverage: Coverage) -> list[str]:
    """One line per read the key does not cover (each path once)."""
    bad: dict[str, str] = {}
    for access in found:
        if not coverage.ok(access) and access.path not in bad:
            bad[access.path] = f"{access.pid} {access.program or '?'} {access.call} {access.path}"
    return list(bad.values())


@pytest.fixture(scope="module", params=["flat", "src"])
def sample(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp(f"reads-{request.param}") / "project"
    write_gate_project(root, layout=request.param, mypy=True)
    # a file of each lint family, so the traced lint gate runs shellcheck, yamllint, hadolint
    (root / "scripts").mkdir()
    (root / "scripts/serve").write_text('#!/bin/sh\nexec python -m app "$@"\n')
    (root / "Dockerfile").write_text('FROM python:3.12-slim\nCOPY . /app\nCMD ["python"]\n')
    (root / "data.json").write_text('{"a": 1}\n')
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "lint families")
    return root


@pytest.mark.parametrize("gate", GATES)
def test_every_read_is_in_the_key(sample: Path, gate: str, tmp_path: Path) -> None:
    assert os.access(STRACE, os.X_OK), f"{STRACE} is missing: apt-get install strace (.ci/run does)"
    env = {**os.environ, "CI_ADVISORY_DB": str(ADVISORIES)}
    out = tmp_path / "trace.txt"
    argv = [sys.executable, "-m", "ci", "gate", "--no-cache", gate]
    before = keys(sample, env)
    code = traced(argv, cwd=sample, env=env, out=out)
    assert keys(sample, env) == before  # no gate writes into any gate's key
    assert code == 0, out.read_text(errors="replace")[-3000:]
    found = accesses(out)
    assert any(a.path.startswith(str(sample)) for a in found)  # the trace saw the project
    coverage = coverage_of(sample, gate, env)
    bad = outside_the_key(found, coverage)
    assert not bad, "reads outside the key:\n" + "\n".join(bad)


# A declared gate's command that looks in the user's home and asks git for its tags.
PROBE = """\
import pathlib, subprocess
(pathlib.Path.home() / ".probe.cfg").exists()
subprocess.run(["git", "tag", "--list"], check=True)
"""


def test_a_declared_gate_reads_no_home_but_its_own(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    command = [sys.executable, "-c", PROBE]
    (root / "pyproject.toml").write_text(
        '[project]\nname = "probe"\nversion = "1.0"\n\n'
        f'[tool.ci.gates.probe]\ncommand = {json.dumps(command)}\ninputs = ["**"]\n',
        encoding="utf-8",
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "probe")
    env = dict(os.environ)
    out = tmp_path / "trace.txt"
    code = traced(
        [sys.executable, "-m", "ci", "gate", "--no-cache", "probe"], cwd=root, env=env, out=out
    )
    assert code == 0, out.read_text(errors="replace")[-3000:]
    bad = outside_the_key(accesses(out), coverage_of(root, "probe", env))
    assert not bad, "reads outside the key:\n" + "\n".join(bad)
