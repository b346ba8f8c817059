from __future__ import annotations

import sys
import time

import pytest

from ci.core.errors import ToolError
from ci.core.runner import ProcessRunner


def test_a_silent_streamed_command_still_times_out() -> None:
    start = time.monotonic()
    with pytest.raises(ToolError, match="did not finish within 0.5 s"):
        ProcessRunner().run(
            [sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5, stream=True
        )
    assert time.monotonic() - start < 10


def test_a_streamed_command_within_its_timeout_is_unaffected(
    capsys: pytest.CaptureFixture[str],
) -> None:
    done = ProcessRunner().run([sys.executable, "-c", "print('hi')"], timeout=30, stream=True)
    assert done.returncode == 0
    assert done.stdout == "hi\n"
    assert capsys.readouterr().out == "hi\n"
