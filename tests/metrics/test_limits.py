"""The limits family: which items of the ACU limits list and of the listings become series."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr

from exporter.config import Organization
from exporter.devin.models import AcuLimit
from exporter.devin.table import ENDPOINTS
from exporter.metrics.families.limits import LimitsCollector
from exporter.metrics.view import Billing, View
from exporter.polling.snapshot import Sample, Snapshot
from exporter.polling.strategies import AcuLimits, OrgLimits
from exporter.polling.targets import Target

NOW = 1_800_000_000.0
KEY = SecretStr("cog_e")


SHARD_0 = Billing()


def collected(
    values: dict[str, BaseModel], billing: Billing = SHARD_0, orgs: tuple[str, ...] = ("a", "b")
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(family, labels): value} the collector yields for these samples (by endpoint)."""
    samples = {
        (Target(ENDPOINTS[endpoint], "", KEY, 3600.0), "limits"): Sample(value, NOW)
        for endpoint, value in values.items()
    }
    snapshot = Snapshot(1, tuple(t for t, _ in samples), (), samples, {}, {}, frozenset())
    view = View(snapshot, tuple(Organization(id=o) for o in orgs), 900.0, NOW, billing)
    return {
        (family.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in LimitsCollector(view).collect()
        for sample in family.samples
    }


def limit(value: float | None, org: str | None = None, user: str | None = None) -> AcuLimit:
    scope = "user" if user else ("org" if org else "enterprise")
    return AcuLimit(cycle_acu_limit=value, scope=scope, org_id=org, user_id=user)


def test_org_items_are_org_limits_the_item_without_org_or_user_the_enterprises() -> None:
    items = [limit(900.0), limit(100.0, "a"), limit(5.0, "a", "u-1"), limit(7.0, "c")]

    found = collected({"v3_enterprise_acu_limits": AcuLimits(items=items)})

    assert {
        ("devin_acu_cycle_limit", (("org", ""),)): 900.0,
        ("devin_acu_cycle_limit", (("org", "a"),)): 100.0,  # c is not polled; u-1 a user's
    } == found


def test_a_null_limit_is_no_series_and_a_repeated_org_keeps_the_binding_one() -> None:
    items = [limit(None, "a"), limit(300.0, "b"), limit(200.0, "b")]

    found = collected({"v3_enterprise_acu_limits": AcuLimits(items=items)})

    assert {("devin_acu_cycle_limit", (("org", "b"),)): 200.0} == found


def test_listings_give_session_limits_and_cycle_limits_when_the_list_is_not_read() -> None:
    listing = OrgLimits(cycle={"a": 50.0, "b": None}, session={"a": 5.0, "b": 6.0, "c": 7.0})

    alone = collected({"v2_enterprise_organizations": listing})
    beside = collected(
        {
            "v3_enterprise_organizations": listing,
            "v3_enterprise_acu_limits": AcuLimits(items=[limit(80.0, "b")]),
        }
    )

    sessions = {
        ("devin_acu_session_limit", (("org", "a"),)): 5.0,
        ("devin_acu_session_limit", (("org", "b"),)): 6.0,
    }
    assert {("devin_acu_cycle_limit", (("org", "a"),)): 50.0, **sessions} == alone
    assert {("devin_acu_cycle_limit", (("org", "b"),)): 80.0, **sessions} == beside


def test_other_shards_leave_the_enterprise_limit_to_shard_0_and_the_price_is_configured() -> None:
    items = [limit(900.0), limit(100.0, "a")]

    found = collected(
        {"v3_enterprise_acu_limits": AcuLimits(items=items)},
        Billing(enterprise=False, acu_price=2.5, currency="EUR"),
    )

    assert {
        ("devin_acu_cycle_limit", (("org", "a"),)): 100.0,
        ("devin_acu_price", (("currency", "EUR"),)): 2.5,
    } == found
