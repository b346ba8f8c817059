"""Green on day one: after ``init``, run the gates once and make the failing ones advisory.

Advisory-first is for findings only: a gate that could not run (its tool crashed, a service
was unreachable) stays required, and init names what to fix and exits 6.

A gate that fails on the untouched project is recorded as ``mode = "advisory"`` in its
``[tool.ci.gates.NAME]`` table with a one-line reason above it (a lint gate that fails only
on lint families' findings gets those families in ``advisory_families`` instead, so ruff
stays required); the secrets the full-history
scan finds go into ``.secrets.baseline`` (the tool's own baseline), like the tree's first
scan. ``invoke ci`` then exits 0 and shows those gates as failed but advisory, and ``init``
prints what to fix to make each one required again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.container import OutOfOrderTableProxy
from tomlkit.items import Table

from ci.adopt import pyproject_edit
from ci.core import config
from ci.core.config import LINT_FAMILIES
from ci.core.errors import ToolError, UsageError
from ci.core.files import atomic_write_bytes
from ci.core.gate import GateResult, GateStatus
from ci.core.runner import Runner
from ci.gates import lint_families, registry
from ci.run import report

BASELINE = ".secrets.baseline"
# `uv run` in the target: its own locked environment, whatever environment runs init
UV_RUN = ("run", "--locked")
HOW_TO_FIX: Mapping[str, str] = {
    "lint": "run `uv run nox -s lint`, fix what it lists (`ruff check --fix`, `ruff format`)",
    "test": "run `uv run nox -s test-{python}` and make the tests pass",
    "secrets": (
        "run `uv run nox -s security`, remove real secrets, audit the rest "
        "(`detect-secrets audit .secrets.baseline`)"
    ),
    "audit": (
        "run `uv run nox -s security`, upgrade each vulnerable pin (`uv lock "
        "--upgrade-package NAME`) or waive it with a reason and expiry in [[tool.ci.waivers]]"
    ),
    "package": "run `uv run nox -s package` and fix the build or `twine check --strict` problem",
    "workflows": (
        "run `uv run nox -s workflows`, fix each finding or mark it "
        "`# zizmor: ignore[RULE]` with the reason"
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Advisory:
    """A gate that failed on the untouched project, and why."""

    gate: str
    reason: str
    families: tuple[str, ...] = ()  # lint only: the families made advisory (not the gate)

    def comment(self) -> str:
        """The one-line reason written above ``mode = "advisory"`` (or advisory_families)."""
        if self.families:
            return (
                f"advisory since init: {self.reason}; fix them, then remove them from "
                "advisory_families"
            )
        return f"advisory since init: {self.reason}; fix it, then delete this mode line"

    def how_to_fix(self, python: str) -> str:
        """What to do to make the gate required again (printed by init)."""
        if self.families:
            named = ", ".join(self.families)
            return (
                f"{self.gate} ({named}): {self.reason}. To make them required: run "
                f"`uv run nox -s {self.gate}`, fix what it lists for {named}, then remove "
                f"them from advisory_families in [tool.ci.gates.{self.gate}]"
            )
        step = HOW_TO_FIX.get(self.gate, f"run its session (`uv run nox -s {self.gate}`)")
        return (
            f"{self.gate}: {self.reason}. To make it required: {step.format(python=python)}, "
            f'then delete `mode = "advisory"` in [tool.ci.gates.{self.gate}]'
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DayOne:
    """What the first gate run found: gates to make advisory, history secrets to baseline."""

    results: tuple[GateResult, ...]
    advisories: tuple[Advisory, ...]
    history_secrets: int
    not_run: tuple[NotRun, ...] = ()  # required gates that could not run: stay required


def run_gates(root: Path, runner: Runner, *, uv: str = "uv") -> tuple[GateResult, ...]:
    """The main job once in the target (``uv run --locked python -m ci pipeline --no-cache``).

    ``uv`` is the bundle's (``ci.core.uv``); ``uv run`` hands it on as ``$UV`` to the gates.
    """
    started = time.time_ns()
    done = runner.run(
        [uv, *UV_RUN, "python", "-m", "ci", "pipeline", "--no-cache"], cwd=root, stream=True
    )
    results = tuple(report.gate_records(root / "reports", started))
    if not results:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        msg = (
            f"the first gate run in {root} recorded no gate (exit {done.returncode}: {tail[0]}); "
            "the files are written and locked: run `uv run invoke ci` there to see why, "
            "or rerun init with --no-run"
        )
        raise ToolError(msg)
    return results


def advisories(results: Sequence[GateResult]) -> tuple[Advisory, ...]:
    """One advisory per required gate that failed on its findings, first result per gate.

    A gate that could not run (a crashed or unreachable tool) is not one: advisory-first is
    for findings, and a gate that never ran must not turn the main job green (``not_run``).
    """
    cannot = {n.gate for n in not_run(results)}
    found: dict[str, Advisory] = {}
    for result in results:
        if not result.blocking or result.gate in found or result.gate in cannot:
            continue
        what = "failed"
        detail = " ".join(result.summary.split())[:100] or result.status.value
        families = _failing_families(result)
        if families:
            detail = f"{len([f for f in result.findings if not f.advisory])} finding(s)"
            what = f"{', '.join(families)} failed"
        found[result.gate] = Advisory(
            gate=result.gate,
            reason=f"{what} on the untouched project ({detail})",
            families=families,
        )
    return tuple(found.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class NotRun:
    """A required gate that could not run on the untouched project: it stays required."""

    gate: str
    session: str  # the nox session that runs it (``test-3.12``)
    reason: str

    def how_to_fix(self) -> str:
        """What to fix before the gate can run (printed by init)."""
        step = COULD_NOT_RUN.get(self.gate, "")
        step = f"{step}; " if step else ""
        return (
            f"{self.gate}: could not run on the untouched project ({self.reason}); it stays "
            f"required. {step}see why with `uv run nox -s {self.session}`, then `uv run invoke ci`"
        )


# what a gate that could not run most often lacks
COULD_NOT_RUN: Mapping[str, str] = {
    "audit": (
        "it needs the advisory service (reachable from here) or an offline copy of the PyPA "
        "advisory database: set [tool.ci] advisory_db or CI_ADVISORY_DB to its vulns folder"
    ),
}


def not_run(results: Sequence[GateResult]) -> tuple[NotRun, ...]:
    """The required gates that could not run (status error), first result per gate."""
    found: dict[str, NotRun] = {}
    for result in results:
        if not result.blocking or result.status is not GateStatus.ERROR or result.gate in found:
            continue
        found[result.gate] = NotRun(
            gate=result.gate,
            session=_session(result),
            reason=" ".join(result.summary.split())[:160] or "error",
        )
    return tuple(found.values())


def _session(result: GateResult) -> str:
    """The nox session that runs ``result``'s gate (``test-3.12``, ``security``)."""
    gate = next((g for g in registry.BUILTIN if g.name == result.gate), None)
    if gate is None:
        return result.gate
    return (
        f"{gate.session}-{result.variant}" if gate.parametrized and result.variant else gate.session
    )


