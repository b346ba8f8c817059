import json
import os
from pathlib import Path

import pytest

from ci.core import files


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
