"""Request economy for bucketed endpoints: ask once for the whole range, answer each step.

Daily consumption, dau/wau/mau and billing cycles answer in buckets, so a backfill asks
each of them once per target for everything its steps need, and every step's request is
answered from that, cut to the step's own range, exactly as Devin would have cut it. The
one exception is the billing day a step falls inside: at that step the daemon saw the day
so far, not the whole day, so that part is asked for at the step (one request per step
that is not on a billing-day boundary). Every other endpoint passes straight through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from pydantic import BaseModel, SecretStr

from exporter.devin.client import DevinAPI
from exporter.devin.models import (
    ActiveUsersSeries,
    CursorPage,
    DailyConsumption,
    OffsetPage,
)
from exporter.devin.ratelimit import key_digest
from exporter.devin.table import RANGE_PARAMS, Call, Endpoint
from exporter.polling.strategies import strategy_of
from exporter.windows import DAY_SECONDS, day_start

_Model = TypeVar("_Model", bound=BaseModel)
_Item = TypeVar("_Item", bound=BaseModel)

_CacheKey = tuple[str, str, tuple[tuple[str, str], ...], str]


class BucketCache:
    """A DevinAPI that answers bucketed endpoints from one request over the whole range.

    The first request of a (endpoint, key, org, period, filters) is widened to end at
    `until`; it starts where that first request starts, which is the earliest any step
    needs as long as the earliest step asks first (steps only move forward). A failed
    range request is remembered: every step that needed it fails with the same error,
    and it is not asked again.
    """

    def __init__(self, api: DevinAPI, until: float) -> None:
        self._api = api
        self._until = until
        self._answers: dict[_CacheKey, asyncio.Future[Any]] = {}

    async def fetch(self, endpoint: Endpoint[_Model], key: SecretStr, call: Call) -> _Model:
        cut = strategy_of(endpoint).backfill
        if cut == "once":  # v2's plain array: one listing for every step
            cycles: _Model = await self._once(
                _key(endpoint, key, call), lambda: self._api.fetch(endpoint, key, call)
            )
            return cycles
        if cut != "range":
            return await self._api.fetch(endpoint, key, call)
        start, end = endpoint.range_of(call)
        if start is None or end is None:
            return await self._api.fetch(endpoint, key, call)
        whole = await self._once(
            _key(endpoint, key, call),
            lambda: self._api.fetch(endpoint, key, endpoint.ranged(call, start, self._until)),
        )
        if isinstance(whole, DailyConsumption):
            return cast(_Model, await self._days(endpoint, key, call, whole, start, end))
        if isinstance(whole, ActiveUsersSeries):
            return cast(_Model, _periods(whole, start, end))
        raise TypeError(f"{endpoint.name}: no bucket cut for {type(whole).__name__}")

    async def pages(
        self,
        endpoint: Endpoint[CursorPage[_Item]] | Endpoint[OffsetPage[_Item]],
        key: SecretStr,
        *,
        page_size: int = 100,
        call: Call | None = None,
    ) -> list[_Item]:
        if strategy_of(endpoint).backfill != "once":
            return await self._api.pages(endpoint, key, page_size=page_size, call=call)
        items: list[_Item] = await self._once(
            _key(endpoint, key, call or Call()),
            lambda: self._api.pages(endpoint, key, page_size=page_size, call=call),
        )
        return items

    async def _once(self, cache_key: _CacheKey, ask: Callable[[], Awaitable[Any]]) -> Any:
        answer = self._answers.get(cache_key)
        if answer is None:
            answer = self._answers[cache_key] = asyncio.ensure_future(ask())
        return await asyncio.shield(answer)

    async def _days(
        self,
        endpoint: Endpoint[Any],
        key: SecretStr,
        call: Call,
        whole: DailyConsumption,
        start: float,
        end: float,
    ) -> DailyConsumption:
        """The days of [start, end): whole days from the range's answer, and the day `end`
        falls inside, as far as `end`, asked for now."""
        current = day_start(end)
        days = [
            d for d in whole.consumption_by_date if start <= d.date and d.date + DAY_SECONDS <= end
        ]
        if current < end and current >= start:
            part = await self._api.fetch(endpoint, key, endpoint.ranged(call, current, end))
            if not isinstance(part, DailyConsumption):
                raise TypeError(f"{endpoint.name}: not daily consumption")
            days += [d for d in part.consumption_by_date if d.date >= current]
        return DailyConsumption(total_acus=sum(d.acus for d in days), consumption_by_date=days)


def _periods(whole: ActiveUsersSeries, start: float, end: float) -> ActiveUsersSeries:
    """The buckets that ended inside [start, end): what a step's own request holds of the
    complete periods, which are all a poll keeps."""
    return ActiveUsersSeries(
        [
            b
            for b in whole.root
            if b.end_time is not None and b.end_time < end and (b.start_time or 0.0) >= start
        ]
    )


def _key(endpoint: Endpoint[Any], key: SecretStr, call: Call) -> _CacheKey:
    rest = {k: v for k, v in call.params.items() if k not in RANGE_PARAMS}
    return (
        endpoint.name,
        key_digest(key),
        tuple(sorted(call.path.items())),
        repr(sorted(rest.items())),
    )
