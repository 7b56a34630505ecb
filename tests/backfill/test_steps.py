"""Which moments a backfill writes, and how the command line names them."""

from __future__ import annotations

import pytest

from exporter.backfill.steps import Steps, parse_step, parse_until, stamp

UNTIL = parse_until("2026-11-20T10:30:00Z")


def test_steps_are_the_multiples_of_the_step_inside_the_range_end_included() -> None:
    steps = Steps(since=3 * 3600, until=UNTIL, step=3600)
    assert ["2026-11-20T08:00:00Z", "2026-11-20T09:00:00Z", "2026-11-20T10:00:00Z"] == [
        stamp(t) for t in steps.times
    ]


def test_the_range_start_is_left_out_and_its_end_kept() -> None:
    until = parse_until("2026-11-20T10:00:00Z")
    times = Steps(since=2 * 3600, until=until, step=3600).times
    assert [until - 3600, until] == times


def test_a_step_longer_than_the_range_may_leave_nothing() -> None:
    assert [] == Steps(since=600, until=UNTIL, step=3600).times


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T10:30:00Z", UNTIL),
        ("2026-11-20T11:30:00+01:00", UNTIL),
        ("2026-11-20T10:30:00.000Z", UNTIL),
    ],
)
def test_until_takes_rfc3339(text: str, expected: float) -> None:
    assert expected == parse_until(text)


@pytest.mark.parametrize("text", ["yesterday", "2026-11-20T10:30:00", "1700000000"])
def test_until_without_a_zone_or_a_time_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339|time zone"):
        parse_until(text)


def test_the_step_is_whole_seconds() -> None:
    assert 5400 == parse_step("1h30m")
    with pytest.raises(ValueError, match="whole seconds"):
        parse_step("1500ms")
