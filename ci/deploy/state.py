"""Deploy state as a projection of the ledger: a pure fold, and the state files it yields.

The ledger is the truth; ``state/<env>.json`` is a view of it that ``state rebuild``
recreates byte for byte. A state file that disagrees with the ledger is never reset
silently: the deploy stops (exit 3) and says to run ``state rebuild``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ci.core.errors import PreflightError
from ci.core.files import atomic_write_bytes
from ci.core.redact import redact
from ci.deploy.ledger import Entry

SCHEMA = 1
STATUS_NEW = "new"
STATUS_OK = "ok"
STATUS_FAILED = "failed"  # the last operation left the environment in an unknown state
STATUS_UNKNOWN = "unknown"  # shown only: an operation started and its outcome is not recorded


@dataclass(frozen=True, slots=True, kw_only=True)
class Current:
    """The version an environment runs, and how it got there."""

    version: str
    since: str
    actor: str
    seq: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"version": self.version, "since": self.since, "actor": self.actor, "seq": self.seq}


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvState:
    """One environment's state after folding its ledger entries."""

    env: str
    status: str = STATUS_NEW
    current: Current | None = None
    good: tuple[str, ...] = ()  # the stack rollback walks down: good versions, newest last
    deployed: tuple[str, ...] = ()  # every version that ever deployed successfully, sorted
    in_progress: Mapping[str, Any] | None = None
    history: tuple[Mapping[str, Any], ...] = ()
    last_seq: int = 0
    last_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The state file's content (without schema, which the writer adds)."""
        return {
            "env": self.env,
            "status": self.status,
            "current": self.current.to_dict() if self.current else None,
            "good": list(self.good),
            "deployed": list(self.deployed),
            "in_progress": dict(self.in_progress) if self.in_progress else None,
            "history": [dict(h) for h in self.history],
            "ledger": {"seq": self.last_seq, "hash": self.last_hash},
        }

    @property
    def current_version(self) -> str | None:
        """The current version, or None when nothing good is deployed."""
        return self.current.version if self.current else None

    def previous_good(self) -> str | None:
        """The good version before the current one: what a plain rollback goes back to."""
        if self.current is None:
            return self.good[-1] if self.good else None
        for version in reversed(self.good):
            if version != self.current.version:
                return version
        return None


def apply(state: EnvState, entry: Entry) -> EnvState:
    """Fold one ledger entry of this environment into its state (pure)."""
    record = {
        "seq": entry.seq,
        "time": entry.time,
        "actor": entry.actor,
        "action": entry.action,
        "version": entry.version,
        "outcome": entry.outcome,
        **({"from": entry.details["from"]} if "from" in entry.details else {}),
        **({"reason": entry.details["reason"]} if "reason" in entry.details else {}),
    }
    state = replace(
        state,
        history=(*state.history, record),
        last_seq=entry.seq,
        last_hash=entry.hash,
    )
    became = Current(version=entry.version, since=entry.time, actor=entry.actor, seq=entry.seq)
    key = (entry.action, entry.outcome)
    if entry.outcome == "started":
        return replace(state, in_progress=record)
    if key == ("deploy", "succeeded"):
        return replace(
            state,
            status=STATUS_OK,
            current=became,
            good=(*[v for v in state.good if v != entry.version], entry.version),
            deployed=tuple(sorted({*state.deployed, entry.version})),
            in_progress=None,
        )
    if key == ("rollback", "succeeded"):
        good = state.good
        if entry.version in good:
            good = good[: len(good) - good[::-1].index(entry.version)]
        else:
            good = (*good, entry.version)
        return replace(state, status=STATUS_OK, current=became, good=good, in_progress=None)
    if entry.outcome in {"failed", "interrupted"}:
        # An interrupted operation had its command ended midway: what runs is unknown.
        return replace(state, status=STATUS_FAILED, in_progress=None)
    if entry.action in {"lock", "unlock"} and state.in_progress is not None:
        # A holder died (or was unlocked by hand) mid-operation: what runs is unknown.
        return replace(state, status=STATUS_FAILED, in_progress=None)
    return state


def project(entries: Iterable[Entry]) -> dict[str, EnvState]:
    """Every environment's state from verified ledger entries (pure)."""
    states: dict[str, EnvState] = {}
    for entry in entries:
        if not entry.env:
            continue
        states[entry.env] = apply(states.get(entry.env, EnvState(env=entry.env)), entry)
    return dict(sorted(states.items()))


def state_path(state_dir: Path, env: str) -> Path:
    """Where the state file of ``env`` lives."""
    return state_dir / "state" / f"{env}.json"


def document(state: EnvState) -> dict[str, Any]:
    """The exact JSON document a state file holds (schema first)."""
    return {"schema": SCHEMA, **state.to_dict()}


def render(state: EnvState) -> bytes:
    """The exact bytes of ``state``'s file (masked, like every file the bundle writes)."""
    return redact(json.dumps(document(state), indent=2) + "\n").encode("utf-8")


def write(state_dir: Path, state: EnvState) -> Path:
    """Write ``state`` to its file atomically."""
    path = state_path(state_dir, state.env)
    atomic_write_bytes(path, render(state))
    return path


def state_file(env: str) -> str:
    """Where the state file of ``env`` lives, relative to the state store."""
    return f"state/{env}.json"


def check_file(state_dir: Path, expected: EnvState, shown: str | None = None) -> None:
    """PreflightError (exit 3) unless ``env``'s state file matches the ledger's projection."""
    real = state_path(state_dir, expected.env)
    path = shown or real
    fix = "run `python -m ci state rebuild` to recreate it from the ledger"
    try:
        text = real.read_text(encoding="utf-8", errors="replace")  # garbage: corrupt below
    except FileNotFoundError:
        if expected.last_seq == 0:
            return
        msg = f"state file {path} is missing but the ledger has entries for {expected.env}: {fix}"
        raise PreflightError(msg) from None
    try:
        data = json.loads(text)
    except ValueError:
        msg = f"state file {path} is corrupt (not JSON): {fix}"
        raise PreflightError(msg) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        msg = f"state file {path} is corrupt (no schema {SCHEMA} document): {fix}"
        raise PreflightError(msg)
    if data != document(expected):
        seq = data.get("ledger", {}).get("seq") if isinstance(data.get("ledger"), dict) else None
        msg = (
            f"state file {path} does not match the ledger (it is at entry {seq}, the ledger "
            f"at {expected.last_seq}): {fix}"
        )
        raise PreflightError(msg)


def rebuild(state_dir: Path, entries: Sequence[Entry]) -> list[Path]:
    """Write every environment's state file from ``entries``; remove files the ledger lacks.

    A file already equal to its projection is left alone, so a rebuild of good state
    changes nothing (and commits nothing on a git remote).
    """
    states = project(entries)
    written = []
    for env_state in states.values():
        path = state_path(state_dir, env_state.env)
        try:
            same = path.read_bytes() == render(env_state)
        except OSError:
            same = False
        if not same:
            write(state_dir, env_state)
        written.append(path)
    folder = state_dir / "state"
    if folder.is_dir():
        for stale in sorted(folder.glob("*.json")):
            if stale.stem not in states:
                stale.unlink()
    return written


def empty(env: str) -> EnvState:
    """The state of an environment with no ledger entries."""
    return EnvState(env=env)
