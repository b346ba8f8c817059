"""The dry run of the workflows: which jobs an event and ref start, in what order, on which Pythons.

Pure: parsed workflow files and an event in, a Plan out. Branch and tag filters follow
GitHub's filter patterns (``*`` stops at ``/``, ``**`` does not, ``?``/``+`` repeat the
character before, ``[a-z]`` ranges, ``!`` negates and the last matching pattern wins).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ci.core.errors import UsageError
from ci.github import expressions
from ci.github.workflow_files import WorkflowFile, find_cycle, needs_of

EVENTS = ("push", "pull_request", "tag", "schedule", "workflow_dispatch")
PYTHON_KEYS = ("python", "python-version", "python_version", "py")
_MATRIX_REF = re.compile(r"^\$\{\{\s*matrix\.([\w-]+)\s*\}\}$")
# a matrix a job output holds: `matrix: ${{ fromJSON(needs.plan.outputs.gates) }}`
_MATRIX_OUTPUT = re.compile(
    r"^\$\{\{\s*fromJSON\(\s*needs\.[\w-]+\.outputs\.([\w-]+)\s*\)\s*\}\}$", re.IGNORECASE
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """What happened: the workflow event name and the full ref it concerns."""

    name: str
    ref: str

    @property
    def ref_type(self) -> str:
        """``tag`` or ``branch``."""
        return "tag" if self.ref.startswith("refs/tags/") else "branch"

    @property
    def ref_name(self) -> str:
        """The branch or tag name without ``refs/heads/`` or ``refs/tags/``."""
        return self.ref.removeprefix("refs/tags/").removeprefix("refs/heads/")

    def context(self) -> dict[str, object]:
        """What ``if:`` expressions may know about this event before the run."""
        pr = self.name in {"pull_request", "pull_request_target"}
        return {
            "github.event_name": self.name,
            "github.ref": "refs/pull/1/merge" if pr else self.ref,
            "github.ref_name": "1/merge" if pr else self.ref_name,
            "github.ref_type": "branch" if pr else self.ref_type,
            "github.base_ref": self.ref_name if pr else "",
        }


def event_for(kind: str, ref: str | None, *, version: str = "") -> Event:
    """The Event for a CLI ``--event``/``--ref`` pair (``tag`` is a push of ``refs/tags/REF``)."""
    if kind not in EVENTS:
        msg = f"unknown event {kind!r}; use one of {', '.join(EVENTS)}"
        raise UsageError(msg)
    if kind == "tag":
        name = ref or (f"v{version}" if version else "")
        if not name:
            msg = "--event tag needs --ref TAG (there is no project version to default to)"
            raise UsageError(msg)
        full = name if name.startswith("refs/") else f"refs/tags/{name}"
        if not full.startswith("refs/tags/"):
            msg = f"--event tag needs a tag, not {name!r}"
            raise UsageError(msg)
        return Event(name="push", ref=full)
    name = ref or "main"
    return Event(name=kind, ref=name if name.startswith("refs/") else f"refs/heads/{name}")


@dataclass(frozen=True, slots=True, kw_only=True)
class JobPlan:
    """One job: whether it runs, why not, its stage, what it needs, its Pythons."""

    id: str
    name: str
    runs: bool
    stage: int
    needs: tuple[str, ...] = ()
    pythons: tuple[str, ...] = ()
    matrix_size: int = 1
    shards: tuple[str, ...] = ()  # test shards (matrix ``shard`` entries), e.g. "3.12 1/2"
    environment: str | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "id": self.id,
            "name": self.name,
            "runs": self.runs,
            "stage": self.stage,
            "needs": list(self.needs),
            "pythons": list(self.pythons),
            "matrix_size": self.matrix_size,
            "shards": list(self.shards),
            "environment": self.environment,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowPlan:
    """One workflow: whether the event starts it (and why), and its jobs in order."""

    file: str
    name: str
    triggered: bool
    reason: str
    jobs: tuple[JobPlan, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "file": self.file,
            "name": self.name,
            "triggered": self.triggered,
            "reason": self.reason,
            "jobs": [job.to_dict() for job in self.jobs],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Every workflow's plan for one event."""

    event: Event
    workflows: tuple[WorkflowPlan, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "event": self.event.name,
            "ref": self.event.ref,
            "workflows": [w.to_dict() for w in self.workflows],
        }


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """GitHub's filter pattern as an anchored regex."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char in "?+" and out:
            out[-1] = f"(?:{out[-1]}){char}"
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = re.sub(r"[^A-Za-z0-9-]", "", pattern[i + 1 : end])
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


def matches(patterns: Sequence[str], name: str) -> bool:
    """True when ``name`` passes ``patterns``; a later ``!pattern`` overrides an earlier match."""
    matched = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if pattern_regex(pattern[1:] if negated else pattern).match(name):
            matched = not negated
    return matched


def _patterns(filters: Mapping[str, Any], key: str) -> list[str] | None:
    raw = filters.get(key)
    if raw is None:
        return None
    return [str(p) for p in raw] if isinstance(raw, list) else [str(raw)]


def _filter_verdict(filters: Mapping[str, Any], kind: str, name: str) -> tuple[bool, str]:
    """Apply ``branches``/``branches-ignore`` or ``tags``/``tags-ignore`` to ``name``."""
    include, exclude = _patterns(filters, kind), _patterns(filters, f"{kind}-ignore")
    other = "tags" if kind == "branches" else "branches"
    noun = "branch" if kind == "branches" else "tag"
    if include is None and exclude is None:
        if (
            _patterns(filters, other) is not None
            or _patterns(filters, f"{other}-ignore") is not None
        ):
            return False, f"the trigger filters only {other}, so no {noun} starts it"
        return True, f"no {kind} filter"
    if include is not None:
        ok = matches(include, name)
        verb = "matches" if ok else "does not match"
        return ok, f"{noun} {name} {verb} {kind} [{', '.join(include)}]"
    assert exclude is not None
    ignored = any(pattern_regex(p).match(name) for p in exclude)
    verb = "is ignored by" if ignored else "is not in"
    return not ignored, f"{noun} {name} {verb} {kind}-ignore [{', '.join(exclude)}]"


def triggered(workflow: WorkflowFile, event: Event) -> tuple[bool, str]:
    """Whether ``event`` starts ``workflow``, and the reason in words."""
    triggers = workflow.triggers
    names = [event.name]
    if event.name == "pull_request":
        names.append("pull_request_target")
    trigger = next((n for n in names if n in triggers), None)
    if trigger is None:
        listed = ", ".join(triggers) or "nothing"
        return False, f"it runs on {listed}, not {event.name}"
    filters = triggers[trigger]
    if not isinstance(filters, Mapping):
        return True, f"{trigger} without filters"
    if event.name == "push":
        kind = "tags" if event.ref_type == "tag" else "branches"
        ok, why = _filter_verdict(filters, kind, event.ref_name)
    elif trigger.startswith("pull_request"):
        ok, why = _filter_verdict(filters, "branches", event.ref_name)
        why = f"base {why}"
    else:
        ok, why = True, f"{trigger}"
    if ok and ("paths" in filters or "paths-ignore" in filters):
        why += "; its paths filter is not evaluated (assumed to match)"
    return ok, f"{trigger}: {why}"


def matrix_of(job: Mapping[str, Any], matrices: Mapping[str, Any] | None = None) -> object:
    """A job's matrix, with one that a job output holds looked up in ``matrices``.

    ``matrix: ${{ fromJSON(needs.J.outputs.NAME) }}`` is ``matrices[NAME]`` (what
    ``python -m ci plan --matrix`` would write), unknown (None) when it is not there.
    """
    strategy = job.get("strategy")
    matrix = strategy.get("matrix") if isinstance(strategy, Mapping) else None
    found = _MATRIX_OUTPUT.match(matrix) if isinstance(matrix, str) else None
    return (matrices or {}).get(found.group(1)) if found else matrix


def pythons_of(
    job: Mapping[str, Any], matrices: Mapping[str, Any] | None = None
) -> tuple[tuple[str, ...], int]:
    """The Python versions a job runs on (from its matrix or its setup steps), and matrix size."""
    matrix = matrix_of(job, matrices)
    axes: dict[str, list[str]] = {}
    size = 1
    if isinstance(matrix, Mapping):
        for key, values in matrix.items():
            if key in {"include", "exclude"} or not isinstance(values, list):
                continue
            axes[key] = [_version(v) for v in values]
            size *= max(len(values), 1)
        for extra in matrix.get("include") or []:
            if isinstance(extra, Mapping):
                for key, value in extra.items():
                    if key in PYTHON_KEYS and _version(value) not in axes.setdefault(key, []):
                        axes[key].append(_version(value))
                        size += 1
        if not any(
            isinstance(v, list) for k, v in matrix.items() if k not in {"include", "exclude"}
        ):
            size = max(len(matrix.get("include") or []), 1)  # only `include`: a job per entry
    found: list[str] = []
    steps = job.get("steps")
    for step in steps if isinstance(steps, list) else []:
        options = step.get("with") if isinstance(step, Mapping) else None
        value = options.get("python-version") if isinstance(options, Mapping) else None
        if value is None:
            continue
        ref = _MATRIX_REF.match(str(value))
        found += axes.get(ref.group(1), []) if ref else [_version(value)]
    if not found:
        found = next((axes[k] for k in PYTHON_KEYS if k in axes), [])
    return tuple(dict.fromkeys(found)), size


def shards_of(job: Mapping[str, Any], matrices: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The test shards a job's matrix runs: ``include`` entries with a ``shard``, as "3.12 1/2"."""
    matrix = matrix_of(job, matrices)
    include = matrix.get("include") if isinstance(matrix, Mapping) else None
    found = []
    for entry in include if isinstance(include, list) else []:
        if isinstance(entry, Mapping) and entry.get("shard"):
            python = next((_version(entry[k]) for k in PYTHON_KEYS if k in entry), "")
            found.append(f"{python} {entry['shard']}".strip())
    return tuple(found)


