"""Every row of the endpoint table, sent through DevinClient against httpx.MockTransport:
the path and query each row asks (checked against the contract), what each answer parses
into; and `Endpoint.call`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import Recorder, answer
from pydantic import SecretStr

from exporter.devin.client import DevinClient
from exporter.devin.errors import DevinAPIError
from exporter.devin.models import (
    KNOWN_ORIGINS,
    ActiveUsers,
    ActiveUsersSeries,
    BillingCycles,
    DailyConsumption,
    EnterpriseSessions,
    PrMetrics,
    SearchMetrics,
    SessionMetrics,
    SessionsByCategory,
    UsageMetrics,
    V2PrMetrics,
)
from exporter.devin.spec import Contract
from exporter.devin.table import ENDPOINTS, RANGE_PARAMS, ROWS, Call, Endpoint

KEY = "cog_ClientMoreTestKey0123456789abcdefgh"
START = datetime(2026, 11, 20, 8, tzinfo=UTC).timestamp()
END = datetime(2026, 11, 21, 8, tzinfo=UTC).timestamp()

PRS = {"prs_created_count": 12, "prs_opened_count": 3, "prs_closed_count": 2, "prs_merged_count": 7}
USERS = {"active_users": 17, "start_time": 1733385600, "end_time": 1735977600}
CONSUMPTION = {
    "total_acus": 10.5,
    "consumption_by_date": [
        {
            "date": 1733385600,
            "acus": 10.5,
            "acus_by_product": {"devin": 9.0, "cascade": 0.5, "terminal": 1.0},
        }
    ],
}
SESSIONS = {
    "sessions_created_count": 7,
    "sessions_created_by_size": {"xs": 7},
    "sessions_created_by_origin": {"slack": 7},
    "sessions_created_with_playbook_count": 1,
    "sessions_created_with_search_count": 2,
    "sessions_with_merged_prs_count": 3,
    "sessions_with_merged_prs_by_size": {"xs": 3},
    "avg_acus_per_session": 1.75,
}
CATEGORIES = {
    "categories": [
        {
            "category": "bug_fix",
            "sessions_count": 4,
            "acus": 12.5,
            "subcategories": [
                {"subcategory_id": None, "display_name": "Crash", "sessions_count": 4, "acus": 12.5}
            ],
        }
    ]
}

K = SecretStr(KEY)
USAGE = {"sessions_count": 9, "searches_count": 4, "prs_created_count": 3, "prs_merged_count": 2}
V2_PRS = {"prs_opened": 1, "prs_closed": 2, "prs_merged": 3}
# A valid answer for each model a row without pagination parses into (every field of the
# all-optional models too, so that the answer reads as Devin's would).
BODIES: dict[type[Any], Any] = {
    SessionMetrics: SESSIONS,
    PrMetrics: PRS,
    SearchMetrics: {"searches_created_count": 42},
    ActiveUsers: USERS,
    ActiveUsersSeries: [USERS],
    DailyConsumption: CONSUMPTION,
    UsageMetrics: USAGE,
    SessionsByCategory: CATEGORIES,
    EnterpriseSessions: {"sessions_count": 12},
    V2PrMetrics: V2_PRS,
    BillingCycles: [{"start": "2026-11-05T08:00:00Z", "end": "2026-12-05T07:59:59Z"}],
}

V3_TIME = [("time_after", "1795161600"), ("time_before", "1795248000")]
V2_TIME = [("start", "2026-11-20T08:00:00Z"), ("end", "2026-11-21T08:00:00Z")]
ORG_IDS = [("org_ids", "org-a")]
_ORG = "/v3/organizations/org-a"

# Each row without pagination, asked for org-a (where it takes an org) over [START, END]:
# the path and the query it must send.
SENT: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "v3_org_sessions": (f"{_ORG}/metrics/sessions", V3_TIME),
    "v3_org_prs": (f"{_ORG}/metrics/prs", V3_TIME),
    "v3_org_searches": (f"{_ORG}/metrics/searches", V3_TIME),
    "v3_org_active_users": (f"{_ORG}/metrics/active-users", V3_TIME),
    "v3_org_active_user_buckets": (f"{_ORG}/metrics/dau", V3_TIME),
    "v3_org_consumption_daily": (f"{_ORG}/consumption/daily", V3_TIME),
    "v3_org_usage": (f"{_ORG}/metrics/usage", V3_TIME),
    "v3_enterprise_sessions": ("/v3/enterprise/metrics/sessions", ORG_IDS + V3_TIME),
    "v3_enterprise_prs": ("/v3/enterprise/metrics/prs", ORG_IDS + V3_TIME),
    "v3_enterprise_searches": ("/v3/enterprise/metrics/searches", ORG_IDS + V3_TIME),
    "v3_enterprise_active_users": ("/v3/enterprise/metrics/active-users", ORG_IDS + V3_TIME),
    "v3_enterprise_active_user_buckets": ("/v3/enterprise/metrics/dau", ORG_IDS + V3_TIME),
    "v3_enterprise_org_consumption_daily": (
        "/v3/enterprise/consumption/daily/organizations/org-a",
        V3_TIME,
    ),
    "v3_enterprise_consumption_daily": ("/v3/enterprise/consumption/daily", V3_TIME),
    "v3_enterprise_usage": ("/v3/enterprise/metrics/usage", V3_TIME),
    "v3_enterprise_org_usage": ("/v3/enterprise/organizations/org-a/metrics/usage", V3_TIME),
    "v3_enterprise_sessions_by_category": (
        "/v3/enterprise/metrics/sessions-by-category",
        ORG_IDS + V3_TIME,
    ),
    "v2_enterprise_sessions": ("/v2/enterprise/metrics/sessions", ORG_IDS + V2_TIME),
    "v2_enterprise_prs": ("/v2/enterprise/metrics/prs", ORG_IDS + V2_TIME),
    "v2_enterprise_consumption_daily": (
        "/v2/enterprise/consumption/daily",
        ORG_IDS + V2_TIME,
    ),
    "v2_enterprise_consumption_cycles": ("/v2/enterprise/consumption/cycles", []),
    # The same endpoint for the whole enterprise: never `org_ids`.
    "v2_enterprise_user_consumption": ("/v2/enterprise/consumption/daily", V2_TIME),
}
SINGLE = [row for row in ROWS if row.pagination == "none"]
PAGED = [row for row in ROWS if row.pagination != "none"]


def contract_problems(request: httpx.Request) -> list[Any]:
    """What the vendored contract finds wrong with a request's query."""
    operation = Contract.load().operation(request.url.path)
    assert operation is not None, f"{request.url.path} is not in the contract"
    params = request.url.params
    return operation.check_query({name: params.get_list(name) for name in params})


