"""The exporter's own counters and histograms, registered on a registry passed in."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from exporter.devin.errors import REASONS

# What the client retries: the `reason` label of devin_exporter_api_retries_total.
RETRY_REASONS = ("timeout", "connection", "rate_limited", "server_error")

# `*_created` series double the exporter's own series in the text format and no query here
# needs them. The switch is process-wide and only ever set one way, so tests need no reset.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Polls take from a few ms (demo API) to the request timeout times the retries.
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Instruments:
    """Counts what the client and the poller do.

    Series labelled by endpoint only start at 0; those labelled by organisation
    (`poll_errors`) start at their first count.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.version = 0  # bumped on every change, so a rendering can be reused until then
        self.api_requests = Counter(
            "devin_exporter_api_requests",
            "HTTP responses received from Devin's API, by HTTP status code.",
            ["endpoint", "code"],
            registry=registry,
        )
        self.api_retries = Counter(
            "devin_exporter_api_retries",
            "Requests to Devin's API tried again after a transient failure, by reason.",
            ["endpoint", "reason"],
            registry=registry,
        )
        self.rate_limit_wait = Counter(
            "devin_exporter_rate_limit_wait_seconds",
            "Time requests spent waiting for their API key's rate limit or 429 cooldown.",
            registry=registry,
        )
        self.poll_errors = Counter(
            "devin_exporter_poll_errors",
            "Failed polls of a target and window, by reason.",
            ["endpoint", "org", "reason"],
            registry=registry,
        )
        self.fields_missing = Counter(
            "devin_exporter_fields_missing",
            "Answers from Devin that left a documented field null or absent, by endpoint and "
            "field; only that field's series are left out.",
            ["endpoint", "field"],
            registry=registry,
        )
        self.discovery_left_out = Gauge(
            "devin_exporter_discovery_organizations_left_out",
            "Organizations the latest discovery listing admitted but discovery."
            "max_organizations left out (not polled).",
            registry=registry,
        )
        self.poll_duration = Histogram(
            "devin_exporter_poll_duration_seconds",
            "Wall time of one poll of a target (all its windows).",
            ["endpoint"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )

    def start_at_zero(self, targets: Iterable[tuple[str, str]]) -> None:
        """Create the per-endpoint series at 0, so rate() works on them from the first scrape.

        Only the series labelled by endpoint: their number grows with the endpoints polled,
        not with the organisations. A target's `poll_errors` series appear on its first
        error of each reason instead; pre-setting every reason for every target made them
        most of the exporter's output at 100 organisations (docs/metrics.md, "Error
        reasons", says what that costs a query).
        """
        self.version += 1
        for endpoint in sorted({endpoint for endpoint, _ in targets}):
            self.poll_duration.labels(endpoint)
            for reason in RETRY_REASONS:
                self.api_retries.labels(endpoint, reason)

    def forget(self, targets: Iterable[tuple[str, str]]) -> None:
        """Drop the error series of targets a reload removed (those that have any)."""
        self.version += 1
        for endpoint, org in targets:
            for reason in REASONS:
                with suppress(KeyError):
                    self.poll_errors.remove(endpoint, org, reason)

    def response(self, endpoint: str, code: int) -> None:
        self.api_requests.labels(endpoint, str(code)).inc()
        self.version += 1

    def retry(self, endpoint: str, reason: str) -> None:
        self.api_retries.labels(endpoint, reason).inc()
        self.version += 1

    def waited(self, seconds: float) -> None:
        self.rate_limit_wait.inc(seconds)
        self.version += 1

    def poll_failed(self, endpoint: str, org: str, reason: str) -> None:
        self.poll_errors.labels(endpoint, org, reason).inc()
        self.version += 1

    def organizations_left_out(self, count: int) -> None:
        self.discovery_left_out.set(count)
        self.version += 1

    def field_missing(self, endpoint: str, field: str) -> None:
        self.fields_missing.labels(endpoint, field).inc()
        self.version += 1

    def polled(self, endpoint: str, seconds: float) -> None:
        self.poll_duration.labels(endpoint).observe(seconds)
        self.version += 1
