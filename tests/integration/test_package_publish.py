"""End to end: real builds of a sample project, published to a real pypiserver with twine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ci.cli.main import main
from ci.core.runner import ProcessRunner
from ci.release import package
from tests.conftest import ROOT
from tests.support.pypiserver import FlakyIndex, PypiServer, free_port, running
from tests.support.sample_project import git, write_sample_project

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed sample project (built by several tests, never modified)."""
    return write_sample_project(tmp_path_factory.mktemp("sample") / "proj")


@pytest.fixture(scope="module")
def built(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample project's dist folder, built once for the publish tests."""
    out = tmp_path_factory.mktemp("built") / "dist"
    package.package(project, out, runner=ProcessRunner(), env={}, packages=("sample_pkg",))
    return out


@pytest.fixture(autouse=True)
def twine_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Open indexes take any credentials, but twine insists on having some."""
    monkeypatch.setenv("TWINE_USERNAME", "anonymous")
    monkeypatch.setenv("TWINE_PASSWORD", "anonymous")


@pytest.fixture
def dist(built: Path, tmp_path: Path) -> Path:
    """A private copy of the built dist folder and its assets (publish writes the manifest)."""
    shutil.copytree(package.assets_dir(built), tmp_path / "dist-assets")
    return Path(shutil.copytree(built, tmp_path / "dist"))


def run_ci(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def manifest(folder: Path) -> dict:
    return json.loads((package.assets_dir(folder) / "manifest.json").read_text())


def located(folder: Path, name: str) -> Path:
    """Where the current build keeps ``name``: dist/ for distributions, else dist-assets/."""
    return folder / name if (folder / name).is_file() else package.assets_dir(folder) / name


# ---- package -------------------------------------------------------------------------


def test_package_is_reproducible_stamped_and_checksummed(project, built, tmp_path, capsys):
    cfg = str(project / "pyproject.toml")
    first, second = tmp_path / "one", built  # `built` is another build of the same commit
    code, out, err = run_ci(
        capsys, "--config", cfg, "package", "--outdir", str(first), "--verify-reproducible"
    )
    assert code == 0, err
    assert "reproducible (built twice, byte-identical)" in out

    data = manifest(first)
    names = [a["name"] for a in data["artifacts"]]
    assert names == [
        "sample_pkg-1.2.3-py3-none-any.whl",
        "sample_pkg-1.2.3.tar.gz",
        "sample_pkg-1.2.3-bundle.tar.gz",
    ]
    for name in names:  # the same commit gives the same bytes
        assert located(first, name).read_bytes() == located(second, name).read_bytes(), name
    # dist/ holds the distributions only; the kept build folder holds all five files
    assert sorted(p.name for p in first.iterdir()) == sorted(names[:2])
    kept = package.assets_dir(first) / "builds" / data["build_id"]
    check = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], check=False, cwd=kept, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK") == 3

    head = git(project, "rev-parse", "HEAD").strip()
    commit_time = int(git(project, "log", "-1", "--format=%ct").strip())
    with zipfile.ZipFile(first / names[0]) as wheel:
        stamp = json.loads(wheel.read("sample_pkg/_build_info.json"))
        record = wheel.read("sample_pkg-1.2.3.dist-info/RECORD").decode()
        assert wheel.testzip() is None
    assert stamp["commit"] == head == data["build"]["commit"]
    assert stamp["branch"] == "main"
    assert stamp["dirty"] is False
    assert stamp["source_date_epoch"] == commit_time
    assert stamp["uv_lock_sha256"] == package.sha256_file(project / "uv.lock")
    assert "sample_pkg/_build_info.json,sha256=" in record

    twine = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *(str(first / n) for n in names[:2])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert twine.returncode == 0, twine.stdout


def test_a_setuptools_project_is_reproducible_and_old_builds_are_pruned(tmp_path, capsys):
    # setuptools stamps its own build time into the sdist: package normalizes it
    repo = write_sample_project(tmp_path / "proj", backend="setuptools", retain=1)
    out = tmp_path / "out"
    cfg = str(repo / "pyproject.toml")
    code, text, err = run_ci(
        capsys, "--config", cfg, "package", "--outdir", str(out), "--verify-reproducible"
    )
    assert code == 0, err
    assert "reproducible" in text
    with zipfile.ZipFile(out / "sample_pkg-1.2.3-py3-none-any.whl") as wheel:
        assert json.loads(wheel.read("sample_pkg/_build_info.json"))["name"] == "sample-pkg"

    code, _, err = run_ci(capsys, "--config", cfg, "package", "--outdir", str(out))
    assert code == 0, err
    kept = sorted(p.name for p in (package.assets_dir(out) / "builds").iterdir())
    assert [k[:4] for k in kept] == ["0002"]  # retain = 1: the first build is gone
    assert manifest(out)["build_id"] == kept[-1]
    assert not list(package.assets_dir(out).glob(".staging-*"))


C_EXTENSION = """\
#include <Python.h>
static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
    return PyLong_FromLong(a + b);
}
static PyMethodDef methods[] = {{"add", add, METH_VARARGS, "Add."}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, methods};
PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&module); }
"""

C_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "cext"
version = "1.0.0"
description = "Adds in C."
readme = "README.md"
requires-python = ">=3.11"

[tool.setuptools]
ext-modules = [{name = "cext._speed", sources = ["src/cext/_speed.c"]}]
packages = ["cext"]
package-dir = {"" = "src"}

[tool.ci]
packages = ["cext"]
"""


