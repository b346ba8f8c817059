"""The only module that starts subprocesses: runs, times, captures and masks them."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ci.core.errors import ToolError
from ci.core.redact import RedactingStream, redact


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
    ) -> Completed:
        """Run ``argv``; ToolError when it cannot start or times out."""
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

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
    ) -> Completed:
        """Run ``argv``; with ``stream`` its output is printed (masked) as it comes."""
        merged = {**os.environ, **(env or {})}
        start = time.monotonic()
        try:
            if stream:
                code, out, err = _run_streaming(argv, cwd, merged, timeout)
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
        merged = {**os.environ, **(env or {})}
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
        return shutil.which(name)


def _run_streaming(
    argv: Sequence[str], cwd: Path | None, env: Mapping[str, str], timeout: float | None
) -> tuple[int, str, str]:
    lines: list[str] = []
    with subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        # A timer, not a check between lines: a command that hangs silently must time out too.
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            proc.kill()

        timer = threading.Timer(timeout, expire) if timeout is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            for line in proc.stdout:
                lines.append(line)
                out = sys.stdout  # the redacting stream masks a value split over lines too
                out.write(line if isinstance(out, RedactingStream) else redact(line))
                out.flush()
            code = proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
        if expired.is_set():
            raise subprocess.TimeoutExpired(list(argv), timeout or 0)
    return code, "".join(lines), ""
