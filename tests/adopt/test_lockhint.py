"""Which ``[tool.uv.dependency-groups]`` floor makes a failed ``uv lock`` solvable (pure).

What uv says is read by ``ci.core.uv`` (tested on real uv output in tests/core/test_uv.py);
init writing the floor and locking with real uv is tested in tests/adopt/test_init.py.
"""

import tomllib
from typing import Any

from ci.adopt import lockhint
from ci.core.uv import LockFailure

PYTHONS = ("3.12", "3.11", "3.13")


def data(groups: str, extra: str = "") -> dict[str, Any]:
    return tomllib.loads(
        f'[project]\nname = "demo"\nrequires-python = ">=3.9"\n\n'
        f"[dependency-groups]\n{groups}\n{extra}"
    )


def failure(group: str | None, requirement: str | None = "sphinx>=8", *floors: str) -> LockFailure:
    return LockFailure(
        cause="No solution found", group=group, requirement=requirement, floors=floors
    )


def hint(found: LockFailure, project: dict[str, Any], **written: str) -> object:
    return lockhint.hint(found, project, pythons=PYTHONS, written=written)


def test_the_group_gets_the_lowest_floor_uv_names() -> None:
    found = hint(failure("docs", "sphinx>=8", "3.10", "3.11", "3.13"), data('docs = ["sphinx>=8"]'))
    assert found == lockhint.GroupFloor(
        group="docs", floor="3.10", requirement="sphinx>=8", requires_python=">=3.9"
    )
    assert isinstance(found, lockhint.GroupFloor)
    assert found.setting == '[tool.uv.dependency-groups] docs = {requires-python = ">=3.10"}'
    assert "wrote " + found.setting in found.note()
    assert "requires-python >=3.9" in found.note()


def test_a_retry_raises_the_floor_to_the_next_one_uv_names() -> None:
    project = data('docs = ["sphinx>=8"]')
    again = failure("docs", "sphinx>=8", "3.10", "3.11")
    found = hint(again, project, docs="3.10")
    assert isinstance(found, lockhint.GroupFloor)
    assert found.floor == "3.11"
    assert hint(failure("docs", "sphinx>=8", "3.10"), project, docs="3.10") is None


def test_the_floor_goes_on_the_included_group_that_declares_the_package() -> None:
    project = data('Docs = ["sphinx>=8"]\ndev = [{include-group = "Docs"}, "ruff"]')
    found = hint(failure("dev", "sphinx>=8", "3.11"), project)
    assert isinstance(found, lockhint.GroupFloor)
    assert found.group == "Docs"  # as the project spells it


def test_nothing_for_a_failure_that_names_no_group_or_no_floor() -> None:
    project = data('docs = ["sphinx>=8"]')
    assert hint(failure(None, None, "3.11"), project) is None
    assert hint(failure("docs", "pytest<1"), project) is None  # a conflict, not a Python floor
    assert hint(failure("gone", "sphinx>=8", "3.11"), project) is None


def test_never_on_the_bundles_own_groups() -> None:
    project = data('noxgate-lint = ["ruff>=0.9"]')
    assert hint(failure("noxgate-lint", "ruff>=0.9", "3.11"), project) is None


def test_the_projects_own_setting_is_not_overridden() -> None:
    project = data(
        'docs = ["sphinx>=8"]', '[tool.uv.dependency-groups]\ndocs = {requires-python = ">=3.10"}\n'
    )
    found = hint(failure("docs", "sphinx>=8", "3.11"), project)
    assert isinstance(found, lockhint.Refusal)
    assert "the project's own" in found.reason


def test_a_group_the_gates_sync_keeps_every_python_the_sessions_test() -> None:
    project = data('test = ["pytest>=8"]\nnoxgate-test = [{include-group = "test"}]')
    refused = hint(failure("noxgate-test", "pytest>=8", "3.12"), project)
    assert isinstance(refused, lockhint.Refusal)
    assert "the test group needs Python >=3.12" in refused.reason
    # at or below the oldest Python the sessions run, the gates lose nothing
    found = hint(failure("noxgate-test", "pytest>=8", "3.11"), project)
    assert isinstance(found, lockhint.GroupFloor)
    assert found.group == "test"


def test_a_declared_gates_group_counts_as_synced() -> None:
    project = data('docs = ["sphinx>=8"]', '[tool.ci.gates.docs]\ngroup = "docs"\n')
    assert isinstance(hint(failure("docs", "sphinx>=8", "3.12"), project), lockhint.Refusal)
    alone = data('docs = ["sphinx>=8"]')
    assert isinstance(hint(failure("docs", "sphinx>=8", "3.12"), alone), lockhint.GroupFloor)
