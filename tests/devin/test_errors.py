"""What went wrong, said safely (exporter.devin.errors): the reason each failure is named
by, the detail read from an error answer, and no fragment of the key in either; through
DevinClient against httpx.MockTransport, and the helpers directly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import answer
from fakes import SESSION_BODY
from pydantic import SecretStr

from exporter.devin.client import DevinClient
from exporter.devin.errors import (
    REASONS,
    DevinAPIError,
    error_detail,
    invalid_response,
    reason_for_status,
    safe_detail,
)
from exporter.devin.table import ENDPOINTS

KEY = "cog_ClientTestKey0123456789abcdefghij"
K = SecretStr(KEY)
ORG_SESSIONS = ENDPOINTS["v3_org_sessions"]
ORGANIZATIONS = ENDPOINTS["v3_enterprise_organizations"]
CYCLES = ENDPOINTS["v3_enterprise_consumption_cycles"]


async def get(client: DevinClient, name: str, org: str = "org-a") -> Any:
    row = ENDPOINTS[name]
    return await client.fetch(row, K, row.call(org, 100, 200))


async def failure(client: DevinClient) -> DevinAPIError:
    with pytest.raises(DevinAPIError) as caught:
        await get(client, "v3_org_sessions")
    return caught.value


def test_response_too_large_is_a_poll_error_reason() -> None:
    assert "response_too_large" in REASONS


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
        await client.pages(ORGANIZATIONS, K)

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
        await make_client(answer(422, body)).pages(CYCLES, K)

    assert "query.first: Input should be less than or equal to 200" == caught.value.detail


async def test_a_key_echoed_in_a_problem_title_is_redacted(
    make_client: Callable[..., DevinClient],
) -> None:
    body = {"title": f"bad key {KEY}", "status": 403}

    with pytest.raises(DevinAPIError) as caught:
        await get(make_client(answer(403, body)), "v3_org_prs")

    assert "bad key <redacted>" == caught.value.detail
    assert KEY not in str(caught.value)


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


# The helpers, directly.


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (302, "invalid_response"),
        (400, "client_error"),
        (501, "server_error"),
        (599, "server_error"),
    ],
)
def test_reason_for_status_names_what_the_client_does_not_map_by_number(
    status: int, reason: str
) -> None:
    assert reason == reason_for_status(status)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (DevinAPIError("timeout"), True),
        (DevinAPIError("connection", detail="ConnectError"), True),
        (DevinAPIError("rate_limited", status=429), True),
        (DevinAPIError("server_error", status=503), True),
        (DevinAPIError("server_error", status=501), False),
        (DevinAPIError("not_found", status=404), False),
        (invalid_response("pagination: end_cursor repeated"), False),
    ],
    ids=["timeout", "connection", "429", "503", "501", "404", "invalid"],
)
def test_only_timeouts_dropped_connections_429_and_some_5xx_are_transient(
    error: DevinAPIError, transient: bool
) -> None:
    assert transient == error.transient


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b'{"detail": "nope"}', "nope"),
        (b"<html>Bad gateway</html>", ""),
        (b"[" * 100_000, ""),  # nested past the parser's depth
    ],
    ids=["string-detail", "not-json", "too-deep"],
)
def test_error_detail_reads_json_and_gives_up_quietly_on_anything_else(
    content: bytes, detail: str
) -> None:
    assert detail == error_detail(content)


def test_safe_detail_cuts_at_200_characters_after_redacting() -> None:
    text = "x" * 195 + KEY

    assert "x" * 195 + "<reda" == safe_detail(text, KEY)
