"""A process that ends a command's process group when the lease it runs under expires.

``python -m ci.core.watchdog PGID EXPIRY_FILE KILL_AFTER_S`` runs in its own session, apart
from the process that started it: a holder that is paused (SIGSTOP, a suspended runner) or
killed cannot keep its command running past its lease. ``EXPIRY_FILE`` holds the lease's
expiry (epoch seconds); the holder rewrites it each time it renews the lease, and only
after the renewal landed, so the watchdog never believes in a longer lease than the store
has. Once the time in it passes, the group gets SIGTERM, then SIGKILL ``KILL_AFTER_S``
later. The watchdog exits when the group is gone. An expiry that cannot be read ends the
group: no lease known is no lease.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ci.core.runner import end_group

POLL_S = 0.05


def read_expiry(path: Path, last: float | None) -> float | None:
    """The expiry in ``path``, or ``last`` when it cannot be read now (None: never read)."""
    try:
        return float(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return last


def group_exists(pgid: int) -> bool:
    """True while group ``pgid`` has any process (zombies too: the cheap check of a poll)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch(
    pgid: int,
    expiry_file: Path,
    kill_after_s: float,
    *,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Wait while ``pgid`` runs; end it once the expiry passes. True when it was ended."""
    expiry = read_expiry(expiry_file, None)
    while group_exists(pgid):
        expiry = read_expiry(expiry_file, expiry)
        if expiry is None or now() >= expiry:
            end_group(pgid, grace_s=kill_after_s)
            return True
        sleep(min(POLL_S, max(expiry - now(), 0.0)))
    return False


def main(argv: Sequence[str]) -> int:
    """Run the watchdog: 0 when the group ended by itself, 3 when it was ended, 2 on bad use."""
    try:
        pgid, expiry_file, kill_after_s = int(argv[0]), Path(argv[1]), float(argv[2])
    except (IndexError, ValueError):
        sys.stderr.write("usage: python -m ci.core.watchdog PGID EXPIRY_FILE KILL_AFTER_S\n")
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        if watch(pgid, expiry_file, kill_after_s):
            sys.stderr.write(
                f"noxgate watchdog: the lease expired unrenewed; ended process group {pgid}\n"
            )
            return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
