"""Test shards: the suite split by recorded durations, and the check that shards add up to it."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.core.errors import ConfigError, ToolError
from ci.core.files import write_json

DURATIONS = "test-durations.json"  # in the state folder: what the last runs measured
PROJECT_DURATIONS = ".test_durations"  # committed by the project (pytest-split's format)
DEFAULT_S = 1.0  # what a test counts for when nothing was recorded for any test


@dataclass(frozen=True, slots=True, kw_only=True)
class Shard:
    """One shard of ``count``: its 1-based index."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/3"`` -> the second of three shards (ConfigError for anything else)."""
        index, _, count = text.partition("/")
        try:
            shard = cls(index=int(index), count=int(count))
        except ValueError:
            shard = None
        if shard is None or not 1 <= shard.index <= shard.count:
            msg = f"CI_TEST_SHARD={text!r} is not a shard: use I/N with 1 <= I <= N, e.g. 2/3"
            raise ConfigError(msg)
        return shard

    def __str__(self) -> str:
        """``2/3``."""
        return f"{self.index}/{self.count}"


def split(tests: Iterable[str], durations: Mapping[str, float], count: int) -> list[list[str]]:
    """Deal ``tests`` into ``count`` shards of about equal recorded time, the same everywhere.

    Longest first, each to the shard with the least time so far (ties: the lower index);
    a test without a recorded duration counts as the median of those recorded.
    """
    known = [d for d in durations.values() if d >= 0]
    default = statistics.median(known) if known else DEFAULT_S
    weighted = sorted(
        ((durations.get(t, default), t) for t in set(tests)), key=lambda w: (-w[0], w[1])
    )
    shards: list[list[str]] = [[] for _ in range(count)]
    totals = [0.0] * count
    for seconds, test in weighted:
        target = min(range(count), key=lambda i: (totals[i], i))
        shards[target].append(test)
        totals[target] += seconds
    return [sorted(s) for s in shards]


def estimate(shards: Sequence[Sequence[str]], durations: Mapping[str, float]) -> list[float]:
    """Each shard's recorded time in seconds (unrecorded tests as in ``split``)."""
    known = [d for d in durations.values() if d >= 0]
    default = statistics.median(known) if known else DEFAULT_S
    return [sum(durations.get(t, default) for t in shard) for shard in shards]


def load_durations(root: Path, state: Path) -> dict[str, float]:
    """Recorded test durations: the project's ``.test_durations``, else the state's record."""
    for path, key in ((root / PROJECT_DURATIONS, None), (state / DURATIONS, "durations")):
        if not path.exists():
            continue
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
            values = data[key] if key else data
            return {str(k): float(v) for k, v in values.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            msg = f"{path} is not a test durations file ({{test id: seconds}}); fix or delete it"
            raise ConfigError(msg) from None
    return {}


def record_durations(state: Path, measured: Mapping[str, float]) -> Path:
    """Merge this run's test durations into the state's record (newest value wins)."""
    path = state / DURATIONS
    try:
        old = json.loads(path.read_text(encoding="utf-8")).get("durations", {})
        values = {str(k): float(v) for k, v in old.items()} if isinstance(old, dict) else {}
    except (OSError, ValueError, AttributeError):
        values = {}  # none yet, or damaged: this run's values start it again
    values.update({k: round(float(v), 4) for k, v in measured.items()})
    write_json(path, {"durations": dict(sorted(values.items()))})
    return path


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardRecord:
    """What one shard ran: the whole collected suite and its own part of it."""

    shard: Shard
    collected: tuple[str, ...]
    selected: tuple[str, ...]


def read_record(path: Path) -> ShardRecord:
    """A shard's record, written by the test gate's pytest plugin (ToolError if unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ShardRecord(
            shard=Shard.parse(str(data["shard"])),
            collected=tuple(data["collected"]),
            selected=tuple(data["selected"]),
        )
    except (OSError, ValueError, KeyError, TypeError, ConfigError):
        msg = f"{path} is not a shard record; re-run that shard"
        raise ToolError(msg) from None


def check_union(records: Sequence[ShardRecord], count: int) -> list[str]:
    """Problems with a set of shard records: a missing shard, a test run twice or by none."""
    problems = []
    found = {r.shard.index for r in records}
    missing = sorted(set(range(1, count + 1)) - found)
    if missing:
        problems.append(f"shard(s) {', '.join(map(str, missing))} of {count} left no record")
    if any(r.shard.count != count for r in records):
        problems.append(f"shard records of another shard count than {count}")
    if not records:
        return problems
    suites = {r.collected for r in records}
    if len(suites) > 1:
        problems.append("the shards collected different suites (different commits or arguments)")
    everything = set(records[0].collected)
    ran: dict[str, int] = {}
    for record in records:
        for test in record.selected:
            ran[test] = ran.get(test, 0) + 1
    twice = sorted(t for t, n in ran.items() if n > 1)
    if twice:
        problems.append(f"{len(twice)} test(s) ran in more than one shard, e.g. {twice[0]}")
    lost = sorted(everything - set(ran)) if not missing else []
    if lost:
        problems.append(f"{len(lost)} test(s) ran in no shard, e.g. {lost[0]}")
    return problems


def matrix(pythons: Sequence[str], default_python: str, count: int) -> list[dict[str, str]]:
    """The test job's matrix entries: the default Python in ``count`` shards, others whole.

    ``shard`` is the job's ``CI_TEST_SHARD`` (empty: the whole suite); a workflow with
    shards adds one job that combines them (``CI_TEST_COMBINE``) and posts ``ci/test``.
    """
    entries = []
    for python in pythons:
        if python == default_python and count > 1:
            entries += [{"python": python, "shard": f"{i}/{count}"} for i in range(1, count + 1)]
        else:
            entries.append({"python": python, "shard": ""})
    return entries
