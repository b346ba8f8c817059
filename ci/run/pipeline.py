"""Runs gates (inside a session) and the sessions in order (the main job), with a summary."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.core.config import Config
from ci.core.errors import CIError, ExitCode
from ci.core.gate import GateContext, GateResult, GateStatus, apply_policy
from ci.core.runner import Completed, Runner, confined
from ci.gates import cache, registry
from ci.gates.cache import GateCache
from ci.run import report

# what a gate's key is computed from: its name, Python, arguments and venv
_Run = tuple[str, str, Sequence[str], Path | None]


def default_sessions(config: Config) -> list[str]:
    """The nox sessions the main job runs, in order."""
    return registry.main_sessions(config)


def run_gate(
    name: str,
    ctx: GateContext,
    args: Sequence[str] = (),
    *,
    no_cache: bool = False,
    venv: Path | None = None,
) -> GateResult:
    """Run gate ``name`` (or replay its cached pass), record and publish it (ci.run.report).

    A gate with cache inputs runs with the filtered environment its key covers (cache or
    not), and a gate that scans a list of files is handed exactly the list its key covers.
    A run that could be cached has a private home (GateCache.private_home), and its pass is
    stored only when the key computed again after the run is the one it started from.
    ``venv`` is the virtualenv the gate runs in (default: this interpreter's).
    """
    gate = registry.get(ctx.config, name)
    start = time.monotonic()
    store = GateCache(ctx.config, ctx.runner, ctx.clock, ctx.env)
    resolved = store.resolve(name, ctx.python, args, venv)
    key, inputs = resolved.digest, resolved.inputs
    use_cache = cache.enabled(ctx.env, no_cache)
    if use_cache and key is None and gate.inputs is not None:
        print(f"{name}: runs without the cache: {resolved.reason}", file=sys.stderr)
    hit = store.lookup(key) if key and use_cache else None
    if hit is not None:
        result = store.replay(hit, start)
        store.save()
        report.record(result, ctx)
        return result
    environ = cache.gate_env(name, ctx.config, ctx.env)
    with contextlib.ExitStack() as stack:
        inner = ctx
        if environ is not None:
            if key is not None:  # a run that could be cached sees no home but its own
                environ = stack.enter_context(store.private_home(name, environ))
            runner = confined(ctx.runner, environ)
            inner = dataclasses.replace(ctx, env=environ, runner=runner, scan=resolved.scan)
        try:
            result = gate.run(inner, args)
        except CIError as exc:
            if exc.exit_code is not ExitCode.TOOL_CRASHED:
                raise
            result = GateResult(
                gate=name,
                variant=gate.variant(ctx.python),
                status=GateStatus.ERROR,
                duration_s=time.monotonic() - start,
                summary=str(exc),
            )
    result = apply_policy(result, ctx.config.gate(name))
    report.record(result, ctx)
    if key is not None and inputs is not None:
        _remember(store, key, result, inputs, (name, ctx.python, args, venv))
    return result


def _remember(
    store: GateCache, key: str, result: GateResult, inputs: dict[str, Any], run: _Run
) -> None:
    """Store a pass whose inputs did not move under the run (a failed write costs a re-run)."""
    if result.status is not GateStatus.PASSED:
        return
    if store.again().key(*run) != key:
        # the pass may belong to content that was there only for part of the run
        print(
            f"{result.id}: the inputs changed during the run; verdict not cached", file=sys.stderr
        )
        return
    try:
        store.store(key, result, inputs)
        store.save()
    except OSError as exc:
        print(f"warning: could not store {result.id} in the gate cache ({exc})", file=sys.stderr)


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


def run_sessions(
    config: Config,
    runner: Runner,
    sessions: Sequence[str],
    *,
    jobs: int = 1,
    store: GateCache | None = None,
    use_cache: bool = True,
) -> list[SessionOutcome]:
    """Run each nox session (all of them, even after a failure) and collect their reports.

    A session whose gates all have a cached pass is replayed without starting nox. The rest
    run ``jobs`` at a time as separate processes; with more than one at a time each
    session's output is kept and printed whole when it finishes.
    """
    outcomes: dict[str, SessionOutcome] = {}
    pending = []
    for session in sessions:
        replayed = _replay(session, config, store) if store is not None and use_cache else None
        if replayed is None:
            pending.append(session)
        else:
            outcomes[session] = replayed
    if store is not None:
        store.save()
    env = {} if use_cache else {"CI_NO_CACHE": "1"}
    reports = config.reports_path()
    started = time.time_ns()
    if jobs <= 1 or len(pending) <= 1:
        for session in pending:
            started = time.time_ns()
            _header(session)
            done = runner.run(
                [*nox_command(), "-s", session], cwd=config.root, env=env, stream=True
            )
            _footer()
            outcomes[session] = _outcome(
                session, done, reports=reports, started=started, config=config, running=pending
            )
    else:
        at_once = min(jobs, len(pending))
        print(f"==> {', '.join(pending)}: {at_once} at a time, each shown when done", flush=True)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {
                pool.submit(
                    runner.run, [*nox_command(), "-s", session], cwd=config.root, env=env
                ): session
                for session in pending
            }
            for future in as_completed(futures):
                session = futures[future]
                done = future.result()
                _header(session)
                sys.stdout.write(done.output)
                _footer()
                outcomes[session] = _outcome(
                    session, done, reports=reports, started=started, config=config, running=pending
                )
    return [outcomes[s] for s in sessions]


def _replay(session: str, config: Config, store: GateCache) -> SessionOutcome | None:
    """Replay ``session`` from the cache when every gate it runs has a stored pass."""
    start = time.monotonic()
    gates = registry.session_gates(session, config)
    if not gates:
        return None
    hits = []
    for gate, python in gates:
        key = store.key(gate.name, python, venv=cache.nox_envdir(config.root, session))
        entry = store.lookup(key) if key else None
        if entry is None:
            return None
        hits.append(entry)
    results = []
    for entry, (_, python) in zip(hits, gates, strict=True):
        result = store.replay(entry)
        ctx = GateContext(
            config=config, runner=store.runner, clock=store.clock, env=store.env, python=python
        )
        report.record(result, ctx)  # the same record, run.json and publishing as a real run
        results.append(result)
    duration = time.monotonic() - start
    ids = ", ".join(r.id for r in results)
    print(f"==> nox -s {session}: cached ({ids}; inputs unchanged, nox not started)", flush=True)
    return SessionOutcome(
        session=session, returncode=0, duration_s=duration, results=tuple(results)
    )


def _header(session: str) -> None:
    print(f"::group::nox -s {session}" if _on_github() else f"==> nox -s {session}", flush=True)


def _footer() -> None:
    if _on_github():
        print("::endgroup::", flush=True)


def _outcome(
    session: str,
    done: Completed,
    *,
    reports: Path,
    started: int,
    config: Config,
    running: Sequence[str],
) -> SessionOutcome:
    # Sessions may run at once, so a report belongs to the session whose gates name it.
    mine = {(g.name, p) for g, p in registry.session_gates(session, config)}
    others = {g.name for s in running if s != session for g, _ in registry.session_gates(s, config)}
    results = [
        r
        for r in report.gate_records(reports, started)
        if any(r.gate == g and r.variant in {"", p} for g, p in mine)
        or (not mine and r.gate not in others)
    ]
    return SessionOutcome(
        session=session,
        returncode=done.returncode,
        duration_s=done.duration_s,
        results=tuple(results),
    )


def _on_github() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


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


def advisory_notes(outcomes: Sequence[SessionOutcome]) -> list[str]:
    """One line per advisory gate that failed: shown under the summary, never hidden."""
    rows = [row for outcome in outcomes for row in outcome.rows()]
    return [
        f"advisory: {row.id} {row.status.value} ({row.summary or 'no summary'}): reported, "
        f"not blocking; once fixed, make it required in [tool.ci.gates.{row.gate}]"
        for row in rows
        if row.mode.value == "advisory" and row.status in {GateStatus.FAILED, GateStatus.ERROR}
    ]


def pipeline_exit_code(outcomes: Sequence[SessionOutcome]) -> ExitCode:
    """1 if any required gate failed, 6 if one only crashed, 0 otherwise."""
    rows = [row for outcome in outcomes for row in outcome.rows()]
    if any(r.blocking and r.status is GateStatus.FAILED for r in rows):
        return ExitCode.GATE_FAILED
    if any(r.blocking for r in rows):
        return ExitCode.TOOL_CRASHED
    return ExitCode.OK
