"""The uv the bundle runs: $UV, else the first uv on PATH outside a virtual environment."""

from __future__ import annotations

import os
from pathlib import Path

from ci.core import uv


def fake_uv(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "uv"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_a_uv_in_a_virtual_environment_is_skipped(tmp_path: Path) -> None:
    venv = tmp_path / ".venv"
    fake_uv(venv / "bin")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    own = fake_uv(tmp_path / "tools")
    path = os.pathsep.join([str(venv / "bin"), "", str(tmp_path / "tools")])
    assert uv.find({"PATH": path}) == str(own)


def test_the_uv_that_started_us_comes_first(tmp_path: Path) -> None:
    started = fake_uv(tmp_path / "started")
    other = fake_uv(tmp_path / "other")
    assert uv.find({"UV": str(started), "PATH": str(other.parent)}) == str(started)
    # a relative or missing $UV names nothing: PATH decides
    assert uv.find({"UV": "uv", "PATH": str(other.parent)}) == str(other)
    assert uv.find({"UV": str(tmp_path / "gone"), "PATH": str(other.parent)}) == str(other)


def test_without_a_uv_outside_a_venv_the_name_is_left_to_path(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    fake_uv(venv / "bin")
    (venv / "pyvenv.cfg").write_text("")
    assert uv.find({"PATH": str(venv / "bin")}) == "uv"
    assert uv.find({}) == "uv"
