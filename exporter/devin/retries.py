"""How hard one request to Devin tries: the policy, Retry-After, the pause between
attempts, and the loop that runs them within the poll's deadline."""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from typing import TypeVar

from exporter.devin.errors import DevinAPIError

_Answer = TypeVar("_Answer")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one request tries: attempts, full-jitter backoff, and a time budget."""

    attempts: int = 3
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    # A request and its retries end within this (the exporter uses the poll interval),
    # so a Retry-After never holds a target past its next poll.
    budget_seconds: float = 60.0


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def pause_seconds(
    policy: RetryPolicy, error: DevinAPIError, attempt: int, elapsed: float
) -> float | None:
    """Seconds to wait before trying again after `error`, or None to give up.

    Only transient failures, at most `policy.attempts` in all, never past the budget,
    and not at all when the server asks for a wait longer than the budget left. No wait
    after a 429, whose cooldown the key's gate applies to every request of the key, this
    one too; Retry-After when the server says; full jitter otherwise.
    """
    left = policy.budget_seconds - elapsed
    if not error.transient or attempt >= policy.attempts or left <= 0:
        return None
    if (error.retry_after or 0.0) > left:
        return None
    if error.status == 429:
        return 0.0
    if error.retry_after is not None:
        return max(0.0, error.retry_after)
    ceiling = policy.initial_backoff_seconds * 2.0 ** min(attempt - 1, 64)
    return min(random.uniform(0.0, min(ceiling, policy.max_backoff_seconds)), left)


async def with_retries(
    policy: RetryPolicy,
    attempt: Callable[[], Awaitable[_Answer]],
    on_retry: Callable[[str], None] | None = None,
) -> _Answer:
    """`attempt()`'s answer, tried again after transient failures only, within the budget;
    `on_retry` is told the failure's reason before every retry.

    A loop of its own rather than tenacity's: most requests succeed at once, and
    tenacity's state and iteration protocol cost a tenth of a millisecond of CPU
    per request (docs/performance.md).
    """
    clock = asyncio.get_running_loop().time
    try:
        # The deadline covers everything: waits for the key's gate, a server that
        # trickles its answer a byte at a time (httpx's timeout is per read), retries.
        async with asyncio.timeout(policy.budget_seconds):
            started = clock()
            for number in itertools.count(1):
                try:
                    return await attempt()
                except DevinAPIError as error:
                    pause = pause_seconds(policy, error, number, clock() - started)
                    if pause is None:
                        raise
                    reason = error.reason
                if on_retry is not None:
                    on_retry(reason)
                await asyncio.sleep(pause)
    except TimeoutError:
        raise DevinAPIError("timeout", detail="deadline of the poll passed") from None
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
