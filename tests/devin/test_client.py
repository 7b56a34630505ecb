"""DevinClient against httpx.MockTransport: requests it sends, and how failures are named."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from conftest import Recorder, answer
from fakes import SESSION_BODY
from pydantic import SecretStr

from exporter.devin.client import DevinClient
from exporter.devin.errors import REASONS, DevinAPIError
from exporter.devin.table import ENDPOINTS, Call, rfc3339

KEY = "cog_ClientTestKey0123456789abcdefghij"
ORG_SESSIONS = ENDPOINTS["v3_org_sessions"]
V2_SESSIONS = ENDPOINTS["v2_enterprise_sessions"]


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
    ("status", "reason"),
    [
        (401, "unauthorized"),
        (403, "forbidden"),
        (404, "not_found"),
        (422, "client_error"),
        (429, "rate_limited"),
        (500, "server_error"),
        (503, "server_error"),
        (418, "client_error"),
    ],
)
async def test_http_status_maps_to_a_poll_error_reason(
    make_client: Callable[..., DevinClient], status: int, reason: str
) -> None:
    error = await failure(make_client(answer(status, {"detail": "nope"})))

    assert (error.reason, error.status, error.detail) == (reason, status, "nope")
    assert error.reason in REASONS
    assert str(error) == f"{reason} (HTTP {status}): nope"


async def test_a_non_json_error_body_gives_an_empty_detail(
    make_client: Callable[..., DevinClient],
) -> None:
    client = make_client(lambda request: httpx.Response(502, text="<html>Bad gateway</html>"))

    error = await failure(client)

    assert (error.reason, error.status, str(error)) == (
        "server_error",
        502,
        "server_error (HTTP 502)",
    )


async def test_a_422_detail_names_the_first_invalid_parameter(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {
        "detail": [{"loc": ["query", "time_after"], "msg": "Field required", "type": "missing"}]
    }

    error = await failure(make_client(answer(422, body)))

    assert str(error) == "client_error (HTTP 422): query.time_after: Field required"


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


# The key never leaves in an error.


async def test_a_key_echoed_in_a_422_detail_is_redacted(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {
        "detail": [{"loc": ["header", "Authorization"], "msg": f"bad token {KEY}", "type": "x"}]
    }

    error = await failure(make_client(answer(422, body)))

    assert str(error) == "client_error (HTTP 422): header.Authorization: bad token <redacted>"


async def test_a_key_echoed_in_a_string_detail_is_redacted(
    make_client: Callable[..., DevinClient],
) -> None:
    error = await failure(make_client(answer(401, {"detail": f"unknown key {KEY}"})))

    assert error.detail == "unknown key <redacted>"


async def test_a_key_echoed_as_a_breakdown_key_of_a_200_is_redacted(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {**SESSION_BODY, "sessions_created_by_origin": {KEY: -1}}

    error = await failure(make_client(answer(200, body)))

    assert error.reason == "invalid_response"
    assert KEY not in str(error)
    assert "<redacted>" in str(error)


async def test_a_key_echoed_across_the_detail_length_limit_leaves_no_part_of_it(
    make_client: Callable[..., DevinClient],
) -> None:
    """The detail is cut at 200 characters; the key must not survive the cut in part."""
    padding = "x" * (200 - len("query.q: ") - 10)  # the cut falls 10 characters into the key
    body = {"detail": [{"loc": ["query", "q"], "msg": padding + KEY, "type": "x"}]}

    error = await failure(make_client(answer(422, body)))

    assert KEY[:10] not in str(error)


@pytest.mark.parametrize("status", [200, 401, 403, 404, 422, 429, 500])
async def test_str_of_an_error_never_contains_the_key(
    make_client: Callable[..., DevinClient], status: int
) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"]
        # A 200 is invalid only where it echoes the key: as a breakdown key of a bad count.
        return httpx.Response(
            status,
            json={
                "detail": [{"loc": [token], "msg": token, "type": token}],
                token: token,
                "sessions_created_by_origin": {token: token},
            },
        )

    error = await failure(make_client(echo))

    assert error.status == status
    assert KEY not in str(error)
    assert KEY not in repr(error)


async def test_a_fragment_of_the_key_in_an_error_detail_is_redacted(
    make_client: Callable[..., DevinClient],
) -> None:
    error = await failure(make_client(answer(401, {"detail": f"unknown key ...{KEY[10:22]}"})))

    assert "unknown key ...<redacted>" == error.detail


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