def call_for(row: Endpoint[Any]) -> Call:
    """org-a where the row takes an org (path or `org_ids`), `dau` for `{period}`."""
    asks_org = (row.per_org_path or "org_ids" in row.params) and not row.whole_enterprise
    org = "org-a" if asks_org else ""
    period = "dau" if "{period}" in row.path else None
    if not row.params & RANGE_PARAMS:  # a listing without a time range
        return row.call(org, period=period)
    return row.call(org, START, END, period=period)


async def get(client: DevinClient, name: str, org: str = "org-a", **kwargs: Any) -> Any:
    row = ENDPOINTS[name]
    return await client.fetch(row, K, row.call(org, START, END, **kwargs))


def test_every_row_without_pagination_has_its_expected_request() -> None:
    assert sorted(SENT) == sorted(row.name for row in SINGLE)


@pytest.mark.parametrize("row", SINGLE, ids=[row.name for row in SINGLE])
async def test_each_row_sends_its_path_and_query_and_labels_its_endpoint(
    make_client: Callable[..., DevinClient], row: Endpoint[Any]
) -> None:
    path, query = SENT[row.name]
    recorder = Recorder(answer(200, BODIES[row.model]))
    seen: list[tuple[str, int]] = []
    client = make_client(recorder, on_response=lambda e, s: seen.append((e, s)))

    parsed = await client.fetch(row, K, call_for(row))

    (request,) = recorder.requests
    assert "GET" == request.method
    assert path == request.url.path
    assert sorted(query) == sorted(request.url.params.multi_items())
    assert f"Bearer {KEY}" == request.headers["Authorization"]
    assert [(row.name, 200)] == seen
    assert isinstance(parsed, row.model)
    assert [] == contract_problems(request)


