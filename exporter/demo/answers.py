"""The demo's answers, one per row of the endpoint table, keyed by the row's name.

`ANSWERS` is the registry the routes read: adding an endpoint of a known shape to
`exporter/devin/table.py` means adding its answer here and nothing else in the demo (a
test fails naming any row without an answer, and any answer that names no row).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from aiohttp import web

from exporter.demo.account import DEMO_SESSION_LIMIT, DemoAccount
from exporter.demo.bodies import (
    active_users_body,
    category_body,
    consumption_body,
    iso,
    pr_body,
    session_body,
    session_item,
    sum_prs,
    sum_totals,
)
from exporter.demo.data import (
    OrgModel,
    Period,
    billing_cycles,
    billing_days,
    live_sessions,
    org_users,
    periods,
    segment_prs,
    segment_totals,
    unattributed_share,
)
from exporter.demo.query import (
    MAX_BUCKETS,
    PAGE_DEFAULT,
    Clock,
    cursor_page,
    optional_range,
    segment_key,
    session_wanted,
    thresholds,
    time_range,
    too_many,
    v2_range,
)
from exporter.devin.table import Endpoint

# How far back the demo's billing cycles are listed.
_HISTORY_SECONDS: Final = 400 * 86400
_PERIODS: Final[dict[str, Period]] = {"dau": "dau", "wau": "wau", "mau": "mau"}
# The filters that narrow a session count to a segment of its users or playbooks.
_SESSION_SEGMENT: Final = ("user_ids", "service_user_ids", "playbook_id")

Body = Any  # a JSON body, or the error response that replaces it
"""What an answer gives: the JSON body, or an error response (422) instead."""


@dataclass(frozen=True)
class Ask:
    """One request to a Devin route: the org of its path, its `org_ids`, and what the
    demo knows (the account as it stands, and its clock)."""

    request: web.Request
    org_id: str
    org_ids: list[str]
    account: DemoAccount
    clock: Clock

    def ids(self) -> list[str]:
        """The known ones of `org_ids`, or every organisation's id when none are given."""
        models = self.account.models
        return [o for o in self.org_ids if o in models] if self.org_ids else sorted(models)

    def selected(self) -> list[OrgModel]:
        """The models of `ids()`."""
        return [self.account.models[o] for o in self.ids()]

    def everyone(self) -> list[OrgModel]:
        """Every organisation's model, whatever `org_ids` says."""
        return [self.account.models[o] for o in sorted(self.account.models)]

    def own(self) -> list[OrgModel]:
        """The model of the organisation in the path."""
        return [self.account.models[self.org_id]]


Answer = Callable[[Ask], Body]


def answer_of(row: Endpoint[Any]) -> Answer:
    """The answer of a row; a row without one is a LookupError that names it."""
    try:
        return ANSWERS[row.name]
    except KeyError:
        raise LookupError(f"{row.name}: the demo has no answer for this row") from None


# Metrics over a required range: one organisation's, or the enterprise's (`org_ids`).


def _org_metric(ask: Ask, body: Callable[[OrgModel, float, float], Any]) -> Body:
    """A metrics endpoint of one organisation over a required range."""
    window = time_range(ask.request, ask.clock)
    if isinstance(window, web.Response):
        return window
    return body(ask.account.models[ask.org_id], *window)


def _enterprise_metric(ask: Ask, body: Callable[[list[OrgModel], float, float], Any]) -> Body:
    """An enterprise metrics endpoint over a required range and optional `org_ids`."""
    window = time_range(ask.request, ask.clock)
    if isinstance(window, web.Response):
        return window
    return body(ask.selected(), *window)


def _org_sessions(ask: Ask) -> Body:
    # user_ids, service_user_ids and playbook_id narrow the count to a segment.
    segment = segment_key(ask.request, _SESSION_SEGMENT)

    def body(model: OrgModel, start: float, end: float) -> dict[str, Any]:
        totals = model.totals(start, end)
        return session_body(segment_totals(totals, segment) if segment else totals)

    return _org_metric(ask, body)


