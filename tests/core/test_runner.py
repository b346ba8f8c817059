import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ci.core import redact
from ci.core.errors import LockHeldError, ToolError, UsageError
from ci.core.runner import ProcessRunner, end_group, group_alive

PY = sys.executable


def test_captures_output_and_exit_code(tmp_path: Path) -> None:
    done = ProcessRunner().run(
        [PY, "-c", "import os,sys; print(os.getcwd()); print('err', file=sys.stderr); sys.exit(3)"],
        cwd=tmp_path,
    )
    assert done.returncode == 3
    assert not done
    assert done.stdout.strip() == str(tmp_path)
    assert done.stderr.strip() == "err"
    assert done.duration_s > 0


def test_env_is_merged() -> None:
    done = ProcessRunner().run(
        [PY, "-c", "import os; print(os.environ['CI_X'], 'PATH' in os.environ)"],
        env={"CI_X": "hello"},
    )
    assert done.stdout.split() == ["hello", "True"]


def test_missing_executable_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="no-such-tool-xyz was not found"):
        ProcessRunner().run(["no-such-tool-xyz"])


def test_timeout_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="did not finish within 0.5 s"):
        ProcessRunner().run([PY, "-c", "import time; time.sleep(10)"], timeout=0.5)


def test_streaming_prints_masked_lines_and_captures(capsys: pytest.CaptureFixture[str]) -> None:
    redact.install(redact.Redactor.of(["hunter2-secret"]))
    done = ProcessRunner().run([PY, "-c", "print('one'); print('pw=hunter2-secret')"], stream=True)
    out = capsys.readouterr().out
    assert "one" in out
    assert "hunter2-secret" not in out
    assert "hunter2-secret" not in done.stdout
    assert done.returncode == 0


def test_streaming_timeout() -> None:
    with pytest.raises(ToolError):
        ProcessRunner().run(
            [PY, "-u", "-c", "import time\nwhile True: print('x', flush=True); time.sleep(0.05)"],
            stream=True,
            timeout=0.5,
        )


def test_which() -> None:
    assert ProcessRunner().which("git")
    assert ProcessRunner().which("no-such-tool-xyz") is None


def test_on_start_sees_the_group_before_the_command_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    seen: list[tuple[int, bool]] = []

    def on_start(pgid: int) -> None:
        seen.append((pgid, marker.exists()))

    code = f"import os, pathlib; pathlib.Path({str(marker)!r}).touch(); print(os.getpgid(0))"
    done = ProcessRunner().run([PY, "-c", code], on_start=on_start)
    assert done.returncode == 0
    ((pgid, ran_before),) = seen
    assert ran_before is False
    assert int(done.stdout.strip()) == pgid != os.getpgid(0)  # its own group, not ours


def test_a_failing_on_start_means_the_command_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    def refuse(pgid: int) -> None:
        del pgid
        raise LockHeldError("lost the lock")

    code = f"import pathlib; pathlib.Path({str(marker)!r}).touch()"
    with pytest.raises(LockHeldError):
        ProcessRunner().run([PY, "-c", code], on_start=refuse)
    assert not marker.exists()


def test_a_missing_command_in_a_group_is_still_not_found() -> None:
    with pytest.raises(ToolError, match="no-such-tool-xyz was not found"):
        ProcessRunner().run(["no-such-tool-xyz"], on_start=lambda pgid: None)


def test_a_timeout_ends_the_whole_group() -> None:
    # the command starts a grandchild in its group, and both sleep
    code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    )
    groups: list[int] = []
    with pytest.raises(ToolError, match="did not finish within 1 s"):
        ProcessRunner().run([PY, "-c", code], timeout=1, on_start=groups.append)
    deadline = time.monotonic() + 10
    while group_alive(groups[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not group_alive(groups[0])


def test_end_group_stops_a_group_that_ignores_sigterm() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([PY, "-c", code], process_group=0, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"  # the handler is in place, however busy the machine
    assert group_alive(proc.pid)
    assert end_group(proc.pid, grace_s=0.3, reap=proc.poll)
    assert proc.wait(timeout=5) == -signal.SIGKILL
    assert not group_alive(proc.pid)


@pytest.mark.parametrize("timeout", [1e10, float("inf"), float("nan"), 0.0, -1.0])
@pytest.mark.parametrize("how", ["captured", "streamed", "in its group"])
def test_a_timeout_no_timer_can_wait_is_a_usage_error_before_the_command_starts(
    tmp_path: Path, timeout: float, how: str
) -> None:
    """A timer thread given 1e10 s died of OverflowError while the command ran on unbounded."""
    ran = tmp_path / "ran"
    options: dict[str, Any] = {
        "captured": {},
        "streamed": {"stream": True},
        "in its group": {"on_start": lambda pgid: None},
    }[how]
    with pytest.raises(UsageError, match="timeout of .* is not a number of seconds between 0"):
        ProcessRunner().run(["touch", str(ran)], timeout=timeout, **options)
    assert not ran.exists()
