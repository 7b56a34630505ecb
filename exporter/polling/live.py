"""Live session state: Devin's session list, read incrementally, each completion counted once.

Each poll lists the sessions updated since a little before the previous successful poll
began (never further back than `lookback`), follows every page, and folds them into what
is known: the latest status of every session still open, and the ids of the sessions
that have completed. A session *completes* the first time it is seen in `exit`, in
`error`, or in `running` with `status_detail` `finished` (Devin's "task complete"); it is
counted then, once, whatever Devin serves of it later (a pull request merged after the
session ended updates it; a session woken by a message may complete again).

Memory holds the open sessions updated within `lookback`, and the ids of completed
sessions until `COMPLETED_MEMORY_SECONDS` (at least 7 days, and at least the lookback)
after a listing last showed them. With `state.path` those ids are saved and restored
(`memory`/`remember`), so a restart counts nothing again.

Each completion is also counted, with its ACUs, under the repository of the session's
first pull request (`host/owner/name`, `""` without one). The first `max_repos` distinct
repositories keep their own label for as long as this object lives; later ones, and pull
request URLs of no known shape, count under `other`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from exporter.devin.models import SessionItem
from exporter.polling.repos import repository

TERMINAL = frozenset({"exit", "error"})
"""Statuses a session ends in; every other status counts as active."""
FINISHED = "finished"
"""The `status` label of a completion in `running` with `status_detail` `finished`."""
COMPLETED_MEMORY_SECONDS = 7 * 86400.0
ACUS_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
DURATION_BUCKETS = (300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0)
# Each listing starts this much before the previous one began: Devin's clock and ours
# may disagree a little, and a session updated while the previous listing ran must not
# fall between two listings.
OVERLAP_SECONDS = 60.0
DEFAULT_LOOKBACK_SECONDS = 86400.0
UNKNOWN_ORIGIN = "unknown"
DEFAULT_MAX_REPOS = 50
NO_REPO = ""
"""The `repo` label of a session completed without a pull request."""
OTHER_REPO = "other"
"""The `repo` label of the repositories past `max_repos`, and of unreadable PR URLs."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ActiveState(_Frozen):
    """The open sessions in one (status, status_detail)."""

    status: str
    status_detail: str  # "" when Devin sent none
    sessions: int
    oldest_updated_at: float


class FinishedCount(_Frozen):
    """Sessions seen completing in one (origin, status), since start: status is `exit`,
    `error` or `finished`."""

    origin: str
    status: str
    sessions: int


class Histogram(_Frozen):
    """Observations of one origin: per bucket (not cumulative), then their count and sum."""

    origin: str
    bucket_counts: tuple[int, ...]
    count: int
    total: float


class RepoCount(_Frozen):
    """Sessions seen completing whose first pull request is in `repo`, and their ACUs."""

    repo: str
    sessions: int
    acus: float


class LiveSessions(_Frozen):
    """One poll's result: active sessions now; finished ones and their histograms since
    start (they never go down while the exporter runs)."""

    active: tuple[ActiveState, ...]
    finished: tuple[FinishedCount, ...]
    acus: tuple[Histogram, ...]
    durations: tuple[Histogram, ...]
    tracked_sessions: int  # open sessions and completed ids held in memory
    by_repo: tuple[RepoCount, ...] = ()


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


def completion(status: str, status_detail: str | None) -> str | None:
    """The `status` label a session in this state completes with, or None if it has not."""
    if status in TERMINAL:
        return status
    if status == "running" and status_detail == FINISHED:
        return FINISHED
    return None


