"""The metric families beyond the seed sessions (PRs, searches, active users, usage,
consumption, cycles, categories) equal the demo API end to end, through every key's route:
an org's own key, the enterprise service user by `org_ids`, and the v2 enterprise admin key."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import FIXED_NOW, Clock, Demo, running_exporter
from scrape import Series, label_values, parse, value

from exporter import main
from exporter.devin.table import rfc3339
from exporter.windows import day_start

pytestmark = pytest.mark.slow  # real processes, servers or builds

DAY = 86400


async def get(http: httpx.AsyncClient, demo: Demo, path: str, **params: Any) -> Any:
    key = (
        demo.account.enterprise_service_user_key
        if path.startswith("/v3/enterprise")
        else demo.account.service_user_key
    )
    response = await http.get(
        f"{demo.url}{path}", params=params, headers={"Authorization": f"Bearer {key}"}
    )
    assert 200 == response.status_code, response.text
    return response.json()


async def scrape(http: httpx.AsyncClient, runtime: main.Runtime) -> Series:
    return parse((await http.get(f"{runtime.url}/metrics")).text)


async def test_prs_searches_and_active_users_equal_the_demo_api(
    running_everything: main.Runtime, demo: Demo, http: httpx.AsyncClient
) -> None:
    series = await scrape(http, running_everything)
    org = demo.account.orgs[0].id
    span = {"time_after": int(FIXED_NOW - 7 * DAY), "time_before": int(FIXED_NOW)}
    prs = await get(http, demo, f"/v3/organizations/{org}/metrics/prs", **span)
    for state in ("created", "opened", "closed", "merged"):
        assert prs[f"prs_{state}_count"] == value(
            series, "devin_prs", org=org, window="7d", state=state
        )
    searches = await get(http, demo, f"/v3/organizations/{org}/metrics/searches", **span)
    assert searches["searches_created_count"] == value(
        series, "devin_searches_created", org=org, window="7d"
    )
    active = await get(http, demo, f"/v3/organizations/{org}/metrics/active-users", **span)
    assert active["active_users"] == value(series, "devin_active_users", org=org, window="7d")
    assert {"day", "week", "month"} == label_values(series, "devin_active_users_latest", "period")
    # The last complete UTC day of the three days the exporter asks for.
    days = await get(
        http,
        demo,
        f"/v3/organizations/{org}/metrics/dau",
        time_after=int(FIXED_NOW - 3 * DAY),
        time_before=int(FIXED_NOW),
    )
    complete = [d for d in days if d["end_time"] <= FIXED_NOW]
    last = max(complete, key=lambda d: d["end_time"])
    assert last["active_users"] == value(series, "devin_active_users_latest", org=org, period="day")


async def test_consumption_sums_billing_days_and_costs_one_request_per_org(
    running_everything: main.Runtime, demo: Demo, http: httpx.AsyncClient
) -> None:
    series = await scrape(http, running_everything)
    org = demo.account.orgs[1].id
    # One request for every window (1h, 24h, 7d, 30d and the cycle), per org and poll.
    assert 1 == demo.api.plan.requests["v3_org_consumption_daily", org]
    assert 3 == demo.api.plan.requests["v3_org_active_user_buckets", org]
    assert 4 == demo.api.plan.requests["v3_org_prs", org]
    today = day_start(FIXED_NOW)
    answer = await get(
        http,
        demo,
        f"/v3/organizations/{org}/consumption/daily",
        time_after=int(today - 7 * DAY),
        time_before=int(FIXED_NOW),
    )

    def complete_days(n: int) -> float:
        """The n complete billing days before the current one, as the demo answers them."""
        days = answer["consumption_by_date"]
        return float(sum(d["acus"] for d in days if today - n * DAY <= d["date"] < today))

    def exported_sum(window: str) -> float:
        return sum(
            v
            for (name, labels), v in series.items()
            if name == "devin_acus_consumed"
            and dict(labels) | {"product": ""} == {"org": org, "window": window, "product": ""}
        )

    expected, exported = complete_days(7), exported_sum("7d")
    assert abs(complete_days(1) - exported_sum("24h")) < 1e-6
    assert abs(expected - exported) < 1e-6
    assert value(series, "devin_acus_consumed", org=org, window="1h", product="devin") is None
    assert (value(series, "devin_billing_cycle_acus_consumed", org=org) or 0) > 0


async def test_billing_cycle_and_categories_equal_the_demo_api(
    running_everything: main.Runtime, demo: Demo, http: httpx.AsyncClient
) -> None:
    series = await scrape(http, running_everything)
    cycles = await get(http, demo, "/v3/enterprise/consumption/cycles", first=200)
    current = [c for c in cycles["items"] if c["after"] <= FIXED_NOW < c["before"]]
    assert [current[0]["after"]] == [value(series, "devin_billing_cycle_start_timestamp_seconds")]
    assert current[0]["after"] == running_everything.poller.cycle_start(FIXED_NOW)
    categories = await get(
        http,
        demo,
        "/v3/enterprise/metrics/sessions-by-category",
        time_after=int(FIXED_NOW - DAY),
        time_before=int(FIXED_NOW),
    )
    for category in categories["categories"]:
        assert category["sessions_count"] == value(
            series, "devin_sessions_by_category", category=category["category"], window="24h"
        )


async def test_enterprise_mode_polls_orgs_without_keys_through_org_ids(
    demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    settings = demo.settings(
        devin={
            "base_url": demo.url,
            "enterprise_service_user_key": demo.account.enterprise_service_user_key,
            "retry_initial_backoff": "10ms",
            "requests_per_second": 1000,
        },
        endpoints={
            group: {"enabled": True}
            for group in (
                "prs",
                "searches",
                "active_users",
                "active_user_buckets",
                "consumption",
                "usage",
            )
        },
    )
    async with running_exporter(settings, clock) as runtime:
        series = await scrape(http, runtime)
    org = demo.account.orgs[2].id
    assert {
        "v3_enterprise_sessions",
        "v3_enterprise_prs",
        "v3_enterprise_searches",
        "v3_enterprise_active_users",
        "v3_enterprise_active_user_buckets",
        "v3_enterprise_org_consumption_daily",
        "v3_enterprise_org_usage",
        "v3_enterprise_usage",
        "v3_enterprise_consumption_daily",  # the enterprise's own cycle total
        "v3_enterprise_consumption_cycles",  # the billing cycle and the limits
        "v3_enterprise_acu_limits",
        "v3_enterprise_organizations",
    } == {t.endpoint for t in runtime.poller.targets}
    direct = await get(
        http,
        demo,
        f"/v3/organizations/{org}/metrics/sessions",
        time_after=int(FIXED_NOW - DAY),
        time_before=int(FIXED_NOW),
    )
    assert direct["sessions_created_count"] == value(
        series, "devin_sessions_created", org=org, window="24h"
    )
    assert 1 == value(series, "devin_up", endpoint="v3_enterprise_sessions", org=org)
    span = {"time_after": int(FIXED_NOW - DAY), "time_before": int(FIXED_NOW)}
    prs = await get(http, demo, f"/v3/organizations/{org}/metrics/prs", **span)
    assert prs["prs_merged_count"] == value(
        series, "devin_prs", org=org, window="24h", state="merged"
    )
    searches = await get(http, demo, f"/v3/organizations/{org}/metrics/searches", **span)
    assert searches["searches_created_count"] == value(
        series, "devin_searches_created", org=org, window="24h"
    )
    active = await get(http, demo, f"/v3/organizations/{org}/metrics/active-users", **span)
    assert active["active_users"] == value(series, "devin_active_users", org=org, window="24h")
    usage = await get(http, demo, f"/v3/organizations/{org}/metrics/usage", **span)
    assert usage["sessions_count"] == value(series, "devin_usage_sessions", org=org, window="24h")
    # dau/wau/mau through the enterprise twin: the org's own last complete day.
    days = await get(
        http,
        demo,
        f"/v3/organizations/{org}/metrics/dau",
        time_after=int(FIXED_NOW - 3 * DAY),
        time_before=int(FIXED_NOW),
    )
    complete = [d for d in days if d["end_time"] < FIXED_NOW]
    assert complete[-1]["active_users"] == value(
        series, "devin_active_users_latest", org=org, period="day"
    )
    # Per-org consumption through its own enterprise route: the org's ACUs, not the
    # enterprise total (which an `org_ids` the route ignores would have given every org).
    own = await get(http, demo, f"/v3/organizations/{org}/consumption/daily")
    total = await get(http, demo, "/v3/enterprise/consumption/daily")
    exported = value(series, "devin_billing_cycle_acus_consumed", org=org)
    assert exported == pytest.approx(own["total_acus"], abs=0.01)
    assert exported != pytest.approx(total["total_acus"], abs=0.01)


async def test_orgs_only_the_enterprise_admin_key_sees_are_polled_through_v2(
    demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    """Customers with only an enterprise admin key get PRs and consumption from v2."""
    settings = demo.settings(
        devin={
            "base_url": demo.url,
            "enterprise_key": demo.account.enterprise_key,
            "retry_initial_backoff": "10ms",
        },
        endpoints={"prs": {"enabled": True}, "consumption": {"enabled": True}},
    )
    async with running_exporter(settings, clock) as runtime:
        series = await scrape(http, runtime)
    assert {
        "v2_enterprise_sessions",
        "v2_enterprise_prs",
        "v2_enterprise_consumption_daily",
        "v2_enterprise_consumption_cycles",  # the billing cycle and the limits
        "v2_enterprise_organizations",
    } == {t.endpoint for t in runtime.poller.targets}
    org = demo.account.orgs[0].id
    auth = {"Authorization": f"Bearer {demo.account.enterprise_key}"}
    span = {
        "start": rfc3339(FIXED_NOW - 7 * DAY),
        "end": rfc3339(FIXED_NOW),
        "org_ids": [org],
    }
    prs = (
        await http.get(f"{demo.url}/v2/enterprise/metrics/prs", params=span, headers=auth)
    ).json()
    # v2's "opened" is opened in the period: v3's created.
    assert prs["prs_opened"] == value(series, "devin_prs", org=org, window="7d", state="created")
    assert prs["prs_merged"] == value(series, "devin_prs", org=org, window="7d", state="merged")
    assert value(series, "devin_prs", org=org, window="7d", state="opened") is None
    assert (value(series, "devin_billing_cycle_acus_consumed", org=org) or 0) > 0
    assert 1 == value(series, "devin_up", endpoint="v2_enterprise_consumption_daily", org=org)
    # With org_ids, v2 counts Devin session ACUs only: they are product="devin".
    consumption = {
        dict(labels)["product"]: v
        for (name, labels), v in series.items()
        if name == "devin_acus_consumed"
        and dict(labels)["org"] == org
        and dict(labels)["window"] == "7d"
    }
    day_start = (FIXED_NOW - 8 * 3600) // DAY * DAY + 8 * 3600  # the last 08:00 UTC
    days = {"start": rfc3339(day_start - 7 * DAY), "end": rfc3339(day_start), "org_ids": [org]}
    daily = (
        await http.get(f"{demo.url}/v2/enterprise/consumption/daily", params=days, headers=auth)
    ).json()
    assert ["devin"] == list(consumption)
    assert consumption["devin"] == pytest.approx(daily["total_acus"], abs=0.01)
