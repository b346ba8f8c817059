"""Adoption as a maintainer meets it: noxgate from a real index, three differently built projects.

A wheel of this checkout is served by pypiserver on 127.0.0.1; each sample adopts it with
``init --source URL`` (the gates run once: failing ones become advisory), then
``uv run invoke ci`` exits 0 with the advisory gates shown, ``init`` again changes nothing,
and after a newer noxgate reaches the index, ``uv lock --upgrade-package noxgate`` plus
``init --upgrade`` keeps a local edit of noxfile.py. The hatchling sample also releases to a
second pypiserver with ``invoke release`` and runs the README's quickstart with a Python that
refuses ``pip install`` (PEP 668). Another test installs noxgate from a local git tag.
Real uv, nox, git and pypiserver; the tools come from PyPI (or uv's cache).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ci import __version__
from ci.adopt import thin
from tests.conftest import ROOT, git
from tests.support.pypiserver import PypiServer, start

pytestmark = pytest.mark.integration

ADVISORIES = ROOT / "tests" / "fixtures" / "advisories"  # real OSV records, offline
NEWER = f"{__version__}.post1"
NEWER_LINE = "# sessions from noxgate: see `nox -l`"  # what the newer noxgate's noxfile adds
MAX_FILES, MAX_LINES = 20, 1500


def _d(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@dataclass(frozen=True)
class Sample:
    name: str
    files: dict[str, str]
    advisory: frozenset[str]  # the gates that fail on the untouched project


SETUPTOOLS_SCM = Sample(
    name="setuptools-scm",
    files={
        "pyproject.toml": _d("""
            [build-system]
            requires = ["setuptools>=64", "setuptools-scm>=8"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "calc-scm"
            dynamic = ["version"]
            description = "Adds numbers."
            readme = "README.md"
            requires-python = ">=3.11"

            [project.optional-dependencies]
            test = ["pytest>=8"]

            [tool.setuptools_scm]
            """),
        "README.md": "# calc-scm\n\nAdds numbers.\n",
        "calc_scm/__init__.py": '"""Calc."""\n\n\ndef add(a: int, b: int) -> int:\n'
        '    """Add."""\n    return a + b\n',
        "tests/test_calc.py": "from calc_scm import add\n\n\ndef test_add():\n"
        "    assert add(2, 3) == 5\n",
        ".gitignore": "*.egg-info/\n",
    },
    advisory=frozenset(),
)

FLIT_SRC = Sample(
    name="flit-src",
    files={
        "pyproject.toml": _d("""
            [build-system]
            requires = ["flit_core>=3.4"]
            build-backend = "flit_core.buildapi"

            [project]
            name = "shout"
            version = "2.1.0"
            description = "Shouts."
            readme = "README.md"
            requires-python = ">=3.11"

            [dependency-groups]
            tests = ["pytest>=8"]
            """),
        "README.md": "# shout\n\nShouts.\n",
        "src/shout/__init__.py": '"""Shout."""\n\n\ndef shout(text: str) -> str:\n'
        '    """Upper-case it."""\n    return text.upper()\n',
        "tests/test_shout.py": "from shout import shout\n\n\ndef test_shout():\n"
        '    assert shout("hi") == "HI"\n',
        "noxfile.py": _d('''
            """The project's own sessions."""

            import nox


            @nox.session(default=False)
            def docs(session: nox.Session) -> None:
                """Build the docs."""
                session.run("python", "-c", "print('docs built')")
            '''),
        "tasks/__init__.py": _d('''
            """The project's own tasks."""

            from invoke import task


            @task
            def hello(c):
                """Say hello."""
                print("hello from the project's tasks")
            '''),
    },
    advisory=frozenset(),
)

HATCHLING = Sample(
    name="hatchling",
    files={
        "pyproject.toml": _d("""
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [project]
            name = "greet"
            version = "1.0.0"
            description = "Greets."
            readme = "README.md"
            requires-python = ">=3.11"

            [dependency-groups]
            test = ["pytest>=8"]

            [tool.ruff]
            line-length = 88
            """),
        "README.md": "# greet\n\nGreets.\n",
        "src/greet/__init__.py": '"""Greet."""\n\n\ndef hello(name: str) -> str:\n'
        '    """Say hello."""\n    return f"hello {name}"\n',
        # unformatted on purpose: its pinned ruff (0.4) reports it, so lint starts advisory
        "tests/test_greet.py": "from greet import hello\n\n\ndef test_hello():\n"
        '    assert hello("you")=="hello you"\n',
        ".pre-commit-config.yaml": _d("""
            repos:
              - repo: https://github.com/astral-sh/ruff-pre-commit
                rev: v0.4.10
                hooks:
                  - id: ruff
                  - id: ruff-format
            """),
        ".github/workflows/tests.yml": _d("""
            name: tests
            on: [push, pull_request]
            jobs:
              test:
                runs-on: ubuntu-latest
                steps:
                  - uses: actions/checkout@v4
                  - run: pip install . pytest && pytest
            """),
        ".gitignore": ".venv/\n",
    },
    advisory=frozenset({"lint", "workflows"}),
)


# a unittest suite whose load_tests adds the package's doctests, and a Makefile floor
UNITTEST_LOAD_TESTS = Sample(
    name="unittest-load-tests",
    files={
        "pyproject.toml": _d("""
            [build-system]
            requires = ["flit_core>=3.4"]
            build-backend = "flit_core.buildapi"

            [project]
            name = "iterlib"
            version = "1.0.0"
            description = "Iterates."
            readme = "README.md"
            requires-python = ">=3.11"
            """),
        "README.md": "# iterlib\n\nIterates.\n",
        "iterlib/__init__.py": _d('''
            """Iterates."""


            def first(items: list[int]) -> int:
                """The first item.

                >>> first([3, 4])
                3
                """
                return items[0]


            def last(items: list[int]) -> int:
                """The last item.

                >>> last([3, 4])
                4
                """
                return items[-1]
            '''),
        "tests/__init__.py": "",
        "tests/test_iterlib.py": _d("""
            import doctest
            import unittest

            import iterlib


            def load_tests(loader, tests, pattern):
                tests.addTests(doctest.DocTestSuite(iterlib))
                return tests


            class FirstTests(unittest.TestCase):
                def test_first(self):
                    self.assertEqual(iterlib.first([1, 2]), 1)

                def test_last(self):
                    self.assertEqual(iterlib.last([1, 2]), 2)

                def test_each(self):
                    for n in range(5):
                        with self.subTest(n=n):
                            self.assertEqual(iterlib.first([n]), n)
            """),
        "Makefile": "test:\n\tcoverage run -m unittest\n\tcoverage report --fail-under=99\n",
    },
    advisory=frozenset(),
)


def environment(**extra: str) -> dict[str, str]:
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "CI"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("CI_")}
    return env | {
        "PYENV_VERSION": "3.11.7:3.12.1:3.13.0",
        "UV_PYTHON_DOWNLOADS": "never",
        "CI_ADVISORY_DB": str(ADVISORIES),
        "CI_STATE_DIR": "",  # the project's own .ci-state/
        **extra,
    }


def run(argv: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        env=environment(**extra),
        timeout=1800,
        check=False,
    )


def ci(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The running noxgate (this checkout), as `python -m ci init` is run the first time."""
    return run([sys.executable, "-m", "ci", *args], cwd=repo)


def copy_source(into: Path) -> Path:
    """This checkout's files (tracked and new, not ignored) in ``into``."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = ROOT / rel
        if source.is_file():
            (into / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / rel)
    return into


def build_wheel(source: Path, out: Path) -> Path:
    done = run(["uv", "build", "--wheel", "--out-dir", str(out), str(source)], cwd=source)
    assert done.returncode == 0, done.stderr[-2000:]
    return next(out.glob("noxgate-*.whl"))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """This checkout's wheel, and a newer one whose thin noxfile says one more line."""
    work = tmp_path_factory.mktemp("noxgate")
    current = build_wheel(copy_source(work / "current"), work / "wheels-current")
    newer = copy_source(work / "newer")
    pyproject = newer / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(f'version = "{__version__}"', f'version = "{NEWER}"', 1)
    )
    init_py = newer / "ci" / "__init__.py"
    init_py.write_text(init_py.read_text().replace(__version__, NEWER))
    thin_py = newer / "ci" / "adopt" / "thin.py"
    text = thin_py.read_text()
    anchor = "sessions.declare(Path(__file__).parent)\n'''"
    assert anchor in text
    text = text.replace(anchor, f"{NEWER_LINE}\n{anchor}", 1)
    block = '_noxgate_sessions.declare(__import__("pathlib").Path(__file__).parent)\n'
    assert block in text  # the block a project's own noxfile gets changes too
    thin_py.write_text(text.replace(block, f"{block}{NEWER_LINE}\n", 1))
    return {"current": current, "newer": build_wheel(newer, work / "wheels-newer")}


@pytest.fixture(scope="module")
def index(
    tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]
) -> Iterator[PypiServer]:
    """A pypiserver on 127.0.0.1 serving the current noxgate wheel (noxgate only)."""
    folder = tmp_path_factory.mktemp("index") / "packages"
    folder.mkdir()
    shutil.copy(wheels["current"], folder)
    server = start(folder)
    yield server
    server.stop()


