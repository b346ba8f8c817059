"""Declared gates: a ``[tool.ci.gates.NAME]`` with a ``command``; its exit status is the verdict."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from ci.core.errors import UsageError
from ci.core.gate import Finding, GateContext, GateResult, GateStatus

TAIL_LINES = 20  # how much of a failing command's output its result keeps


@dataclass(frozen=True, slots=True)
class CommandGate:
    """Runs the command of declared gate ``name`` (in its session's environment)."""

    name: str

    def __call__(self, ctx: GateContext, args: Sequence[str] = ()) -> GateResult:
        """Run the command with ``args`` appended; exit 0 passes, anything else fails."""
        start = time.monotonic()
        policy = ctx.config.gate(self.name)
        if not policy.command:
            msg = f"[tool.ci.gates.{self.name}] has no command; give it one (a list of strings)"
            raise UsageError(msg)
        argv = [*policy.command, *args]
        # a command that is not installed raises ToolError: exit 6, never a pass
        done = ctx.runner.run(argv, cwd=ctx.root, stream=True)
        shown = " ".join(argv)
        variant = ctx.python if policy.pythons else ""
        if done:
            return GateResult(
                gate=self.name,
                variant=variant,
                status=GateStatus.PASSED,
                duration_s=time.monotonic() - start,
                summary=f"`{shown}` passed",
            )
        tail = tail_of(done.output)
        last = tail.splitlines()[-1] if tail else "no output"
        return GateResult(
            gate=self.name,
            variant=variant,
            status=GateStatus.FAILED,
            duration_s=time.monotonic() - start,
            summary=f"`{shown}` exited {done.returncode}: {last}",
            findings=(Finding(rule=f"exit {done.returncode}", message=tail or "no output"),),
        )


def tail_of(output: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` non-blank lines of ``output``."""
    kept = [line.rstrip() for line in output.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
