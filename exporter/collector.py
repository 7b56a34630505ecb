"""Turns the poller's snapshot into metric families at scrape time (never calls Devin)."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.client import V2_ENTERPRISE_SESSIONS, V3_ORG_SESSIONS
from exporter.config import Organization
from exporter.models import EnterpriseSessions, SessionMetrics
from exporter.poller import Snapshot, fresh_samples
from exporter.targets import Target

_Value = TypeVar("_Value", SessionMetrics, EnterpriseSessions)

_CACHED = (
    " Polled in the background every poll_interval and cached; the window label is the"
    " period that ends at the last successful poll."
)


def _gauge(name: str, help_text: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text + _CACHED, labels=labels)


@dataclass(frozen=True)
class View:
    """What one rendering shows: a snapshot, the configured orgs, and which samples are fresh."""

    snapshot: Snapshot
    organizations: tuple[Organization, ...]
    stale_after_seconds: float
    now: float

    def fresh(self, endpoint: str, kind: type[_Value]) -> Iterator[tuple[Target, str, _Value]]:
        """Samples of one endpoint young enough to serve, in a stable order."""
        samples = fresh_samples(self.snapshot.samples, self.now, self.stale_after_seconds)
        for (target, window), sample in sorted(samples.items(), key=lambda kv: kv[0]):
            if target.endpoint == endpoint and isinstance(sample.value, kind):
                yield target, window, sample.value

    @property
    def expires_at(self) -> float:
        """When the first fresh sample turns stale, and this view with it."""
        deadlines = [
            s.fetched_at + self.stale_after_seconds
            for s in self.snapshot.samples.values()
            if s.fetched_at + self.stale_after_seconds >= self.now
        ]
        return min(deadlines, default=float("inf"))


class _ViewCollector(Collector):
    def __init__(self, view: View) -> None:
        self._view = view


class SessionCollector(_ViewCollector):
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
        for target, window, m in self._view.fresh(V3_ORG_SESSIONS, SessionMetrics):
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


class EnterpriseCollector(_ViewCollector):
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
        for target, window, value in self._view.fresh(V2_ENTERPRISE_SESSIONS, EnterpriseSessions):
            if target.org:
                per_org.add_metric([target.org, window], value.sessions_count)
            else:
                total.add_metric([window], value.sessions_count)
        yield from (total, per_org)


class OrgInfoCollector(_ViewCollector):
    """One series per configured organisation, for joins on its name::

    devin_org_info{name="Payments",org="org-a"} 1
    """

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "devin_org_info",
            "Always 1 for each configured organisation; joins an org id to its display name.",
            labels=["org", "name"],
        )
        for org in self._view.organizations:
            info.add_metric([org.id, org.display_name], 1)
        yield info


class HealthCollector(_ViewCollector):
    """Whether each target answers, and since when, for example::

    devin_up{endpoint="v3_org_sessions",org="org-a"} 1
    devin_exporter_last_success_timestamp_seconds{endpoint="v3_org_sessions",...,window="1h"} 1.7e9
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
        snapshot = self._view.snapshot
        for target in snapshot.targets:
            up.add_metric([target.endpoint, target.org], 1 if snapshot.up[target] else 0)
            auth_failing.add_metric(
                [target.endpoint, target.org], 1 if target in snapshot.auth_failing else 0
            )
            for window in snapshot.windows:
                state = snapshot.states[target, window.label]
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
        yield from (up, auth_failing, last_success, build)


def view_registry(view: View) -> CollectorRegistry:
    """A registry holding every collector of one view, ready for an exposition encoder."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in (SessionCollector, EnterpriseCollector, OrgInfoCollector, HealthCollector):
        registry.register(collector(view))
    return registry
