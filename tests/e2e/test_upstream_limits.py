"""End to end, in-process: an upstream answer too large to hold fails only its own target.

The demo API sends a gzip bomb (about 1 MB inflating to more than 1 GiB) or a body that
never ends; the exporter reads each no further than `devin.max_response_bytes` (16 MiB by
default), counts the poll as `response_too_large`, and goes on.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from conftest import Demo, wait_until
from scrape import parse, value

from exporter import main
from exporter.demo.faults import Fault, PlanEntry
from exporter.metrics.instruments import RETRY_REASONS

pytestmark = pytest.mark.slow  # real processes, servers or builds

# Far longer than reading 16 MiB takes, far shorter than the poll deadline (the poll
# interval, an hour in these tests) and the per-read timeout after which an endless body
# would otherwise end.
POLL_DEADLINE_SECONDS = 30.0


def writing_endless_bodies() -> int:
    """How many of the demo's handlers (on this event loop) are still in `_endless_body`."""
    count = 0
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        while coro is not None:
            if getattr(coro, "__qualname__", "") == "_endless_body":
                count += 1
                break
            coro = getattr(coro, "cr_await", None)
    return count


def retries(runtime: main.Runtime) -> float:
    """Requests of v3_org_sessions tried again after a transient failure, whatever it was."""
    return sum(
        runtime.registry.get_sample_value(
            "devin_exporter_api_retries_total", {"endpoint": "v3_org_sessions", "reason": reason}
        )
        or 0.0
        for reason in RETRY_REASONS
    )


@pytest.mark.parametrize("body", ["gzip_bomb", "endless_body"])
async def test_an_answer_past_the_cap_fails_only_its_target_as_response_too_large(
    running: main.Runtime, demo: Demo, http: httpx.AsyncClient, body: str
) -> None:
    bad = demo.account.orgs[0].id
    windows = len(running.poller.windows)
    requests_before = demo.api.plan.requests["v3_org_sessions", bad]
    retries_before = retries(running)
    demo.api.plan.set(PlanEntry(endpoint="v3_org_sessions", org=bad, faults=[Fault(body=body)]))

    await asyncio.wait_for(running.poller.poll_all(), POLL_DEADLINE_SECONDS)

    series = parse((await http.get(f"{running.url}/metrics")).text)
    assert 0 == value(series, "devin_up", endpoint="v3_org_sessions", org=bad)
    assert windows == value(
        series,
        "devin_exporter_poll_errors_total",
        endpoint="v3_org_sessions",
        org=bad,
        reason="response_too_large",
    )
    for t in running.poller.targets:
        if (t.endpoint, t.org) != ("v3_org_sessions", bad):
            assert 1 == value(series, "devin_up", endpoint=t.endpoint, org=t.org)
    # Not transient: one request per window, none retried for it. (On a loaded machine a
    # transient failure of its own, such as a timeout, may be retried: counted apart.)
    retried = retries(running) - retries_before
    spent = demo.api.plan.requests["v3_org_sessions", bad] - requests_before
    assert windows <= spent <= windows + retried
    page = (await http.get(f"{running.url}/")).text
    assert "<b>response_too_large</b>" in page


async def test_the_demo_stops_an_endless_body_once_the_exporter_hangs_up(
    running: main.Runtime, demo: Demo
) -> None:
    bad = demo.account.orgs[0].id
    demo.api.plan.set(
        PlanEntry(endpoint="v3_org_sessions", org=bad, faults=[Fault(body="endless_body")])
    )

    poll = asyncio.create_task(running.poller.poll_all())
    await wait_until(lambda: writing_endless_bodies() > 0)
    await asyncio.wait_for(poll, POLL_DEADLINE_SECONDS)

    await wait_until(lambda: writing_endless_bodies() == 0)


async def test_the_target_recovers_after_the_oversized_answers_end(
    running: main.Runtime, demo: Demo, http: httpx.AsyncClient
) -> None:
    bad = demo.account.orgs[0].id
    windows = len(running.poller.windows)
    demo.api.plan.set(
        PlanEntry(
            endpoint="v3_org_sessions", org=bad, faults=[Fault(body="gzip_bomb", times=windows)]
        )
    )
    await asyncio.wait_for(running.poller.poll_all(), POLL_DEADLINE_SECONDS)

    await asyncio.wait_for(running.poller.poll_all(), POLL_DEADLINE_SECONDS)

    series = parse((await http.get(f"{running.url}/metrics")).text)
    assert 1 == value(series, "devin_up", endpoint="v3_org_sessions", org=bad)
