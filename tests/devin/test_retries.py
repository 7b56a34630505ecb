"""The retry policy and loop (exporter.devin.retries), through DevinClient: retries,
Retry-After and the poll deadline."""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Iterator

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr

from exporter.devin.client import DevinClient
from exporter.devin.errors import DevinAPIError
from exporter.devin.ratelimit import KeyGates
from exporter.devin.retries import RetryPolicy, parse_retry_after
from exporter.devin.table import ENDPOINTS
from exporter.web.listener import listen

KEY = SecretStr("cog_retry_key")
ORG_SESSIONS = ENDPOINTS["v3_org_sessions"]
BODY = {
    "sessions_created_count": 1,
    "sessions_created_by_size": {"xs": 1},
    "sessions_created_by_origin": {"api": 1},
    "sessions_created_with_playbook_count": 0,
    "sessions_created_with_search_count": 0,
    "sessions_with_merged_prs_count": 0,
    "sessions_with_merged_prs_by_size": {},
    "avg_acus_per_session": 1.0,
}
FAST = RetryPolicy(attempts=3, initial_backoff_seconds=0.001, max_backoff_seconds=0.01)


def scripted(responses: list[httpx.Response]) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    replies: Iterator[httpx.Response] = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(replies)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://devin")
    return client, seen


async def fetch(client: DevinClient) -> int | None:
    answer = await client.fetch(ORG_SESSIONS, KEY, ORG_SESSIONS.call("org-a", 0, 60))
    count: int | None = answer.sessions_created_count
    return count


async def test_transient_failures_are_retried_until_success() -> None:
    http, seen = scripted(
        [httpx.Response(503), httpx.Response(502), httpx.Response(200, json=BODY)]
    )
    retries: list[tuple[str, str]] = []
    async with http:
        client = DevinClient(http, retry=FAST, on_retry=lambda e, r: retries.append((e, r)))
        assert 1 == await fetch(client)
    assert 3 == len(seen)
    assert [("v3_org_sessions", "server_error")] * 2 == retries


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 501])
async def test_permanent_failures_are_not_retried(status: int) -> None:
    http, seen = scripted([httpx.Response(status)] * 3)
    async with http:
        with pytest.raises(DevinAPIError):
            await fetch(DevinClient(http, retry=FAST))
    assert 1 == len(seen)


async def test_attempts_are_bounded() -> None:
    http, seen = scripted([httpx.Response(500)] * 5)
    async with http:
        with pytest.raises(DevinAPIError, match="server_error"):
            await fetch(DevinClient(http, retry=FAST))
    assert 3 == len(seen)


async def test_a_retry_after_longer_than_the_budget_gives_up_at_once() -> None:
    http, seen = scripted([httpx.Response(429, headers={"Retry-After": "3600"})] * 3)
    policy = RetryPolicy(attempts=3, initial_backoff_seconds=0.001, budget_seconds=5)
    async with http:
        with pytest.raises(DevinAPIError) as caught:
            await fetch(DevinClient(http, retry=policy))
    assert ("rate_limited", 3600.0, 1) == (caught.value.reason, caught.value.retry_after, len(seen))


async def test_a_429_cools_down_the_key_for_the_retry_after() -> None:
    http, _ = scripted(
        [httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200, json=BODY)]
    )
    waits: list[float] = []
    async with http:
        client = DevinClient(http, gates=KeyGates(100, 8, on_wait=waits.append), retry=FAST)
        assert 1 == await fetch(client)
    assert waits
    assert max(waits) >= 0.9


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    now = 1_800_000_000.0
    assert 3.0 == parse_retry_after("3", now)
    assert 120.0 == parse_retry_after(email.utils.formatdate(now + 120, usegmt=True), now)
    assert 0.0 == parse_retry_after(email.utils.formatdate(now - 50, usegmt=True), now)
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


async def test_a_server_that_trickles_its_answer_hits_the_poll_deadline() -> None:
    """httpx's timeout is per read: a byte a second never trips it, the deadline does."""

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for _ in range(60):
            await response.write(b" ")
            await asyncio.sleep(0.1)
        return response

    app = web.Application()
    app.router.add_get("/v3/organizations/{org}/metrics/sessions", trickle)
    listener = await listen(app, "127.0.0.1:0")
    policy = RetryPolicy(attempts=1, budget_seconds=0.5)
    try:
        async with httpx.AsyncClient(base_url=listener.url, timeout=2) as http:
            with pytest.raises(DevinAPIError) as caught:
                await fetch(DevinClient(http, retry=policy))
    finally:
        await listener.close()
    assert "timeout" == caught.value.reason