def _org_prs(ask: Ask) -> Body:
    now = ask.clock()
    return _org_metric(ask, lambda model, start, end: pr_body(model.pull_requests(start, end, now)))


def _org_searches(ask: Ask) -> Body:
    return _org_metric(
        ask, lambda model, start, end: {"searches_created_count": model.searches(start, end)}
    )


def _org_active_users(ask: Ask) -> Body:
    minimums = thresholds(ask.request)
    return _org_metric(
        ask, lambda model, start, end: active_users_body([model], start, end, minimums)
    )


def _enterprise_sessions(ask: Ask) -> Body:
    segment = segment_key(ask.request, _SESSION_SEGMENT)

    def body(models: list[OrgModel], start: float, end: float) -> dict[str, Any]:
        totals = [m.totals(start, end) for m in models]
        if segment:
            totals = [segment_totals(t, segment) for t in totals]
        return session_body(sum_totals(totals))

    return _enterprise_metric(ask, body)


def _enterprise_prs(ask: Ask) -> Body:
    now = ask.clock()
    return _enterprise_metric(
        ask,
        lambda models, start, end: pr_body(
            sum_prs([m.pull_requests(start, end, now) for m in models])
        ),
    )


def _enterprise_searches(ask: Ask) -> Body:
    return _enterprise_metric(
        ask,
        lambda models, start, end: {
            "searches_created_count": sum(m.searches(start, end) for m in models)
        },
    )


def _enterprise_active_users(ask: Ask) -> Body:
    minimums = thresholds(ask.request)
    return _enterprise_metric(
        ask, lambda models, start, end: active_users_body(models, start, end, minimums)
    )


def _enterprise_categories(ask: Ask) -> Body:
    return _enterprise_metric(ask, category_body)


# Generic shapes over a set of organisations: dau/wau/mau, daily consumption, usage.


def _buckets(ask: Ask, models: Sequence[OrgModel]) -> Body:
    """dau/wau/mau: one item per period that overlaps the range, oldest first."""
    window = time_range(ask.request, ask.clock)
    if isinstance(window, web.Response):
        return window
    start, end = window
    bounds = periods(_PERIODS[ask.request.match_info["period"]], start, end)
    if len(bounds) > MAX_BUCKETS:
        return too_many("time_after", "periods")
    minimums = thresholds(ask.request)
    return [
        {
            "active_users": sum(
                m.active_users(max(a, start), min(b, end), **minimums) for m in models
            ),
            "start_time": a,
            "end_time": b - 1,  # inclusive, as in Devin's examples
        }
        for a, b in bounds
    ]


def _consumption(ask: Ask, models: Sequence[OrgModel]) -> Body:
    window = optional_range(ask.request, ask.clock)
    if isinstance(window, web.Response):
        return window
    if len(billing_days(*window)) > MAX_BUCKETS:
        return too_many("time_after", "days")
    return consumption_body([m.daily_consumption(*window) for m in models])


def _usage(ask: Ask, models: Sequence[OrgModel]) -> Body:
    """Devin's usage summary: the same counts the metrics endpoints give, summed."""
    window = optional_range(ask.request, ask.clock)
    if isinstance(window, web.Response):
        return window
    start, end = window
    now = ask.clock()
    prs = sum_prs([m.pull_requests(start, end, now) for m in models])
    return {
        "sessions_count": sum(m.totals(start, end).created for m in models),
        "searches_count": sum(m.searches(start, end) for m in models),
        "prs_created_count": prs.created,
        "prs_merged_count": prs.merged,
    }


# The enterprise's listings (v3), paged by cursor.


def _cycles(ask: Ask) -> Body:
    """Monthly cycles from the 5th at 08:00 UTC, oldest first, up to the current one."""
    now = ask.clock()
    rows = [
        (f"{start:012d}", {"after": start, "before": end})
        for start, end in billing_cycles(now - _HISTORY_SECONDS, now)
    ]
    return cursor_page(ask.request, "cycle", rows)


