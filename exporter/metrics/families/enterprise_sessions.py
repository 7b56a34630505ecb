"""Session counts from the enterprise admin's v2 API."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric

from exporter.devin.models import EnterpriseSessions
from exporter.metrics.view import ViewCollector, gauge


class EnterpriseCollector(ViewCollector):
    """v2 enterprise session counts, for example::

    devin_enterprise_sessions{window="24h"} 1120
    devin_enterprise_org_sessions{org="org-a",window="24h"} 331
    """

    def collect(self) -> Iterator[Metric]:
        total = gauge(
            "devin_enterprise_sessions",
            "Sessions in the whole enterprise over the window (v2).",
            ["window"],
        )
        per_org = gauge(
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


COLLECTORS = (EnterpriseCollector,)