_SESSION = {
    "session_id": "s-1",
    "org_id": "org-a",
    "status": "running",
    "acus_consumed": 1,
    "created_at": 1,
    "updated_at": 2,
    "url": "u",
    "tags": [],
    "pull_requests": [],
}
# (row, page size asked or None for the default, the body answered, query of the first page)
PAGED_CASES: dict[str, tuple[int | None, dict[str, Any], list[tuple[str, str]]]] = {
    "v3_enterprise_consumption_cycles": (
        None,
        {"items": [{"after": 1, "before": 2}]},
        [("first", "100")],
    ),
    "v3_enterprise_acu_limits": (
        None,
        {"items": [{"cycle_acu_limit": 5000, "scope": "org", "org_id": "org-a"}]},
        [("first", "100")],
    ),
    "v3_enterprise_organizations": (
        7,
        {"items": [{"org_id": "org-a", "name": "A"}]},
        [("first", "7")],
    ),
    "v2_enterprise_organizations": (
        None,
        {"items": [{"org_id": "org-a", "org_name": "A"}], "has_more": False},
        [("skip", "0"), ("limit", "100")],
    ),
    "v3_org_sessions_list": (
        200,
        {"items": [_SESSION]},
        [("updated_after", "1795161600"), ("first", "200")],
    ),
    "v3_enterprise_sessions_list": (
        None,
        {"items": [_SESSION]},
        [("org_ids", "org-a"), ("updated_after", "1795161600"), ("first", "100")],
    ),
}
# The filters every page of a list is asked with, and the path's parameters.
PAGED_CALLS = {
    "v3_org_sessions_list": Call({"org_id": "org-a"}, {"updated_after": 1795161600}),
    "v3_enterprise_sessions_list": Call({}, {"org_ids": ["org-a"], "updated_after": 1795161600}),
}
PAGED_PATHS = {
    "v3_org_sessions_list": "/v3/organizations/org-a/sessions",
    "v3_enterprise_sessions_list": "/v3/enterprise/sessions",
    "v3_enterprise_consumption_cycles": "/v3/enterprise/consumption/cycles",
    "v3_enterprise_acu_limits": "/v3/enterprise/consumption/acu-limits/devin",
    "v3_enterprise_organizations": "/v3/enterprise/organizations",
    "v2_enterprise_organizations": "/v2/enterprise/organizations",
}


def test_every_paginated_row_has_its_expected_request() -> None:
    assert sorted(PAGED_CASES) == sorted(row.name for row in PAGED)


@pytest.mark.parametrize("row", PAGED, ids=[row.name for row in PAGED])
async def test_each_paginated_row_sends_its_path_and_first_page_query(
    make_client: Callable[..., DevinClient], row: Endpoint[Any]
) -> None:
    size, body, query = PAGED_CASES[row.name]
    recorder = Recorder(answer(200, body))
    seen: list[tuple[str, int]] = []
    client = make_client(recorder, on_response=lambda e, s: seen.append((e, s)))

    call = PAGED_CALLS.get(row.name)
    items = await (
        client.pages(row, K, call=call)
        if size is None
        else client.pages(row, K, page_size=size, call=call)
    )

    (request,) = recorder.requests
    assert PAGED_PATHS[row.name] == request.url.path
    assert query == list(request.url.params.multi_items())
    assert f"Bearer {KEY}" == request.headers["Authorization"]
    assert [(row.name, 200)] == seen
    assert 1 == len(items)
    assert [] == contract_problems(request)


# Endpoint.call: the request as the contract names it.


