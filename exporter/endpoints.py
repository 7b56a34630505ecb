"""How each Devin endpoint is polled: which requests serve which windows.

A rolling endpoint (sessions, PRs, searches, active users) is asked once per window. A
bucketed endpoint is asked once per poll and every window is derived from its buckets,
so its request count grows with organisations, not with organisations x windows:
daily consumption (one request from the earliest window start; each window sums its
billing days), and active users per day, week and month (the last complete bucket).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel

from exporter import client as c
from exporter.client import DevinAPI, DevinAPIError
from exporter.models import ActiveUsers, DailyConsumption
from exporter.targets import Target
from exporter.windows import Window, day_start

Outcome = BaseModel | DevinAPIError
Ask = Callable[[DevinAPI, Target, float, float], Awaitable[BaseModel]]
"""One request: (api, target, start, end) -> the answer for [start, end]."""

_DAY = 86400.0


@dataclass(frozen=True)
class Span:
    """When a poll happens, and where the billing cycle began (for the `cycle` window)."""

    now: float
    cycle_start: float | None = None

    def start_of(self, window: Window) -> float:
        return window.start(self.now, self.cycle_start)


async def _outcome(ask: Ask, api: DevinAPI, target: Target, start: float, end: float) -> Outcome:
    # The request is created here, not by the caller: a poll cancelled before this runs
    # then leaves no coroutine behind that was never awaited.
    try:
        return await ask(api, target, start, end)
    except DevinAPIError as err:
        return err


@dataclass(frozen=True)
class Endpoint:
    """A rolling endpoint, named as its `endpoint` label: one request per window."""

    name: str
    group: str  # its key under `endpoints:` in the config
    ask: Ask

    def windows(self, configured: Sequence[Window]) -> list[Window]:
        """The windows (or buckets) this endpoint's samples are kept under."""
        return list(configured)

    def requests_per_poll(self, configured: Sequence[Window]) -> int:
        return len(self.windows(configured))

    async def fetch(
        self, api: DevinAPI, target: Target, windows: Sequence[Window], span: Span
    ) -> dict[str, Outcome]:
        """Every window's value, or the error that kept it from us."""
        outcomes = await asyncio.gather(
            *(_outcome(self.ask, api, target, span.start_of(w), span.now) for w in windows)
        )
        return {w.label: o for w, o in zip(windows, outcomes, strict=True)}


class ConsumedAcus(BaseModel):
    """ACUs consumed over one window, by product, derived from daily buckets."""

    by_product: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.by_product.values())


CYCLE = Window(31 * _DAY, "cycle")


@dataclass(frozen=True)
class DailyConsumptionEndpoint(Endpoint):
    """Daily consumption: one request per poll; each window sums the billing days that
    start inside it (`today` and `cycle` begin on a day's start, so they are exact), so
    windows shorter than a day are left out and `cycle` is always there (for
    devin_billing_cycle_acus_consumed)."""

    def windows(self, configured: Sequence[Window]) -> list[Window]:
        kept = [w for w in configured if w.calendar or w.seconds >= _DAY]
        return kept if any(w.label == "cycle" for w in kept) else [*kept, CYCLE]

    def requests_per_poll(self, configured: Sequence[Window]) -> int:
        return 1

    async def fetch(
        self, api: DevinAPI, target: Target, windows: Sequence[Window], span: Span
    ) -> dict[str, Outcome]:
        starts = {w.label: span.start_of(w) for w in windows}
        first_day = day_start(min(starts.values()))
        answer = await _outcome(self.ask, api, target, first_day, span.now)
        if not isinstance(answer, DailyConsumption):
            return dict.fromkeys(starts, answer)
        return {label: _consumed_since(answer, start) for label, start in starts.items()}


def _consumed_since(answer: DailyConsumption, start: float) -> ConsumedAcus:
    totals: dict[str, float] = {}
    for day in answer.consumption_by_date:
        if day.date < start:
            continue
        products = dict(day.acus_by_product or {})
        rest = day.acus - sum(products.values())
        if rest > 1e-9:
            products["unattributed"] = rest
        for product, acus in products.items():
            totals[product] = totals.get(product, 0.0) + acus
    return ConsumedAcus(by_product=totals)


class LatestActiveUsers(BaseModel):
    """Active users in the last complete day, week or month."""

    active_users: int
    start_time: float | None
    end_time: float | None


_PERIODS: dict[str, tuple[c.ActiveUserPeriod, float]] = {
    "day": ("dau", 3 * _DAY),
    "week": ("wau", 15 * _DAY),
    "month": ("mau", 63 * _DAY),
}


