import json
import os
import stat
from pathlib import Path

import pytest

from ci.core import files, redact


def test_write_json_puts_schema_first_and_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "report.json"
    files.write_json(target, {"a": 1, "schema": 99}, schema=2)
    data = json.loads(target.read_text())
    assert next(iter(data)) == "schema"
    assert data == {"schema": 2, "a": 1}
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_failed_write_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_rewritten_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "run.sh"
    target.write_text("old")
    target.chmod(0o755)
    files.atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o7777 == 0o755


def test_a_new_file_gets_0666_less_the_umask_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        files.write_json(tmp_path / "a.json", {})
        os.umask(0o027)
        files.atomic_write_bytes(tmp_path / "b.txt", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o640


def test_writing_over_a_folder_names_the_folder_not_a_temp_file(tmp_path: Path) -> None:
    (tmp_path / "report.json").mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        files.write_json(tmp_path / "report.json", {})
    assert caught.value.filename == str(tmp_path / "report.json")
    assert files.path_problem(caught.value) == (
        f"{tmp_path / 'report.json'} is a folder where a file is expected; fix or move it aside "
        "and rerun"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_path_problem_names_the_file_that_blocks_a_folder(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    with pytest.raises(NotADirectoryError) as caught:
        files.write_json(tmp_path / "state" / "locks" / "x.json", {})
    problem = files.path_problem(caught.value)
    assert problem is not None
    assert problem.startswith(f"{tmp_path / 'state'} is a file where a folder is expected")


def test_path_problem_leaves_other_errors_alone() -> None:
    assert files.path_problem(OSError(28, "No space left on device", "/x")) is None
    assert files.path_problem(ConnectionResetError(104, "reset")) is None


def test_mask_file_masks_what_a_tool_wrote_in_place(tmp_path: Path) -> None:
    secret = "hunter2-secret-value"
    redact.install(redact.Redactor.of([secret]))
    report = tmp_path / "junit.xml"
    report.write_bytes(f'<failure message="token {secret}&#10;x" />\n'.encode() + b"\xff\n")
    report.chmod(0o640)
    assert files.mask_file(report) is True
    assert report.read_bytes() == b'<failure message="token ***&#10;x" />\n\xff\n'  # bytes kept
    assert stat.S_IMODE(report.stat().st_mode) == 0o640
    assert files.mask_file(report) is False  # nothing left to mask: not rewritten
    assert files.mask_file(tmp_path / "missing.xml") is False
    assert not (tmp_path / "missing.xml").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["junit.xml"]  # no temp file left
