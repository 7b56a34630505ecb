"""The shapes of the demo's answers, built from the demo data (no request in sight)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from exporter.demo.data import (
    CATEGORIES,
    DayConsumption,
    LiveSession,
    OrgModel,
    PullRequests,
    Totals,
)


def session_body(totals: Totals) -> dict[str, Any]:
    return {
        "sessions_created_count": totals.created,
        "sessions_created_by_size": totals.by_size,
        "sessions_created_by_origin": totals.by_origin,
        "sessions_created_with_playbook_count": totals.with_playbook,
        "sessions_created_with_search_count": totals.with_search,
        "sessions_with_merged_prs_count": totals.merged,
        "sessions_with_merged_prs_by_size": totals.merged_by_size,
        "avg_acus_per_session": totals.average_acus,
    }


def session_item(session: LiveSession) -> dict[str, Any]:
    """A demo session as the list's SessionResponse."""
    return {
        "session_id": session.session_id,
        "org_id": session.org_id,
        "url": f"https://app.devin.ai/sessions/{session.session_id}",
        "status": session.status,
        "status_detail": session.status_detail,
        "origin": session.origin,
        "acus_consumed": session.acus_consumed,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "pull_requests": [
            {"pr_url": url, "pr_state": state} for url, state in session.pull_requests
        ],
        "tags": ["demo"],
        "title": "Demo session",
        "user_id": "user-demo",
        "is_archived": False,
    }


def pr_body(prs: PullRequests) -> dict[str, int]:
    return {
        "prs_created_count": prs.created,
        "prs_opened_count": prs.opened,
        "prs_closed_count": prs.closed,
        "prs_merged_count": prs.merged,
    }


def sum_prs(all_prs: Sequence[PullRequests]) -> PullRequests:
    return PullRequests(
        created=sum(p.created for p in all_prs),
        opened=sum(p.opened for p in all_prs),
        closed=sum(p.closed for p in all_prs),
        merged=sum(p.merged for p in all_prs),
    )


def sum_totals(all_totals: Sequence[Totals]) -> Totals:
    """Sessions of several organisations as one; the average weighted by sessions."""

    def add(name: str) -> dict[str, int]:
        summed: dict[str, int] = {}
        for totals in all_totals:
            for key, n in getattr(totals, name).items():
                summed[key] = summed.get(key, 0) + n
        return summed

    created = sum(t.created for t in all_totals)
    acus = sum(t.created * t.average_acus for t in all_totals)
    return Totals(
        created=created,
        by_origin=add("by_origin"),
        by_size=add("by_size"),
        with_playbook=sum(t.with_playbook for t in all_totals),
        with_search=sum(t.with_search for t in all_totals),
        merged=sum(t.merged for t in all_totals),
        merged_by_size=add("merged_by_size"),
        average_acus=round(acus / created, 3) if created else 0.0,
    )


def consumption_body(per_org: Sequence[list[DayConsumption]]) -> dict[str, Any]:
    """The v3 ConsumptionResponse of one or more organisations' days (all the same days)."""
    days: dict[int, dict[str, float]] = {}
    for org_days in per_org:
        for day in org_days:
            summed = days.setdefault(day.date, {})
            for product, acus in day.by_product.items():
                summed[product] = summed.get(product, 0.0) + acus
    day_acus = {date: round(sum(products.values()), 3) for date, products in days.items()}
    by_date = [
        {
            "date": date,
            "acus": day_acus[date],
            "acus_by_product": {p: round(a, 3) for p, a in products.items()},
        }
        for date, products in sorted(days.items())
    ]
    return {"total_acus": round(sum(day_acus.values()), 3), "consumption_by_date": by_date}


def category_body(models: Sequence[OrgModel], start: float, end: float) -> dict[str, Any]:
    """Sessions and ACUs per category: a session's ACUs are its organisation's average."""
    sessions = {name: dict.fromkeys(subs, 0) for name, subs in CATEGORIES.items()}
    acus = {name: dict.fromkeys(subs, 0.0) for name, subs in CATEGORIES.items()}
    for model in models:
        average = model.totals(start, end).average_acus
        for name, subs in model.categories(start, end).items():
            for sub, n in subs.items():
                sessions[name][sub] += n
                acus[name][sub] += n * average
    categories = []
    for name, subs in CATEGORIES.items():
        subcategories = [
            {
                "subcategory_id": f"{name}.{sub}",
                "display_name": sub.replace("_", " ").capitalize(),
                "sessions_count": sessions[name][sub],
                "acus": round(acus[name][sub], 3),
            }
            for sub in subs
        ]
        categories.append(
            {
                "category": name,
                "sessions_count": sum(sessions[name].values()),
                "acus": round(sum(acus[name].values()), 3),
                "subcategories": subcategories,
            }
        )
    return {"categories": categories}


def active_users_body(
    models: Sequence[OrgModel], start: float, end: float, thresholds: dict[str, int]
) -> dict[str, Any]:
    """Users are per organisation in the demo: the enterprise's are the sum."""
    users = sum(m.active_users(start, end, **thresholds) for m in models)
    return {"active_users": users, "start_time": int(start), "end_time": int(end)}


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
