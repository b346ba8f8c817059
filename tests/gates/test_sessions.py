"""ci.gates.sessions: the registry's sessions declared into a noxfile, never over its own."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nox
import pytest

from ci.core.errors import ExitCode
from ci.gates import sessions

ROOT = Path(__file__).resolve().parents[2]

DOCS = '[tool.ci.gates.docs]\ncommand = ["sphinx-build", "docs", "out"]\ngroup = "docs"\n'


@pytest.fixture(autouse=True)
def fresh_nox() -> Iterator[None]:
    """An empty nox session registry and default options, restored afterwards."""
    saved, chosen = nox.registry.get(), nox.options.sessions
    nox.registry.reset()
    nox.options.sessions = None
    yield
    nox.registry.reset()
    for name, func in saved.items():
        nox.registry._REGISTRY[name] = func
    nox.options.sessions = chosen


def project(tmp_path: Path, body: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "demo"\nversion = "1"\n\n[tool.ci]\npythons = ["3.12", "3.11"]\n{body}',
        encoding="utf-8",
    )
    return tmp_path


class FakeSession:
    """What the session body touches of a nox.Session, recorded."""

    def __init__(self, posargs: list[str]) -> None:
        self.posargs = posargs
        self.virtualenv = type("Venv", (), {"location": "/venvs/x"})()
        self.calls: list[tuple[str, ...]] = []

    def run_install(self, *args: str, **_: Any) -> None:
        self.calls.append(("install", *args))

    def run(self, *args: str, **_: Any) -> None:
        self.calls.append(args)


def test_declares_every_gate_session_and_the_main_job_as_defaults(tmp_path: Path) -> None:
    declared = sessions.declare(project(tmp_path, DOCS))
    assert declared.added == ("lint", "test", "security", "package", "workflows", "docs")
    assert declared.kept == ()
    assert declared.defaults == ("lint", "test-3.12", "security", "package", "docs")
    assert nox.options.sessions == list(declared.defaults)
    found = nox.registry.get()
    assert found["test"].python == ["3.12", "3.11"]
    assert found["lint"].python == "3.12"
    assert found["docs"].func.__doc__ == "Docs: sphinx-build docs out ([tool.ci.gates.docs])."


def test_a_session_the_noxfile_declares_is_kept(tmp_path: Path) -> None:
    def test(session: Any) -> None:
        """The project's own test session."""

    nox.session(python="3.12")(test)
    nox.options.sessions = ["test"]
    declared = sessions.declare(project(tmp_path))
    assert declared.kept == ("test",)
    assert "test" not in declared.added
    assert nox.registry.get()["test"].func is test
    # the noxfile chose its defaults: the main job's sessions are added to them
    assert nox.options.sessions == ["test", "lint", "test-3.12", "security", "package"]


def test_own_default_sessions_stay_defaults(tmp_path: Path) -> None:
    def docs(session: Any) -> None:
        """The project's docs."""

    def release_notes(session: Any) -> None:
        """Not a default."""

    nox.session(docs)
    nox.session(default=False)(release_notes)
    declared = sessions.declare(project(tmp_path))
    assert declared.defaults[0] == "docs"
    assert "release_notes" not in declared.defaults


def test_without_defaults_plain_nox_runs_only_the_noxfiles_own(tmp_path: Path) -> None:
    declared = sessions.declare(project(tmp_path), defaults=False)
    assert declared.defaults == ()
    assert nox.options.sessions is None
    assert not any(func.default for func in nox.registry.get().values())


def test_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        sessions.declare(project(tmp_path, "[tool.ci.gates.docs]\nmode = 'advisory'\n"))
    assert info.value.code == ExitCode.USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such built-in gate" in err[0]


def test_real_nox_list_with_a_bad_config_is_one_line_and_no_traceback(tmp_path: Path) -> None:
    shutil.copy(ROOT / "noxfile.py", tmp_path / "noxfile.py")
    shutil.copytree(ROOT / "ci", tmp_path / "ci", ignore=shutil.ignore_patterns("__pycache__"))
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    bad = re.sub(r"(?m)^pythons = .*$", 'pythons = ["banana"]', text, count=1)
    assert bad != text
    (tmp_path / "pyproject.toml").write_text(bad, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "nox", "-l"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == ExitCode.USAGE, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "tool.ci.pythons has 'banana'" in lines[0] and "Traceback" not in done.stderr


def test_session_body_syncs_the_group_and_runs_each_gate(tmp_path: Path) -> None:
    sessions.declare(project(tmp_path, DOCS))
    security = FakeSession(["--since", "main"])
    nox.registry.get()["security"].func(security)
    install, *gates = security.calls
    assert Path(install[1]).name == "uv"  # the bundle's uv, by path where it can tell
    assert install[:6] == (
        "install",
        install[1],
        "sync",
        "--locked",
        "--no-default-groups",
        "--group=security",
    )
    assert gates == [
        ("python", "-m", "ci", "gate", "secrets", "--since", "main"),  # arguments: the first gate
        ("python", "-m", "ci", "gate", "audit"),
    ]
    docs = FakeSession([])
    nox.registry.get()["docs"].func(docs)
    assert "--group=docs" in docs.calls[0]
    assert docs.calls[1] == ("python", "-m", "ci", "gate", "docs")
