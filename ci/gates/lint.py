"""The lint gate: ``ruff check``, ``ruff format --check``, (if enabled) mypy, and the families."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ci.core.errors import ToolError
from ci.core.gate import Finding, Gate, GateContext, GateInputs, GateResult, GateStatus
from ci.core.runner import Completed
from ci.gates import imports, lint_families, lint_scope
from ci.testing import faults

_RUFF_USAGE = 2  # ruff's exit status for a flag it does not know
_FORMAT_PREVIEW_ONLY = "requires preview mode"  # ruff's warning when it ignores the JSON flag
# file:line, then the column and the error's end where the project's mypy config shows them
_MYPY_LINE = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>\d+)(?::\d+){0,3}: error: (?P<msg>.*?)"
    r"(?:  \[(?P<code>[\w-]+)\])?$"
)


def run(ctx: GateContext, args: Sequence[str] = ()) -> GateResult:
    """Run the linters over the project and turn their output into findings."""
    del args  # the linters check the whole project, whatever the session was given
    start = time.monotonic()
    python = [sys.executable, "-m"]
    findings: list[Finding] = []
    # ruff reads its own config over "."; the gate narrows it only to what the project's own
    # ruff hook checks (its file types, its files:/exclude: regexes): never wider
    scope = lint_scope.read(ctx.root)
    narrow = _excludes(scope.ruff_excludes())
    targets = _ruff_targets(ctx, scope, narrow, format_=False)
    # fault injection: CI_INJECT_FAULT=lint adds a planted file with a finding
    with faults.lint_paths(ctx.env) as planted:
        if targets or planted:
            # --no-fix: a project's `fix = true` would edit the tree and report nothing
            argv = [*python, "ruff", "check", "--no-fix", "--output-format=json", *narrow]
            check = ctx.runner.run([*argv, *targets, *planted], cwd=ctx.root)
            _expect(check, "ruff check")
            findings += _read(check, "ruff check", ruff_findings(check.stdout, ctx.root))
    # `ruff format` takes no --extend-exclude: where file types are left out, it gets the
    # files `ruff check --show-files` lists with them left out
    narrow = _excludes(scope.ruff_excludes(format_=True))
    targets = _ruff_targets(ctx, scope, narrow, format_=True)
    if targets:
        findings += _ruff_format(ctx, targets)
    if ctx.config.gate("lint").mypy:
        # plain text whatever FORCE_COLOR (passed through to gates) or the config asks for
        mypy = ctx.runner.run([*python, "mypy", "--no-color-output"], cwd=ctx.root)
        _expect(mypy, "mypy")
        findings += _read(mypy, "mypy", mypy_findings(mypy.stdout))
    findings += imports.check(ctx)  # import-linter contracts, where the project has them
    families = lint_families.check(ctx)  # shell, YAML, JSON, TOML, Dockerfiles, workflows
    findings += families.findings
    for finding in findings:
        advisory = " (advisory)" if finding.advisory else ""
        print(f"{finding.location()}: {finding.rule} {finding.message}{advisory}")
    blocking = [f for f in findings if not f.advisory]
    status = GateStatus.FAILED if blocking else GateStatus.PASSED
    summary = f"{len(blocking)} finding(s)" if blocking else "clean"
    if len(blocking) < len(findings):
        summary += f", {len(findings) - len(blocking)} advisory"
    if families.note:
        print(f"lint families: {families.note}")
        summary += f"; {families.note}"
    return GateResult(
        gate="lint",
        status=status,
        duration_s=time.monotonic() - start,
        summary=summary,
        findings=tuple(findings),
    )


def _ruff_format(ctx: GateContext, args: Sequence[str]) -> list[Finding]:
    """The findings of ``ruff format --check`` over ``args`` (its JSON or its plain report)."""
    python = [sys.executable, "-m"]
    fmt = ctx.runner.run(
        [*python, "ruff", "format", "--check", "--output-format=json", *args], cwd=ctx.root
    )
    # a ruff that ignores the flag outside preview mode (0.5 to 0.15) prints its plain report
    plain = _FORMAT_PREVIEW_ONLY in fmt.stderr
    if fmt.returncode == _RUFF_USAGE and "--output-format" in fmt.stderr:
        # the project pins a ruff older than format's JSON output: read its plain report
        fmt = ctx.runner.run([*python, "ruff", "format", "--check", *args], cwd=ctx.root)
        plain = True
    _expect(fmt, "ruff format --check")
    read = reformat_findings(fmt.stdout) if plain else ruff_findings(fmt.stdout, ctx.root)
    return _read(fmt, "ruff format --check", read)


def _excludes(globs: Sequence[str]) -> list[str]:
    return [f"--extend-exclude={glob}" for glob in globs]


def _ruff_targets(
    ctx: GateContext, scope: lint_scope.Scope, narrow: Sequence[str], *, format_: bool
) -> list[str]:
    """What ruff is handed: ``.`` (its config decides), or fewer files, never more.

    Where the project's own ruff hook skips files by regex (pre-commit's ``files:`` and
    ``exclude:``), ruff gets the files it would check less those (``--force-exclude``
    keeps its own excludes); an empty list when the hook skips them all.
    """
    explicit = format_ and bool(narrow)  # format cannot take the excludes as flags
    if not explicit and not any(hook.narrows for hook in scope.ruff_hooks(format_=format_)):
        return ["."]
    listed = ctx.runner.run(
        [sys.executable, "-m", "ruff", "check", "--show-files", *narrow, "."], cwd=ctx.root
    )
    if listed.returncode != 0:
        msg = f"ruff check --show-files crashed with exit status {listed.returncode}: "
        raise ToolError(msg + first_error(listed))
    roots = {ctx.root, ctx.root.resolve()}
    files = []
    for line in listed.stdout.splitlines():
        path = Path(line.strip())
        base = next((r for r in roots if path.is_relative_to(r)), None)
        if line.strip():
            files.append(path.relative_to(base).as_posix() if base else path.as_posix())
    kept = [p for p in files if not scope.ruff_skips(p, format_=format_)]
    if len(kept) == len(files) and not explicit:
        return ["."]
    return ["--force-exclude", *kept] if kept else []


def _expect(done: Completed, name: str) -> None:
    """Exit status 0 and 1 (with output) are verdicts; anything else means the tool broke."""
    silent_failure = done.returncode == 1 and not done.stdout.strip()
    if done.returncode not in {0, 1} or silent_failure:
        msg = f"{name} crashed with exit status {done.returncode}: {first_error(done)}"
        raise ToolError(msg)


def _read(done: Completed, name: str, findings: list[Finding]) -> list[Finding]:
    """``findings``, unless the tool failed and none could be read from its output.

    A failing exit with nothing read means the gate does not understand the report (a
    format or option it does not know): that is a broken check, never a clean one.
    """
    if done.returncode != 0 and not findings:
        msg = (
            f"{name} exited with status {done.returncode} but reported no finding the gate "
            f"could read: {first_error(done)}; run `{name}` in the project to see its report"
        )
        raise ToolError(msg)
    return findings


def first_error(done: Completed) -> str:
    """The first line of a tool's output that speaks of an error, else its first line."""
    lines = [line.strip() for line in [*done.stderr.splitlines(), *done.stdout.splitlines()]]
    lines = [line for line in lines if line]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[0]


