"""How an endpoint is polled, by the shape its table row declares.

A `window` endpoint (sessions, PRs, searches, active users, usage) is asked once per
window. Bucketed endpoints are asked once per poll and every value is derived from the
buckets, so their request count grows with organisations, not organisations x windows:
daily consumption (one request from the earliest day needed), and active users per day,
week and month (the last complete bucket of each). Billing cycles, ACU limits and the
organisations' listing are one listing each. The session list (`live`) is one listing per
poll, from where the previous one left off. Per-user consumption (`users`) is one request
per consumption window: Devin sums each user over the range it is asked, so no request
can serve two windows.

A `cycle` window is asked only while the billing cycle is known (Devin's, or the configured
billing day): otherwise it gets no outcome at all, and nothing is exported under it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, cast

from pydantic import BaseModel

from exporter.devin.client import DevinAPI
from exporter.devin.errors import DevinAPIError
from exporter.devin.models import (
    ActiveUsers,
    ActiveUsersSeries,
    AcuLimit,
    BillingCycle,
    CursorPage,
    DailyConsumption,
    OrganizationSummary,
    SessionItem,
)
from exporter.devin.table import ACTIVE_USER_PERIODS, Call, Endpoint, Shape
from exporter.polling.attribution import Attribution, top_users
from exporter.polling.live import SessionSync
from exporter.polling.targets import Target
from exporter.windows import DAY_SECONDS, Window, day_start

Outcome = BaseModel | DevinAPIError


@dataclass(frozen=True)
class Span:
    """When a poll happens, where the billing cycle began (for the `cycle` window), for
    the session list what the target's earlier polls saw (None: a first poll), and how
    per-user ACUs are bounded and labelled."""

    now: float
    cycle_start: float | None = None
    sessions: SessionSync | None = None
    attribution: Attribution = field(default_factory=Attribution)

    def start_of(self, window: Window) -> float:
        return window.start(self.now, self.cycle_start)

    def known(self, windows: Sequence[Window]) -> list[Window]:
        """The windows whose start is known: `cycle` only while the billing cycle is."""
        return [w for w in windows if w.label != "cycle" or self.cycle_start is not None]


async def _outcome(
    api: DevinAPI, row: Endpoint[Any], target: Target, start: float, end: float, **path: str
) -> Outcome:
    # The request is created here, not by the caller: a poll cancelled before this runs
    # then leaves no coroutine behind that was never awaited.
    try:
        call = row.call(target.org, start, end, target.filters, **path)
        answer: BaseModel = await api.fetch(row, target.key, call)
    except DevinAPIError as err:
        return err
    return answer


BackfillCut = Literal["each", "once", "range"]
"""How a backfill answers its steps: a request per step (`each`), one listing for every step
(`once`), or one request over the whole range cut to each step (`range`)."""


class Strategy:
    """What one shape of endpoint does in a poll, and everything else that depends on the
    shape: what the state file keeps of it, what a backfill asks of it, and its order."""

    # Read by every replica, whatever its shard: the billing cycle and the ACU limits.
    billing: ClassVar[bool] = False
    # Polled before the others: the billing cycle, where every `cycle` window starts.
    first: ClassVar[bool] = False
    # Keeps what earlier polls saw (a SessionSync): the session list.
    live: ClassVar[bool] = False
    # Ranked and labelled by the `attribution` settings: per-user consumption.
    attributed: ClassVar[bool] = False
    # Asked by a backfill, and how; None: it has no past to ask for.
    backfill: ClassVar[BackfillCut | None] = None

    def windows(self, configured: Sequence[Window]) -> list[Window]:
        """The windows (or buckets) the samples are kept under."""
        raise NotImplementedError

    def requests_per_poll(self, configured: Sequence[Window]) -> int:
        raise NotImplementedError

    async def fetch(
        self, api: DevinAPI, target: Target, windows: Sequence[Window], span: Span
    ) -> dict[str, Outcome]:
        """Every window's value, or the error that kept it from us."""
        raise NotImplementedError

    def value_type(self, row: Endpoint[Any]) -> type[BaseModel] | None:
        """What a sample holds, as the state file keeps it; None: not kept."""
        return None

    def backfill_requests(self, configured: Sequence[Window], times: Sequence[int]) -> int:
        """The requests a backfill over these steps sends (with `backfill` set)."""
        return 1 if times else 0


