"""The health family: what it says of each target and endpoint, read from a snapshot."""

from __future__ import annotations

from fakes import NOW, Clock, FakeDevin, make_poller
from pydantic import SecretStr

from exporter.devin.table import ENDPOINTS
from exporter.metrics.families.health import HealthCollector, poll_intervals
from exporter.metrics.view import View
from exporter.polling.targets import Target


def make_target(endpoint: str, org: str, interval_seconds: float, segment: str = "") -> Target:
    return Target(ENDPOINTS[endpoint], org, SecretStr("cog_a"), interval_seconds, segment)


def test_poll_interval_is_served_per_endpoint_from_the_snapshots_targets() -> None:
    poller = make_poller(
        FakeDevin(),
        Clock(),
        make_target("v3_org_sessions", "org-a", 300),
        make_target("v3_org_sessions", "org-b", 300),
        make_target("v3_org_consumption_daily", "org-a", 3600),
        make_target("v2_enterprise_sessions", "", 300),
    )
    view = View(poller.snapshot(), (), stale_after_seconds=900, now=NOW)
    family = next(
        m
        for m in HealthCollector(view).collect()
        if m.name == "devin_exporter_poll_interval_seconds"
    )
    served = {s.labels["endpoint"]: s.value for s in family.samples}
    assert {
        "v2_enterprise_sessions": 300,
        "v3_org_consumption_daily": 3600,
        "v3_org_sessions": 300,
    } == served


def test_poll_interval_of_an_endpoint_whose_targets_differ_is_the_longest() -> None:
    """The longest is the one DevinDataStale must allow for, or it would fire early."""
    targets = [
        make_target("v3_org_sessions", "org-a", 300),
        make_target("v3_org_sessions", "org-a", 900, segment="platform"),
        make_target("v3_org_sessions", "org-b", 600),
    ]
    assert {"v3_org_sessions": 900} == poll_intervals(targets)


def test_no_targets_no_poll_interval() -> None:
    assert {} == poll_intervals([])