def test_call_puts_the_org_in_the_path_where_the_path_names_it() -> None:
    row = ENDPOINTS["v3_enterprise_org_consumption_daily"]

    call = row.call("org-a", START, END)

    assert Call({"org_id": "org-a"}, {"time_after": 1795161600, "time_before": 1795248000}) == call
    assert "/v3/enterprise/consumption/daily/organizations/org-a" == row.url(call)


def test_call_puts_the_org_in_org_ids_where_the_path_does_not_name_it() -> None:
    row = ENDPOINTS["v3_enterprise_prs"]

    call = row.call("org-a", START, END)

    assert (
        Call({}, {"org_ids": ["org-a"], "time_after": 1795161600, "time_before": 1795248000})
        == call
    )
    assert "/v3/enterprise/metrics/prs" == row.url(call)


def test_call_for_the_whole_enterprise_sends_no_org_ids() -> None:
    assert Call({}, {"time_before": 200}) == ENDPOINTS["v3_enterprise_prs"].call(end=200)


def test_call_sends_v2_times_as_rfc3339_and_fills_the_period() -> None:
    v2 = ENDPOINTS["v2_enterprise_consumption_daily"].call("", START, END)
    buckets = ENDPOINTS["v3_org_active_user_buckets"]
    wau = buckets.call("org-a", period="wau")

    assert Call({}, {"start": "2026-11-20T08:00:00Z", "end": "2026-11-21T08:00:00Z"}) == v2
    assert "/v3/organizations/org-a/metrics/wau" == buckets.url(wau)
    assert {} == dict(wau.params)


async def test_filters_pass_through_by_name_playbook_id_as_one_value(
    make_client: Callable[..., DevinClient],
) -> None:
    recorder = Recorder(answer(200, SESSIONS))
    row = ENDPOINTS["v3_org_sessions"]
    filters = [("user_ids", ["u-1", "u-2"]), ("playbook_id", ["pb-1"])]

    call = row.call("org-a", START, END, filters)
    await make_client(recorder).fetch(row, K, call)

    assert ["u-1", "u-2"] == call.params["user_ids"]
    assert "pb-1" == call.params["playbook_id"]
    assert sorted(
        [*V3_TIME, ("user_ids", "u-1"), ("user_ids", "u-2"), ("playbook_id", "pb-1")]
    ) == sorted(recorder.requests[0].url.params.multi_items())


@pytest.mark.parametrize(
    ("name", "org", "filters", "unknown"),
    [
        ("v3_org_searches", "org-a", [("user_ids", ["u-1"])], "user_ids"),
        ("v3_org_consumption_daily", "org-a", [("playbook_id", ["pb-1"])], "playbook_id"),
        ("v3_enterprise_usage", "org-a", [], "org_ids"),
        ("v3_enterprise_consumption_daily", "org-a", [], "org_ids"),
        ("v2_enterprise_consumption_daily", "", [("user_ids", ["u-1"])], "user_ids"),
    ],
)
def test_call_refuses_a_parameter_the_row_does_not_document(
    name: str, org: str, filters: list[tuple[str, list[str]]], unknown: str
) -> None:
    with pytest.raises(ValueError, match=f"^{name} takes no {unknown}$"):
        ENDPOINTS[name].call(org, START, END, filters)


async def test_a_call_without_a_window_sends_no_time_parameters(
    make_client: Callable[..., DevinClient],
) -> None:
    recorder = Recorder(answer(200, CONSUMPTION))
    client = make_client(recorder)
    row = ENDPOINTS["v3_org_consumption_daily"]
    enterprise = ENDPOINTS["v3_enterprise_consumption_daily"]

    await client.fetch(row, K, row.call("org-a"))
    await client.fetch(enterprise, K, enterprise.call(end=200))

    assert [
        ("/v3/organizations/org-a/consumption/daily", []),
        ("/v3/enterprise/consumption/daily", [("time_before", "200")]),
    ] == [(r.url.path, list(r.url.params.multi_items())) for r in recorder.requests]


# What each answer parses into.


