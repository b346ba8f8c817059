"""The workflows gate: zizmor (offline), GitHub's workflow schema, and the bundle's own rules."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ci.core.config import Config
from ci.core.errors import ToolError
from ci.core.gate import Finding, Gate, GateContext, GateInputs, GateResult, GateStatus
from ci.core.runner import Completed
from ci.github import workflow_files
from ci.github.workflow_files import WorkflowFile, WorkflowSyntaxError, find_cycle, needs_of

SHA_PIN = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
DOCKER_PIN = re.compile(r"^docker://[^@\s]+@sha256:[0-9a-f]{64}$")
READ_ONLY = {"read", "none"}
# expressions an attacker can fill from a pull request, an issue, a comment or a branch name
UNTRUSTED_EXPR = re.compile(r"\$\{\{[^}]*?\b(github\.event\.[\w.\-\[\]'\"*]+|github\.head_ref)")
PR_HEAD_REF = re.compile(r"github\.event\.pull_request\.head|github\.head_ref|refs/pull/")
# artifact attestations sign with an OIDC token and need no environment (actions/attest-*)
ATTEST_ACTIONS = {"actions/attest-build-provenance", "actions/attest", "actions/attest-sbom"}
# actions that run actions/attest-build-provenance inside when an input says so
ATTEST_INPUTS = {"hynek/build-and-inspect-python-package": "attest-build-provenance-github"}
# what uploads to a package index: the trusted-publishing action or a publish command
PUBLISH_ACTIONS = {"pypa/gh-action-pypi-publish"}
PUBLISH_COMMAND = re.compile(
    r"\b(uv publish|twine upload|flit publish|hatch publish|poetry publish|pdm publish"
    r"|invoke release|-m ci (publish|release))\b"
)
SCHEMA = "vendor.github-workflows"
# zizmor's documented exit statuses: 0 no findings, 1 error, 10-14 findings (10 + the highest
# severity found: unknown, informational, low, medium, high); all others are reserved
ZIZMOR_FINDING_CODES = {10, 11, 12, 13, 14}
# the bundle's rules that mean what a zizmor audit means: where both report the same file
# and line, zizmor's finding stays (it names the bundle's) and the issue is counted once
SAME_AS_ZIZMOR = {
    "pin": "zizmor/unpinned-uses",
    "permissions": "zizmor/excessive-permissions",
    "injection": "zizmor/template-injection",
}


def run(ctx: GateContext, args: Sequence[str] = ()) -> GateResult:
    """Check every workflow with the bundle's rules, the workflow schema and zizmor."""
    del args  # every workflow is checked
    start = time.monotonic()
    paths = workflow_files.workflow_paths(ctx.root)
    if not paths:
        return GateResult(
            gate="workflows",
            status=GateStatus.SKIPPED,
            duration_s=time.monotonic() - start,
            summary=f"no workflows under {workflow_files.WORKFLOWS_DIR.as_posix()}/",
        )
    findings: list[Finding] = []
    parsed: list[WorkflowFile] = []
    for path in paths:
        try:
            parsed.append(workflow_files.load(path, ctx.root))
        except WorkflowSyntaxError as exc:
            findings.append(Finding(rule="yaml", message=exc.problem, file=exc.file, line=exc.line))
    for workflow in parsed:
        findings += check(workflow)
    rels = [p.relative_to(ctx.root).as_posix() for p in paths]
    by_rel = {w.rel: w for w in parsed}
    schema = ctx.runner.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", SCHEMA, "-o", "json", *rels],
        cwd=ctx.root,
    )
    yaml_errors = {f.file for f in findings if f.rule == "yaml" and f.file}
    invalid = schema_findings(schema, by_rel, ctx.root, reported=yaml_errors)
    findings += invalid
    # zizmor skips files that do not parse or match the schema (and fails when none is left),
    # so it audits only the valid ones; the others are reported above already
    valid = [rel for rel in by_rel if rel not in {f.file for f in invalid}]
    if valid:
        zizmor = ctx.runner.run(
            [_zizmor(ctx), "--offline", "--format=json", "--no-progress", "--color=never", *valid],
            cwd=ctx.root,
        )
        findings = merge(findings, zizmor_findings(zizmor))
    findings.sort(key=lambda f: (f.file or "", f.line or 0, f.rule))
    for finding in findings:
        print(describe(finding))
    summary = f"{len(findings)} finding(s) in {len(paths)} workflow(s)"
    return GateResult(
        gate="workflows",
        status=GateStatus.FAILED if findings else GateStatus.PASSED,
        duration_s=time.monotonic() - start,
        summary=summary if findings else f"{len(paths)} workflow(s) clean",
        findings=tuple(findings),
    )


