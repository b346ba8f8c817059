"""The tamper-evident audit ledger: hash-chained JSON lines under the state folder.

Each line is the canonical JSON of one entry; ``hash`` is the sha256 of the entry's canonical
JSON without ``hash``, and ``prev`` is the previous entry's hash (64 zeros for the first).
Editing, deleting, reordering or inserting a line breaks the chain; a published head hash
(``--anchor``) also catches truncation.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ci.core.errors import PreflightError
from ci.core.redact import redact

LEDGER_NAME = "ledger.jsonl"
GENESIS = "0" * 64
SCHEMA = 1
FIELDS = ("schema", "seq", "time", "actor", "action", "env", "version", "outcome", "details")


class LedgerCorruptError(PreflightError):
    """The ledger failed verification: nothing may act on it (exit 3; ``ledger verify``: 1)."""

    def __init__(self, line: int, reason: str, source: str = "the ledger") -> None:
        """Remember the 1-based ``line`` of the first bad entry, why it is bad, and where."""
        super().__init__(
            f"{source} failed verification at entry {line}: {reason}; restore it from a "
            "backup (`python -m ci ledger verify` shows the details)"
        )
        self.line = line
        self.reason = reason
        self.source = source

    def at(self, source: str) -> LedgerCorruptError:
        """The same failure, naming ``source`` (the file or the remote ref)."""
        return LedgerCorruptError(self.line, self.reason, source)


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One ledger entry as written (``hash`` covers every other field)."""

    seq: int
    time: str
    actor: str
    action: str
    env: str
    version: str
    outcome: str
    details: Mapping[str, Any] = field(default_factory=dict)
    prev: str = GENESIS
    hash: str = ""

    def body(self) -> dict[str, Any]:
        """The hashed fields as a dict (everything but ``hash``)."""
        return {
            "schema": SCHEMA,
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "env": self.env,
            "version": self.version,
            "outcome": self.outcome,
            "details": dict(self.details),
            "prev": self.prev,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field, ``hash`` included."""
        return {**self.body(), "hash": self.hash}

    def line(self) -> str:
        """The entry's line in the ledger (canonical JSON, no newline)."""
        return canonical(self.to_dict())


def canonical(value: Any) -> str:  # noqa: ANN401 - any JSON value
    """Canonical JSON: sorted keys, no whitespace, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(body: Mapping[str, Any]) -> str:
    """The sha256 hex digest of ``body``'s canonical JSON."""
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def seal(entry: Entry) -> Entry:
    """``entry`` with its secrets masked and its ``hash`` filled in."""
    # Mask the canonical text (covers JSON-escaped forms too) before hashing, so the hash
    # is over exactly the bytes that are written.
    body = json.loads(redact(canonical(entry.body())))
    masked = _from_dict(body, hash_="")
    return replace(masked, hash=digest(masked.body()))


def _from_dict(data: Mapping[str, Any], *, hash_: str) -> Entry:
    return Entry(
        seq=int(data["seq"]),
        time=str(data["time"]),
        actor=str(data["actor"]),
        action=str(data["action"]),
        env=str(data["env"]),
        version=str(data["version"]),
        outcome=str(data["outcome"]),
        details=dict(data["details"]),
        prev=str(data["prev"]),
        hash=hash_,
    )


def parse_line(text: str, number: int) -> Entry:
    """Parse one ledger line; LedgerCorruptError naming ``number`` when it is malformed."""
    try:
        data = json.loads(text)
    except ValueError:
        raise LedgerCorruptError(number, "not valid JSON") from None
    if not isinstance(data, dict):
        raise LedgerCorruptError(number, "not a JSON object")
    missing = [k for k in (*FIELDS, "prev", "hash") if k not in data]
    if missing:
        raise LedgerCorruptError(number, f"missing field {missing[0]!r}")
    if data["schema"] != SCHEMA:
        raise LedgerCorruptError(number, f"unknown schema {data['schema']!r}")
    try:
        return _from_dict(data, hash_=str(data["hash"]))
    except (TypeError, ValueError):
        raise LedgerCorruptError(number, "a field has the wrong type") from None


def verify_lines(lines: Sequence[str], anchor: str | None = None) -> list[Entry]:
    """Check the whole chain; the entries, or LedgerCorruptError at the first bad one."""
    entries: list[Entry] = []
    prev = GENESIS
    for number, text in enumerate(lines, start=1):
        entry = parse_line(text, number)
        body = canonical(entry.body())
        if hashlib.sha256(body.encode("utf-8")).hexdigest() != entry.hash:
            raise LedgerCorruptError(number, "its hash does not match its content (edited?)")
        if _with_hash(body, entry.hash) != text:
            raise LedgerCorruptError(number, "not in canonical form (edited by hand?)")
        if entry.prev != prev:
            raise LedgerCorruptError(
                number, "its prev does not match the entry before it (deleted, inserted or moved?)"
            )
        if entry.seq != number:
            raise LedgerCorruptError(number, f"seq is {entry.seq}, expected {number}")
        entries.append(entry)
        prev = entry.hash
    if anchor is not None and anchor != GENESIS and anchor not in {e.hash for e in entries}:
        raise LedgerCorruptError(
            len(entries) + 1,
            f"anchor {anchor[:12]} is not in the ledger (truncated or rewritten after it)",
        )
    return entries


def _with_hash(body: str, hash_: str) -> str:
    """The canonical line of an entry from its body's canonical JSON (one encode, not two).

    Sorted keys put ``hash`` just before the top-level ``outcome``; only the fields after
    ``outcome`` (plain strings and numbers, where a raw ``,"outcome":`` cannot occur) follow
    it, so its last occurrence is the top-level key.
    """
    cut = body.rfind(',"outcome":')
    return f'{body[:cut]},"hash":"{hash_}"{body[cut:]}'


def head(entries: Sequence[Entry]) -> str:
    """The head hash (of the last entry; 64 zeros for an empty ledger)."""
    return entries[-1].hash if entries else GENESIS


@dataclass(frozen=True, slots=True)
class Ledger:
    """The ledger file of one state folder."""

    path: Path

    @classmethod
    def in_state_dir(cls, state: Path) -> Ledger:
        """The ledger under state folder ``state``."""
        return cls(state / LEDGER_NAME)

    def lines(self) -> list[str]:
        """The ledger's lines (no newlines); empty when it does not exist yet."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        text = data.decode("utf-8", errors="replace")
        if not text:
            return []
        # A final line without newline is a torn append: keep it so verify reports it.
        return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")

    def verify(self, anchor: str | None = None) -> list[Entry]:
        """Read and verify every entry (LedgerCorruptError at the first bad one)."""
        try:
            return verify_lines(self.lines(), anchor)
        except LedgerCorruptError as exc:
            raise exc.at(str(self.path)) from None

    def head(self) -> str | None:
        """The verified head hash, or None when there are no entries (LedgerCorruptError)."""
        entries = self.verify()
        return entries[-1].hash if entries else None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            # Appends from deploys of different environments may race; flock serialises them.
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # also drops the flock

    def append(
        self,
        *,
        time: str,
        actor: str,
        action: str,
        env: str,
        version: str,
        outcome: str,
        details: Mapping[str, Any] | None = None,
    ) -> Entry:
        """Append one entry chained to the current tail; returns it sealed."""
        with self._locked() as fd:
            last = _last_line(fd)
            if last is None:
                seq, prev = 1, GENESIS
            else:
                try:
                    tail = json.loads(last)
                    seq, prev = int(tail["seq"]) + 1, str(tail["hash"])
                except (ValueError, KeyError, TypeError):
                    msg = "the last line is unreadable"
                    raise LedgerCorruptError(0, msg, str(self.path)) from None
            entry = seal(
                Entry(
                    seq=seq,
                    time=time,
                    actor=actor,
                    action=action,
                    env=env,
                    version=version,
                    outcome=outcome,
                    details=dict(details or {}),
                    prev=prev,
                )
            )
            # One write() of a whole line to an O_APPEND file, then fsync: the ledger is
            # append-only, so rewriting it whole (atomic_write) would cost O(n) per entry.
            os.write(fd, (entry.line() + "\n").encode("utf-8"))
            os.fsync(fd)
            return entry


def _last_line(fd: int) -> str | None:
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    chunk = 4096
    data = b""
    pos = size
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        data = os.pread(fd, step, pos) + data
        body = data[:-1] if data.endswith(b"\n") else data
        if b"\n" in body or pos == 0:
            return body.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
    return None
