"""Synthetic but consistent session data for the demo Devin API.

Every organisation has a smooth, always-positive session rate with a daily and a weekly
cycle. The number of sessions created before time t is `floor(R(t))`, where R is the
rate's closed-form integral, so a count over any range is O(1), never negative, and a
longer window never has fewer sessions than a shorter one. Session k's origin, size,
playbook/search use and merged PR come from fixed shuffled patterns indexed by k, so
breakdowns add up to the total exactly and merged-PR sessions never exceed created ones.
Everything is a pure function of (seed, org id, time).

The rest (PRs, searches, active users, ACUs per billing day and product, categories) is
derived from the same session numbering with per-organisation factors drawn from a second,
independent stream, so that adding it changed none of the session counts. Counts that are
`factor x a cumulative count` are taken as differences of `floor(factor x cumulative)`,
which keeps them integers that never shrink when a window grows.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from exporter.devin.models import BILLING_DAY_OFFSET_SECONDS, KNOWN_ORIGINS, KNOWN_SIZES
from exporter.windows import day_cycle

DAY = 86400.0
WEEK = 7 * DAY
# 1970-01-01 was a Thursday: the first Monday 00:00 UTC is 4 days in.
_FIRST_MONDAY = 4 * 86400
# An unmerged PR still unresolved this long after its session counts as closed.
OPEN_PR_MAX_AGE_SECONDS = 2 * DAY
# Each user makes this many sessions or searches, on average, before everyone is active.
_ACTIVITY_PER_USER = 12.0

Period = Literal["dau", "wau", "mau"]

# Session categories of sessions-by-category, with subcategories, and their weights.
CATEGORIES: dict[str, dict[str, int]] = {
    "bug_fix": {"crash": 4, "regression": 3, "incorrect_output": 3},
    "feature": {"api_endpoint": 3, "user_interface": 3, "integration": 2},
    "refactor": {"cleanup": 3, "dependency_upgrade": 2, "performance": 1},
    "tests": {"unit_tests": 3, "integration_tests": 1, "flaky_test_fix": 1},
    "docs": {"readme": 1, "api_docs": 1, "code_comments": 1},
    "migration": {"framework": 1, "language_version": 1, "database": 1},
}
_CATEGORY_WEIGHTS = {
    "bug_fix": 30,
    "feature": 25,
    "refactor": 15,
    "tests": 12,
    "docs": 8,
    "migration": 10,
}

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
        # A second stream, so that the draws above (and every session count) stay as they were.
        more = random.Random(int.from_bytes(digest[8:16], "big"))
        self.merged_prs_per_session = more.uniform(1.0, 1.3)
        self.searches_per_search_session = more.uniform(2.0, 5.0)
        self.headcount = max(3, round(self.sessions_per_hour * more.uniform(4.0, 12.0)))
        self.created_at = 1_650_000_000 + more.randrange(0, 70_000_000)
        # Sessions without a merged PR: some closed a PR unmerged, some left one open.
        self._unmerged = _Cycle(
            tuple(
                _pattern(
                    {"closed": more.randint(2, 4), "pending": more.randint(1, 2), "none": 14},
                    more,
                )
            )
        )
        self.product_shares = {
            "cascade": more.uniform(0.06, 0.10),
            "terminal": more.uniform(0.035, 0.065),
        }
        if more.random() < 0.6:  # Devin Review is not used everywhere
            self.product_shares["review"] = more.uniform(0.01, 0.03)
        self._category = _Cycle(tuple(_pattern(_CATEGORY_WEIGHTS, more)))
        self._subcategory = {
            name: _Cycle(tuple(_pattern(subs, more))) for name, subs in CATEGORIES.items()
        }

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

    # Beyond sessions. Session k is the k-th created; counts below are functions of k.

    def _merged_sessions(self, k: int) -> int:
        """Sessions with a merged PR among the first k."""
        return sum(self._merged[s].count("y", self._size.count(s, k)) for s in KNOWN_SIZES)

    def _unmerged_cells(self, name: str, start: float, end: float) -> int:
        """Sessions without a merged PR in [start, end) whose unmerged outcome is `name`."""
        if end <= start:
            return 0
        a, b = self.sessions_before(start), self.sessions_before(end)
        return self._unmerged.count(name, b - self._merged_sessions(b)) - self._unmerged.count(
            name, a - self._merged_sessions(a)
        )

    def _merged_prs_before(self, t: float) -> int:
        k = self.sessions_before(t)
        return math.floor(self.merged_prs_per_session * self._merged_sessions(k))

    def pull_requests(self, start: float, end: float, now: float) -> PullRequests:
        """PRs of sessions created in [start, end), in their state at `now` (end <= now).

        merged >= the sessions with merged PRs; an unmerged PR is open for its first
        OPEN_PR_MAX_AGE_SECONDS, closed after; created = opened + closed + merged.
        """
        end = max(start, end)
        merged = max(0, self._merged_prs_before(end) - self._merged_prs_before(start))
        recent = min(max(now - OPEN_PR_MAX_AGE_SECONDS, start), end)
        opened = self._unmerged_cells("pending", recent, end)
        closed = self._unmerged_cells("closed", start, end) + self._unmerged_cells(
            "pending", start, recent
        )
        return PullRequests(
            created=merged + closed + opened, opened=opened, closed=closed, merged=merged
        )

    def _searches_before(self, t: float) -> int:
        with_search = self._search.count("y", self.sessions_before(t))
        return math.floor(self.searches_per_search_session * with_search)

    def searches(self, start: float, end: float) -> int:
        """Searches created in [start, end): about 2-5 per session that used search."""
        return max(0, self._searches_before(max(start, end)) - self._searches_before(start))

    def active_users(
        self, start: float, end: float, *, min_sessions: int = 1, min_searches: int = 1
    ) -> int:
        """Users with >= min_sessions sessions or >= min_searches searches in [start, end).

        `headcount x (1 - exp(-activity / (12 x headcount)))`, rounded up: never more than the
        headcount or the activity, and never less over a longer range.
        """
        if min_sessions <= 0 or min_searches <= 0:
            return self.headcount  # everyone made at least zero of them
        activity = self.totals(start, end).created / min_sessions + (
            self.searches(start, end) / min_searches
        )
        scale = _ACTIVITY_PER_USER * self.headcount
        return min(self.headcount, math.ceil(self.headcount * -math.expm1(-activity / scale)))

    def daily_consumption(self, start: float, end: float) -> list[DayConsumption]:
        """ACUs per billing day (08:00 UTC to 08:00 UTC) over [start, end).

        A day's ACUs are its sessions times their average ACUs (only the part of the day
        inside the range counts), split by product: cascade, terminal and (in some
        organisations) review take their shares, devin the rest.
        """
        days = []
        for day in billing_days(start, end):
            totals = self.totals(max(day, start), min(day + DAY, end))
            acus = round(totals.created * totals.average_acus, 3)
            shares = {p: round(acus * share, 3) for p, share in self.product_shares.items()}
            by_product = {"devin": round(acus - sum(shares.values()), 3), **shares}
            days.append(DayConsumption(int(day), round(sum(by_product.values()), 3), by_product))
        return days

    def categories(self, start: float, end: float) -> dict[str, dict[str, int]]:
        """Sessions created in [start, end) per category and subcategory (all listed)."""
        a, b = self.sessions_before(start), self.sessions_before(max(start, end))
        counts: dict[str, dict[str, int]] = {}
        for name, subs in CATEGORIES.items():
            # A category's sessions are numbered among themselves; subcategories run on that.
            first, last = self._category.count(name, a), self._category.count(name, b)
            cycle = self._subcategory[name]
            counts[name] = {s: cycle.count(s, last) - cycle.count(s, first) for s in subs}
        return counts


@dataclass(frozen=True)
class PullRequests:
    """PRs of the sessions of one range, v3's meaning: opened = currently open."""

    created: int
    opened: int
    closed: int
    merged: int


