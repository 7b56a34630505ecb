"""Signals and reloads: SIGTERM stops promptly, SIGHUP re-reads the config without a gap."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import Clock, Demo, processes, running_exporter, wait_until
from scrape import label_values, parse, value

from exporter import main

pytestmark = pytest.mark.slow  # real processes, servers or builds


async def scrape(http: httpx.AsyncClient, runtime: main.Runtime) -> Any:
    return parse((await http.get(f"{runtime.url}/metrics")).text)


async def test_reload_applies_the_billing_settings_and_the_acu_limits_group(
    running: main.Runtime, demo: Demo, http: httpx.AsyncClient
) -> None:
    """billing.* and endpoints.acu_limits are applied by a reload, no restart needed."""
    assert value(await scrape(http, running), "devin_acu_price", currency="CHF") is None
    new = demo.settings(
        billing={"cycle_start_day": 23, "acu_price": 3.5, "currency": "CHF"},
        endpoints={"acu_limits": {"enabled": False}},
    )
    running.reload(new)

    after = await scrape(http, running)
    assert 3.5 == value(after, "devin_acu_price", currency="CHF")
    assert 23 == running.poller.cycle_start_day
    assert "v2_enterprise_organizations" not in {t.endpoint for t in running.poller.targets}
    assert set() == label_values(after, "devin_acu_session_limit", "org")


async def test_reload_keeps_surviving_series_and_drops_removed_ones(
    running: main.Runtime, demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    kept, dropped, _ = (o.id for o in demo.account.orgs)
    before = await scrape(http, running)
    new = demo.settings(
        organizations=[{"id": kept, "name": "Renamed"}],
        windows=["1h", "2h", "24h"],
    )
    running.reload(new)

    after = await scrape(http, running)
    assert value(before, "devin_sessions_created", org=kept, window="1h") == value(
        after, "devin_sessions_created", org=kept, window="1h"
    )
    assert {kept} == label_values(after, "devin_sessions_created", "org")
    # The new window is polled at once, not at the next interval (it may already be in).
    assert {"1h", "24h"} <= label_values(after, "devin_sessions_created", "window")
    assert 1 == value(after, "devin_org_info", org=kept, name="Renamed")
    assert 1 == value(after, "devin_up", endpoint="v3_org_sessions", org=kept)
    assert value(after, "devin_up", endpoint="v3_org_sessions", org=dropped) is None

    await wait_until(
        lambda: all(
            state.last_attempt is not None
            for (target, window), state in running.poller.states.items()
            if window == "2h"
        )
    )
    polled = await scrape(http, running)
    assert {"1h", "2h", "24h"} == label_values(polled, "devin_sessions_created", "window")


ONLY_LIVE = {
    "sessions": {"enabled": False},
    "enterprise_sessions": {"enabled": False},
    "sessions_live": {"enabled": True},
}


def _errors_by_org(runtime: main.Runtime) -> dict[str, str | None]:
    return {target.org: state.last_error for (target, _), state in runtime.poller.states.items()}


def _errors(runtime: main.Runtime) -> set[str | None]:
    return set(_errors_by_org(runtime).values())


async def test_reload_applies_the_response_cap_and_the_timeout(
    demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    """Both were read once at start: a reload lowering them changed nothing."""

    first, *others = demo.account.orgs

    def settings(*orgs: Any, **devin: Any) -> Any:
        return demo.settings(
            endpoints=ONLY_LIVE,
            organizations=[{"id": o.id} for o in orgs],
            devin={
                "base_url": demo.url,
                "service_user_key": demo.account.service_user_key,
                "requests_per_second": 1000,
                "max_attempts": 1,
                **devin,
            },
        )

    async with running_exporter(settings(first), clock) as runtime:
        assert {None} == _errors(runtime)

        # The organisations added now list a whole lookback: several KiB each.
        runtime.reload(settings(first, *others, max_response_bytes=1024))
        await runtime.poller.poll_all()
        assert {o.id: "response_too_large" for o in others} == {
            org: error for org, error in _errors_by_org(runtime).items() if error
        }

        for org in demo.account.orgs:
            fault = {"endpoint": "v3_org_sessions_list", "org": org.id}
            entry = {**fault, "faults": [{"delay_seconds": 1.0}]}
            assert 200 == (await http.post(f"{demo.url}/_demo/faults", json=entry)).status_code
        runtime.reload(settings(first, *others, timeout="200ms"))
        await runtime.poller.poll_all()
        assert {"timeout"} == _errors(runtime)


def _config(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def _wait_for(predicate: Any, what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_sighup_applies_a_good_config_and_keeps_the_old_one_on_a_bad_one(
    tmp_path: Path,
) -> None:
    with processes(tmp_path) as process:
        config_path = tmp_path / "config.yaml"
        document = _config(config_path)
        first, *others = [o["id"] for o in document["organizations"]]
        document["organizations"] = document["organizations"][:1]
        config_path.write_text(yaml.safe_dump(document))
        process.exporter.send_signal(signal.SIGHUP)
        _wait_for(lambda: "event=config_reloaded" in process.log(), process.log())
        series = parse(httpx.get(f"{process.url}/metrics", timeout=5).text)
        assert {first} == label_values(series, "devin_sessions_created", "org")
        assert not {*others} & label_values(series, "devin_org_info", "org")
        assert "reload_needs_restart" not in process.log()

        # Settings a reload cannot apply are named, each of them, and nothing else.
        document["devin"]["requests_per_second"] = 7
        document["devin"]["max_response_bytes"] = 2048
        document.setdefault("web", {})["max_connections"] = 99
        config_path.write_text(yaml.safe_dump(document))
        process.exporter.send_signal(signal.SIGHUP)
        _wait_for(lambda: process.log().count("event=config_reloaded") == 2, process.log())
        (line,) = [x for x in process.log().splitlines() if "reload_needs_restart" in x]
        assert "keys=devin.requests_per_second,web.max_connections" in line

        config_path.write_text("devin:\n  timeout: never\n")
        process.exporter.send_signal(signal.SIGHUP)
        _wait_for(lambda: "event=reload_failed" in process.log(), process.log())
        assert "devin.timeout" in process.log()
        assert process.exporter.poll() is None
        series = parse(httpx.get(f"{process.url}/metrics", timeout=5).text)
        assert {first} == label_values(series, "devin_sessions_created", "org")


def test_sigterm_cancels_requests_in_flight_and_exits_0_within_5_seconds(
    tmp_path: Path,
) -> None:
    with processes(tmp_path) as process:
        orgs = label_values(
            parse(httpx.get(f"{process.url}/metrics", timeout=5).text),
            "devin_sessions_created",
            "org",
        )
        for org in orgs:
            body = {"endpoint": "v3_org_sessions", "org": org, "faults": [{"stall": True}]}
            httpx.post(f"{process.demo_admin_url}/faults", json=body, timeout=5)
        # The next poll (every 2 s) stalls mid-body; the exporter's timeout is 10 s.
        requests_seen = _demo_requests(process.demo_admin_url)
        _wait_for(
            lambda: _demo_requests(process.demo_admin_url) > requests_seen,
            "no poll reached the stalled demo API",
        )
        process.exporter.send_signal(signal.SIGTERM)
        assert 0 == process.exporter.wait(timeout=5)
        assert "event=stopped" in process.log()


def _demo_requests(admin_url: str) -> int:
    counts = httpx.get(f"{admin_url}/requests", timeout=5).json()
    return sum(c["requests"] for c in counts if c["endpoint"] == "v3_org_sessions")


async def test_healthz_fails_once_the_scheduler_has_stopped(
    running: main.Runtime, http: httpx.AsyncClient
) -> None:
    assert 200 == (await http.get(f"{running.url}/healthz")).status_code
    assert running.scheduler is not None
    running.scheduler.shutdown(wait=False)
    await wait_until(lambda: not running.scheduler or not running.scheduler.running)
    assert 503 == (await http.get(f"{running.url}/healthz")).status_code
