"""Shared fixtures: a clean environment per test, and real git repositories in tmp."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ci.core import redact
from tests.support.pypiserver import PypiServer, start

ROOT = Path(__file__).resolve().parent.parent

# Every git the suite starts (module- and session-scoped fixtures too, which run before the
# per-test fixture below) commits as this identity and never reads the user's global config:
# a fresh account with no git identity runs the suite as this machine does.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.invalid",
}
os.environ.update(GIT_IDENTITY)
os.environ["GIT_CONFIG_GLOBAL"] = os.devnull


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Clear CI_*/GITHUB_* variables, point state at tmp, and reset the masking filter."""
    for name in list(os.environ):
        if name.startswith(("CI_", "GITHUB_")) or name in {"CI", "RUNNER_TEMP"}:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)
    yield
    redact._current = redact.Redactor()
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, redact.RedactingStream):
            setattr(sys, name, stream.inner)


def trim_tests(tests: Path, keep: set[str]) -> None:
    """Delete every file under ``tests`` but the ``keep`` paths (relative, files or folders)."""
    for path in sorted(tests.rglob("*"), reverse=True):
        rel = path.relative_to(tests).as_posix()
        if any(rel == k or rel.startswith(k + "/") or k.startswith(rel + "/") for k in keep):
            continue
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` and return its stdout (raises on failure)."""
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """Create a real git repository with the given files committed; returns its path."""
    counter = iter(range(1000))

    def make(files: dict[str, str] | None = None, name: str | None = None) -> Path:
        repo = tmp_path / (name or f"repo{next(counter)}")
        repo.mkdir(parents=True)
        git(repo, "init", "-q", "-b", "main")
        for rel, text in (files or {}).items():
            path = repo / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if files:
            git(repo, "add", "-A")
            git(repo, "commit", "-q", "-m", "initial")
        return repo

    return make


@pytest.fixture
def pypiserver(tmp_path: Path) -> Iterator[PypiServer]:
    """A real pypiserver on 127.0.0.1 (free port, tmp package folder, no auth); stopped after."""
    server = start(tmp_path / "index")
    yield server
    server.stop()


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A fresh git clone of this repository's committed state."""
    target = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True)
    return target


def invoke(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``invoke ARGS`` in ``repo`` as a maintainer would, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )


ORDER_SEED_ENV = "NOXGATE_TEST_ORDER_SEED"  # set it to run the suite in a seeded random order


def pytest_report_header(config: pytest.Config) -> str | None:
    """Name the order seed in the header, so a failing order can be replayed."""
    seed = os.environ.get(ORDER_SEED_ENV)
    return f"test order: shuffled with {ORDER_SEED_ENV}={seed}" if seed else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """End-to-end tests first, so the workers finish together on the many short unit tests.

    With ``NOXGATE_TEST_ORDER_SEED`` set, the tests are shuffled instead: no test may lean on
    another's order.
    """
    seed = os.environ.get(ORDER_SEED_ENV)
    if seed:
        # modules in a random order, and each module's tests in a random order: a module's
        # fixtures are still set up once (as pytest-randomly shuffles)
        shuffle = random.Random(seed).shuffle
        modules: dict[str, list[pytest.Item]] = {}
        for item in items:
            modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
        groups = list(modules.values())
        shuffle(groups)
        for group in groups:
            shuffle(group)
        items[:] = [item for group in groups for item in group]
    else:
        items.sort(key=lambda item: item.get_closest_marker("integration") is None)


def pytest_configure(config: pytest.Config) -> None:
    """Measure coverage in this suite's own processes only, not in what the tests start.

    ``patch = ["subprocess"]`` starts coverage in the xdist workers; the nox, uv, invoke and
    ``python -m ci`` processes the end-to-end tests start would inherit it too, and measuring
    each of them (with branch coverage) made the end-to-end tier about twice as slow.
    """
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        os.environ.pop("COVERAGE_PROCESS_CONFIG", None)
    # the outer gate's pytest options (a cached run's cache_dir) are not the sample projects'
    os.environ.pop("PYTEST_ADDOPTS", None)
