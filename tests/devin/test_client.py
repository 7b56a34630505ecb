"""DevinClient against httpx.MockTransport: the requests it sends, what it parses, how
it names a failed transport, its hooks, and the two paginators."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from conftest import Handler, Recorder, answer
from fakes import SESSION_BODY
from pydantic import SecretStr

from exporter.devin import client as client_module
from exporter.devin.client import DevinClient
from exporter.devin.errors import DevinAPIError
from exporter.devin.retries import RetryPolicy
from exporter.devin.table import ENDPOINTS, Call, rfc3339

KEY = "cog_ClientTestKey0123456789abcdefghij"
ORG_SESSIONS = ENDPOINTS["v3_org_sessions"]
V2_SESSIONS = ENDPOINTS["v2_enterprise_sessions"]
ORGANIZATIONS = ENDPOINTS["v3_enterprise_organizations"]
V2_ORGANIZATIONS = ENDPOINTS["v2_enterprise_organizations"]
CYCLES = ENDPOINTS["v3_enterprise_consumption_cycles"]
K = SecretStr(KEY)


async def org_sessions(client: DevinClient, org: str = "org-a") -> Any:
    return await client.fetch(ORG_SESSIONS, SecretStr(KEY), ORG_SESSIONS.call(org, 100, 200))


async def v2_sessions(client: DevinClient, call: Call | None = None) -> Any:
    day = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    return await client.fetch(
        V2_SESSIONS, SecretStr(KEY), call or V2_SESSIONS.call("", day, day + 86400)
    )


async def failure(client: DevinClient) -> DevinAPIError:
    with pytest.raises(DevinAPIError) as caught:
        await org_sessions(client)
    return caught.value


# What is sent.


async def test_org_sessions_sends_bearer_key_and_integer_time_params(
    make_client: Callable[..., DevinClient],
) -> None:
    recorder = Recorder(answer(200, SESSION_BODY))
    client = make_client(recorder)

    # Fractions of a second are dropped: v3 times are integer Unix seconds.
    call = ORG_SESSIONS.call("org-a", 1_700_000_000.0, 1_700_003_600.9)
    await client.fetch(ORG_SESSIONS, SecretStr(KEY), call)

    (request,) = recorder.requests
    assert request.method == "GET"
    assert request.url.path == "/v3/organizations/org-a/metrics/sessions"
    assert list(request.url.params.multi_items()) == [
        ("time_after", "1700000000"),
        ("time_before", "1700003600"),
    ]
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Accept"] == "application/json"


async def test_org_sessions_returns_the_parsed_metrics(
    make_client: Callable[..., DevinClient],
) -> None:
    metrics = await org_sessions(make_client(answer(200, SESSION_BODY)))

    assert metrics.sessions_created_count == 7
    assert metrics.sessions_created_by_origin["github"] == 2
    assert metrics.sessions_created_by_origin["webapp"] == 0
    assert metrics.avg_acus_per_session == 1.75


async def test_enterprise_sessions_sends_rfc3339_utc_and_repeated_org_ids(
    make_client: Callable[..., DevinClient],
) -> None:
    recorder = Recorder(answer(200, {"sessions_count": 12}))
    client = make_client(recorder)
    plus_two = timezone(timedelta(hours=2))

    one_org = V2_SESSIONS.call(
        "org-a",
        datetime(2026, 11, 20, 23, 0, tzinfo=UTC).timestamp(),
        datetime(2026, 11, 22, 1, 0, 30, tzinfo=plus_two).timestamp(),
    )
    call = Call(one_org.path, {**one_org.params, "org_ids": ["org-a", "org-b"]})

    sessions = await client.fetch(V2_SESSIONS, SecretStr("apk_user_enterprise"), call)

    (request,) = recorder.requests
    assert sessions.sessions_count == 12
    assert request.url.path == "/v2/enterprise/metrics/sessions"
    assert sorted(request.url.params.multi_items()) == [
        ("end", "2026-11-21T23:00:30Z"),
        ("org_ids", "org-a"),
        ("org_ids", "org-b"),
        ("start", "2026-11-20T23:00:00Z"),
    ]
    assert request.headers["Authorization"] == "Bearer apk_user_enterprise"


async def test_enterprise_sessions_without_org_ids_sends_no_org_ids_param(
    make_client: Callable[..., DevinClient],
) -> None:
    recorder = Recorder(answer(200, {"sessions_count": 0}))
    client = make_client(recorder)

    await v2_sessions(client)

    assert sorted(recorder.requests[0].url.params.multi_items()) == [
        ("end", "2026-01-02T00:00:00Z"),
        ("start", "2026-01-01T00:00:00Z"),
    ]


def test_rfc3339_drops_fractions_and_converts_to_utc() -> None:
    moment = datetime(2026, 3, 1, 0, 30, 15, 999_999, tzinfo=timezone(timedelta(hours=1)))

    assert rfc3339(moment.timestamp()) == "2026-02-28T23:30:15Z"


# How failures are named.


@pytest.mark.parametrize(
    "body",
    [
        b'{"sessions_created_count": 1,,',
        b"",
        b'{"sessions_created_count": "7"}',
        json.dumps({**SESSION_BODY, "sessions_created_count": -1}).encode(),
        b"[]",
        b"null",
    ],
    ids=["malformed", "empty", "wrong-type", "negative", "array", "null"],
)
async def test_an_invalid_200_body_is_invalid_response(
    make_client: Callable[..., DevinClient], body: bytes
) -> None:
    client = make_client(lambda request: httpx.Response(200, content=body))

    error = await failure(client)

    assert (error.reason, error.status) == ("invalid_response", 200)


async def test_invalid_response_detail_names_the_bad_field(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {**SESSION_BODY, "avg_acus_per_session": "1.75"}

    error = await failure(make_client(answer(200, body)))

    assert error.detail == "avg_acus_per_session: Input should be a valid number"


async def test_a_null_or_absent_field_is_no_failure_and_is_named_by_missing(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {**SESSION_BODY, "avg_acus_per_session": None}
    del body["sessions_created_by_origin"]

    metrics = await org_sessions(make_client(answer(200, body)))

    assert (metrics.avg_acus_per_session, metrics.sessions_created_by_origin) == (None, None)
    assert metrics.sessions_created_count == 7
    assert metrics.missing() == ["sessions_created_by_origin", "avg_acus_per_session"]


async def test_a_read_timeout_is_reason_timeout(make_client: Callable[..., DevinClient]) -> None:
    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    error = await failure(make_client(time_out))

    assert (error.reason, error.status, str(error)) == ("timeout", None, "timeout")


async def test_a_connect_error_is_reason_connection(
    make_client: Callable[..., DevinClient],
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    error = await failure(make_client(refuse))

    assert (error.reason, error.status, str(error)) == (
        "connection",
        None,
        "connection: ConnectError",
    )


async def test_on_response_hook_gets_endpoint_and_status_of_every_response(
    make_client: Callable[..., DevinClient],
) -> None:
    statuses = iter([200, 503, 200])
    seen: list[tuple[str, int]] = []

    def respond(request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        if request.url.path.startswith("/v2/"):
            return httpx.Response(status, json={"sessions_count": 1})
        return httpx.Response(status, json=SESSION_BODY)

    client = make_client(
        respond, on_response=lambda endpoint, status: seen.append((endpoint, status))
    )
    await org_sessions(client)
    with pytest.raises(DevinAPIError):
        await org_sessions(client)
    await v2_sessions(client)

    assert seen == [
        ("v3_org_sessions", 200),
        ("v3_org_sessions", 503),
        ("v2_enterprise_sessions", 200),
    ]


async def test_on_response_hook_is_not_called_without_a_response(
    make_client: Callable[..., DevinClient],
) -> None:
    seen: list[tuple[str, int]] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = make_client(
        refuse, on_response=lambda endpoint, status: seen.append((endpoint, status))
    )
    await failure(client)

    assert seen == []


async def test_a_fragment_of_the_key_echoed_as_an_origin_never_becomes_a_label_value(
    make_client: Callable[..., DevinClient],
) -> None:
    """The answer stays usable; the origin that quotes the key is named `<redacted>`."""
    body = {**SESSION_BODY, "sessions_created_by_origin": {f"x{KEY[4:16]}": 3, "slack": 2}}

    metrics = await org_sessions(make_client(answer(200, body)))

    assert metrics.sessions_created_by_origin is not None
    assert {"x<redacted>": 3, "slack": 2} == {
        k: v for k, v in metrics.sessions_created_by_origin.items() if v
    }


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

    found = await make_client(recorder).pages(ORGANIZATIONS, K, page_size=2)

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
        await make_client(pages(bodies)).pages(CYCLES, K)

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
        await make_client(recorder).pages(CYCLES, K)

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

    found = await client.pages(ORGANIZATIONS, K)

    assert ["a", "b"] == [o.org_id for o in found]
    assert [("v3_enterprise_organizations", "server_error")] == retries


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
    found = await make_client(recorder).pages(V2_ORGANIZATIONS, K, page_size=2)

    assert [("org-0", "Org 0"), ("org-4", "Org 4")] == [
        (found[i].org_id, found[i].name) for i in (0, 4)
    ]
    assert ["0", "2", "4"] == [r.url.params["skip"] for r in recorder.requests]


async def test_v2_pages_without_progress_are_invalid_response(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {"items": [], "has_more": True, "next_cursor": None}

    with pytest.raises(DevinAPIError) as caught:
        await make_client(answer(200, body)).pages(V2_ORGANIZATIONS, K)

    assert "pagination: has_more without progress" == caught.value.detail


@pytest.mark.parametrize("size", [0, 201])
async def test_a_page_size_out_of_range_is_refused(
    make_client: Callable[..., DevinClient], size: int
) -> None:
    recorder = Recorder(answer(200, {"items": []}))
    client = make_client(recorder)

    with pytest.raises(ValueError, match=f"^page_size must be 1 to 200, not {size}$"):
        await client.pages(ORGANIZATIONS, K, page_size=size)
    with pytest.raises(ValueError, match=f"^page_size must be 1 to 200, not {size}$"):
        await client.pages(V2_ORGANIZATIONS, K, page_size=size)
    assert [] == recorder.requests


@pytest.mark.parametrize("size", [1, 200])
async def test_the_page_size_bounds_are_accepted(
    make_client: Callable[..., DevinClient], size: int
) -> None:
    recorder = Recorder(answer(200, {"items": []}))
    client = make_client(recorder)

    await client.pages(ORGANIZATIONS, K, page_size=size)
    await client.pages(V2_ORGANIZATIONS, K, page_size=size)

    assert [str(size), str(size)] == [
        recorder.requests[0].url.params["first"],
        recorder.requests[1].url.params["limit"],
    ]
