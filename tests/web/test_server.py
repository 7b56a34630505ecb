"""Content negotiation of /metrics: format by Accept, gzip by Accept-Encoding, q-values honoured."""

from __future__ import annotations

import pytest

from exporter.web.server import accepts_gzip, wants_openmetrics

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", False),
        ("gzip", True),
        ("GZIP", True),
        ("gzip, deflate, br", True),
        ("gzip;q=0", False),
        ("gzip;q=0.00", False),
        ("GZIP;Q=0", False),
        ("gzip; q=0.001", True),
        ("*", True),
        ("*;q=0", False),
        ("deflate", False),
        ("gzip;q=0, *", False),
        ("identity", False),
    ],
)
def test_gzip_only_when_acceptable(header: str, expected: bool) -> None:
    assert expected == accepts_gzip(header)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", False),
        ("text/plain", False),
        ("application/openmetrics-text", True),
        ("application/openmetrics-text; version=1.0.0", True),
        (PROMETHEUS_ACCEPT, True),
        ("application/openmetrics-text;q=0, text/plain", False),
        ("application/openmetrics-text;version=0.0.1", False),
        ("application/openmetrics-text;version=2.0.0", False),
        ("text/plain;q=0.9, application/openmetrics-text;q=0.5", False),
        ("*/*", False),
    ],
)
def test_openmetrics_when_ranked_at_least_as_high_as_text(header: str, expected: bool) -> None:
    assert expected == wants_openmetrics(header)
