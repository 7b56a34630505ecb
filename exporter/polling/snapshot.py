"""What a poll leaves behind: the values and states the metric families and the status
page read, and how long a value may be served."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel

from exporter.polling.backoff import AuthBackoff
from exporter.polling.targets import Target
from exporter.windows import Window

Value = BaseModel  # one of the response models of exporter.devin.models


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
    # The most recent failure, kept after recovery for the status page.
    last_failure: str | None = None
    last_failure_at: float | None = None
    last_failure_status: int | None = None  # its HTTP status; None without an answer


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of what the poller knows: /metrics renders it away from the event
    loop, the status page reads it."""

    version: int
    targets: tuple[Target, ...]
    windows: tuple[Window, ...]
    samples: Mapping[tuple[Target, str], Sample]
    states: Mapping[tuple[Target, str], WindowState]
    up: Mapping[Target, bool]
    # The targets whose key Devin refuses, and when each is asked again.
    backoff: Mapping[Target, AuthBackoff] = field(default_factory=dict)
    # The current billing cycle's [start, end), as the poller knows it; None: unknown.
    cycle: tuple[float, float] | None = None
    # When the scheduler next polls each poll interval (seconds -> Unix time); empty
    # while the scheduler is not running.
    next_runs: Mapping[float, float] = field(default_factory=dict)

    def next_poll(self, target: Target) -> float | None:
        """When the target is polled next: its interval's next run, or later while its key
        is refused and its polls back off; None when no poll is scheduled."""
        run = self.next_runs.get(target.interval_seconds)
        if run is None:
            return None
        backoff = self.backoff.get(target)
        return max(run, backoff.retry_at) if backoff is not None else run


def stale_after_for(target: Target, stale_after: float) -> float:
    """How old a target's samples may get: `stale_after`, but never less than three of
    the target's own polls (consumption polled hourly must not vanish after 15 minutes)."""
    return max(stale_after, 3 * target.interval_seconds)


def fresh_samples(
    samples: Mapping[tuple[Target, str], Sample], now: float, stale_after: float
) -> dict[tuple[Target, str], Sample]:
    """The samples young enough to serve; older ones vanish from /metrics."""
    return {
        (t, w): s
        for (t, w), s in samples.items()
        if now - s.fetched_at <= stale_after_for(t, stale_after)
    }
