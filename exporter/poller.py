"""Polls every target over every window in the background and keeps the latest good values."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import SecretStr

from exporter.client import V2_ENTERPRISE_SESSIONS, V3_ORG_SESSIONS, DevinAPI, DevinAPIError
from exporter.config import Settings, Window
from exporter.instruments import Instruments
from exporter.models import EnterpriseSessions, SessionMetrics

Clock = Callable[[], float]
Value = SessionMetrics | EnterpriseSessions

log = structlog.get_logger("exporter.poller")


@dataclass(frozen=True, order=True)
class Target:
    """What one scheduled job polls: an endpoint for one org ("" for enterprise-wide)."""

    endpoint: str
    org: str
    key: SecretStr = field(compare=False, repr=False)

    @property
    def job_id(self) -> str:
        return f"{self.endpoint}/{self.org or '-'}"


@dataclass(frozen=True)
class Sample:
    """A value Devin returned for one (target, window), and when."""

    value: Value
    fetched_at: float


@dataclass
class WindowState:
    """What the status page and devin_up know of one (target, window)."""

    last_success: float | None = None
    last_error: str | None = None  # reason of the latest poll, None if it succeeded
    last_attempt: float | None = None


def build_targets(settings: Settings) -> list[Target]:
    """One v3 target per org; with an enterprise key, v2 targets for the enterprise and each org."""
    targets = [Target(V3_ORG_SESSIONS, o.id, settings.key_for(o)) for o in settings.organizations]
    enterprise_key = settings.devin.enterprise_key
    if enterprise_key is not None:
        targets.append(Target(V2_ENTERPRISE_SESSIONS, "", enterprise_key))
        targets += [
            Target(V2_ENTERPRISE_SESSIONS, o.id, enterprise_key) for o in settings.organizations
        ]
    return targets


class Poller:
    """Owns the snapshot: `samples` and `states`, replaced entry by entry as polls finish."""

    def __init__(
        self,
        api: DevinAPI,
        targets: list[Target],
        windows: list[Window],
        instruments: Instruments,
        *,
        clock: Clock = time.time,
    ) -> None:
        self._api = api
        self.targets = targets
        self.windows = windows
        self._instruments = instruments
        self._clock = clock
        self.samples: dict[tuple[Target, str], Sample] = {}
        self.states: dict[tuple[Target, str], WindowState] = {
            (t, w.label): WindowState() for t in targets for w in windows
        }
        self._polled: set[Target] = set()
        self._scheduler: AsyncIOScheduler | None = None
        instruments.start_at_zero((t.endpoint, t.org) for t in targets)

    @property
    def ready(self) -> bool:
        """True once every target has finished its first poll, whatever its outcome."""
        return len(self._polled) == len(self.targets)

    def up(self, target: Target) -> bool:
        """Whether the latest poll of every window of the target succeeded."""
        return all(
            self.states[target, w.label].last_success is not None
            and self.states[target, w.label].last_error is None
            for w in self.windows
        )

    def next_poll(self, target: Target) -> datetime | None:
        if self._scheduler is None:
            return None
        job = self._scheduler.get_job(target.job_id)
        return job.next_run_time if job is not None else None

    async def poll_all(self) -> None:
        """One cycle of every target, concurrently (the client caps requests in flight)."""
        await asyncio.gather(*(self.poll_target(t) for t in self.targets))

    async def poll_target(self, target: Target) -> None:
        """Fetch every window of one target and record each outcome."""
        started = time.perf_counter()
        now = self._clock()
        await asyncio.gather(*(self._poll_window(target, w, now) for w in self.windows))
        self._instruments.poll_duration.labels(target.endpoint).observe(
            time.perf_counter() - started
        )
        self._polled.add(target)

    async def _poll_window(self, target: Target, window: Window, now: float) -> None:
        state = self.states[target, window.label]
        state.last_attempt = now
        try:
            value = await self._fetch(target, window, now)
        except DevinAPIError as err:
            state.last_error = err.reason
            self._instruments.poll_errors.labels(target.endpoint, target.org, err.reason).inc()
            log.warning(
                "poll_failed",
                endpoint=target.endpoint,
                org=target.org,
                window=window.label,
                reason=err.reason,
                status=err.status,
                detail=err.detail or None,
            )
            return
        self.samples[target, window.label] = Sample(value, now)
        state.last_success = now
        state.last_error = None

    async def _fetch(self, target: Target, window: Window, now: float) -> Value:
        if target.endpoint == V3_ORG_SESSIONS:
            return await self._api.org_sessions(
                target.org,
                target.key,
                time_after=int(now - window.seconds),
                time_before=int(now),
            )
        return await self._api.enterprise_sessions(
            target.key,
            start=datetime.fromtimestamp(now - window.seconds, UTC),
            end=datetime.fromtimestamp(now, UTC),
            org_ids=[target.org] if target.org else [],
        )

    def schedule(self, scheduler: AsyncIOScheduler, interval_seconds: float) -> None:
        """One job per target: now, then every interval with jitter, never overlapping."""
        self._scheduler = scheduler
        jitter = min(interval_seconds * 0.1, 30.0)
        for target in self.targets:
            scheduler.add_job(
                self.poll_target,
                IntervalTrigger(seconds=interval_seconds, jitter=jitter),
                args=[target],
                id=target.job_id,
                name=target.job_id,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=datetime.now(UTC),
            )


def fresh_samples(
    samples: Mapping[tuple[Target, str], Sample], now: float, stale_after: float
) -> dict[tuple[Target, str], Sample]:
    """The samples young enough to serve; older ones vanish from /metrics."""
    return {k: s for k, s in samples.items() if now - s.fetched_at <= stale_after}