def ruff_findings(text: str, root: Path) -> list[Finding]:
    """Findings from ``ruff check`` or ``ruff format --check`` JSON output."""
    try:
        items = json.loads(text or "[]")
    except json.JSONDecodeError as exc:
        msg = f"ruff printed output that is not JSON ({exc})"
        raise ToolError(msg) from None
    findings = []
    for item in items:
        path = Path(item["filename"])
        rel = path.relative_to(root) if path.is_relative_to(root) else path
        findings.append(
            Finding(
                rule=str(item.get("code") or "syntax"),
                message=str(item["message"]),
                file=rel.as_posix(),
                line=int(item["location"]["row"]),
            )
        )
    return findings


def reformat_findings(text: str) -> list[Finding]:
    """Findings from the plain ``ruff format --check`` report (``Would reformat: FILE`` lines)."""
    return [
        Finding(
            rule="unformatted",  # as ruff's JSON output names it
            message="File would be reformatted",
            file=line.split(":", 1)[1].strip(),
            line=1,
        )
        for line in text.splitlines()
        if line.startswith("Would reformat:")
    ]


def mypy_findings(text: str) -> list[Finding]:
    """Findings from mypy's default output."""
    findings = []
    for line in text.splitlines():
        match = _MYPY_LINE.match(line)
        if match:
            findings.append(
                Finding(
                    rule=f"mypy:{match['code'] or 'error'}",
                    message=match["msg"],
                    file=match["file"],
                    line=int(match["line"]),
                )
            )
    return findings


GATE = Gate(
    name="lint",
    session="lint",
    doc=(
        "Lint: ruff check, ruff format --check, mypy, import-linter contracts, and shell, "
        "YAML, JSON, TOML and Dockerfile checks."
    ),
    run=run,
    group="lint",
    inputs=GateInputs(
        tools=("ruff", "mypy", "import-linter", *lint_families.PACKAGES),
    ),
    options=frozenset({"mypy", "families", "advisory_families", "exclude"}),
    requires=("ruff>=0.17", "mypy>=1.18"),
)
