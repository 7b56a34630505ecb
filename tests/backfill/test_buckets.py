"""Bucketed endpoints asked once for the range and cut per step, against a recording fake."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fakes import Item
from pydantic import SecretStr

from exporter.backfill.buckets import BucketCache
from exporter.devin.errors import DevinAPIError
from exporter.devin.models import ActiveUsersSeries, CursorPage, DailyConsumption, OffsetPage
from exporter.devin.table import ENDPOINTS, Call, Endpoint
from exporter.windows import DAY_SECONDS, day_start

KEY = SecretStr("cog_BucketTestKey0123456789abcdef")
DAILY = ENDPOINTS["v3_org_consumption_daily"]
BUCKETS = ENDPOINTS["v3_org_active_user_buckets"]
SESSIONS = ENDPOINTS["v3_org_sessions"]
UNTIL = day_start(1_790_000_000.0) + 5 * 3600  # 13:00 UTC on a billing day


class Recorder:
    """Answers daily consumption with 1 ACU per whole hour of each day inside the range,
    and dau with one bucket per UTC day; records every range asked."""

    def __init__(self, fail: bool = False) -> None:
        self.asked: list[tuple[str, float | None, float | None]] = []
        self.fail = fail

    async def fetch(self, endpoint: Endpoint[Any], key: SecretStr, call: Call) -> Any:
        start, end = endpoint.range_of(call)
        self.asked.append((endpoint.name, start, end))
        await asyncio.sleep(0)
        if self.fail:
            raise DevinAPIError("server_error", status=500)
        assert start is not None
        assert end is not None
        if endpoint is DAILY:
            days = []
            day = day_start(start)
            while day < end:
                hours = (min(day + DAY_SECONDS, end) - max(day, start)) // 3600
                days.append({"date": int(day), "acus": hours})
                day += DAY_SECONDS
            return DailyConsumption.model_validate(
                {"total_acus": sum(d["acus"] for d in days), "consumption_by_date": days}
            )
        if endpoint is BUCKETS:
            first = int(start // DAY_SECONDS * DAY_SECONDS)
            return ActiveUsersSeries.model_validate(
                [
                    {"active_users": d, "start_time": d, "end_time": d + int(DAY_SECONDS) - 1}
                    for d in range(first, int(end), int(DAY_SECONDS))
                ]
            )
        return {"passed": True}

    async def pages(
        self,
        endpoint: Endpoint[CursorPage[Item]] | Endpoint[OffsetPage[Item]],
        key: SecretStr,
        *,
        page_size: int = 100,
        call: Call | None = None,
    ) -> list[Item]:
        raise NotImplementedError(endpoint.name)


async def test_the_first_request_is_widened_to_the_end_of_the_range_and_asked_once() -> None:
    api = Recorder()
    cache = BucketCache(api, UNTIL)
    first = day_start(UNTIL) - 10 * DAY_SECONDS
    for back in (9, 8, 7):  # three steps, a day apart, each asking 3 days back
        t = day_start(UNTIL) - back * DAY_SECONDS
        answer = await cache.fetch(DAILY, KEY, DAILY.call("org-a", t - 3 * DAY_SECONDS, t))
        assert [24, 24, 24] == [d.acus for d in answer.consumption_by_date]
    assert [("v3_org_consumption_daily", first - 2 * DAY_SECONDS, UNTIL)] == api.asked[:1]
    assert 1 == len(api.asked)  # each step fell on a billing-day boundary


async def test_a_step_inside_a_billing_day_asks_for_the_day_so_far() -> None:
    api = Recorder()
    cache = BucketCache(api, UNTIL)
    t = day_start(UNTIL) - 2 * DAY_SECONDS + 5 * 3600
    answer = await cache.fetch(DAILY, KEY, DAILY.call("org-a", day_start(t) - DAY_SECONDS, t))
    assert [24, 5] == [d.acus for d in answer.consumption_by_date]
    assert 29 == answer.total_acus
    assert ("v3_org_consumption_daily", day_start(t), t) == api.asked[-1]


async def test_periods_keep_the_buckets_that_ended_inside_the_step() -> None:
    api = Recorder()
    cache = BucketCache(api, UNTIL)
    t = UNTIL - 2 * DAY_SECONDS
    call = BUCKETS.call("org-a", t - 3 * DAY_SECONDS, t, period="dau")
    answer = await cache.fetch(BUCKETS, KEY, call)
    assert all(b.end_time is not None and b.end_time < t for b in answer.root)
    assert answer.root[-1].end_time == (t // DAY_SECONDS) * DAY_SECONDS - 1


async def test_concurrent_steps_share_one_range_request() -> None:
    api = Recorder()
    cache = BucketCache(api, UNTIL)
    starts = [day_start(UNTIL) - n * DAY_SECONDS for n in (5, 4, 3)]
    await asyncio.gather(
        *(cache.fetch(DAILY, KEY, DAILY.call("org-a", s - DAY_SECONDS, s)) for s in starts)
    )
    assert 1 == len(api.asked)


async def test_a_failed_range_fails_every_step_and_is_not_asked_again() -> None:
    api = Recorder(fail=True)
    cache = BucketCache(api, UNTIL)
    for n in (3, 2):
        t = day_start(UNTIL) - n * DAY_SECONDS
        with pytest.raises(DevinAPIError, match="server_error"):
            await cache.fetch(DAILY, KEY, DAILY.call("org-a", t - DAY_SECONDS, t))
    assert 1 == len(api.asked)


async def test_rolling_endpoints_pass_straight_through() -> None:
    api = Recorder()
    cache = BucketCache(api, UNTIL)
    call = SESSIONS.call("org-a", UNTIL - 3600, UNTIL)
    assert {"passed": True} == await cache.fetch(SESSIONS, KEY, call)
    assert [("v3_org_sessions", UNTIL - 3600, UNTIL)] == api.asked
