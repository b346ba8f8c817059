"""Runs gates (inside a session) and the sessions in order (the main job), with a summary."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ci import audit, lint, package, report, secrets, testgate, workflow_files, workflows
from ci.config import Config
from ci.errors import CIError, ExitCode, UsageError
from ci.gates import GateContext, GateResult, GateStatus, apply_policy
from ci.report import read_report, write_report  # noqa: F401 - moved to ci.report; kept here
from ci.runner import Runner

GateFunction = Callable[[GateContext, Sequence[str]], GateResult]

GATES: Mapping[str, GateFunction] = {
    "lint": lambda ctx, _args: lint.run(ctx),
    "test": testgate.run,
    "secrets": secrets.run,
    "audit": audit.run,
    "package": package.gate,
    "workflows": lambda ctx, _args: workflows.run(ctx),
}


def default_sessions(config: Config) -> list[str]:
    """The nox sessions the main job runs, in order."""
    sessions = ["lint", f"test-{config.default_python}", "security", "package"]
    if workflow_files.workflow_paths(config.root):
        sessions.append("workflows")
    return sessions


def run_gate(name: str, ctx: GateContext, args: Sequence[str] = ()) -> GateResult:
    """Run gate ``name``, apply its policy, record and publish it (ci.report) and return it."""
    if name not in GATES:
        msg = f"unknown gate {name!r} (known: {', '.join(sorted(GATES))})"
        raise UsageError(msg)
    start = time.monotonic()
    try:
        result = GATES[name](ctx, args)
    except CIError as exc:
        if exc.exit_code is not ExitCode.TOOL_CRASHED:
            raise
        result = GateResult(
            gate=name,
            variant=ctx.python if name == "test" else "",
            status=GateStatus.ERROR,
            duration_s=time.monotonic() - start,
            summary=str(exc),
        )
    result = apply_policy(result, ctx.config.gate(name))
    report.record(result, ctx)
    return result


def gate_exit_code(result: GateResult) -> ExitCode:
    """The exit code of a gate command for ``result``."""
    if not result.blocking:
        return ExitCode.OK
    return ExitCode.TOOL_CRASHED if result.status is GateStatus.ERROR else ExitCode.GATE_FAILED


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionOutcome:
    """One nox session of the main job and the gate records it wrote."""

    session: str
    returncode: int
    duration_s: float
    results: tuple[GateResult, ...]

    def rows(self) -> list[GateResult]:
        """The session's gate records, or one error row when it wrote none."""
        if self.results:
            return list(self.results)
        status = GateStatus.PASSED if self.returncode == 0 else GateStatus.ERROR
        summary = (
            "" if self.returncode == 0 else f"nox exited {self.returncode} before the gate ran"
        )
        return [
            GateResult(
                gate=self.session, status=status, duration_s=self.duration_s, summary=summary
            )
        ]


def nox_command() -> list[str]:
    """How to start nox: this interpreter's nox module when it has one, else ``nox``."""
    if importlib.util.find_spec("nox") is not None:
        return [sys.executable, "-m", "nox"]
    return ["nox"]


def run_sessions(config: Config, runner: Runner, sessions: Sequence[str]) -> list[SessionOutcome]:
    """Run each nox session in order (all of them, even after a failure) and collect reports."""
    outcomes = []
    reports = config.reports_path()
    for session in sessions:
        print(f"::group::nox -s {session}" if _on_github() else f"==> nox -s {session}", flush=True)
        started = time.time_ns()
        done = runner.run([*nox_command(), "-s", session], cwd=config.root, stream=True)
        if _on_github():
            print("::endgroup::", flush=True)
        outcomes.append(
            SessionOutcome(
                session=session,
                returncode=done.returncode,
                duration_s=done.duration_s,
                results=tuple(_reports_since(reports, started)),
            )
        )
    return outcomes


def _on_github() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _reports_since(reports: Path, started_ns: int) -> list[GateResult]:
    if not reports.is_dir():
        return []
    found = []
    for path in sorted(reports.glob("*.json")):
        if path.name == "run.json" or path.stat().st_mtime_ns < started_ns:
            continue
        try:
            found.append(read_report(path))
        except (OSError, ValueError, KeyError):
            continue
    return found


def render_summary(outcomes: Sequence[SessionOutcome]) -> str:
    """The summary table: gate, result, mode, duration, summary."""
    rows = [row for outcome in outcomes for row in outcome.rows()]
    width = max([len(r.id) for r in rows] + [4])
    lines = [f"{'gate':<{width}}  {'result':<7}  {'mode':<8}  {'time':>7}  summary"]
    for row in rows:
        lines.append(
            f"{row.id:<{width}}  {row.status.value:<7}  {row.mode.value:<8}  "
            f"{row.duration_s:>6.1f}s  {row.summary}"
        )
    return "\n".join(lines)


def pipeline_exit_code(outcomes: Sequence[SessionOutcome]) -> ExitCode:
    """1 if any required gate failed, 6 if one only crashed, 0 otherwise."""
    rows = [row for outcome in outcomes for row in outcome.rows()]
    if any(r.blocking and r.status is GateStatus.FAILED for r in rows):
        return ExitCode.GATE_FAILED
    if any(r.blocking for r in rows):
        return ExitCode.TOOL_CRASHED
    return ExitCode.OK
