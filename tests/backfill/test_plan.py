"""What a backfill costs in requests, before it asks anything."""

from __future__ import annotations

from pydantic import SecretStr

from exporter.backfill.plan import requests_of
from exporter.backfill.steps import Steps, parse_until
from exporter.devin.table import ENDPOINTS
from exporter.polling.targets import Target
from exporter.windows import Window

WINDOWS = [Window.parse(w) for w in ("1h", "24h", "7d", "30d")]
# 90 days at 1h ending at 08:00 UTC: 2160 steps, 90 of them on a billing-day boundary.
TIMES = Steps(90 * 86400, parse_until("2026-11-20T08:00:00Z"), 3600).times


def target(endpoint: str) -> Target:
    return Target(ENDPOINTS[endpoint], "org-a", SecretStr("cog_x"), 300)


def test_a_rolling_endpoint_costs_a_request_per_window_and_step() -> None:
    assert 2160 * 4 == requests_of(target("v3_org_sessions"), WINDOWS, TIMES)


def test_daily_consumption_costs_one_range_and_the_day_so_far_at_each_step_inside_a_day() -> None:
    assert 1 + 2160 - 90 == requests_of(target("v3_org_consumption_daily"), WINDOWS, TIMES)


def test_dau_wau_mau_and_billing_cycles_cost_the_same_whatever_the_range() -> None:
    assert 3 == requests_of(target("v3_org_active_user_buckets"), WINDOWS, TIMES)
    assert 1 == requests_of(target("v3_enterprise_consumption_cycles"), WINDOWS, TIMES)
    assert 3 == requests_of(target("v3_org_active_user_buckets"), WINDOWS, TIMES[:2])