def _acu_limits(ask: Ask) -> Body:
    """The enterprise's limit, then each organisation's that has one, by org id."""
    account = ask.account
    rows: list[tuple[str, dict[str, Any]]] = []
    if account.enterprise_cycle_limit is not None:
        limit = account.enterprise_cycle_limit
        rows.append(("", {"cycle_acu_limit": limit, "scope": "enterprise"}))
    rows += [
        (org, {"cycle_acu_limit": limit, "scope": "org", "org_id": org})
        for org, limit in sorted(account.cycle_limits.items())
    ]
    return cursor_page(ask.request, "limit", rows)


def _organizations(ask: Ask) -> Body:
    """The account's organisations, ordered by id."""
    account = ask.account
    rows = [
        (
            o.id,
            {
                "org_id": o.id,
                "name": o.name,
                "created_at": account.models[o.id].created_at,
                "updated_at": account.models[o.id].created_at,
                "max_cycle_acu_limit": account.cycle_limits.get(o.id),
                "max_session_acu_limit": DEMO_SESSION_LIMIT,
            },
        )
        for o in sorted(account.orgs, key=lambda o: o.id)
    ]
    return cursor_page(ask.request, "org", rows)


def _session_list(ask: Ask, org_ids: list[str]) -> Body:
    """The sessions of `org_ids` that pass the request's filters, by creation then id:
    every session of the last days, as it stands now."""
    now = ask.clock()
    rows = [
        (f"{s.created_at:012d}:{s.session_id}", session_item(s))
        for org_id in org_ids
        for s in live_sessions(org_id, now)
        if session_wanted(ask.request, s)
    ]
    return cursor_page(ask.request, "session", sorted(rows, key=lambda row: row[0]))


# Devin's enterprise endpoints (v2).


def _v2_sessions(ask: Ask) -> Body:
    window = v2_range(ask.request, ask.clock)
    if isinstance(window, web.Response):
        return window
    segment = segment_key(ask.request, ("user_ids",))
    totals = [m.totals(*window) for m in ask.selected()]
    if segment:
        totals = [segment_totals(t, segment) for t in totals]
    return {"sessions_count": sum(t.created for t in totals)}


def _v2_prs(ask: Ask) -> Body:
    """v2's counts: opened means opened in the period, so it is v3's created."""
    now = ask.clock()
    window = v2_range(ask.request, ask.clock)
    if isinstance(window, web.Response):
        return window
    segment = segment_key(ask.request, ("user_ids",))
    prs = sum_prs([m.pull_requests(*window, now) for m in ask.selected()])
    if segment:
        prs = segment_prs(prs, segment)
    return {"prs_opened": prs.created, "prs_closed": prs.closed, "prs_merged": prs.merged}


def _v2_consumption(ask: Ask) -> Body:
    """By billing day (`YYYY-MM-DD` of its 08:00 UTC start), organisation and user;
    filtered by `org_ids`, only Devin's own ACUs count, as the v2 docs say. Of each
    organisation's ACUs a share is tied to no user: the total exceeds the users' sum."""
    window = v2_range(ask.request, ask.clock)
    if isinstance(window, web.Response):
        return window
    if len(billing_days(*window)) > MAX_BUCKETS:
        return too_many("start", "days")
    by_date: dict[str, float] = {}
    by_org: dict[str, float] = {}
    by_user: dict[str, float] = {}
    for org_id in ask.ids():
        model = ask.account.models[org_id]
        for day in model.daily_consumption(*window):
            acus = day.by_product["devin"] if ask.org_ids else day.acus
            key = datetime.fromtimestamp(day.date, UTC).strftime("%Y-%m-%d")
            by_date[key] = by_date.get(key, 0.0) + acus
            by_org[org_id] = by_org.get(org_id, 0.0) + acus
        attributed = by_org.get(org_id, 0.0) * (1 - unattributed_share(org_id))
        for user_id, share in org_users(org_id, model.headcount):
            by_user[user_id] = by_user.get(user_id, 0.0) + attributed * share
    return {
        "total_acus": round(sum(by_org.values()), 3),
        "consumption_by_date": {k: round(v, 3) for k, v in by_date.items()},
        "consumption_by_org_id": {k: round(v, 3) for k, v in by_org.items()},
        # Rounded down: the users never add up to more than the total.
        "consumption_by_user": {
            k: math.floor(v * 1000) / 1000 for k, v in by_user.items() if v >= 0.001
        },
    }


