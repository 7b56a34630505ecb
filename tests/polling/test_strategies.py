"""The polling strategies: the bucket maths (which billing days a consumption window sums,
which dau/wau/mau bucket counts as the last complete one), and what each shape says for
its rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fakes import FakeDevin, target

from exporter.devin.errors import DevinAPIError
from exporter.devin.models import ActiveUsers, BillingCycle, DailyConsumption, SessionMetrics
from exporter.devin.table import ENDPOINTS, ROWS, Endpoint
from exporter.polling.strategies import (
    STRATEGIES,
    AcuLimits,
    ConsumedAcus,
    DailyBuckets,
    LatestActiveUsers,
    OrgLimits,
    Rolling,
    Span,
    billing_days_of,
    consumed,
    consumption_window,
    last_complete,
    strategy_of,
)
from exporter.windows import Window

DAY = 86400.0


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# 08:45 UTC: 45 minutes into the billing day that began at 08:00 UTC.
NOW = ts("2026-11-20T08:45:00")
TODAY = ts("2026-11-20T08:00:00")


def test_today_is_the_current_billing_day_so_far() -> None:
    assert (TODAY, float("inf")) == billing_days_of(Window.parse("today"), Span(NOW))


def test_today_before_08_utc_began_the_previous_calendar_day() -> None:
    early = ts("2026-11-20T07:59:59")
    expected = (ts("2026-11-19T08:00:00"), float("inf"))
    assert expected == billing_days_of(Window.parse("today"), Span(early))


def test_a_rolling_day_is_the_last_complete_billing_day() -> None:
    assert (TODAY - DAY, TODAY) == billing_days_of(Window.parse("24h"), Span(NOW))


def test_seven_days_are_the_seven_complete_billing_days_before_today() -> None:
    assert (TODAY - 7 * DAY, TODAY) == billing_days_of(Window.parse("7d"), Span(NOW))


def test_a_rolling_window_changes_once_a_day_not_with_every_poll() -> None:
    window = Window.parse("24h")
    one_minute_in = billing_days_of(window, Span(TODAY + 60))
    last_minute = billing_days_of(window, Span(TODAY + DAY - 60))
    next_day = billing_days_of(window, Span(TODAY + DAY))
    assert one_minute_in == last_minute
    assert (TODAY, TODAY + DAY) == next_day


def test_cycle_is_the_billing_cycle_so_far() -> None:
    cycle_start = ts("2026-11-01T08:00:00")
    expected = (cycle_start, float("inf"))
    assert expected == billing_days_of(Window.parse("cycle"), Span(NOW, cycle_start))


async def test_a_cycle_window_is_not_asked_while_the_cycle_is_unknown() -> None:
    """No outcome at all, not a guess: nothing is exported under `cycle` until it is known."""
    api = FakeDevin()
    session_target = target("org-a")
    windows = [Window.parse("1h"), Window.parse("cycle")]
    cycle_start = ts("2026-11-05T08:00:00")

    unknown = await Rolling().fetch(api, session_target, windows, Span(NOW))
    known = await Rolling().fetch(api, session_target, windows, Span(NOW, cycle_start))

    assert ["1h"] == list(unknown)
    assert ["1h", "cycle"] == list(known)
    cycle = known["cycle"]
    assert isinstance(cycle, SessionMetrics)
    assert NOW - cycle_start == cycle.sessions_created_count  # the fake counts seconds
    assert [] == Span(NOW).known([Window.parse("cycle")])


@pytest.mark.parametrize(
    ("label", "kept"),
    [("1h", False), ("36h", False), ("24h", True), ("7d", True), ("today", True), ("cycle", True)],
)
def test_consumption_is_exported_for_whole_days_and_calendar_windows_only(
    label: str, kept: bool
) -> None:
    assert kept == consumption_window(Window.parse(label))


def test_daily_buckets_always_keep_cycle() -> None:
    windows = DailyBuckets().windows([Window.parse("1h"), Window.parse("7d")])
    assert ["7d", "cycle"] == [w.label for w in windows]


def _answer(days: dict[float, dict[str, float | None]]) -> DailyConsumption:
    return DailyConsumption.model_validate(
        {
            "total_acus": 0.0,
            "consumption_by_date": [
                {
                    "date": int(date),
                    "acus": sum(v or 0.0 for v in products.values()),
                    "acus_by_product": products,
                }
                for date, products in days.items()
            ],
        }
    )


def test_consumed_sums_the_days_in_range_by_product() -> None:
    answer = _answer(
        {
            TODAY - 2 * DAY: {"devin": 100.0},  # outside [TODAY - DAY, TODAY)
            TODAY - DAY: {"devin": 10.0, "cascade": 1.0, "terminal": 0.5, "review": None},
            TODAY: {"devin": 3.0},  # today: not part of a rolling day
        }
    )
    acus = consumed(answer, TODAY - DAY, TODAY)
    assert {"devin": 10.0, "cascade": 1.0, "terminal": 0.5, "review": 0.0} == acus.by_product


def test_consumed_keeps_acus_no_product_accounts_for_as_unattributed() -> None:
    answer = DailyConsumption.model_validate(
        {"total_acus": 5.0, "consumption_by_date": {"2026-11-19": 5.0}}  # v2: no products
    )
    acus = consumed(answer, TODAY - DAY, TODAY)
    assert {"unattributed": 5.0} == acus.by_product


def test_v2_consumption_for_one_organisation_is_devin_sessions_only() -> None:
    """With org_ids, v2 daily consumption holds Devin session ACUs only (its reference page)."""
    answer = DailyConsumption.model_validate(
        {"total_acus": 5.0, "consumption_by_date": {"2026-11-19": 5.0}}
    )
    row = ENDPOINTS["v2_enterprise_consumption_daily"]
    acus = consumed(answer, TODAY - DAY, TODAY, row.org_product)
    assert {"devin": 5.0} == acus.by_product


def _bucket(start: float, end: float, users: int) -> ActiveUsers:
    return ActiveUsers(active_users=users, start_time=int(start), end_time=int(end))


def test_the_last_complete_bucket_is_the_latest_that_ended() -> None:
    day0 = ts("2026-11-18T00:00:00")
    buckets = [
        _bucket(day0, day0 + DAY - 1, 5),
        _bucket(day0 + DAY, day0 + 2 * DAY - 1, 7),
        _bucket(day0 + 2 * DAY, day0 + 3 * DAY - 1, 2),  # today: still running at NOW
    ]
    latest = last_complete(buckets, NOW)
    expected = LatestActiveUsers(active_users=7, start_time=day0 + DAY, end_time=day0 + 2 * DAY - 1)
    assert expected == latest


def test_no_complete_bucket_is_an_invalid_response() -> None:
    running = [_bucket(NOW - 60, NOW + 3600, 3)]
    outcome = last_complete(running, NOW)
    assert isinstance(outcome, DevinAPIError)
    assert "invalid_response" == outcome.reason


def test_every_polled_row_has_a_strategy() -> None:
    polled = {row.shape for row in ROWS if row.group is not None}
    assert polled <= set(STRATEGIES)


# What each shape's strategy says for its rows: the state file's value type (None: not
# kept), how a backfill answers it (None: not backfilled), read first, every replica.
SHAPES = {
    "window": ("the row's model", "each", False, False),
    "daily": (ConsumedAcus, "range", False, False),
    "periods": (LatestActiveUsers, "range", False, False),
    "cycles": (BillingCycle, "once", True, True),
    "limits": (AcuLimits, None, False, True),
    "list": (OrgLimits, None, False, True),
    "live": (None, None, False, False),
    "users": (None, None, False, False),
}


@pytest.mark.parametrize("row", [r for r in ROWS if r.group is not None], ids=lambda r: r.name)
def test_what_depends_on_a_rows_shape_is_its_strategys_to_say(row: Endpoint[Any]) -> None:
    kept, backfill, first, billing = SHAPES[row.shape]
    strategy = strategy_of(row)
    assert (row.model if kept == "the row's model" else kept) == strategy.value_type(row)
    assert (backfill, first, billing) == (strategy.backfill, strategy.first, strategy.billing)
    assert strategy.live == (row.shape == "live")
    assert strategy.attributed == (row.shape == "users")


def test_a_backfill_asks_each_shape_for_what_its_steps_need() -> None:
    windows = [Window.parse("1h"), Window.parse("24h")]
    steps = [int(TODAY), int(TODAY) + 3600, int(TODAY) + 7200]  # the first on a day's start
    assert 6 == Rolling().backfill_requests(windows, steps)
    assert 1 + 2 == DailyBuckets().backfill_requests(windows, steps)
    assert 3 == STRATEGIES["periods"].backfill_requests(windows, steps)
    assert 1 == STRATEGIES["cycles"].backfill_requests(windows, steps)
    assert 0 == STRATEGIES["cycles"].backfill_requests(windows, [])
