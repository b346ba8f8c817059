"""The deploy state backend: ledger, state files, locks and logs over one ``Store``.

``StateBackend`` is what the deployer and the commands talk to; it does not know whether
its store is the local folder or the git remote (``open_backend`` picks one from
``[tool.ci.state]``). Every write is one atomic update of the store: a ledger entry and the
state file it changes land together, or neither does.

A write made under a lock carries its fence (the lock's epoch): when the environment's lock
has moved on to a newer epoch since, the write is refused and a ``fence refused`` entry
names the stale holder and what it tried to write, instead (``lock.FencedError``, exit 5).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.core.config import STATE_BACKENDS, Config, state_dir
from ci.core.errors import CIError, PreflightError, UsageError
from ci.core.files import atomic_write_text
from ci.core.redact import redact
from ci.core.runner import Runner
from ci.deploy import lock
from ci.deploy import state as deploystate
from ci.deploy.gitstore import GitStore
from ci.deploy.ledger import LEDGER_NAME, Entry, Ledger, LedgerCorruptError, canonical
from ci.deploy.state import EnvState
from ci.deploy.store import Change, LocalStore, Store

LOG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
LOG_SCHEMA = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEntry:
    """The fields of a ledger entry to append (seq, prev and hash are the ledger's)."""

    time: str
    actor: str
    action: str
    env: str
    version: str
    outcome: str
    details: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StateBackend:
    """Deploy state (ledger, state files, locks, logs) in one store."""

    store: Store

    @property
    def label(self) -> str:
        """Where the state lives, for messages."""
        return self.store.label

    # ---- the ledger ----------------------------------------------------------------------

    def verified_in(self, folder: Path, anchor: str | None = None) -> list[Entry]:
        """The verified entries of the ledger in ``folder`` (a view or update of the store)."""
        try:
            return Ledger.in_state_dir(folder).verify(anchor)
        except LedgerCorruptError as exc:
            raise exc.at(self.store.shown(LEDGER_NAME)) from None

    def entries(self, anchor: str | None = None) -> list[Entry]:
        """Every ledger entry, verified (LedgerCorruptError, exit 3, at the first bad one)."""
        with self.store.view() as folder:
            return self.verified_in(folder, anchor)

    def head(self) -> str | None:
        """The verified head hash (None for an empty ledger): the release's audit anchor."""
        entries = self.entries()
        return entries[-1].hash if entries else None

    def load(self, env: str) -> tuple[dict[str, EnvState], EnvState]:
        """All projected states and ``env``'s; exit 3 if the ledger or ``env``'s file is bad."""
        with self.store.view() as folder:
            states = deploystate.project(self.verified_in(folder))
            mine = states.get(env, deploystate.empty(env))
            shown = self.store.shown(deploystate.state_file(env))
            deploystate.check_file(folder, mine, shown)
        return states, mine

    def state_file_problem(self, expected: EnvState) -> str | None:
        """Why ``expected.env``'s state file disagrees with the ledger, or None."""
        shown = self.store.shown(deploystate.state_file(expected.env))
        with self.store.view() as folder:
            try:
                deploystate.check_file(folder, expected, shown)
            except CIError as exc:
                return str(exc)
        return None

    def record(
        self, state: EnvState, new: NewEntry, *, fence: lock.Fence | None = None
    ) -> tuple[Entry, EnvState]:
        """Append ``new`` and write its environment's state file, in one atomic update.

        ``state`` is the environment's state before the entry (``new.env`` must be its
        environment). When its state file disagrees with ``state`` but agrees with the
        ledger (another writer's entry came in between), the entry is applied to the
        ledger's state; when it agrees with neither, the entry is still appended (the
        ledger is the truth) and the file is left for ``state rebuild``.

        With ``fence``, a writer whose epoch is older than the environment's gets
        ``lock.FencedError`` (exit 5): its entry is not written, a ``fence refused`` entry
        naming it is.
        """

        def change(folder: Path) -> Change[tuple[Entry, EnvState, int | None]]:
            current = lock.read_epoch(folder, new.env)
            stale = fence is not None and fence.epoch < current
            written = _refusal(new, fence, current) if stale else new
            before = self._base(folder, state)
            entry = _append(folder, written, self.store.shown(LEDGER_NAME))
            after = deploystate.apply(before or state, entry)
            if before is not None:
                deploystate.write(folder, after)
            epoch = current if stale else None
            return Change(result=(entry, after, epoch), changed=True, message=_msg(entry))

        entry, after, refused_by = self.store.update(change)
        if refused_by is not None:
            assert fence is not None
            msg = (
                f"the lock of {new.env} moved on to epoch {refused_by} (taken over after this "
                f"holder's lease ran out, or removed with `unlock`) while this {new.action} of "
                f"{new.version} held epoch {fence.epoch}: its '{new.action} {new.outcome}' "
                f"entry was refused and the stale holder recorded instead (ledger #{entry.seq}); "
                f"see `python -m ci state --env {new.env}`"
            )
            raise lock.FencedError(msg)
        return entry, after

    def _base(self, folder: Path, state: EnvState) -> EnvState | None:
        """The state an entry applies to: ``state``, or the ledger's when the file holds that."""
        try:
            deploystate.check_file(folder, state)
        except CIError:
            pass
        else:
            return state
        try:
            projected = deploystate.project(self.verified_in(folder)).get(
                state.env, deploystate.empty(state.env)
            )
            deploystate.check_file(folder, projected)
        except CIError:
            return None
        return projected

    def rebuild(self) -> tuple[list[Entry], list[str]]:
        """Verify the ledger and recreate every state file from it; (entries, files written)."""

        def change(folder: Path) -> Change[tuple[list[Entry], list[str]]]:
            entries = self.verified_in(folder)
            before = _snapshot(folder / "state")
            paths = deploystate.rebuild(folder, entries)
            shown = [self.store.shown(p.relative_to(folder).as_posix()) for p in paths]
            changed = _snapshot(folder / "state") != before
            return Change(result=(entries, shown), changed=changed, message="rebuild state files")

        return self.store.update(change)

    # ---- locks ---------------------------------------------------------------------------

    def acquire(
        self,
        info: lock.LockInfo,
        *,
        wait_s: float,
        on_wait: Callable[[lock.LockInfo], None] | None = None,
    ) -> lock.Acquired:
        """Take ``info.env``'s lock (LockHeldError, exit 4, when someone else holds it).

        ``on_wait(holder)`` is told once when the lock is held and the wait for it begins.
        """
        return lock.acquire(self.store, info, wait_s=wait_s, on_wait=on_wait)

    def release(self, acquired: lock.Acquired) -> None:
        """Give our lock back (a no-op when it is no longer ours)."""
        lock.release(self.store, acquired)

    def release_id(self, env: str, lock_id: str) -> bool:
        """Remove ``env``'s lock if it still holds ``lock_id`` (a journaled holder's)."""
        return lock.release_id(self.store, env, lock_id)

    def command_started(self, acquired: lock.Acquired, pgid: int, deadline: float) -> None:
        """Record the process group of the command about to run in our lock."""
        lock.set_group(self.store, acquired, pgid, deadline)

    def holder(self, env: str) -> lock.LockInfo | None:
        """Who holds ``env``'s lock (None when free)."""
        return lock.holder_of(self.store, env)

    def unlock(self, env: str, lock_id: str) -> lock.Recovered:
        """Remove ``env``'s lock given its exact id (the caller records it)."""
        return lock.unlock(self.store, env, lock_id)

    @contextlib.contextmanager
    def keep(
        self,
        acquired: lock.Acquired,
        on_lost: Callable[[str], None],
        *,
        on_renewed: Callable[[float], None] | None = None,
        now: Callable[[], float] = time.time,
    ) -> Iterator[None]:
        """Keep our lease alive while the block runs; ``on_lost(why)`` if it cannot be kept.

        A lock without a lease (the local folder) needs nothing. A lease is renewed every
        third of its length, and ``on_renewed(expires)`` told each new expiry once it has
        landed; when it was taken over or removed, or could not be renewed before it ran
        out, ``on_lost`` is called once (it stops the running command).
        """
        lease_s = self.store.lease_s
        if lease_s is None:
            yield
            return
        stop = threading.Event()
        interval = lease_s / 3

        def renew_until_stopped() -> None:
            good_until = now() + lease_s
            while not stop.wait(interval):
                expires = now() + lease_s
                try:
                    lock.renew(self.store, acquired, expires)
                except lock.LockLostError as exc:
                    on_lost(str(exc))
                    return
                except CIError as exc:  # unreachable for now: retry while the lease lasts
                    if now() + interval >= good_until:
                        on_lost(f"the lease could not be renewed before it ran out ({exc})")
                        return
                else:
                    good_until = expires
                    if on_renewed is not None:
                        on_renewed(expires)

        keeper = threading.Thread(target=renew_until_stopped, name="lease", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join()

    # ---- bounded logs (run records and the like) -------------------------------------------

    def append_log(self, name: str, record: Mapping[str, Any], *, keep: int) -> None:
        """Append ``record`` (masked) to the log ``name``, keeping its last ``keep`` records."""
        path = _log_file(name)
        if keep < 1:
            msg = f"a log keeps at least one record (keep={keep})"
            raise UsageError(msg)

        def change(folder: Path) -> Change[None]:
            lines = _log_lines(folder / path)
            # masked as canonical text, so the JSON-escaped forms of a secret are caught too
            masked = json.loads(redact(canonical({"schema": LOG_SCHEMA, **dict(record)})))
            lines.append(canonical(masked))
            atomic_write_text(folder / path, "".join(f"{ln}\n" for ln in lines[-keep:]))
            return Change(result=None, changed=True, message=f"log {name}: append a record")

        self.store.update(change)

    def merge_log(self, name: str, records: Sequence[Mapping[str, Any]], *, keep: int) -> int:
        """Add the ``records`` the log ``name`` lacks (masked), oldest first; how many were new.

        Records are ordered by their ``time``; one already in the log (the same canonical
        text) is not added again, so merging the same logs twice changes nothing.
        """
        path = _log_file(name)
        if keep < 1:
            msg = f"a log keeps at least one record (keep={keep})"
            raise UsageError(msg)

        def change(folder: Path) -> Change[int]:
            lines = _log_lines(folder / path)
            seen = set(lines)
            added = []
            for record in records:
                masked = json.loads(redact(canonical({"schema": LOG_SCHEMA, **dict(record)})))
                line = canonical(masked)
                if line not in seen:
                    seen.add(line)
                    added.append(line)
            if not added:
                return Change(result=0, changed=False)
            merged = sorted([*lines, *added], key=_log_time)
            atomic_write_text(folder / path, "".join(f"{ln}\n" for ln in merged[-keep:]))
            return Change(result=len(added), changed=True, message=f"log {name}: merge records")

        return self.store.update(change)

    def read_log(self, name: str) -> list[dict[str, Any]]:
        """The records of the log ``name``, oldest first (unreadable lines are skipped)."""
        with self.store.view() as folder:
            lines = _log_lines(folder / _log_file(name))
        records = []
        for line in lines:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                records.append(doc)
        return records


def _append(folder: Path, new: NewEntry, shown: str) -> Entry:
    try:
        return Ledger.in_state_dir(folder).append(
            time=new.time,
            actor=new.actor,
            action=new.action,
            env=new.env,
            version=new.version,
            outcome=new.outcome,
            details=new.details,
        )
    except LedgerCorruptError as exc:
        raise exc.at(shown) from None


def _refusal(new: NewEntry, fence: lock.Fence | None, current: int) -> NewEntry:
    """The ``fence refused`` entry written instead of a stale holder's ``new``."""
    assert fence is not None
    refused = {
        "action": new.action,
        "outcome": new.outcome,
        "time": new.time,
        "details": dict(new.details or {}),
    }
    return NewEntry(
        time=new.time,
        actor=new.actor,
        action="fence",
        env=new.env,
        version=new.version,
        outcome="refused",
        details={
            "holder": {"lock": fence.lock_id, "who": fence.who, "epoch": fence.epoch},
            "epoch": current,
            "refused": refused,
            "reason": (
                f"a stale holder (epoch {fence.epoch}, lock id {fence.lock_id}) tried to write "
                f"'{new.action} {new.outcome}' after the lock moved on to epoch {current}"
            ),
        },
    )


def _msg(entry: Entry) -> str:
    return f"ledger #{entry.seq}: {entry.action} {entry.env} {entry.version} {entry.outcome}"


def _snapshot(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.json"))}


def _log_file(name: str) -> str:
    if not LOG_NAME.fullmatch(name):
        msg = f"log name {name!r} may only hold letters, digits, '.', '_' and '-'"
        raise UsageError(msg)
    return f"logs/{name}.jsonl"


def _log_time(line: str) -> str:
    """A log line's ``time`` (UTC ``Z`` spelled ``+00:00``), for ordering; "" when it has none."""
    try:
        when = json.loads(line).get("time", "")
    except (ValueError, AttributeError):
        return ""
    return str(when).replace("Z", "+00:00")


def _log_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if line.strip()]


def backend_kind(config: Config, env: Mapping[str, str]) -> str:
    """``local`` or ``git``: ``CI_STATE_BACKEND`` if set, else ``[tool.ci.state] backend``."""
    kind = env.get("CI_STATE_BACKEND", "").strip() or config.state.backend
    if kind not in STATE_BACKENDS:
        msg = f"CI_STATE_BACKEND={kind!r} is not one of {', '.join(STATE_BACKENDS)}"
        raise UsageError(msg)
    return kind


def open_backend(config: Config, env: Mapping[str, str], runner: Runner) -> StateBackend:
    """The state backend ``[tool.ci.state]`` (or ``CI_STATE_BACKEND``) names."""
    if backend_kind(config, env) == "git":
        return StateBackend(git_store(config, env, runner))
    return StateBackend(local_store(config, env))


def local_store(config: Config, env: Mapping[str, str]) -> LocalStore:
    """The state folder: ``CI_STATE_DIR`` or ``.ci-state/`` of the project."""
    path = state_dir(config.root, env)
    return LocalStore(path if path.is_absolute() else config.root / path)


def git_store(config: Config, env: Mapping[str, str], runner: Runner) -> GitStore:
    """The ref on the git remote ``[tool.ci.state] remote`` names."""
    return GitStore(
        runner=runner,
        repo=config.root,
        remote=config.state.remote,
        lease=config.state.lease_s,
        env=env,
        author=env.get("GITHUB_ACTOR") or lock.login_name(),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Migrated:
    """What ``state push`` did: how many entries the remote has now, and how many were new."""

    entries: int
    added: int
    head: str | None


def push_ledger(source: StateBackend, target: StateBackend) -> Migrated:
    """Copy ``source``'s verified ledger (and its state files) to ``target``, once.

    The lines are copied byte for byte, so the hashes, the head and any published anchor
    stay valid. ``target`` may be empty, equal or a prefix of ``source`` (an earlier push);
    a target with a different history is refused (PreflightError, exit 3), unchanged.
    """
    lines = [e.line() for e in source.entries()]

    def change(folder: Path) -> Change[Migrated]:
        there = [e.line() for e in target.verified_in(folder)]
        if lines[: len(there)] != there:
            first = next(
                (n for n, (a, b) in enumerate(zip(lines, there, strict=False), 1) if a != b),
                len(lines) + 1,
            )
            msg = (
                f"{target.label} already has a ledger of {len(there)} entries that differs "
                f"from {source.label} at entry {first}: nothing was pushed; deploys there "
                "already have their own history (compare with `python -m ci ledger verify`)"
            )
            raise PreflightError(msg)
        done = Migrated(entries=len(lines), added=len(lines) - len(there), head=_head(lines))
        if done.added == 0:
            return Change(result=done, changed=False)
        atomic_write_text(folder / LEDGER_NAME, "".join(f"{line}\n" for line in lines))
        deploystate.rebuild(folder, target.verified_in(folder))
        message = f"state push: {done.added} ledger entries from {source.label}"
        return Change(result=done, changed=True, message=message)

    return target.store.update(change)


def _head(lines: list[str]) -> str | None:
    return json.loads(lines[-1])["hash"] if lines else None