def _v2_cycles(ask: Ask) -> Body:
    """Every cycle, oldest first, its end inclusive (the cycle's last second, as the
    older v2 page's example has it)."""
    now = ask.clock()
    return [
        {"start": iso(start), "end": iso(end - 1)}
        for start, end in billing_cycles(now - _HISTORY_SECONDS, now)
    ]


def _v2_organizations(ask: Ask) -> Body:
    skip = int(ask.request.query.get("skip", "0"))
    limit = int(ask.request.query.get("limit", str(PAGE_DEFAULT)))
    orgs = sorted(ask.account.orgs, key=lambda o: o.id)
    items = []
    for org in orgs[skip : skip + limit]:
        model = ask.account.models[org.id]
        admins = max(1, model.headcount // 20)
        items.append(
            {
                "org_id": org.id,
                "org_name": org.name,
                "created_at": iso(model.created_at),
                "max_cycle_acu_limit": ask.account.cycle_limits.get(org.id),
                "max_session_acu_limit": DEMO_SESSION_LIMIT,
                "org_admin_count": admins,
                "org_member_count": model.headcount,
                "org_user_count": model.headcount,
            }
        )
    more = skip + limit < len(orgs)
    return {
        "items": items,
        "total": len(orgs),
        "skip": skip,
        "limit": limit,
        "has_more": more,
        "next_cursor": skip + limit if more else None,
    }


ANSWERS: Final[Mapping[str, Answer]] = MappingProxyType(
    {
        # Organisation endpoints (v3).
        "v3_org_sessions": _org_sessions,
        "v3_org_prs": _org_prs,
        "v3_org_searches": _org_searches,
        "v3_org_active_users": _org_active_users,
        "v3_org_active_user_buckets": lambda ask: _buckets(ask, ask.own()),
        "v3_org_consumption_daily": lambda ask: _consumption(ask, ask.own()),
        "v3_org_usage": lambda ask: _usage(ask, ask.own()),
        "v3_org_sessions_list": lambda ask: _session_list(ask, [ask.org_id]),
        # Enterprise endpoints (v3); the whole enterprise's consumption and usage take
        # no organisation filter.
        "v3_enterprise_sessions": _enterprise_sessions,
        "v3_enterprise_prs": _enterprise_prs,
        "v3_enterprise_searches": _enterprise_searches,
        "v3_enterprise_active_users": _enterprise_active_users,
        "v3_enterprise_active_user_buckets": lambda ask: _buckets(ask, ask.selected()),
        "v3_enterprise_sessions_by_category": _enterprise_categories,
        "v3_enterprise_consumption_daily": lambda ask: _consumption(ask, ask.everyone()),
        "v3_enterprise_org_consumption_daily": lambda ask: _consumption(ask, ask.own()),
        "v3_enterprise_usage": lambda ask: _usage(ask, ask.everyone()),
        "v3_enterprise_org_usage": lambda ask: _usage(ask, ask.own()),
        "v3_enterprise_consumption_cycles": _cycles,
        "v3_enterprise_acu_limits": _acu_limits,
        "v3_enterprise_organizations": _organizations,
        "v3_enterprise_sessions_list": lambda ask: _session_list(ask, ask.ids()),
        # Enterprise endpoints (v2): one consumption answer serves both of its rows.
        "v2_enterprise_sessions": _v2_sessions,
        "v2_enterprise_prs": _v2_prs,
        "v2_enterprise_consumption_daily": _v2_consumption,
        "v2_enterprise_consumption_cycles": _v2_cycles,
        "v2_enterprise_user_consumption": _v2_consumption,
        "v2_enterprise_organizations": _v2_organizations,
    }
)