def added(repo: Path) -> tuple[list[str], int, int]:
    """The files init added or changed, their added lines (uv.lock apart), uv.lock's lines."""
    git(repo, "add", "-A")
    files, lines, lock = [], 0, 0
    for row in git(repo, "diff", "--cached", "--numstat").splitlines():
        plus, _minus, rel = row.split("\t")
        files.append(rel)
        if rel == "uv.lock":
            lock = int(plus)
        else:
            lines += int(plus)
    return files, lines, lock


def adopt(sample: Sample, repo: Path, index: PypiServer) -> subprocess.CompletedProcess[str]:
    done = ci(repo, "init", str(repo), "--source", index.simple_url)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    files, lines, lock = added(repo)
    print(f"{sample.name}: init added/changed {len(files)} files, {lines} lines (+{lock} uv.lock)")
    assert len(files) < MAX_FILES, files
    assert lines < MAX_LINES, files
    assert not any(rel.startswith("ci/") for rel in files)  # nothing of the bundle copied
    gates = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["ci"]["gates"]
    made_advisory = {name for name, table in gates.items() if table.get("mode") == "advisory"}
    assert made_advisory == set(sample.advisory), done.stdout[-6000:]
    for gate in sample.advisory:
        assert f'delete `mode = "advisory"` in [tool.ci.gates.{gate}]' in done.stdout
    git(repo, "commit", "-qm", "adopt noxgate")
    return done


