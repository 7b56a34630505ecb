"""ACUs consumed, from daily consumption, and the billing cycle."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.devin.models import BillingCycle
from exporter.metrics.view import ViewCollector
from exporter.polling.strategies import ConsumedAcus


class ConsumptionCollector(ViewCollector):
    """ACUs consumed, from daily consumption, and the billing cycle, for example::

    devin_acus_consumed{org="org-a",product="devin",window="7d"} 812.4
    devin_billing_cycle_acus_consumed{org="org-a"} 2630.1
    devin_billing_cycle_start_timestamp_seconds 1.7e9
    """

    def collect(self) -> Iterator[Metric]:
        consumed = GaugeMetricFamily(
            "devin_acus_consumed",
            "ACUs consumed by product, in billing days (from 08:00 UTC): today is the current "
            "day so far, cycle the billing cycle so far, and N whole days (24h, 7d, 30d) the N "
            "complete days before today; other windows are left out (v3).",
            labels=["org", "window", "product"],
        )
        cycle = GaugeMetricFamily(
            "devin_billing_cycle_acus_consumed",
            "ACUs consumed since the current billing cycle began (v3).",
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


COLLECTORS = (ConsumptionCollector,)
