"""The demo data beyond sessions: PRs, searches, users, ACUs and categories agree with the
sessions, never shrink when a window grows, and fall on Devin's period boundaries."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.demo.data import (
    CATEGORIES,
    DAY,
    WEEK,
    OrgModel,
    billing_cycles,
    billing_day_start,
    billing_days,
    periods,
)

T0 = 1_790_000_000.0  # 2026-09-21, a fixed "now"
HOUR = 3600.0

ends = st.floats(min_value=T0 - 400 * DAY, max_value=T0, allow_nan=False)
lengths = st.integers(min_value=0, max_value=60 * 86400)
seeds = st.integers(min_value=0, max_value=2**32)
org_ids = st.sampled_from(["org-a", "org-demo0001", "org-x.y:z"])


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_the_session_counts_are_what_they_were_before_the_new_data() -> None:
    """Adding PRs, users and ACUs drew from a second stream: sessions are unchanged."""
    totals = OrgModel(1, "org-a", ["github"]).totals(T0 - WEEK, T0)

    assert (2711, 1402, 4.309, 354) == (
        totals.created,
        totals.merged,
        totals.average_acus,
        totals.with_search,
    )


def test_per_org_factors_fall_in_their_ranges() -> None:
    for org in ("org-a", "org-b", "org-c", "org-d"):
        model = OrgModel(3, org)
        assert 1.0 <= model.merged_prs_per_session <= 1.3
        assert 2.0 <= model.searches_per_search_session <= 5.0
        assert model.headcount >= 3


# Pull requests.


@settings(max_examples=200)
@given(seed=seeds, org=org_ids, end=ends, length=lengths)
def test_prs_add_up_and_merged_prs_follow_merged_sessions(
    seed: int, org: str, end: float, length: int
) -> None:
    model = OrgModel(seed, org)
    prs = model.pull_requests(end - length, end, T0)
    merged_sessions = model.totals(end - length, end).merged

    assert prs.created == prs.opened + prs.closed + prs.merged
    assert merged_sessions <= prs.merged <= math.ceil(1.3 * merged_sessions) + 1
    assert min(prs.opened, prs.closed) >= 0


@settings(max_examples=200)
@given(seed=seeds, org=org_ids, end=ends, short=lengths, extra=lengths)
def test_a_longer_window_never_has_fewer_prs_or_searches(
    seed: int, org: str, end: float, short: int, extra: int
) -> None:
    model = OrgModel(seed, org)
    small = model.pull_requests(end - short, end, T0)
    large = model.pull_requests(end - short - extra, end, T0)

    assert small.merged <= large.merged
    assert small.closed <= large.closed
    assert small.opened <= large.opened
    assert small.created <= large.created
    assert model.searches(end - short, end) <= model.searches(end - short - extra, end)


def test_only_prs_of_the_last_two_days_are_open() -> None:
    model = OrgModel(1, "org-a")

    old = model.pull_requests(T0 - 30 * DAY, T0 - 3 * DAY, T0)
    recent = model.pull_requests(T0 - DAY, T0, T0)

    assert 0 == old.opened
    assert 0 < recent.opened < recent.created / 4


# Searches and active users.


@settings(max_examples=200)
@given(seed=seeds, org=org_ids, end=ends, length=lengths)
def test_searches_are_a_per_org_multiple_of_sessions_with_search(
    seed: int, org: str, end: float, length: int
) -> None:
    model = OrgModel(seed, org)
    with_search = model.totals(end - length, end).with_search

    expected = model.searches_per_search_session * with_search
    assert abs(model.searches(end - length, end) - expected) <= 1


@settings(max_examples=200)
@given(seed=seeds, org=org_ids, end=ends, short=lengths, extra=lengths)
def test_active_users_are_bounded_by_headcount_and_never_fewer_over_longer_ranges(
    seed: int, org: str, end: float, short: int, extra: int
) -> None:
    model = OrgModel(seed, org)
    small = model.active_users(end - short, end)
    large = model.active_users(end - short - extra, end)
    activity = model.totals(end - short, end).created + model.searches(end - short, end)

    assert 0 <= small <= large <= model.headcount
    assert small <= activity
    assert (small == 0) == (activity == 0)


def test_daily_users_are_a_fraction_of_monthly_users() -> None:
    model = OrgModel(1, "org-a")

    daily = model.active_users(T0 - DAY, T0)
    monthly = model.active_users(T0 - 30 * DAY, T0)

    assert 0 < daily < monthly <= model.headcount


def test_zero_thresholds_make_everyone_active() -> None:
    model = OrgModel(1, "org-a")

    assert model.headcount == model.active_users(T0 - HOUR, T0, min_sessions=0)
    assert model.headcount == model.active_users(T0 - HOUR, T0, min_searches=0)


def test_higher_thresholds_mean_fewer_active_users() -> None:
    model = OrgModel(1, "org-a")

    default = model.active_users(T0 - DAY, T0)
    strict = model.active_users(T0 - DAY, T0, min_sessions=5, min_searches=5)

    assert 0 < strict < default


# Consumption.


@settings(max_examples=100)
@given(seed=seeds, org=org_ids, end=ends, length=st.integers(0, 20 * 86400))
def test_daily_acus_follow_sessions_and_products_add_up(
    seed: int, org: str, end: float, length: int
) -> None:
    model = OrgModel(seed, org)
    start = end - length

    days = model.daily_consumption(start, end)

    assert [d.date for d in days] == billing_days(start, end)
    for day in days:
        totals = model.totals(max(day.date, start), min(day.date + DAY, end))
        assert day.acus == pytest.approx(totals.created * totals.average_acus, abs=0.01)
        assert sum(day.by_product.values()) == pytest.approx(day.acus, abs=0.01)
        assert {"devin", "cascade", "terminal"} <= set(day.by_product)
        assert set(day.by_product) <= {"devin", "cascade", "terminal", "review"}
        assert min(day.by_product.values()) >= 0
    sessions = sum(model.totals(max(d.date, start), min(d.date + DAY, end)).created for d in days)
    assert model.totals(start, end).created == sessions


def test_devin_takes_most_of_a_days_acus() -> None:
    model = OrgModel(1, "org-a")

    [day] = model.daily_consumption(billing_day_start(T0 - DAY), billing_day_start(T0))

    assert 0.8 < day.by_product["devin"] / day.acus < 0.9
    assert 0.06 <= day.by_product["cascade"] / day.acus <= 0.1


def test_review_acus_appear_in_some_organisations_only() -> None:
    with_review = {
        org: "review" in OrgModel(1, org).daily_consumption(T0 - DAY, T0)[0].by_product
        for org in (f"org-{i}" for i in range(20))
    }

    assert set(with_review.values()) == {True, False}


def test_billing_days_start_at_08_utc() -> None:
    days = billing_days(T0 - 3 * DAY, T0)

    assert 4 == len(days)
    assert all(utc(d).hour == 8 and utc(d).minute == 0 for d in days)
    assert days[0] <= T0 - 3 * DAY < days[0] + DAY
    assert [] == billing_days(T0, T0)


def test_billing_cycles_are_months_from_the_5th_at_08_utc() -> None:
    cycles = billing_cycles(T0 - 100 * DAY, T0)

    assert all(utc(a).day == 5 and utc(a).hour == 8 for a, _ in cycles)
    assert all(b == following for (_, b), (following, _) in itertools.pairwise(cycles))
    assert cycles[0][0] <= T0 - 100 * DAY
    assert cycles[-1][0] <= T0 < cycles[-1][1]


def test_a_cycle_starting_on_december_ends_in_january() -> None:
    december = datetime(2026, 12, 15, tzinfo=UTC).timestamp()

    [(start, end)] = billing_cycles(december, december)

    assert (utc(start), utc(end)) == (
        datetime(2026, 12, 5, 8, tzinfo=UTC),
        datetime(2027, 1, 5, 8, tzinfo=UTC),
    )


# Periods of dau, wau and mau.


@pytest.mark.parametrize("period", ["dau", "wau", "mau"])
@given(end=ends, length=st.integers(1, 200 * 86400))
def test_periods_cover_the_range_without_gaps(period: str, end: float, length: int) -> None:
    bounds = periods(period, end - length, end)  # type: ignore[arg-type]

    assert bounds[0][0] <= end - length < bounds[0][1]
    assert bounds[-1][0] < end <= bounds[-1][1]
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(bounds))


def test_period_boundaries_are_utc_days_monday_weeks_and_months() -> None:
    days = periods("dau", T0 - 3 * DAY, T0)
    weeks = periods("wau", T0 - 30 * DAY, T0)
    months = periods("mau", T0 - 90 * DAY, T0)

    assert all(utc(a).hour == 0 and (b - a) == DAY for a, b in days)
    assert all(utc(a).weekday() == 0 and utc(a).hour == 0 and b - a == WEEK for a, b in weeks)
    assert all(utc(a).day == 1 and utc(a).hour == 0 for a, _ in months)
    assert [] == periods("dau", T0, T0)


# Categories.


@settings(max_examples=200)
@given(seed=seeds, org=org_ids, end=ends, length=lengths)
def test_categories_partition_the_sessions(seed: int, org: str, end: float, length: int) -> None:
    model = OrgModel(seed, org)

    counts = model.categories(end - length, end)

    assert list(counts) == list(CATEGORIES)
    assert (
        sum(sum(subs.values()) for subs in counts.values())
        == model.totals(end - length, end).created
    )
    assert all(list(counts[name]) == list(subs) for name, subs in CATEGORIES.items())
