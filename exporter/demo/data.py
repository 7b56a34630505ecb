"""Synthetic but consistent session data for the demo Devin API.

Every organisation has a smooth, always-positive session rate with a daily and a weekly
cycle. The number of sessions created before time t is `floor(R(t))`, where R is the
rate's closed-form integral, so a count over any range is O(1), never negative, and a
longer window never has fewer sessions than a shorter one. Session k's origin, size,
playbook/search use and merged PR come from fixed shuffled patterns indexed by k, so
breakdowns add up to the total exactly and merged-PR sessions never exceed created ones.
Everything is a pure function of (seed, org id, time).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from exporter.models import KNOWN_ORIGINS, KNOWN_SIZES

DAY = 86400.0
WEEK = 7 * DAY

# Relative frequency of each origin, and of each size, for a typical organisation.
_ORIGIN_WEIGHTS = {
    "slack": 30,
    "webapp": 24,
    "api": 14,
    "jira": 10,
    "automation": 8,
    "linear": 5,
    "teams": 4,
    "desktop": 3,
    "code_scan": 2,
}
_SIZE_WEIGHTS = {"xs": 30, "s": 30, "m": 22, "l": 13, "xl": 5}
# Share of sessions of each size that end with a merged PR, in twentieths.
_MERGED_PER_20 = {"xs": 13, "s": 11, "m": 9, "l": 7, "xl": 5}
# Typical ACUs per session of each size.
_ACUS = {"xs": 0.6, "s": 1.8, "m": 4.5, "l": 11.0, "xl": 26.0}
_EXTRA_ORIGIN_WEIGHT = 3


def _pattern(weights: dict[str, int], rng: random.Random) -> list[str]:
    cells = [name for name, weight in weights.items() for _ in range(weight)]
    rng.shuffle(cells)
    return cells


@dataclass(frozen=True)
class _Cycle:
    """A repeating pattern with O(1) counts of each value among its first k cells."""

    cells: tuple[str, ...]
    prefix: dict[str, tuple[int, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        prefix: dict[str, list[int]] = {name: [0] for name in set(self.cells)}
        for cell in self.cells:
            for name, counts in prefix.items():
                counts.append(counts[-1] + (cell == name))
        object.__setattr__(self, "prefix", {k: tuple(v) for k, v in prefix.items()})

    def count(self, name: str, k: int) -> int:
        """How many of cells[0..k) of the endless repetition are `name`."""
        counts = self.prefix.get(name)
        if counts is None:
            return 0
        laps, rest = divmod(k, len(self.cells))
        return laps * counts[-1] + counts[rest]


@dataclass(frozen=True)
class Totals:
    """What the demo API knows of one organisation over one range."""

    created: int
    by_origin: dict[str, int]
    by_size: dict[str, int]
    with_playbook: int
    with_search: int
    merged: int
    merged_by_size: dict[str, int]
    average_acus: float


class OrgModel:
    """One organisation's session history as a pure function of time."""

    def __init__(self, seed: int, org_id: str, extra_origins: Sequence[str] = ()) -> None:
        digest = hashlib.sha256(f"{seed}:{org_id}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        self.sessions_per_hour = rng.uniform(3.0, 25.0)
        self._daily = rng.uniform(0.35, 0.6)  # amplitude of the daily cycle
        self._weekly = rng.uniform(0.1, 0.3)
        self._daily_phase = rng.uniform(0, 2 * math.pi)
        self._weekly_phase = rng.uniform(0, 2 * math.pi)
        self._acu_factor = rng.uniform(0.8, 1.3)
        origin_weights = {
            name: max(1, round(w * rng.uniform(0.4, 1.6))) for name, w in _ORIGIN_WEIGHTS.items()
        }
        origin_weights.update(dict.fromkeys(extra_origins, _EXTRA_ORIGIN_WEIGHT))
        self.origins = (*KNOWN_ORIGINS, *(o for o in extra_origins if o not in KNOWN_ORIGINS))
        self._origin = _Cycle(tuple(_pattern(origin_weights, rng)))
        self._size = _Cycle(tuple(_pattern(_SIZE_WEIGHTS, rng)))
        self._merged = {
            size: _Cycle(tuple(_pattern({"y": per20, "n": 20 - per20}, rng)))
            for size, per20 in _MERGED_PER_20.items()
        }
        self._playbook = _Cycle(tuple(_pattern({"y": rng.randint(2, 8), "n": 20}, rng)))
        self._search = _Cycle(tuple(_pattern({"y": rng.randint(3, 10), "n": 20}, rng)))

    def _cumulative(self, t: float) -> float:
        """R(t), strictly increasing: only differences R(b) - R(a) are ever used."""
        rate = self.sessions_per_hour / 3600.0
        daily = self._daily * DAY / (2 * math.pi)
        weekly = self._weekly * WEEK / (2 * math.pi)
        return rate * (
            t
            - daily * math.cos(2 * math.pi * t / DAY + self._daily_phase)
            - weekly * math.cos(2 * math.pi * t / WEEK + self._weekly_phase)
            + daily
            + weekly
        )

    def sessions_before(self, t: float) -> int:
        """Index of the first session created at or after t."""
        return math.floor(self._cumulative(max(t, 0.0)))

    def totals(self, start: float, end: float) -> Totals:
        """Sessions created in [start, end)."""
        first, last = self.sessions_before(start), self.sessions_before(max(start, end))

        def between(cycle: _Cycle, name: str, a: int = first, b: int = last) -> int:
            return cycle.count(name, b) - cycle.count(name, a)

        by_size = {s: between(self._size, s) for s in KNOWN_SIZES}
        merged_by_size = {
            # Size-s sessions are numbered among themselves; the merged pattern runs on that.
            s: between(self._merged[s], "y", self._size.count(s, first), self._size.count(s, last))
            for s in KNOWN_SIZES
        }
        created = last - first
        acus = sum(n * _ACUS[s] for s, n in by_size.items()) * self._acu_factor
        drift = 1 + 0.08 * math.sin(2 * math.pi * (start + end) / 2 / WEEK + self._weekly_phase)
        return Totals(
            created=created,
            by_origin={o: between(self._origin, o) for o in self.origins},
            by_size=by_size,
            with_playbook=between(self._playbook, "y"),
            with_search=between(self._search, "y"),
            merged=sum(merged_by_size.values()),
            merged_by_size=merged_by_size,
            average_acus=round(acus * drift / created, 3) if created else 0.0,
        )
