"""The only module that starts subprocesses: runs, times, captures and masks them."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ci.core.errors import ToolError, UsageError
from ci.core.redact import RedactingStream, redact

OnStart = Callable[[int], None]
GRACE_S = 5.0  # how long an ended process group gets between SIGTERM and SIGKILL
WATCHDOG_KILL_S = 2.0  # a watchdog's SIGTERM to SIGKILL, once the lease has expired
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # where ``ci`` imports from
# A command run in its own group first waits for one line on stdin, so the caller can
# record the group (on_start) before any of the command runs; EOF means "do not start".
START_GATE = ("/bin/sh", "-c", 'read -r _ || exit 125; exec "$@"', "sh")


@dataclass(frozen=True, slots=True, kw_only=True)
class Completed:
    """What a finished command left behind (output already masked)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float

    def __bool__(self) -> bool:
        """True when the command exited 0."""
        return self.returncode == 0

    @property
    def output(self) -> str:
        """Standard output followed by standard error."""
        return self.stdout + self.stderr


class Runner(Protocol):
    """Runs a command to completion; the real one and the test fake share this shape."""

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
        on_start: OnStart | None = None,
        watch: Path | None = None,
    ) -> Completed:
        """Run ``argv``; ToolError when it cannot start or times out.

        With ``on_start`` the command runs in its own process group, ``on_start(pgid)``
        returns before it starts, and the whole group ends on timeout or interrupt. With
        ``watch`` too (a file holding a lease's expiry, epoch seconds), a watchdog process
        apart from this one ends the group once that time passes, even when this process
        is paused or gone (``ci.core.watchdog``).
        """
        ...

    def lines(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Iterator[str]:
        """Yield ``argv``'s stdout line by line, unmasked, for scanners that never print it."""
        ...

    def which(self, name: str) -> str | None:
        """The path of executable ``name`` on PATH, or None."""
        ...


class ProcessRunner:
    """Runs real subprocesses."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        """Start commands with ``environ`` as their whole environment (default: os.environ)."""
        self.environ = None if environ is None else dict(environ)

    def _merged(self, env: Mapping[str, str] | None) -> dict[str, str]:
        base = os.environ if self.environ is None else self.environ
        return {**base, **(env or {})}

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
        on_start: OnStart | None = None,
        watch: Path | None = None,
    ) -> Completed:
        """Run ``argv``; with ``stream`` its output is printed (masked) as it comes."""
        _check_timeout(argv, timeout)
        merged = self._merged(env)
        start = time.monotonic()
        if watch is not None and on_start is None:
            on_start = _no_op
        try:
            if stream or on_start is not None:
                code, out, err = _run_piped(
                    argv, cwd, merged, timeout, echo=stream, on_start=on_start, watch=watch
                )
            else:
                done = subprocess.run(
                    list(argv),
                    cwd=cwd,
                    env=merged,
                    capture_output=True,
                    text=True,
                    errors="replace",
                    timeout=timeout,
                    check=False,
                    stdin=subprocess.DEVNULL,
                )
                code, out, err = done.returncode, done.stdout, done.stderr
        except FileNotFoundError:
            msg = f"{argv[0]} was not found; install it (uv sync) or put it on PATH"
            raise ToolError(msg) from None
        except subprocess.TimeoutExpired:
            msg = f"{' '.join(argv[:3])} did not finish within {timeout:g} s"
            raise ToolError(msg) from None
        return Completed(
            argv=tuple(argv),
            returncode=code,
            stdout=redact(out),
            stderr=redact(err),
            duration_s=time.monotonic() - start,
        )

    def lines(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Iterator[str]:
        """Yield stdout lines as they come; ToolError when the command fails or cannot start.

        Output is not masked: masking could hide the very values a secret scanner looks
        for. Callers feed these lines to scanners and print only what they derive.
        """
        merged = self._merged(env)
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=merged,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                bufsize=1 << 20,
            )
        except FileNotFoundError:
            msg = f"{argv[0]} was not found; install it (uv sync) or put it on PATH"
            raise ToolError(msg) from None
        with proc:
            assert proc.stdout is not None
            assert proc.stderr is not None
            # split on "\n" only: a stray "\r" inside a line must not start a new one
            out = io.TextIOWrapper(proc.stdout, encoding="utf-8", errors="replace", newline="\n")
            finished = False
            try:
                yield from out
                finished = True
            finally:
                if not finished:
                    proc.kill()  # the reader stopped early: nothing more is wanted
                err = proc.stderr.read().decode("utf-8", "replace")
                code = proc.wait()
            if code != 0:
                tail = redact(err).strip().splitlines()[-1:] or ["no output"]
                msg = f"{' '.join(argv[:3])} failed with exit status {code}: {tail[0]}"
                raise ToolError(msg)

    def which(self, name: str) -> str | None:
        """The path of executable ``name`` on PATH, or None."""
        return shutil.which(name, path=None if self.environ is None else self.environ.get("PATH"))


def _check_timeout(argv: Sequence[str], timeout: float | None) -> None:
    """UsageError for a timeout no timer can wait: its thread would die, the command run on."""
    if timeout is None or 0 < timeout <= threading.TIMEOUT_MAX:  # nan is neither
        return
    msg = (
        f"{' '.join(argv[:3])} was not started: a timeout of {timeout!r} s is not a number of "
        f"seconds between 0 and {threading.TIMEOUT_MAX:g}; give a shorter one"
    )
    raise UsageError(msg)


def confined(runner: Runner, environ: Mapping[str, str]) -> Runner:
    """``runner`` starting commands with ``environ`` alone (test doubles are returned as is)."""
    if isinstance(runner, ProcessRunner):
        return ProcessRunner(environ)
    return runner


def _run_piped(
    argv: Sequence[str],
    cwd: Path | None,
    env: Mapping[str, str],
    timeout: float | None,
    *,
    echo: bool,
    on_start: OnStart | None,
    watch: Path | None = None,
) -> tuple[int, str, str]:
    group = on_start is not None
    if group:
        _check_executable(argv, cwd, env)
    lines: list[str] = []
    with subprocess.Popen(
        [*START_GATE, *argv] if group else list(argv),
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.PIPE if group else subprocess.DEVNULL,
        process_group=0 if group else None,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        # A timer, not a check between lines: a command that hangs silently must time out too.
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            _signal(proc, signal.SIGKILL, group=group)

        timer = threading.Timer(timeout, expire) if timeout is not None else None
        watchers: list[subprocess.Popen[bytes]] = []

        def starting(pgid: int) -> None:
            assert on_start is not None
            on_start(pgid)
            if watch is not None:  # before the gate opens: no moment runs unwatched
                watchers.append(start_watchdog(pgid, watch))

        try:
            if on_start is not None:
                _open_gate(proc, starting)
            if timer is not None:
                timer.daemon = True
                timer.start()
            for line in proc.stdout:
                lines.append(line)
                if echo:
                    out = sys.stdout  # the redacting stream masks a value split over lines too
                    out.write(line if isinstance(out, RedactingStream) else redact(line))
                    out.flush()
            code = proc.wait()
        except BaseException:
            # Interrupted, terminated or failed while it runs: nothing of it may outlive us.
            end_process(proc, group=group)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            for watcher in watchers:  # the command is over: nothing left to watch
                watcher.kill()
                watcher.wait()
        if expired.is_set():
            raise subprocess.TimeoutExpired(list(argv), timeout or 0)
        if watch is not None and code != 0 and _lease_over(watch):
            msg = (
                f"{' '.join(argv[:3])} was ended by its watchdog (exit status {code}): the "
                "lease it ran under expired unrenewed"
            )
            raise ToolError(msg)
    return code, "".join(lines), ""


def _lease_over(expiry_file: Path) -> bool:
    """True when the lease expiry in ``expiry_file`` has passed (or cannot be read)."""
    try:
        return time.time() >= float(expiry_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return True


def _no_op(pgid: int) -> None:
    del pgid


def start_watchdog(
    pgid: int, expiry_file: Path, kill_after_s: float = WATCHDOG_KILL_S
) -> subprocess.Popen[bytes]:
    """Start ``ci.core.watchdog`` over group ``pgid``, in a session of its own.

    Its own session: no signal meant for this process or its terminal reaches it, and it
    outlives this process. It gets no secrets (only PATH and where ``ci`` imports from).
    """
    if not expiry_file.is_file():
        msg = f"the lease expiry file {expiry_file} is missing: not starting the command"
        raise ToolError(msg)
    path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": path}
    argv = [sys.executable, "-m", "ci.core.watchdog", str(pgid), str(expiry_file)]
    return subprocess.Popen(
        [*argv, f"{kill_after_s:g}"],
        env=env,
        cwd=PACKAGE_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # a pipe it held open would keep our readers waiting
        start_new_session=True,
    )


def _check_executable(argv: Sequence[str], cwd: Path | None, env: Mapping[str, str]) -> None:
    # The start gate execs the command from a shell: look it up the way Popen would, so a
    # missing command is still "not found" and not the shell's exit 127.
    name = argv[0] if argv else ""
    if "/" in name:
        path = Path(name) if Path(name).is_absolute() else (cwd or Path.cwd()) / name
        found = path.is_file() and os.access(path, os.X_OK)
    else:
        found = bool(name) and shutil.which(name, path=env.get("PATH", os.defpath)) is not None
    if not found:
        raise FileNotFoundError(name)


def _open_gate(proc: subprocess.Popen[str], on_start: OnStart) -> None:
    assert proc.stdin is not None
    try:
        on_start(proc.pid)
    except BaseException:
        proc.stdin.close()  # EOF at the gate: the command never starts
        proc.wait()
        raise
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write("\n")
        proc.stdin.close()


def _signal(proc: subprocess.Popen[str], signum: int, *, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)


def end_process(proc: subprocess.Popen[str], *, group: bool, grace_s: float = GRACE_S) -> None:
    """Stop ``proc`` (and its whole process group when ``group``): SIGTERM, then SIGKILL."""
    if not group:
        proc.kill()
        proc.wait()
        return
    end_group(proc.pid, grace_s=grace_s, reap=proc.poll)
    proc.wait()


def group_alive(pgid: int) -> bool:
    """True while any process of group ``pgid`` runs (zombies do not count)."""
    if pgid <= 1:
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ")".
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in {"Z", "X"}:
            return True
    return False


def end_group(
    pgid: int,
    *,
    grace_s: float = GRACE_S,
    reap: Callable[[], object] | None = None,
    settle_s: float = 5.0,
) -> bool:
    """SIGTERM process group ``pgid``, SIGKILL it after ``grace_s``; True once it is gone."""
    if pgid <= 1:
        return True
    for signum, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, settle_s)):
        if signum == signal.SIGTERM and grace_s <= 0:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signum)
        deadline = time.monotonic() + wait_s
        while True:
            if reap is not None:
                reap()  # our own child must be reaped, or it lingers as a zombie
            if not group_alive(pgid):
                return True
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
    return False