def test_a_setuptools_c_extension_builds_byte_identical_twice_and_publishes_manylinux(
    tmp_path, capsys, pypiserver: PypiServer
):
    # python -m build alone compiles in a random /tmp/build-via-sdist-* folder that the .so
    # records (DW_AT_comp_dir, build id): the package gate builds from a folder it maps away,
    # then auditwheel repairs the linux_* wheel (which PyPI refuses) to a manylinux tag
    repo = tmp_path / "cext"
    files = {
        "pyproject.toml": C_PYPROJECT,
        "README.md": "# cext\n\nAdds in C.\n",
        ".gitignore": "*.egg-info/\nbuild/\n",
        "src/cext/__init__.py": '"""Adds in C."""\n',
        "src/cext/_speed.c": C_EXTENSION,
    }
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "feat: add in C")
    out = tmp_path / "out"
    cfg = str(repo / "pyproject.toml")
    code, text, err = run_ci(
        capsys, "--config", cfg, "gate", "package", "--no-cache", "--outdir", str(out)
    )
    assert code == 0, err
    assert "reproducible (built twice, byte-identical)" in text
    (wheel,) = out.glob("cext-1.0.0-cp3*-*.whl")
    assert "-manylinux" in wheel.name and "linux_" not in wheel.name.replace("manylinux_", "")
    assert "plain linux platform tag" not in text
    tags = package.wheel_tags(wheel.name)
    # what this machine cannot build, said in the gate's one record line
    assert f"wheel matrix: {tags} only (this machine's Python); set [tool.ci.release]" in text
    with zipfile.ZipFile(wheel) as archive:
        (so,) = [n for n in archive.namelist() if n.endswith(".so")]
        assert b"build-via-sdist" not in archive.read(so)
        assert str(tmp_path).encode() not in archive.read(so)
        meta = archive.read("cext-1.0.0.dist-info/WHEEL")
        assert b"-manylinux_2_" in meta and b"-linux_" not in meta  # the tags inside agree
        assert "cext/_build_info.json" in archive.namelist()  # stamped after the repair

    code, text, err = run_ci(
        capsys, "--config", cfg, "publish", "--dist", str(out), "--repository-url", pypiserver.url
    )
    assert code == 0, err
    assert pypiserver.files() == {
        wheel.name: wheel.read_bytes(),
        "cext-1.0.0.tar.gz": (out / "cext-1.0.0.tar.gz").read_bytes(),
    }


def test_unreproducible_build_fails_naming_the_file(tmp_path, capsys):
    repo = write_sample_project(tmp_path / "proj", unreproducible=True)
    out = tmp_path / "out"
    code, _, err = run_ci(
        capsys,
        "--config",
        str(repo / "pyproject.toml"),
        "package",
        "--outdir",
        str(out),
        "--verify-reproducible",
    )
    assert code == 1
    assert "sample_pkg-1.2.3-py3-none-any.whl is not reproducible" in err
    assert "sample_pkg/stamp.txt" in err
    assert "Traceback" not in err
    assert not (package.assets_dir(out) / "manifest.json").exists()  # nothing half-written
    assert list((package.assets_dir(out) / "builds").iterdir()) == []
    assert not list(package.assets_dir(out).glob(".staging-*"))


def test_failed_build_leaves_the_previous_build_alone(tmp_path, capsys):
    repo = write_sample_project(tmp_path / "proj")
    out = tmp_path / "out"
    cfg = str(repo / "pyproject.toml")
    assert run_ci(capsys, "--config", cfg, "package", "--outdir", str(out))[0] == 0
    before = (package.assets_dir(out) / "manifest.json").read_bytes()
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('version = "1.2.3"', 'version = "not a version"')
    )
    code, _, err = run_ci(capsys, "--config", cfg, "package", "--outdir", str(out))
    assert code == 1
    assert err.startswith("error: python -m build failed")
    assert len(err.strip().splitlines()) == 1
    assert (package.assets_dir(out) / "manifest.json").read_bytes() == before
    assert len(list((package.assets_dir(out) / "builds").iterdir())) == 1


