"""The default deploy: the built wheel installed into CI_STATE_DIR/envs/NAME with real uv."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ci.cli.main import main
from tests.support.deploy_project import ledger_of, write_project, write_wheel


def installed(venv: Path) -> str:
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import demo_pkg; print(demo_pkg.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_default_deploy_installs_the_wheel_and_smoke_tests_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = Path(os.environ["CI_STATE_DIR"])
    root = tmp_path / "app"
    cfg = str(
        write_project(root, "[tool.ci.environments.staging]\n", extra='packages = ["demo_pkg"]\n')
    )
    dist = root / "dist"
    write_wheel(dist, "demo-app", "1.0.0", "demo_pkg")
    write_wheel(dist / "builds" / "0002", "demo-app", "1.1.0", "demo_pkg")
    # 1.2.0 installs but cannot be imported: the smoke test must catch it
    write_wheel(dist, "demo-app", "1.2.0", "demo_pkg", body="raise ImportError('broken build')\n")

    assert main(["--config", cfg, "deploy", "--env", "staging", "--version", "1.0.0"]) == 0
    venv = state / "envs" / "staging"
    assert installed(venv) == "1.0.0"
    assert main(["--config", cfg, "deploy", "--env", "staging", "--version", "1.1.0"]) == 0
    assert installed(venv) == "1.1.0"
    capsys.readouterr()
    assert main(["--config", cfg, "deploy", "--env", "staging", "--version", "1.2.0"]) == 5
    err = capsys.readouterr().err
    assert "deploy of 1.2.0 to staging failed (healthcheck exited 1); rolled back to 1.1.0" in err
    assert installed(venv) == "1.1.0"
    assert main(["--config", cfg, "rollback", "--env", "staging"]) == 0
    assert installed(venv) == "1.0.0"
    outcomes = [(e.action, e.version, e.outcome) for e in ledger_of(state).verify()]
    assert outcomes[-1] == ("rollback", "1.0.0", "succeeded")


def test_default_deploy_without_a_built_wheel_is_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(write_project(tmp_path / "app", "[tool.ci.environments.staging]\n"))
    assert main(["--config", cfg, "deploy", "--env", "staging", "--version", "3.0.0"]) == 3
    err = capsys.readouterr().err
    assert "no wheel of demo-app 3.0.0" in err
    assert "python -m ci package" in err


def test_state_text_view(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "app"
    cfg = str(
        write_project(root, "[tool.ci.environments.staging]\n", extra='packages = ["demo_pkg"]\n')
    )
    write_wheel(root / "dist", "demo-app", "1.0.0", "demo_pkg")
    assert main(["--config", cfg, "deploy", "--env", "staging", "--version", "1.0.0"]) == 0
    capsys.readouterr()
    assert main(["--config", cfg, "state", "--env", "staging"]) == 0
    out = capsys.readouterr().out
    assert "environment staging: ok" in out
    assert "current  1.0.0" in out
    assert "lock     free" in out
    assert main(["--config", cfg, "state", "--env", "staging", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"env", "current", "history", "lock"}
    assert main(["--config", cfg, "state"]) == 2


def test_default_deploy_installs_a_wheel_with_dependencies_from_a_fresh_uv_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a fresh machine: uv's cache holds no index page of the wheel's dependency (an offline
    # install failed there after a real release, whose sessions fill the cache with wheels only)
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "empty-uv-cache"))
    state = Path(os.environ["CI_STATE_DIR"])
    root = tmp_path / "app"
    cfg = str(
        write_project(root, "[tool.ci.environments.staging]\n", extra='packages = ["demo_pkg"]\n')
    )
    body = 'import six\n\n__version__ = "1.0.0"\n'
    write_wheel(root / "dist", "demo-app", "1.0.0", "demo_pkg", body=body, requires="six")
    assert main(["--config", cfg, "deploy", "--env", "staging", "--version", "1.0.0"]) == 0
    assert installed(state / "envs" / "staging") == "1.0.0"
