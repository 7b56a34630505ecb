"""Whether each target answers, since when, how often it is polled; the exporter's build."""

from __future__ import annotations

import platform
from collections.abc import Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter import __version__
from exporter.metrics.view import ViewCollector, adder
from exporter.polling.targets import Target


class HealthCollector(ViewCollector):
    """Whether each target answers, since when, and how often each endpoint is polled::

    devin_up{endpoint="v3_org_sessions",org="org-a"} 1
    devin_exporter_last_success_timestamp_seconds{endpoint="v3_org_sessions",...,window="1h"} 1.7e9
    devin_exporter_poll_interval_seconds{endpoint="v3_org_consumption_daily"} 3600
    devin_exporter_build_info{python_version="3.11.7",version="0.1.0"} 1
    """

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "devin_up",
            "1 when the latest poll of every window of this target succeeded, else 0.",
            labels=["endpoint", "org"],
        )
        auth_failing = GaugeMetricFamily(
            "devin_exporter_auth_failing",
            "1 while Devin refuses this target's key (401 or 403) and its polls back off.",
            labels=["endpoint", "org"],
        )
        last_success = GaugeMetricFamily(
            "devin_exporter_last_success_timestamp_seconds",
            "Unix time of the last successful poll of this target and window.",
            labels=["endpoint", "org", "window"],
        )
        interval = GaugeMetricFamily(
            "devin_exporter_poll_interval_seconds",
            "Seconds between scheduled polls of this endpoint's targets (the longest, if "
            "they differ).",
            labels=["endpoint"],
        )
        snapshot = self._view.snapshot
        for target in snapshot.targets:
            add = adder(target)
            labels = {"endpoint": target.endpoint, "org": target.org}
            add(up, labels, 1 if snapshot.up[target] else 0)
            add(auth_failing, labels, 1 if target in snapshot.backoff else 0)
        for (target, window), state in sorted(snapshot.states.items(), key=lambda kv: kv[0]):
            if state.last_success is not None:
                labels = {"endpoint": target.endpoint, "org": target.org, "window": window}
                adder(target)(last_success, labels, state.last_success)
        for endpoint, seconds in sorted(poll_intervals(snapshot.targets).items()):
            interval.add_metric([endpoint], seconds)
        build = GaugeMetricFamily(
            "devin_exporter_build_info",
            "Always 1; the exporter's version.",
            labels=["version", "python_version"],
        )
        build.add_metric([__version__, platform.python_version()], 1)
        yield from (up, auth_failing, last_success, interval, build)


def poll_intervals(targets: Iterable[Target]) -> dict[str, float]:
    """Each endpoint's poll interval in seconds, the longest where its targets differ.

    Today an endpoint group has one interval, so its targets agree; the longest is the
    safe one for DevinDataStale, which allows three of them before it fires.
    """
    intervals: dict[str, float] = {}
    for target in targets:
        intervals[target.endpoint] = max(
            target.interval_seconds, intervals.get(target.endpoint, 0.0)
        )
    return intervals


COLLECTORS = (HealthCollector,)
