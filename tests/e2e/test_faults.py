"""End to end, in-process: every fault the demo API can inject, against the real exporter.

Each case pins the same contract: /metrics keeps answering, only the faulty target is hurt,
the failure is visible (devin_up, poll errors by reason, the status page), the requests
spent on it stay within the retry settings, and one poll after the fault ends the values
are the API's again.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from conftest import Clock, Demo, running_exporter, wait_until
from scrape import Series, parse, value

from exporter import main
from exporter.config import Settings
from exporter.devin.models import EnterpriseSessions, SessionMetrics
from exporter.devin.table import rfc3339
from exporter.polling.strategies import strategy_of
from exporter.polling.targets import Target

pytestmark = pytest.mark.slow  # real processes, servers or builds

ATTEMPTS = 3
# Short, so that timeouts cost little; not shorter, so that a healthy answer on a loaded
# machine (the demo shares the exporter's event loop) is not one.
TIMEOUT_SECONDS = 1.0
# Tiny backoffs keep retries fast; a generous rate so that only 429s make requests wait.
RETRY_SETTINGS: dict[str, Any] = {
    "max_attempts": ATTEMPTS,
    "retry_initial_backoff": "10ms",
    "retry_max_backoff": "50ms",
    "timeout": f"{TIMEOUT_SECONDS * 1000:.0f}ms",
    "requests_per_second": 1000,
}

V3_VALUE_NAMES = (
    "devin_sessions_created",
    "devin_sessions_created_by_origin",
    "devin_sessions_created_by_size",
    "devin_sessions_created_with_playbook",
    "devin_sessions_created_with_search",
    "devin_sessions_with_merged_prs",
    "devin_sessions_with_merged_prs_by_size",
    "devin_session_average_acus",
)


def quick_settings(demo: Demo, **devin: Any) -> Settings:
    """The demo's settings with fast retries and a short timeout."""
    return demo.settings(
        devin={
            "base_url": demo.url,
            "service_user_key": demo.account.service_user_key,
            "enterprise_key": demo.account.enterprise_key,
            **RETRY_SETTINGS,
            **devin,
        }
    )


@pytest.fixture
async def runtime(demo: Demo, clock: Clock) -> AsyncIterator[main.Runtime]:
    """The exporter in-process with fast retries, after its first full poll."""
    async with running_exporter(quick_settings(demo), clock) as started:
        yield started


# Reading the exporter and the demo API.


async def scrape(http: httpx.AsyncClient, runtime: main.Runtime) -> Series:
    response = await http.get(f"{runtime.url}/metrics")
    assert 200 == response.status_code
    return parse(response.text)


def devin_values(series: Series, target: Target | None = None) -> Series:
    """The series that carry Devin's numbers: of one target, or of every target."""

    def belongs(name: str, labels: dict[str, str]) -> bool:
        if target is None:
            return name in V3_VALUE_NAMES or name.startswith("devin_enterprise_")
        if target.endpoint == "v3_org_sessions":
            return name in V3_VALUE_NAMES and labels["org"] == target.org
        if target.org:
            return name == "devin_enterprise_org_sessions" and labels["org"] == target.org
        return name == "devin_enterprise_sessions"

    return {(n, labels): v for (n, labels), v in series.items() if belongs(n, dict(labels))}


async def demo_answer(
    http: httpx.AsyncClient, demo: Demo, target: Target, seconds: float, now: float
) -> SessionMetrics | EnterpriseSessions:
    """What the demo API answers for one window ending at `now`, asked directly."""
    if target.endpoint == "v3_org_sessions":
        response = await http.get(
            f"{demo.url}/v3/organizations/{target.org}/metrics/sessions",
            params={"time_after": int(now - seconds), "time_before": int(now)},
            headers={"Authorization": f"Bearer {demo.account.service_user_key}"},
        )
        assert 200 == response.status_code
        return SessionMetrics.model_validate_json(response.content)
    params: dict[str, Any] = {
        "start": rfc3339(now - seconds),
        "end": rfc3339(now),
    }
    if target.org:
        params["org_ids"] = [target.org]
    response = await http.get(
        f"{demo.url}/v2/enterprise/metrics/sessions",
        params=params,
        headers={"Authorization": f"Bearer {demo.account.enterprise_key}"},
    )
    assert 200 == response.status_code
    return EnterpriseSessions.model_validate_json(response.content)


