"""Organization discovery: every page listed, new orgs polled, removed orgs' series gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from conftest import FIXED_NOW, Clock, Demo, running_exporter, wait_until
from scrape import label_values, parse

from exporter import main
from exporter.demo.account import DemoAccount
from exporter.demo.app import DemoAPI
from exporter.web.listener import listen

pytestmark = pytest.mark.slow  # real processes, servers or builds

ORGS = 7


@asynccontextmanager
async def demo_api() -> AsyncIterator[Demo]:
    api = DemoAPI(DemoAccount.generate(ORGS, seed=3), clock=lambda: FIXED_NOW)
    listener = await listen(api.app(), "127.0.0.1:0")
    try:
        yield Demo(api, listener)
    finally:
        await listener.close()


@asynccontextmanager
async def exporter(demo: Demo, **discovery: Any) -> AsyncIterator[main.Runtime]:
    settings = demo.settings(
        devin={
            "base_url": demo.url,
            "enterprise_service_user_key": demo.account.enterprise_service_user_key,
            "retry_initial_backoff": "10ms",
        },
        organizations=[],
        discovery={"enabled": True, "page_size": 3, **discovery},
        # The ACU limits read the listing too; these tests count discovery's pages.
        endpoints={"acu_limits": {"enabled": False}},
    )
    async with running_exporter(settings, Clock(), ready=False) as runtime:
        await wait_until(lambda: runtime.ready)  # discovery's first listing, then every poll
        yield runtime


async def orgs_served(http: httpx.AsyncClient, runtime: main.Runtime) -> set[str]:
    series = parse((await http.get(f"{runtime.url}/metrics")).text)
    return label_values(series, "devin_sessions_created", "org")


async def test_discovery_follows_every_page_and_tracks_added_and_removed_orgs(
    http: httpx.AsyncClient,
) -> None:
    async with demo_api() as demo, exporter(demo) as runtime:
        ids = {o.id for o in demo.account.orgs}
        # Seven organizations at three a page: three pages.
        assert 3 == demo.api.plan.requests["v3_enterprise_organizations", ""]
        assert ids == await orgs_served(http, runtime)
        assert 200 == (await http.get(f"{runtime.url}/readyz")).status_code

        added = await http.post(
            f"{demo.url}/_demo/orgs", json={"id": "org-new000001", "name": "New team"}
        )
        assert 200 == added.status_code
        gone = sorted(ids)[0]
        assert 200 == (await http.delete(f"{demo.url}/_demo/orgs/{gone}")).status_code
        await runtime.discover()
        await wait_until(lambda: runtime.poller.up(_target(runtime, "org-new000001")))
        served = await orgs_served(http, runtime)
        assert (ids - {gone}) | {"org-new000001"} == served
        series = parse((await http.get(f"{runtime.url}/metrics")).text)
        assert (
            "devin_org_info",
            frozenset({("org", "org-new000001"), ("name", "New team")}),
        ) in series


async def test_include_and_exclude_patterns_filter_discovered_orgs(
    http: httpx.AsyncClient,
) -> None:
    async with demo_api() as demo:
        ids = sorted(o.id for o in demo.account.orgs)
        async with exporter(demo, include=["org-demo000[0-4]"], exclude=[ids[0]]) as runtime:
            assert set(ids[1:5]) == await orgs_served(http, runtime)


async def test_discovery_with_only_an_enterprise_admin_key_uses_v2(
    http: httpx.AsyncClient,
) -> None:
    async with demo_api() as demo:
        settings = demo.settings(
            organizations=[],
            discovery={"enabled": True, "page_size": 5},
            endpoints={"acu_limits": {"enabled": False}},
        )
        async with running_exporter(settings, Clock(), ready=False) as runtime:
            await wait_until(lambda: runtime.ready)
            served = await orgs_served(http, runtime)
        assert {o.id for o in demo.account.orgs} == served
        assert 2 == demo.api.plan.requests["v2_enterprise_organizations", ""]


def _target(runtime: main.Runtime, org: str) -> Any:
    return next(t for t in runtime.poller.targets if t.org == org)


async def test_discovery_past_max_organizations_polls_the_first_and_counts_the_rest(
    http: httpx.AsyncClient,
) -> None:
    """A listing that grows without bound cannot grow targets with it: the first
    `max_organizations` by id are polled, the rest counted in a gauge."""
    async with demo_api() as demo, exporter(demo, max_organizations=3) as runtime:
        series = parse((await http.get(f"{runtime.url}/metrics")).text)
        ids = sorted(o.id for o in demo.account.orgs)

        assert set(ids[:3]) == await orgs_served(http, runtime)
        assert {("devin_exporter_discovery_organizations_left_out", frozenset()): ORGS - 3} == {
            key: v for key, v in series.items() if key[0].endswith("_left_out")
        }
        assert 3 == len({t.org for t in runtime.poller.targets if t.org})


async def test_one_scheduler_job_per_poll_interval_whatever_the_organizations(
    http: httpx.AsyncClient,
) -> None:
    async with demo_api() as demo, exporter(demo) as runtime:
        assert runtime.scheduler is not None
        polls = [j.id for j in runtime.scheduler.get_jobs() if j.id.startswith("poll-every-")]
        intervals = {t.interval_seconds for t in runtime.poller.targets}

        assert len(intervals) == len(polls)
        assert len(runtime.poller.targets) > len(polls)