@dataclass(frozen=True)
class ActiveUserBucketsEndpoint(Endpoint):
    """dau/wau/mau: per period, the buckets of the last few periods; the last complete one
    is kept under the period's name (`day`, `week`, `month`), whatever the windows."""

    ask: Ask = field(default=lambda *_: _never())  # fetch does its own requests

    def windows(self, configured: Sequence[Window]) -> list[Window]:
        return [Window(span, name) for name, (_, span) in _PERIODS.items()]

    async def fetch(
        self, api: DevinAPI, target: Target, windows: Sequence[Window], span: Span
    ) -> dict[str, Outcome]:
        async def latest(period: c.ActiveUserPeriod, back: float) -> Outcome:
            try:
                buckets = await api.org_active_user_buckets(
                    target.org,
                    target.key,
                    period,
                    time_after=int(span.now - back),
                    time_before=int(span.now),
                )
            except DevinAPIError as err:
                return err
            return _last_complete(buckets, span.now)

        names = [w.label for w in windows]
        outcomes = await asyncio.gather(*(latest(*_PERIODS[n]) for n in names))
        return dict(zip(names, outcomes, strict=True))


def _last_complete(buckets: list[ActiveUsers], now: float) -> Outcome:
    complete = [b for b in buckets if b.end_time is not None and b.end_time <= now]
    if not complete:
        return DevinAPIError("invalid_response", status=200, detail="no complete bucket")
    last = max(complete, key=lambda b: b.end_time or 0.0)
    return LatestActiveUsers(
        active_users=last.active_users, start_time=last.start_time, end_time=last.end_time
    )


async def _never() -> BaseModel:
    raise AssertionError("not called")  # pragma: no cover


CURRENT = Window(31 * _DAY, "current")


@dataclass(frozen=True)
class BillingCyclesEndpoint(Endpoint):
    """The enterprise's billing cycles (every page); the current one is kept as `current`."""

    ask: Ask = field(default=lambda *_: _never())

    def windows(self, configured: Sequence[Window]) -> list[Window]:
        return [CURRENT]

    async def fetch(
        self, api: DevinAPI, target: Target, windows: Sequence[Window], span: Span
    ) -> dict[str, Outcome]:
        try:
            cycles = await api.enterprise_consumption_cycles(target.key)
        except DevinAPIError as err:
            return {CURRENT.label: err}
        current = [cycle for cycle in cycles if cycle.start <= span.now < cycle.end]
        if not current:
            return {
                CURRENT.label: DevinAPIError(
                    "invalid_response", status=200, detail="no cycle contains now"
                )
            }
        return {CURRENT.label: max(current, key=lambda cycle: cycle.start)}


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _org_ids(target: Target) -> list[str]:
    return [target.org] if target.org else []


# Organization endpoints (a service user key with the org-level permission).


async def _org_sessions(api: DevinAPI, t: Target, start: float, end: float) -> BaseModel:
    return await api.org_sessions(
        t.org, t.key, time_after=int(start), time_before=int(end), filters=dict(t.filters) or None
    )


async def _org_prs(api: DevinAPI, t: Target, start: float, end: float) -> BaseModel:
    return await api.org_prs(t.org, t.key, time_after=int(start), time_before=int(end))


async def _org_searches(api: DevinAPI, t: Target, start: float, end: float) -> BaseModel:
    return await api.org_searches(t.org, t.key, time_after=int(start), time_before=int(end))


async def _org_active(api: DevinAPI, t: Target, start: float, end: float) -> BaseModel:
    return await api.org_active_users(t.org, t.key, time_after=int(start), time_before=int(end))


async def _org_consumption(api: DevinAPI, t: Target, start: float, end: float) -> BaseModel:
    return await api.org_consumption_daily(
        t.org, t.key, time_after=int(start), time_before=int(end)
    )


# Enterprise endpoints (a service user with account-level permissions), per org or all.


async def _ent_sessions(api: DevinAPI, t: Target, start: float, end: float) -> BaseModel:
    return await api.enterprise_metric_sessions(
        t.key, time_after=int(start), time_before=int(end), org_ids=_org_ids(t)
    )


async def _ent_prs(api: DevinAPI, t: Target, start: float, end: float) -> BaseModel:
    return await api.enterprise_prs(
        t.key, time_after=int(start), time_before=int(end), org_ids=_org_ids(t)
    )


async def _ent_searches(api: DevinAPI, t: Target, start: float, end: float) -> BaseModel:
    return await api.enterprise_searches(
        t.key, time_after=int(start), time_before=int(end), org_ids=_org_ids(t)
    )


