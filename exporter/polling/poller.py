"""Polls every target over every window in the background and keeps the latest good values."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from exporter.devin.client import DevinAPI
from exporter.devin.errors import DevinAPIError
from exporter.devin.models import BillingCycle
from exporter.devin.ratelimit import key_digest
from exporter.metrics.instruments import Instruments
from exporter.polling.admission import Admission
from exporter.polling.attribution import Attribution
from exporter.polling.backoff import AUTH_REASONS, AuthBackoff, refused_again
from exporter.polling.hints import hint_for
from exporter.polling.live import DEFAULT_LOOKBACK_SECONDS, DEFAULT_MAX_REPOS, SessionSync
from exporter.polling.snapshot import Sample, Snapshot, Value, WindowState
from exporter.polling.strategies import Span, strategy_of
from exporter.polling.targets import Target
from exporter.windows import Window, day_cycle

Clock = Callable[[], float]

log = structlog.get_logger("exporter.polling.poller")


# How long new targets wait for a new billing-cycle target's first poll to end.
CYCLE_WAIT_SECONDS = 10.0


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
        sessions_lookback_seconds: float = DEFAULT_LOOKBACK_SECONDS,
        sessions_max_repos: int = DEFAULT_MAX_REPOS,
        attribution: Attribution | None = None,
        admission: Admission | None = None,
    ) -> None:
        self._api = api
        # Unbounded by default (fakes answer at once); main caps it by devin.max_concurrency.
        self._admission = admission
        # Per target of the session list: what its earlier polls saw (counted once).
        self._sessions: dict[Target, SessionSync] = {}
        self.sessions_lookback_seconds = sessions_lookback_seconds
        self.sessions_max_repos = sessions_max_repos
        # How per-user ACUs are labelled and bounded (a reload may change `top`).
        self.attribution = attribution or Attribution()
        self._instruments = instruments
        self._clock = clock
        self.targets: list[Target] = []
        self._target_set: frozenset[Target] = frozenset()
        self.windows: list[Window] = []
        self.billing_cycle: BillingCycle | None = None  # Devin's current cycle, once polled
        # billing.cycle_start_day: the cycle when Devin's is not (or not yet) known.
        self.cycle_start_day: int | None = None
        self.samples: dict[tuple[Target, str], Sample] = {}
        self.states: dict[tuple[Target, str], WindowState] = {}
        self.auth_backoff: dict[Target, AuthBackoff] = {}
        self._polled: set[Target] = set()
        self._missing_logged: set[tuple[str, str]] = set()  # (endpoint, field) logged once
        self._in_flight: set[Target] = set()
        self._ready = False
        self._scheduler: AsyncIOScheduler | None = None
        self.version = 0  # bumped whenever anything a scrape shows may have changed
        self._running: set[asyncio.Task[object]] = set()
        self._dispatched: set[asyncio.Task[None]] = set()  # scheduled polls in their own tasks
        self._closing = False
        self.reconfigure(targets, windows)

    def _changed(self) -> None:
        self.version += 1

    def snapshot(self) -> Snapshot:
        """A copy that stays consistent while polls go on (shallow: samples are immutable)."""
        return Snapshot(
            version=self.version,
            targets=tuple(self.targets),
            windows=tuple(self.windows),
            samples=dict(self.samples),
            states={k: replace(v) for k, v in self.states.items()},
            up={t: self.up(t) for t in self.targets},
            backoff={t: replace(b) for t, b in self.auth_backoff.items()},
            cycle=self.current_cycle(self._clock()),
            next_runs=self._next_runs(),
        )

    def reconfigure(self, targets: list[Target], windows: list[Window]) -> None:
        """Apply a new list of targets and windows; those that stay keep their values.

        Target equality ignores the key, so old entries re-key onto the new targets. A
        target whose key changed leaves its auth backoff behind: the new key gets a
        chance at once. New windows are polled at once rather than at the next poll.
        """
        by_id = {t: t for t in targets}
        labels = {w.label for w in windows}
        old_targets = {t: t for t in self.targets}
        self.samples = {
            (by_id[t], w): s
            for (t, w), s in self.samples.items()
            if t in by_id and w in {x.label for x in self.windows_of(by_id[t], windows)}
        }
        self.states = {
            (t, w.label): self.states.get((t, w.label)) or WindowState()
            for t in targets
            for w in strategy_of(t.row).windows(windows)
        }
        self.auth_backoff = {
            t: b
            for t, b in self.auth_backoff.items()
            if t in by_id and key_digest(by_id[t].key) == key_digest(t.key)
        }
        self._polled &= set(targets)
        self._sessions = {t: s for t, s in self._sessions.items() if t in by_id}
        if self._admission is not None:
            self._admission.retain([t.key for t in targets])
        if not any(isinstance(s.value, BillingCycle) for s in self.samples.values()):
            self.billing_cycle = None  # billing cycles are no longer polled
        removed = [t for t in self.targets if t not in by_id]
        new_windows = labels - {w.label for w in self.windows}
        self.targets, self.windows = targets, windows
        self._target_set = frozenset(targets)
        self._instruments.forget((t.endpoint, t.org) for t in removed)
        self._instruments.start_at_zero((t.endpoint, t.org) for t in targets)
        if self._scheduler is not None:
            poll_now = {t for t in targets if t not in old_targets}
            if new_windows:
                poll_now |= {t for t in targets if t in old_targets}
            self._schedule_jobs(poll_now)
        self._changed()

    def restore(
        self,
        samples: Mapping[tuple[Target, str], Sample],
        states: Mapping[tuple[Target, str], WindowState],
    ) -> None:
        """Take back what a previous run knew (a state file), each sample with the time
        it was fetched; entries of targets or windows not configured now are left out.

        Nothing counts as polled: readiness still waits for this run's own first polls.
        """
        for key, state in states.items():
            if key in self.states:
                self.states[key] = replace(state)
        for key, sample in samples.items():
            if key in self.states:
                self.samples[key] = sample
                if isinstance(sample.value, BillingCycle):
                    self.billing_cycle = sample.value
        self._changed()

    @property
    def ready(self) -> bool:
        """True once every target has finished its first poll, whatever its outcome.

        It stays true after a reload adds targets: their first poll is no reason to take
        the exporter out of a load balancer.
        """
        # Not with no targets at all: discovery may not have found any yet.
        self._ready = self._ready or (bool(self.targets) and self._polled >= self._target_set)
        return self._ready

    def up(self, target: Target) -> bool:
        """Whether the latest poll of every window of the target succeeded.

        A window a reload just added, not yet polled, does not count either way.
        """
        states = [self.states[target, w.label] for w in self.windows_of(target)]
        polled = [s for s in states if s.last_attempt is not None]
        return bool(polled) and all(s.last_error is None for s in polled)

    def current_cycle(self, now: float) -> tuple[float, float] | None:
        """The billing cycle `now` falls in: Devin's while the polled one lasts, else the
        one billing.cycle_start_day sets; None when neither says (never a guess)."""
        cycle = self.billing_cycle
        if cycle is not None and cycle.start <= now < cycle.end:
            return float(cycle.start), float(cycle.end)
        if self.cycle_start_day is not None:
            return day_cycle(now, self.cycle_start_day)
        return None

    def cycle_start(self, now: float) -> float | None:
        """Where the current billing cycle began (None: unknown)."""
        cycle = self.current_cycle(now)
        return None if cycle is None else cycle[0]

    def windows_of(self, target: Target, windows: list[Window] | None = None) -> list[Window]:
        """The windows (or buckets) a target's samples are kept under."""
        return strategy_of(target.row).windows(self.windows if windows is None else windows)

    def _next_runs(self) -> dict[float, float]:
        """When the scheduler next polls each interval (Unix time)."""
        if self._scheduler is None:
            return {}
        runs = {}
        for interval in {t.interval_seconds for t in self.targets}:
            job = self._scheduler.get_job(_job_id(interval))
            if job is not None and job.next_run_time is not None:
                runs[interval] = job.next_run_time.timestamp()
        return runs

    async def poll_all(self) -> None:
        """One cycle of every target, concurrently (the client caps requests in flight);
        the billing cycle first, so that `cycle` windows know where they start."""
        first, rest = _cycles_first(self.targets)
        await asyncio.gather(*(self.poll_target(t) for t in first))
        await asyncio.gather(*(self.poll_target(t) for t in rest))

    async def _poll_interval(self, interval: float) -> None:
        """The scheduled poll of every target polled every `interval` seconds.

        Each target is polled in a task of its own and the job returns at once: a target
        that is slow (timeouts, retries, a long Retry-After) delays only its own next poll,
        never the whole cycle's, and only the rate limiter and the client's cap on
        requests in flight make the others wait.
        """
        self.dispatch([t for t in self.targets if t.interval_seconds == interval])

    async def _poll_now(self, targets: list[Target]) -> None:
        """The one-shot job for new targets (a coroutine, so it runs on the event loop):
        a new billing-cycle target is polled first, and the others wait for it (at most
        CYCLE_WAIT_SECONDS: a slow or failing cycle read must not hold every first poll
        back; their `cycle` windows are then filled at their next poll)."""
        first, rest = _cycles_first(targets)
        started = self.dispatch(first)
        if started:
            await asyncio.wait(started, timeout=CYCLE_WAIT_SECONDS)
        self.dispatch(rest)

    def dispatch(self, targets: list[Target]) -> list[asyncio.Task[None]]:
        """Start polling each of these targets that is not being polled already."""
        started = []
        for target in targets:
            if self._closing or target in self._in_flight:
                continue
            self._in_flight.add(target)  # claimed now: a second dispatch skips it
            task = asyncio.get_running_loop().create_task(self._poll_claimed(target))
            self._dispatched.add(task)
            task.add_done_callback(self._finished)
            started.append(task)
        return started

    async def _poll_claimed(self, target: Target) -> None:
        try:
            if target in self._current_targets():
                await self._poll_target(target)
        finally:
            self._in_flight.discard(target)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._dispatched.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("poll_crashed", error=type(error).__name__, exc_info=error)

    async def poll_target(self, target: Target) -> None:
        """Fetch every window of one target and record each outcome."""
        if self._closing or target in self._in_flight:
            return
        self._in_flight.add(target)
        try:
            await self._poll_target(target)
        finally:
            self._in_flight.discard(target)

    async def _poll_target(self, target: Target) -> None:
        if self._skipped(target, self._clock()):
            return
        if self._admission is None:
            await self._poll_admitted(target)
            return
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)  # close() cancels it while it waits to be admitted
        try:
            async with self._admission.slot(target.key):
                if not self._closing:
                    await self._poll_admitted(target)
        except asyncio.CancelledError:
            if self._closing:
                return
            raise
        finally:
            if task is not None:
                self._running.discard(task)

    def _skipped(self, target: Target, now: float) -> bool:
        """Whether the target's key was refused recently enough to skip this poll."""
        backoff = self.auth_backoff.get(target)
        if backoff is not None and now < backoff.retry_at:
            log.debug(
                "poll_skipped", endpoint=target.endpoint, org=target.org, reason=backoff.reason
            )
            return True
        return False

    async def _poll_admitted(self, target: Target) -> None:
        # Now, not when dispatched: a target that waited to be admitted asks for windows
        # that end when it is polled.
        now = self._clock()
        if self._skipped(target, now):
            return
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        windows = self.windows_of(target)  # a reload may change the list while we wait
        started = time.perf_counter()
        try:
            outcomes = await strategy_of(target.row).fetch(
                self._api,
                target,
                windows,
                Span(now, self.cycle_start(now), self._sync(target), self.attribution),
            )
        except asyncio.CancelledError:
            if self._closing:
                return  # our own shutdown: end quietly, the process is exiting
            raise
        finally:
            if task is not None:
                self._running.discard(task)
            self._polled.add(target)
        self._instruments.polled(target.endpoint, time.perf_counter() - started)
        if target not in self._current_targets():
            return  # removed by a reload while in flight: its results have no home
        # A window without an outcome was not asked (a `cycle` window while the cycle is
        # unknown): it keeps no value and counts neither way.
        failed = {
            w.label: outcome.reason
            for w in windows
            if w.label in outcomes
            and self._record(target, w, (outcome := outcomes[w.label]), now)
            and isinstance(outcome, DevinAPIError)
        }
        self._track_auth(target, next((r for r in failed.values() if r in AUTH_REASONS), None), now)
        self._changed()
        if failed and not AUTH_REASONS & set(failed.values()):
            log.warning(
                "poll_failed",
                endpoint=target.endpoint,
                org=target.org,
                windows=",".join(failed),
                reasons=",".join(sorted(set(failed.values()))),
            )

    def _sync(self, target: Target) -> SessionSync | None:
        """The target's session sync, for a session-list target (kept across polls and
        reloads; a reload's new lookback applies from the next poll)."""
        if not strategy_of(target.row).live:
            return None
        sync = self._sessions.setdefault(target, SessionSync(self.sessions_lookback_seconds))
        sync.lookback_seconds = self.sessions_lookback_seconds
        sync.max_repos = self.sessions_max_repos
        return sync

    def session_memory(self) -> dict[Target, dict[str, float]]:
        """Per session-list target, the completed session ids and when each was last seen
        (a copy, for the state file)."""
        return {t: s.memory() for t, s in self._sessions.items()}

    def remember_sessions(self, target: Target, completed: dict[str, float]) -> None:
        """Take back a previous run's completed ids, so that none is counted again."""
        sync = self._sync(target)
        if sync is not None:
            sync.remember(completed)

    def _current_targets(self) -> frozenset[Target]:
        # Kept by reconfigure: a set built per poll made a cycle quadratic in targets.
        return self._target_set

    def _record(
        self, target: Target, window: Window, outcome: Value | DevinAPIError, now: float
    ) -> bool:
        """Store one window's outcome; False if the window is no longer configured."""
        state = self.states.get((target, window.label))
        if state is None:
            return False
        state.last_attempt = now
        if isinstance(outcome, DevinAPIError):
            state.last_error = state.last_failure = outcome.reason
            state.last_failure_at = now
            state.last_failure_status = outcome.status
            self._instruments.poll_failed(target.endpoint, target.org, outcome.reason)
            log.debug(
                "poll_window_failed",
                endpoint=target.endpoint,
                org=target.org,
                window=window.label,
                reason=outcome.reason,
                status=outcome.status,
                detail=outcome.detail or None,
            )
        else:
            self._note_missing(target, outcome)
            self.samples[target, window.label] = Sample(outcome, now)
            state.last_success = now
            state.last_error = None
            if isinstance(outcome, BillingCycle):
                self.billing_cycle = outcome  # the `cycle` window follows Devin's cycle
        return True

    def _note_missing(self, target: Target, value: Value) -> None:
        """Count the fields an answer left null or absent; log each (endpoint, field) once."""
        missing = getattr(value, "missing", None)
        for name in missing() if missing is not None else ():
            self._instruments.field_missing(target.endpoint, name)
            if (target.endpoint, name) not in self._missing_logged:
                self._missing_logged.add((target.endpoint, name))
                log.warning(
                    "field_missing",
                    endpoint=target.endpoint,
                    org=target.org,
                    field=name,
                    effect="its series are left out while it stays missing",
                )

    async def close(self) -> None:
        """Cancel the polls in flight and wait for them, before the HTTP client closes."""
        self._closing = True
        running = [*self._running, *self._dispatched]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _track_auth(self, target: Target, reason: str | None, now: float) -> None:
        """Slow down a target whose key is refused; log once per change of state."""
        previous = self.auth_backoff.get(target)
        if reason is None:
            if previous is not None:
                del self.auth_backoff[target]
                log.info("auth_recovered", endpoint=target.endpoint, org=target.org)
            return
        self.auth_backoff[target] = refused_again(previous, reason, target.interval_seconds, now)
        if previous is None or previous.reason != reason:
            log.error(
                "auth_failed",
                endpoint=target.endpoint,
                org=target.org,
                reason=reason,
                hint=hint_for(target, reason),
                backoff="polls slow down, doubling up to 1h, until the key is accepted",
            )

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        """One job per poll interval, whatever the number of targets: each run polls every
        target of that interval, and a target still being polled is skipped, never run
        twice. Every target is polled once at start."""
        self._scheduler = scheduler
        self._schedule_jobs(set(self.targets))

    def _schedule_jobs(self, poll_now: set[Target]) -> None:
        """Keep one job per interval in use; poll `poll_now` (new targets) at once."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        intervals = {t.interval_seconds for t in self.targets}
        for job in scheduler.get_jobs():
            if job.id.startswith(_JOB_PREFIX) and job.kwargs["interval"] not in intervals:
                job.remove()
        for interval in sorted(intervals):
            if scheduler.get_job(_job_id(interval)) is None:
                scheduler.add_job(
                    self._poll_interval,
                    IntervalTrigger(seconds=interval, jitter=min(interval * 0.1, 30.0)),
                    kwargs={"interval": interval},
                    id=_job_id(interval),
                    name=_job_id(interval),
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=None,
                )
        if poll_now:
            # Once, as soon as possible: new targets need not wait a whole interval.
            scheduler.add_job(self._poll_now, args=[sorted(poll_now)], misfire_grace_time=None)


_JOB_PREFIX = "poll-every-"


def _cycles_first(targets: list[Target]) -> tuple[list[Target], list[Target]]:
    """The billing-cycle targets, and the others."""
    first = [t for t in targets if strategy_of(t.row).first]
    return first, [t for t in targets if t not in first]


def _job_id(interval: float) -> str:
    return f"{_JOB_PREFIX}{interval:g}s"
