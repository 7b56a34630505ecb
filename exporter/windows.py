"""Windows a value covers: rolling (`24h`: the last 24 hours) or calendar (`today`, `cycle`).

Devin's consumption days and billing cycles break at 08:00 UTC (midnight US Pacific).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from exporter.durations import parse_duration

DAY_BOUNDARY = timedelta(hours=8)  # 08:00 UTC
DAY_SECONDS = 86400.0
_DAY = DAY_SECONDS

CALENDAR = ("today", "cycle")


def day_start(now: float) -> float:
    """The start of the billing day that `now` falls in (the last 08:00 UTC)."""
    offset = DAY_BOUNDARY.total_seconds()
    return (now - offset) // _DAY * _DAY + offset


def month_cycle_start(now: float) -> float:
    """The start of a monthly cycle that begins on the 1st at 08:00 UTC: the fallback for
    `cycle` when Devin's billing cycles are not polled."""
    shifted = datetime.fromtimestamp(now, UTC) - DAY_BOUNDARY
    first = shifted.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first + DAY_BOUNDARY).timestamp()


@dataclass(frozen=True, order=True)
class Window:
    """A window as the operator wrote it; `seconds` is the longest span it can cover."""

    seconds: float
    label: str

    @classmethod
    def parse(cls, text: str) -> Window:
        label = text.strip()
        if label == "today":
            return cls(_DAY, label)
        if label == "cycle":
            return cls(31 * _DAY, label)
        return cls(parse_duration(label), label)

    @property
    def calendar(self) -> bool:
        return self.label in CALENDAR

    def start(self, now: float, cycle_start: float | None = None) -> float:
        """Where the window begins when it ends at `now`."""
        if self.label == "today":
            return day_start(now)
        if self.label == "cycle":
            return cycle_start if cycle_start is not None else month_cycle_start(now)
        return now - self.seconds