def merge(own: Sequence[Finding], zizmor: Sequence[Finding]) -> list[Finding]:
    """``own`` and ``zizmor``'s findings, each issue once: zizmor's where both report it.

    A bundle finding whose rule means what a zizmor audit means (``SAME_AS_ZIZMOR``) at a
    file and line where zizmor reports that audit is dropped; zizmor's finding there
    carries its rule and message, so nothing the bundle said is lost.
    """
    places: dict[tuple[str | None, int | None, str], list[int]] = {}
    for index, finding in enumerate(zizmor):
        places.setdefault((finding.file, finding.line, finding.rule), []).append(index)
    notes: dict[int, list[str]] = {}
    kept = []
    for finding in own:
        same = SAME_AS_ZIZMOR.get(finding.rule)
        at = places.get((finding.file, finding.line, same or ""), [])
        if not at:
            kept.append(finding)
            continue
        # one bundle finding per zizmor finding there; any more join the last one
        taken = [i for i in at if i in notes]
        free = [i for i in at if i not in notes]
        target = free[0] if free else taken[-1]
        notes.setdefault(target, []).append(f"{finding.rule}: {finding.message}")
    merged = [
        replace(f, message=f"{f.message} (also the bundle's {'; '.join(notes[i])})")
        if i in notes
        else f
        for i, f in enumerate(zizmor)
    ]
    return [*kept, *merged]


def describe(finding: Finding) -> str:
    """One line per finding: ``file:line: rule message`` (ci.run.report adds GitHub annotations)."""
    return f"{finding.location()}: {finding.rule} {finding.message}"


def check(workflow: WorkflowFile) -> list[Finding]:
    """The bundle's own rules over one parsed workflow (pure)."""
    findings = [*_pins(workflow), *_permissions(workflow), *_untrusted_in_run(workflow)]
    findings += _pr_target_checkout(workflow)
    findings += _needs(workflow)
    return findings


def _finding(workflow: WorkflowFile, rule: str, message: str, *path: str | int) -> Finding:
    return Finding(rule=rule, message=message, file=workflow.rel, line=workflow.line(*path))


def _steps(workflow: WorkflowFile) -> Iterator[tuple[str, int, Mapping[str, Any]]]:
    for job_id, job in workflow.jobs.items():
        steps = job.get("steps") if isinstance(job, Mapping) else None
        for index, step in enumerate(steps if isinstance(steps, list) else []):
            if isinstance(step, Mapping):
                yield job_id, index, step


def _pins(workflow: WorkflowFile) -> Iterator[Finding]:
    uses: list[tuple[str, tuple[str | int, ...]]] = []
    for job_id, job in workflow.jobs.items():
        if isinstance(job, Mapping) and isinstance(job.get("uses"), str):
            uses.append((job["uses"], ("jobs", job_id, "uses")))
    for job_id, index, step in _steps(workflow):
        if isinstance(step.get("uses"), str):
            uses.append((step["uses"], ("jobs", job_id, "steps", index, "uses")))
    for ref, path in uses:
        if ref.startswith("./"):
            continue  # an action or workflow of this repository, pinned by the checkout
        if ref.startswith("docker://"):
            if not DOCKER_PIN.match(ref):
                yield _finding(
                    workflow, "pin", f"{ref} is not pinned to an image digest (@sha256:...)", *path
                )
            continue
        if not SHA_PIN.match(ref):
            yield _finding(
                workflow,
                "pin",
                f"{ref} is not pinned to a full commit SHA; use owner/repo@<40-hex sha> # vX.Y.Z",
                *path,
            )
        elif "#" not in workflow.source_line(workflow.line(*path)):
            yield _finding(
                workflow,
                "pin-comment",
                f"{ref} has no version comment; add `# vX.Y.Z` so updates are reviewable",
                *path,
            )


