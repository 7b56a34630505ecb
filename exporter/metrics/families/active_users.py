"""Active users: over rolling windows, and the last complete day, week, month."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.devin.models import ActiveUsers
from exporter.metrics.view import ViewCollector, gauge
from exporter.polling.strategies import LatestActiveUsers


class ActiveUserCollector(ViewCollector):
    """Active users per organisation, for example::

    devin_active_users{org="org-a",window="30d"} 41
    devin_active_users_latest{org="org-a",period="week"} 27
    """

    def collect(self) -> Iterator[Metric]:
        rolling = gauge(
            "devin_active_users",
            "Users with at least one session or search over the window (v3).",
            ["org", "window"],
        )
        latest = GaugeMetricFamily(
            "devin_active_users_latest",
            "Active users in the last complete UTC day, week (from Monday) or month, by "
            "period (v3 dau/wau/mau).",
            labels=["org", "period"],
        )
        for target, window, a in self._view.fresh(ActiveUsers):
            rolling.add_metric([target.org, window], a.active_users)
        for target, period, b in self._view.fresh(LatestActiveUsers):
            latest.add_metric([target.org, period], b.active_users)
        yield from (rolling, latest)


COLLECTORS = (ActiveUserCollector,)
