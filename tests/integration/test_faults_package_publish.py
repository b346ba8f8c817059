"""The package and publish faults on a real build and a real pypiserver."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ci.cli.main import main
from ci.core.runner import ProcessRunner
from ci.release import package
from tests.support.pypiserver import PypiServer
from tests.support.sample_project import write_sample_project

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_project(tmp_path_factory.mktemp("sample") / "proj")


@pytest.fixture(autouse=True)
def twine_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWINE_USERNAME", "anonymous")
    monkeypatch.setenv("TWINE_PASSWORD", "anonymous")


def test_package_fault_is_a_checksum_mismatch_and_nothing_is_kept(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "dist"
    argv = ["--config", str(project / "pyproject.toml"), "package", "--outdir", str(out)]
    monkeypatch.setenv("CI_INJECT_FAULT", "package")
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "fault injection: CI_INJECT_FAULT includes 'package'" in captured.out
    assert "SHA256SUMS says sample_pkg-1.2.3" in captured.err
    assert "Traceback" not in captured.out + captured.err
    assets = package.assets_dir(out)
    assert not (assets / "manifest.json").exists()
    assert not (assets / "SHA256SUMS").exists()
    assert not (assets / "builds").exists() or not list((assets / "builds").iterdir())
    monkeypatch.delenv("CI_INJECT_FAULT")
    assert main(argv) == 0
    assert (assets / "manifest.json").exists()


def test_publish_fault_dies_after_the_first_upload_and_is_rolled_back(
    project: Path,
    tmp_path: Path,
    pypiserver: PypiServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    built = tmp_path / "built"
    package.package(project, built, runner=ProcessRunner(), env={}, packages=("sample_pkg",))
    shutil.copytree(package.assets_dir(built), tmp_path / "dist-assets")
    dist = Path(shutil.copytree(built, tmp_path / "dist"))
    argv = ["publish", "--dist", str(dist), "--repository-url", pypiserver.url]
    monkeypatch.setenv("CI_INJECT_FAULT", "publish")
    assert main(argv) == 5
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert "removed again: sample_pkg-1.2.3-py3-none-any.whl" in captured.err
    assert pypiserver.files() == {}
    record = json.loads((package.assets_dir(dist) / "manifest.json").read_text())["publish"]
    assert record["status"] == "failed"
    assert record["uploaded"] == record["removed"] == ["sample_pkg-1.2.3-py3-none-any.whl"]
    assert record["left_on_index"] == []
    monkeypatch.delenv("CI_INJECT_FAULT")
    assert main(argv) == 0
    assert sorted(pypiserver.files()) == [
        "sample_pkg-1.2.3-py3-none-any.whl",
        "sample_pkg-1.2.3.tar.gz",
    ]