async def expected_values(
    http: httpx.AsyncClient, demo: Demo, runtime: main.Runtime, target: Target, now: float
) -> Series:
    """The series the exporter should serve for `target` after a good poll at `now`."""
    expected: Series = {}

    def put(name: str, v: float, **labels: str) -> None:
        expected[name, frozenset(labels.items())] = v

    for window in runtime.poller.windows:
        answer = await demo_answer(http, demo, target, window.seconds, now)
        labels = {"window": window.label}
        if isinstance(answer, EnterpriseSessions):
            if target.org:
                put(
                    "devin_enterprise_org_sessions", answer.sessions_count, org=target.org, **labels
                )
            else:
                put("devin_enterprise_sessions", answer.sessions_count, **labels)
            continue
        labels["org"] = target.org
        put("devin_sessions_created", answer.sessions_created_count, **labels)
        playbook, search = (
            answer.sessions_created_with_playbook_count,
            answer.sessions_created_with_search_count,
        )
        put("devin_sessions_created_with_playbook", playbook, **labels)
        put("devin_sessions_created_with_search", search, **labels)
        put("devin_sessions_with_merged_prs", answer.sessions_with_merged_prs_count, **labels)
        put("devin_session_average_acus", answer.avg_acus_per_session, **labels)
        for origin, n in answer.sessions_created_by_origin.items():
            put("devin_sessions_created_by_origin", n, origin=origin, **labels)
        for size, n in answer.sessions_created_by_size.items():
            put("devin_sessions_created_by_size", n, size=size, **labels)
        for size, n in answer.sessions_with_merged_prs_by_size.items():
            put("devin_sessions_with_merged_prs_by_size", n, size=size, **labels)
    return expected


async def demo_requests(http: httpx.AsyncClient, demo: Demo) -> Counter[tuple[str, str]]:
    """Requests the demo API has seen, per (endpoint, org), from its admin API."""
    response = await http.get(f"{demo.url}/_demo/requests")
    assert 200 == response.status_code
    return Counter({(r["endpoint"], r["org"]): r["requests"] for r in response.json()})


async def set_faults(
    http: httpx.AsyncClient, demo: Demo, target: Target, faults: list[dict[str, Any]]
) -> None:
    entry = {"endpoint": target.endpoint, "org": target.org, "faults": faults}
    response = await http.post(f"{demo.url}/_demo/faults", json=entry)
    assert (200, {"ok": True}) == (response.status_code, response.json())


async def clear_faults(http: httpx.AsyncClient, demo: Demo) -> None:
    response = await http.delete(f"{demo.url}/_demo/faults")
    assert 200 == response.status_code


async def status_rows(http: httpx.AsyncClient, runtime: main.Runtime) -> dict[tuple[str, ...], str]:
    """{(endpoint, org, window): last result} from /status.json: the reason, or the state."""
    response = await http.get(f"{runtime.url}/status.json")
    assert 200 == response.status_code
    return {
        (t["endpoint"], t["org"], w["window"]): w["reason"] or w["state"]
        for t in response.json()["targets"]
        for w in t["windows"]
    }


def find(runtime: main.Runtime, endpoint: str, org: str) -> Target:
    return next(t for t in runtime.poller.targets if (t.endpoint, t.org) == (endpoint, org))


def counter(runtime: main.Runtime, name: str, **labels: str) -> float:
    """A counter of the exporter, read from its registry (0 when absent)."""
    return runtime.registry.get_sample_value(name, labels) or 0.0


@dataclass
class Scraper:
    """Scrapes /metrics in the background while a fault is in play; every answer must be 200."""

    http: httpx.AsyncClient
    url: str
    statuses: list[int] = field(default_factory=list)

    async def run_while(self, work: asyncio.Task[Any]) -> None:
        while True:
            response = await self.http.get(f"{self.url}/metrics")
            self.statuses.append(response.status_code)
            if work.done():
                return
            await asyncio.sleep(0.05)


