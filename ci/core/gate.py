"""Gate records and policy: results, required/advisory, budgets and waivers with expiry."""

from __future__ import annotations

import datetime as dt
import enum
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ci.core.clock import Clock
from ci.core.config import Config, GateConfig, Mode, Waiver
from ci.core.runner import Runner


class GateStatus(enum.StrEnum):
    """How a gate run ended."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CACHED = "cached"
    ERROR = "error"  # the tool crashed or could not be reached


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One problem a gate found, with its location where known."""

    rule: str
    message: str
    file: str | None = None
    line: int | None = None
    severity: str | None = None
    waived: bool = False

    def location(self) -> str:
        """``file:line`` (or just the file, or empty)."""
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "rule": self.rule,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "severity": self.severity,
            "waived": self.waived,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """Rebuild a Finding from ``to_dict`` output."""
        return cls(
            rule=str(data["rule"]),
            message=str(data["message"]),
            file=data.get("file"),
            line=data.get("line"),
            severity=data.get("severity"),
            waived=bool(data.get("waived", False)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GateResult:
    """The record of one gate run; ``bool(result)`` is False only when it blocks."""

    gate: str
    status: GateStatus
    mode: Mode = Mode.REQUIRED
    variant: str = ""
    duration_s: float = 0.0
    summary: str = ""
    findings: tuple[Finding, ...] = ()
    artifacts: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """The gate and its variant, e.g. ``test-3.12``: the report's file name."""
        return f"{self.gate}-{self.variant}" if self.variant else self.gate

    @property
    def blocking(self) -> bool:
        """True when this result stops the pipeline."""
        bad = self.status in {GateStatus.FAILED, GateStatus.ERROR}
        return bad and self.mode is Mode.REQUIRED

    def __bool__(self) -> bool:
        """True unless the result blocks."""
        return not self.blocking

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (without the schema, which the writer adds)."""
        return {
            "gate": self.gate,
            "variant": self.variant,
            "id": self.id,
            "status": self.status.value,
            "mode": self.mode.value,
            "duration_s": round(self.duration_s, 3),
            "summary": self.summary,
            "findings": [f.to_dict() for f in self.findings],
            "artifacts": list(self.artifacts),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        """Rebuild a GateResult from ``to_dict`` output."""
        return cls(
            gate=str(data["gate"]),
            variant=str(data.get("variant", "")),
            status=GateStatus(data["status"]),
            mode=Mode(data.get("mode", Mode.REQUIRED.value)),
            duration_s=float(data.get("duration_s", 0.0)),
            summary=str(data.get("summary", "")),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", [])),
            artifacts=tuple(data.get("artifacts", [])),
            warnings=tuple(data.get("warnings", [])),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GateContext:
    """What a gate needs from the outside world, passed in."""

    config: Config
    runner: Runner
    clock: Clock
    env: Mapping[str, str] = field(default_factory=dict)
    python: str = ""
    # The files the gate's cache key covers, for a gate that scans a list of files (secrets):
    # it scans exactly these. None: the gate lists them itself.
    scan: tuple[str, ...] | None = None

    @property
    def root(self) -> Path:
        """The project folder."""
        return self.config.root

    @property
    def reports(self) -> Path:
        """The reports folder (created on demand by writers)."""
        return self.config.reports_path()


def apply_policy(result: GateResult, policy: GateConfig) -> GateResult:
    """Stamp the gate's mode on ``result`` and judge its duration against ``budget_s``."""
    result = replace(result, mode=policy.mode)
    if policy.budget_s is None or result.duration_s <= policy.budget_s:
        return result
    note = f"took {result.duration_s:.1f} s, over its budget of {policy.budget_s:g} s"
    if policy.budget_blocks and result.status is GateStatus.PASSED:
        return replace(
            result,
            status=GateStatus.FAILED,
            summary=f"{result.summary}; {note}" if result.summary else note,
            warnings=(*result.warnings, note),
        )
    return replace(result, warnings=(*result.warnings, note))


@dataclass(frozen=True, slots=True, kw_only=True)
class WaiverVerdict:
    """Which finding ids a set of waivers covers, and which waivers have expired."""

    waived: frozenset[str]
    expired: tuple[Waiver, ...]

    def expired_messages(self) -> list[str]:
        """One line per expired waiver naming it and its date."""
        return [
            f"waiver {w.id} expired on {w.expires.isoformat()}: fix the finding or renew the "
            "waiver in [[tool.ci.waivers]]"
            for w in self.expired
        ]


def judge_waivers(ids: Iterable[str], waivers: Iterable[Waiver], today: dt.date) -> WaiverVerdict:
    """Split finding ``ids`` into waived ones; expired waivers that match are reported, not used."""
    wanted = set(ids)
    waived: set[str] = set()
    expired: list[Waiver] = []
    for waiver in waivers:
        if waiver.id not in wanted:
            continue
        if waiver.expires < today:
            expired.append(waiver)
        else:
            waived.add(waiver.id)
    return WaiverVerdict(waived=frozenset(waived), expired=tuple(expired))


def context(config: Config, runner: Runner, clock: Clock, env: Mapping[str, str]) -> GateContext:
    """A GateContext for the running interpreter."""
    python = ".".join(platform.python_version_tuple()[:2])
    return GateContext(config=config, runner=runner, clock=clock, env=dict(env), python=python)
