"""The demo API's synthetic data: breakdowns add up, windows nest, and it is reproducible."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.demo.data import DAY, WEEK, OrgModel, Totals
from exporter.devin.models import KNOWN_ORIGINS, KNOWN_SIZES

T0 = 1_790_000_000.0  # 2026-09-21, a fixed "now"
HOUR = 3600.0

end_times = st.floats(min_value=T0 - 400 * DAY, max_value=T0 + 400 * DAY, allow_nan=False)
window_lengths = st.integers(min_value=1, max_value=400 * 86400)
seeds = st.integers(min_value=0, max_value=2**32)
org_ids = st.sampled_from(["org-a", "org-demo0001", "org-x.y:z"])


def totals(seed: int, org: str, start: float, end: float) -> Totals:
    return OrgModel(seed, org).totals(start, end)


@settings(max_examples=200)
@given(seed=seeds, org=org_ids, end=end_times, length=window_lengths)
def test_origins_and_sizes_each_add_up_to_created(
    seed: int, org: str, end: float, length: int
) -> None:
    result = totals(seed, org, end - length, end)

    assert sum(result.by_origin.values()) == result.created
    assert sum(result.by_size.values()) == result.created


@settings(max_examples=200)
@given(seed=seeds, org=org_ids, end=end_times, length=window_lengths)
def test_merged_prs_never_exceed_created_sessions_of_a_size(
    seed: int, org: str, end: float, length: int
) -> None:
    result = totals(seed, org, end - length, end)

    for size in KNOWN_SIZES:
        assert 0 <= result.merged_by_size[size] <= result.by_size[size]
    assert sum(result.merged_by_size.values()) == result.merged
    assert result.merged <= result.created
    assert 0 <= result.with_playbook <= result.created
    assert 0 <= result.with_search <= result.created


@settings(max_examples=300)
@given(
    seed=seeds,
    org=org_ids,
    end=end_times,
    lengths=st.tuples(window_lengths, window_lengths).map(sorted),
)
def test_a_longer_window_never_has_fewer_sessions(
    seed: int, org: str, end: float, lengths: list[int]
) -> None:
    model = OrgModel(seed, org)
    short, long = (model.totals(end - length, end) for length in lengths)

    assert short.created <= long.created
    for origin in model.origins:
        assert short.by_origin[origin] <= long.by_origin[origin]
    for size in KNOWN_SIZES:
        assert short.by_size[size] <= long.by_size[size]
        assert short.merged_by_size[size] <= long.merged_by_size[size]


@settings(max_examples=200)
@given(seed=seeds, org=org_ids, end=end_times, length=window_lengths)
def test_average_acus_is_between_0_and_60_and_positive_with_sessions(
    seed: int, org: str, end: float, length: int
) -> None:
    result = totals(seed, org, end - length, end)

    assert 0.0 <= result.average_acus <= 60.0
    if result.created > 0:
        assert result.average_acus > 0.0
    else:
        assert result.average_acus == 0.0


@given(seed=seeds, org=org_ids, start=end_times, middle=window_lengths, rest=window_lengths)
def test_adjacent_ranges_add_up_to_their_union(
    seed: int, org: str, start: float, middle: int, rest: int
) -> None:
    model = OrgModel(seed, org)
    first = model.totals(start, start + middle)
    second = model.totals(start + middle, start + middle + rest)
    whole = model.totals(start, start + middle + rest)

    assert first.created + second.created == whole.created
    for size in KNOWN_SIZES:
        assert first.by_size[size] + second.by_size[size] == whole.by_size[size]


def test_an_empty_or_reversed_range_has_no_sessions() -> None:
    model = OrgModel(1, "org-a")

    for start, end in [(T0, T0), (T0, T0 - HOUR)]:
        result = model.totals(start, end)
        assert (result.created, result.merged, result.average_acus) == (0, 0, 0.0)
        assert set(result.by_origin.values()) == {0}


def test_same_seed_org_and_time_give_the_same_totals() -> None:
    first = OrgModel(7, "org-a").totals(T0 - WEEK, T0)
    second = OrgModel(7, "org-a").totals(T0 - WEEK, T0)

    assert first == second
    assert first.created > 0


def test_another_seed_gives_other_totals() -> None:
    one = OrgModel(1, "org-a").totals(T0 - WEEK, T0)
    two = OrgModel(2, "org-a").totals(T0 - WEEK, T0)

    assert one != two
    assert one.created != two.created


def test_another_org_gives_other_totals() -> None:
    a = OrgModel(1, "org-a").totals(T0 - WEEK, T0)
    b = OrgModel(1, "org-b").totals(T0 - WEEK, T0)

    assert a.created != b.created


def test_known_origins_always_appear_even_at_zero() -> None:
    result = OrgModel(1, "org-a").totals(T0, T0)

    assert list(result.by_origin) == list(KNOWN_ORIGINS)
    assert list(result.by_size) == list(KNOWN_SIZES)


def test_extra_origins_appear_after_the_known_ones_and_get_sessions() -> None:
    model = OrgModel(1, "org-a", extra_origins=["github", "slack"])

    result = model.totals(T0 - WEEK, T0)

    assert model.origins == (*KNOWN_ORIGINS, "github")
    assert list(result.by_origin) == [*KNOWN_ORIGINS, "github"]
    assert result.by_origin["github"] > 0
    assert sum(result.by_origin.values()) == result.created


def test_hourly_counts_drift_through_the_day() -> None:
    model = OrgModel(1, "org-a")

    hourly = [model.totals(T0 + h * HOUR, T0 + (h + 1) * HOUR).created for h in range(24)]

    assert len(set(hourly)) > 3
    assert min(hourly) < max(hourly)


def test_a_week_holds_roughly_the_configured_rate() -> None:
    """The cycles average out over a week: the count is near sessions_per_hour * 168."""
    model = OrgModel(1, "org-a")

    created = model.totals(T0 - WEEK, T0).created

    assert created == pytest.approx(model.sessions_per_hour * 168, rel=0.35)


def test_nothing_happens_before_the_epoch() -> None:
    model = OrgModel(1, "org-a")

    assert model.totals(-WEEK, 0.0).created == 0