async def poll_while_scraping(
    http: httpx.AsyncClient, runtime: main.Runtime, poll: Any
) -> tuple[list[int], float]:
    """Run one poll with scrapes alongside; the scrape statuses and the poll's wall time."""
    started = time.monotonic()
    work = asyncio.create_task(poll)
    scraper = Scraper(http, runtime.url)
    await scraper.run_while(work)
    await work
    return scraper.statuses, time.monotonic() - started


# Faults that make the poll of a target fail.


@dataclass(frozen=True)
class Failing:
    """A fault that outlasts every retry; `attempts` is how many requests each window costs."""

    endpoint: str
    faults: list[dict[str, Any]]
    reason: str
    attempts: int


FAILING = {
    "500": Failing("v3_org_sessions", [{"status": 500}], "server_error", ATTEMPTS),
    "503": Failing("v3_org_sessions", [{"status": 503}], "server_error", ATTEMPTS),
    "500-502-then-504": Failing(
        "v3_org_sessions",
        [{"status": 500, "times": 1}, {"status": 502, "times": 1}, {"status": 504}],
        "server_error",
        ATTEMPTS,
    ),
    "429-retry-after-1s": Failing(
        "v3_org_sessions", [{"status": 429, "retry_after": "1"}], "rate_limited", ATTEMPTS
    ),
    "latency-above-timeout": Failing(
        "v3_org_sessions", [{"delay_seconds": 2 * TIMEOUT_SECONDS}], "timeout", ATTEMPTS
    ),
    "stall-mid-body": Failing("v3_org_sessions", [{"stall": True}], "timeout", ATTEMPTS),
    "connection-reset": Failing("v3_org_sessions", [{"reset": True}], "connection", ATTEMPTS),
    "malformed-json": Failing("v3_org_sessions", [{"body": "malformed"}], "invalid_response", 1),
    "truncated-json": Failing("v3_org_sessions", [{"body": "truncated"}], "invalid_response", 1),
    "401": Failing("v3_org_sessions", [{"status": 401}], "unauthorized", 1),
    "403": Failing("v3_org_sessions", [{"status": 403}], "forbidden", 1),
    "404": Failing("v3_org_sessions", [{"status": 404}], "not_found", 1),
    "422": Failing("v3_org_sessions", [{"status": 422}], "client_error", 1),
    "v2-enterprise-503": Failing("v2_enterprise_sessions", [{"status": 503}], "server_error", 3),
    "v2-org-malformed-json": Failing(
        "v2_enterprise_sessions", [{"body": "malformed"}], "invalid_response", 1
    ),
    "v2-org-stall-mid-body": Failing("v2_enterprise_sessions", [{"stall": True}], "timeout", 3),
    "v2-enterprise-403": Failing("v2_enterprise_sessions", [{"status": 403}], "forbidden", 1),
}


def failing_target(runtime: main.Runtime, demo: Demo, case: Failing, name: str) -> Target:
    """The v3 target of the first org, the v2 enterprise-wide target, or a v2 org target."""
    if case.endpoint == "v3_org_sessions":
        return find(runtime, "v3_org_sessions", demo.account.orgs[0].id)
    org = "" if "enterprise" in name else demo.account.orgs[1].id
    return find(runtime, "v2_enterprise_sessions", org)


