"""The poller against a hand-written fake of the DevinAPI Protocol: no sockets, no sleeps."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from fakes import H1, H24, INTERVAL, NOW, Clock, FakeDevin, Model, make_poller, target
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from exporter.devin.errors import DevinAPIError
from exporter.devin.models import BillingCycle, EnterpriseSessions, SessionMetrics
from exporter.devin.table import ENDPOINTS, Call, Endpoint
from exporter.metrics.instruments import Instruments
from exporter.polling import poller as poller_module
from exporter.polling.backoff import AUTH_BACKOFF_MAX_SECONDS
from exporter.polling.poller import Poller
from exporter.polling.snapshot import Sample
from exporter.polling.targets import Target
from exporter.windows import Window


def created(sample: Sample) -> int | None:
    """The sessions created that a v3 sessions sample holds."""
    assert isinstance(sample.value, SessionMetrics)
    return sample.value.sessions_created_count


async def test_a_success_stores_every_window_with_its_time() -> None:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a"))
    await poller.poll_all()
    assert {("org-a", "1h"): 3600, ("org-a", "24h"): 86400} == {
        (t.org, w): created(s) for (t, w), s in poller.samples.items()
    }
    assert poller.up(target("org-a"))
    assert poller.ready


async def test_a_failure_keeps_the_last_good_value_and_records_the_reason() -> None:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a"))
    await poller.poll_all()
    api.errors["org-a"] = DevinAPIError("server_error", status=503)
    clock.now += INTERVAL
    await poller.poll_all()
    state = poller.states[target("org-a"), "1h"]
    assert ("server_error", NOW, NOW + INTERVAL) == (
        state.last_error,
        state.last_success,
        state.last_failure_at,
    )
    assert NOW == poller.samples[target("org-a"), "1h"].fetched_at
    assert not poller.up(target("org-a"))


async def test_the_last_failure_is_remembered_after_recovery() -> None:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a"))
    api.errors["org-a"] = DevinAPIError("timeout")
    await poller.poll_all()
    del api.errors["org-a"]
    clock.now += INTERVAL
    await poller.poll_all()
    state = poller.states[target("org-a"), "24h"]
    assert (None, "timeout", NOW) == (state.last_error, state.last_failure, state.last_failure_at)


@pytest.mark.parametrize("reason", ["unauthorized", "forbidden"])
async def test_a_refused_key_backs_off_doubling_up_to_an_hour(reason: str) -> None:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a"))
    api.errors["org-a"] = DevinAPIError(reason, status=401)
    polls_at = []
    for _ in range(4 * 24):  # a day of scheduled runs, one per interval
        before = api.calls["org-a"]
        await poller.poll_target(target("org-a"))
        if api.calls["org-a"] > before:
            polls_at.append(clock.now - NOW)
        clock.now += INTERVAL
    gaps = [b - a for a, b in itertools.pairwise(polls_at)]
    assert [300, 600, 1200, 2400, 3600, 3600] == gaps[:6]
    assert max(gaps) == AUTH_BACKOFF_MAX_SECONDS
    assert target("org-a") in poller.snapshot().backoff


async def test_an_accepted_key_ends_the_backoff() -> None:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a"))
    api.errors["org-a"] = DevinAPIError("forbidden", status=403)
    await poller.poll_all()
    del api.errors["org-a"]
    clock.now += INTERVAL  # the first backoff is one interval
    await poller.poll_all()
    assert {} == poller.auth_backoff
    assert poller.up(target("org-a"))


async def test_a_rotated_key_is_tried_at_once_after_a_reload() -> None:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a", "cog_old"))
    api.errors["org-a"] = DevinAPIError("unauthorized", status=401)
    await poller.poll_all()
    await poller.poll_all()  # skipped: backing off
    assert 2 == api.calls["org-a"]
    del api.errors["org-a"]
    poller.reconfigure([target("org-a", "cog_new")], [H1, H24])
    await poller.poll_all()
    assert ["cog_new", "cog_new"] == api.keys_seen[-2:]
    assert poller.up(target("org-a"))


async def test_a_target_removed_while_its_poll_is_in_flight_leaves_nothing_behind() -> None:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a"), target("org-b"))
    api.gate = asyncio.Event()
    in_flight = asyncio.create_task(poller.poll_target(target("org-b")))
    await asyncio.sleep(0)
    poller.reconfigure([target("org-a")], [H1])
    api.gate.set()
    await in_flight
    assert all(t.org == "org-a" for t, _ in poller.samples)
    assert all(t.org == "org-a" for t, _ in poller.states)


async def test_a_window_added_while_a_poll_is_in_flight_does_not_break_it() -> None:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a"))
    api.gate = asyncio.Event()
    in_flight = asyncio.create_task(poller.poll_target(target("org-a")))
    await asyncio.sleep(0)
    poller.reconfigure([target("org-a")], [H1, H24, Window(7 * 86400, "7d")])
    api.gate.set()
    await in_flight
    assert {"1h", "24h"} == {w for _, w in poller.samples}
    assert poller.states[target("org-a"), "7d"].last_attempt is None


async def test_close_cancels_polls_in_flight_quietly() -> None:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a"))
    api.gate = asyncio.Event()  # never set: the request hangs
    in_flight = asyncio.create_task(poller.poll_target(target("org-a")))
    await asyncio.sleep(0)
    await poller.close()
    assert in_flight.done()
    assert in_flight.exception() is None  # ended, not cancelled: APScheduler logs nothing


async def test_enterprise_targets_are_polled_with_org_filters() -> None:
    api, clock = FakeDevin(), Clock()
    enterprise = Target(ENDPOINTS["v2_enterprise_sessions"], "", SecretStr("apk_user_x"))
    poller = make_poller(api, clock, enterprise)
    await poller.poll_all()
    value = poller.samples[enterprise, "1h"].value
    assert isinstance(value, EnterpriseSessions)
    assert 7 == value.sessions_count


class OneSlowOrg(FakeDevin):
    """Holds every request for `slow` until `release` is set; answers the others at once."""

    def __init__(self, slow: str) -> None:
        super().__init__()
        self.slow = slow
        self.release = asyncio.Event()

    async def fetch(self, endpoint: Endpoint[Model], key: SecretStr, call: Call) -> Model:
        if call.path.get("org_id") == self.slow:
            await self.release.wait()
        return await super().fetch(endpoint, key, call)


async def test_a_slow_target_delays_only_its_own_polls() -> None:
    api, clock = OneSlowOrg("org-slow"), Clock()
    poller = make_poller(api, clock, target("org-slow"), target("org-a"))
    for _ in range(3):  # three scheduled cycles while org-slow's first poll hangs
        poller.dispatch(poller.targets)
        for _ in range(10):
            await asyncio.sleep(0)
        clock.now += INTERVAL
    assert 6 == api.calls["org-a"]  # three polls of two windows each
    assert poller.samples[target("org-a"), "1h"].fetched_at == NOW + 2 * INTERVAL
    api.release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert 2 == api.calls["org-slow"]  # one poll, never started twice while it hung
    assert (target("org-slow"), "1h") in poller.samples
    await poller.close()


class CycleDevin(FakeDevin):
    """FakeDevin that also lists one billing cycle, from CYCLE_START, once `cycles` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.cycles = asyncio.Event()

    async def pages(self, endpoint: Endpoint[Any], key: SecretStr, **_: Any) -> list[Any]:
        await self.cycles.wait()
        return [BillingCycle(after=CYCLE_START, before=int(NOW) + 86400)]