@dataclass(frozen=True)
class DayConsumption:
    """One billing day: its start (Unix seconds, 08:00 UTC), ACUs, and ACUs by product."""

    date: int
    acus: float
    by_product: dict[str, float]


def billing_day_start(t: float) -> int:
    """Start of the billing day holding t: 08:00 UTC (midnight PST)."""
    offset = BILLING_DAY_OFFSET_SECONDS
    return int((t - offset) // DAY * DAY + offset)


def billing_days(start: float, end: float) -> list[int]:
    """Starts of the billing days that overlap [start, end)."""
    days: list[int] = []
    day = billing_day_start(start)
    while day < end and start < end:
        days.append(day)
        day += int(DAY)
    return days


def _month_start(t: float, offset: int = 0) -> int:
    moment = datetime.fromtimestamp(t - offset, UTC)
    return int(datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp()) + offset


def _next_month(start: int, offset: int = 0) -> int:
    moment = datetime.fromtimestamp(start - offset, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) + offset


# The demo contract's billing day: its cycles run from the 5th to the 5th (as the v2
# reference's example does), so that nothing can pass for right by assuming the 1st.
BILLING_CYCLE_DAY = 5


def billing_cycles(start: float, end: float) -> list[tuple[int, int]]:
    """The monthly billing cycles (from the 5th, 08:00 UTC) overlapping [start, end], oldest
    first, as (start, end) pairs: each ends where the next begins."""
    cycles = []
    first, following = day_cycle(start, BILLING_CYCLE_DAY)
    cycle = (int(first), int(following))
    while cycle[0] <= end:
        cycles.append(cycle)
        cycle = (cycle[1], int(day_cycle(cycle[1], BILLING_CYCLE_DAY)[1]))
    return cycles


def periods(period: Period, start: float, end: float) -> list[tuple[int, int]]:
    """The UTC days, Monday-start weeks or months overlapping [start, end), as
    (start, next start) pairs in ascending order."""
    bounds: list[tuple[int, int]] = []
    if end <= start:
        return bounds
    if period == "dau":
        first = int(start // DAY * DAY)
    elif period == "wau":
        first = int((start - _FIRST_MONDAY) // WEEK * WEEK + _FIRST_MONDAY)
    else:
        first = _month_start(start)
    while first < end:
        following = (
            _next_month(first) if period == "mau" else first + int(DAY if period == "dau" else WEEK)
        )
        bounds.append((first, following))
        first = following
    return bounds


# Users of the enterprise's consumption: each organisation has up to this many, each
# with a stable share of what the organisation's users consume.
_MAX_USERS_PER_ORG = 40


def org_users(org_id: str, headcount: int) -> list[tuple[str, float]]:
    """An organisation's users with their shares of its attributed ACUs (summing to 1):
    a few heavy users and a long tail."""
    count = max(1, min(headcount, _MAX_USERS_PER_ORG))
    weights = [1.0 / (i + 1) ** 1.1 for i in range(count)]
    total = sum(weights)
    return [
        (f"user_{hashlib.sha256(f'user:{org_id}:{i}'.encode()).hexdigest()[:16]}", w / total)
        for i, w in enumerate(weights)
    ]


def unattributed_share(org_id: str) -> float:
    """The share, 4% to 12%, of an organisation's ACUs Devin ties to no user (service
    users and API keys, say): what `total_acus` holds beyond `consumption_by_user`."""
    digest = hashlib.sha256(f"unattributed:{org_id}".encode()).digest()
    return 0.04 + digest[0] / 255 * 0.08


def _segment_share(segment_key: str) -> float:
    """A stable share, 5% to 50%, of the organisation's activity for one segment."""
    digest = hashlib.sha256(segment_key.encode()).digest()
    return 0.05 + (digest[0] / 255) * 0.45


def segment_prs(prs: PullRequests, segment_key: str) -> PullRequests:
    """The pull requests of one segment (some users): the same share as its sessions."""
    share = _segment_share(segment_key)
    merged = math.floor(prs.merged * share)
    closed = math.floor(prs.closed * share)
    opened = math.floor(prs.opened * share)
    return PullRequests(
        created=merged + closed + opened, opened=opened, closed=closed, merged=merged
    )


def segment_totals(totals: Totals, segment_key: str) -> Totals:
    """The sessions of one segment (some users, service users or a playbook): a stable
    share of the organisation's, with every breakdown still adding up and never more
    merged-PR sessions than sessions."""
    share = _segment_share(segment_key)

    def part(counts: dict[str, int]) -> dict[str, int]:
        return {k: math.floor(v * share) for k, v in counts.items()}

    by_origin = part(totals.by_origin)
    created = sum(by_origin.values())
    by_size = part(totals.by_size)
    largest = max(by_size, key=lambda k: totals.by_size[k])
    by_size[largest] += created - sum(by_size.values())
    merged_by_size = {k: min(v, by_size[k]) for k, v in part(totals.merged_by_size).items()}
    return Totals(
        created=created,
        by_origin=by_origin,
        by_size=by_size,
        with_playbook=min(created, math.floor(totals.with_playbook * share)),
        with_search=min(created, math.floor(totals.with_search * share)),
        merged=sum(merged_by_size.values()),
        merged_by_size=merged_by_size,
        average_acus=totals.average_acus if created else 0.0,
    )


# Live sessions: every organisation starts a session every LIVE_SESSION_EVERY_SECONDS
# (at an offset of its own), and session k follows script k % len(LIVE_SCRIPTS) from its
# creation: (status, status_detail, seconds in that state); a last state lasts forever.
LIVE_SESSION_EVERY_SECONDS = 900
LIVE_HISTORY_SECONDS = 3 * 86400
LiveStep = tuple[str, str | None, float]
LIVE_SCRIPTS: tuple[tuple[LiveStep, ...], ...] = (
    (
        ("new", None, 30),
        ("running", "working", 1200),
        ("running", "finished", 60),
        ("exit", None, 0),
    ),
    (
        ("new", None, 30),
        ("running", "working", 600),
        ("running", "waiting_for_user", 2400),
        ("running", "working", 900),
        ("exit", None, 0),
    ),
    (("claimed", None, 60), ("running", "working", 900), ("error", None, 0)),
    (
        ("new", None, 30),
        ("running", "waiting_for_approval", 300),
        ("running", "working", 3000),
        ("exit", None, 0),
    ),
    (("new", None, 30), ("running", "working", 1800), ("suspended", "inactivity", 0)),
    (("new", None, 30), ("running", "working", 5400), ("exit", None, 0)),
    (("new", None, 30), ("running", "working", 600), ("suspended", "out_of_credits", 0)),
    (("new", None, 30), ("running", "waiting_for_user", 7200), ("exit", None, 0)),
    # A pull request merged half an hour after the session ended updates it again.
    (("new", None, 30), ("running", "working", 900), ("exit", None, 1800), ("exit", None, 0)),
    # Task complete, then a follow-up message: it works again and completes again.
    (
        ("new", None, 30),
        ("running", "working", 600),
        ("running", "finished", 900),
        ("running", "working", 600),
        ("running", "finished", 0),
    ),
)
_LIVE_ORIGINS = ("webapp", "slack", "api", "linear", "jira", None)


# Pull requests of live sessions, on every kind of host Devin works with: GitHub (and an
# Enterprise Server), GitLab with subgroups (and a self-managed one), Bitbucket Cloud and
# Server, Azure DevOps (and its older visualstudio.com host). `{n}` is the PR number.
DEMO_PR_URLS = (
    "https://github.com/acme/api/pull/{n}",
    "https://github.com/acme/web/pull/{n}",
    "https://github.com/Acme-Labs/ML-Pipeline/pull/{n}",
    "https://github.acme.example/platform/auth/pull/{n}",
    "https://gitlab.com/acme/platform/infra/-/merge_requests/{n}",
    "https://gitlab.com/acme/platform/billing/payments-service/-/merge_requests/{n}",
    "https://gitlab.acme.example/data/warehouse/dbt-models/-/merge_requests/{n}",
    "https://bitbucket.org/acme/mobile-app/pull-requests/{n}",
    "https://bitbucket.acme.example/projects/OPS/repos/deploy-scripts/pull-requests/{n}",
    "https://dev.azure.com/acme/Payments/_git/ledger/pullrequest/{n}",
    "https://acme.visualstudio.com/Legacy/_git/erp-connector/pullrequest/{n}",
)
# Each organisation works in this many of them.
_REPOS_PER_ORG = 7
_PR_STATES_AFTER = ("merged", "closed")


@dataclass(frozen=True)
class LiveSession:
    """One demo session as it stands at some moment."""

    session_id: str
    org_id: str
    created_at: int
    updated_at: int
    status: str
    status_detail: str | None
    origin: str | None
    acus_consumed: float
    pull_requests: tuple[tuple[str, str], ...] = ()  # (pr_url, pr_state)


def _org_repos(org_id: str) -> list[str]:
    """The PR URL templates an organisation's sessions use: a stable pick of its own."""
    digest = hashlib.sha256(f"repos:{org_id}".encode()).digest()
    order = sorted(range(len(DEMO_PR_URLS)), key=lambda i: (digest[i], i))
    return [DEMO_PR_URLS[i] for i in order[:_REPOS_PER_ORG]]


def session_pull_requests(org_id: str, k: int, *, ended: bool) -> tuple[tuple[str, str], ...]:
    """The pull requests of session k once it has started working: three in four
    sessions have one, one in six of those a second in another repository; open while the
    session runs, merged or closed once it has ended."""
    if k % 4 == 3:
        return ()
    repos = _org_repos(org_id)
    state = _PR_STATES_AFTER[k % 2] if ended else "open"
    first = (k * 5 + k // 7) % len(repos)
    found = [(repos[first].format(n=1000 + k), state)]
    if k % 6 == 1:
        found.append((repos[(first + 1) % len(repos)].format(n=2000 + k), state))
    return tuple(found)


def _live_offset(org_id: str) -> int:
    digest = hashlib.sha256(f"live:{org_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % LIVE_SESSION_EVERY_SECONDS


def live_session(org_id: str, k: int, now: float) -> LiveSession | None:
    """Session k of `org_id` as it stands at `now` (None before it is created)."""
    created = k * LIVE_SESSION_EVERY_SECONDS + _live_offset(org_id)
    if created > now:
        return None
    script = LIVE_SCRIPTS[k % len(LIVE_SCRIPTS)]
    began, worked = float(created), 0.0
    for index, (status, detail, seconds) in enumerate(script):
        last = index == len(script) - 1
        if last or now < began + seconds:
            if status == "running":
                worked += now - began
            working = status not in ("new", "claimed")
            ended = status in ("exit", "error", "suspended") or detail == "finished"
            return LiveSession(
                session_id=f"devin-{org_id}-{k}",
                org_id=org_id,
                created_at=created,
                updated_at=int(began),
                status=status,
                status_detail=detail,
                origin=_LIVE_ORIGINS[k % len(_LIVE_ORIGINS)],
                acus_consumed=round(worked / 600.0, 2),
                pull_requests=session_pull_requests(org_id, k, ended=ended) if working else (),
            )
        if status == "running":
            worked += seconds
        began += seconds
    raise AssertionError("unreachable: a script's last state lasts forever")


def live_sessions(org_id: str, now: float) -> list[LiveSession]:
    """The sessions of `org_id` created in the last LIVE_HISTORY_SECONDS, oldest first."""
    first = max(
        0,
        math.ceil((now - LIVE_HISTORY_SECONDS - _live_offset(org_id)) / LIVE_SESSION_EVERY_SECONDS),
    )
    last = math.floor((now - _live_offset(org_id)) / LIVE_SESSION_EVERY_SECONDS)
    found = (live_session(org_id, k, now) for k in range(first, last + 1))
    return [s for s in found if s is not None]
