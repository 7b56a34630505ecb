"""The exporter's own counters: which series exist before anything is counted."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from exporter.metrics.instruments import RETRY_REASONS, Instruments

TARGETS = [("v3_org_sessions", f"org-{i}") for i in range(100)] + [("v2_enterprise_sessions", "")]


def series(registry: CollectorRegistry, family: str) -> dict[tuple[tuple[str, str], ...], float]:
    """{sorted labels: value} of one family's samples (histograms: their `_count`)."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for metric in registry.collect()
        if metric.name == family
        for s in metric.samples
        if s.name in (f"{family}_total", f"{family}_count")
    }


def test_start_at_zero_creates_per_endpoint_series_and_no_per_org_error_series() -> None:
    registry = CollectorRegistry()
    instruments = Instruments(registry)
    instruments.start_at_zero(TARGETS)
    assert {} == series(registry, "devin_exporter_poll_errors")
    expected_retries = {
        (("endpoint", endpoint), ("reason", reason)): 0.0
        for endpoint in ("v3_org_sessions", "v2_enterprise_sessions")
        for reason in RETRY_REASONS
    }
    assert expected_retries == series(registry, "devin_exporter_api_retries")
    assert {
        (("endpoint", "v2_enterprise_sessions"),): 0.0,
        (("endpoint", "v3_org_sessions"),): 0.0,
    } == series(registry, "devin_exporter_poll_duration_seconds")


def test_a_poll_error_creates_only_its_own_reason_series() -> None:
    registry = CollectorRegistry()
    instruments = Instruments(registry)
    instruments.start_at_zero(TARGETS)
    instruments.poll_failed("v3_org_sessions", "org-7", "timeout")
    instruments.poll_failed("v3_org_sessions", "org-7", "timeout")
    assert {
        (("endpoint", "v3_org_sessions"), ("org", "org-7"), ("reason", "timeout")): 2.0
    } == series(registry, "devin_exporter_poll_errors")


def test_forget_drops_the_error_series_of_removed_targets_only() -> None:
    registry = CollectorRegistry()
    instruments = Instruments(registry)
    instruments.start_at_zero(TARGETS)
    instruments.poll_failed("v3_org_sessions", "org-1", "server_error")
    instruments.poll_failed("v3_org_sessions", "org-2", "forbidden")
    version = instruments.version
    instruments.forget([("v3_org_sessions", "org-1"), ("v3_org_sessions", "org-3")])
    assert {
        (("endpoint", "v3_org_sessions"), ("org", "org-2"), ("reason", "forbidden")): 1.0
    } == series(registry, "devin_exporter_poll_errors")
    assert version < instruments.version
