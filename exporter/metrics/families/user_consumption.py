"""ACUs consumed per user, enterprise-wide, from v2 daily consumption."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric

from exporter.metrics.view import ViewCollector, gauge
from exporter.polling.attribution import UserAcus


class UserConsumptionCollector(ViewCollector):
    """ACUs per user and consumption window: the top users, `other` and `unattributed`,
    adding up to Devin's total for the window, for example::

    devin_user_acus_consumed{user="user_3f2a",window="7d"} 412.5
    devin_user_acus_consumed{user="other",window="7d"} 230.1
    devin_user_acus_consumed{user="unattributed",window="7d"} 41.0
    """

    def collect(self) -> Iterator[Metric]:
        consumed = gauge(
            "devin_user_acus_consumed",
            "ACUs consumed enterprise-wide per user, in the billing days devin_acus_consumed "
            "sums for the window: the top users by ACUs, other (every other user) and "
            "unattributed (Devin's total beyond its users) (v2 daily consumption).",
            ["user", "window"],
        )
        for _, window, acus in self._view.fresh(UserAcus):
            for label, value in sorted(acus.by_label.items()):
                consumed.add_metric([label, window], value)
        yield consumed


COLLECTORS = (UserConsumptionCollector,)
