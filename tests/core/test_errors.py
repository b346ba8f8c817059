import pytest

from ci.core import errors
from ci.core.errors import ExitCode


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.GateFailedError, 1),
        (errors.UsageError, 2),
        (errors.ConfigError, 2),
        (errors.PreflightError, 3),
        (errors.LockHeldError, 4),
        (errors.DeployError, 5),
        (errors.ToolError, 6),
    ],
)
def test_each_error_carries_the_documented_exit_code(
    error: type[errors.CIError], code: int
) -> None:
    assert issubclass(error, errors.CIError)
    assert int(error("x").exit_code) == code


def test_exit_code_table_matches_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    for code in ExitCode:
        assert f"| {int(code)} |" in readme