@pytest.mark.parametrize("name", list(FAILING))
async def test_a_failing_target_is_contained_reported_and_recovers(
    runtime: main.Runtime, demo: Demo, http: httpx.AsyncClient, clock: Clock, name: str
) -> None:
    case = FAILING[name]
    bad = failing_target(runtime, demo, case, name)
    windows = [w.label for w in runtime.poller.windows]
    before = await scrape(http, runtime)
    requests_before = await demo_requests(http, demo)

    await set_faults(http, demo, bad, case.faults)
    statuses, _ = await poll_while_scraping(http, runtime, runtime.poller.poll_all())

    # /metrics answered all along.
    assert statuses
    assert {200} == set(statuses)
    during = await scrape(http, runtime)
    # The failure is visible: devin_up, the error counter by reason, the status page.
    assert 0 == value(during, "devin_up", endpoint=bad.endpoint, org=bad.org)
    errors = {"endpoint": bad.endpoint, "org": bad.org}
    assert len(windows) == value(
        during, "devin_exporter_poll_errors_total", reason=case.reason, **errors
    )
    rows = await status_rows(http, runtime)
    for (endpoint, org, _), result in rows.items():
        assert (case.reason if (endpoint, org) == (bad.endpoint, bad.org) else "ok") == result
    # Everything else is untouched; the faulty target keeps its last good values.
    assert devin_values(before) == devin_values(during)
    for t in runtime.poller.targets:
        if t != bad:
            assert 1 == value(during, "devin_up", endpoint=t.endpoint, org=t.org)
    # Requests stay within attempts x windows for the faulty target, one per window elsewhere.
    spent = await demo_requests(http, demo) - requests_before
    assert case.attempts * len(windows) == spent[bad.endpoint, bad.org]
    for t in runtime.poller.targets:
        if t != bad:
            assert strategy_of(t.row).requests_per_poll(windows) == spent[t.endpoint, t.org]

    # The fault ends: one poll brings the API's numbers back. After a 401/403 the target
    # waits out its auth backoff first, without a request to Devin before then.
    await clear_faults(http, demo)
    backoff = runtime.poller.auth_backoff.get(bad)
    if backoff is not None:
        quiet = await demo_requests(http, demo)
        await runtime.poller.poll_target(bad)
        assert Counter() == await demo_requests(http, demo) - quiet
        clock.now = backoff.retry_at
    await runtime.poller.poll_target(bad)
    after = await scrape(http, runtime)
    assert 1 == value(after, "devin_up", endpoint=bad.endpoint, org=bad.org)
    expected = await expected_values(http, demo, runtime, bad, clock.now)
    assert expected == devin_values(after, bad)
    rows = await status_rows(http, runtime)
    assert {"ok"} == {r for (e, o, _), r in rows.items() if (e, o) == (bad.endpoint, bad.org)}


# Faults that the exporter absorbs: the poll succeeds.


def http_date(seconds_from_now: float) -> str:
    """An HTTP-date (whole seconds) at least `seconds_from_now` ahead."""
    return email.utils.formatdate(math.ceil(time.time() + seconds_from_now), usegmt=True)


@dataclass(frozen=True)
class Absorbed:
    """A fault the poll survives: the retries it costs and the least time it must take."""

    faults: list[dict[str, Any]]
    retries: dict[str, int]
    min_seconds: float = 0.0


ABSORBED = {
    "503-503-then-ok": Absorbed([{"status": 503, "times": 2}], {"server_error": 2}),
    "500-then-504-then-ok": Absorbed(
        [{"status": 500, "times": 1}, {"status": 504, "times": 1}], {"server_error": 2}
    ),
    "reset-then-ok": Absorbed([{"reset": True, "times": 1}], {"connection": 1}),
    "stall-then-ok": Absorbed([{"stall": True, "times": 1}], {"timeout": 1}, TIMEOUT_SECONDS),
    "latency-above-timeout-then-ok": Absorbed(
        [{"delay_seconds": 2 * TIMEOUT_SECONDS, "times": 1}], {"timeout": 1}, TIMEOUT_SECONDS
    ),
    "latency-below-timeout": Absorbed([{"delay_seconds": TIMEOUT_SECONDS / 2}], {}, 0.25),
    "429-retry-after-delta-seconds": Absorbed(
        [{"status": 429, "retry_after": "1", "times": 1}], {"rate_limited": 1}, 1.0
    ),
    # Filled in at run time: an HTTP-date must be in the future when it is served.
    "429-retry-after-http-date": Absorbed(
        [{"status": 429, "retry_after": "<http-date>", "times": 1}], {"rate_limited": 1}, 1.0
    ),
    "extra-unknown-fields": Absorbed([{"body": "extra_fields"}], {}),
    "new-origin-and-size-keys": Absorbed([{"body": "new_keys"}], {}),
}


