"""Turns the poller's snapshot into metric families at scrape time (never calls Devin)."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.client import V2_ENTERPRISE_SESSIONS, V3_ORG_SESSIONS
from exporter.config import Organization
from exporter.models import EnterpriseSessions, SessionMetrics
from exporter.poller import Poller, Sample, Target, fresh_samples

Clock = Callable[[], float]
_Value = TypeVar("_Value", SessionMetrics, EnterpriseSessions)

_CACHED = (
    " Polled in the background every poll_interval and cached; the window label is the"
    " period that ends at the last successful poll."
)


def _gauge(name: str, help_text: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text + _CACHED, labels=labels)


class _SnapshotReader:
    """Shared by the collectors that serve Devin's values: only fresh samples of one endpoint."""

    def __init__(self, poller: Poller, stale_after_seconds: float, clock: Clock) -> None:
        self._poller = poller
        self._stale_after = stale_after_seconds
        self._clock = clock

    def fresh(self, endpoint: str, kind: type[_Value]) -> Iterator[tuple[Target, str, _Value]]:
        samples: dict[tuple[Target, str], Sample] = fresh_samples(
            self._poller.samples, self._clock(), self._stale_after
        )
        for (target, window), sample in sorted(samples.items(), key=lambda kv: kv[0]):
            if target.endpoint == endpoint and isinstance(sample.value, kind):
                yield target, window, sample.value


class SessionCollector(_SnapshotReader, Collector):
    """v3 per-organisation session metrics, for example::

    devin_sessions_created{org="org-a",window="24h"} 331
    devin_sessions_created_by_origin{org="org-a",origin="slack",window="24h"} 97
    devin_session_average_acus{org="org-a",window="24h"} 4.02
    """

    def collect(self) -> Iterator[Metric]:
        org_window = ["org", "window"]
        created = _gauge(
            "devin_sessions_created",
            "Sessions created in the organisation over the window (v3).",
            org_window,
        )
        by_origin = _gauge(
            "devin_sessions_created_by_origin",
            "Sessions created over the window by origin (v3).",
            [*org_window, "origin"],
        )
        by_size = _gauge(
            "devin_sessions_created_by_size",
            "Sessions created over the window by size (v3).",
            [*org_window, "size"],
        )
        playbook = _gauge(
            "devin_sessions_created_with_playbook",
            "Sessions created over the window that used a playbook (v3).",
            org_window,
        )
        search = _gauge(
            "devin_sessions_created_with_search",
            "Sessions created over the window that used search (v3).",
            org_window,
        )
        merged = _gauge(
            "devin_sessions_with_merged_prs",
            "Sessions created over the window that ended with a merged pull request (v3).",
            org_window,
        )
        merged_by_size = _gauge(
            "devin_sessions_with_merged_prs_by_size",
            "Sessions with a merged pull request over the window, by session size (v3).",
            [*org_window, "size"],
        )
        acus = _gauge(
            "devin_session_average_acus",
            "Average ACUs consumed per session created over the window (v3).",
            org_window,
        )
        for target, window, m in self.fresh(V3_ORG_SESSIONS, SessionMetrics):
            labels = [target.org, window]
            created.add_metric(labels, m.sessions_created_count)
            for origin, count in m.sessions_created_by_origin.items():
                by_origin.add_metric([*labels, origin], count)
            for size, count in m.sessions_created_by_size.items():
                by_size.add_metric([*labels, size], count)
            playbook.add_metric(labels, m.sessions_created_with_playbook_count)
            search.add_metric(labels, m.sessions_created_with_search_count)
            merged.add_metric(labels, m.sessions_with_merged_prs_count)
            for size, count in m.sessions_with_merged_prs_by_size.items():
                merged_by_size.add_metric([*labels, size], count)
            acus.add_metric(labels, m.avg_acus_per_session)
        yield from (created, by_origin, by_size, playbook, search, merged, merged_by_size, acus)


class EnterpriseCollector(_SnapshotReader, Collector):
    """v2 enterprise session counts, for example::

    devin_enterprise_sessions{window="24h"} 1120
    devin_enterprise_org_sessions{org="org-a",window="24h"} 331
    """

    def collect(self) -> Iterator[Metric]:
        total = _gauge(
            "devin_enterprise_sessions",
            "Sessions in the whole enterprise over the window (v2).",
            ["window"],
        )
        per_org = _gauge(
            "devin_enterprise_org_sessions",
            "Sessions in one organisation over the window, from the enterprise API (v2).",
            ["org", "window"],
        )
        for target, window, value in self.fresh(V2_ENTERPRISE_SESSIONS, EnterpriseSessions):
            if target.org:
                per_org.add_metric([target.org, window], value.sessions_count)
            else:
                total.add_metric([window], value.sessions_count)
        yield from (total, per_org)


class OrgInfoCollector(Collector):
    """One series per configured organisation, for joins on its name::

    devin_org_info{name="Payments",org="org-a"} 1
    """

    def __init__(self, organizations: list[Organization]) -> None:
        self._orgs = organizations

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "devin_org_info",
            "Always 1 for each configured organisation; joins an org id to its display name.",
            labels=["org", "name"],
        )
        for org in self._orgs:
            info.add_metric([org.id, org.display_name], 1)
        yield info


class HealthCollector(Collector):
    """Whether each target answers, and since when, for example::

    devin_up{endpoint="v3_org_sessions",org="org-a"} 1
    devin_exporter_last_success_timestamp_seconds{endpoint="v3_org_sessions",...,window="1h"} 1.7e9
    devin_exporter_build_info{python_version="3.11.7",version="0.1.0"} 1
    """

    def __init__(self, poller: Poller) -> None:
        self._poller = poller

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "devin_up",
            "1 when the latest poll of every window of this target succeeded, else 0.",
            labels=["endpoint", "org"],
        )
        last_success = GaugeMetricFamily(
            "devin_exporter_last_success_timestamp_seconds",
            "Unix time of the last successful poll of this target and window.",
            labels=["endpoint", "org", "window"],
        )
        for target in self._poller.targets:
            up.add_metric([target.endpoint, target.org], 1 if self._poller.up(target) else 0)
            for window in self._poller.windows:
                state = self._poller.states[target, window.label]
                if state.last_success is not None:
                    last_success.add_metric(
                        [target.endpoint, target.org, window.label], state.last_success
                    )
        build = GaugeMetricFamily(
            "devin_exporter_build_info",
            "Always 1; the exporter's version.",
            labels=["version", "python_version"],
        )
        build.add_metric([__version__, platform.python_version()], 1)
        yield from (up, last_success, build)


def register_collectors(
    registry: CollectorRegistry,
    poller: Poller,
    organizations: list[Organization],
    stale_after_seconds: float,
    clock: Clock = time.time,
) -> None:
    """Put every snapshot collector on `registry` (beside the exporter's own counters)."""
    registry.register(SessionCollector(poller, stale_after_seconds, clock))
    registry.register(EnterpriseCollector(poller, stale_after_seconds, clock))
    registry.register(OrgInfoCollector(organizations))
    registry.register(HealthCollector(poller))
