"""Pull requests and searches per organisation and window."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric

from exporter.devin.models import PrMetrics, SearchMetrics, V2PrMetrics
from exporter.metrics.view import ViewCollector, gauge


class PullRequestCollector(ViewCollector):
    """Pull requests and searches per organisation (v3), for example::

    devin_prs{org="org-a",state="merged",window="7d"} 212
    devin_searches_created{org="org-a",window="7d"} 1310
    """

    def collect(self) -> Iterator[Metric]:
        prs = gauge(
            "devin_prs",
            "Pull requests over the window by state: created, merged and closed in the "
            "window; opened is the number still open at its end (v3).",
            ["org", "window", "state"],
        )
        searches = gauge(
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
        for target, window, v2 in self._view.fresh(V2PrMetrics):
            # v2's opened means opened in the period: v3's created.
            for state, v2_count in (
                ("created", v2.prs_opened),
                ("closed", v2.prs_closed),
                ("merged", v2.prs_merged),
            ):
                if v2_count is not None:
                    prs.add_metric([target.org, window, state], v2_count)
        for target, window, q in self._view.fresh(SearchMetrics):
            searches.add_metric([target.org, window], q.searches_created_count)
        yield from (prs, searches)


COLLECTORS = (PullRequestCollector,)
