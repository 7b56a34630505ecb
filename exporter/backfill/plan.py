"""What a backfill will ask Devin, counted before it asks anything (`backfill --explain`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from exporter.config import Settings
from exporter.devin.ratelimit import key_digest
from exporter.polling.plan import build_targets, format_seconds
from exporter.polling.strategies import strategy_of
from exporter.polling.targets import Target
from exporter.windows import Window


def backfill_targets(settings: Settings) -> list[Target]:
    """The daemon's targets, but the session list, the ACU limits and per-user consumption:
    live state has no past to ask for, today's limits say nothing of the limits of the
    past, and user labels are the daemon's alone to give."""
    return [t for t in build_targets(settings) if strategy_of(t.row).backfill is not None]


def requests_of(target: Target, windows: list[Window], times: list[int]) -> int:
    """The requests one target costs over these steps.

    A rolling endpoint asks once per window and step; daily consumption once for the
    range plus, at each step inside a billing day, the day so far; dau/wau/mau once per
    period; billing cycles once (one listing).
    """
    return strategy_of(target.row).backfill_requests(windows, times)


@dataclass(frozen=True)
class BackfillPlan:
    """Requests per endpoint and per key, and how long the rate limit makes them take."""

    steps: int
    per_endpoint: dict[str, int]
    per_key: dict[str, int]  # by key digest: each key has its own rate limit
    requests_per_second: float

    @property
    def total(self) -> int:
        return sum(self.per_endpoint.values())

    @property
    def seconds(self) -> float:
        """At least this long: the busiest key's requests at its rate limit."""
        return max(self.per_key.values(), default=0) / self.requests_per_second


def plan(settings: Settings, times: list[int]) -> BackfillPlan:
    windows = list(settings.windows)
    per_endpoint: Counter[str] = Counter()
    per_key: Counter[str] = Counter()
    for target in backfill_targets(settings):
        n = requests_of(target, windows, times)
        per_endpoint[target.endpoint] += n
        per_key[key_digest(target.key)] += n
    return BackfillPlan(
        len(times), dict(per_endpoint), dict(per_key), settings.devin.requests_per_second
    )


def explain(p: BackfillPlan, first: str, last: str, step: float) -> str:
    """The plan as people read it."""
    lines = [
        f"{p.steps} step{'' if p.steps == 1 else 's'} of {format_seconds(step)}, {first} to {last}",
        *(f"  {endpoint:<40} {n:>10}" for endpoint, n in sorted(p.per_endpoint.items())),
        f"{p.total} requests in total over {len(p.per_key)} keys; at least "
        f"{_duration(p.seconds)} at {p.requests_per_second:g} requests per second per key "
        "(devin.requests_per_second)",
    ]
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))}s"
    minutes = int(-(-seconds // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"
