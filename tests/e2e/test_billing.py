"""The billing cycle from each of its sources, the ACU limits and the price of an ACU, end
to end: the exporter polls the demo API on loopback, and its scrape is checked against the
demo's own cycles, billing days and limits."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from conftest import FIXED_NOW, Clock, Demo, running_exporter
from scrape import Series, label_values, names, parse, value

from exporter import billing, main
from exporter.config import ConfigError, load_settings
from exporter.demo.account import DEMO_ENTERPRISE_CYCLE_LIMIT, DEMO_SESSION_LIMIT, DemoAccount
from exporter.demo.app import DemoAPI
from exporter.demo.data import billing_cycles
from exporter.logs import configure_logging
from exporter.web.listener import listen
from exporter.windows import DAY_SECONDS

pytestmark = pytest.mark.slow  # real processes, servers or builds

# The demo's cycle that holds FIXED_NOW (2026-09-21): from the 5th to the 5th, 08:00 UTC.
[DEMO_CYCLE] = billing_cycles(FIXED_NOW, FIXED_NOW)
# billing.cycle_start_day 23: from 2026-08-23 to 2026-09-23, 08:00 UTC.
DAY_23_CYCLE = (1787472000.0, 1790150400.0)
CYCLE_FAMILIES = {
    "devin_billing_cycle_acus_consumed",
    "devin_billing_cycle_start_timestamp_seconds",
    "devin_billing_cycle_end_timestamp_seconds",
}


def settings_for(demo: Demo, keys: tuple[str, ...], orgs: int = 2, **overrides: Any) -> Any:
    """Settings polling the first `orgs` demo organisations with only these keys (by
    config name), consumption on, and the `24h` and `cycle` windows unless overridden."""
    account = demo.account
    known = {
        "service_user_key": account.service_user_key,
        "enterprise_key": account.enterprise_key,
        "enterprise_service_user_key": account.enterprise_service_user_key,
    }
    values: dict[str, Any] = {
        "devin": {
            "base_url": demo.url,
            "timeout": "5s",
            "retry_initial_backoff": "10ms",
            "retry_max_backoff": "50ms",
            "requests_per_second": 1000,
            **{key: known[key] for key in keys},
        },
        "organizations": [{"id": o.id, "name": o.name} for o in account.orgs[:orgs]],
        "windows": ["24h", "cycle"],
        "poll_interval": "1h",
        "endpoints": {"consumption": {"enabled": True}},
        "web": {"listen_address": "127.0.0.1:0"},
    }
    values.update(overrides)
    return load_settings(None, **values)


async def scrape(settings: Any, http: httpx.AsyncClient, clock: Clock) -> Series:
    """The exporter's exposition after its first poll of every target."""
    async with running_exporter(settings, clock) as runtime:
        return parse((await http.get(f"{runtime.url}/metrics")).text)


def demo_acus(demo: Demo, org_ids: list[str], start: float) -> float:
    """ACUs of the demo's billing days from the one holding `start` until FIXED_NOW."""
    first = start - (start - 8 * 3600) % DAY_SECONDS
    return sum(
        day.acus
        for org in org_ids
        for day in demo.account.models[org].daily_consumption(first, FIXED_NOW)
    )


SERVICE_USER = ("service_user_key",)


@pytest.mark.parametrize(
    ("keys", "billing", "cycle"),
    [
        ((*SERVICE_USER, "enterprise_service_user_key"), {}, DEMO_CYCLE),
        ((*SERVICE_USER, "enterprise_key"), {}, DEMO_CYCLE),
        # Devin's cycle wins over the configured day when a key can read it.
        ((*SERVICE_USER, "enterprise_key"), {"cycle_start_day": 23}, DEMO_CYCLE),
        (SERVICE_USER, {"cycle_start_day": 23}, DAY_23_CYCLE),
    ],
    ids=["v3", "v2", "v2-over-cycle_start_day", "cycle_start_day"],
)
async def test_the_cycle_comes_from_its_source_and_cycle_windows_sum_its_billing_days(
    demo: Demo,
    http: httpx.AsyncClient,
    clock: Clock,
    keys: tuple[str, ...],
    billing: dict[str, int],
    cycle: tuple[float, float],
) -> None:
    series = await scrape(settings_for(demo, keys, billing=billing), http, clock)

    assert cycle == (
        value(series, "devin_billing_cycle_start_timestamp_seconds"),
        value(series, "devin_billing_cycle_end_timestamp_seconds"),
    )
    for org in [o.id for o in demo.account.orgs[:2]]:
        expected = demo_acus(demo, [org], cycle[0])
        assert expected == pytest.approx(
            value(series, "devin_billing_cycle_acus_consumed", org=org)
        )
        products = [
            v
            for (name, labels), v in series.items()
            if name == "devin_acus_consumed"
            and ("window", "cycle") in labels
            and ("org", org) in labels
        ]
        assert expected == pytest.approx(sum(products))


