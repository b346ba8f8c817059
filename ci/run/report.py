"""The run report: gate records, ``run.json``, the step summary, annotations, and publishing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.core.clock import Clock
from ci.core.config import Config, Mode, state_dir
from ci.core.errors import UsageError
from ci.core.files import write_json
from ci.core.gate import GateContext, GateResult, GateStatus, context_name
from ci.core.http import HttpClient, Retry, UrllibClient
from ci.gates import registry
from ci.github.status import (
    DESCRIPTION_MAX,
    GitHubEnv,
    StatusUpdate,
    post_updates,
    shorten,
    update_for,
)
from ci.github.summary import append_step_summary
from ci.run import history, observe

RUN_REPORT = "run.json"
NOT_GATE_RECORDS = frozenset({RUN_REPORT, "coverage-baseline.json"})
MAX_ANNOTATIONS = 50  # GitHub shows only the first few per step; more is noise in the log
MAX_ROWS = 200  # finding rows per gate in the summary
ICONS = {
    GateStatus.PASSED: "✅",
    GateStatus.FAILED: "❌",
    GateStatus.ERROR: "💥",
    GateStatus.SKIPPED: "⏭️",
    GateStatus.CACHED: "♻️",
}


def write_report(result: GateResult, reports: Path) -> Path:
    """Write one gate's record to ``reports/<id>.json`` (atomic, schema-versioned)."""
    path = reports / f"{result.id}.json"
    write_json(path, result.to_dict())
    return path


def read_report(path: Path) -> GateResult:
    """Read a gate record written by ``write_report``."""
    return GateResult.from_dict(json.loads(path.read_text(encoding="utf-8")))


def gate_records(reports: Path, since_ns: int = 0) -> list[GateResult]:
    """Every gate record in ``reports/`` written at or after ``since_ns``, by id."""
    if not reports.is_dir():
        return []
    found = []
    for path in sorted(reports.glob("*.json")):
        if path.name in NOT_GATE_RECORDS:
            continue
        try:
            if path.stat().st_mtime_ns < since_ns:
                continue
            found.append(read_report(path))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a gate record (another tool's JSON) or being replaced right now
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class RunReport:
    """Every gate record of a run; ``bool`` is False when one of them blocks."""

    results: tuple[GateResult, ...]
    sha: str = ""
    run_url: str | None = None
    created: str = ""

    def __bool__(self) -> bool:
        """True unless a required gate failed or crashed."""
        return all(self.results)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (without the schema, which the writer adds)."""
        return {
            "status": "passed" if self else "failed",
            "sha": self.sha,
            "run_url": self.run_url,
            "created": self.created,
            "gates": [r.to_dict() for r in self.results],
        }


def write_run_report(reports: Path, github: GitHubEnv, clock: Clock) -> RunReport:
    """Aggregate every gate record in ``reports/`` into ``reports/run.json``."""
    run = RunReport(
        results=tuple(gate_records(reports)),
        sha=github.sha,
        run_url=github.run_url,
        created=clock.now().isoformat(timespec="seconds"),
    )
    write_json(reports / RUN_REPORT, run.to_dict())
    return run


def read_run_report(path: Path) -> RunReport:
    """Read ``run.json`` (or a single gate record); UsageError naming the file when unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if "gates" in data:
            results = tuple(GateResult.from_dict(g) for g in data["gates"])
            return RunReport(
                results=results,
                sha=str(data.get("sha") or ""),
                run_url=data.get("run_url"),
                created=str(data.get("created") or ""),
            )
        return RunReport(results=(GateResult.from_dict(data),))
    except FileNotFoundError:
        msg = f"{path} does not exist; run a gate first (python -m ci gate lint)"
        raise UsageError(msg) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"{path} is not a run report ({type(exc).__name__}: {exc}); rerun the gates"
        raise UsageError(msg) from None


# --- annotations -------------------------------------------------------------------------


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, **props: str | int | None) -> str:
    """One workflow command, e.g. ``::error file=a.py,line=3,title=lint F401::message``."""
    parts = [f"{key}={_escape_property(str(value))}" for key, value in props.items() if value]
    head = f"::{level} {','.join(parts)}" if parts else f"::{level}"
    return f"{head}::{_escape_data(message)}"