class Rolling(Strategy):
    """One request per window, over [now - window, now]."""

    backfill = "each"

    def windows(self, configured: Sequence[Window]) -> list[Window]:
        return list(configured)

    def requests_per_poll(self, configured: Sequence[Window]) -> int:
        return len(configured)

    async def fetch(
        self, api: DevinAPI, target: Target, windows: Sequence[Window], span: Span
    ) -> dict[str, Outcome]:
        known = span.known(windows)
        outcomes = await asyncio.gather(
            *(_outcome(api, target.row, target, span.start_of(w), span.now) for w in known)
        )
        return {w.label: o for w, o in zip(known, outcomes, strict=True)}

    def value_type(self, row: Endpoint[Any]) -> type[BaseModel] | None:
        return row.model

    def backfill_requests(self, configured: Sequence[Window], times: Sequence[int]) -> int:
        return len(times) * self.requests_per_poll(configured)


class ConsumedAcus(BaseModel):
    """ACUs consumed over one window, by product, summed from daily buckets."""

    by_product: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.by_product.values())


CYCLE = Window(31 * DAY_SECONDS, "cycle")


def consumption_window(window: Window) -> bool:
    """Whether consumption is exported under `window`: `today`, `cycle`, or whole days."""
    return window.calendar or (window.seconds >= DAY_SECONDS and window.seconds % DAY_SECONDS == 0)


def billing_days_of(window: Window, span: Span) -> tuple[float, float]:
    """[first, end) of the billing days a consumption window sums, as day starts.

    `today` is the current billing day so far, `cycle` the billing cycle so far; a
    rolling window of N whole days is the N complete billing days before the current one,
    so it ends at the last 08:00 UTC and changes once a day, never dropping to zero.
    """
    today = day_start(span.now)
    if window.calendar:
        return day_start(span.start_of(window)), float("inf")
    return today - window.seconds, today


class DailyBuckets(Strategy):
    """Daily consumption: one request per poll, from the first billing day any window
    needs; `cycle` is always there (for devin_billing_cycle_acus_consumed)."""

    backfill = "range"

    def windows(self, configured: Sequence[Window]) -> list[Window]:
        kept = [w for w in configured if consumption_window(w)]
        return kept if any(w.label == "cycle" for w in kept) else [*kept, CYCLE]

    def requests_per_poll(self, configured: Sequence[Window]) -> int:
        return 1

    async def fetch(
        self, api: DevinAPI, target: Target, windows: Sequence[Window], span: Span
    ) -> dict[str, Outcome]:
        bounds = {w.label: billing_days_of(w, span) for w in span.known(windows)}
        first_day = min(first for first, _ in bounds.values())
        answer = await _outcome(api, target.row, target, first_day, span.now)
        if not isinstance(answer, DailyConsumption):
            return dict.fromkeys(bounds, answer)
        rest = target.row.org_product if target.org else None
        return {label: consumed(answer, *days, rest) for label, days in bounds.items()}

    def value_type(self, row: Endpoint[Any]) -> type[BaseModel] | None:
        return ConsumedAcus

    def backfill_requests(self, configured: Sequence[Window], times: Sequence[int]) -> int:
        """One for the whole range, and the day so far at each step inside a billing day."""
        return (1 + sum(1 for t in times if day_start(t) != t)) if times else 0


def consumed(
    answer: DailyConsumption, first: float, end: float, rest_product: str | None = None
) -> ConsumedAcus:
    """The ACUs of the billing days starting in [first, end), by product; what a day's
    products do not account for (v2 has no product split) is `rest_product`, else
    `unattributed`."""
    totals: dict[str, float] = {}
    for day in answer.consumption_by_date:
        if not first <= day.date < end:
            continue
        products = dict(day.acus_by_product or {})
        rest = day.acus - sum(products.values())
        if rest > 1e-9:
            key = rest_product or "unattributed"
            products[key] = products.get(key, 0.0) + rest
        for product, acus in products.items():
            totals[product] = totals.get(product, 0.0) + acus
    return ConsumedAcus(by_product=totals)


