"""Usage counts per organisation and window (v3 metrics/usage), for example::

devin_usage_sessions{org="org-a",window="7d"} 331
devin_usage_prs{org="org-a",state="merged",window="7d"} 42
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric

from exporter.devin.models import UsageMetrics
from exporter.metrics.view import ViewCollector, adder, gauge


class UsageCollector(ViewCollector):
    """Devin's own usage summary: sessions, searches, PRs created and merged."""

    def collect(self) -> Iterator[Metric]:
        sessions = gauge(
            "devin_usage_sessions",
            "Sessions over the window, as Devin's usage summary counts them (v3 usage).",
            ["org", "window"],
        )
        searches = gauge(
            "devin_usage_searches",
            "Searches over the window, as Devin's usage summary counts them (v3 usage).",
            ["org", "window"],
        )
        prs = gauge(
            "devin_usage_prs",
            "Pull requests created and merged over the window, by state (v3 usage).",
            ["org", "window", "state"],
        )
        for target, window, u in self._view.fresh(UsageMetrics):
            base = {"org": target.org, "window": window}
            add = adder(target)
            add(sessions, base, u.sessions_count)
            add(searches, base, u.searches_count)
            add(prs, {**base, "state": "created"}, u.prs_created_count)
            add(prs, {**base, "state": "merged"}, u.prs_merged_count)
        yield from (sessions, searches, prs)


COLLECTORS = (UsageCollector,)