def _version(value: object) -> str:
    # YAML reads 3.10 as the float 3.1; workflows quote versions, but say what was meant
    return f"{value}" if not isinstance(value, float) else f"{value:g}"


def plan_workflow(
    workflow: WorkflowFile, event: Event, matrices: Mapping[str, Any] | None = None
) -> WorkflowPlan:
    """The plan of one workflow for ``event`` (``matrices``: see ``matrix_of``)."""
    name = str(workflow.data.get("name") or workflow.name)
    ok, reason = triggered(workflow, event)
    if not ok:
        return WorkflowPlan(file=workflow.rel, name=name, triggered=False, reason=reason)
    jobs = workflow.jobs
    graph = {job_id: [n for n in needs_of(job) if n in jobs] for job_id, job in jobs.items()}
    cycle = find_cycle(graph)
    if cycle:
        msg = f"{workflow.rel}: jobs depend on each other in a cycle: {' -> '.join(cycle)}"
        raise UsageError(msg)
    unknown = sorted({n for job in jobs.values() for n in needs_of(job) if n not in jobs})
    if unknown:
        msg = f"{workflow.rel}: a job needs {unknown[0]!r}, which is not a job; fix `needs:`"
        raise UsageError(msg)
    stages: dict[str, int] = {}
    planned: dict[str, JobPlan] = {}
    context = event.context()
    for job_id in _topological(graph):
        job = jobs[job_id] if isinstance(jobs[job_id], Mapping) else {}
        needs = tuple(graph[job_id])
        stages[job_id] = 1 + max((stages[n] for n in needs), default=0)
        runs, note = True, ""
        condition = job.get("if")
        skipped = [n for n in needs if not planned[n].runs]
        if skipped and not (
            isinstance(condition, str) and expressions.uses_status_function(condition)
        ):
            runs, note = False, f"skipped: needs {', '.join(skipped)}, which will not run"
        elif condition is not None:
            verdict = expressions.truthy(expressions.evaluate(str(condition), context))
            if verdict is False:
                runs, note = False, f"skipped: if: {expressions.strip_braces(str(condition))}"
            elif verdict is expressions.UNKNOWN:
                note = f"if: {expressions.strip_braces(str(condition))} (known only at run time)"
        pythons, size = pythons_of(job, matrices)
        environment = job.get("environment")
        if isinstance(environment, Mapping):
            environment = environment.get("name")
        planned[job_id] = JobPlan(
            id=job_id,
            name=str(job.get("name") or job_id),
            runs=runs,
            stage=stages[job_id],
            needs=needs,
            pythons=pythons,
            matrix_size=size,
            shards=shards_of(job, matrices),
            environment=str(environment) if environment else None,
            note=note,
        )
    ordered = sorted(planned.values(), key=lambda j: (j.stage, j.id))
    return WorkflowPlan(
        file=workflow.rel, name=name, triggered=True, reason=reason, jobs=tuple(ordered)
    )