class UserWindows(Strategy):
    """Per-user ACUs, enterprise-wide: one request per consumption window (the windows of
    daily consumption), over exactly the billing days devin_acus_consumed sums for it.
    Not kept in the state file nor backfilled: user labels are the daemon's alone to give."""

    attributed = True

    def windows(self, configured: Sequence[Window]) -> list[Window]:
        return DailyBuckets().windows(configured)

    def requests_per_poll(self, configured: Sequence[Window]) -> int:
        return len(self.windows(configured))

    async def fetch(
        self, api: DevinAPI, target: Target, windows: Sequence[Window], span: Span
    ) -> dict[str, Outcome]:
        async def one(window: Window) -> Outcome:
            first, end = billing_days_of(window, span)
            answer = await _outcome(api, target.row, target, first, min(end, span.now))
            if not isinstance(answer, DailyConsumption):
                return answer
            if answer.consumption_by_user is None:
                return DevinAPIError(
                    "invalid_response", status=200, detail="no consumption_by_user"
                )
            return top_users(answer.consumption_by_user, answer.total_acus, span.attribution)

        outcomes = await asyncio.gather(*(one(w) for w in windows))
        return {w.label: o for w, o in zip(windows, outcomes, strict=True)}


class LatestActiveUsers(BaseModel):
    """Active users in the last complete day, week or month."""

    active_users: int
    start_time: float | None
    end_time: float | None


# Bucket label -> (period path parameter, how far back to ask for its last complete one).
PERIODS: dict[str, tuple[str, float]] = {
    "day": ("dau", 3 * DAY_SECONDS),
    "week": ("wau", 15 * DAY_SECONDS),
    "month": ("mau", 63 * DAY_SECONDS),
}
assert {p for p, _ in PERIODS.values()} == set(ACTIVE_USER_PERIODS)


class PeriodBuckets(Strategy):
    """dau/wau/mau: per period, the buckets of the last few periods; the last complete one
    is kept under the period's name (`day`, `week`, `month`), whatever the windows."""

    backfill = "range"

    def windows(self, configured: Sequence[Window]) -> list[Window]:
        return [Window(back, name) for name, (_, back) in PERIODS.items()]

    def requests_per_poll(self, configured: Sequence[Window]) -> int:
        return len(PERIODS)

    async def fetch(
        self, api: DevinAPI, target: Target, windows: Sequence[Window], span: Span
    ) -> dict[str, Outcome]:
        async def latest(period: str, back: float) -> Outcome:
            answer = await _outcome(
                api, target.row, target, span.now - back, span.now, period=period
            )
            if not isinstance(answer, ActiveUsersSeries):
                return answer
            return last_complete(answer.root, span.now)

        names = [w.label for w in windows]
        outcomes = await asyncio.gather(*(latest(*PERIODS[n]) for n in names))
        return dict(zip(names, outcomes, strict=True))

    def value_type(self, row: Endpoint[Any]) -> type[BaseModel] | None:
        return LatestActiveUsers

    def backfill_requests(self, configured: Sequence[Window], times: Sequence[int]) -> int:
        return len(PERIODS) if times else 0


def last_complete(buckets: Sequence[ActiveUsers], now: float) -> Outcome:
    """The latest bucket that ended by `now` (`end_time` is inclusive: `...:59:59`)."""
    complete = [b for b in buckets if b.end_time is not None and b.end_time < now]
    if not complete:
        return DevinAPIError("invalid_response", status=200, detail="no complete bucket")
    last = max(complete, key=lambda b: b.end_time or 0.0)
    return LatestActiveUsers(
        active_users=last.active_users, start_time=last.start_time, end_time=last.end_time
    )


CURRENT = Window(31 * DAY_SECONDS, "current")


