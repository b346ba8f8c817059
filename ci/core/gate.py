"""The gate vocabulary: the Gate definition, its inputs, results, policy and waivers.

A gate is defined once, as a ``Gate`` record in its own module; ``ci.gates.registry`` lists
them. Everything else (config validation, sessions, the pipeline, the cache, statuses,
release, init's dependency groups) derives from these records.
"""

from __future__ import annotations

import datetime as dt
import enum
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ci.core.clock import Clock
from ci.core.config import Config, GateConfig, Mode, Waiver
from ci.core.files import atomic_write_text
from ci.core.http import HttpClient, UrllibClient
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
    advisory: bool = False  # reported (a warning annotation), never failing its gate

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
            "advisory": self.advisory,
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
            advisory=bool(data.get("advisory", False)),
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
    flaky: tuple[str, ...] = ()  # tests that failed, then passed when rerun in this run
    coverage: float | None = None  # the total coverage percentage the gate measured

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
            "flaky": list(self.flaky),
            "coverage": self.coverage,
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
            flaky=tuple(data.get("flaky", [])),
            coverage=_percent(data.get("coverage")),
        )


def _percent(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class GateContext:
    """What a gate needs from the outside world, passed in."""

    config: Config
    runner: Runner
    clock: Clock
    env: Mapping[str, str] = field(default_factory=dict)
    python: str = ""
    http: HttpClient = field(default_factory=UrllibClient)  # statuses, the OSV API
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

    def write_reports(self, texts: Mapping[str, str]) -> list[str]:
        """Write each ``{file name: text}`` into the reports folder; their project paths."""
        written = []
        for name, text in texts.items():
            path = self.reports / name
            atomic_write_text(path, text)
            resolved = path.resolve()
            inside = resolved.is_relative_to(self.root)
            written.append(resolved.relative_to(self.root).as_posix() if inside else str(path))
        return written


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


def context(
    config: Config,
    runner: Runner,
    clock: Clock,
    env: Mapping[str, str],
    http: HttpClient | None = None,
) -> GateContext:
    """A GateContext for the running interpreter."""
    python = ".".join(platform.python_version_tuple()[:2])
    return GateContext(
        config=config,
        runner=runner,
        clock=clock,
        env=dict(env),
        python=python,
        http=http or UrllibClient(),
    )


# A gate's key scans its file list with this function: (base folder, paths relative to it).
Lister = Callable[[Path, Runner], tuple[Path, list[str]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class GateInputs:
    """What one gate's verdict depends on besides its files, Python, venv and the ci bundle.

    The files are the whole project tree as the file system shows it (ci.gates.filehash:
    tracked, untracked and ignored files alike, less tool folders), or, for a gate that scans
    a list of files, exactly that list (``lister``), which the gate is then handed to scan.
    """

    lister: Lister | None = None  # the gate scans exactly these files; None: the whole tree
    # files outside the covered tree it reads: "{reports}/NAME", "{state}/NAME" or relative
    # to the root; each keyed by content (missing is a value too)
    extra_files: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()  # packages in uv.lock whose versions the key names
    env: tuple[str, ...] = ()  # env vars (names or fnmatch patterns) it may see: keyed by hash
    config: tuple[str, ...] = ()  # [tool.ci] fields it reads besides its own gate table
    daily: bool = False  # the verdict depends on today's date or on what an index serves today
    git_facts: bool = False  # it records git facts (commit, branch, tags): they are keyed
    args: bool = True  # False: a run with extra arguments (a commit range, history) never caches
    # A folder outside the tree it reads (e.g. an advisory database), named by the first of
    # these env vars or [tool.ci] fields that is set; every file's stat stamp (size, mtime,
    # ctime, inode) is in the key, so any change to the folder re-runs the gate.
    folder_from: tuple[str, ...] = ()
    # Why a run with these arguments in this project reads state no key covers (pytest's
    # --lf reads .pytest_cache), so it is never cached; "" when it can be cached.
    uncacheable: Callable[[Path, Sequence[str]], str] | None = None


GateRun = Callable[[GateContext, Sequence[str]], GateResult]


def context_name(gate: str, variant: str, default_python: str) -> str:
    """The status context of a gate run: ``ci/<gate>``; other Pythons' runs add the version."""
    if not variant or variant == default_python:
        return f"ci/{gate}"
    return f"ci/{gate}-{variant}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Gate:
    """One gate, defined once: its name, session, group, inputs, how it runs, where it applies.

    ``run(ctx, args)`` is the one call shape of every gate; ``args`` are the session's
    positional arguments (``nox -s NAME -- ARGS``). Several gates may share a session
    (``security`` runs ``secrets`` then ``audit``); they must then share its group.
    """

    name: str
    session: str  # the nox session that runs it, without a -X.Y Python suffix
    doc: str  # one line on what it checks: the session's `nox -l` text and the README table
    run: GateRun
    group: str | None = None  # the dependency group the session syncs (None: the project only)
    inputs: GateInputs | None = None  # what its result depends on; None: never cached
    every_python: bool = False  # its session runs on each of [tool.ci] pythons (test-3.12, ...)
    pythons: tuple[str, ...] = ()  # the Pythons a declared gate names (first: the main job's)
    options: frozenset[str] = frozenset()  # its own keys in [tool.ci.gates.NAME] (GateConfig)
    requires: tuple[str, ...] = ()  # what `init` adds to its dependency group in a project
    applies: Callable[[Config], bool] | None = None  # None: always; else only where True
    declared: bool = False  # declared in [tool.ci.gates.NAME] with a command, not built in

    @property
    def parametrized(self) -> bool:
        """True when its session is one per Python (``NAME-3.12``) and its results carry one."""
        return self.every_python or bool(self.pythons)

    def session_pythons(self, config: Config) -> tuple[str, ...]:
        """The Pythons its session runs on; the first is the one the main job runs."""
        if self.every_python:
            return config.pythons
        return self.pythons or (config.default_python,)

    def main_session(self, config: Config) -> str:
        """The nox session the main job and a release run for it (``test-3.12``, ``lint``)."""
        if not self.parametrized:
            return self.session
        return f"{self.session}-{self.session_pythons(config)[0]}"

    def variant(self, python: str) -> str:
        """The variant of its result when it runs on ``python``: the Python, or nothing."""
        return python if self.parametrized else ""

    def context(self, config: Config, python: str = "") -> str:
        """Its commit status context on ``python`` (default: the main job's run)."""
        python = python or self.session_pythons(config)[0]
        return context_name(self.name, self.variant(python), config.default_python)

    def applies_to(self, config: Config) -> bool:
        """True when the main job and a release run it for this project."""
        return self.applies is None or self.applies(config)