def annotation_lines(results: Sequence[GateResult], limit: int = MAX_ANNOTATIONS) -> list[str]:
    """Error annotations for findings (warnings for advisory gates), crashes and budgets."""
    lines: list[str] = []
    for result in results:
        level = "error" if result.mode is Mode.REQUIRED else "warning"
        if result.status is GateStatus.ERROR:
            lines.append(annotation(level, result.summary, title=f"{result.id} crashed"))
        for finding in result.findings:
            if finding.waived:
                continue
            lines.append(
                annotation(
                    "warning" if finding.advisory else level,
                    finding.message,
                    file=finding.file,
                    line=finding.line,
                    title=f"{result.id}: {finding.rule}",
                )
            )
        lines += [annotation("warning", w, title=f"{result.id}") for w in result.warnings]
    if len(lines) > limit:
        more = len(lines) - limit
        lines = lines[:limit]
        lines.append(annotation("notice", f"{more} more finding(s) in the step summary"))
    return lines


@contextlib.contextmanager
def group(title: str, env: Mapping[str, str], say: Callable[[str], None] = print) -> Iterator[None]:
    """Fold the output printed inside into a collapsible ``::group::`` on GitHub."""
    on_github = env.get("GITHUB_ACTIONS") == "true"
    if on_github:
        say(f"::group::{title}")
    try:
        yield
    finally:
        if on_github:
            say("::endgroup::")


# --- step summary ------------------------------------------------------------------------


