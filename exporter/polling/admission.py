"""How many targets of one API key are polled at once: enough to keep the key's gate busy,
few enough that a cycle of thousands of requests does not hold them all in memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import SecretStr

from exporter.devin.ratelimit import key_digest

# Targets admitted per key for each request the key may have in flight: two, so that a
# target finishing never leaves a slot of the gate idle while the next one starts.
TARGETS_PER_SLOT = 2


class Admission:
    """Per API key, at most `targets_per_key` targets between their first request and
    their last answer; the others wait here, as a task each and nothing more.

    Without it, a cycle of 500 organisations starts thousands of requests at once, each
    with its retry state, deadline and gate waiters, though the key's cap on requests in
    flight lets only a few of them run: tens of MB held for nothing (docs/performance.md).
    """

    def __init__(self, targets_per_key: int) -> None:
        if targets_per_key < 1:
            raise ValueError(f"targets_per_key must be positive, not {targets_per_key}")
        self.targets_per_key = targets_per_key
        self._slots: dict[str, asyncio.Semaphore] = {}

    @classmethod
    def for_concurrency(cls, max_concurrency: int) -> Admission:
        """Enough targets to keep `max_concurrency` requests of each key in flight."""
        return cls(TARGETS_PER_SLOT * max_concurrency)

    @asynccontextmanager
    async def slot(self, key: SecretStr) -> AsyncIterator[None]:
        """Wait until a target of this key may start, and hold its place while it runs."""
        digest = key_digest(key)
        slots = self._slots.get(digest)
        if slots is None:
            slots = self._slots[digest] = asyncio.Semaphore(self.targets_per_key)
        async with slots:
            yield

    def retain(self, keys: list[SecretStr]) -> None:
        """Forget the keys no longer in use (a reload rotated them); targets of a forgotten
        key already admitted finish under its old count."""
        keep = {key_digest(k) for k in keys}
        self._slots = {d: s for d, s in self._slots.items() if d in keep}
