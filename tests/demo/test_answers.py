"""The demo's answers: one per row of the table, each body valid, the endpoints agreeing
with each other and with the demo data, pages that cover everything."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from exporter.demo.account import DEMO_ENTERPRISE_CYCLE_LIMIT, DemoAccount
from exporter.demo.answers import ANSWERS, answer_of
from exporter.demo.app import DemoAPI
from exporter.devin.client import DevinClient
from exporter.devin.models import (
    ActiveUsers,
    ActiveUsersSeries,
    BillingCycle,
    BillingCycles,
    CursorPage,
    DailyConsumption,
    EnterpriseSessions,
    OffsetPage,
    OrganizationSummary,
    PrMetrics,
    SearchMetrics,
    SessionMetrics,
    SessionsByCategory,
)
from exporter.devin.retries import RetryPolicy
from exporter.devin.table import ENDPOINTS, ROWS

from .served import (
    DAY,
    WEEK,
    WINDOW,
    Served,
    T,
    iso,
    utc,
)

# The registry: one answer per row of the table.


def test_every_row_of_the_table_has_an_answer() -> None:
    assert [] == [row.name for row in ROWS if row.name not in ANSWERS]


def test_every_answer_names_a_row_of_the_table() -> None:
    assert [] == sorted(set(ANSWERS) - {row.name for row in ROWS})


def test_a_row_without_an_answer_is_a_lookup_error_naming_it() -> None:
    row = dataclasses.replace(ROWS[0], name="v3_org_made_up")

    with pytest.raises(LookupError, match=r"^v3_org_made_up: the demo has no answer"):
        answer_of(row)


def test_the_demo_refuses_to_start_with_a_row_that_has_no_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new row of the table without an answer stops the demo at build time, by name."""
    made_up = dataclasses.replace(ROWS[0], name="v3_org_made_up", whole_enterprise=True)
    monkeypatch.setattr("exporter.demo.app.ROWS", (*ROWS, made_up))

    with pytest.raises(LookupError, match=r"^v3_org_made_up: the demo has no answer"):
        DemoAPI(DemoAccount.generate(1)).app()


# The data.


async def test_v3_body_validates_and_matches_the_org_model(served: Served) -> None:
    response = await served.v3(after=T - 7 * DAY, before=T)

    metrics = SessionMetrics.model_validate_json(response.content)
    expected = served.account.models[served.org].totals(T - 7 * DAY, T)
    assert response.status_code == 200
    assert metrics.sessions_created_count == expected.created
    assert metrics.sessions_created_count > 0
    assert metrics.sessions_created_by_origin["github"] == expected.by_origin["github"]
    assert metrics.sessions_with_merged_prs_count == expected.merged
    assert metrics.avg_acus_per_session == expected.average_acus


async def test_v3_does_not_count_past_its_clock(served: Served) -> None:
    clipped = await served.v3(after=T - DAY, before=T + 30 * DAY)
    now = await served.v3(after=T - DAY, before=T)

    assert clipped.json() == now.json()


async def test_v2_body_validates(served: Served) -> None:
    response = await served.v2({"start": iso(T - DAY), "end": iso(T)})

    assert response.status_code == 200
    assert EnterpriseSessions.model_validate_json(response.content).sessions_count > 0


async def test_v2_with_org_ids_equals_v3_for_the_same_range(served: Served) -> None:
    org = served.account.orgs[1].id
    v3 = await served.v3(org, after=T - 3 * DAY, before=T - DAY)
    v2 = await served.v2({"start": iso(T - 3 * DAY), "end": iso(T - DAY), "org_ids": [org]})

    created = SessionMetrics.model_validate_json(v3.content).sessions_created_count
    assert EnterpriseSessions.model_validate_json(v2.content).sessions_count == created
    assert created > 0


async def test_v2_without_org_ids_is_the_sum_over_all_orgs(served: Served) -> None:
    per_org = [await served.v3(o.id, after=T - DAY, before=T) for o in served.account.orgs]
    total = await served.v2({"start": iso(T - DAY), "end": iso(T)})

    expected = sum(r.json()["sessions_created_count"] for r in per_org)
    assert total.json() == {"sessions_count": expected}


async def test_v2_with_two_org_ids_is_their_sum(served: Served) -> None:
    a, b, _ = (o.id for o in served.account.orgs)
    both = await served.v2({"start": iso(T - DAY), "end": iso(T), "org_ids": [a, b]})
    only_a = await served.v2({"start": iso(T - DAY), "end": iso(T), "org_ids": [a]})
    only_b = await served.v2({"start": iso(T - DAY), "end": iso(T), "org_ids": [b]})

    expected = only_a.json()["sessions_count"] + only_b.json()["sessions_count"]
    assert both.json()["sessions_count"] == expected


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