def _writes(permissions: object) -> list[str]:
    """The scopes ``permissions`` grants write access to (``*`` for write-all)."""
    if permissions == "write-all":
        return ["*"]
    if isinstance(permissions, Mapping):
        return sorted(str(k) for k, v in permissions.items() if v not in READ_ONLY)
    return []


def _permissions(workflow: WorkflowFile) -> Iterator[Finding]:
    top = workflow.data.get("permissions")
    if "permissions" not in workflow.data:
        yield _finding(
            workflow,
            "permissions",
            "no top-level `permissions:`; the token then gets the repository default (often "
            "write); add `permissions: {contents: read}`",
        )
    elif top not in ({}, "read-all") and not isinstance(top, Mapping):
        yield _finding(workflow, "permissions", f"top-level permissions {top!r}", "permissions")
    elif scopes := _writes(top):
        yield _finding(
            workflow,
            "permissions",
            f"top-level permissions grant write ({', '.join(scopes)}); keep the top level "
            "read-only and grant write to the one job that needs it",
            "permissions",
        )
    for job_id, job in workflow.jobs.items():
        if not isinstance(job, Mapping):
            continue
        perms = job.get("permissions")
        if perms == "write-all":
            yield _finding(
                workflow,
                "permissions",
                f"job {job_id} has write-all; list the scopes it needs",
                "jobs",
                job_id,
                "permissions",
            )
        if (
            isinstance(perms, Mapping)
            and perms.get("id-token") == "write"
            and "environment" not in job
            and not _attests_only(job, perms)
        ):
            yield _finding(
                workflow,
                "permissions",
                f"job {job_id} can mint OIDC tokens (id-token: write) without an `environment:`; "
                "run it in a protected environment (a job that only attests its build, with "
                "actions/attest-build-provenance and `attestations: write`, needs none)",
                "jobs",
                job_id,
                "permissions",
                "id-token",
            )


def _attests_only(job: Mapping[str, Any], perms: Mapping[str, Any]) -> bool:
    """An attestation job (attest action, ``attestations: write``) that publishes nothing.

    Such a job needs its OIDC token only to sign provenance; a job that also uploads to an
    index must still run in a protected environment.
    """
    steps = [s for s in job.get("steps") or [] if isinstance(s, Mapping)]
    actions = {str(s.get("uses", "")).split("@", 1)[0] for s in steps}
    scripts = " ".join(str(s.get("run", "")) for s in steps)
    return (
        perms.get("attestations") == "write"
        and any(_attests(step) for step in steps)
        and not actions & PUBLISH_ACTIONS
        and PUBLISH_COMMAND.search(scripts) is None
    )


def _attests(step: Mapping[str, Any]) -> bool:
    action = str(step.get("uses", "")).split("@", 1)[0]
    if action in ATTEST_ACTIONS:
        return True
    options = step.get("with")
    flag = (
        options.get(ATTEST_INPUTS[action])
        if action in ATTEST_INPUTS and isinstance(options, Mapping)
        else None
    )
    return str(flag).lower() == "true"


