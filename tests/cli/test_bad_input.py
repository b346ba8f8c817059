"""Bad paths, files and numbers on the command line: one clear line and exit 2, never a crash."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ci.cli.main import build_parser, main
from tests.support.deploy_project import record_command, toml_list, write_project

ROOT = Path(__file__).resolve().parents[2]


def project(tmp_path: Path) -> Path:
    command = toml_list(record_command(tmp_path / "deploys.log"))
    return write_project(
        tmp_path / "app", f"[tool.ci.environments.staging]\ndeploy_command = {command}\n"
    )


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert "crashed" not in err
    return lines[0]


def test_config_that_is_a_folder_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(tmp_path), "preflight"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(tmp_path) in line
    assert "folder" in line


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "NaN", "soon"])
@pytest.mark.parametrize("command", ["deploy", "rollback"])
def test_wait_must_be_finite_and_not_negative(
    tmp_path: Path, value: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = project(tmp_path)
    extra = ["--version", "1.0.0"] if command == "deploy" else []
    assert main(["--config", str(cfg), command, "--env", "staging", *extra, f"--wait={value}"]) == 2
    err = capsys.readouterr().err
    assert f"argument --wait: must be a number of seconds, 0 or more, not {value!r}" in err
    assert not (tmp_path / "deploys.log").exists()


def test_wait_zero_and_fractions_are_fine(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    assert (
        main(
            ["--config", str(cfg), "deploy", "--env", "staging", "--version", "1", "--wait", "0.5"]
        )
        == 0
    )


def damage(state: Path, rel: str) -> Path:
    """Replace the file ``rel`` of the state folder by a folder; ``""``: the folder by a file."""
    target = state / rel if rel else state
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink(missing_ok=True)
    if rel:
        target.mkdir(parents=True)
    else:
        target.write_text("not a folder\n")
    return target


@pytest.mark.parametrize("rel", ["", "ledger.jsonl", "state/staging.json", "locks/staging.lock"])
@pytest.mark.parametrize(
    "argv",
    [
        ["deploy", "--env", "staging", "--version", "2.0.0"],
        ["rollback", "--env", "staging"],
        ["state", "--env", "staging"],
        ["state", "rebuild"],
        ["ledger", "verify"],
    ],
)
def test_a_damaged_state_folder_is_exit_2_naming_the_path(
    tmp_path: Path, rel: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = project(tmp_path)
    state = Path(os.environ["CI_STATE_DIR"])
    assert main(["--config", str(cfg), "deploy", "--env", "staging", "--version", "1.0.0"]) == 0
    target = damage(state, rel)
    capsys.readouterr()
    code = main(["--config", str(cfg), *argv])
    err = capsys.readouterr().err
    if code == 0:  # a command that never reads the damaged file has nothing to say about it
        assert not err
        assert argv[0] == "ledger" or rel == "locks/staging.lock", err
        return
    assert code == 2, err
    line = one_error_line(err)
    assert str(target) in line
    if not rel:
        assert "CI_STATE_DIR" in line


@pytest.mark.parametrize("garbage", [b"\xff\xfe{}", b"{nope", b'{"schema": 99}'])
@pytest.mark.parametrize("rel", ["state/staging.json", "locks/staging.lock"])
def test_a_state_or_lock_file_of_garbage_is_reported_not_a_crash(
    tmp_path: Path, rel: str, garbage: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = project(tmp_path)
    state = Path(os.environ["CI_STATE_DIR"])
    assert main(["--config", str(cfg), "deploy", "--env", "staging", "--version", "1.0.0"]) == 0
    (state / rel).parent.mkdir(parents=True, exist_ok=True)
    (state / rel).write_bytes(garbage)
    capsys.readouterr()
    code = main(["--config", str(cfg), "deploy", "--env", "staging", "--version", "2.0.0"])
    line = one_error_line(capsys.readouterr().err)
    assert code in {3, 4}  # a corrupt state file fails the preflight; a corrupt lock holds
    assert str(state / rel) in line


def test_a_reports_folder_that_is_a_file_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0"\n[tool.ci]\npythons = ["3.12"]\n'
        'reports_dir = "out"\n'
    )
    (tmp_path / "out").write_text("a file\n")
    assert main(["--config", str(tmp_path / "pyproject.toml"), "gate", "workflows"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{tmp_path / 'out'} is a file where a folder is expected" in line


def run_into_closed_pipe(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line, as with `| head -0`
    try:
        return subprocess.run(
            [sys.executable, "-m", "ci", *argv],
            cwd=cwd,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize("argv", [["plan", "--event", "push"], ["ledger", "verify"]])
def test_output_piped_into_a_closed_reader_stops_quietly_with_141(
    tmp_path: Path, argv: list[str]
) -> None:
    project(tmp_path)
    done = run_into_closed_pipe(argv, tmp_path / "app")
    assert done.stderr == ""
    assert done.returncode == 141


def test_a_broken_pipe_in_process_is_141_and_silent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = project(tmp_path)

    class Closed:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["--config", str(cfg), "ledger", "verify"]) == 141
    assert capsys.readouterr().err == ""


def numeric_flags() -> list[tuple[list[str], str]]:
    """(command path, option) of every option that takes a number, found in the parser."""
    found = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*path, name])
            elif action.type in {int, float}:
                msg = (
                    f"{' '.join(path)} {action.option_strings}: use a checked type (ci.cli.values)"
                )
                raise AssertionError(msg)
            elif action.option_strings and action.type not in {None, Path, str}:
                found.append((path, action.option_strings[-1]))

    walk(build_parser(), [])
    return found


def test_the_numeric_flags_are_all_found() -> None:
    flags = {(" ".join(path), option) for path, option in numeric_flags()}
    assert {("deploy", "--wait"), ("pipeline", "--jobs"), ("status require", "--interval")} <= flags
    assert ("advisories serve", "--port") in flags


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e999", "many"])
@pytest.mark.parametrize(("path", "option"), numeric_flags())
def test_every_numeric_flag_refuses_nan_inf_and_negatives(
    path: list[str], option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args([*path, f"{option}={value}"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert f"{option}: " in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["notes", "--output", "adir"], ("adir", "is a folder where a file is expected")),
        (["notes", "--output", "afile/x"], ("afile", "is a file where a folder is expected")),
        (["secrets", "--output", "adir"], ("adir", "is a folder where a file is expected")),
        (["secrets", "--baseline", "adir"], ("adir", "Is a directory")),
        (["secrets", "--baseline", "garbage"], ("garbage", "not valid JSON")),
        (["audit", "--requirements", "adir"], ("adir", "is a folder")),
        (["notify", "--report", "adir", "--dry-run"], ("adir", "is not a run report")),
        (["notify", "--report", "garbage", "--dry-run"], ("garbage", "is not a run report")),
        (["package", "--outdir", "afile"], ("afile", "is a file, not a folder")),
        (["init", "afile"], ("afile", "is not a folder")),
        (["advisories", "serve", "--db", "afile", "--port", "0"], ("afile", "not a folder")),
    ],
)
def test_a_path_argument_of_the_wrong_kind_is_exit_2_naming_it(
    make_repo: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    expected: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    named, needle = expected
    repo = make_repo({"pyproject.toml": '[project]\nname = "demo"\nversion = "1.0.0"\n'})
    (repo / "adir").mkdir()
    (repo / "afile").write_text("a file\n")
    (repo / "garbage").write_bytes(b"\xff\xfe\x00 not text")
    monkeypatch.chdir(repo)
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert named in line
    assert needle in line


@pytest.mark.parametrize("value", ["1e10", "1e300", "604801"])
def test_a_deploy_timeout_no_timer_can_wait_is_exit_2_naming_the_key(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """It passed, the timer thread died of OverflowError and the deploy exited 0 unbounded."""
    command = toml_list(record_command(tmp_path / "deploys.log"))
    cfg = write_project(
        tmp_path / "app",
        f"[tool.ci.environments.staging]\ndeploy_command = {command}\ntimeout_s = {value}\n",
    )
    assert main(["--config", str(cfg), "deploy", "--env", "staging", "--version", "1.0.0"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "tool.ci.environments.staging.timeout_s must be at most 604800 seconds" in line
    assert not (tmp_path / "deploys.log").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "require", "--sha", "a" * 40, "--wait", "1e10"],
        ["status", "require", "--sha", "a" * 40, "--wait", "60", "--interval", "1e10"],
        ["deploy", "--env", "staging", "--version", "1.0.0", "--wait", "1e300"],
    ],
    ids=["status wait", "status interval", "deploy wait"],
)
def test_a_wait_or_interval_no_sleep_can_take_is_exit_2(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """time.sleep(1e10) raises OverflowError: a traceback after the first poll."""
    cfg = project(tmp_path)
    assert main(["--config", str(cfg), *argv]) == 2
    err = capsys.readouterr().err
    assert "must be at most 604800 seconds (7 days), not '1e" in err
    assert "Traceback" not in err
    assert not (tmp_path / "deploys.log").exists()
