"""One info series per configured organisation."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.metrics.view import ViewCollector


class OrgInfoCollector(ViewCollector):
    """One series per configured organisation, for joins on its name::

    devin_org_info{name="Payments",org="org-a"} 1
    """

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "devin_org_info",
            "Always 1 for each configured organisation; joins an org id to its display name.",
            labels=["org", "name"],
        )
        for org in self._view.organizations:
            info.add_metric([org.id, org.display_name], 1)
        yield info


COLLECTORS = (OrgInfoCollector,)
