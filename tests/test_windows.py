"""Rolling and calendar windows; Devin's days and cycles break at 08:00 UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exporter.windows import Window, day_cycle, day_start, month_cycle_start


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("now", "start"),
    [
        ("2026-11-21 23:00", "2026-11-21 08:00"),
        ("2026-11-22 07:59", "2026-11-21 08:00"),
        ("2026-11-22 08:00", "2026-11-22 08:00"),
        ("2026-11-22 08:01", "2026-11-22 08:00"),
    ],
)
def test_a_billing_day_starts_at_0800_utc(now: str, start: str) -> None:
    assert ts(start) == day_start(ts(now))


@pytest.mark.parametrize(
    ("now", "start"),
    [
        ("2026-11-21 23:00", "2026-11-01 08:00"),
        ("2026-12-01 07:59", "2026-11-01 08:00"),
        ("2026-12-01 08:00", "2026-12-01 08:00"),
        ("2027-01-01 03:00", "2026-12-01 08:00"),
    ],
)
def test_the_fallback_cycle_starts_on_the_first_at_0800_utc(now: str, start: str) -> None:
    assert ts(start) == month_cycle_start(ts(now))


def test_window_starts() -> None:
    now = ts("2026-11-21 23:00")
    assert now - 3600 == Window.parse("1h").start(now)
    assert ts("2026-11-21 08:00") == Window.parse("today").start(now)
    assert ts("2026-11-01 08:00") == Window.parse("cycle").start(now)
    assert 1_000.0 == Window.parse("cycle").start(now, cycle_start=1_000.0)


def test_calendar_windows_sort_after_rolling_ones_of_the_same_span() -> None:
    windows = sorted(Window.parse(w) for w in ("cycle", "30d", "today", "1h", "24h"))
    assert ["1h", "24h", "today", "30d", "cycle"] == [w.label for w in windows]


@pytest.mark.parametrize(
    ("now", "day", "start", "end"),
    [
        ("2026-09-21T14:00:00", 23, "2026-08-23T08:00:00", "2026-09-23T08:00:00"),
        ("2026-09-23T07:59:59", 23, "2026-08-23T08:00:00", "2026-09-23T08:00:00"),
        ("2026-09-23T08:00:00", 23, "2026-09-23T08:00:00", "2026-10-23T08:00:00"),
        ("2026-01-02T00:00:00", 5, "2025-12-05T08:00:00", "2026-01-05T08:00:00"),
        ("2026-12-31T23:00:00", 28, "2026-12-28T08:00:00", "2027-01-28T08:00:00"),
        ("2026-03-01T09:00:00", 1, "2026-03-01T08:00:00", "2026-04-01T08:00:00"),
    ],
)
def test_day_cycle_runs_from_the_day_at_08_utc_to_the_same_day_next_month(
    now: str, day: int, start: str, end: str
) -> None:
    def utc(text: str) -> float:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()

    assert (utc(start), utc(end)) == day_cycle(utc(now), day)
