"""Turns the poller's snapshot into metric families at scrape time (never calls Devin)."""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel

from exporter import __version__
from exporter.config import Organization
from exporter.endpoints import ConsumedAcus, LatestActiveUsers, V2PullRequests
from exporter.models import (
    ActiveUsers,
    BillingCycle,
    EnterpriseSessions,
    PrMetrics,
    SearchMetrics,
    SessionMetrics,
    SessionsByCategory,
)
from exporter.poller import Snapshot, fresh_samples, stale_after_for
from exporter.targets import Target

_Value = TypeVar("_Value", bound=BaseModel)

_CACHED = (
    " Polled in the background (every poll_interval, or its endpoint group's interval) and"
    " cached; the window label is the period that ends at the last successful poll."
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

    def fresh(self, kind: type[_Value]) -> Iterator[tuple[Target, str, _Value]]:
        """Samples of one kind young enough to serve, in a stable order, whichever endpoint
        (an org's own, or its enterprise twin) they came from."""
        samples = fresh_samples(self.snapshot.samples, self.now, self.stale_after_seconds)
        for (target, window), sample in sorted(samples.items(), key=lambda kv: kv[0]):
            if isinstance(sample.value, kind):
                yield target, window, sample.value

    @property
    def expires_at(self) -> float:
        """When the first fresh sample turns stale, and this view with it."""
        deadlines = [
            deadline
            for (t, _), s in self.snapshot.samples.items()
            if (deadline := s.fetched_at + stale_after_for(t, self.stale_after_seconds)) >= self.now
        ]
        return min(deadlines, default=float("inf"))


def _adder(target: Target) -> Callable[[GaugeMetricFamily, dict[str, str], float], None]:
    """Adds a sample with the family's labels, and `segment` for a segment's target.

    A family's samples may carry different label sets: the whole-org series keep the
    public labels exactly, and only a segment's series gain `segment`.
    """

    def add(family: GaugeMetricFamily, labels: dict[str, str], value: float) -> None:
        if target.segment:
            labels = {**labels, "segment": target.segment}
        family.add_sample(family.name, labels, value)

    return add


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
        for target, window, m in self._view.fresh(SessionMetrics):
            base = {"org": target.org, "window": window}
            add = _adder(target)
            add(created, base, m.sessions_created_count)
            for origin, count in m.sessions_created_by_origin.items():
                add(by_origin, {**base, "origin": origin}, count)
            for size, count in m.sessions_created_by_size.items():
                add(by_size, {**base, "size": size}, count)
            add(playbook, base, m.sessions_created_with_playbook_count)
            add(search, base, m.sessions_created_with_search_count)
            add(merged, base, m.sessions_with_merged_prs_count)
            for size, count in m.sessions_with_merged_prs_by_size.items():
                add(merged_by_size, {**base, "size": size}, count)
            add(acus, base, m.avg_acus_per_session)
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
        for target, window, value in self._view.fresh(EnterpriseSessions):
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
            add = _adder(target)
            labels = {"endpoint": target.endpoint, "org": target.org}
            add(up, labels, 1 if snapshot.up[target] else 0)
            add(auth_failing, labels, 1 if target in snapshot.auth_failing else 0)
        for (target, window), state in sorted(snapshot.states.items(), key=lambda kv: kv[0]):
            if state.last_success is not None:
                labels = {"endpoint": target.endpoint, "org": target.org, "window": window}
                _adder(target)(last_success, labels, state.last_success)
        build = GaugeMetricFamily(
            "devin_exporter_build_info",
            "Always 1; the exporter's version.",
            labels=["version", "python_version"],
        )
        build.add_metric([__version__, platform.python_version()], 1)
        yield from (up, auth_failing, last_success, build)


class PullRequestCollector(_ViewCollector):
    """Pull requests and searches per organisation (v3), for example::

    devin_prs{org="org-a",state="merged",window="7d"} 212
    devin_searches_created{org="org-a",window="7d"} 1310
    """

    def collect(self) -> Iterator[Metric]:
        prs = _gauge(
            "devin_prs",
            "Pull requests over the window by state: created, merged and closed in the "
            "window; opened is the number still open at its end (v3).",
            ["org", "window", "state"],
        )
        searches = _gauge(
            "devin_searches_created",
            "Searches created over the window (v3).",
            ["org", "window"],
        )
        for target, window, p in self._view.fresh(PrMetrics):
            states = {
                "created": p.prs_created_count,
                "opened": p.prs_opened_count,
                "closed": p.prs_closed_count,
                "merged": p.prs_merged_count,
            }
            for state, count in states.items():
                if count is not None:
                    prs.add_metric([target.org, window, state], count)
        for target, window, v2 in self._view.fresh(V2PullRequests):
            for state, count in (
                ("created", v2.created),
                ("closed", v2.closed),
                ("merged", v2.merged),
            ):
                prs.add_metric([target.org, window, state], count)
        for target, window, q in self._view.fresh(SearchMetrics):
            searches.add_metric([target.org, window], q.searches_created_count)
        yield from (prs, searches)


class ActiveUserCollector(_ViewCollector):
    """Active users per organisation, for example::

    devin_active_users{org="org-a",window="30d"} 41
    devin_active_users_latest{org="org-a",period="week"} 27
    """

    def collect(self) -> Iterator[Metric]:
        rolling = _gauge(
            "devin_active_users",
            "Users with at least one session or search over the window (v3).",
            ["org", "window"],
        )
        latest = GaugeMetricFamily(
            "devin_active_users_latest",
            "Active users in the last complete UTC day, week (from Monday) or month, by "
            "period (v3 dau/wau/mau). Polled in the background and cached.",
            labels=["org", "period"],
        )
        for target, window, a in self._view.fresh(ActiveUsers):
            rolling.add_metric([target.org, window], a.active_users)
        for target, period, b in self._view.fresh(LatestActiveUsers):
            latest.add_metric([target.org, period], b.active_users)
        yield from (rolling, latest)


class ConsumptionCollector(_ViewCollector):
    """ACUs consumed, from daily consumption, and the billing cycle, for example::

    devin_acus_consumed{org="org-a",product="devin",window="7d"} 812.4
    devin_billing_cycle_acus_consumed{org="org-a"} 2630.1
    devin_billing_cycle_start_timestamp_seconds 1.7e9
    """

    def collect(self) -> Iterator[Metric]:
        consumed = _gauge(
            "devin_acus_consumed",
            "ACUs consumed over the window by product: the billing days (from 08:00 UTC) "
            "that start inside it; windows shorter than a day are left out (v3).",
            ["org", "window", "product"],
        )
        cycle = GaugeMetricFamily(
            "devin_billing_cycle_acus_consumed",
            "ACUs consumed since the current billing cycle began (v3). Polled in the "
            "background and cached.",
            labels=["org"],
        )
        start = GaugeMetricFamily(
            "devin_billing_cycle_start_timestamp_seconds",
            "Unix time the current billing cycle began (v3 enterprise consumption cycles).",
        )
        end = GaugeMetricFamily(
            "devin_billing_cycle_end_timestamp_seconds",
            "Unix time the current billing cycle ends (v3 enterprise consumption cycles).",
        )
        for target, window, acus in self._view.fresh(ConsumedAcus):
            for product, value in sorted(acus.by_product.items()):
                consumed.add_metric([target.org, window, product], value)
            if window == "cycle":
                cycle.add_metric([target.org], acus.total)
        for _, _, billing in self._view.fresh(BillingCycle):
            start.add_metric([], billing.start)
            end.add_metric([], billing.end)
        yield from (consumed, cycle, start, end)


class CategoryCollector(_ViewCollector):
    """Sessions and ACUs by category, enterprise-wide, for example::

    devin_sessions_by_category{category="bug_fix",window="7d"} 310
    devin_acus_by_category{category="bug_fix",window="7d"} 1201.5
    """

    def collect(self) -> Iterator[Metric]:
        sessions = _gauge(
            "devin_sessions_by_category",
            "Sessions over the window in the whole enterprise, by category (v3).",
            ["category", "window"],
        )
        acus = _gauge(
            "devin_acus_by_category",
            "ACUs of the sessions over the window in the whole enterprise, by category (v3).",
            ["category", "window"],
        )
        for _, window, result in self._view.fresh(SessionsByCategory):
            for category in result.categories:
                sessions.add_metric([category.category, window], category.sessions_count)
                acus.add_metric([category.category, window], category.acus)
        yield from (sessions, acus)


_COLLECTORS: tuple[type[_ViewCollector], ...] = (
    SessionCollector,
    EnterpriseCollector,
    PullRequestCollector,
    ActiveUserCollector,
    ConsumptionCollector,
    CategoryCollector,
    OrgInfoCollector,
    HealthCollector,
)


def view_registry(view: View) -> CollectorRegistry:
    """A registry holding every collector of one view, ready for an exposition encoder."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in _COLLECTORS:
        registry.register(collector(view))
    return registry
