"""DevinClient beyond sessions, against httpx.MockTransport: paths, parameters, parsing,
pagination and problem-details errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import Handler, Recorder, answer
from pydantic import SecretStr

from exporter import client as client_module
from exporter.client import (
    V2_ENTERPRISE_CONSUMPTION_DAILY,
    V2_ENTERPRISE_ORGANIZATIONS,
    V2_ENTERPRISE_PRS,
    V3_ENTERPRISE_ACTIVE_USERS,
    V3_ENTERPRISE_CONSUMPTION_CYCLES,
    V3_ENTERPRISE_CONSUMPTION_DAILY,
    V3_ENTERPRISE_ORGANIZATIONS,
    V3_ENTERPRISE_PRS,
    V3_ENTERPRISE_SEARCHES,
    V3_ENTERPRISE_SESSIONS,
    V3_ENTERPRISE_SESSIONS_BY_CATEGORY,
    V3_ORG_ACTIVE_USER_BUCKETS,
    V3_ORG_ACTIVE_USERS,
    V3_ORG_CONSUMPTION_DAILY,
    V3_ORG_PRS,
    V3_ORG_SEARCHES,
    DevinAPIError,
    DevinClient,
    RetryPolicy,
)
from exporter.models import KNOWN_ORIGINS

KEY = "cog_ClientMoreTestKey0123456789abcdefgh"
START = datetime(2026, 11, 20, 8, tzinfo=UTC)
END = datetime(2026, 11, 21, 8, tzinfo=UTC)

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

Call = Callable[[DevinClient], Awaitable[Any]]
K = SecretStr(KEY)
WINDOW: dict[str, Any] = {"time_after": 100, "time_before": 200}
TIME = [("time_after", "100"), ("time_before", "200")]
ORGS = [("org_ids", "org-a"), ("org_ids", "org-b")]

# (what is called, the body answered, endpoint label, path, query sent)
CASES: list[tuple[str, Call, Any, str, str, list[tuple[str, str]]]] = [
    ("org_prs", lambda c: c.org_prs("org-a", K, **WINDOW), PRS, V3_ORG_PRS,
     "/v3/organizations/org-a/metrics/prs", TIME),
    ("org_searches", lambda c: c.org_searches("org-a", K, **WINDOW),
     {"searches_created_count": 42}, V3_ORG_SEARCHES,
     "/v3/organizations/org-a/metrics/searches", TIME),
    ("org_active_users", lambda c: c.org_active_users("org-a", K, **WINDOW), USERS,
     V3_ORG_ACTIVE_USERS, "/v3/organizations/org-a/metrics/active-users", TIME),
    ("org_wau", lambda c: c.org_active_user_buckets("org-a", K, "wau", **WINDOW), [USERS],
     V3_ORG_ACTIVE_USER_BUCKETS, "/v3/organizations/org-a/metrics/wau", TIME),
    ("org_consumption_daily", lambda c: c.org_consumption_daily("org-a", K, **WINDOW),
     CONSUMPTION, V3_ORG_CONSUMPTION_DAILY, "/v3/organizations/org-a/consumption/daily", TIME),
    ("org_consumption_daily_no_window", lambda c: c.org_consumption_daily("org-a", K),
     CONSUMPTION, V3_ORG_CONSUMPTION_DAILY, "/v3/organizations/org-a/consumption/daily", []),
    ("enterprise_metric_sessions",
     lambda c: c.enterprise_metric_sessions(K, **WINDOW, org_ids=["org-a", "org-b"]),
     SESSIONS, V3_ENTERPRISE_SESSIONS, "/v3/enterprise/metrics/sessions", TIME + ORGS),
    ("enterprise_prs", lambda c: c.enterprise_prs(K, **WINDOW), PRS, V3_ENTERPRISE_PRS,
     "/v3/enterprise/metrics/prs", TIME),
    ("enterprise_searches", lambda c: c.enterprise_searches(K, **WINDOW),
     {"searches_created_count": 1}, V3_ENTERPRISE_SEARCHES,
     "/v3/enterprise/metrics/searches", TIME),
    ("enterprise_active_users",
     lambda c: c.enterprise_active_users(K, **WINDOW, org_ids=["org-a", "org-b"]), USERS,
     V3_ENTERPRISE_ACTIVE_USERS, "/v3/enterprise/metrics/active-users", TIME + ORGS),
    ("enterprise_consumption_daily",
     lambda c: c.enterprise_consumption_daily(K, time_before=200), CONSUMPTION,
     V3_ENTERPRISE_CONSUMPTION_DAILY, "/v3/enterprise/consumption/daily",
     [("time_before", "200")]),
    ("enterprise_sessions_by_category",
     lambda c: c.enterprise_sessions_by_category(K, **WINDOW), CATEGORIES,
     V3_ENTERPRISE_SESSIONS_BY_CATEGORY, "/v3/enterprise/metrics/sessions-by-category", TIME),
    ("enterprise_consumption_cycles", lambda c: c.enterprise_consumption_cycles(K),
     {"items": [{"after": 1, "before": 2}]}, V3_ENTERPRISE_CONSUMPTION_CYCLES,
     "/v3/enterprise/consumption/cycles", [("first", "100")]),
    ("enterprise_organizations", lambda c: c.enterprise_organizations(K, page_size=7),
     {"items": [{"org_id": "org-a", "name": "A"}]}, V3_ENTERPRISE_ORGANIZATIONS,
     "/v3/enterprise/organizations", [("first", "7")]),
    ("v2_enterprise_prs",
     lambda c: c.v2_enterprise_prs(K, start=START, end=END, org_ids=["org-a", "org-b"]),
     {"prs_opened": 1, "prs_closed": 2, "prs_merged": 3}, V2_ENTERPRISE_PRS,
     "/v2/enterprise/metrics/prs",
     [("start", "2026-11-20T08:00:00Z"), ("end", "2026-11-21T08:00:00Z"), *ORGS]),
    ("v2_consumption_daily", lambda c: c.v2_consumption_daily(K, start=START, end=END),
     {"total_acus": 1.0, "consumption_by_date": {"2026-11-20": 1.0}},
     V2_ENTERPRISE_CONSUMPTION_DAILY, "/v2/enterprise/consumption/daily",
     [("start", "2026-11-20T08:00:00Z"), ("end", "2026-11-21T08:00:00Z")]),
    ("v2_organizations", lambda c: c.v2_organizations(K),
     {"items": [{"org_id": "org-a", "org_name": "A"}], "has_more": False},
     V2_ENTERPRISE_ORGANIZATIONS, "/v2/enterprise/organizations",
     [("skip", "0"), ("limit", "100")]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "body", "endpoint", "path", "query"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_each_method_sends_its_path_and_query_and_labels_its_endpoint(
    make_client: Callable[..., DevinClient],
    call: Call,
    body: Any,
    endpoint: str,
    path: str,
    query: list[tuple[str, str]],
) -> None:
    recorder = Recorder(answer(200, body))
    seen: list[tuple[str, int]] = []
    client = make_client(recorder, on_response=lambda e, s: seen.append((e, s)))

    await call(client)

    (request,) = recorder.requests
    assert path == request.url.path
    assert query == list(request.url.params.multi_items())
    assert f"Bearer {KEY}" == request.headers["Authorization"]
    assert [(endpoint, 200)] == seen


async def test_org_prs_parses_the_four_counts(make_client: Callable[..., DevinClient]) -> None:
    prs = await make_client(answer(200, {**PRS, "prs_taken_over_count": 1})).org_prs(
        "org-a", K, **WINDOW
    )

    assert (12, 3, 2, 7, 1) == (
        prs.prs_created_count,
        prs.prs_opened_count,
        prs.prs_closed_count,
        prs.prs_merged_count,
        prs.prs_taken_over_count,
    )


async def test_v2_prs_map_onto_the_same_model_without_created(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {"prs_opened": 45, "prs_closed": 42, "prs_merged": 38}

    prs = await make_client(answer(200, body)).v2_enterprise_prs(K, start=START, end=END)

    assert (None, 45, 42, 38) == (
        prs.prs_created_count,
        prs.prs_opened_count,
        prs.prs_closed_count,
        prs.prs_merged_count,
    )


async def test_buckets_are_the_plain_array_as_a_list(
    make_client: Callable[..., DevinClient],
) -> None:
    body = [
        {"active_users": 5, "start_time": 1733356800, "end_time": 1733443199},
        {"active_users": 6, "start_time": 1733443200, "end_time": 1733529599},
    ]

    buckets = await make_client(answer(200, body)).org_active_user_buckets(
        "org-a", K, "dau", **WINDOW
    )

    assert [5, 6] == [b.active_users for b in buckets]
    assert 1733443199 == buckets[0].end_time


async def test_a_bucket_answer_that_is_an_object_is_invalid_response(
    make_client: Callable[..., DevinClient],
) -> None:
    with pytest.raises(DevinAPIError) as caught:
        await make_client(answer(200, USERS)).org_active_user_buckets("org-a", K, "mau", **WINDOW)

    assert "invalid_response" == caught.value.reason


async def test_an_unknown_period_is_refused_before_any_request(
    make_client: Callable[..., DevinClient],
) -> None:
    recorder = Recorder(answer(200, []))

    with pytest.raises(ValueError, match="period"):
        await make_client(recorder).org_active_user_buckets(
            "org-a",
            K,
            "yau",  # type: ignore[arg-type]
            **WINDOW,
        )

    assert [] == recorder.requests


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

    consumption = await make_client(answer(200, body)).org_consumption_daily("org-a", K)

    first, second = consumption.consumption_by_date
    assert (1733385600, 1733472000) == (first.date, second.date)
    assert {"devin": 1.5, "cascade": 0.0, "terminal": 0.0, "windsurf": 0.5} == (
        first.acus_by_product
    )
    assert {"devin": 1.0, "cascade": 0.0, "terminal": 0.0} == second.acus_by_product


async def test_v2_consumption_dates_become_billing_day_starts(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {
        "total_acus": 1250.5,
        "consumption_by_date": {"2024-12-06": 125.0, "2024-12-05": 100.0},
        "consumption_by_org_id": {"org_123": 800.0},
        "consumption_by_user": {"user_123": 325.5},
    }

    consumption = await make_client(answer(200, body)).v2_consumption_daily(K, start=START, end=END)

    # 2024-12-05 08:00 UTC is midnight PST, the v3 example's `date`.
    assert [(1733385600, 100.0), (1733472000, 125.0)] == [
        (d.date, d.acus) for d in consumption.consumption_by_date
    ]
    assert consumption.consumption_by_date[0].acus_by_product is None
    assert {"org_123": 800.0} == consumption.consumption_by_org_id


async def test_enterprise_sessions_parse_like_org_sessions(
    make_client: Callable[..., DevinClient],
) -> None:
    metrics = await make_client(answer(200, SESSIONS)).enterprise_metric_sessions(K, **WINDOW)

    assert 7 == metrics.sessions_created_count
    assert set(KNOWN_ORIGINS) <= set(metrics.sessions_created_by_origin)


# Pagination.


def pages(bodies: dict[str | None, dict[str, Any]], key: str = "after") -> Handler:
    """Answers by the value of the `key` query parameter (None when absent)."""
    return lambda request: httpx.Response(200, json=bodies[request.url.params.get(key)])


def orgs(*ids: str) -> list[dict[str, str]]:
    return [{"org_id": i, "name": i.upper()} for i in ids]


async def test_cursor_pages_are_followed_to_the_end(
    make_client: Callable[..., DevinClient],
) -> None:
    recorder = Recorder(
        pages(
            {
                None: {"items": orgs("a", "b"), "has_next_page": True, "end_cursor": "c1"},
                "c1": {"items": orgs("c", "d"), "has_next_page": True, "end_cursor": "c2"},
                "c2": {"items": orgs("e"), "has_next_page": False, "end_cursor": None},
            }
        )
    )

    found = await make_client(recorder).enterprise_organizations(K, page_size=2)

    assert ["a", "b", "c", "d", "e"] == [o.org_id for o in found]
    assert [
        [("first", "2")],
        [("first", "2"), ("after", "c1")],
        [("first", "2"), ("after", "c2")],
    ] == [list(r.url.params.multi_items()) for r in recorder.requests]


@pytest.mark.parametrize(
    ("bodies", "detail"),
    [
        (
            {
                None: {"items": [], "has_next_page": True, "end_cursor": "c1"},
                "c1": {"items": [], "has_next_page": True, "end_cursor": "c1"},
            },
            "pagination: end_cursor repeated",
        ),
        (
            {None: {"items": [], "has_next_page": True, "end_cursor": None}},
            "pagination: has_next_page without end_cursor",
        ),
    ],
    ids=["repeated-cursor", "missing-cursor"],
)
async def test_a_broken_cursor_chain_is_invalid_response(
    make_client: Callable[..., DevinClient], bodies: dict[str | None, Any], detail: str
) -> None:
    with pytest.raises(DevinAPIError) as caught:
        await make_client(pages(bodies)).enterprise_consumption_cycles(K)

    assert ("invalid_response", 200, detail) == (
        caught.value.reason,
        caught.value.status,
        caught.value.detail,
    )


async def test_pages_past_the_cap_are_invalid_response(
    make_client: Callable[..., DevinClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "MAX_PAGES", 3)
    counter = iter(range(100))

    def endless(request: httpx.Request) -> httpx.Response:
        cursor = f"c{next(counter)}"
        return httpx.Response(200, json={"items": [], "has_next_page": True, "end_cursor": cursor})

    recorder = Recorder(endless)
    with pytest.raises(DevinAPIError) as caught:
        await make_client(recorder).enterprise_consumption_cycles(K)

    assert ("invalid_response", "pagination: more than 3 pages") == (
        caught.value.reason,
        caught.value.detail,
    )
    assert 3 == len(recorder.requests)


async def test_a_page_is_retried_like_any_request(
    make_client: Callable[..., DevinClient],
) -> None:
    statuses = iter([200, 503, 200])

    def flaky(request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        if "after" not in request.url.params:
            return httpx.Response(
                status, json={"items": orgs("a"), "has_next_page": True, "end_cursor": "n"}
            )
        return httpx.Response(status, json={"items": orgs("b")})

    retries: list[tuple[str, str]] = []
    client = make_client(
        flaky,
        retry=RetryPolicy(attempts=2, initial_backoff_seconds=0, max_backoff_seconds=0),
        on_retry=lambda endpoint, reason: retries.append((endpoint, reason)),
    )

    found = await client.enterprise_organizations(K)

    assert ["a", "b"] == [o.org_id for o in found]
    assert [(V3_ENTERPRISE_ORGANIZATIONS, "server_error")] == retries


async def test_v2_pages_follow_skip_and_limit(make_client: Callable[..., DevinClient]) -> None:
    items = [{"org_id": f"org-{i}", "org_name": f"Org {i}"} for i in range(5)]

    def respond(request: httpx.Request) -> httpx.Response:
        skip, limit = int(request.url.params["skip"]), int(request.url.params["limit"])
        more = skip + limit < len(items)
        return httpx.Response(
            200,
            json={
                "items": items[skip : skip + limit],
                "total": len(items),
                "skip": skip,
                "limit": limit,
                "has_more": more,
                "next_cursor": skip + limit if more else None,
            },
        )

    recorder = Recorder(respond)
    found = await make_client(recorder).v2_organizations(K, page_size=2)

    assert [("org-0", "Org 0"), ("org-4", "Org 4")] == [
        (found[i].org_id, found[i].name) for i in (0, 4)
    ]
    assert ["0", "2", "4"] == [r.url.params["skip"] for r in recorder.requests]


async def test_v2_pages_without_progress_are_invalid_response(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {"items": [], "has_more": True, "next_cursor": None}

    with pytest.raises(DevinAPIError) as caught:
        await make_client(answer(200, body)).v2_organizations(K)

    assert "pagination: has_more without progress" == caught.value.detail


@pytest.mark.parametrize("size", [0, 201])
async def test_a_page_size_out_of_range_is_refused(
    make_client: Callable[..., DevinClient], size: int
) -> None:
    client = make_client(answer(200, {"items": []}))

    with pytest.raises(ValueError, match="page_size"):
        await client.enterprise_organizations(K, page_size=size)
    with pytest.raises(ValueError, match="page_size"):
        await client.v2_organizations(K, page_size=size)


# Problem details (RFC 9457) errors.


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"type": "about:blank", "title": "Unauthorized", "status": 401}, "Unauthorized"),
        (
            {"title": "Unauthorized", "status": 401, "detail": "Invalid or missing API key"},
            "Invalid or missing API key",
        ),
        ({"title": "Unauthorized", "status": 401, "detail": None}, "Unauthorized"),
    ],
    ids=["title-only", "detail", "null-detail"],
)
async def test_a_problem_detail_error_reads_detail_or_title(
    make_client: Callable[..., DevinClient], body: dict[str, Any], detail: str
) -> None:
    client = make_client(
        lambda request: httpx.Response(
            401, json=body, headers={"Content-Type": "application/problem+json"}
        )
    )

    with pytest.raises(DevinAPIError) as caught:
        await client.enterprise_organizations(K)

    assert ("unauthorized", detail) == (caught.value.reason, caught.value.detail)


async def test_a_422_problem_names_its_first_field_error(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {
        "title": "Unprocessable Entity",
        "status": 422,
        "errors": [{"loc": ["query", "first"], "msg": "Input should be less than or equal to 200"}],
    }

    with pytest.raises(DevinAPIError) as caught:
        await make_client(answer(422, body)).enterprise_consumption_cycles(K)

    assert "query.first: Input should be less than or equal to 200" == caught.value.detail


async def test_a_key_echoed_in_a_problem_title_is_redacted(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {"title": f"bad key {KEY}", "status": 403}

    with pytest.raises(DevinAPIError) as caught:
        await make_client(answer(403, body)).org_prs("org-a", K, **WINDOW)

    assert "bad key <redacted>" == caught.value.detail
    assert KEY not in str(caught.value)