async def test_the_enterprise_total_is_devins_not_the_sum_of_the_polled_organisations(
    demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    """Two of the demo's three organisations are polled; org="" is all three."""
    keys = (*SERVICE_USER, "enterprise_service_user_key")
    series = await scrape(settings_for(demo, keys), http, clock)

    everyone = [o.id for o in demo.account.orgs]
    polled = everyone[:2]
    enterprise = value(series, "devin_billing_cycle_acus_consumed", org="")
    assert demo_acus(demo, everyone, DEMO_CYCLE[0]) == pytest.approx(enterprise)
    assert enterprise is not None
    assert enterprise > demo_acus(demo, polled, DEMO_CYCLE[0]) * 1.01
    # Sums over devin_acus_consumed stay sums of organisations.
    assert set(polled) == label_values(series, "devin_acus_consumed", "org")


async def test_without_a_source_nothing_cycle_based_is_exported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`once` against a demo API on the real clock, as an operator would run it."""
    live = DemoAPI(DemoAccount.generate(2))
    listener = await listen(live.app(), "127.0.0.1:0")
    try:
        demo = Demo(live, listener)
        settings = settings_for(demo, SERVICE_USER, windows=["24h", "7d"])
        assert 0 == await main.run_once(settings)
    finally:
        await listener.close()

    series = parse(capsys.readouterr().out)
    assert "devin_acus_consumed" in names(series)
    assert set() == CYCLE_FAMILIES & names(series)
    assert {"24h", "7d"} == label_values(series, "devin_acus_consumed", "window")


def test_without_a_source_one_log_line_says_why(demo: Demo) -> None:
    stream = io.StringIO()
    configure_logging("info", "logfmt", stream)

    billing.log_billing(settings_for(demo, SERVICE_USER, windows=["24h"]))

    lines = stream.getvalue().splitlines()
    [unknown] = [line for line in lines if "event=billing_cycle_unknown" in line]
    assert "billing.cycle_start_day" in unknown
    assert "no devin_billing_cycle_*" in unknown


def test_a_cycle_window_without_a_source_is_refused(demo: Demo) -> None:
    with pytest.raises(ConfigError, match=r"billing\.cycle_start_day"):
        settings_for(demo, SERVICE_USER)


async def test_disabling_billing_cycles_falls_back_to_the_configured_day(
    demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    keys = (*SERVICE_USER, "enterprise_service_user_key")
    settings = settings_for(
        demo,
        keys,
        billing={"cycle_start_day": 23},
        endpoints={"consumption": {"enabled": True}, "billing_cycles": {"enabled": False}},
    )
    series = await scrape(settings, http, clock)

    assert DAY_23_CYCLE[0] == value(series, "devin_billing_cycle_start_timestamp_seconds")


@pytest.mark.parametrize(
    ("keys", "enterprise_limit"),
    [
        ((*SERVICE_USER, "enterprise_service_user_key"), DEMO_ENTERPRISE_CYCLE_LIMIT),
        ((*SERVICE_USER, "enterprise_key"), None),  # v2 listings: no enterprise-wide limit
    ],
    ids=["v3", "v2"],
)
async def test_limits_per_organisation_and_for_the_enterprise(
    demo: Demo,
    http: httpx.AsyncClient,
    clock: Clock,
    keys: tuple[str, ...],
    enterprise_limit: float | None,
) -> None:
    series = await scrape(settings_for(demo, keys), http, clock)

    orgs = [o.id for o in demo.account.orgs]
    polled = orgs[:2]
    expected = {o: demo.account.cycle_limits[o] for o in polled if o in demo.account.cycle_limits}
    if enterprise_limit is not None:
        expected[""] = enterprise_limit
    limits = {
        dict(labels)["org"]: v
        for (name, labels), v in series.items()
        if name == "devin_acu_cycle_limit"
    }
    assert expected == limits
    assert orgs[0] not in limits  # no limit: no series, never +Inf
    assert {o: float(DEMO_SESSION_LIMIT) for o in polled} == {
        dict(labels)["org"]: v
        for (name, labels), v in series.items()
        if name == "devin_acu_session_limit"
    }
    assert "devin_acu_price" not in names(series)


async def test_the_price_is_exported_when_configured(
    demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    settings = settings_for(
        demo, (*SERVICE_USER, "enterprise_key"), billing={"acu_price": 2.25, "currency": "EUR"}
    )
    series = await scrape(settings, http, clock)

    assert 2.25 == value(series, "devin_acu_price", currency="EUR")


async def test_every_shard_reads_the_cycle_and_shard_0_alone_serves_the_enterprise(
    demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    keys = (*SERVICE_USER, "enterprise_service_user_key")
    shards = [
        await scrape(
            settings_for(demo, keys, orgs=3, sharding={"index": i, "count": 2}), http, clock
        )
        for i in (0, 1)
    ]

    for series in shards:
        for org in label_values(series, "devin_billing_cycle_acus_consumed", "org") - {""}:
            assert demo_acus(demo, [org], DEMO_CYCLE[0]) == pytest.approx(
                value(series, "devin_billing_cycle_acus_consumed", org=org)
            )
    enterprise_series = {
        "devin_billing_cycle_start_timestamp_seconds",
        "devin_billing_cycle_end_timestamp_seconds",
    }
    assert enterprise_series <= names(shards[0])
    assert set() == enterprise_series & names(shards[1])
    assert "" in label_values(shards[0], "devin_acu_cycle_limit", "org")
    assert "" not in label_values(shards[1], "devin_acu_cycle_limit", "org")
    assert "" not in label_values(shards[1], "devin_billing_cycle_acus_consumed", "org")
    polled = [label_values(s, "devin_billing_cycle_acus_consumed", "org") - {""} for s in shards]
    assert {o.id for o in demo.account.orgs} == polled[0] | polled[1]
    assert set() == polled[0] & polled[1]