def invoke_ci(sample: Sample, repo: Path, *argv: str, **env: str) -> str:
    """`uv run invoke ci` (or ``argv`` that runs it): exit 0, the advisory gates shown."""
    done = run(list(argv or ("uv", "run", "invoke", "ci")), cwd=repo, **env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-8000:]
    for gate in sample.advisory:  # shown and annotated, not hidden
        assert re.search(rf"(?m)^{gate}\S*\s+failed\s+advisory", output), output[-4000:]
        assert f"advisory: {gate}" in output
    return output


def init_again_changes_nothing(repo: Path) -> None:
    done = ci(repo, "init", str(repo))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing: the target is up to date" in done.stdout
    assert git(repo, "status", "--porcelain") == ""


def upgrade_keeps_a_local_edit(repo: Path, index: PypiServer, wheels: dict[str, Path]) -> None:
    noxfile = repo / "noxfile.py"
    edited = noxfile.read_text().replace("import nox\n", "import nox  # a local edit\n", 1)
    assert edited != noxfile.read_text()
    noxfile.write_text(edited)
    git(repo, "commit", "-qam", "a local edit of noxfile.py")
    shutil.copy(wheels["newer"], index.packages)  # a newer noxgate reaches the index
    done = run(["uv", "lock", "--upgrade-package", "noxgate"], cwd=repo)
    assert done.returncode == 0, done.stderr
    assert f'name = "noxgate"\nversion = "{NEWER}"' in (repo / "uv.lock").read_text()
    done = run(["uv", "run", "python", "-m", "ci", "init", ".", "--upgrade"], cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    text = noxfile.read_text()
    assert "import nox  # a local edit" in text  # the user's edit
    assert NEWER_LINE in text  # the newer noxgate's
    assert f'"version": "{NEWER}"' in (repo / thin.STATE_FILE).read_text()
    done = run(["uv", "run", "nox", "-l"], cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lint" in done.stdout


def test_setuptools_scm_project(
    make_repo: Callable[..., Path], index: PypiServer, wheels: dict[str, Path]
) -> None:
    repo = make_repo(SETUPTOOLS_SCM.files, name=SETUPTOOLS_SCM.name)
    adopt(SETUPTOOLS_SCM, repo, index)
    output = invoke_ci(SETUPTOOLS_SCM, repo)
    assert "test-3.12" in output
    init_again_changes_nothing(repo)
    upgrade_keeps_a_local_edit(repo, index, wheels)


def test_flit_src_project_keeps_its_noxfile_and_tasks_package(
    make_repo: Callable[..., Path], index: PypiServer, wheels: dict[str, Path]
) -> None:
    repo = make_repo(FLIT_SRC.files, name=FLIT_SRC.name)
    adopt(FLIT_SRC, repo, index)
    assert (repo / "tasks" / "noxgate.py").read_text() == thin.TASKS
    assert not (repo / "tasks.py").exists()
    listed = run(["uv", "run", "nox", "-l"], cwd=repo)
    assert listed.returncode == 0, listed.stderr
    assert "docs" in listed.stdout  # the project's own session
    assert "lint" in listed.stdout  # and the gates'
    tasks = run(["uv", "run", "invoke", "--list"], cwd=repo)
    assert tasks.returncode == 0, tasks.stderr
    assert "hello" in tasks.stdout
    assert "release" in tasks.stdout
    invoke_ci(FLIT_SRC, repo)
    init_again_changes_nothing(repo)
    upgrade_keeps_a_local_edit(repo, index, wheels)


def test_hatchling_project_with_workflows_pre_commit_release_and_quickstart(
    make_repo: Callable[..., Path],
    index: PypiServer,
    wheels: dict[str, Path],
    tmp_path: Path,
) -> None:
    repo = make_repo(HATCHLING.files, name=HATCHLING.name)
    adopt(HATCHLING, repo, index)
    text = (repo / "pyproject.toml").read_text()
    assert '"ruff==0.4.10"' in text  # the project's own ruff, from its pre-commit rev
    assert "mypy" not in text  # mypy is off: not installed
    assert (repo / ".github/workflows/tests.yml").read_text() == HATCHLING.files[
        ".github/workflows/tests.yml"
    ]
    assert "github-actions" in (repo / ".github/dependabot.yml").read_text()

    # the README's quickstart, with a Python that refuses `pip install`
    shims = quickstart_path(tmp_path)
    refused = run(["python3", "-m", "pip", "install", "--dry-run", "six"], cwd=repo, **shims)
    assert refused.returncode != 0
    assert "externally-managed-environment" in refused.stdout + refused.stderr
    install, first, second = quickstart_commands()
    assert install.startswith("pipx install uv"), install
    assert first == "uv run invoke ci", first
    # a fresh account: pipx's bin folder is not on PATH until ensurepath adds it to the
    # shell's profile (the commands after run as a new shell would, with it on PATH)
    bin_dir = shims["PIPX_BIN_DIR"]
    before = os.pathsep.join(d for d in shims["PATH"].split(os.pathsep) if d != bin_dir)
    installed = run(["bash", "-c", install], cwd=repo, **{**shims, "PATH": before})
    assert installed.returncode == 0, installed.stdout + installed.stderr
    profiles = [p for p in Path(shims["HOME"]).glob(".*") if p.is_file()]
    assert any(shims["PIPX_BIN_DIR"] in p.read_text() for p in profiles), profiles
    invoke_ci(HATCHLING, repo, "bash", "-c", first, **shims)
    done = run(["bash", "-c", second], cwd=repo, **shims)
    assert done.returncode == 0, (done.stdout + done.stderr)[-8000:]
    assert git(repo, "status", "--porcelain") == ""

    init_again_changes_nothing(repo)
    release_to_a_real_index(repo, tmp_path)
    upgrade_keeps_a_local_edit(repo, index, wheels)


def quickstart_commands() -> list[str]:
    """The README quickstart's lines (install uv, the main job, the tests), comments dropped."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert len(commands) == 3, commands
    return commands


def refusing_python(tmp_path: Path) -> Path:
    """A Python whose ``pip install`` is refused (PEP 668): the system one, else a marked copy."""
    system = Path("/usr/bin/python3")
    if system.is_file():
        stdlib = subprocess.run(
            [str(system), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if stdlib and (Path(stdlib) / "EXTERNALLY-MANAGED").is_file():
            return system
    base = Path(sys.base_prefix)
    copy = tmp_path / "marked-python"
    shutil.copytree(base, copy, symlinks=True, ignore=shutil.ignore_patterns("test", "__pycache__"))
    stdlib_rel = Path(sysconfig.get_path("stdlib")).relative_to(base)
    (copy / stdlib_rel / "EXTERNALLY-MANAGED").write_text(
        "[externally-managed]\nError=this Python is managed by the system: use pipx or a venv\n"
    )
    return copy / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"


def quickstart_path(tmp_path: Path) -> dict[str, str]:
    """PATH and pipx settings of a machine whose python3 refuses pip, with pipx installed."""
    shims = tmp_path / "shims"
    shims.mkdir()
    python = refusing_python(tmp_path)
    (shims / "python3").symlink_to(python)
    pipx = shims / "pipx"  # pipx as `apt install pipx` provides it, from the test group here
    pipx.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pipx "$@"\n')
    pipx.chmod(0o755)
    home = tmp_path / "pipx"
    uv_cache = subprocess.run(["uv", "cache", "dir"], capture_output=True, text=True, check=True)
    (tmp_path / "home").mkdir()
    pyenv = shutil.which("pyenv")  # its interpreters are found through PYENV_ROOT, not HOME's
    root = (
        subprocess.run([pyenv, "root"], capture_output=True, text=True, check=True)
        if pyenv
        else None
    )
    return {
        **({"PYENV_ROOT": root.stdout.strip()} if root else {}),
        "HOME": str(tmp_path / "home"),  # a fresh account's: pipx ensurepath edits its profile
        "UV_CACHE_DIR": uv_cache.stdout.strip(),  # warm: the sync is not what this test checks
        "PATH": os.pathsep.join([str(shims), str(home / "bin"), os.environ["PATH"]]),
        "PIPX_HOME": str(home / "home"),
        "PIPX_BIN_DIR": str(home / "bin"),
        "PIPX_MAN_DIR": str(home / "man"),
        "PIPX_DEFAULT_PYTHON": str(python),
    }


def release_to_a_real_index(repo: Path, tmp_path: Path) -> None:
    """`invoke release --dry-run`, then `invoke release` to a second pypiserver."""
    git(repo, "tag", "v1.0.0")
    target = start(tmp_path / "published")
    try:
        env = {**target.twine_env(), "CI_PUBLISH_REPOSITORY_URL": target.url}
        dry = run(["uv", "run", "invoke", "release", "--dry-run"], cwd=repo, **env)
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "uv run --locked --group noxgate-package python -m ci" in dry.stdout
        done = run(["uv", "run", "invoke", "release"], cwd=repo, **env)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-8000:]
        assert "not installed" not in output
        assert sorted(target.files()) == ["greet-1.0.0-py3-none-any.whl", "greet-1.0.0.tar.gz"]
        assert (repo / "dist-assets" / "RELEASE_NOTES.md").is_file()
    finally:
        target.stop()


def test_noxgate_from_a_local_git_tag(make_repo: Callable[..., Path], tmp_path: Path) -> None:
    source = copy_source(tmp_path / "noxgate")
    git(source, "init", "-q", "-b", "main")
    git(source, "add", "-A")
    git(source, "commit", "-qm", "noxgate")
    git(source, "tag", f"v{__version__}")
    repo = make_repo(SETUPTOOLS_SCM.files, name="from-git")
    where = f"git+{source.as_uri()}@v{__version__}"
    done = ci(repo, "init", str(repo), "--source", where, "--no-run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        f'noxgate = {{git = "{source.as_uri()}", tag = "v{__version__}"}}'
        in (repo / "pyproject.toml").read_text()
    )
    lock = (repo / "uv.lock").read_text()
    assert f'source = {{ git = "{source.as_uri()}?tag=v{__version__}#' in lock
    done = run(["uv", "run", "nox", "-l"], cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lint" in done.stdout
    assert "test-3.12" in done.stdout


def test_a_plain_nox_outside_the_project_lists_the_gate_sessions(
    make_repo: Callable[..., Path],
) -> None:
    """A contributor's nox (pipx-style: its own environment, no noxgate in it) reads the
    thin noxfile's script block, builds an environment with noxgate and lists the gates."""
    repo = make_repo(
        {
            "pyproject.toml": _d("""
                [project]
                name = "demo"
                version = "1.0"
                requires-python = ">=3.11"

                [tool.ci]
                packages = ["demo"]
                """),
            "demo/__init__.py": "",
        }
    )
    source = os.path.relpath(ROOT, repo)  # noxgate from this checkout, as --source FOLDER
    noxfile = thin.noxfile(None, thin.script_requirement(__version__, "path", source))
    (repo / "noxfile.py").write_text(noxfile, encoding="utf-8")
    nox_version = importlib.metadata.version("nox")
    done = run(["uv", "tool", "run", "--from", f"nox=={nox_version}", "nox", "-l"], cwd=repo)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    assert "No module named 'ci'" not in done.stderr
    for session in ("lint", "test-3.12", "security", "package", "workflows"):
        assert f" {session} -> " in done.stdout


def test_a_unittest_suite_counts_as_its_own_runner_and_keeps_its_makefile_floor(
    make_repo: Callable[..., Path], index: PypiServer
) -> None:
    sample = UNITTEST_LOAD_TESTS
    repo = make_repo(sample.files, name=sample.name)
    adopt(sample, repo, index)  # every gate required: the suite passes the project's own way
    assert "runner" not in (repo / "pyproject.toml").read_text()  # detected, not written
    done = run(["uv", "run", "nox", "-s", "test-3.12"], cwd=repo)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "Ran 5 tests" in output  # unittest's own count: 3 tests and 2 doctests
    assert "unittest: 5 passed, 0 failed, 0 skipped; coverage 100.0% (min 99%)" in output
