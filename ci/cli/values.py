"""Argument types for numeric flags: a bad value is an argparse error (exit 2), never a crash."""

from __future__ import annotations

import argparse
import math

from ci.core.config import MAX_SECONDS


def seconds(text: str) -> float:
    """A finite number of seconds, 0 or more (``--wait``)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        msg = f"must be a number of seconds, 0 or more, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    if value > MAX_SECONDS:  # time.sleep and timers overflow far above; no wait is this long
        msg = f"must be at most {MAX_SECONDS} seconds (7 days), not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def interval(text: str) -> float:
    """A finite number of seconds greater than 0 (a pause between polls)."""
    value = seconds(text)
    if value == 0:
        msg = f"must be a number of seconds greater than 0, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def port(text: str) -> int:
    """A TCP port number, 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        msg = f"must be a port number from 0 to 65535, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value
