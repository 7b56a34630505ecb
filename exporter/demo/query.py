"""What a demo request asks about: ranges, filters and pages (the contract has checked
the parameters' names and types already; these check what it cannot, such as order)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from exporter.demo.data import LiveSession, billing_cycles
from exporter.demo.errors import invalid

Clock = Callable[[], float]

# Daily and per-period answers cover at most this many days or periods (else 422).
MAX_BUCKETS: Final = 1000
# Page sizes: v3 `first` and v2 `limit` default to 100 (the contract bounds them, 1 to 200).
PAGE_DEFAULT: Final = 100


def too_many(name: str, what: str) -> web.Response:
    """The 422 of a range that covers more than `MAX_BUCKETS` days or periods."""
    return invalid(["query", name], f"The range covers more than {MAX_BUCKETS} {what}", "too_long")


def time_range(request: web.Request, clock: Clock) -> tuple[float, float] | web.Response:
    """The required `time_after`/`time_before`, the end clipped to the clock."""
    after, before = int(request.query["time_after"]), int(request.query["time_before"])
    if after > before:
        return invalid(["query", "time_after"], "time_after must be <= time_before", "value_error")
    return after, min(before, clock())


def optional_range(request: web.Request, clock: Clock) -> tuple[float, float] | web.Response:
    """Optional `time_after`/`time_before`: by default the current billing cycle so far."""
    now = clock()
    after = request.query.get("time_after")
    before = request.query.get("time_before")
    start = float(after) if after is not None else cycle_start(clock)
    if before is not None and start > float(before):
        return invalid(["query", "time_after"], "time_after must be <= time_before", "value_error")
    return start, max(start, min(float(before) if before is not None else now, now))


def v2_range(request: web.Request, clock: Clock) -> tuple[float, float] | web.Response:
    """`start`/`end` (or `start_date`/`end_date`): by default the current billing
    cycle so far, as the v2 reference says."""
    start = _datetime_param(request, "start", "start_date")
    end = _datetime_param(request, "end", "end_date")
    now = clock()
    begin = start.timestamp() if start else cycle_start(clock)
    finish = min(end.timestamp() if end else now, now)
    if begin > finish:
        return invalid(["query", "start"], "start must be before end", "value_error")
    return begin, finish


def cycle_start(clock: Clock) -> float:
    """When the current billing cycle began."""
    now = clock()
    return float(billing_cycles(now, now)[0][0])


def _datetime_param(request: web.Request, *names: str) -> datetime | None:
    """The first of `names` given, as an aware date-time (the contract checked its form)."""
    for name in names:
        raw = request.query.get(name)
        if raw is not None:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def segment_key(request: web.Request, names: Sequence[str]) -> str:
    """A stable key of a request's user or playbook filters ("" when there are none)."""
    return "|".join(
        f"{name}={','.join(sorted(request.query.getall(name, [])))}"
        for name in names
        if request.query.getall(name, [])
    )


def thresholds(request: web.Request) -> dict[str, int]:
    """`min_sessions` and `min_searches`, 1 when not given."""
    return {name: int(request.query.get(name, "1")) for name in ("min_sessions", "min_searches")}


def session_wanted(request: web.Request, session: LiveSession) -> bool:
    """Whether a session passes the list's filters (the bounds are inclusive)."""
    query = request.query
    for name, value in (("created", session.created_at), ("updated", session.updated_at)):
        after, before = query.get(f"{name}_after"), query.get(f"{name}_before")
        if (after is not None and value < int(after)) or (
            before is not None and value > int(before)
        ):
            return False
    wanted = {
        "session_ids": session.session_id,
        "origins": session.origin or "",
        "playbook_id": "",  # no demo session runs a playbook or a schedule
        "schedule_id": "",
    }
    for name, text in wanted.items():
        if name in query and text not in query.getall(name):
            return False
    return "tags" not in query or "demo" in query.getall("tags")


def _encode_cursor(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def _decode_cursor(kind: str, cursor: str) -> str | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    found, _, value = text.partition(":")
    return value if found == kind and value else None


def cursor_page(
    request: web.Request, kind: str, rows: list[tuple[str, dict[str, Any]]]
) -> dict[str, Any] | web.Response:
    """One v3 page of `rows` (sort key, item), keys ascending: `first`, and `after` a cursor.

    The cursor holds the last key sent, so rows added or removed between pages neither
    repeat nor vanish from the pages still to come.
    """
    first = int(request.query.get("first", str(PAGE_DEFAULT)))
    remaining = rows
    after = request.query.get("after")
    if after is not None:
        last = _decode_cursor(kind, after)
        if last is None:
            return invalid(["query", "after"], "Invalid cursor", "value_error")
        remaining = [row for row in rows if row[0] > last]
    page = remaining[:first]
    more = len(remaining) > first
    return {
        "items": [item for _, item in page],
        "has_next_page": more,
        "end_cursor": _encode_cursor(kind, page[-1][0]) if more else None,
        "total": len(rows),
    }