@pytest.mark.parametrize("name", list(ABSORBED))
async def test_an_absorbed_fault_costs_only_its_retries(
    runtime: main.Runtime, demo: Demo, http: httpx.AsyncClient, clock: Clock, name: str
) -> None:
    case = ABSORBED[name]
    bad = find(runtime, "v3_org_sessions", demo.account.orgs[0].id)
    windows = [w.label for w in runtime.poller.windows]
    faults = [
        {**f, "retry_after": http_date(2)} if f.get("retry_after") == "<http-date>" else f
        for f in case.faults
    ]
    before = await scrape(http, runtime)
    requests_before = await demo_requests(http, demo)
    retries_before = {
        r: counter(
            runtime, "devin_exporter_api_retries_total", endpoint="v3_org_sessions", reason=r
        )
        for r in ("timeout", "connection", "rate_limited", "server_error")
    }

    await set_faults(http, demo, bad, faults)
    statuses, seconds = await poll_while_scraping(http, runtime, runtime.poller.poll_all())

    assert {200} == set(statuses)
    during = await scrape(http, runtime)
    for t in runtime.poller.targets:
        assert 1 == value(during, "devin_up", endpoint=t.endpoint, org=t.org)
    assert {"ok"} == set((await status_rows(http, runtime)).values())
    # A lower bound only: the Retry-After, the timeout or the latency was waited out.
    assert case.min_seconds <= seconds
    retries = {
        r: counter(
            runtime, "devin_exporter_api_retries_total", endpoint="v3_org_sessions", reason=r
        )
        - n
        for r, n in retries_before.items()
    }
    assert {r: case.retries.get(r, 0) for r in retries} == retries
    spent = await demo_requests(http, demo) - requests_before
    assert len(windows) + sum(case.retries.values()) == spent[bad.endpoint, bad.org]
    for t in runtime.poller.targets:
        if t != bad:
            assert strategy_of(t.row).requests_per_poll(windows) == spent[t.endpoint, t.org]
        # Every other target's numbers are as they were.
        if t != bad:
            assert devin_values(before, t) == devin_values(during, t)

    expected = await expected_values(http, demo, runtime, bad, clock.now)
    if name == "new-origin-and-size-keys":
        # Devin's new keys are exported as they come, next to the known ones.
        for window in windows:
            origin = {"org": bad.org, "window": window, "origin": "devin_cli"}
            size = {"org": bad.org, "window": window, "size": "xxl"}
            expected["devin_sessions_created_by_origin", frozenset(origin.items())] = 2
            expected["devin_sessions_created_by_size", frozenset(size.items())] = 2
    assert expected == devin_values(during, bad)

    # And once the fault ends, one poll later the numbers are exactly the API's.
    await clear_faults(http, demo)
    await runtime.poller.poll_target(bad)
    after = await scrape(http, runtime)
    assert await expected_values(http, demo, runtime, bad, clock.now) == devin_values(after, bad)


# A 429 holds back the whole key, not only the request that got it.


async def test_a_429_cools_down_every_target_that_shares_the_key(
    runtime: main.Runtime, demo: Demo, http: httpx.AsyncClient
) -> None:
    limited, sharing = (find(runtime, "v3_org_sessions", o.id) for o in demo.account.orgs[:2])
    other_key = find(runtime, "v2_enterprise_sessions", demo.account.orgs[1].id)
    windows = len(runtime.poller.windows)
    await set_faults(http, demo, limited, [{"status": 429, "retry_after": "1", "times": 1}])
    waited_before = counter(runtime, "devin_exporter_rate_limit_wait_seconds_total")
    requests_before = Counter(demo.api.plan.requests)

    # The cooldown starts when the 429 arrives, which is after this instant.
    sent = time.monotonic()
    first = asyncio.create_task(runtime.poller.poll_target(limited))
    refused = {"endpoint": "v3_org_sessions", "code": "429"}
    await wait_until(lambda: 1 <= counter(runtime, "devin_exporter_api_requests_total", **refused))
    started = time.monotonic()
    second = asyncio.create_task(runtime.poller.poll_target(sharing))
    # Another key is not held back by this one's cooldown.
    await runtime.poller.poll_target(other_key)
    looked = time.monotonic()
    key = (sharing.endpoint, sharing.org)
    seen = demo.api.plan.requests[key] - requests_before[key]
    await second
    finished = time.monotonic()
    await first

    # Lower bounds only: the cooldown lasts at least until sent + 1 s.
    held = sent + 1.0 - started
    assert 0 < held, "the 429 took more than its Retry-After to arrive"
    assert held <= finished - started
    # Each of the sharing target's requests waited out the rest of the cooldown.
    waited = counter(runtime, "devin_exporter_rate_limit_wait_seconds_total") - waited_before
    assert windows * held <= waited
    # Until the cooldown ended, the demo API saw no request of the sharing target.
    assert seen == 0 or looked >= sent + 1.0
    assert 1 == value(
        await scrape(http, runtime), "devin_up", endpoint=sharing.endpoint, org=sharing.org
    )
    spent = Counter(demo.api.plan.requests) - requests_before
    assert (windows + 1, windows, windows) == (
        spent[limited.endpoint, limited.org],
        spent[sharing.endpoint, sharing.org],
        spent[other_key.endpoint, other_key.org],
    )


