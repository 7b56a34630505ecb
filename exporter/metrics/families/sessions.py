"""Sessions per organisation and window (v3 metrics/sessions)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric

from exporter.devin.models import SessionMetrics
from exporter.metrics.view import ViewCollector, adder, each, gauge


class SessionCollector(ViewCollector):
    """v3 per-organisation session metrics, for example::

    devin_sessions_created{org="org-a",window="24h"} 331
    devin_sessions_created_by_origin{org="org-a",origin="slack",window="24h"} 97
    devin_session_average_acus{org="org-a",window="24h"} 4.02
    """

    def collect(self) -> Iterator[Metric]:
        org_window = ["org", "window"]
        created = gauge(
            "devin_sessions_created",
            "Sessions created in the organisation over the window (v3).",
            org_window,
        )
        by_origin = gauge(
            "devin_sessions_created_by_origin",
            "Sessions created over the window by origin (v3).",
            [*org_window, "origin"],
        )
        by_size = gauge(
            "devin_sessions_created_by_size",
            "Sessions created over the window by size (v3).",
            [*org_window, "size"],
        )
        playbook = gauge(
            "devin_sessions_created_with_playbook",
            "Sessions created over the window that used a playbook (v3).",
            org_window,
        )
        search = gauge(
            "devin_sessions_created_with_search",
            "Sessions created over the window that used search (v3).",
            org_window,
        )
        merged = gauge(
            "devin_sessions_with_merged_prs",
            "Sessions created over the window that ended with a merged pull request (v3).",
            org_window,
        )
        merged_by_size = gauge(
            "devin_sessions_with_merged_prs_by_size",
            "Sessions with a merged pull request over the window, by session size (v3).",
            [*org_window, "size"],
        )
        acus = gauge(
            "devin_session_average_acus",
            "Average ACUs consumed per session created over the window (v3).",
            org_window,
        )
        for target, window, m in self._view.fresh(SessionMetrics):
            base = {"org": target.org, "window": window}
            add = adder(target)
            add(created, base, m.sessions_created_count)
            for origin, count in each(m.sessions_created_by_origin):
                add(by_origin, {**base, "origin": origin}, count)
            for size, count in each(m.sessions_created_by_size):
                add(by_size, {**base, "size": size}, count)
            add(playbook, base, m.sessions_created_with_playbook_count)
            add(search, base, m.sessions_created_with_search_count)
            add(merged, base, m.sessions_with_merged_prs_count)
            for size, count in each(m.sessions_with_merged_prs_by_size):
                add(merged_by_size, {**base, "size": size}, count)
            add(acus, base, m.avg_acus_per_session)
        yield from (created, by_origin, by_size, playbook, search, merged, merged_by_size, acus)


COLLECTORS = (SessionCollector,)