class SessionSync:
    """What one target knows of its sessions across polls (the poller keeps one per target)."""

    def __init__(
        self,
        lookback_seconds: float = DEFAULT_LOOKBACK_SECONDS,
        max_repos: int = DEFAULT_MAX_REPOS,
    ) -> None:
        self.lookback_seconds = lookback_seconds
        self.max_repos = max_repos  # a reload may raise it; labels given are kept
        self._last_start: float | None = None
        self._open: dict[str, _Open] = {}
        self._ended_at: dict[str, float] = {}  # id -> updated_at in exit/error, in the overlap
        self._completed: dict[str, float] = {}  # id -> when a listing last showed it
        self._finished: dict[tuple[str, str], int] = {}
        self._acus = _Observations(ACUS_BUCKETS)
        self._durations = _Observations(DURATION_BUCKETS)
        self._by_repo: dict[str, tuple[int, float]] = {}  # label -> (sessions, ACUs)
        self._named_repos = 0  # repositories with a label of their own

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
            self._fold(item, started)
        self._forget(started)
        self._last_start = started
        return self.result(started)

    def memory(self) -> dict[str, float]:
        """The completed ids and when each was last seen, for the state file."""
        return dict(self._completed)

    def remember(self, completed: dict[str, float]) -> None:
        """Take back completed ids saved by `memory` (at start, before the first listing)."""
        for sid, seen in completed.items():
            self._completed[sid] = max(seen, self._completed.get(sid, seen))

    def _fold(self, item: SessionItem, started: float) -> None:
        sid = item.session_id
        status = completion(item.status, item.status_detail)
        if sid in self._completed:
            self._completed[sid] = started
        elif status is not None:
            self._completed[sid] = started
            self._count_completed(item, status)
        ended_at = self._ended_at.get(sid)
        if item.status in TERMINAL:
            self._open.pop(sid, None)
            self._ended_at[sid] = max(ended_at or 0.0, float(item.updated_at))
            return
        if ended_at is not None and item.updated_at <= ended_at:
            return  # an older view of a session we saw end
        known = self._open.get(sid)
        if known is None or item.updated_at >= known.updated_at:
            self._open[sid] = _Open(item.status, item.status_detail or "", float(item.updated_at))

    def _count_completed(self, item: SessionItem, status: str) -> None:
        origin = item.origin or UNKNOWN_ORIGIN
        key = (origin, status)
        self._finished[key] = self._finished.get(key, 0) + 1
        self._acus.observe(origin, item.acus_consumed)
        self._durations.observe(origin, max(0.0, float(item.updated_at - item.created_at)))
        label = self._repo_label(item)
        sessions, acus = self._by_repo.get(label, (0, 0.0))
        self._by_repo[label] = (sessions + 1, acus + item.acus_consumed)

    def _repo_label(self, item: SessionItem) -> str:
        """The `repo` of a completed session: its first pull request's repository while
        fewer than `max_repos` have a label, else `other`; `""` without a pull request."""
        if not item.pull_requests:
            return NO_REPO
        repo = repository(item.pull_requests[0].pr_url)
        if repo is None or repo in (NO_REPO, OTHER_REPO):
            return OTHER_REPO
        if repo in self._by_repo:
            return repo
        if self._named_repos >= self.max_repos:
            return OTHER_REPO
        self._named_repos += 1
        return repo

    def _forget(self, started: float) -> None:
        """Drop open sessions older than `lookback`, ended ids no later listing can show in
        an older view (it asks from `started - OVERLAP_SECONDS` on, at the earliest), and
        completed ids not seen for `COMPLETED_MEMORY_SECONDS` (or the lookback, if longer)."""
        horizon = started - self.lookback_seconds
        self._open = {s: o for s, o in self._open.items() if o.updated_at >= horizon}
        keep_from = max(horizon, started - OVERLAP_SECONDS) - 1
        self._ended_at = {s: u for s, u in self._ended_at.items() if u >= keep_from}
        memory = max(COMPLETED_MEMORY_SECONDS, self.lookback_seconds + OVERLAP_SECONDS)
        self._completed = {s: t for s, t in self._completed.items() if t >= started - memory}

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
            tracked_sessions=len(self._open) + len(self._completed),
            by_repo=tuple(
                RepoCount(repo=repo, sessions=n, acus=acus)
                for repo, (n, acus) in sorted(self._by_repo.items())
            ),
        )