def _cell(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return flat.replace("|", "\\|")


def _code(text: str) -> str:
    return "`" + _cell(text).replace("`", "'") + "`" if text else ""


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _finding_rows(result: GateResult) -> tuple[list[str], list[list[str]]]:
    """Columns and rows fitting the gate: tests, secrets and vulnerabilities read differently."""
    findings = [f for f in result.findings if not f.waived]
    if result.gate == "test":
        rows = []
        for f in findings:
            name, _, message = f.message.partition(": ")
            rows.append([_code(name), message] if f.rule == "test" else [f.rule, f.message])
        return ["test", "message"], rows
    if result.gate == "secrets":
        return ["file", "type"], [[_code(f.location()), f.rule] for f in findings]
    if result.gate == "audit":
        return ["id", "severity", "package and fix"], [
            [f.rule, f.severity or "unknown", f.message] for f in findings
        ]
    return ["where", "rule", "message"], [
        [_code(f.location()), f.rule, f.message] for f in findings
    ]


def _budget(config: Config | None, result: GateResult) -> str:
    if config is None:
        return ""
    budget = config.gate(result.gate).budget_s
    return "" if budget is None else f"{budget:g} s"


@dataclass(frozen=True, slots=True, kw_only=True)
class SummaryExtras:
    """What the summary adds to the records: slowest tests per gate, recent median durations."""

    slowest: Mapping[str, Sequence[observe.SlowTest]]
    medians: Mapping[str, float]


def gather_extras(results: Sequence[GateResult], root: Path, state: Path) -> SummaryExtras:
    """Read the junit files the records point to, and the durations history."""
    slowest = {}
    for result in results:
        for artifact in result.artifacts:
            if Path(artifact).name.startswith("junit") and artifact.endswith(".xml"):
                tests = observe.slowest_tests(root / artifact)
                if tests:
                    slowest[result.id] = tests
    rows = observe.read_durations(state)
    medians = {}
    for result in results:
        median = observe.median_duration(rows, result.id)
        if median is not None:
            medians[result.id] = median
    return SummaryExtras(slowest=slowest, medians=medians)


def render_summary(
    results: Sequence[GateResult],
    *,
    title: str,
    config: Config | None = None,
    extras: SummaryExtras | None = None,
    run_url: str | None = None,
) -> str:
    """The step summary Markdown: a table of gates, then what failed, warnings, slow tests."""
    extras = extras or SummaryExtras(slowest={}, medians={})
    ok = all(results)
    lines = [f"## {'✅' if ok else '❌'} {title}", ""]
    rows = []
    for r in results:
        median = extras.medians.get(r.id)
        rows.append(
            [
                f"`{r.id}`",
                f"{ICONS.get(r.status, '')} {r.status.value}",
                r.mode.value,
                f"{r.duration_s:.1f} s" + (f" (median {median:.1f} s)" if median else ""),
                _budget(config, r),
                r.summary,
            ]
        )
    lines += _table(["gate", "result", "mode", "time", "budget", "summary"], rows)
    failing = [r for r in results if r.status in {GateStatus.FAILED, GateStatus.ERROR}]
    if failing:
        lines += ["", "### Failing steps"]
    for r in failing:
        lines += ["", f"#### {r.id} ({r.mode.value}): {_cell(r.summary)}"]
        header, body = _finding_rows(r)
        if body:
            lines += _table(header, body[:MAX_ROWS])
            if len(body) > MAX_ROWS:
                lines.append(f"_… and {len(body) - MAX_ROWS} more; see reports/{r.id}.json_")
    warnings = [(r.id, w) for r in results for w in r.warnings]
    if warnings:
        lines += ["", "### Warnings", *[f"- `{gate}`: {_cell(w)}" for gate, w in warnings]]
    for gate_id, tests in extras.slowest.items():
        lines += ["", f"### Slowest tests ({gate_id})"]
        lines += _table(["test", "time"], [[_code(t.name), f"{t.seconds:.2f} s"] for t in tests])
    if run_url:
        lines += ["", f"[Workflow run]({run_url})"]
    return "\n".join(lines) + "\n"


# --- publishing --------------------------------------------------------------------------


def publish(
    results: Sequence[GateResult],
    *,
    config: Config,
    github: GitHubEnv,
    client: HttpClient,
    extras: SummaryExtras | None = None,
    retry: Retry | None = None,
    title: str = "noxgate",
    sha: str = "",
    annotate: bool = True,
    say: Callable[[str], None] = print,
) -> int:
    """Print annotations, append the step summary and post one status per gate; best-effort."""
    if annotate:
        for line in annotation_lines(results):
            say(line)
    if github.step_summary:
        text = render_summary(
            results, title=title, config=config, extras=extras, run_url=github.run_url
        )
        try:
            if not append_step_summary(Path(github.step_summary), text):
                say("warning: the step summary is full (1 MiB); this gate's summary was left out")
        except OSError as exc:
            say(f"warning: could not write the step summary ({exc})")
    updates = [update_for(r, config.default_python, github.run_url) for r in results]
    return post_updates(github, updates, client, retry=retry, sha=sha, say=say)


def record(
    result: GateResult,
    ctx: GateContext,
    *,
    client: HttpClient | None = None,
    retry: Retry | None = None,
) -> None:
    """The gate hook: its record, ``run.json``, duration and history; on GitHub, publish it."""
    reports = ctx.reports
    github = GitHubEnv.from_env(ctx.env)
    state = state_dir(ctx.root, ctx.env)
    write_report(result, reports)
    write_run_report(reports, github, ctx.clock)
    extras = gather_extras([result], ctx.root, state) if github.actions else None
    observe.record_duration(state, result, ctx.clock.now(), github.sha)
    history.record_gate(result, ctx)
    if github.actions:
        publish(
            [result],
            config=ctx.config,
            github=github,
            client=client or UrllibClient(),
            extras=extras,
            retry=retry,
            title=f"{context_name(result.gate, result.variant, ctx.config.default_python)}: "
            f"{result.status.value}",
        )


def announce(
    gate: str,
    ctx: GateContext,
    *,
    state: str = "pending",
    description: str = "running",
    client: HttpClient | None = None,
    retry: Retry | None = None,
) -> None:
    """On GitHub with a token, post a gate's status before its result exists (else silent)."""
    github = GitHubEnv.from_env(ctx.env)
    if not github.actions or github.missing_for_statuses():
        return  # record() prints the one notice about it
    update = StatusUpdate(
        context=registry.get(ctx.config, gate).context(ctx.config, ctx.python),
        state=state,
        description=shorten(description, DESCRIPTION_MAX),
        target_url=github.run_url,
    )
    post_updates(github, [update], client or UrllibClient(), retry=retry)
