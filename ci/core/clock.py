"""The wall clock behind a small interface, so logic can take a fixed one in tests."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    """Tells the time."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...

    def today(self) -> dt.date:
        """The current date (UTC)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        return dt.datetime.now(dt.UTC)

    def today(self) -> dt.date:
        """The current date (UTC)."""
        return self.now().date()