def _untrusted_in_run(workflow: WorkflowFile) -> Iterator[Finding]:
    for job_id, index, step in _steps(workflow):
        script = step.get("run")
        if not isinstance(script, str):
            continue
        path = ("jobs", job_id, "steps", index, "run")
        first = workflow.content_lines.get(path, workflow.line(*path))
        for match in UNTRUSTED_EXPR.finditer(script):
            line = first + script.count("\n", 0, match.start())
            yield Finding(
                rule="injection",
                message=f"`{match.group(0)}...}}}}` inside run: can inject shell code; pass it "
                "through `env:` and use the variable",
                file=workflow.rel,
                line=line,
            )


def _pr_target_checkout(workflow: WorkflowFile) -> Iterator[Finding]:
    if "pull_request_target" not in workflow.triggers:
        return
    for job_id, index, step in _steps(workflow):
        uses = step.get("uses")
        if not (isinstance(uses, str) and uses.split("@")[0] == "actions/checkout"):
            continue
        options = step.get("with")
        ref = str(options.get("ref", "")) if isinstance(options, Mapping) else ""
        repo = str(options.get("repository", "")) if isinstance(options, Mapping) else ""
        if PR_HEAD_REF.search(ref) or "pull_request.head.repo" in repo:
            yield _finding(
                workflow,
                "pr-target-checkout",
                "pull_request_target checks out the pull request's head: untrusted code runs "
                "with a write token and secrets; use pull_request instead",
                "jobs",
                job_id,
                "steps",
                index,
            )


def _needs(workflow: WorkflowFile) -> Iterator[Finding]:
    jobs = workflow.jobs
    for job_id, job in jobs.items():
        for need in needs_of(job):
            if need not in jobs:
                yield _finding(
                    workflow,
                    "needs",
                    f"job {job_id} needs {need!r}, which is not a job",
                    "jobs",
                    job_id,
                    "needs",
                )
    cycle = find_cycle({j: [n for n in needs_of(job) if n in jobs] for j, job in jobs.items()})
    if cycle:
        yield _finding(
            workflow,
            "needs",
            f"jobs depend on each other in a cycle: {' -> '.join(cycle)}",
            "jobs",
            cycle[0],
        )


def schema_findings(
    done: Completed,
    workflows: Mapping[str, WorkflowFile],
    root: Path,
    reported: Collection[str] = (),
) -> list[Finding]:
    """Findings from ``check-jsonschema -o json``; ToolError when it could not run.

    A file it could not parse is a finding of the YAML check already when that check
    placed it (``reported``); one the YAML check read is a parse the gate cannot place,
    so the schema was never checked there: a ToolError, never a pass.
    """
    if done.returncode not in {0, 1}:
        msg = f"check-jsonschema crashed with exit status {done.returncode}: {_error_line(done)}"
        raise ToolError(msg)
    try:
        report = json.loads(done.stdout or "{}")
    except json.JSONDecodeError as exc:
        msg = f"check-jsonschema printed output that is not JSON ({exc})"
        raise ToolError(msg) from None
    findings = []
    for error in report.get("errors", []):
        rel = _relative(str(error.get("filename", "")), root)
        best = error.get("best_deep_match") or error.get("best_match") or error
        json_path = str(best.get("path") or error.get("path", "$"))
        workflow = workflows.get(rel)
        message = f"{json_path}: {best.get('message') or error.get('message')}"
        path = _json_path(json_path)
        if unexpected := re.search(r"\('([^']+)' was unexpected\)", message):
            path = (*path, unexpected.group(1))  # point at the offending key itself
        line = workflow.line(*path) if workflow else None
        findings.append(Finding(rule="schema", message=message, file=rel, line=line))
    unplaced = [
        error
        for error in report.get("parse_errors", [])
        if _relative(str(error.get("filename", "")), root) not in reported
    ]
    if unplaced:
        first = unplaced[0]
        name = _relative(str(first.get("filename", "")), root) or "a workflow"
        msg = (
            f"check-jsonschema could not parse {name} ({first.get('message', 'no message')}) "
            "though the YAML check read it; run `check-jsonschema --builtin-schema "
            f"{SCHEMA} {name}` to see why"
        )
        raise ToolError(msg)
    if done.returncode != 0 and not findings and not report.get("parse_errors"):
        msg = (
            f"check-jsonschema exited with status {done.returncode} but reported no error the "
            f"gate could read: {_error_line(done)}"
        )
        raise ToolError(msg)
    return findings


