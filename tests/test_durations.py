"""Prometheus duration strings: what parse_duration accepts, rejects, and how it round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("7d", 604800.0),
        ("1w", 604800.0),
        ("100ms", 0.1),
        ("1y", 365 * 86400.0),
        ("1h0m5s", 3605.0),
        (" 24h ", 86400.0),
    ],
)
def test_parse_duration_returns_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "5",
        "1h1d",  # units out of order
        "30m1h",
        "1m1m",  # a unit twice
        "0s",
        "0h0m",
        "-1m",
        "abc",
        "1.5h",
        "5M",
        "5 m",
    ],
)
def test_parse_duration_rejects_non_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|longer than zero"):
        parse_duration(text)


def test_parse_duration_names_the_bad_text_in_its_message() -> None:
    with pytest.raises(ValueError, match="'1h1d'"):
        parse_duration("1h1d")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (90.0, "1m30s"),
        (3600.0, "1h"),
        (5400.0, "1h30m"),
        (604800.0, "7d"),
        (0.1, "100ms"),
        (86400.0 + 1.5, "1d1s500ms"),
    ],
)
def test_format_duration_gives_the_shortest_spelling(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["30s", "5m", "1h30m", "7d", "100ms", "2d3h4m5s6ms"])
def test_format_duration_inverts_parse_duration_for_canonical_spellings(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@given(st.integers(min_value=1, max_value=10 * 365 * 86400 * 1000))
def test_parse_duration_inverts_format_duration_for_any_whole_milliseconds(millis: int) -> None:
    seconds = millis / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)
