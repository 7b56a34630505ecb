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
from exporter.devin.retries import RetryPolicy, parse_retry_after, pause_seconds, with_retries
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


# The pause and the loop, directly.

POLICY = RetryPolicy(attempts=3, initial_backoff_seconds=1.0, max_backoff_seconds=4.0)
BUSY = DevinAPIError("server_error", status=503)


@pytest.mark.parametrize(
    ("error", "attempt", "elapsed"),
    [
        (DevinAPIError("not_found", status=404), 1, 0.0),
        (BUSY, 3, 0.0),
        (BUSY, 1, 60.0),
        (DevinAPIError("rate_limited", status=429, retry_after=30.0), 1, 45.0),
    ],
    ids=["permanent", "last-attempt", "budget-spent", "retry-after-past-the-budget"],
)
def test_no_pause_means_give_up(error: DevinAPIError, attempt: int, elapsed: float) -> None:
    assert pause_seconds(POLICY, error, attempt, elapsed) is None


def test_a_429_pauses_not_at_all_since_its_gate_cools_the_key_down() -> None:
    error = DevinAPIError("rate_limited", status=429, retry_after=2.0)

    assert 0.0 == pause_seconds(POLICY, error, 1, 0.0)


def test_a_retry_after_is_the_pause_when_the_server_gives_one() -> None:
    error = DevinAPIError("server_error", status=503, retry_after=2.5)

    assert 2.5 == pause_seconds(POLICY, error, 1, 0.0)


@pytest.mark.parametrize(
    ("attempt", "elapsed", "ceiling"),
    [(1, 0.0, 1.0), (2, 0.0, 2.0), (3, 0.0, 4.0), (2, 59.5, 0.5)],
    ids=["first", "doubled", "capped-by-max-backoff", "capped-by-budget-left"],
)
def test_a_jittered_pause_stays_under_its_ceiling(
    attempt: int, elapsed: float, ceiling: float
) -> None:
    policy = RetryPolicy(attempts=5, initial_backoff_seconds=1.0, max_backoff_seconds=4.0)

    pauses = [pause_seconds(policy, BUSY, attempt, elapsed) for _ in range(200)]

    assert all(p is not None and 0.0 <= p <= ceiling for p in pauses)


async def test_with_retries_tells_each_retry_and_returns_the_answer() -> None:
    failures = iter([BUSY, DevinAPIError("timeout")])
    reasons: list[str] = []

    async def attempt() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "answer"

    assert "answer" == await with_retries(FAST, attempt, reasons.append)
    assert ["server_error", "timeout"] == reasons


async def test_with_retries_passes_any_other_exception_through_untried() -> None:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        raise ValueError("not an API error")

    with pytest.raises(ValueError, match=r"^not an API error$"):
        await with_retries(FAST, attempt)
    assert [1] == calls


async def test_with_retries_ends_at_the_budget_as_a_timeout() -> None:
    async def attempt() -> str:
        await asyncio.sleep(10)
        return "too late"

    policy = RetryPolicy(attempts=1, budget_seconds=0.05)
    with pytest.raises(DevinAPIError) as caught:
        await with_retries(policy, attempt)

    assert ("timeout", "deadline of the poll passed") == (caught.value.reason, caught.value.detail)