def _json_path(text: str) -> tuple[str | int, ...]:
    """``$.jobs.a.steps[0]`` -> ``("jobs", "a", "steps", 0)``."""
    parts: list[str | int] = []
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", text.removeprefix("$")):
        parts.append(int(index) if index else name)
    return tuple(parts)


def _relative(name: str, root: Path) -> str:
    path = Path(name)
    if path.is_absolute() and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return path.as_posix()


def zizmor_findings(done: Completed) -> list[Finding]:
    """Findings from ``zizmor --format=json``; ToolError when it crashed."""
    if done.returncode != 0 and done.returncode not in ZIZMOR_FINDING_CODES:
        msg = f"zizmor crashed with exit status {done.returncode}: {_error_line(done)}"
        raise ToolError(msg)
    try:
        items = json.loads(done.stdout or "[]")
    except json.JSONDecodeError as exc:
        msg = f"zizmor printed output that is not JSON ({exc})"
        raise ToolError(msg) from None
    findings = []
    for item in items:
        if item.get("ignored"):
            continue
        file, line = _zizmor_location(item.get("locations", []))
        severity = str(item.get("determinations", {}).get("severity", "")).lower() or None
        findings.append(
            Finding(
                rule=f"zizmor/{item.get('ident', 'unknown')}",
                message=str(item.get("desc", "")),
                file=file,
                line=line,
                severity=severity,
            )
        )
    if done.returncode in ZIZMOR_FINDING_CODES and not findings:
        msg = (
            f"zizmor exited with status {done.returncode} (findings) but reported none the gate "
            "could read; run zizmor on the workflows to see them"
        )
        raise ToolError(msg)
    return findings


def _zizmor_location(locations: Sequence[Mapping[str, Any]]) -> tuple[str | None, int | None]:
    """The primary location's file and 1-based line."""
    chosen = next(
        (loc for loc in locations if loc.get("symbolic", {}).get("kind") == "Primary"),
        locations[0] if locations else None,
    )
    if chosen is None:
        return None, None
    key = chosen.get("symbolic", {}).get("key", {})
    local = key.get("Local", {}) if isinstance(key, Mapping) else {}
    file = local.get("verbatim_path") or local.get("given_path")
    row = chosen.get("concrete", {}).get("location", {}).get("start_point", {}).get("row")
    return (str(file) if file else None), (int(row) + 1 if isinstance(row, int) else None)


def _error_line(done: Completed) -> str:
    """The tool's own error line (``error: ...``), else its last line of output."""
    lines = [line.strip() for line in done.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("error:", "fatal:", "Error:"))]
    return (errors or lines or ["no output"])[-1 if not errors else 0]


def _zizmor(ctx: GateContext) -> str:
    """The zizmor binary from this interpreter's environment (it ships a binary, no module)."""
    beside = Path(sys.executable).parent / "zizmor"
    if beside.exists():
        return str(beside)
    found = ctx.runner.which("zizmor")
    if found is None:
        msg = "zizmor was not found; run `uv sync` (it is in the `workflows` group)"
        raise ToolError(msg)
    return found


def has_workflows(config: Config) -> bool:
    """True when the project has GitHub workflows to check."""
    return bool(workflow_files.workflow_paths(config.root))


GATE = Gate(
    name="workflows",
    session="workflows",
    doc="Workflows: zizmor (offline), GitHub's workflow schema and the bundle's own rules.",
    run=run,
    group="workflows",
    inputs=GateInputs(tools=("zizmor", "check-jsonschema")),
    requires=("zizmor>=1.16", "check-jsonschema>=0.34", "PyYAML>=6"),
    applies=has_workflows,
)
