"""A refused key: its polls slow down, doubling from the poll interval up to an hour."""

from __future__ import annotations

from exporter.polling.backoff import AUTH_BACKOFF_MAX_SECONDS, AuthBackoff, refused_again

NOW = 1_800_000_000.0


def test_the_first_refusal_waits_one_interval_and_each_next_one_twice_as_long() -> None:
    first = refused_again(None, "forbidden", 300.0, NOW)
    assert AuthBackoff("forbidden", 1, NOW + 300.0) == first
    second = refused_again(first, "forbidden", 300.0, NOW + 300.0)
    assert AuthBackoff("forbidden", 2, NOW + 300.0 + 600.0) == second


def test_the_delay_stops_doubling_at_an_hour() -> None:
    backoff = None
    for _ in range(12):
        backoff = refused_again(backoff, "unauthorized", 300.0, NOW)
    assert backoff is not None
    assert (12, NOW + AUTH_BACKOFF_MAX_SECONDS) == (backoff.failures, backoff.retry_at)


def test_a_new_reason_keeps_the_count_of_refusals_in_a_row() -> None:
    first = refused_again(None, "unauthorized", 60.0, NOW)
    assert AuthBackoff("forbidden", 2, NOW + 120.0) == refused_again(first, "forbidden", 60.0, NOW)