async def test_org_prs_parses_the_four_counts(make_client: Callable[..., DevinClient]) -> None:
    prs = await get(make_client(answer(200, {**PRS, "prs_taken_over_count": 1})), "v3_org_prs")

    assert (12, 3, 2, 7, 1) == (
        prs.prs_created_count,
        prs.prs_opened_count,
        prs.prs_closed_count,
        prs.prs_merged_count,
        prs.prs_taken_over_count,
    )


async def test_v2_prs_parse_into_their_own_model(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {"prs_opened": 45, "prs_closed": 42, "prs_merged": 38}

    prs = await get(make_client(answer(200, body)), "v2_enterprise_prs", "")

    assert V2PrMetrics is type(prs)
    assert (45, 42, 38) == (prs.prs_opened, prs.prs_closed, prs.prs_merged)
    assert [] == prs.missing()


async def test_usage_parses_the_four_counts(make_client: Callable[..., DevinClient]) -> None:
    usage = await get(make_client(answer(200, USAGE)), "v3_enterprise_org_usage")

    assert (9, 4, 3, 2) == (
        usage.sessions_count,
        usage.searches_count,
        usage.prs_created_count,
        usage.prs_merged_count,
    )


async def test_buckets_are_the_plain_array_as_a_list(
    make_client: Callable[..., DevinClient],
) -> None:
    body = [
        {"active_users": 5, "start_time": 1733356800, "end_time": 1733443199},
        {"active_users": 6, "start_time": 1733443200, "end_time": 1733529599},
    ]

    buckets = await get(make_client(answer(200, body)), "v3_org_active_user_buckets", period="dau")

    assert [5, 6] == [b.active_users for b in buckets.root]
    assert 1733443199 == buckets.root[0].end_time


async def test_a_bucket_answer_that_is_an_object_is_invalid_response(
    make_client: Callable[..., DevinClient],
) -> None:
    with pytest.raises(DevinAPIError) as caught:
        await get(make_client(answer(200, USERS)), "v3_org_active_user_buckets", period="mau")

    assert "invalid_response" == caught.value.reason


async def test_consumption_keeps_unknown_products_and_fills_known_ones(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {
        "total_acus": 3.0,
        "consumption_by_date": [
            {"date": 1733472000, "acus": 1.0, "acus_by_product": {"devin": 1.0, "review": None}},
            {"date": 1733385600, "acus": 2.0, "acus_by_product": {"devin": 1.5, "windsurf": 0.5}},
        ],
    }

    consumption = await get(make_client(answer(200, body)), "v3_org_consumption_daily")

    first, second = consumption.consumption_by_date
    assert (1733385600, 1733472000) == (first.date, second.date)
    assert {"devin": 1.5, "cascade": 0.0, "terminal": 0.0, "review": 0.0, "windsurf": 0.5} == (
        first.acus_by_product
    )
    assert {"devin": 1.0, "cascade": 0.0, "terminal": 0.0, "review": 0.0} == (
        second.acus_by_product
    )


async def test_v2_consumption_dates_become_billing_day_starts(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {
        "total_acus": 1250.5,
        "consumption_by_date": {"2024-12-06": 125.0, "2024-12-05": 100.0},
        "consumption_by_org_id": {"org_123": 800.0},
        "consumption_by_user": {"user_123": 325.5},
    }

    consumption = await get(make_client(answer(200, body)), "v2_enterprise_consumption_daily", "")

    # 2024-12-05 08:00 UTC is midnight PST, the v3 example's `date`.
    assert [(1733385600, 100.0), (1733472000, 125.0)] == [
        (d.date, d.acus) for d in consumption.consumption_by_date
    ]
    assert consumption.consumption_by_date[0].acus_by_product is None
    assert {"org_123": 800.0} == consumption.consumption_by_org_id


async def test_enterprise_sessions_parse_like_org_sessions(
    make_client: Callable[..., DevinClient],
) -> None:
    metrics = await get(make_client(answer(200, SESSIONS)), "v3_enterprise_sessions", "")

    assert 7 == metrics.sessions_created_count
    assert set(KNOWN_ORIGINS) <= set(metrics.sessions_created_by_origin)
