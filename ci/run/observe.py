"""Observability: gate durations over time and the slowest tests of a junit report."""

from __future__ import annotations

import datetime as dt
import json
import statistics
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.core.files import append_line, atomic_write_text
from ci.core.gate import GateResult

DURATIONS = "durations.jsonl"
KEEP_LINES = 5000  # what a trim keeps: the newest lines
TRIM_BYTES = 2 * 1024 * 1024  # trim once the file grows past this


def record_duration(state: Path, result: GateResult, when: dt.datetime, sha: str = "") -> Path:
    """Append the gate's duration to ``<state>/durations.jsonl``; trim it when it grows large."""
    path = state / DURATIONS
    line = json.dumps(
        {
            "schema": 1,
            "gate": result.id,
            "status": result.status.value,
            "duration_s": round(result.duration_s, 3),
            "at": when.isoformat(timespec="seconds"),
            "sha": sha,
        }
    )
    append_line(path, line)  # one O_APPEND write: gates running in parallel lose nothing
    if path.stat().st_size > TRIM_BYTES:
        lines = path.read_text(encoding="utf-8").splitlines()
        atomic_write_text(path, "\n".join(lines[-KEEP_LINES:]) + "\n")
    return path


def read_durations(state: Path) -> list[dict[str, Any]]:
    """Every well-formed line of ``durations.jsonl`` (damaged lines are skipped)."""
    path = state / DURATIONS
    if not path.exists():
        return []
    rows = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "gate" in row and "duration_s" in row:
            rows.append(row)
    return rows


def median_duration(rows: list[dict[str, Any]], gate_id: str, last: int = 20) -> float | None:
    """The median of the last ``last`` recorded durations of ``gate_id``, or None."""
    values = [float(r["duration_s"]) for r in rows if r["gate"] == gate_id][-last:]
    return statistics.median(values) if values else None


@dataclass(frozen=True, slots=True, kw_only=True)
class SlowTest:
    """One test case and how long it took."""

    name: str
    seconds: float


def slowest_tests(junit: Path, count: int = 10) -> list[SlowTest]:
    """The ``count`` slowest test cases of a junit XML file (empty if it cannot be read)."""
    try:
        root = ET.parse(junit).getroot()  # noqa: S314 - our own pytest's output
    except (OSError, ET.ParseError):
        return []
    cases = []
    for case in root.iter("testcase"):
        try:
            seconds = float(case.get("time", "0") or 0)
        except ValueError:
            continue
        name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
        cases.append(SlowTest(name=name, seconds=seconds))
    cases.sort(key=lambda c: (-c.seconds, c.name))
    return cases[:count]
