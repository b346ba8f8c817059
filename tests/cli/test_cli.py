import argparse
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ci.cli import core as core_commands
from ci.cli import main as cli
from ci.cli.app import App
from ci.testing.fakes import FakeRunner

LOCK = 'version = 1\n\n[[package]]\nname = "demo"\nversion = "0"\n'


def project(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0"\n[tool.ci]\npythons = ["3.12"]\n' + extra
    )
    (tmp_path / "uv.lock").write_text(LOCK)
    return tmp_path


def fake_runner() -> FakeRunner:
    return FakeRunner(
        script={
            ("uv", "lock", "--check"): (0, "", ""),
            ("uv", "python", "find"): (0, "/py/3.12\n", ""),
        },
        executables={"uv": "/bin/uv", "nox": "/bin/nox"},
    )


def subcommands() -> list[str]:
    parser = cli.build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices)


@pytest.mark.parametrize("command", subcommands())
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: python -m ci" in out
    assert len(out.splitlines()) > 3


def test_top_level_help_lists_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    assert "6  a tool the gate runs crashed" in capsys.readouterr().out


def test_bad_usage_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["no-such-command"]) == 2
    assert cli.main(["gate", "nope"]) == 2


def test_preflight_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = App(cwd=project(tmp_path), runner=fake_runner(), env={})
    assert cli.main(["preflight"], app) == 0
    assert "uv.lock fresh" in capsys.readouterr().out


def test_config_error_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = App(cwd=project(tmp_path, "colour = 'blue'\n"), runner=fake_runner(), env={})
    assert cli.main(["preflight"], app) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "unknown key 'colour' in [tool.ci]" in err
    assert "Traceback" not in err


def test_config_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text("[tool.ci]\npythons = 3\n")
    app = App(cwd=project(tmp_path), runner=fake_runner(), env={})
    assert cli.main(["--config", str(other), "preflight"], app) == 2
    assert "elsewhere.toml" in capsys.readouterr().err


def test_unexpected_crash_is_one_line_exit_6(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class Exploding(FakeRunner):
        def which(self, name: str) -> str | None:
            raise RuntimeError("kaboom")

    app = App(cwd=project(tmp_path), runner=Exploding(script=fake_runner().script), env={})
    assert cli.main(["preflight"], app) == 6
    err = capsys.readouterr().err
    assert "noxgate crashed (RuntimeError: kaboom)" in err
    assert "Traceback" not in err


def test_interrupt_is_130(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    class Interrupted(FakeRunner):
        def which(self, name: str) -> str | None:
            raise KeyboardInterrupt

    app = App(cwd=project(tmp_path), runner=Interrupted(script=fake_runner().script), env={})
    assert cli.main(["preflight"], app) == 130


def test_on_github_masks_are_announced_first_and_values_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "tok-1234567890abcdef"
    env = {"GITHUB_ACTIONS": "true", "DEPLOY_TOKEN": secret}
    app = App(cwd=project(tmp_path), runner=fake_runner(), env=env)
    app.runner.script[("uv", "python", "find")] = (0, f"/py/{secret}\n", "")
    assert cli.main(["preflight"], app) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"::add-mask::{secret}\n")
    assert out.count(secret) == 1


def test_pipeline_dry_run_prints_plan_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = fake_runner()
    app = App(cwd=project(tmp_path), runner=runner, env={})
    assert cli.main(["pipeline", "--dry-run"], app) == 0
    out = capsys.readouterr().out
    assert "nox -s lint" in out and "nox -s test-3.12" in out
    assert runner.calls == []


GATE_PROJECT = {
    "pyproject.toml": (
        '[project]\nname = "pkg"\nversion = "0"\n[tool.ci]\npythons = ["3.12"]\n'
        "[tool.ci.gates.test]\ncoverage_min = 50\n"
    ),
    "pkg/__init__.py": "def add(a, b):\n    return a + b\n",
    "tests/test_add.py": "from pkg import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
}


@pytest.mark.parametrize(
    "argv",
    [["gate", "test", "-q", "--no-cache"], ["gate", "test", "--", "--no-cache"]],
)
def test_gate_no_cache_after_the_name_is_ours_not_the_tools(
    make_repo: Callable[..., Path], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(GATE_PROJECT)
    assert cli.main(["gate", "test"], App(cwd=repo)) == 0
    assert cli.main(["gate", "test"], App(cwd=repo)) == 0
    assert re.search(r"^test-[\d.]+: cached", capsys.readouterr().out, re.M)  # in the cache
    assert cli.main(argv, App(cwd=repo)) == 0
    out = capsys.readouterr().out
    assert re.search(r"^test-[\d.]+: passed", out, re.M)
    # (pytest's header names its cache folder, the run's own: "cachedir: ...")
    assert not re.search(r"^test-[\d.]+: cached", out, re.M)


def test_gate_args_keep_the_tools_own_arguments() -> None:
    assert core_commands.gate_args(["-q", "--no-cache", "-k", "add"]) == (True, ["-q", "-k", "add"])
    assert core_commands.gate_args(["--", "-x"]) == (False, ["-x"])


def test_release_accepts_no_cache(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.build_parser().parse_args(["release", "--no-cache", "--dry-run"]).no_cache
    assert cli.main(["release", "--help"]) == 0
    assert "--no-cache" in capsys.readouterr().out
