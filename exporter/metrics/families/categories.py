"""Sessions and ACUs by category, enterprise-wide."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric

from exporter.devin.models import SessionsByCategory
from exporter.metrics.view import ViewCollector, gauge


class CategoryCollector(ViewCollector):
    """Sessions and ACUs by category, enterprise-wide, for example::

    devin_sessions_by_category{category="bug_fix",window="7d"} 310
    devin_acus_by_category{category="bug_fix",window="7d"} 1201.5
    """

    def collect(self) -> Iterator[Metric]:
        sessions = gauge(
            "devin_sessions_by_category",
            "Sessions over the window in the whole enterprise, by category (v3).",
            ["category", "window"],
        )
        acus = gauge(
            "devin_acus_by_category",
            "ACUs of the sessions over the window in the whole enterprise, by category (v3).",
            ["category", "window"],
        )
        for _, window, result in self._view.fresh(SessionsByCategory):
            for category in result.categories:
                sessions.add_metric([category.category, window], category.sessions_count)
                acus.add_metric([category.category, window], category.acus)
        yield from (sessions, acus)


COLLECTORS = (CategoryCollector,)
