from __future__ import annotations

from pathlib import Path

import pytest

from ci.core.errors import ConfigError
from ci.gates import shards

TESTS = [f"tests/test_{i}.py::test_{j}" for i in range(7) for j in range(5)]


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_split_covers_every_test_once(count: int) -> None:
    durations = {t: float(len(t) % 7) for t in TESTS[::2]}
    parts = shards.split(TESTS, durations, count)
    assert len(parts) == count
    flat = [t for part in parts for t in part]
    assert sorted(flat) == sorted(TESTS)
    assert len(flat) == len(set(flat))
    # the same input gives the same split, whatever the order
    assert shards.split(reversed(TESTS), durations, count) == parts


def test_split_balances_recorded_time() -> None:
    durations = {"a": 10.0, "b": 6.0, "c": 4.0, "d": 3.0, "e": 3.0}
    parts = shards.split(durations, durations, 2)
    assert shards.estimate(parts, durations) == [13.0, 13.0]
    # unrecorded tests count as the median of the recorded ones
    assert shards.estimate([["a", "new"]], durations) == [14.0]


@pytest.mark.parametrize("text", ["0/3", "4/3", "x", "1/", "2-3"])
def test_a_bad_shard_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a shard"):
        shards.Shard.parse(text)


def record(index: int, selected: list[str], collected: list[str] | None = None):
    return shards.ShardRecord(
        shard=shards.Shard(index=index, count=2),
        collected=tuple(collected or ["a", "b", "c"]),
        selected=tuple(selected),
    )


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        ([record(1, ["a", "b"]), record(2, ["c"])], None),
        ([record(1, ["a", "b", "c"])], "shard(s) 2 of 2 left no record"),
        ([record(1, ["a", "b"]), record(2, ["b", "c"])], "ran in more than one shard, e.g. b"),
        ([record(1, ["a"]), record(2, ["c"])], "ran in no shard, e.g. b"),
        ([record(1, ["a", "b"]), record(2, ["c"], ["a", "b", "c", "d"])], "different suites"),
    ],
)
def test_check_union(records, problem) -> None:
    problems = shards.check_union(records, 2)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_durations_come_from_the_project_file_before_the_record(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert shards.load_durations(tmp_path, state) == {}
    shards.record_durations(state, {"t::a": 1.5})
    shards.record_durations(state, {"t::b": 2.0})
    assert shards.load_durations(tmp_path, state) == {"t::a": 1.5, "t::b": 2.0}
    (tmp_path / ".test_durations").write_text('{"t::c": 3}')
    assert shards.load_durations(tmp_path, state) == {"t::c": 3.0}
    (tmp_path / ".test_durations").write_text("[1]")
    with pytest.raises(ConfigError, match="not a test durations file"):
        shards.load_durations(tmp_path, state)


def test_matrix_shards_only_the_default_python() -> None:
    assert shards.matrix(["3.12", "3.11"], "3.12", 1) == [
        {"python": "3.12", "shard": ""},
        {"python": "3.11", "shard": ""},
    ]
    assert shards.matrix(["3.12", "3.11"], "3.12", 2) == [
        {"python": "3.12", "shard": "1/2"},
        {"python": "3.12", "shard": "2/2"},
        {"python": "3.11", "shard": ""},
    ]
