import sys
from pathlib import Path

import pytest

from ci.core import redact
from ci.core.errors import ToolError
from ci.core.runner import ProcessRunner

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
