"""The local journal of outcomes: what a deploy did, kept on this machine until it is recorded.

An outcome (``deploy succeeded``, ``failed``, ...) is journaled in the local state folder
(``journal/<env>.jsonl``) before it is written to the state store, and removed once it is
there. When the store cannot be reached after the command ran (a git remote gone), the
outcome stays here and the next deploy, rollback or ``state`` on this machine records it
(with the fence of the lock it was made under, so a lock that moved on meanwhile gets a
``fence refused`` entry instead of the outcome). Nothing is lost, and no outcome is
written twice: an entry already in the ledger is only removed from the journal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.core.files import atomic_write_text
from ci.core.redact import redact
from ci.deploy.lock import Fence

SCHEMA = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Pending:
    """One journaled outcome: the entry's fields and the fence it was made under."""

    entry: Mapping[str, Any]  # time, actor, action, env, version, outcome, details
    fence: Fence

    def to_line(self) -> str:
        """The journal line (canonical JSON)."""
        fence = {
            "env": self.fence.env,
            "epoch": self.fence.epoch,
            "lock_id": self.fence.lock_id,
            "who": self.fence.who,
        }
        doc = {"schema": SCHEMA, "entry": dict(self.entry), "fence": fence}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> Pending:
        """Rebuild a journaled outcome (ValueError, KeyError or TypeError when malformed)."""
        doc = json.loads(line)
        fence = doc["fence"]
        return cls(
            entry=dict(doc["entry"]),
            fence=Fence(
                env=str(fence["env"]),
                epoch=int(fence["epoch"]),
                lock_id=str(fence["lock_id"]),
                who=str(fence.get("who") or ""),
            ),
        )


def journal_path(state_dir: Path, env: str) -> Path:
    """Where ``env``'s journal lives in the local state folder."""
    return state_dir / "journal" / f"{env}.jsonl"


def pending(state_dir: Path, env: str) -> list[Pending]:
    """The outcomes journaled for ``env``, oldest first (an unreadable line is kept aside)."""
    path = journal_path(state_dir, env)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    found = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            found.append(Pending.from_line(line))
        except (ValueError, KeyError, TypeError):
            continue
    return found


def add(state_dir: Path, item: Pending) -> None:
    """Journal ``item`` (atomically, after the ones already there)."""
    items = [*pending(state_dir, item.fence.env), item]
    _write(state_dir, item.fence.env, items)


def remove(state_dir: Path, item: Pending) -> None:
    """Drop ``item`` from its environment's journal (the file goes with its last item)."""
    line = redact(item.to_line())  # the journal holds its lines masked
    items = [p for p in pending(state_dir, item.fence.env) if redact(p.to_line()) != line]
    _write(state_dir, item.fence.env, items)


def _write(state_dir: Path, env: str, items: list[Pending]) -> None:
    path = journal_path(state_dir, env)
    if not items:
        path.unlink(missing_ok=True)
        return
    atomic_write_text(path, "".join(f"{p.to_line()}\n" for p in items))


def is_recorded(item: Pending, entries: list[Mapping[str, Any]]) -> bool:
    """True when the ledger (``entries`` as dicts) already holds ``item``'s entry."""
    keys = ("time", "actor", "action", "env", "version", "outcome")
    want = item.entry
    return any(
        all(str(e.get(k)) == str(want.get(k)) for k in keys)
        and _same_details(e.get("details"), want.get("details"))
        for e in entries
    )


def _same_details(a: object, b: object) -> bool:
    return json.dumps(a or {}, sort_keys=True) == json.dumps(b or {}, sort_keys=True)