async def _ent_active(api: DevinAPI, t: Target, start: float, end: float) -> BaseModel:
    return await api.enterprise_active_users(
        t.key, time_after=int(start), time_before=int(end), org_ids=_org_ids(t)
    )


async def _ent_consumption(api: DevinAPI, t: Target, start: float, end: float) -> BaseModel:
    return await api.enterprise_consumption_daily(
        t.key, time_after=int(start), time_before=int(end), org_ids=_org_ids(t)
    )


async def _ent_categories(api: DevinAPI, t: Target, start: float, end: float) -> BaseModel:
    return await api.enterprise_sessions_by_category(
        t.key, time_after=int(start), time_before=int(end), org_ids=_org_ids(t)
    )


# v2 (an enterprise admin's personal key), for organizations no v3 key can see.


class V2PullRequests(BaseModel):
    """v2's PR counts: `opened` there means opened in the period (v3's created)."""

    created: int
    closed: int
    merged: int


async def _v2_prs(api: DevinAPI, t: Target, start: float, end: float) -> BaseModel:
    answer = await api.v2_enterprise_prs(
        t.key, start=_utc(start), end=_utc(end), org_ids=_org_ids(t)
    )
    return V2PullRequests(
        created=answer.prs_opened_count,
        closed=answer.prs_closed_count,
        merged=answer.prs_merged_count,
    )


async def _v2_consumption(api: DevinAPI, t: Target, start: float, end: float) -> BaseModel:
    return await api.v2_consumption_daily(
        t.key, start=_utc(start), end=_utc(end), org_ids=_org_ids(t)
    )


async def _v2_sessions(api: DevinAPI, t: Target, start: float, end: float) -> BaseModel:
    return await api.enterprise_sessions(
        t.key, start=_utc(start), end=_utc(end), org_ids=_org_ids(t)
    )


ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint(c.V3_ORG_SESSIONS, "sessions", _org_sessions),
        Endpoint(c.V3_ORG_PRS, "prs", _org_prs),
        Endpoint(c.V3_ORG_SEARCHES, "searches", _org_searches),
        Endpoint(c.V3_ORG_ACTIVE_USERS, "active_users", _org_active),
        ActiveUserBucketsEndpoint(c.V3_ORG_ACTIVE_USER_BUCKETS, "active_user_buckets"),
        DailyConsumptionEndpoint(c.V3_ORG_CONSUMPTION_DAILY, "consumption", _org_consumption),
        Endpoint(c.V3_ENTERPRISE_SESSIONS, "sessions", _ent_sessions),
        Endpoint(c.V3_ENTERPRISE_PRS, "prs", _ent_prs),
        Endpoint(c.V3_ENTERPRISE_SEARCHES, "searches", _ent_searches),
        Endpoint(c.V3_ENTERPRISE_ACTIVE_USERS, "active_users", _ent_active),
        DailyConsumptionEndpoint(
            c.V3_ENTERPRISE_CONSUMPTION_DAILY, "consumption", _ent_consumption
        ),
        Endpoint(c.V3_ENTERPRISE_SESSIONS_BY_CATEGORY, "sessions_by_category", _ent_categories),
        BillingCyclesEndpoint(c.V3_ENTERPRISE_CONSUMPTION_CYCLES, "billing_cycles"),
        Endpoint(c.V2_ENTERPRISE_SESSIONS, "enterprise_sessions", _v2_sessions),
        Endpoint(c.V2_ENTERPRISE_PRS, "prs", _v2_prs),
        DailyConsumptionEndpoint(c.V2_ENTERPRISE_CONSUMPTION_DAILY, "consumption", _v2_consumption),
    )
}

# Org-level endpoint -> its v2 twin, for organizations with no v3 key at all when an
# enterprise admin key is set (v2 has no searches, active users or dau/wau/mau).
V2_TWIN = {
    c.V3_ORG_PRS: c.V2_ENTERPRISE_PRS,
    c.V3_ORG_CONSUMPTION_DAILY: c.V2_ENTERPRISE_CONSUMPTION_DAILY,
}

# Org-level endpoint -> its enterprise twin, used for organizations without a key of their
# own when an enterprise service user key is set (enterprise mode).
ENTERPRISE_TWIN = {
    c.V3_ORG_SESSIONS: c.V3_ENTERPRISE_SESSIONS,
    c.V3_ORG_PRS: c.V3_ENTERPRISE_PRS,
    c.V3_ORG_SEARCHES: c.V3_ENTERPRISE_SEARCHES,
    c.V3_ORG_ACTIVE_USERS: c.V3_ENTERPRISE_ACTIVE_USERS,
    c.V3_ORG_CONSUMPTION_DAILY: c.V3_ENTERPRISE_CONSUMPTION_DAILY,
}
