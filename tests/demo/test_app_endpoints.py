"""The demo Devin API beyond sessions, as a real server on loopback: auth, validation,
pagination, data that agrees across endpoints, faults, and adding or removing orgs."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from exporter.demo.account import DEMO_ENTERPRISE_CYCLE_LIMIT, DemoAccount, DemoOrg
from exporter.demo.app import DemoAPI
from exporter.devin.client import DevinAPIError, DevinClient, RetryPolicy
from exporter.devin.models import (
    ActiveUsers,
    ActiveUsersSeries,
    BillingCycle,
    BillingCycles,
    CursorPage,
    DailyConsumption,
    OffsetPage,
    OrganizationSummary,
    PrMetrics,
    SearchMetrics,
    SessionMetrics,
    SessionsByCategory,
)
from exporter.devin.spec import Contract
from exporter.devin.table import ENDPOINTS
from exporter.web.listener import listen

T = 1_790_000_000  # the demo API's fixed "now": 2026-09-21T14:13:20Z
DAY = 86400
WEEK = 7 * DAY
WINDOW = {"time_after": T - WEEK, "time_before": T}


def window_for(path: str) -> dict[str, int]:
    """WINDOW where the contract documents a time range for `path`, else no parameters."""
    operation = Contract.load().operation(path)
    assert operation is not None, path
    return WINDOW if "time_after" in operation.parameters else {}


ORG_PATHS = [
    "/v3/organizations/{org}/metrics/prs",
    "/v3/organizations/{org}/metrics/searches",
    "/v3/organizations/{org}/metrics/active-users",
    "/v3/organizations/{org}/metrics/dau",
    "/v3/organizations/{org}/metrics/wau",
    "/v3/organizations/{org}/metrics/mau",
    "/v3/organizations/{org}/consumption/daily",
]
ENTERPRISE_PATHS = [
    "/v3/enterprise/metrics/sessions",
    "/v3/enterprise/metrics/prs",
    "/v3/enterprise/metrics/searches",
    "/v3/enterprise/metrics/active-users",
    "/v3/enterprise/metrics/sessions-by-category",
    "/v3/enterprise/consumption/daily",
    "/v3/enterprise/consumption/cycles",
    "/v3/enterprise/organizations",
]
V2_PATHS = [
    "/v2/enterprise/metrics/prs",
    "/v2/enterprise/consumption/daily",
    "/v2/enterprise/organizations",
]
# Endpoints whose time range is required.
REQUIRED_WINDOW = [p for p in ORG_PATHS + ENTERPRISE_PATHS if "consumption" not in p]
REQUIRED_WINDOW.remove("/v3/enterprise/organizations")


@dataclass
class Served:
    """A running demo API and an httpx client pointed at it."""

    api: DemoAPI
    http: httpx.AsyncClient

    @property
    def account(self) -> DemoAccount:
        return self.api.account

    @property
    def org(self) -> str:
        return self.account.orgs[0].id

    @property
    def orgs(self) -> list[str]:
        return [o.id for o in self.account.orgs]

    def auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    async def get(self, path: str, key: str, params: Any = None) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.auth(key))

    async def org_get(self, path: str, org: str | None = None, **params: Any) -> httpx.Response:
        """An org endpoint with the org-level service user key."""
        url = path.format(org=org or self.org)
        return await self.get(url, self.account.service_user_key, params or window_for(url))

    async def ent_get(self, path: str, params: Any = None) -> httpx.Response:
        """An enterprise endpoint with the account-level service user key."""
        key = self.account.enterprise_service_user_key
        return await self.get(path, key, params or window_for(path))

    async def v2_get(self, path: str, params: Any = None) -> httpx.Response:
        return await self.get(path, self.account.enterprise_key, params)


@asynccontextmanager
async def serve(account: DemoAccount) -> AsyncIterator[Served]:
    api = DemoAPI(account, clock=lambda: float(T))
    listener = await listen(api.app(), "127.0.0.1:0")
    try:
        async with httpx.AsyncClient(base_url=listener.url, timeout=10) as http:
            yield Served(api, http)
    finally:
        await listener.close()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serve(DemoAccount.generate(3, seed=5)) as running:
        yield running


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# Auth.


def test_generate_makes_an_account_level_service_user_key() -> None:
    account = DemoAccount.generate(2)

    key = account.enterprise_service_user_key
    assert key.startswith("cog_")
    assert key not in account.service_user_keys
    assert key not in account.enterprise_keys


@pytest.mark.parametrize("path", ORG_PATHS + ENTERPRISE_PATHS + V2_PATHS)
async def test_no_key_or_an_unknown_key_is_401(served: Served, path: str) -> None:
    url = path.format(org=served.org)

    missing = await served.http.get(url, params=WINDOW)
    unknown = await served.get(url, "cog_not_a_key_of_this_account", WINDOW)

    assert (401, 401) == (missing.status_code, unknown.status_code)
    assert "Invalid or missing API key" == missing.json()["detail"]


@pytest.mark.parametrize("path", ORG_PATHS)
async def test_org_endpoints_answer_the_org_key_and_the_account_key_not_the_admin_key(
    served: Served, path: str
) -> None:
    url = path.format(org=served.org)

    org_key = await served.get(url, served.account.service_user_key, WINDOW)
    account_key = await served.get(url, served.account.enterprise_service_user_key, WINDOW)
    admin_key = await served.get(url, served.account.enterprise_key, WINDOW)

    assert (200, 200, 403) == (org_key.status_code, account_key.status_code, admin_key.status_code)
    assert org_key.json() == account_key.json()
    assert {"detail": "This endpoint needs a service user key (cog_)"} == admin_key.json()


@pytest.mark.parametrize("path", ENTERPRISE_PATHS)
async def test_enterprise_endpoints_need_account_level_permissions(
    served: Served, path: str
) -> None:
    org_key = await served.get(path, served.account.service_user_key, window_for(path))
    admin_key = await served.get(path, served.account.enterprise_key, window_for(path))
    account_key = await served.ent_get(path)

    assert (403, 403, 200) == (
        org_key.status_code,
        admin_key.status_code,
        account_key.status_code,
    )
    assert "application/problem+json" == org_key.headers["Content-Type"].split(";")[0]
    problem = org_key.json()
    assert ("Forbidden", 403) == (problem["title"], problem["status"])
    assert problem["detail"].startswith("Service user lacks ")


@pytest.mark.parametrize("path", V2_PATHS)
async def test_v2_endpoints_need_the_enterprise_admin_key(served: Served, path: str) -> None:
    admin_key = await served.v2_get(path)
    service_key = await served.get(path, served.account.enterprise_service_user_key)

    assert (200, 403) == (admin_key.status_code, service_key.status_code)


async def test_an_org_key_is_403_on_an_org_it_lacks_and_404_on_an_unknown_org() -> None:
    account = DemoAccount(
        orgs=[DemoOrg("org-a", "A"), DemoOrg("org-b", "B")],
        service_user_keys={"cog_x": {"org-a"}},
        enterprise_keys={"apk_user_x"},
        enterprise_service_user_keys={"cog_account"},
    )
    async with serve(account) as running:
        path = "/v3/organizations/{org}/consumption/daily"
        home = await running.get(path.format(org="org-a"), "cog_x")
        other = await running.get(path.format(org="org-b"), "cog_x")
        unknown = await running.get(path.format(org="org-c"), "cog_account")

    assert (200, 403, 404) == (home.status_code, other.status_code, unknown.status_code)
    assert {"detail": "Service user lacks ViewOrgConsumption on this organization"} == (
        other.json()
    )


# Validation.


@pytest.mark.parametrize("path", REQUIRED_WINDOW)
async def test_a_missing_time_after_is_422(served: Served, path: str) -> None:
    response = await served.get(
        path.format(org=served.org),
        served.account.enterprise_service_user_key,
        {"time_before": T},
    )

    assert 422 == response.status_code
    assert [{"loc": ["query", "time_after"], "msg": "Field required", "type": "missing"}] == (
        response.json()["detail"]
    )


@pytest.mark.parametrize(
    ("path", "params", "loc"),
    [
        ("/v3/enterprise/organizations", {"first": 0}, ["query", "first"]),
        ("/v3/enterprise/organizations", {"first": 201}, ["query", "first"]),
        ("/v3/enterprise/consumption/cycles", {"after": "not a cursor"}, ["query", "after"]),
        ("/v3/enterprise/consumption/daily", {"time_after": T, "time_before": 0}, None),
        ("/v3/enterprise/metrics/active-users", {**WINDOW, "min_sessions": -1}, None),
        ("/v3/enterprise/metrics/prs", {"time_after": T, "time_before": "x"}, None),
        ("/v3/enterprise/consumption/daily", {"time_after": 0}, ["query", "time_after"]),
    ],
    ids=[
        "first-0",
        "first-201",
        "bad-cursor",
        "reversed",
        "negative-min",
        "not-int",
        "too-many-days",
    ],
)
async def test_bad_parameters_are_422_http_validation_errors(
    served: Served, path: str, params: dict[str, Any], loc: list[str] | None
) -> None:
    response = await served.ent_get(path, params)

    assert 422 == response.status_code
    [item] = response.json()["detail"]
    assert {"loc", "msg", "type"} == set(item)
    if loc is not None:
        assert loc == item["loc"]


@pytest.mark.parametrize(("params"), [{"limit": 0}, {"limit": 201}, {"skip": -1}])
async def test_bad_v2_page_parameters_are_422(served: Served, params: dict[str, int]) -> None:
    response = await served.v2_get("/v2/enterprise/organizations", params)

    assert 422 == response.status_code


# The data: each body validates, and the endpoints agree with each other.


async def test_org_prs_add_up_and_follow_the_sessions(served: Served) -> None:
    prs = PrMetrics.model_validate_json(
        (await served.org_get("/v3/organizations/{org}/metrics/prs")).content
    )
    sessions = SessionMetrics.model_validate_json(
        (await served.org_get("/v3/organizations/{org}/metrics/sessions")).content
    )

    assert prs.prs_created_count == (
        prs.prs_opened_count + prs.prs_closed_count + prs.prs_merged_count
    )
    merged_sessions = sessions.sessions_with_merged_prs_count
    assert merged_sessions <= prs.prs_merged_count <= 1.3 * merged_sessions + 1
    assert 0 < prs.prs_opened_count < prs.prs_closed_count


async def test_a_longer_window_never_has_fewer_prs_or_searches(served: Served) -> None:
    async def counts(days: int) -> tuple[int, int]:
        window = {"time_after": T - days * DAY, "time_before": T}
        prs = await served.org_get("/v3/organizations/{org}/metrics/prs", **window)
        searches = await served.org_get("/v3/organizations/{org}/metrics/searches", **window)
        return prs.json()["prs_merged_count"], searches.json()["searches_created_count"]

    short, long = await counts(1), await counts(30)

    assert short[0] <= long[0]
    assert short[1] <= long[1]


async def test_searches_follow_sessions_with_search(served: Served) -> None:
    searches = SearchMetrics.model_validate_json(
        (await served.org_get("/v3/organizations/{org}/metrics/searches")).content
    )
    sessions = (await served.org_get("/v3/organizations/{org}/metrics/sessions")).json()

    with_search = sessions["sessions_created_with_search_count"]
    assert 2 * with_search - 1 <= searches.searches_created_count <= 5 * with_search + 1


async def test_active_users_cover_the_range_and_stay_under_headcount(served: Served) -> None:
    response = await served.org_get("/v3/organizations/{org}/metrics/active-users")

    users = ActiveUsers.model_validate_json(response.content)
    headcount = served.account.models[served.org].headcount
    assert 0 < users.active_users <= headcount
    assert (T - WEEK, T) == (users.start_time, users.end_time)


@pytest.mark.parametrize(
    ("period", "starts_on"),
    [("dau", lambda d: d.hour == 0), ("wau", lambda d: d.weekday() == 0 and d.hour == 0)],
)
async def test_buckets_are_ascending_whole_periods_covering_the_range(
    served: Served, period: str, starts_on: Any
) -> None:
    response = await served.org_get(f"/v3/organizations/{{org}}/metrics/{period}")

    buckets = ActiveUsersSeries.model_validate_json(response.content).root
    starts = [b.start_time for b in buckets]
    assert all(s is not None and starts_on(utc(s)) for s in starts)
    assert buckets[0].start_time is not None
    assert buckets[0].start_time <= T - WEEK
    assert buckets[-1].end_time is not None
    assert T <= buckets[-1].end_time
    for earlier, later in itertools.pairwise(buckets):
        assert earlier.end_time is not None
        assert later.start_time == earlier.end_time + 1
    weekly = (await served.org_get("/v3/organizations/{org}/metrics/active-users")).json()
    assert max(b.active_users for b in buckets) <= weekly["active_users"]


async def test_mau_buckets_are_utc_months(served: Served) -> None:
    response = await served.org_get(
        "/v3/organizations/{org}/metrics/mau", time_after=T - 90 * DAY, time_before=T
    )

    buckets = response.json()
    assert [(utc(b["start_time"]).day, utc(b["start_time"]).hour) for b in buckets] == [(1, 0)] * 4
    assert utc(buckets[-1]["end_time"] + 1).day == 1


async def test_an_empty_range_has_no_buckets(served: Served) -> None:
    response = await served.org_get(
        "/v3/organizations/{org}/metrics/dau", time_after=T, time_before=T
    )

    assert [] == response.json()


async def test_org_consumption_days_match_sessions_times_average_acus(served: Served) -> None:
    start = 1_789_372_800  # 2026-09-14T08:00:00Z, a billing day's start
    response = await served.org_get(
        "/v3/organizations/{org}/consumption/daily", time_after=start, time_before=start + DAY
    )

    consumption = DailyConsumption.model_validate_json(response.content)
    [day] = consumption.consumption_by_date
    sessions = (
        await served.org_get(
            "/v3/organizations/{org}/metrics/sessions", time_after=start, time_before=start + DAY
        )
    ).json()
    expected = sessions["sessions_created_count"] * sessions["avg_acus_per_session"]
    assert (start, pytest.approx(expected, abs=0.01)) == (day.date, day.acus)
    assert day.acus_by_product is not None
    assert pytest.approx(day.acus, abs=0.01) == sum(day.acus_by_product.values())
    assert day.acus == consumption.total_acus


async def test_org_consumption_defaults_to_the_current_cycle(served: Served) -> None:
    response = await served.get(
        f"/v3/organizations/{served.org}/consumption/daily", served.account.service_user_key
    )

    days = DailyConsumption.model_validate_json(response.content).consumption_by_date
    assert datetime(2026, 9, 5, 8, tzinfo=UTC) == utc(days[0].date)
    assert days[-1].date <= T < days[-1].date + DAY
    assert 17 == len(days)


async def test_enterprise_metrics_are_sums_over_the_orgs(served: Served) -> None:
    async def org_sum(path: str, field: str) -> int:
        responses = [await served.org_get(path, org) for org in served.orgs]
        return sum(int(r.json()[field]) for r in responses)

    sessions = (await served.ent_get("/v3/enterprise/metrics/sessions")).json()
    prs = (await served.ent_get("/v3/enterprise/metrics/prs")).json()
    searches = (await served.ent_get("/v3/enterprise/metrics/searches")).json()
    users = (await served.ent_get("/v3/enterprise/metrics/active-users")).json()

    org = "/v3/organizations/{org}/metrics/"
    assert (
        await org_sum(org + "sessions", "sessions_created_count")
        == (sessions["sessions_created_count"])
    )
    assert await org_sum(org + "prs", "prs_merged_count") == prs["prs_merged_count"]
    assert (
        await org_sum(org + "searches", "searches_created_count")
        == (searches["searches_created_count"])
    )
    assert await org_sum(org + "active-users", "active_users") == users["active_users"]
    SessionMetrics.model_validate(sessions)


async def test_enterprise_org_ids_select_orgs_by_a_repeated_key_only(
    served: Served,
) -> None:
    """`org_ids` is an array parameter: one id per repeated key. A comma-joined value is
    one (unknown) id, as FastAPI reads it, so it selects nothing."""
    a, b, _ = served.orgs
    path = "/v3/enterprise/metrics/sessions"

    repeated = await served.ent_get(path, [*WINDOW.items(), ("org_ids", a), ("org_ids", b)])
    comma = await served.ent_get(path, {**WINDOW, "org_ids": f"{a},{b}"})
    only_a = await served.org_get("/v3/organizations/{org}/metrics/sessions", a)
    only_b = await served.org_get("/v3/organizations/{org}/metrics/sessions", b)

    expected = only_a.json()["sessions_created_count"] + only_b.json()["sessions_created_count"]
    assert expected == repeated.json()["sessions_created_count"]
    assert 0 == comma.json()["sessions_created_count"]


async def test_sessions_by_category_partition_the_enterprise_sessions(served: Served) -> None:
    by_category = SessionsByCategory.model_validate_json(
        (await served.ent_get("/v3/enterprise/metrics/sessions-by-category")).content
    )
    sessions = (await served.ent_get("/v3/enterprise/metrics/sessions")).json()

    categories = by_category.categories
    assert sessions["sessions_created_count"] == sum(c.sessions_count for c in categories)
    for category in categories:
        assert category.sessions_count == sum(s.sessions_count for s in category.subcategories)
        assert category.acus == pytest.approx(sum(s.acus for s in category.subcategories), abs=0.01)
    total_acus = sessions["sessions_created_count"] * sessions["avg_acus_per_session"]
    assert pytest.approx(total_acus, rel=0.001) == sum(c.acus for c in categories)
    assert {"bug_fix", "feature", "refactor", "tests", "docs", "migration"} == {
        c.category for c in categories
    }


async def test_enterprise_consumption_is_the_sum_of_the_orgs(served: Served) -> None:
    window = {"time_after": T - 3 * DAY, "time_before": T}
    enterprise = DailyConsumption.model_validate_json(
        (await served.ent_get("/v3/enterprise/consumption/daily", window)).content
    )
    per_org = [
        DailyConsumption.model_validate_json(
            (await served.org_get("/v3/organizations/{org}/consumption/daily", o, **window)).content
        )
        for o in served.orgs
    ]

    assert pytest.approx(sum(c.total_acus for c in per_org), abs=0.01) == enterprise.total_acus
    assert [d.date for d in per_org[0].consumption_by_date] == [
        d.date for d in enterprise.consumption_by_date
    ]
    assert pytest.approx(sum(d.acus for d in enterprise.consumption_by_date), abs=0.01) == (
        enterprise.total_acus
    )


async def test_v2_consumption_matches_v3_by_billing_day(served: Served) -> None:
    start, end = T - 3 * DAY, T
    v3 = DailyConsumption.model_validate_json(
        (
            await served.ent_get(
                "/v3/enterprise/consumption/daily", {"time_after": start, "time_before": end}
            )
        ).content
    )
    response = await served.v2_get(
        "/v2/enterprise/consumption/daily", {"start": iso(start), "end": iso(end)}
    )

    v2 = DailyConsumption.model_validate_json(response.content)
    assert [(d.date, d.acus) for d in v3.consumption_by_date] == [
        (d.date, pytest.approx(d.acus, abs=0.01)) for d in v2.consumption_by_date
    ]
    assert all(len(key) == 10 for key in response.json()["consumption_by_date"])
    assert set(served.orgs) == set(v2.consumption_by_org_id)
    assert pytest.approx(v3.total_acus, abs=0.01) == v2.total_acus


async def test_v2_consumption_filtered_by_org_counts_devin_acus_only(served: Served) -> None:
    start, end = T - DAY, T
    v3 = DailyConsumption.model_validate_json(
        (
            await served.org_get(
                "/v3/organizations/{org}/consumption/daily", time_after=start, time_before=end
            )
        ).content
    )
    v2 = (
        await served.v2_get(
            "/v2/enterprise/consumption/daily",
            {"start": iso(start), "end": iso(end), "org_ids": served.org},
        )
    ).json()

    devin = sum((d.acus_by_product or {})["devin"] for d in v3.consumption_by_date)
    assert pytest.approx(devin, abs=0.01) == v2["total_acus"]
    assert [served.org] == list(v2["consumption_by_org_id"])


async def test_v2_prs_are_v3_prs_with_opened_meaning_opened_in_the_period(
    served: Served,
) -> None:
    v3 = (await served.ent_get("/v3/enterprise/metrics/prs")).json()
    v2 = await served.v2_get("/v2/enterprise/metrics/prs", {"start": iso(T - WEEK), "end": iso(T)})

    assert {
        "prs_opened": v3["prs_created_count"],
        "prs_closed": v3["prs_closed_count"],
        "prs_merged": v3["prs_merged_count"],
    } == v2.json()


# Pagination.


async def test_organizations_page_through_every_org_in_id_order(served: Served) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"first": 1}
    for _ in range(10):
        page = CursorPage[OrganizationSummary].model_validate_json(
            (await served.ent_get("/v3/enterprise/organizations", params)).content
        )
        seen += [o.org_id for o in page.items]
        assert 3 == page.total
        if not page.has_next_page:
            assert page.end_cursor is None
            break
        params["after"] = page.end_cursor

    assert sorted(served.orgs) == seen


async def test_organization_items_carry_name_and_times(served: Served) -> None:
    page = (await served.ent_get("/v3/enterprise/organizations")).json()

    names = {o.id: o.name for o in served.account.orgs}
    for item in page["items"]:
        summary = OrganizationSummary.model_validate(item)
        assert names[summary.org_id] == summary.name
        assert summary.created_at is not None
        assert summary.created_at < T
    assert (False, None) == (page["has_next_page"], page["end_cursor"])


async def test_cycles_are_monthly_oldest_first_up_to_the_current_one(served: Served) -> None:
    page = CursorPage[BillingCycle].model_validate_json(
        (await served.ent_get("/v3/enterprise/consumption/cycles", {"first": 200})).content
    )

    cycles = page.items
    assert all((utc(c.start).day, utc(c.start).hour) == (5, 8) for c in cycles)
    assert all(a.end == b.start for a, b in itertools.pairwise(cycles))
    assert cycles[-1].start <= T < cycles[-1].end
    assert T - cycles[0].start >= 400 * DAY
    assert len(cycles) == page.total


async def test_v2_cycles_are_the_same_cycles_with_their_last_second_as_end(
    served: Served,
) -> None:
    v3 = CursorPage[BillingCycle].model_validate_json(
        (await served.ent_get("/v3/enterprise/consumption/cycles", {"first": 200})).content
    )
    raw = (await served.v2_get("/v2/enterprise/consumption/cycles")).json()

    assert {"start": "2026-09-05T08:00:00Z", "end": "2026-10-05T07:59:59Z"} == raw[-1]
    assert v3.items == BillingCycles.model_validate(raw).root


async def test_acu_limits_list_the_enterprise_and_each_limited_organisation(
    served: Served,
) -> None:
    page = (await served.ent_get("/v3/enterprise/consumption/acu-limits/devin")).json()
    listing = (await served.ent_get("/v3/enterprise/organizations")).json()

    limits = {item.get("org_id", ""): item["cycle_acu_limit"] for item in page["items"]}
    assert {"": DEMO_ENTERPRISE_CYCLE_LIMIT} | served.account.cycle_limits == limits
    assert {o["org_id"]: o["max_cycle_acu_limit"] for o in listing["items"]} == {
        o: served.account.cycle_limits.get(o) for o in served.orgs
    }
    assert None in {o["max_cycle_acu_limit"] for o in listing["items"]}  # an unlimited org


async def test_v2_organizations_skip_and_limit(served: Served) -> None:
    first = OffsetPage[OrganizationSummary].model_validate_json(
        (await served.v2_get("/v2/enterprise/organizations", {"limit": 2})).content
    )
    rest = OffsetPage[OrganizationSummary].model_validate_json(
        (await served.v2_get("/v2/enterprise/organizations", {"skip": 2, "limit": 2})).content
    )

    assert (True, 2) == (first.has_more, first.next_cursor)
    assert (False, None) == (rest.has_more, rest.next_cursor)
    assert sorted(served.orgs) == [o.org_id for o in first.items + rest.items]
    assert all(o.org_user_count and o.org_admin_count for o in first.items)
    raw = (await served.v2_get("/v2/enterprise/organizations")).json()
    assert "org_name" in raw["items"][0]
    assert raw["items"][0]["created_at"].endswith("Z")


# Through the real client: retries, gates and pagination on a real socket.


async def test_the_client_reads_every_new_endpoint_of_the_demo(served: Served) -> None:
    client = DevinClient(served.http, retry=RetryPolicy(attempts=1))
    org_key = SecretStr(served.account.service_user_key)
    account_key = SecretStr(served.account.enterprise_service_user_key)
    admin_key = SecretStr(served.account.enterprise_key)

    orgs = await client.pages(ENDPOINTS["v3_enterprise_organizations"], account_key, page_size=1)
    v2_orgs = await client.pages(ENDPOINTS["v2_enterprise_organizations"], admin_key, page_size=2)
    cycles = await client.pages(
        ENDPOINTS["v3_enterprise_consumption_cycles"], account_key, page_size=5
    )
    row = ENDPOINTS["v3_org_active_user_buckets"]
    buckets = await client.fetch(row, org_key, row.call(served.org, T - WEEK, T, period="dau"))
    row = ENDPOINTS["v3_org_consumption_daily"]
    consumption = await client.fetch(row, org_key, row.call(served.org))
    row = ENDPOINTS["v2_enterprise_prs"]
    v2_prs = await client.fetch(row, admin_key, row.call("", T - DAY, T))
    row = ENDPOINTS["v2_enterprise_consumption_daily"]
    v2_consumption = await client.fetch(row, admin_key, row.call("", T - DAY, T))

    assert sorted(served.orgs) == [o.org_id for o in orgs] == [o.org_id for o in v2_orgs]
    assert [o.name for o in orgs] == [o.name for o in v2_orgs]
    assert len(cycles) > 10
    assert 8 == len(buckets.root)
    assert consumption.total_acus > 0
    assert v2_prs.prs_opened is not None
    assert v2_consumption.total_acus > 0


# Faults on the new endpoints.


async def test_a_fault_on_org_prs_hits_prs_only(served: Served) -> None:
    entry = {"endpoint": "v3_org_prs", "org": served.org, "faults": [{"status": 503}]}
    await served.http.post("/_demo/faults", json=entry)

    prs = await served.org_get("/v3/organizations/{org}/metrics/prs")
    sessions = await served.org_get("/v3/organizations/{org}/metrics/sessions")

    assert (503, 200) == (prs.status_code, sessions.status_code)


async def test_a_fault_on_enterprise_organizations_targets_org_empty_string(
    served: Served,
) -> None:
    entry = {"endpoint": "v3_enterprise_organizations", "org": "", "faults": [{"status": 500}]}
    await served.http.post("/_demo/faults", json=entry)
    client = DevinClient(served.http, retry=RetryPolicy(attempts=1))

    with pytest.raises(DevinAPIError) as caught:
        await client.pages(
            ENDPOINTS["v3_enterprise_organizations"],
            SecretStr(served.account.enterprise_service_user_key),
        )

    assert ("server_error", 500) == (caught.value.reason, caught.value.status)


async def test_a_missing_fields_fault_breaks_each_bucket(served: Served) -> None:
    entry = {
        "endpoint": "v3_org_active_user_buckets",
        "org": served.org,
        "faults": [{"body": "missing_fields", "times": 1}],
    }
    await served.http.post("/_demo/faults", json=entry)

    response = await served.org_get("/v3/organizations/{org}/metrics/wau")

    assert 200 == response.status_code
    with pytest.raises(ValidationError):
        ActiveUsersSeries.model_validate_json(response.content)


async def test_requests_to_new_endpoints_are_counted_under_their_names(served: Served) -> None:
    await served.org_get("/v3/organizations/{org}/metrics/dau")
    await served.org_get("/v3/organizations/{org}/metrics/mau")
    await served.ent_get("/v3/enterprise/consumption/cycles", {})

    counts = (await served.http.get("/_demo/requests")).json()

    assert [
        {"endpoint": "v3_enterprise_consumption_cycles", "org": "", "requests": 1},
        {"endpoint": "v3_org_active_user_buckets", "org": served.org, "requests": 2},
    ] == counts


# Administration: organisations come and go.


async def test_an_added_org_is_listed_served_and_reachable_with_the_account_wide_keys(
    served: Served,
) -> None:
    added = await served.http.post("/_demo/orgs", json={"id": "org-new0001", "name": "New"})

    account = (await served.http.get("/_demo/account")).json()
    listed = (await served.ent_get("/v3/enterprise/organizations")).json()
    by_org_key = await served.org_get("/v3/organizations/{org}/metrics/prs", "org-new0001")
    by_account_key = await served.get(
        "/v3/organizations/org-new0001/metrics/sessions",
        served.account.enterprise_service_user_key,
        WINDOW,
    )

    assert {"ok": True} == added.json()
    assert {"id": "org-new0001", "name": "New"} in account["orgs"]
    assert "org-new0001" in [o["org_id"] for o in listed["items"]]
    assert (200, 200) == (by_org_key.status_code, by_account_key.status_code)
    assert by_account_key.json()["sessions_created_count"] > 0


async def test_an_added_org_is_not_granted_to_a_key_limited_to_other_orgs() -> None:
    account = DemoAccount(
        orgs=[DemoOrg("org-a", "A"), DemoOrg("org-b", "B")],
        service_user_keys={"cog_a": {"org-a"}, "cog_all": {"org-a", "org-b"}},
        enterprise_keys={"apk_user_x"},
    )
    async with serve(account) as running:
        await running.http.post("/_demo/orgs", json={"id": "org-c", "name": "C"})
        limited = await running.get("/v3/organizations/org-c/metrics/prs", "cog_a", WINDOW)
        wide = await running.get("/v3/organizations/org-c/metrics/prs", "cog_all", WINDOW)

    assert (403, 200) == (limited.status_code, wide.status_code)


async def test_a_removed_org_disappears_everywhere(served: Served) -> None:
    gone = served.orgs[1]

    removed = await served.http.delete(f"/_demo/orgs/{gone}")

    listed = (await served.ent_get("/v3/enterprise/organizations")).json()
    metrics = await served.org_get("/v3/organizations/{org}/metrics/sessions", gone)
    assert {"ok": True} == removed.json()
    assert gone not in [o["org_id"] for o in listed["items"]]
    assert 2 == listed["total"]
    assert 404 == metrics.status_code
    assert gone not in [o["id"] for o in (await served.http.get("/_demo/account")).json()["orgs"]]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"id": "org-demo0000", "name": "Again"}, 409),
        ({"id": "", "name": "Empty"}, 422),
        ({"id": "org-x", "name": "X", "extra": 1}, 422),
        ({"id": "org x/y", "name": "Slash"}, 422),
    ],
    ids=["duplicate", "empty-id", "unknown-field", "bad-characters"],
)
async def test_a_bad_new_org_is_refused(served: Served, body: dict[str, Any], status: int) -> None:
    response = await served.http.post("/_demo/orgs", json=body)

    assert status == response.status_code
    assert 3 == len(served.account.orgs)


async def test_removing_an_unknown_org_is_404(served: Served) -> None:
    response = await served.http.delete("/_demo/orgs/org-nope")

    assert 404 == response.status_code
