"""The demo Devin API: Devin's metrics, consumption and organisation endpoints, its auth
rules, and injectable faults.

Keys: a service user key (`cog_`) in `service_user_keys` holds the org-level permissions
(metrics and consumption) on its organisations; one in `enterprise_service_user_keys` holds
the account-level ones, which every organisation inherits; `enterprise_keys` are enterprise
admins' personal keys (`apk_user_`), for v2 only. 401: no or unknown key. 403: the wrong
kind of key, or an organisation the key lacks. 404: an organisation nobody has. 422: the
FastAPI HTTPValidationError shape. The `/v3/enterprise/*` endpoints answer 401 and 403 as
RFC 9457 problem details (which keep `detail`), as Devin's newer pages document.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from exporter.client import (
    V2_ENTERPRISE_CONSUMPTION_DAILY,
    V2_ENTERPRISE_ORGANIZATIONS,
    V2_ENTERPRISE_PRS,
    V2_ENTERPRISE_SESSIONS,
    V3_ENTERPRISE_ACTIVE_USERS,
    V3_ENTERPRISE_CONSUMPTION_CYCLES,
    V3_ENTERPRISE_CONSUMPTION_DAILY,
    V3_ENTERPRISE_ORGANIZATIONS,
    V3_ENTERPRISE_PRS,
    V3_ENTERPRISE_SEARCHES,
    V3_ENTERPRISE_SESSIONS,
    V3_ENTERPRISE_SESSIONS_BY_CATEGORY,
    V3_ORG_ACTIVE_USER_BUCKETS,
    V3_ORG_ACTIVE_USERS,
    V3_ORG_CONSUMPTION_DAILY,
    V3_ORG_PRS,
    V3_ORG_SEARCHES,
    V3_ORG_SESSIONS,
)
from exporter.demo.data import (
    CATEGORIES,
    DayConsumption,
    OrgModel,
    Period,
    PullRequests,
    Totals,
    billing_cycles,
    billing_days,
    periods,
    segment_totals,
)
from exporter.demo.faults import Fault, FaultPlan, PlanEntry

# v2 counts without a start date go back this far.
_HISTORY_SECONDS: Final = 400 * 86400
# A stalled answer hangs this long at most, or until the client hangs up.
_STALL_SECONDS: Final = 3600.0
# Daily and per-period answers cover at most this many days or periods (else 422).
_MAX_BUCKETS: Final = 1000
# Page sizes: v3 `first` and v2 `limit`, 1 to 200, 100 by default.
_PAGE_DEFAULT: Final = 100
_PAGE_MAX: Final = 200
_PERIODS: Final[dict[str, Period]] = {"dau": "dau", "wau": "wau", "mau": "mau"}

Clock = Callable[[], float]


@dataclass(frozen=True)
class DemoOrg:
    id: str
    name: str


@dataclass
class DemoAccount:
    """Who exists in the demo enterprise and which key may see what."""

    orgs: list[DemoOrg]
    # cog_ key -> org ids it holds org-level permissions on (ViewOrgMetrics, ViewOrgConsumption)
    service_user_keys: dict[str, set[str]]
    enterprise_keys: set[str]  # apk_user_ keys of enterprise admins (v2)
    seed: int = 1
    extra_origins: Sequence[str] = ()
    # cog_ keys with account-level permissions (ViewAccountMetrics, ViewAccountConsumption,
    # ManageOrganizations): every /v3/enterprise endpoint, and every organisation's.
    enterprise_service_user_keys: set[str] = field(default_factory=set)
    models: dict[str, OrgModel] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.models = {o.id: OrgModel(self.seed, o.id, self.extra_origins) for o in self.orgs}

    def add_org(self, org: DemoOrg) -> None:
        """A new organisation, with its data; keys that held every organisation get it too."""
        if org.id in self.models:
            raise ValueError(f"organisation {org.id} exists")
        everyone = set(self.models)
        for orgs in self.service_user_keys.values():
            if orgs >= everyone:
                orgs.add(org.id)
        self.orgs.append(org)
        self.models[org.id] = OrgModel(self.seed, org.id, self.extra_origins)

    def remove_org(self, org_id: str) -> None:
        """Forget an organisation, its data and every key's permission on it."""
        if org_id not in self.models:
            raise KeyError(org_id)
        self.orgs = [o for o in self.orgs if o.id != org_id]
        del self.models[org_id]
        for orgs in self.service_user_keys.values():
            orgs.discard(org_id)

    @classmethod
    def generate(
        cls, org_count: int = 3, *, seed: int = 1, extra_origins: Sequence[str] = ()
    ) -> DemoAccount:
        """`org_count` organisations, one service-user key for all, one with account-level
        permissions, and one enterprise admin key."""
        names = ["Platform", "Payments", "Mobile", "Data", "Growth", "Infra", "Search", "Ads"]
        orgs = [
            DemoOrg(id=f"org-demo{i:04d}", name=f"{names[i % len(names)]} {i // len(names) or ''}")
            for i in range(org_count)
        ]
        orgs = [DemoOrg(o.id, o.name.strip()) for o in orgs]
        return cls(
            orgs=orgs,
            service_user_keys={f"cog_{secrets.token_urlsafe(24)}": {o.id for o in orgs}},
            enterprise_keys={f"apk_user_{secrets.token_urlsafe(24)}"},
            seed=seed,
            extra_origins=tuple(extra_origins),
            enterprise_service_user_keys={f"cog_{secrets.token_urlsafe(24)}"},
        )

    @property
    def service_user_key(self) -> str:
        return next(iter(self.service_user_keys))

    @property
    def enterprise_key(self) -> str:
        return next(iter(self.enterprise_keys))

    @property
    def enterprise_service_user_key(self) -> str:
        return next(iter(self.enterprise_service_user_keys))

    def knows(self, key: str) -> bool:
        return (
            key in self.service_user_keys
            or key in self.enterprise_keys
            or key in self.enterprise_service_user_keys
        )


