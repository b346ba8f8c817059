import subprocess
from pathlib import Path

import pytest

from ci.core.errors import PreflightError
from ci.core.runner import ProcessRunner
from ci.run import lockfile

PYPROJECT = (
    '[project]\nname = "tiny"\nversion = "0.1.0"\nrequires-python = ">=3.11"\ndependencies = []\n'
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("UV_OFFLINE", "1")  # a project without dependencies needs no index
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    subprocess.run(["uv", "lock", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def test_read_fresh_lock(project: Path) -> None:
    info = lockfile.read(project)
    assert info.packages == 1
    assert len(info.sha256) == 64
    lockfile.check_fresh(project, ProcessRunner())


def test_missing_lock(tmp_path: Path) -> None:
    with pytest.raises(PreflightError, match=r"uv.lock is missing: run `uv lock`"):
        lockfile.read(tmp_path)


@pytest.mark.parametrize("content", ["version = [\n", "\xff\xfe", "title = 'not a lock'\n"])
def test_corrupt_lock(tmp_path: Path, content: str) -> None:
    (tmp_path / "uv.lock").write_bytes(content.encode("latin-1"))
    with pytest.raises(PreflightError, match="uv.lock"):
        lockfile.read(tmp_path)


def test_stale_lock_names_the_fix(project: Path) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT.replace(">=3.11", ">=3.12"))
    with pytest.raises(
        PreflightError, match=r"uv.lock does not match pyproject.toml .*run `uv lock`"
    ):
        lockfile.check_fresh(project, ProcessRunner())
