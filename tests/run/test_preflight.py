from pathlib import Path

import pytest

from ci.core import config
from ci.core.errors import PreflightError
from ci.run import preflight
from ci.run.preflight import Status
from ci.testing.fakes import FakeRunner

LOCK = 'version = 1\nrequires-python = ">=3.11"\n\n[[package]]\nname = "tiny"\nversion = "0.1.0"\n'


def setup(
    tmp_path: Path, lock: str | None = LOCK, pythons: str = '["3.12", "3.13"]'
) -> config.Config:
    (tmp_path / "pyproject.toml").write_text(f"[tool.ci]\npythons = {pythons}\n")
    if lock is not None:
        (tmp_path / "uv.lock").write_text(lock)
    return config.load(cwd=tmp_path)


def runner(
    fresh: bool = True, pythons: tuple[str, ...] = ("3.12", "3.13"), tools: bool = True
) -> FakeRunner:
    script = {
        ("uv", "lock", "--check"): (0, "", "")
        if fresh
        else (1, "", "error: The lockfile at `uv.lock` needs to be updated")
    }
    for v in ("3.11", "3.12", "3.13"):
        found = v in pythons
        script[("uv", "python", "find", "--no-python-downloads", v)] = (
            0 if found else 2,
            f"/py/{v}\n" if found else "",
            "",
        )
    exe = {"uv": "/bin/uv", "nox": "/bin/nox"} if tools else {}
    return FakeRunner(script=script, executables=exe)


def statuses(checks: list[preflight.Check]) -> dict[str, Status]:
    return {c.name: c.status for c in checks}


def test_all_good(tmp_path: Path) -> None:
    checks = preflight.gather(setup(tmp_path), runner())
    assert all(checks)
    preflight.verdict(checks)
    table = preflight.render(checks)
    assert "python 3.12 (default)" in table
    assert "uv.lock fresh" in table


def test_missing_lock_fails_and_skips_freshness(tmp_path: Path) -> None:
    checks = preflight.gather(setup(tmp_path, lock=None), runner())
    s = statuses(checks)
    assert s["uv.lock"] is Status.FAIL
    assert s["uv.lock fresh"] is Status.SKIP
    with pytest.raises(PreflightError, match="run `uv lock`"):
        preflight.verdict(checks)


def test_stale_lock_fails(tmp_path: Path) -> None:
    checks = preflight.gather(setup(tmp_path), runner(fresh=False))
    assert statuses(checks)["uv.lock fresh"] is Status.FAIL
    with pytest.raises(PreflightError, match="needs to be updated"):
        preflight.verdict(checks)


def test_default_python_missing_fails_other_warns(tmp_path: Path) -> None:
    checks = preflight.gather(
        setup(tmp_path, pythons='["3.13", "3.11"]'), runner(pythons=("3.12",))
    )
    s = statuses(checks)
    assert s["python 3.13 (default)"] is Status.FAIL
    assert s["python 3.11"] is Status.WARN
    with pytest.raises(PreflightError, match="Python 3.13"):
        preflight.verdict(checks)


def test_missing_tools_fail(tmp_path: Path) -> None:
    checks = preflight.gather(setup(tmp_path), runner(tools=False))
    s = statuses(checks)
    assert s["uv"] is Status.FAIL
    assert s["nox"] is Status.FAIL


def test_uv_crash_during_check_is_a_preflight_failure(tmp_path: Path) -> None:
    r = runner()
    del r.script[("uv", "lock", "--check")]  # the fake now raises ToolError like a missing uv
    checks = preflight.gather(setup(tmp_path), r)
    assert statuses(checks)["uv.lock fresh"] is Status.FAIL