async def test_a_429_holds_back_requests_already_queued_at_the_rate_limit(
    demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    """At 1 request a second, three windows queue at the key's limiter; the first gets a
    429 with Retry-After 2. The others left 1 and 2 s later, inside the cooldown; now none
    of the key's requests reaches Devin until the cooldown has passed."""
    windows = ["1h", "24h", "7d"]
    settings = demo.settings(
        devin={
            "base_url": demo.url,
            "service_user_key": demo.account.service_user_key,
            **RETRY_SETTINGS,
            "requests_per_second": 1,
            "timeout": "5s",
        },
        windows=windows,
    )
    async with main.http_client(settings) as client:
        runtime = main.build(settings, client, clock=clock)
        limited = find(runtime, "v3_org_sessions", demo.account.orgs[0].id)
        await set_faults(http, demo, limited, [{"status": 429, "retry_after": "2", "times": 1}])
        demo.api.plan.arrivals.clear()
        await runtime.poller.poll_target(limited)

    arrivals = [t for t, endpoint, org in demo.api.plan.arrivals if org == limited.org]
    refused, later = arrivals[0], arrivals[1:]
    # The window refused once is asked again, with the two queued behind it.
    assert 3 == len(later)
    # Lower bounds only: the cooldown starts when the 429 reaches the client, after
    # `refused`, so every later request must come 2 s after it or more.
    assert all(t - refused >= 2.0 for t in later), [round(t - refused, 2) for t in later]
    assert [None] * 3 == [runtime.poller.states[limited, w].last_error for w in windows]


async def test_stalls_on_other_keys_do_not_time_out_a_healthy_key(
    demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    """Three keys, one connection each by their gates; two keys stall, the third is fine.

    The connection pool must hold what every key's gate lets through: a pool capped at one
    key's concurrency, with the pool wait counted against the timeout, failed this.
    """
    orgs = demo.account.orgs
    demo.account.service_user_keys["cog_second_key"] = {orgs[1].id}
    settings = demo.settings(
        devin={
            "base_url": demo.url,
            "service_user_key": demo.account.service_user_key,
            "enterprise_key": demo.account.enterprise_key,
            **RETRY_SETTINGS,
            "max_attempts": 1,
            "max_concurrency": 1,
        },
        organizations=[
            {"id": orgs[0].id},
            {"id": orgs[1].id, "service_user_key": "cog_second_key"},
        ],
        windows=["1h"],
    )
    async with main.http_client(settings) as client:
        runtime = main.build(settings, client, clock=clock)
        stalled = find(runtime, "v3_org_sessions", orgs[0].id)
        also_stalled = find(runtime, "v2_enterprise_sessions", "")
        healthy = find(runtime, "v3_org_sessions", orgs[1].id)
        for t in (stalled, also_stalled):
            await set_faults(http, demo, t, [{"stall": True}])
        first = asyncio.create_task(runtime.poller.poll_target(stalled))
        await wait_until(lambda: 1 <= demo.api.plan.requests[stalled.endpoint, stalled.org])
        second = asyncio.create_task(runtime.poller.poll_target(also_stalled))
        await asyncio.sleep(0.1)
        await runtime.poller.poll_target(healthy)
        await asyncio.gather(first, second)

    assert (1, None) == (
        demo.api.plan.requests[healthy.endpoint, healthy.org],
        runtime.poller.states[healthy, "1h"].last_error,
    )
