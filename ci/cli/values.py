"""Argument types for numeric flags: a bad value is an argparse error (exit 2), never a crash."""

from __future__ import annotations

import argparse
import math


def seconds(text: str) -> float:
    """A finite number of seconds, 0 or more (``--wait``)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        msg = f"must be a number of seconds, 0 or more, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value
