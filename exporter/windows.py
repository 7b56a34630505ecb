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


def day_cycle(now: float, day: int) -> tuple[float, float]:
    """[start, end) of the monthly billing cycle that starts on `day` (1..28) at 08:00 UTC
    and holds `now`: billing.cycle_start_day's cycle."""
    shifted = datetime.fromtimestamp(now, UTC) - DAY_BOUNDARY
    year, month = shifted.year, shifted.month
    if shifted.day < day:
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    start = datetime(year, month, day, tzinfo=UTC) + DAY_BOUNDARY
    end = datetime(*following, day, tzinfo=UTC) + DAY_BOUNDARY
    return start.timestamp(), end.timestamp()


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
