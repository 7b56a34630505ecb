"""Per-key gates: rate, concurrency and the 429 cooldown that every request of a key obeys."""

from __future__ import annotations

import asyncio
import time

from pydantic import SecretStr

from exporter.devin.ratelimit import KeyGate, KeyGates


async def test_a_cooldown_holds_back_every_request_of_the_key() -> None:
    waits: list[float] = []
    gate = KeyGate(1000, 8, on_wait=waits.append)
    gate.cool_down(0.2)
    started = time.monotonic()

    async def one() -> float:
        async with gate.slot():
            return time.monotonic() - started

    elapsed = await asyncio.gather(one(), one(), one())
    assert all(e >= 0.2 for e in elapsed)
    assert 3 == len(waits)
    assert all(w >= 0.2 for w in waits)


async def test_a_cooldown_holds_back_requests_already_waiting_for_the_rate_or_a_slot() -> None:
    gate = KeyGate(1, 1)  # one request a second, one in flight
    started = time.monotonic()
    entered: list[float] = []

    async def one() -> None:
        async with gate.slot():
            entered.append(time.monotonic() - started)

    async with gate.slot():  # the first request: the token spent, the slot held
        queued = [asyncio.create_task(one()) for _ in range(2)]
        await asyncio.sleep(0.05)  # both now wait at the limiter
        gate.cool_down(1.5)  # its answer was a 429
    await asyncio.gather(*queued)
    assert 2 == len(entered)
    assert all(e >= 1.5 for e in entered), entered


async def test_a_rate_below_one_per_second_stretches_the_period() -> None:
    gate = KeyGate(4, 8)  # a burst of 4, then 4 a second
    fast = KeyGate(0.5, 8)  # 1 request, then one every 2 s
    assert (4.0, 1.0) == (gate._limiter.max_rate, gate._limiter.time_period)
    assert (1.0, 2.0) == (fast._limiter.max_rate, fast._limiter.time_period)


async def test_concurrency_is_capped_per_key() -> None:
    gate = KeyGate(1000, 2)
    inside = peak = 0

    async def one() -> None:
        nonlocal inside, peak
        async with gate.slot():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(one() for _ in range(6)))
    assert 2 == peak


def test_targets_sharing_a_key_share_its_gate_and_others_do_not() -> None:
    gates = KeyGates(5, 8)
    assert gates.for_key(SecretStr("cog_a")) is gates.for_key(SecretStr("cog_a"))
    assert gates.for_key(SecretStr("cog_a")) is not gates.for_key(SecretStr("cog_b"))


def test_retain_forgets_rotated_keys_and_never_stores_a_key() -> None:
    gates = KeyGates(5, 8)
    kept = gates.for_key(SecretStr("cog_kept"))
    gates.for_key(SecretStr("cog_rotated"))
    gates.retain([SecretStr("cog_kept")])
    assert kept is gates.for_key(SecretStr("cog_kept"))
    assert 1 == len(gates._gates)
    assert not any("cog_" in digest for digest in gates._gates)