def test_package_gate_writes_its_report(project, capsys, monkeypatch):
    repo = project  # dist/ and reports/ are git-ignored there: the tree stays clean
    monkeypatch.chdir(repo)
    code, out, _ = run_ci(capsys, "gate", "package")
    assert code == 0, out
    report = json.loads((repo / "reports" / "package.json").read_text())
    assert report["status"] == "passed"
    assert "reproducible" in report["summary"]
    assert "dist-assets/SHA256SUMS" in report["artifacts"]
    assert (repo / "dist" / "sample_pkg-1.2.3-py3-none-any.whl").is_file()


# ---- publish -------------------------------------------------------------------------


def test_publish_leaves_exact_bytes_and_is_idempotent(dist, pypiserver: PypiServer, capsys):
    code, out, err = run_ci(
        capsys, "publish", "--dist", str(dist), "--repository-url", pypiserver.url
    )
    assert code == 0, err
    assert "uploaded sample_pkg-1.2.3-py3-none-any.whl, sample_pkg-1.2.3.tar.gz" in out
    wanted = {
        n: (dist / n).read_bytes()
        for n in ("sample_pkg-1.2.3-py3-none-any.whl", "sample_pkg-1.2.3.tar.gz")
    }
    assert pypiserver.files() == wanted  # exactly the bytes, and no bundle
    data = manifest(dist)
    assert data["publish"]["status"] == "published"
    wheel = data["artifacts"][0]
    assert wheel["published"] == [f"{pypiserver.url}packages/{wheel['name']}"]

    code, out, err = run_ci(
        capsys, "publish", "--dist", str(dist), "--repository-url", pypiserver.url
    )
    assert code == 0, err
    assert "already there with the same sha256" in out
    assert "uploaded" not in out
    assert pypiserver.files() == wanted


def test_publish_dry_run_uploads_nothing(dist, pypiserver, capsys):
    code, out, _ = run_ci(
        capsys, "publish", "--dist", str(dist), "--repository-url", pypiserver.url, "--dry-run"
    )
    assert code == 0
    assert "upload sample_pkg-1.2.3-py3-none-any.whl" in out
    assert pypiserver.files() == {}
    assert manifest(dist)["publish"] is None


def test_same_version_with_other_bytes_is_exit_5(dist, pypiserver, capsys):
    (pypiserver.packages / "sample_pkg-1.2.3.tar.gz").write_bytes(b"other bytes")
    code, _, err = run_ci(
        capsys, "publish", "--dist", str(dist), "--repository-url", pypiserver.url
    )
    assert code == 5
    assert "version 1.2.3 already published with different content" in err
    assert "bump the version" in err
    assert set(pypiserver.files()) == {"sample_pkg-1.2.3.tar.gz"}  # nothing uploaded


def test_dead_index_is_exit_6_with_one_line(dist, capsys):
    # exit 6 as every HTTP outage (it was 5 before): nothing was sent, nothing rolled back
    url = f"http://127.0.0.1:{free_port()}/"
    code, out, err = run_ci(capsys, "publish", "--dist", str(dist), "--repository-url", url)
    assert code == 6
    assert err.startswith("error: reading the index at http://127.0.0.1:")
    assert "unreachable (ConnectionRefusedError" in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in out + err


@pytest.mark.parametrize("mode", ["500", "drop"])
def test_partial_upload_is_removed_again(dist, pypiserver, capsys, mode):
    with FlakyIndex(upstream=pypiserver.url, fail_on=2, mode=mode) as flaky:
        code, out, err = run_ci(
            capsys, "publish", "--dist", str(dist), "--repository-url", flaky.url
        )
    assert code == 5
    assert flaky.uploads >= 2  # the wheel went through, the sdist failed (twine retries a 500)
    assert flaky.removals == 1
    assert "uploading sample_pkg-1.2.3.tar.gz" in err
    assert "removed again: sample_pkg-1.2.3-py3-none-any.whl" in err
    assert "Traceback" not in out + err
    assert pypiserver.files() == {}  # nothing left on the real index
    record = manifest(dist)["publish"]
    assert record["status"] == "failed"
    assert record["uploaded"] == ["sample_pkg-1.2.3-py3-none-any.whl"]
    assert record["removed"] == ["sample_pkg-1.2.3-py3-none-any.whl"]
    assert record["left_on_index"] == []


