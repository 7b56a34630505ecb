"""Live session state: Devin's session list, read incrementally, finished sessions counted once.

Each poll lists the sessions updated since a little before the previous successful poll
began (never further back than `lookback`), follows every page, and folds them into what
is known: the latest status of every session still open, and the ids of the sessions
that finished recently enough to show up again. A session seen twice (on two pages of
one listing, or in two overlapping polls) is counted once.

Memory holds the open sessions updated within `lookback` and the ids of the sessions
finished within the overlap, nothing more. A restart forgets it all: the first listing
reads `lookback` back again, so a session that finished within `lookback` before the
restart is counted (and observed) a second time, in that first listing only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from exporter.devin.models import SessionItem

TERMINAL = frozenset({"exit", "error"})
"""Statuses a session ends in; every other status counts as active."""
ACUS_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
DURATION_BUCKETS = (300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0)
# Each listing starts this much before the previous one began: Devin's clock and ours
# may disagree a little, and a session updated while the previous listing ran must not
# fall between two listings.
OVERLAP_SECONDS = 60.0
DEFAULT_LOOKBACK_SECONDS = 86400.0
UNKNOWN_ORIGIN = "unknown"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ActiveState(_Frozen):
    """The open sessions in one (status, status_detail)."""

    status: str
    status_detail: str  # "" when Devin sent none
    sessions: int
    oldest_updated_at: float


class FinishedCount(_Frozen):
    """Sessions seen finishing in one (origin, status), since start."""

    origin: str
    status: str
    sessions: int


class Histogram(_Frozen):
    """Observations of one origin: per bucket (not cumulative), then their count and sum."""

    origin: str
    bucket_counts: tuple[int, ...]
    count: int
    total: float


class LiveSessions(_Frozen):
    """One poll's result: active sessions now; finished ones and their histograms since
    start (they never go down while the exporter runs)."""

    active: tuple[ActiveState, ...]
    finished: tuple[FinishedCount, ...]
    acus: tuple[Histogram, ...]
    durations: tuple[Histogram, ...]
    tracked_sessions: int  # open sessions and recently finished ids held in memory


@dataclass
class _Open:
    status: str
    status_detail: str
    updated_at: float


@dataclass
class _Observations:
    bounds: Sequence[float]
    counts: dict[str, list[int]] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)

    def observe(self, origin: str, value: float) -> None:
        counts = self.counts.setdefault(origin, [0] * (len(self.bounds) + 1))
        index = next((i for i, b in enumerate(self.bounds) if value <= b), len(self.bounds))
        counts[index] += 1
        self.sums[origin] = self.sums.get(origin, 0.0) + value

    def histograms(self) -> tuple[Histogram, ...]:
        return tuple(
            Histogram(origin=o, bucket_counts=tuple(c), count=sum(c), total=self.sums[o])
            for o, c in sorted(self.counts.items())
        )


class SessionSync:
    """What one target knows of its sessions across polls (the poller keeps one per target)."""

    def __init__(self, lookback_seconds: float = DEFAULT_LOOKBACK_SECONDS) -> None:
        self.lookback_seconds = lookback_seconds
        self._last_start: float | None = None
        self._open: dict[str, _Open] = {}
        self._finished_at: dict[str, float] = {}  # id -> updated_at, within the overlap
        self._finished: dict[tuple[str, str], int] = {}
        self._acus = _Observations(ACUS_BUCKETS)
        self._durations = _Observations(DURATION_BUCKETS)

    def updated_after(self, now: float) -> int:
        """The `updated_after` of a listing that starts at `now`: `lookback` back on the
        first poll, else a little before the previous successful one began, but never
        further back than `lookback`."""
        floor = now - self.lookback_seconds
        if self._last_start is None:
            return int(floor)
        return int(max(floor, self._last_start - OVERLAP_SECONDS))

    def apply(self, items: Iterable[SessionItem], started: float) -> LiveSessions:
        """Fold in one successful listing that began at `started`."""
        latest: dict[str, SessionItem] = {}
        for item in items:
            known = latest.get(item.session_id)
            if known is None or item.updated_at >= known.updated_at:
                latest[item.session_id] = item
        for item in latest.values():
            self._fold(item)
        self._forget(started)
        self._last_start = started
        return self.result(started)

    def _fold(self, item: SessionItem) -> None:
        sid = item.session_id
        finished_at = self._finished_at.get(sid)
        if item.status in TERMINAL:
            self._open.pop(sid, None)
            if finished_at is None:
                self._count_finished(item)
            self._finished_at[sid] = max(finished_at or 0.0, float(item.updated_at))
            return
        if finished_at is not None and item.updated_at <= finished_at:
            return  # an older view of a session we saw finish
        known = self._open.get(sid)
        if known is None or item.updated_at >= known.updated_at:
            self._open[sid] = _Open(item.status, item.status_detail or "", float(item.updated_at))

    def _count_finished(self, item: SessionItem) -> None:
        origin = item.origin or UNKNOWN_ORIGIN
        key = (origin, item.status)
        self._finished[key] = self._finished.get(key, 0) + 1
        self._acus.observe(origin, item.acus_consumed)
        self._durations.observe(origin, max(0.0, float(item.updated_at - item.created_at)))

    def _forget(self, started: float) -> None:
        """Drop open sessions older than `lookback`, and finished ids no later listing can
        show again (it asks from `started - OVERLAP_SECONDS` on, at the earliest)."""
        horizon = started - self.lookback_seconds
        self._open = {s: o for s, o in self._open.items() if o.updated_at >= horizon}
        keep_from = max(horizon, started - OVERLAP_SECONDS) - 1
        self._finished_at = {s: u for s, u in self._finished_at.items() if u >= keep_from}

    def result(self, now: float) -> LiveSessions:
        """The state as of `now`: open sessions updated within `lookback`, by state."""
        horizon = now - self.lookback_seconds
        groups: dict[tuple[str, str], list[float]] = {}
        for session in self._open.values():
            if session.updated_at >= horizon:
                groups.setdefault((session.status, session.status_detail), []).append(
                    session.updated_at
                )
        return LiveSessions(
            active=tuple(
                ActiveState(
                    status=status,
                    status_detail=detail,
                    sessions=len(times),
                    oldest_updated_at=min(times),
                )
                for (status, detail), times in sorted(groups.items())
            ),
            finished=tuple(
                FinishedCount(origin=origin, status=status, sessions=n)
                for (origin, status), n in sorted(self._finished.items())
            ),
            acus=self._acus.histograms(),
            durations=self._durations.histograms(),
            tracked_sessions=len(self._open) + len(self._finished_at),
        )