class Cycles(Strategy):
    """The enterprise's billing cycles (every page); the current one is kept as `current`.
    Polled first: the `cycle` windows of every other target start where it does."""

    billing = True
    first = True
    backfill = "once"

    def windows(self, configured: Sequence[Window]) -> list[Window]:
        return [CURRENT]

    def requests_per_poll(self, configured: Sequence[Window]) -> int:
        return 1

    async def fetch(
        self, api: DevinAPI, target: Target, windows: Sequence[Window], span: Span
    ) -> dict[str, Outcome]:
        row = target.row
        try:
            if row.pagination == "none":  # v2: one plain array
                cycles: list[BillingCycle] = (await api.fetch(row, target.key, row.call())).root
            else:
                cycles = await api.pages(row, target.key)
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

    def value_type(self, row: Endpoint[Any]) -> type[BaseModel] | None:
        return BillingCycle


class AcuLimits(BaseModel):
    """Every Devin ACU limit of the enterprise (items of every page)."""

    items: list[AcuLimit]


class OrgLimits(BaseModel):
    """The ACU limits of each listed organisation: per cycle and per session (None: none)."""

    cycle: dict[str, float | None]
    session: dict[str, float | None]


LIMITS = Window(0.0, "limits")


class Listing(Strategy):
    """A list read page by page, once per poll, kept as one value under `limits`. Not
    backfilled: today's limits say nothing of the limits of the past."""

    billing = True

    def windows(self, configured: Sequence[Window]) -> list[Window]:
        return [LIMITS]

    def requests_per_poll(self, configured: Sequence[Window]) -> int:
        return 1

    async def fetch(
        self, api: DevinAPI, target: Target, windows: Sequence[Window], span: Span
    ) -> dict[str, Outcome]:
        try:
            items = await api.pages(target.row, target.key)
        except DevinAPIError as err:
            return {LIMITS.label: err}
        return {LIMITS.label: self.value(items)}

    def value(self, items: list[Any]) -> BaseModel:
        raise NotImplementedError


class LimitListing(Listing):
    """The enterprise's ACU limits."""

    def value(self, items: list[Any]) -> BaseModel:
        return AcuLimits(items=items)

    def value_type(self, row: Endpoint[Any]) -> type[BaseModel] | None:
        return AcuLimits


class OrgListing(Listing):
    """The organisations' listing, for their limits per cycle and per session."""

    def value(self, items: list[Any]) -> BaseModel:
        orgs = cast(list[OrganizationSummary], items)
        return OrgLimits(
            cycle={o.org_id: o.max_cycle_acu_limit for o in orgs},
            session={o.org_id: o.max_session_acu_limit for o in orgs},
        )

    def value_type(self, row: Endpoint[Any]) -> type[BaseModel] | None:
        return OrgLimits


LIVE = Window(0.0, "live")
# Sessions per page of the list: the most the contract allows, for the fewest requests.
SESSION_PAGE_SIZE = 200


class LiveList(Strategy):
    """The session list: one listing per poll (every page counts as one request in the
    plan), updated since the previous poll, folded into the target's `SessionSync`. Not
    kept in the state file as samples, nor backfilled: live state has no past to ask for."""

    live = True

    def windows(self, configured: Sequence[Window]) -> list[Window]:
        return [LIVE]

    def requests_per_poll(self, configured: Sequence[Window]) -> int:
        return 1

    async def fetch(
        self, api: DevinAPI, target: Target, windows: Sequence[Window], span: Span
    ) -> dict[str, Outcome]:
        sync = span.sessions if span.sessions is not None else SessionSync()
        row = cast(Endpoint[CursorPage[SessionItem]], target.row)
        try:
            org = row.call(target.org)
            call = Call(org.path, {**org.params, "updated_after": sync.updated_after(span.now)})
            items = await api.pages(row, target.key, page_size=SESSION_PAGE_SIZE, call=call)
        except DevinAPIError as err:
            return {LIVE.label: err}
        return {LIVE.label: sync.apply(items, span.now)}


STRATEGIES: dict[Shape, Strategy] = {
    "window": Rolling(),
    "daily": DailyBuckets(),
    "periods": PeriodBuckets(),
    "cycles": Cycles(),
    "limits": LimitListing(),
    "list": OrgListing(),
    "live": LiveList(),
    "users": UserWindows(),
}


def strategy_of(row: Endpoint[Any]) -> Strategy:
    """How `row` is polled, by its shape."""
    return STRATEGIES[row.shape]
