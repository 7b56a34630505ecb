"""Prometheus duration strings: what parse_duration accepts, rejects, and how it round-trips."""

from __future__ import annotations

import pytest

from exporter.durations import parse_duration


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
