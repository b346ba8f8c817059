"""The test gate's pytest plugin: coverage in xdist workers, and what each test did.

Loaded by the test gate with ``-p ci.gates.pytest_plugin``; it does nothing in a pytest
run the gate did not start. In the controller (or the only process) it records each test's
duration and reruns into the file the gate names, so flaky tests are known exactly.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from ci.core.files import write_json
from ci.gates import shards
from ci.gates.coverage import GATE_RUN, SHARD, SHARD_DURATIONS, SHARD_RECORD, TEST_RECORD

# Set by the controller when it, not the project's [run] patch, asked workers to measure.
_WORKERS_ONLY = "NOXGATE_COVERAGE_WORKERS_ONLY"
_PROCESS_CONFIG = "COVERAGE_PROCESS_CONFIG"


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _distributed(config: pytest.Config) -> bool:
    return str(config.getoption("dist", "no") or "no") != "no"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Know the ``cache_dir`` setting even where the project turns pytest's cache plugin off.

    A cached gate run points pytest's cache into its own discarded folder with ``-o
    cache_dir=...``; with ``-p no:cacheprovider`` that setting is unknown to pytest, whose
    warning about it stops a suite that sets ``filterwarnings = error``. The same name,
    default and meaning as the cache plugin's own.
    """
    if os.environ.get(GATE_RUN) == "1":
        parser.addini("cache_dir", default=".pytest_cache", help="Cache directory path")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Have xdist workers measured from their first line, as ``coverage run`` measures pytest."""
    if os.environ.get(GATE_RUN) != "1":
        return
    if _is_worker(config):
        # Workers were measured from start-up on the gate's request; the processes the
        # tests start are measured only when the project's own [run] patch asks for it.
        if os.environ.pop(_WORKERS_ONLY, None) == "1":
            os.environ.pop(_PROCESS_CONFIG, None)
        return
    record = os.environ.get(TEST_RECORD)
    if record:
        config.pluginmanager.register(Recorder(Path(record)), "noxgate-test-record")
    if not _distributed(config) or os.environ.get(_PROCESS_CONFIG):
        return  # one process, or the project's [run] patch = subprocess already reaches them
    os.environ[_PROCESS_CONFIG] = _serialized_config()
    os.environ[_WORKERS_ONLY] = "1"


class Recorder:
    """Each test's outcome, duration and reruns (xdist hands workers' reports to it too)."""

    def __init__(self, path: Path) -> None:
        """Write to ``path`` when the session ends."""
        self.path = path
        self.reruns: Counter[str] = Counter()
        self.failed: set[str] = set()
        self.passed: set[str] = set()
        self.durations: defaultdict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count a rerun (pytest-rerunfailures' outcome), else the attempt's phases."""
        nodeid = report.nodeid
        if str(report.outcome) == "rerun":  # pytest-rerunfailures: a failed attempt, retried
            self.reruns[nodeid] += 1
            self.durations[nodeid] = 0.0  # the last attempt's time is the test's time
            return
        self.durations[nodeid] += report.duration
        if report.failed:
            self.failed.add(nodeid)
        elif report.when == "call" and report.passed:
            self.passed.add(nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the record: tests that passed only on a rerun, and every test's duration."""
        del session
        flaky = [
            {"test": nodeid, "reruns": count}
            for nodeid, count in sorted(self.reruns.items())
            if nodeid in self.passed and nodeid not in self.failed
        ]
        durations = {k: round(v, 4) for k, v in sorted(self.durations.items())}
        write_json(self.path, {"flaky": flaky, "durations": durations})


def _serialized_config() -> str:
    """The running measurement's whole configuration, as coverage's start-up hook reads it."""
    try:
        import coverage  # noqa: PLC0415 - only in measured runs
    except ImportError as exc:
        msg = "the test gate measures xdist workers with coverage, which is not installed"
        raise pytest.UsageError(msg) from exc
    current: Any = coverage.Coverage.current()
    # the same value coverage's own [run] patch = subprocess hands its child processes
    serialize = getattr(getattr(current, "config", None), "serialize", None)
    if current is None or serialize is None:
        msg = (
            f"coverage {coverage.__version__} cannot hand its measurement to xdist workers: "
            'set [tool.ci.gates.test] workers = 1, or patch = ["subprocess"] in [tool.coverage.run]'
        )
        raise pytest.UsageError(msg)
    return str(serialize())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a shard run, keep this shard's tests (every process computes the same split)."""
    if os.environ.get(GATE_RUN) != "1" or not os.environ.get(SHARD):
        return
    shard = shards.Shard.parse(os.environ[SHARD])
    durations_file = os.environ.get(SHARD_DURATIONS)
    durations = {}
    if durations_file:
        durations = json.loads(Path(durations_file).read_text(encoding="utf-8"))
    collected = [item.nodeid for item in items]
    mine = set(shards.split(collected, durations, shard.count)[shard.index - 1])
    kept = [item for item in items if item.nodeid in mine]
    dropped = [item for item in items if item.nodeid not in mine]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept
    worker = getattr(config, "workerinput", {}).get("workerid")
    record = os.environ.get(SHARD_RECORD)
    if record and worker in {None, "gw0"}:  # one process writes what every one computed
        write_json(
            Path(record),
            {"shard": str(shard), "collected": sorted(collected), "selected": sorted(mine)},
        )