def _topological(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """Job ids with every job after the jobs it needs (graph has no cycle)."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(node: str) -> None:
        if node in seen:
            return
        seen.add(node)
        for need in graph[node]:
            visit(need)
        done.append(node)

    for node in graph:
        visit(node)
    return done


def plan(
    workflows: Sequence[WorkflowFile], event: Event, matrices: Mapping[str, Any] | None = None
) -> Plan:
    """The plan of every workflow for ``event`` (``matrices``: see ``matrix_of``)."""
    return Plan(event=event, workflows=tuple(plan_workflow(w, event, matrices) for w in workflows))


def render(result: Plan) -> str:
    """The plan as text: each workflow, whether it runs and why, its jobs by stage."""
    event = result.event
    what = "into" if event.name == "pull_request" else "of"
    lines = [f"plan for {event.name} {what} {event.ref} (dry run, nothing is run)"]
    if not result.workflows:
        lines.append("  no workflows under .github/workflows/")
    for workflow in result.workflows:
        verdict = "runs" if workflow.triggered else "does not run"
        lines.append("")
        lines.append(f"{workflow.file} ({workflow.name}): {verdict} - {workflow.reason}")
        width = max([len(j.id) for j in workflow.jobs] + [4])
        for job in workflow.jobs:
            mark = " " if job.runs else "-"
            parts = [f"  {mark} {job.stage}. {job.id:<{width}}"]
            if job.pythons:
                matrix = f" (matrix of {job.matrix_size})" if job.matrix_size > 1 else ""
                parts.append(f"python {', '.join(job.pythons)}{matrix}")
            if job.shards:
                parts.append(f"test shards {', '.join(job.shards)}")
            if job.needs:
                parts.append(f"needs {', '.join(job.needs)}")
            if job.environment:
                parts.append(f"environment {job.environment}")
            if job.note:
                parts.append(job.note)
            lines.append("  ".join(parts))
    return "\n".join(lines)
