"""Coverage baselines: the value to compare against, and a drop beyond the allowed maximum."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.core.errors import ConfigError
from ci.core.files import write_json
from ci.core.gate import Finding

BASELINE = "coverage-baseline.json"
EPSILON = 1e-9  # a drop of exactly coverage_drop_max is allowed


@dataclass(frozen=True, slots=True, kw_only=True)
class Baseline:
    """A coverage percentage to compare against and where it came from."""

    coverage: float
    source: str


def load_baseline(reports: Path, state: Path, variant: str) -> Baseline | None:
    """``reports/coverage-baseline.json``, else the default branch's last recorded run, or None."""
    for path in (reports / BASELINE, state / BASELINE):
        if path.exists():
            value = _value(path, variant)
            if value is not None:
                return Baseline(coverage=value, source=str(path))
    return None


def _value(path: Path, variant: str) -> float | None:
    """The baseline in ``path``: one number for all Pythons, or one per Python version."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        raw: Any = data["coverage"]
        if isinstance(raw, Mapping):
            raw = raw.get(variant)
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise TypeError(raw)
    except (OSError, ValueError, KeyError, TypeError):
        msg = (
            f'{path} is not a coverage baseline (expected {{"coverage": 87.5}} or '
            '{"coverage": {"3.12": 87.5}}); fix or delete it'
        )
        raise ConfigError(msg) from None
    return float(raw)


def judge_drop(current: float, baseline: Baseline, drop_max: float) -> Finding | None:
    """A finding when coverage fell more than ``drop_max`` points below the baseline."""
    drop = baseline.coverage - current
    if drop <= drop_max + EPSILON:
        return None
    return Finding(
        rule="coverage-drop",
        message=(
            f"coverage {current:.1f}% dropped {drop:.1f} pt below the baseline of "
            f"{baseline.coverage:.1f}% (allowed: {drop_max:g} pt)"
        ),
    )


def on_default_branch(env: Mapping[str, str]) -> bool:
    """True for a push to the default branch (``CI_DEFAULT_BRANCH``, else main) on GitHub."""
    branch = env.get("CI_DEFAULT_BRANCH") or "main"
    return env.get("GITHUB_REF") == f"refs/heads/{branch}"


def record_baseline(
    state: Path, variant: str, coverage: float, *, sha: str, when: dt.datetime
) -> Path:
    """Keep ``coverage`` as the baseline of ``variant`` for later runs."""
    path = state / BASELINE
    values: dict[str, float] = {}
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8")).get("coverage", {})
            values = {str(k): float(v) for k, v in old.items()} if isinstance(old, dict) else {}
        except (OSError, ValueError, AttributeError):
            values = {}  # a damaged baseline is replaced by this run's value
    values[variant] = round(coverage, 2)
    write_json(path, {"coverage": values, "sha": sha, "at": when.isoformat(timespec="seconds")})
    return path
