"""ACUs consumed, from daily consumption, and the billing cycle."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.metrics.view import ViewCollector
from exporter.polling.strategies import ConsumedAcus


class ConsumptionCollector(ViewCollector):
    """ACUs consumed, from daily consumption, and the billing cycle, for example::

    devin_acus_consumed{org="org-a",product="devin",window="7d"} 812.4
    devin_billing_cycle_acus_consumed{org="org-a"} 2630.1
    devin_billing_cycle_acus_consumed{org=""} 9120.5
    devin_billing_cycle_start_timestamp_seconds 1.7e9

    The enterprise's own consumption (`org=""`, from the enterprise-wide daily consumption)
    is exported for the cycle only: a sum over `devin_acus_consumed` stays a sum of
    organisations. The cycle's bounds are the poller's (Devin's cycle, or the configured
    billing day), exported by the replica that serves the enterprise-wide series.
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
            "ACUs consumed in the billing days of the current billing cycle so far, per "
            'organisation; org="" is the whole enterprise.',
            labels=["org"],
        )
        start = GaugeMetricFamily(
            "devin_billing_cycle_start_timestamp_seconds",
            "Unix time the current billing cycle began (Devin's billing cycles, or "
            "billing.cycle_start_day).",
        )
        end = GaugeMetricFamily(
            "devin_billing_cycle_end_timestamp_seconds",
            "Unix time the current billing cycle ends (Devin's billing cycles, or "
            "billing.cycle_start_day).",
        )
        for target, window, acus in self._view.fresh(ConsumedAcus):
            for product, value in sorted(acus.by_product.items()):
                if target.org:
                    consumed.add_metric([target.org, window, product], value)
            if window == "cycle":
                cycle.add_metric([target.org], acus.total)
        bounds = self._view.snapshot.cycle
        if bounds is not None and self._view.billing.enterprise:
            start.add_metric([], bounds[0])
            end.add_metric([], bounds[1])
        yield from (consumed, cycle, start, end)


COLLECTORS = (ConsumptionCollector,)
