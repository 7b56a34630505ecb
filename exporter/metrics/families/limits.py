"""ACU limits per billing cycle and per session, and the price of an ACU."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.metrics.view import ViewCollector, gauge
from exporter.polling.strategies import AcuLimits, OrgLimits

_List = TypeVar("_List", AcuLimits, OrgLimits)


class LimitsCollector(ViewCollector):
    """What Devin lets each organisation consume before it stops its work, for example::

    devin_acu_cycle_limit{org="org-a"} 5000
    devin_acu_cycle_limit{org=""} 20000
    devin_acu_session_limit{org="org-a"} 50
    devin_acu_price{currency="USD"} 2.25

    Cycle limits come from the ACU limits list when it is read (an item with an `org_id` is
    that organisation's, one with neither `org_id` nor `user_id` the enterprise's), else
    from the organisations' listing; session limits only from the listing. A null or
    absent limit is no limit: no series, never +Inf. Only this replica's organisations are
    exported, and the enterprise's limit only by the replica serving enterprise-wide series.
    """

    def collect(self) -> Iterator[Metric]:
        cycle = gauge(
            "devin_acu_cycle_limit",
            "ACUs the organisation may consume in one billing cycle before Devin stops its "
            'work; org="" is the enterprise. No series: no limit.',
            ["org"],
        )
        session = gauge(
            "devin_acu_session_limit",
            "ACUs one session of the organisation may consume. No series: no limit.",
            ["org"],
        )
        price = GaugeMetricFamily(
            "devin_acu_price",
            "Price of one ACU in the currency, as configured (billing.acu_price).",
            labels=["currency"],
        )
        polled = {o.id for o in self._view.organizations}
        limits = self._latest(AcuLimits)
        listing = self._latest(OrgLimits)
        by_org: dict[str, float] = {}
        if limits is not None:
            for item in limits.items:
                value, org = item.cycle_acu_limit, item.org_id or ""
                if item.user_id or value is None:
                    continue
                if (org in polled or (not org and self._view.billing.enterprise)) and (
                    org not in by_org or value < by_org[org]
                ):
                    by_org[org] = value  # the binding one, if listed twice
        elif listing is not None:
            by_org = {o: v for o, v in listing.cycle.items() if o in polled and v is not None}
        for org, value in sorted(by_org.items()):
            cycle.add_metric([org], value)
        if listing is not None:
            for org, value in sorted(listing.session.items()):
                if org in polled and value is not None:
                    session.add_metric([org], value)
        billing = self._view.billing
        if billing.acu_price is not None:
            price.add_metric([billing.currency], billing.acu_price)
        yield from (cycle, session, price)

    def _latest(self, kind: type[_List]) -> _List | None:
        """The fresh value of a kind, if any (one target reads each)."""
        return next((value for _, _, value in self._view.fresh(kind)), None)


COLLECTORS = (LimitsCollector,)
