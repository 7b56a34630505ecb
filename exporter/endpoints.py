"""How each Devin endpoint is polled: which request serves which windows.

A rolling endpoint (sessions, PRs, ...) is asked once per window. A bucketed endpoint
(daily consumption, active users per day) is asked once per poll, for the longest window,
and every window is derived from the buckets: its request count grows with organisations,
not with organisations x windows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel

from exporter.client import V2_ENTERPRISE_SESSIONS, V3_ORG_SESSIONS, DevinAPI, DevinAPIError
from exporter.targets import Target
from exporter.windows import Window

Outcome = BaseModel | DevinAPIError
Ask = Callable[[DevinAPI, Target, float, float], Awaitable[BaseModel]]
"""One request: (api, target, start, end) -> the answer for [start, end]."""


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
    """An endpoint the exporter polls, named as its `endpoint` label."""

    name: str
    group: str  # its key under `endpoints:` in the config
    ask: Ask
    bucketed: bool = False

    def requests_per_poll(self, windows: Sequence[Window]) -> int:
        return 1 if self.bucketed else len(windows)

    async def fetch(
        self, api: DevinAPI, target: Target, windows: Sequence[Window], span: Span
    ) -> dict[str, Outcome]:
        """Every window's value, or the error that kept it from us."""
        outcomes = await asyncio.gather(
            *(_outcome(self.ask, api, target, span.start_of(w), span.now) for w in windows)
        )
        return {w.label: o for w, o in zip(windows, outcomes, strict=True)}


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


async def _org_sessions(api: DevinAPI, target: Target, start: float, end: float) -> BaseModel:
    return await api.org_sessions(
        target.org, target.key, time_after=int(start), time_before=int(end)
    )


async def _v2_sessions(api: DevinAPI, target: Target, start: float, end: float) -> BaseModel:
    return await api.enterprise_sessions(
        target.key,
        start=_utc(start),
        end=_utc(end),
        org_ids=[target.org] if target.org else [],
    )


ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint(V3_ORG_SESSIONS, "sessions", _org_sessions),
        Endpoint(V2_ENTERPRISE_SESSIONS, "enterprise_sessions", _v2_sessions),
    )
}
