"""One gate per API key: a request rate, a cap on requests in flight, and a shared cooldown."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiolimiter import AsyncLimiter
from pydantic import SecretStr

WaitHook = Callable[[float], None]
"""Told how many seconds a request waited for its key's rate limit or cooldown."""


class KeyGate:
    """Every request made with one key passes here, whichever target it serves.

    After a 429, `cool_down` holds back every request of the key (not only the one that
    was refused) until the cooldown has passed.
    """

    def __init__(
        self,
        requests_per_second: float,
        max_concurrency: int,
        *,
        on_wait: WaitHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A bucket of one second's worth of requests (at least one): short bursts, steady
        # average. Below 1/s the period stretches instead: 0.2/s is 1 request per 5 s.
        burst = max(1.0, requests_per_second)
        self._limiter = AsyncLimiter(burst, burst / requests_per_second)
        self._slots = asyncio.Semaphore(max_concurrency)
        self._cooldown_until = 0.0
        self._on_wait = on_wait
        self._clock = clock

    def cool_down(self, seconds: float) -> None:
        """Hold back every request of this key for `seconds` from now."""
        self._cooldown_until = max(self._cooldown_until, self._clock() + seconds)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for the cooldown, the rate and a free slot, then hold the slot.

        The cooldown is checked again after each wait: a request queued at the rate limiter
        or for a slot when a 429 arrives does not leave inside that 429's `Retry-After`.
        """
        started = self._clock()
        waited = 0.0
        while True:
            await self._cooled()
            await self._limiter.acquire()
            # Only the rate and the cooldown count as waiting: a busy slot is concurrency.
            waited = self._clock() - started
            if self._cooling():
                continue  # a 429 came while this request waited for the rate: wait again
            await self._slots.acquire()
            if not self._cooling():
                break
            self._slots.release()
        if waited > 0.001 and self._on_wait is not None:
            self._on_wait(waited)
        try:
            yield
        finally:
            self._slots.release()

    def _cooling(self) -> bool:
        return self._cooldown_until > self._clock()

    async def _cooled(self) -> None:
        # A loop, not an Event: another 429 may extend the cooldown while we sleep.
        while (pause := self._cooldown_until - self._clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(pause)


class KeyGates:
    """The gates of every key in use, created on first use and found by a hash of the key."""

    def __init__(
        self, requests_per_second: float, max_concurrency: int, on_wait: WaitHook | None = None
    ) -> None:
        self._rate = requests_per_second
        self._concurrency = max_concurrency
        self._on_wait = on_wait
        self._gates: dict[str, KeyGate] = {}

    def for_key(self, key: SecretStr) -> KeyGate:
        digest = key_digest(key)
        gate = self._gates.get(digest)
        if gate is None:
            gate = self._gates[digest] = KeyGate(
                self._rate, self._concurrency, on_wait=self._on_wait
            )
        return gate

    def retain(self, keys: list[SecretStr]) -> None:
        """Forget the gates of keys no longer in use (a reload rotated them)."""
        keep = {key_digest(k) for k in keys}
        self._gates = {d: g for d, g in self._gates.items() if d in keep}


def key_digest(key: SecretStr) -> str:
    """A stand-in for a key in maps and comparisons, so that none of them holds the key."""
    return hashlib.sha256(key.get_secret_value().encode()).hexdigest()