def test_partial_upload_keeps_files_it_did_not_upload(dist, pypiserver, capsys):
    # the wheel is already there (an earlier run); this run fails on the sdist
    wheel = "sample_pkg-1.2.3-py3-none-any.whl"
    shutil.copy(dist / wheel, pypiserver.packages / wheel)
    with FlakyIndex(upstream=pypiserver.url, fail_on=1) as flaky:
        code, _, err = run_ci(capsys, "publish", "--dist", str(dist), "--repository-url", flaky.url)
    assert code == 5
    assert flaky.removals == 0
    assert set(pypiserver.files()) == {wheel}
    assert "nothing was uploaded" in err


def test_corrupt_artifact_is_exit_5_before_any_upload(dist, pypiserver, capsys):
    wheel = dist / "sample_pkg-1.2.3-py3-none-any.whl"
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    code, _, err = run_ci(
        capsys, "publish", "--dist", str(dist), "--repository-url", pypiserver.url
    )
    assert code == 5
    assert "does not match SHA256SUMS" in err
    assert pypiserver.files() == {}


def test_credentials_are_checked_and_never_printed(dist, tmp_path, capsys, monkeypatch):
    with running(tmp_path / "private", auth=("uploader", "s3cret-Pa55word")) as index:
        monkeypatch.setenv("TWINE_USERNAME", "uploader")
        monkeypatch.setenv("TWINE_PASSWORD", "wrong-Pa55word")
        code, out, err = run_ci(
            capsys, "publish", "--dist", str(dist), "--repository-url", index.url
        )
        assert code == 5
        assert "403" in err or "401" in err
        assert len(err.strip().splitlines()) == 1, err
        assert "wrong-Pa55word" not in out + err
        assert index.files() == {}

        monkeypatch.setenv("TWINE_PASSWORD", "s3cret-Pa55word")
        code, out, err = run_ci(
            capsys, "publish", "--dist", str(dist), "--repository-url", index.url
        )
        assert code == 0, err
        assert "s3cret-Pa55word" not in out + err
        assert "s3cret-Pa55word" not in json.dumps(manifest(dist))
        assert len(index.files()) == 2


def test_repository_url_from_the_environment(dist, pypiserver, capsys, monkeypatch):
    monkeypatch.setenv("CI_PUBLISH_REPOSITORY_URL", pypiserver.url)
    code, _, err = run_ci(capsys, "publish", "--dist", str(dist))
    assert code == 0, err
    assert len(pypiserver.files()) == 2


def test_a_fresh_clone_of_this_repository_builds_byte_identical_twice(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    for out in ("a", "b"):
        done = subprocess.run(
            [sys.executable, "-m", "ci", "package", "--outdir", str(tmp_path / out)],
            cwd=clone,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    first, second = manifest(tmp_path / "a"), manifest(tmp_path / "b")
    assert first["artifacts"] == second["artifacts"]
    for artifact in first["artifacts"]:
        name = artifact["name"]
        first_file, second_file = located(tmp_path / "a", name), located(tmp_path / "b", name)
        assert first_file.read_bytes() == second_file.read_bytes()
    head = git(clone, "rev-parse", "HEAD").strip()
    assert first["build"]["commit"] == head
    assert first["build"]["dirty"] is False
    assert not (clone / "ci" / "_build_info.json").exists()  # generated into the wheel only


def test_standard_tools_take_dist_as_it_is(built, tmp_path, pypiserver):
    """`twine check dist/*`, `twine upload dist/*` and `uv publish` on what package wrote."""
    dist = Path(shutil.copytree(built, tmp_path / "dist"))
    files = sorted(str(p) for p in dist.iterdir())  # what the shell's dist/* expands to
    assert [Path(f).suffix for f in files] == [".whl", ".gz"]
    twine = [sys.executable, "-m", "twine"]
    check = subprocess.run(
        [*twine, "check", "--strict", *files], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    upload = subprocess.run(
        [*twine, "upload", "--non-interactive", "--repository-url", pypiserver.url, *files],
        capture_output=True,
        text=True,
        env={**os.environ, **pypiserver.twine_env()},
        check=False,
    )
    assert upload.returncode == 0, upload.stdout + upload.stderr
    assert sorted(pypiserver.files()) == sorted(Path(f).name for f in files)

    with running(tmp_path / "second") as other:
        done = subprocess.run(
            ["uv", "publish", "--publish-url", other.url, "-u", "x", "-p", "x", *files],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert sorted(other.files()) == sorted(Path(f).name for f in files)
