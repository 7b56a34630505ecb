"""Sharding: three replicas together serve what one unsharded exporter serves."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from conftest import FIXED_NOW, Clock, Demo, running_exporter
from scrape import Series, parse

from exporter.config import ConfigError, load_settings
from exporter.demo.account import DemoAccount
from exporter.demo.app import DemoAPI
from exporter.sharding import ordinal_from_hostname, parse_shard, shard_of
from exporter.web.listener import listen

pytestmark = pytest.mark.slow  # real processes, servers or builds

ORGS = 20
SHARDS = 3
# The exporter's own counters differ by design (each replica counts its own requests).
_DEVIN_PREFIXES = ("devin_sessions", "devin_session_", "devin_enterprise", "devin_org_info")


@asynccontextmanager
async def demo_api() -> AsyncIterator[Demo]:
    api = DemoAPI(DemoAccount.generate(ORGS, seed=7), clock=lambda: FIXED_NOW)
    listener = await listen(api.app(), "127.0.0.1:0")
    try:
        yield Demo(api, listener)
    finally:
        await listener.close()


async def scrape_once(demo: Demo, http: httpx.AsyncClient, **overrides: object) -> Series:
    settings = demo.settings(**overrides)
    async with running_exporter(settings, Clock()) as runtime:
        return parse((await http.get(f"{runtime.url}/metrics")).text)


def devin_series(series: Series) -> Series:
    return {k: v for k, v in series.items() if k[0].startswith(_DEVIN_PREFIXES)}


async def test_the_union_of_three_shards_equals_one_unsharded_exporter(
    http: httpx.AsyncClient,
) -> None:
    async with demo_api() as whole:
        unsharded = devin_series(await scrape_once(whole, http))
    async with demo_api() as shared:
        union: Series = {}
        for index in range(SHARDS):
            part = devin_series(
                await scrape_once(shared, http, sharding={"index": index, "count": SHARDS})
            )
            assert not set(part) & set(union), "a series is served by two shards"
            union |= part
        requests = Counter(
            {key: n for key, n in shared.api.plan.requests.items() if key[0] == "v3_org_sessions"}
        )
    assert unsharded == union
    org_ids = [o.id for o in shared.account.orgs]
    # Polled by exactly one replica each: one poll of four windows.
    assert {("v3_org_sessions", org): 4 for org in org_ids} == dict(requests)
    assert len({shard_of(org, SHARDS) for org in org_ids}) == SHARDS
    # The enterprise-wide target is polled once, by shard 0 alone.
    assert 4 == shared.api.plan.requests["v2_enterprise_sessions", ""]


def test_shard_index_comes_from_the_statefulset_pod_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOSTNAME", "devin-exporter-2")
    settings = load_settings(
        None,
        devin={"service_user_key": "cog_x"},
        organizations=[{"id": "org-a"}],
        sharding={"count": 3},
    )
    assert 2 == settings.sharding.index


def test_sharding_without_an_index_or_a_pod_ordinal_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOSTNAME", "laptop")
    with pytest.raises(ConfigError, match=r"sharding: .*HOSTNAME 'laptop'"):
        load_settings(
            None,
            devin={"service_user_key": "cog_x"},
            organizations=[{"id": "org-a"}],
            sharding={"count": 3},
        )


@pytest.mark.parametrize(("text", "expected"), [("0/3", (0, 3)), ("2/3", (2, 3))])
def test_parse_shard_accepts_n_of_m(text: str, expected: tuple[int, int]) -> None:
    assert expected == parse_shard(text)


@pytest.mark.parametrize("text", ["3/3", "1", "a/b", "-1/3", "1/0"])
def test_parse_shard_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match=r"N/M|less than M"):
        parse_shard(text)


def test_ordinal_from_hostname() -> None:
    assert 12 == ordinal_from_hostname("devin-exporter-12")
    assert ordinal_from_hostname("devin-exporter") is None
