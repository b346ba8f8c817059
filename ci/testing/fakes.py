"""Public test doubles: a scripted runner and a fixed clock, shaped like the real parts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ci.core.errors import ToolError
from ci.core.runner import Completed, OnStart


@dataclass(slots=True)
class FakeRunner:
    """Answers commands from a script of (argv prefix -> Completed) and records every call."""

    script: dict[tuple[str, ...], tuple[int, str, str]] = field(default_factory=dict)
    executables: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)

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
        """Answer ``argv`` with the longest scripted prefix; ToolError when none matches."""
        del cwd, env, timeout, stream, on_start, watch  # nothing runs: no process group
        key = tuple(argv)
        self.calls.append(key)
        for size in range(len(key), 0, -1):
            if key[:size] in self.script:
                code, out, err = self.script[key[:size]]
                return Completed(argv=key, returncode=code, stdout=out, stderr=err, duration_s=0.0)
        msg = f"{argv[0]} was not found; install it (uv sync) or put it on PATH"
        raise ToolError(msg)

    def lines(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Iterator[str]:
        """The scripted stdout of ``argv`` line by line; ToolError on a non-zero exit."""
        done = self.run(argv, cwd=cwd, env=env)
        if done.returncode != 0:
            msg = f"{' '.join(argv[:3])} failed with exit status {done.returncode}: {done.stderr}"
            raise ToolError(msg)
        yield from done.stdout.splitlines(keepends=True)

    def which(self, name: str) -> str | None:
        """The scripted path of ``name``, or None."""
        return self.executables.get(name)


@dataclass(slots=True)
class FixedClock:
    """A clock that only moves when told to."""

    now_: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        """The current (fixed) time."""
        return self.now_

    def today(self) -> dt.date:
        """The current (fixed) date."""
        return self.now_.date()

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now_ += dt.timedelta(seconds=seconds)