def _error(status: int, detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


def _invalid(loc: list[str], msg: str, kind: str) -> web.Response:
    body = {"detail": [{"loc": loc, "msg": msg, "type": kind}]}
    return web.json_response(body, status=422)


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _int_param(request: web.Request, name: str) -> int | web.Response:
    raw = request.query.get(name)
    if raw is None:
        return _invalid(["query", name], "Field required", "missing")
    try:
        return int(raw)
    except ValueError:
        return _invalid(
            ["query", name],
            "Input should be a valid integer, unable to parse string as an integer",
            "int_parsing",
        )


def _datetime_param(request: web.Request, *names: str) -> datetime | web.Response | None:
    for name in names:
        raw = request.query.get(name)
        if raw is None:
            continue
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return _invalid(
                ["query", name], "Input should be a valid datetime", "datetime_from_date_parsing"
            )
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _session_body(totals: Totals) -> dict[str, Any]:
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


def _problem(status: int, title: str, detail: str) -> web.Response:
    """An RFC 9457 problem, keeping `detail` as Devin's ProblemDetail does."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.json_response(body, status=status, content_type="application/problem+json")


def _optional_int_param(request: web.Request, name: str) -> int | web.Response | None:
    return None if name not in request.query else _int_param(request, name)


def _bounded_int_param(
    request: web.Request, name: str, default: int, low: int, high: int | None = None
) -> int | web.Response:
    value = _optional_int_param(request, name)
    if value is None:
        return default
    if isinstance(value, web.Response):
        return value
    if value < low:
        return _invalid(
            ["query", name], f"Input should be greater than or equal to {low}", "greater_than_equal"
        )
    if high is not None and value > high:
        return _invalid(
            ["query", name], f"Input should be less than or equal to {high}", "less_than_equal"
        )
    return value


def _org_ids_param(request: web.Request) -> list[str]:
    """`org_ids` as a repeated key (`org_ids` or `org_ids[]`), each maybe comma-separated."""
    raw = request.query.getall("org_ids", []) or request.query.getall("org_ids[]", [])
    return [part for value in raw for part in value.split(",") if part]


def _too_many(name: str, what: str) -> web.Response:
    return _invalid(
        ["query", name], f"The range covers more than {_MAX_BUCKETS} {what}", "too_long"
    )


def _encode_cursor(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def _decode_cursor(kind: str, cursor: str) -> str | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    found, _, value = text.partition(":")
    return value if found == kind and value else None


def _cursor_page(
    request: web.Request, kind: str, rows: list[tuple[str, dict[str, Any]]]
) -> dict[str, Any] | web.Response:
    """One v3 page of `rows` (sort key, item), keys ascending: `first`, and `after` a cursor.

    The cursor holds the last key sent, so rows added or removed between pages neither
    repeat nor vanish from the pages still to come.
    """
    first = _bounded_int_param(request, "first", _PAGE_DEFAULT, 1, _PAGE_MAX)
    if isinstance(first, web.Response):
        return first
    remaining = rows
    after = request.query.get("after")
    if after is not None:
        last = _decode_cursor(kind, after)
        if last is None:
            return _invalid(["query", "after"], "Invalid cursor", "value_error")
        remaining = [row for row in rows if row[0] > last]
    page = remaining[:first]
    more = len(remaining) > first
    return {
        "items": [item for _, item in page],
        "has_next_page": more,
        "end_cursor": _encode_cursor(kind, page[-1][0]) if more else None,
        "total": len(rows),
    }


def _pr_body(prs: PullRequests) -> dict[str, int]:
    return {
        "prs_created_count": prs.created,
        "prs_opened_count": prs.opened,
        "prs_closed_count": prs.closed,
        "prs_merged_count": prs.merged,
    }


def _sum_prs(all_prs: Sequence[PullRequests]) -> PullRequests:
    return PullRequests(
        created=sum(p.created for p in all_prs),
        opened=sum(p.opened for p in all_prs),
        closed=sum(p.closed for p in all_prs),
        merged=sum(p.merged for p in all_prs),
    )


def _sum_totals(all_totals: Sequence[Totals]) -> Totals:
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


def _consumption_body(per_org: Sequence[list[DayConsumption]]) -> dict[str, Any]:
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


def _category_body(models: Sequence[OrgModel], start: float, end: float) -> dict[str, Any]:
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


def _active_users_body(
    models: Sequence[OrgModel], start: float, end: float, thresholds: dict[str, int]
) -> dict[str, Any]:
    """Users are per organisation in the demo: the enterprise's are the sum."""
    users = sum(m.active_users(start, end, **thresholds) for m in models)
    return {"active_users": users, "start_time": int(start), "end_time": int(end)}


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _NewOrg(BaseModel):
    """Body of `POST /_demo/orgs`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    name: str = Field(max_length=256)


def _faulty_body(body: Any, kind: str) -> bytes:
    """The body as a fault leaves it; a list body (dau/wau/mau) has each item changed."""
    text = json.dumps(body).encode()
    if kind == "malformed":
        return b'{"sessions_count": 12,, "oops": ]'
    if kind == "truncated":
        return text[: len(text) // 2]
    if kind in ("missing_fields", "extra_fields", "new_keys"):
        changed = (
            [_changed(item, kind) for item in body]
            if isinstance(body, list)
            else _changed(body, kind)
        )
        return json.dumps(changed).encode()
    return text


def _changed(body: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == "missing_fields":
        return {k: v for k, v in list(body.items())[1:-1]}
    if kind == "extra_fields":
        return {**body, "new_field": {"nested": [1, 2]}, "note": "added"}
    grown = dict(body)
    for name, new_key in (
        ("sessions_created_by_origin", "devin_cli"),
        ("sessions_created_by_size", "xxl"),
    ):
        if name in grown:
            grown[name] = {**grown[name], new_key: 2}
    return grown


async def _until_disconnected(request: web.Request, limit_seconds: float) -> None:
    """Hang until the client gives up (or the limit passes), so stalls do not pile up.

    aiohttp does not cancel a handler whose client went away, so a plain sleep would hold
    every stalled request until the limit, and the server's shutdown would wait for them.
    """
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.05)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DemoAPI:
    """The aiohttp application of the demo API; `plan` and `account` may change at run time."""

    def __init__(
        self,
        account: DemoAccount,
        *,
        plan: FaultPlan | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.account = account
        self.plan = plan or FaultPlan()
        self._clock = clock

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_admin_on_loopback_only])
        org = "/v3/organizations/{org_id}"
        app.add_routes(
            [
                web.get(f"{org}/metrics/sessions", self._v3_sessions),
                web.get(f"{org}/metrics/prs", self._v3_org_prs),
                web.get(f"{org}/metrics/searches", self._v3_org_searches),
                web.get(f"{org}/metrics/active-users", self._v3_org_active_users),
                web.get(f"{org}/metrics/{{period:dau|wau|mau}}", self._v3_org_buckets),
                web.get(f"{org}/consumption/daily", self._v3_org_consumption),
                web.get("/v3/enterprise/metrics/sessions", self._v3_ent_sessions),
                web.get("/v3/enterprise/metrics/prs", self._v3_ent_prs),
                web.get("/v3/enterprise/metrics/searches", self._v3_ent_searches),
                web.get("/v3/enterprise/metrics/active-users", self._v3_ent_active_users),
                web.get("/v3/enterprise/metrics/sessions-by-category", self._v3_ent_categories),
                web.get("/v3/enterprise/consumption/daily", self._v3_ent_consumption),
                web.get("/v3/enterprise/consumption/cycles", self._v3_ent_cycles),
                web.get("/v3/enterprise/organizations", self._v3_ent_organizations),
                web.get("/v2/enterprise/metrics/sessions", self._v2_sessions),
                web.get("/v2/enterprise/metrics/prs", self._v2_prs),
                web.get("/v2/enterprise/consumption/daily", self._v2_consumption),
                web.get("/v2/enterprise/organizations", self._v2_organizations),
                web.get("/_demo/account", self._admin_account),
                web.post("/_demo/orgs", self._admin_add_org),
                web.delete("/_demo/orgs/{org_id}", self._admin_remove_org),
                web.post("/_demo/faults", self._admin_set_faults),
                web.delete("/_demo/faults", self._admin_clear_faults),
                web.get("/_demo/requests", self._admin_requests),
            ]
        )
        return app

    # Who may ask, and for what.

    def _org_denied(
        self, request: web.Request, org_id: str, permission: str = "ViewOrgMetrics"
    ) -> web.Response | None:
        """Why a v3 organisation request is refused, if it is."""
        key = _bearer(request)
        if key is None or not self.account.knows(key):
            return _error(401, "Invalid or missing API key")
        if key in self.account.enterprise_service_user_keys:  # inherited by every org
            return None if org_id in self.account.models else _error(404, "Unknown organization")
        if key not in self.account.service_user_keys:
            return _error(403, "This endpoint needs a service user key (cog_)")
        if org_id not in self.account.service_user_keys[key]:
            status = 403 if org_id in self.account.models else 404
            return _error(status, f"Service user lacks {permission} on this organization")
        return None

    def _enterprise_denied(self, request: web.Request, permission: str) -> web.Response | None:
        """Why a v3 enterprise request is refused, if it is (as problem details)."""
        key = _bearer(request)
        if key is None or not self.account.knows(key):
            return _problem(401, "Unauthorized", "Invalid or missing API key")
        if key in self.account.enterprise_service_user_keys:
            return None
        if key in self.account.service_user_keys:
            return _problem(
                403, "Forbidden", f"Service user lacks {permission} at the enterprise level"
            )
        return _problem(403, "Forbidden", "This endpoint needs a service user key (cog_)")

    def _v2_denied(self, request: web.Request) -> web.Response | None:
        key = _bearer(request)
        if key is None or not self.account.knows(key):
            return _error(401, "Invalid or missing API key")
        if key not in self.account.enterprise_keys:
            return _error(403, "Enterprise admin personal API key (apk_user_) required")
        return None

    # What they ask about.

    def _range(self, request: web.Request) -> tuple[float, float] | web.Response:
        """The required `time_after`/`time_before`, the end clipped to the clock."""
        after = _int_param(request, "time_after")
        if isinstance(after, web.Response):
            return after
        before = _int_param(request, "time_before")
        if isinstance(before, web.Response):
            return before
        if after > before:
            return _invalid(
                ["query", "time_after"], "time_after must be <= time_before", "value_error"
            )
        return after, min(before, self._clock())

    def _optional_range(self, request: web.Request) -> tuple[float, float] | web.Response:
        """Optional `time_after`/`time_before`: by default the current billing cycle so far."""
        after = _optional_int_param(request, "time_after")
        if isinstance(after, web.Response):
            return after
        before = _optional_int_param(request, "time_before")
        if isinstance(before, web.Response):
            return before
        now = self._clock()
        start = float(after) if after is not None else billing_cycles(now, now)[0][0]
        if before is not None and start > before:
            return _invalid(
                ["query", "time_after"], "time_after must be <= time_before", "value_error"
            )
        return start, max(start, min(float(before) if before is not None else now, now))

    def _v2_range(
        self, request: web.Request, default_start: float
    ) -> tuple[float, float] | web.Response:
        start = _datetime_param(request, "start", "start_date")
        if isinstance(start, web.Response):
            return start
        end = _datetime_param(request, "end", "end_date")
        if isinstance(end, web.Response):
            return end
        now = self._clock()
        begin = start.timestamp() if start else default_start
        finish = min(end.timestamp() if end else now, now)
        if begin > finish:
            return _invalid(["query", "start"], "start must be before end", "value_error")
        return begin, finish

    def _active_user_thresholds(self, request: web.Request) -> dict[str, int] | web.Response:
        thresholds = {}
        for name in ("min_sessions", "min_searches"):
            value = _bounded_int_param(request, name, 1, 0)
            if isinstance(value, web.Response):
                return value
            thresholds[name] = value
        return thresholds

    def _ids(self, org_ids: list[str]) -> list[str]:
        """The known ones of `org_ids`, or every organisation's id when none are given."""
        models = self.account.models
        return [o for o in org_ids if o in models] if org_ids else sorted(models)

    def _selected(self, org_ids: list[str]) -> list[OrgModel]:
        return [self.account.models[o] for o in self._ids(org_ids)]

    # Devin's organisation endpoints (v3).

    async def _v3_sessions(self, request: web.Request) -> web.StreamResponse:
        # user_ids, service_user_ids and playbook_id narrow the count to a segment.
        segment = "|".join(
            f"{name}={','.join(sorted(request.query.getall(name, [])))}"
            for name in ("user_ids", "service_user_ids", "playbook_id")
            if request.query.getall(name, [])
        )

        def body(model: OrgModel, start: float, end: float) -> dict[str, Any]:
            totals = model.totals(start, end)
            return _session_body(segment_totals(totals, segment) if segment else totals)

        return await self._org_metric(request, V3_ORG_SESSIONS, body)

    async def _v3_org_prs(self, request: web.Request) -> web.StreamResponse:
        now = self._clock()
        return await self._org_metric(
            request,
            V3_ORG_PRS,
            lambda model, start, end: _pr_body(model.pull_requests(start, end, now)),
        )

    async def _v3_org_searches(self, request: web.Request) -> web.StreamResponse:
        return await self._org_metric(
            request,
            V3_ORG_SEARCHES,
            lambda model, start, end: {"searches_created_count": model.searches(start, end)},
        )

    async def _v3_org_active_users(self, request: web.Request) -> web.StreamResponse:
        thresholds = self._active_user_thresholds(request)
        return await self._org_metric(
            request,
            V3_ORG_ACTIVE_USERS,
            thresholds
            if isinstance(thresholds, web.Response)
            else lambda model, start, end: _active_users_body([model], start, end, thresholds),
        )

    async def _v3_org_buckets(self, request: web.Request) -> web.StreamResponse:
        org_id = request.match_info["org_id"]
        fault = self.plan.next_fault(V3_ORG_ACTIVE_USER_BUCKETS, org_id)
        denied = self._org_denied(request, org_id)
        if denied is not None:
            return denied
        window = self._range(request)
        if isinstance(window, web.Response):
            return window
        thresholds = self._active_user_thresholds(request)
        if isinstance(thresholds, web.Response):
            return thresholds
        start, end = window
        bounds = periods(_PERIODS[request.match_info["period"]], start, end)
        if len(bounds) > _MAX_BUCKETS:
            return _too_many("time_after", "periods")
        model = self.account.models[org_id]
        body = [
            {
                "active_users": model.active_users(max(a, start), min(b, end), **thresholds),
                "start_time": a,
                "end_time": b - 1,  # inclusive, as in Devin's examples
            }
            for a, b in bounds
        ]
        return await self._answer(request, fault, body)

    async def _v3_org_consumption(self, request: web.Request) -> web.StreamResponse:
        org_id = request.match_info["org_id"]
        fault = self.plan.next_fault(V3_ORG_CONSUMPTION_DAILY, org_id)
        denied = self._org_denied(request, org_id, "ViewOrgConsumption")
        if denied is not None:
            return denied
        window = self._optional_range(request)
        if isinstance(window, web.Response):
            return window
        start, end = window
        if len(billing_days(start, end)) > _MAX_BUCKETS:
            return _too_many("time_after", "days")
        days = self.account.models[org_id].daily_consumption(start, end)
        return await self._answer(request, fault, _consumption_body([days]))

    async def _org_metric(
        self,
        request: web.Request,
        endpoint: str,
        body: Callable[[OrgModel, float, float], Any] | web.Response,
    ) -> web.StreamResponse:
        """A metrics endpoint of one organisation over a required range."""
        org_id = request.match_info["org_id"]
        fault = self.plan.next_fault(endpoint, org_id)
        denied = self._org_denied(request, org_id)
        if denied is not None:
            return denied
        window = self._range(request)
        if isinstance(window, web.Response):
            return window
        if isinstance(body, web.Response):
            return body
        start, end = window
        return await self._answer(request, fault, body(self.account.models[org_id], start, end))

    # Devin's enterprise endpoints (v3).

    async def _v3_ent_sessions(self, request: web.Request) -> web.StreamResponse:
        return await self._enterprise_metric(
            request,
            V3_ENTERPRISE_SESSIONS,
            lambda models, start, end: _session_body(
                _sum_totals([m.totals(start, end) for m in models])
            ),
        )

    async def _v3_ent_prs(self, request: web.Request) -> web.StreamResponse:
        now = self._clock()
        return await self._enterprise_metric(
            request,
            V3_ENTERPRISE_PRS,
            lambda models, start, end: _pr_body(
                _sum_prs([m.pull_requests(start, end, now) for m in models])
            ),
        )

    async def _v3_ent_searches(self, request: web.Request) -> web.StreamResponse:
        return await self._enterprise_metric(
            request,
            V3_ENTERPRISE_SEARCHES,
            lambda models, start, end: {
                "searches_created_count": sum(m.searches(start, end) for m in models)
            },
        )

    async def _v3_ent_active_users(self, request: web.Request) -> web.StreamResponse:
        thresholds = self._active_user_thresholds(request)
        return await self._enterprise_metric(
            request,
            V3_ENTERPRISE_ACTIVE_USERS,
            thresholds
            if isinstance(thresholds, web.Response)
            else lambda models, start, end: _active_users_body(models, start, end, thresholds),
        )

    async def _v3_ent_categories(self, request: web.Request) -> web.StreamResponse:
        return await self._enterprise_metric(
            request, V3_ENTERPRISE_SESSIONS_BY_CATEGORY, _category_body
        )

    async def _enterprise_metric(
        self,
        request: web.Request,
        endpoint: str,
        body: Callable[[list[OrgModel], float, float], Any] | web.Response,
    ) -> web.StreamResponse:
        """An enterprise metrics endpoint over a required range and optional `org_ids`."""
        org_ids = _org_ids_param(request)
        fault = self.plan.next_fault(endpoint, ",".join(org_ids))
        denied = self._enterprise_denied(request, "ViewAccountMetrics")
        if denied is not None:
            return denied
        window = self._range(request)
        if isinstance(window, web.Response):
            return window
        if isinstance(body, web.Response):
            return body
        start, end = window
        return await self._answer(request, fault, body(self._selected(org_ids), start, end))

    async def _v3_ent_consumption(self, request: web.Request) -> web.StreamResponse:
        org_ids = _org_ids_param(request)
        fault = self.plan.next_fault(V3_ENTERPRISE_CONSUMPTION_DAILY, ",".join(org_ids))
        denied = self._enterprise_denied(request, "ViewAccountConsumption")
        if denied is not None:
            return denied
        window = self._optional_range(request)
        if isinstance(window, web.Response):
            return window
        start, end = window
        if len(billing_days(start, end)) > _MAX_BUCKETS:
            return _too_many("time_after", "days")
        per_org = [m.daily_consumption(start, end) for m in self._selected(org_ids)]
        return await self._answer(request, fault, _consumption_body(per_org))

    async def _v3_ent_cycles(self, request: web.Request) -> web.StreamResponse:
        """Monthly cycles from the 1st at 08:00 UTC, oldest first, up to the current one."""
        fault = self.plan.next_fault(V3_ENTERPRISE_CONSUMPTION_CYCLES, "")
        denied = self._enterprise_denied(request, "ViewAccountConsumption")
        if denied is not None:
            return denied
        now = self._clock()
        rows = [
            (f"{start:012d}", {"after": start, "before": end})
            for start, end in billing_cycles(now - _HISTORY_SECONDS, now)
        ]
        page = _cursor_page(request, "cycle", rows)
        if isinstance(page, web.Response):
            return page
        return await self._answer(request, fault, page)

    async def _v3_ent_organizations(self, request: web.Request) -> web.StreamResponse:
        """The account's organisations, ordered by id."""
        fault = self.plan.next_fault(V3_ENTERPRISE_ORGANIZATIONS, "")
        denied = self._enterprise_denied(request, "ManageOrganizations")
        if denied is not None:
            return denied
        rows = [
            (
                o.id,
                {
                    "org_id": o.id,
                    "name": o.name,
                    "created_at": self.account.models[o.id].created_at,
                    "updated_at": self.account.models[o.id].created_at,
                    "max_cycle_acu_limit": None,
                    "max_session_acu_limit": 50,
                },
            )
            for o in sorted(self.account.orgs, key=lambda o: o.id)
        ]
        page = _cursor_page(request, "org", rows)
        if isinstance(page, web.Response):
            return page
        return await self._answer(request, fault, page)

    # Devin's enterprise endpoints (v2).

    async def _v2_sessions(self, request: web.Request) -> web.StreamResponse:
        org_ids = _org_ids_param(request)
        fault = self.plan.next_fault(V2_ENTERPRISE_SESSIONS, ",".join(org_ids))
        denied = self._v2_denied(request)
        if denied is not None:
            return denied
        window = self._v2_range(request, self._clock() - _HISTORY_SECONDS)
        if isinstance(window, web.Response):
            return window
        count = sum(m.totals(*window).created for m in self._selected(org_ids))
        return await self._answer(request, fault, {"sessions_count": count})

    async def _v2_prs(self, request: web.Request) -> web.StreamResponse:
        """v2's counts: opened means opened in the period, so it is v3's created."""
        org_ids = _org_ids_param(request)
        fault = self.plan.next_fault(V2_ENTERPRISE_PRS, ",".join(org_ids))
        denied = self._v2_denied(request)
        if denied is not None:
            return denied
        now = self._clock()
        window = self._v2_range(request, now - _HISTORY_SECONDS)
        if isinstance(window, web.Response):
            return window
        prs = _sum_prs([m.pull_requests(*window, now) for m in self._selected(org_ids)])
        body = {"prs_opened": prs.created, "prs_closed": prs.closed, "prs_merged": prs.merged}
        return await self._answer(request, fault, body)

    async def _v2_consumption(self, request: web.Request) -> web.StreamResponse:
        """By billing day (`YYYY-MM-DD` of its 08:00 UTC start) and organisation; filtered
        by `org_ids`, only Devin's own ACUs count, as the v2 docs say."""
        org_ids = _org_ids_param(request)
        fault = self.plan.next_fault(V2_ENTERPRISE_CONSUMPTION_DAILY, ",".join(org_ids))
        denied = self._v2_denied(request)
        if denied is not None:
            return denied
        now = self._clock()
        window = self._v2_range(request, billing_cycles(now, now)[0][0])
        if isinstance(window, web.Response):
            return window
        if len(billing_days(*window)) > _MAX_BUCKETS:
            return _too_many("start", "days")
        by_date: dict[str, float] = {}
        by_org: dict[str, float] = {}
        for org_id, model in ((m_id, self.account.models[m_id]) for m_id in self._ids(org_ids)):
            for day in model.daily_consumption(*window):
                acus = day.by_product["devin"] if org_ids else day.acus
                key = datetime.fromtimestamp(day.date, UTC).strftime("%Y-%m-%d")
                by_date[key] = by_date.get(key, 0.0) + acus
                by_org[org_id] = by_org.get(org_id, 0.0) + acus
        body = {
            "total_acus": round(sum(by_org.values()), 3),
            "consumption_by_date": {k: round(v, 3) for k, v in by_date.items()},
            "consumption_by_org_id": {k: round(v, 3) for k, v in by_org.items()},
            "consumption_by_user": {},
        }
        return await self._answer(request, fault, body)

    async def _v2_organizations(self, request: web.Request) -> web.StreamResponse:
        fault = self.plan.next_fault(V2_ENTERPRISE_ORGANIZATIONS, "")
        denied = self._v2_denied(request)
        if denied is not None:
            return denied
        skip = _bounded_int_param(request, "skip", 0, 0)
        if isinstance(skip, web.Response):
            return skip
        limit = _bounded_int_param(request, "limit", _PAGE_DEFAULT, 1, _PAGE_MAX)
        if isinstance(limit, web.Response):
            return limit
        orgs = sorted(self.account.orgs, key=lambda o: o.id)
        items = []
        for org in orgs[skip : skip + limit]:
            model = self.account.models[org.id]
            admins = max(1, model.headcount // 20)
            items.append(
                {
                    "org_id": org.id,
                    "org_name": org.name,
                    "created_at": _iso(model.created_at),
                    "max_cycle_acu_limit": None,
                    "max_session_acu_limit": 50,
                    "org_admin_count": admins,
                    "org_member_count": model.headcount,
                    "org_user_count": model.headcount,
                }
            )
        more = skip + limit < len(orgs)
        body = {
            "items": items,
            "total": len(orgs),
            "skip": skip,
            "limit": limit,
            "has_more": more,
            "next_cursor": skip + limit if more else None,
        }
        return await self._answer(request, fault, body)

    async def _answer(
        self, request: web.Request, fault: Fault | None, body: Any
    ) -> web.StreamResponse:
        if fault is None:
            return web.json_response(body)
        if fault.delay_seconds:
            await asyncio.sleep(fault.delay_seconds)
        if fault.reset:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # aiohttp drops the handler quietly
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        if fault.status is not None and fault.status != 200:
            return web.json_response(
                {"detail": f"injected fault {fault.status}"}, status=fault.status, headers=headers
            )
        payload = _faulty_body(body, fault.body)
        if fault.stall:
            response = web.StreamResponse(
                headers={"Content-Type": "application/json", "Content-Length": str(len(payload))}
            )
            await response.prepare(request)
            await response.write(payload[: len(payload) // 2])
            await _until_disconnected(request, _STALL_SECONDS)
            return response
        return web.Response(body=payload, content_type="application/json", headers=headers)

    # Loopback-only administration, for tests and benchmarks.

    async def _admin_account(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"orgs": [{"id": o.id, "name": o.name} for o in self.account.orgs]}
        )

    async def _admin_add_org(self, request: web.Request) -> web.Response:
        """`{"id", "name"}`: a new organisation, with its data (409 if the id exists)."""
        try:
            new = _NewOrg.model_validate_json(await request.read())
        except ValidationError as err:
            return web.json_response({"detail": err.errors(include_url=False)}, status=422)
        try:
            self.account.add_org(DemoOrg(new.id, new.name))
        except ValueError:
            return _error(409, "Organization exists")
        return web.json_response({"ok": True})

    async def _admin_remove_org(self, request: web.Request) -> web.Response:
        try:
            self.account.remove_org(request.match_info["org_id"])
        except KeyError:
            return _error(404, "Unknown organization")
        return web.json_response({"ok": True})

    async def _admin_set_faults(self, request: web.Request) -> web.Response:
        try:
            entry = PlanEntry.model_validate_json(await request.read())
        except ValidationError as err:
            return web.json_response({"detail": err.errors(include_url=False)}, status=422)
        self.plan.set(entry)
        return web.json_response({"ok": True})

    async def _admin_clear_faults(self, request: web.Request) -> web.Response:
        self.plan.clear()
        return web.json_response({"ok": True})

    async def _admin_requests(self, request: web.Request) -> web.Response:
        counts = [
            {"endpoint": endpoint, "org": org, "requests": n}
            for (endpoint, org), n in sorted(self.plan.requests.items())
        ]
        return web.json_response(counts)


@web.middleware
async def _admin_on_loopback_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/_demo/"):
        remote = request.remote or ""
        try:
            loopback = ipaddress.ip_address(remote).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            return _error(403, "the demo admin API answers on loopback only")
    return await handler(request)