CYCLE_START = int(NOW) - 10 * 86400
CYCLES = Target(ENDPOINTS["v3_enterprise_consumption_cycles"], "", SecretStr("cog_e"), INTERVAL)


def cycle_poller(api: FakeDevin) -> Poller:
    return Poller(
        api,
        [CYCLES, target("org-a")],
        [H1, Window.parse("cycle")],
        Instruments(CollectorRegistry()),
        clock=Clock(),
    )


async def test_new_targets_wait_for_the_billing_cycle_so_that_cycle_windows_are_asked() -> None:
    api = CycleDevin()
    api.cycles.set()
    poller = cycle_poller(api)

    await poller._poll_now(poller.targets)
    await wait_for_polls(poller)

    sample = poller.samples[target("org-a"), "cycle"]
    assert NOW - CYCLE_START == sample.value.sessions_created_count  # type: ignore[attr-defined]


async def test_a_slow_cycle_read_holds_the_first_polls_back_only_so_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(poller_module, "CYCLE_WAIT_SECONDS", 0.05)
    api = CycleDevin()  # never answers until told
    poller = cycle_poller(api)

    await poller._poll_now(poller.targets)
    await wait_for_polls(poller, target("org-a"))

    assert (target("org-a"), "1h") in poller.samples
    assert (target("org-a"), "cycle") not in poller.samples  # not guessed, not asked
    assert poller.up(target("org-a"))  # a window not asked counts neither way
    api.cycles.set()
    await poller.close()


async def wait_for_polls(poller: Poller, *targets: Target) -> None:
    """Until the targets (default: all) have been polled once."""
    wanted = set(targets or poller.targets)
    for _ in range(400):
        if wanted <= poller._polled:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("not polled in time")