def _failing_families(result: GateResult) -> tuple[str, ...]:
    """The lint families behind a failed lint gate, when they alone failed it; else ()."""
    if result.gate != "lint" or result.status is not GateStatus.FAILED:
        return ()
    blocking = [f for f in result.findings if not f.advisory and not f.waived]
    families = [lint_families.family_of_finding(f) for f in blocking]
    if not blocking or None in families:
        return ()
    return tuple(f for f in LINT_FAMILIES if f in families)


def mark_advisory(text: str, found: Sequence[Advisory]) -> str:
    """pyproject.toml text with ``mode = "advisory"`` (and its reason) for each gate."""
    doc = tomlkit.parse(text)
    tool_ci = doc.get("tool", {}).get("ci")
    if not isinstance(tool_ci, Table | OutOfOrderTableProxy):
        msg = "pyproject.toml has no [tool.ci] table to record advisory gates in; rerun init"
        raise UsageError(msg)
    if "gates" not in tool_ci:
        tool_ci["gates"] = tomlkit.table(is_super_table=True)
    gates = tool_ci["gates"]
    for advisory in found:
        if advisory.gate not in gates:
            gates[advisory.gate] = tomlkit.table()
        table = gates[advisory.gate]
        if advisory.families:
            have = [str(f) for f in table.get("advisory_families", [])]
            if set(advisory.families) <= set(have):
                continue
            table.add(tomlkit.comment(advisory.comment()))
            table["advisory_families"] = [*have, *(f for f in advisory.families if f not in have)]
            continue
        if str(table.get("mode", "required")) == "advisory":
            continue
        table.add(tomlkit.comment(advisory.comment()))
        table.add("mode", "advisory")
    return pyproject_edit.space_new_tables(text, tomlkit.dumps(doc))


def scan_history(root: Path, runner: Runner, *, uv: str = "uv") -> list[dict[str, Any]]:
    """The full-history secret scan's findings the baseline does not know yet (hashes only)."""
    if not (root / ".git").exists():
        return []
    group = config.load(cwd=root).group("security") or "security"
    argv = [uv, *UV_RUN, "--group", group, "python", "-m", "ci", "secrets", "--history"]
    done = runner.run([*argv, "--format", "json"], cwd=root)
    try:
        data = json.loads(done.stdout)
        findings = data["findings"]
    except (json.JSONDecodeError, KeyError, TypeError):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        msg = f"the full-history secret scan in {root} failed (exit {done.returncode}): {tail[0]}"
        raise ToolError(msg) from None
    return [f for f in findings if not f.get("known") and not f.get("waived")]


def add_to_baseline(root: Path, findings: Sequence[Mapping[str, Any]]) -> int:
    """Record history findings in ``.secrets.baseline`` as known; how many were added."""
    path = root / BASELINE
    try:
        baseline = json.loads(path.read_text(encoding="utf-8"))
        results = baseline.setdefault("results", {})
    except (OSError, json.JSONDecodeError, AttributeError):
        msg = f"{path} is not a detect-secrets baseline; rerun init to write a fresh one"
        raise UsageError(msg) from None
    added = 0
    for finding in findings:
        entries = results.setdefault(str(finding["file"]), [])
        if any(e.get("hashed_secret") == finding["hashed_secret"] for e in entries):
            continue
        entries.append(
            {
                "type": str(finding.get("type", "")),
                "filename": str(finding["file"]),
                "hashed_secret": str(finding["hashed_secret"]),
                "is_verified": False,
                "line_number": int(finding.get("line", 0)),
            }
        )
        added += 1
    if added:
        baseline["results"] = dict(sorted(results.items()))
        text = json.dumps(baseline, indent=2) + "\n"
        atomic_write_bytes(path, text.encode("utf-8"))
    return added


def day_one(root: Path, runner: Runner, *, uv: str = "uv") -> DayOne:
    """Run the gates and the history scan once; record advisories and the history baseline."""
    results = run_gates(root, runner, uv=uv)
    history = add_to_baseline(root, scan_history(root, runner, uv=uv))
    found = advisories(results)
    if found:
        path = root / "pyproject.toml"
        text = path.read_text(encoding="utf-8")
        atomic_write_bytes(path, mark_advisory(text, found).encode("utf-8"))
    return DayOne(
        results=results, advisories=found, history_secrets=history, not_run=not_run(results)
    )
