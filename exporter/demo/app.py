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
import functools
import ipaddress
import json
import math
import secrets
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from exporter.demo.data import (
    CATEGORIES,
    DayConsumption,
    LiveSession,
    OrgModel,
    Period,
    PullRequests,
    Totals,
    billing_cycles,
    billing_days,
    live_sessions,
    org_users,
    periods,
    segment_prs,
    segment_totals,
    unattributed_share,
)
from exporter.demo.faults import Fault, FaultPlan, PlanEntry
from exporter.devin.spec import Contract
from exporter.devin.table import ACTIVE_USER_PERIODS, ROWS, Endpoint

# How far back the demo's billing cycles are listed.
_HISTORY_SECONDS: Final = 400 * 86400
# A stalled answer hangs this long at most, or until the client hangs up.
_STALL_SECONDS: Final = 3600.0
# Daily and per-period answers cover at most this many days or periods (else 422).
_MAX_BUCKETS: Final = 1000
# Page sizes: v3 `first` and v2 `limit` default to 100 (the contract bounds them, 1 to 200).
_PAGE_DEFAULT: Final = 100
_PERIODS: Final[dict[str, Period]] = {"dau": "dau", "wau": "wau", "mau": "mau"}

# The demo's ACU limits: per billing cycle (about three times what a busy demo
# organisation consumes in one) and per session.
DEMO_ORG_CYCLE_LIMIT: Final = 250000.0
DEMO_ENTERPRISE_CYCLE_LIMIT: Final = 1000000.0
DEMO_SESSION_LIMIT: Final = 50

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
    # ACUs an organisation may consume in a billing cycle (not listed: no limit), and the
    # enterprise's own limit (None: none); the same in the ACU limits list and the listings.
    cycle_limits: dict[str, float] = field(default_factory=dict)
    enterprise_cycle_limit: float | None = None
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
        self.cycle_limits.pop(org_id, None)
        for orgs in self.service_user_keys.values():
            orgs.discard(org_id)

    @classmethod
    def generate(
        cls, org_count: int = 3, *, seed: int = 1, extra_origins: Sequence[str] = ()
    ) -> DemoAccount:
        """`org_count` organisations, one service-user key for all, one with account-level
        permissions, and one enterprise admin key; every organisation but the first has a
        cycle limit, and so has the enterprise (all well above what the demo consumes)."""
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
            cycle_limits={o.id: DEMO_ORG_CYCLE_LIMIT for o in orgs[1:]},
            enterprise_cycle_limit=DEMO_ENTERPRISE_CYCLE_LIMIT,
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


def _datetime_param(request: web.Request, *names: str) -> datetime | None:
    """The first of `names` given, as an aware date-time (the contract checked its form)."""
    for name in names:
        raw = request.query.get(name)
        if raw is not None:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
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


def _session_item(session: LiveSession) -> dict[str, Any]:
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


def _session_wanted(request: web.Request, session: LiveSession) -> bool:
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


def _problem(status: int, title: str, detail: str) -> web.Response:
    """An RFC 9457 problem, keeping `detail` as Devin's ProblemDetail does."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.json_response(body, status=status, content_type="application/problem+json")


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
    first = int(request.query.get("first", str(_PAGE_DEFAULT)))
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


# The gzip bomb: this many blocks of a MiB of zeros, 1 GiB and 1 MiB in all, past the
# largest cap the exporter allows (`devin.max_response_bytes`, 1 GiB at most).
_BOMB_BLOCKS: Final = 1025
_BOMB_BLOCK_BYTES: Final = 2**20
# The endless body: an array that never closes, sent about 60 kB at a time.
_ENDLESS_HEAD: Final = b'{"sessions_created_count": 1, "filler": ['
_ENDLESS_CHUNK: Final = b"0, " * 20_000


@functools.cache
def _gzip_bomb() -> bytes:
    """A well-formed gzip body of about 1 MB that inflates to 1 GiB and 1 MiB of zeros.

    Built once, and cheaply: compressing a GiB would take seconds, so one block of zeros
    is compressed after a full flush (which makes it refer to nothing before it) and then
    repeated; only the trailer's CRC-32 runs over every byte.
    """
    zeros = bytes(_BOMB_BLOCK_BYTES)
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(_BOMB_BLOCKS):
        crc = zlib.crc32(zeros, crc)
    size = _BOMB_BLOCKS * _BOMB_BLOCK_BYTES
    last = b"\x03\x00"  # an empty final block (fixed Huffman codes)
    trailer = crc.to_bytes(4, "little") + (size % 2**32).to_bytes(4, "little")
    return head + block * (_BOMB_BLOCKS - 1) + last + trailer


async def _endless_body(request: web.Request) -> web.StreamResponse:
    """A 200 of JSON that never ends: written until the client hangs up (or a limit).

    Writes wait while the client does not read (aiohttp's flow control), and stop as
    soon as the connection closes, so a client that gives up costs the server nothing.
    """
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    deadline = time.monotonic() + _STALL_SECONDS
    try:
        await response.write(_ENDLESS_HEAD)
        while time.monotonic() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            await response.write(_ENDLESS_CHUNK)
            await asyncio.sleep(0)  # let the loop notice a hang-up between writes
    except ConnectionError:
        pass  # the client hung up mid-write
    return response


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
Body = Any  # a JSON body, or the error response that replaces it
"""What an answer gives: the JSON body, or an error response (422) instead."""


@dataclass(frozen=True)
class Ask:
    """One request to a Devin route: the org of its path, and its `org_ids`."""

    request: web.Request
    org_id: str
    org_ids: list[str]


Answer = Callable[[Ask], Body]


def _segment_key(request: web.Request, names: Sequence[str]) -> str:
    """A stable key of a request's user or playbook filters ("" when there are none)."""
    return "|".join(
        f"{name}={','.join(sorted(request.query.getall(name, [])))}"
        for name in names
        if request.query.getall(name, [])
    )


def _thresholds(request: web.Request) -> dict[str, int]:
    """`min_sessions` and `min_searches`, 1 when not given."""
    return {name: int(request.query.get(name, "1")) for name in ("min_sessions", "min_searches")}


def _route(row: Endpoint[Any]) -> str:
    """The aiohttp route of a row's path template."""
    return row.path.replace("{period}", f"{{period:{'|'.join(ACTIVE_USER_PERIODS)}}}")


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
        """Devin's routes, one per row of the endpoint table, and the admin API."""
        app = web.Application(middlewares=[_admin_on_loopback_only])
        answers: dict[str, Answer] = {
            "v3_org_sessions": self._v3_sessions,
            "v3_org_prs": self._v3_org_prs,
            "v3_org_searches": self._v3_org_searches,
            "v3_org_active_users": self._v3_org_active_users,
            "v3_org_active_user_buckets": self._v3_org_buckets,
            "v3_org_consumption_daily": self._v3_org_consumption,
            "v3_org_usage": self._v3_org_usage,
            "v3_enterprise_sessions": self._v3_ent_sessions,
            "v3_enterprise_prs": self._v3_ent_prs,
            "v3_enterprise_searches": self._v3_ent_searches,
            "v3_enterprise_active_users": self._v3_ent_active_users,
            "v3_enterprise_active_user_buckets": self._v3_ent_buckets,
            "v3_enterprise_sessions_by_category": self._v3_ent_categories,
            "v3_enterprise_consumption_daily": self._v3_ent_consumption,
            "v3_enterprise_org_consumption_daily": self._v3_ent_org_consumption,
            "v3_enterprise_usage": self._v3_ent_usage,
            "v3_enterprise_org_usage": self._v3_ent_org_usage,
            "v3_enterprise_consumption_cycles": self._v3_ent_cycles,
            "v3_enterprise_acu_limits": self._v3_ent_acu_limits,
            "v3_enterprise_organizations": self._v3_ent_organizations,
            "v3_org_sessions_list": self._v3_org_session_list,
            "v3_enterprise_sessions_list": self._v3_ent_session_list,
            "v2_enterprise_sessions": self._v2_sessions,
            "v2_enterprise_prs": self._v2_prs,
            "v2_enterprise_consumption_daily": self._v2_consumption,
            "v2_enterprise_consumption_cycles": self._v2_cycles,
            "v2_enterprise_user_consumption": self._v2_consumption,
            "v2_enterprise_organizations": self._v2_organizations,
        }
        contract = Contract.load()
        by_path: dict[str, list[Endpoint[Any]]] = {}
        for row in ROWS:  # rows that use one endpoint two ways share its route
            by_path.setdefault(row.path, []).append(row)
        app.add_routes(
            [
                web.get(_route(rows[0]), self._serve(rows, contract, answers))
                for rows in by_path.values()
            ]
        )
        app.add_routes(
            [
                web.get("/_demo/account", self._admin_account),
                web.post("/_demo/orgs", self._admin_add_org),
                web.delete("/_demo/orgs/{org_id}", self._admin_remove_org),
                web.post("/_demo/faults", self._admin_set_faults),
                web.delete("/_demo/faults", self._admin_clear_faults),
                web.get("/_demo/requests", self._admin_requests),
            ]
        )
        return app

    def _serve(
        self, rows: Sequence[Endpoint[Any]], contract: Contract, answers: dict[str, Answer]
    ) -> Handler:
        """The route of the rows of one path: count a request under its row (and pick its
        fault), refuse a key that may not ask, refuse a query the contract does not
        document, then answer.

        Rows share a path when they use one endpoint two ways: a request without
        `org_ids` is the whole-enterprise row's. The 422 for an undocumented, missing or
        mistyped parameter is FastAPI's HTTPValidationError, and stricter than Devin
        (which may ignore an unknown one) on purpose: a client that sends what the
        contract lacks must fail here.
        """
        path = rows[0].path
        operation = contract.operation(path.replace("{period}", ACTIVE_USER_PERIODS[0]))
        if operation is None:
            raise LookupError(f"{rows[0].name}: {path} is not in the contract")

        async def serve(request: web.Request) -> web.StreamResponse:
            ask = Ask(
                request, request.match_info.get("org_id", ""), request.query.getall("org_ids", [])
            )
            row = next((r for r in rows if r.whole_enterprise == (not ask.org_ids)), rows[0])
            answer = answers[row.name]
            fault = self.plan.next_fault(row.name, ask.org_id or ",".join(ask.org_ids))
            denied = self._denied(row, request, ask.org_id)
            if denied is not None:
                return denied
            problems = operation.check_query(
                {n: request.query.getall(n) for n in set(request.query)}
            )
            if problems:
                return web.json_response({"detail": [p.as_detail() for p in problems]}, status=422)
            body = answer(ask)
            if isinstance(body, web.Response):
                return body
            return await self._answer(request, fault, body)

        return serve

    # Who may ask, and for what.

    def _denied(self, row: Endpoint[Any], request: web.Request, org_id: str) -> web.Response | None:
        """Why a key may not ask a row, if it may not: by the row's key kind and permission."""
        if row.key == "enterprise_admin":
            return self._v2_denied(request)
        if row.key == "service_user":
            return self._org_denied(request, org_id, row.permission)
        denied = self._enterprise_denied(request, row.permission)
        if denied is None and row.per_org_path and org_id not in self.account.models:
            return _problem(404, "Not Found", "Unknown organization")
        return denied

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

    # What they ask about (the contract has checked names and types already).

    def _range(self, request: web.Request) -> tuple[float, float] | web.Response:
        """The required `time_after`/`time_before`, the end clipped to the clock."""
        after, before = int(request.query["time_after"]), int(request.query["time_before"])
        if after > before:
            return _invalid(
                ["query", "time_after"], "time_after must be <= time_before", "value_error"
            )
        return after, min(before, self._clock())

    def _optional_range(self, request: web.Request) -> tuple[float, float] | web.Response:
        """Optional `time_after`/`time_before`: by default the current billing cycle so far."""
        now = self._clock()
        after = request.query.get("time_after")
        before = request.query.get("time_before")
        start = float(after) if after is not None else self._cycle_start()
        if before is not None and start > float(before):
            return _invalid(
                ["query", "time_after"], "time_after must be <= time_before", "value_error"
            )
        return start, max(start, min(float(before) if before is not None else now, now))

    def _cycle_start(self) -> float:
        now = self._clock()
        return float(billing_cycles(now, now)[0][0])

    def _v2_range(self, request: web.Request) -> tuple[float, float] | web.Response:
        """`start`/`end` (or `start_date`/`end_date`): by default the current billing
        cycle so far, as the v2 reference says."""
        start = _datetime_param(request, "start", "start_date")
        end = _datetime_param(request, "end", "end_date")
        now = self._clock()
        begin = start.timestamp() if start else self._cycle_start()
        finish = min(end.timestamp() if end else now, now)
        if begin > finish:
            return _invalid(["query", "start"], "start must be before end", "value_error")
        return begin, finish

    def _ids(self, org_ids: list[str]) -> list[str]:
        """The known ones of `org_ids`, or every organisation's id when none are given."""
        models = self.account.models
        return [o for o in org_ids if o in models] if org_ids else sorted(models)

    def _selected(self, org_ids: list[str]) -> list[OrgModel]:
        return [self.account.models[o] for o in self._ids(org_ids)]

    # Devin's organisation endpoints (v3).

    def _v3_sessions(self, ask: Ask) -> Body:
        # user_ids, service_user_ids and playbook_id narrow the count to a segment.
        segment = _segment_key(ask.request, ("user_ids", "service_user_ids", "playbook_id"))

        def body(model: OrgModel, start: float, end: float) -> dict[str, Any]:
            totals = model.totals(start, end)
            return _session_body(segment_totals(totals, segment) if segment else totals)

        return self._org_metric(ask, body)

    def _v3_org_prs(self, ask: Ask) -> Body:
        now = self._clock()
        return self._org_metric(
            ask, lambda model, start, end: _pr_body(model.pull_requests(start, end, now))
        )

    def _v3_org_searches(self, ask: Ask) -> Body:
        return self._org_metric(
            ask, lambda model, start, end: {"searches_created_count": model.searches(start, end)}
        )

    def _v3_org_active_users(self, ask: Ask) -> Body:
        thresholds = _thresholds(ask.request)
        return self._org_metric(
            ask, lambda model, start, end: _active_users_body([model], start, end, thresholds)
        )

    def _v3_org_buckets(self, ask: Ask) -> Body:
        return self._buckets(ask, [self.account.models[ask.org_id]])

    def _v3_org_consumption(self, ask: Ask) -> Body:
        return self._consumption(ask, [self.account.models[ask.org_id]])

    def _v3_org_usage(self, ask: Ask) -> Body:
        return self._usage(ask, [self.account.models[ask.org_id]])

    def _org_metric(self, ask: Ask, body: Callable[[OrgModel, float, float], Any]) -> Body:
        """A metrics endpoint of one organisation over a required range."""
        window = self._range(ask.request)
        if isinstance(window, web.Response):
            return window
        return body(self.account.models[ask.org_id], *window)

    # Devin's enterprise endpoints (v3).

    def _v3_ent_sessions(self, ask: Ask) -> Body:
        segment = _segment_key(ask.request, ("user_ids", "service_user_ids", "playbook_id"))

        def body(models: list[OrgModel], start: float, end: float) -> dict[str, Any]:
            totals = [m.totals(start, end) for m in models]
            if segment:
                totals = [segment_totals(t, segment) for t in totals]
            return _session_body(_sum_totals(totals))

        return self._enterprise_metric(ask, body)

    def _v3_ent_prs(self, ask: Ask) -> Body:
        now = self._clock()
        return self._enterprise_metric(
            ask,
            lambda models, start, end: _pr_body(
                _sum_prs([m.pull_requests(start, end, now) for m in models])
            ),
        )

    def _v3_ent_searches(self, ask: Ask) -> Body:
        return self._enterprise_metric(
            ask,
            lambda models, start, end: {
                "searches_created_count": sum(m.searches(start, end) for m in models)
            },
        )

    def _v3_ent_active_users(self, ask: Ask) -> Body:
        thresholds = _thresholds(ask.request)
        return self._enterprise_metric(
            ask, lambda models, start, end: _active_users_body(models, start, end, thresholds)
        )

    def _v3_ent_buckets(self, ask: Ask) -> Body:
        return self._buckets(ask, self._selected(ask.org_ids))

    def _v3_ent_categories(self, ask: Ask) -> Body:
        return self._enterprise_metric(ask, _category_body)

    def _enterprise_metric(
        self, ask: Ask, body: Callable[[list[OrgModel], float, float], Any]
    ) -> Body:
        """An enterprise metrics endpoint over a required range and optional `org_ids`."""
        window = self._range(ask.request)
        if isinstance(window, web.Response):
            return window
        return body(self._selected(ask.org_ids), *window)

    def _v3_ent_consumption(self, ask: Ask) -> Body:
        """The whole enterprise: this route takes no organisation filter."""
        return self._consumption(ask, self._selected([]))

    def _v3_ent_org_consumption(self, ask: Ask) -> Body:
        return self._consumption(ask, [self.account.models[ask.org_id]])

    def _v3_ent_usage(self, ask: Ask) -> Body:
        return self._usage(ask, self._selected([]))

    def _v3_ent_org_usage(self, ask: Ask) -> Body:
        return self._usage(ask, [self.account.models[ask.org_id]])

    def _buckets(self, ask: Ask, models: Sequence[OrgModel]) -> Body:
        """dau/wau/mau: one item per period that overlaps the range, oldest first."""
        window = self._range(ask.request)
        if isinstance(window, web.Response):
            return window
        start, end = window
        bounds = periods(_PERIODS[ask.request.match_info["period"]], start, end)
        if len(bounds) > _MAX_BUCKETS:
            return _too_many("time_after", "periods")
        thresholds = _thresholds(ask.request)
        return [
            {
                "active_users": sum(
                    m.active_users(max(a, start), min(b, end), **thresholds) for m in models
                ),
                "start_time": a,
                "end_time": b - 1,  # inclusive, as in Devin's examples
            }
            for a, b in bounds
        ]

    def _consumption(self, ask: Ask, models: Sequence[OrgModel]) -> Body:
        window = self._optional_range(ask.request)
        if isinstance(window, web.Response):
            return window
        if len(billing_days(*window)) > _MAX_BUCKETS:
            return _too_many("time_after", "days")
        return _consumption_body([m.daily_consumption(*window) for m in models])

    def _usage(self, ask: Ask, models: Sequence[OrgModel]) -> Body:
        """Devin's usage summary: the same counts the metrics endpoints give, summed."""
        window = self._optional_range(ask.request)
        if isinstance(window, web.Response):
            return window
        start, end = window
        now = self._clock()
        prs = _sum_prs([m.pull_requests(start, end, now) for m in models])
        return {
            "sessions_count": sum(m.totals(start, end).created for m in models),
            "searches_count": sum(m.searches(start, end) for m in models),
            "prs_created_count": prs.created,
            "prs_merged_count": prs.merged,
        }

    def _v3_ent_cycles(self, ask: Ask) -> Body:
        """Monthly cycles from the 5th at 08:00 UTC, oldest first, up to the current one."""
        now = self._clock()
        rows = [
            (f"{start:012d}", {"after": start, "before": end})
            for start, end in billing_cycles(now - _HISTORY_SECONDS, now)
        ]
        return _cursor_page(ask.request, "cycle", rows)

    def _v3_ent_acu_limits(self, ask: Ask) -> Body:
        """The enterprise's limit, then each organisation's that has one, by org id."""
        rows: list[tuple[str, dict[str, Any]]] = []
        if self.account.enterprise_cycle_limit is not None:
            limit = self.account.enterprise_cycle_limit
            rows.append(("", {"cycle_acu_limit": limit, "scope": "enterprise"}))
        rows += [
            (org, {"cycle_acu_limit": limit, "scope": "org", "org_id": org})
            for org, limit in sorted(self.account.cycle_limits.items())
        ]
        return _cursor_page(ask.request, "limit", rows)

    def _v3_ent_organizations(self, ask: Ask) -> Body:
        """The account's organisations, ordered by id."""
        rows = [
            (
                o.id,
                {
                    "org_id": o.id,
                    "name": o.name,
                    "created_at": self.account.models[o.id].created_at,
                    "updated_at": self.account.models[o.id].created_at,
                    "max_cycle_acu_limit": self.account.cycle_limits.get(o.id),
                    "max_session_acu_limit": DEMO_SESSION_LIMIT,
                },
            )
            for o in sorted(self.account.orgs, key=lambda o: o.id)
        ]
        return _cursor_page(ask.request, "org", rows)

    # The session lists (v3): every session of the last days, as it stands now.

    def _v3_org_session_list(self, ask: Ask) -> Body:
        return self._session_list(ask.request, [ask.org_id])

    def _v3_ent_session_list(self, ask: Ask) -> Body:
        return self._session_list(ask.request, self._ids(ask.org_ids))

    def _session_list(self, request: web.Request, org_ids: list[str]) -> Body:
        """The sessions of `org_ids` that pass the request's filters, by creation then id."""
        now = self._clock()
        rows = [
            (f"{s.created_at:012d}:{s.session_id}", _session_item(s))
            for org_id in org_ids
            for s in live_sessions(org_id, now)
            if _session_wanted(request, s)
        ]
        return _cursor_page(request, "session", sorted(rows, key=lambda row: row[0]))

    # Devin's enterprise endpoints (v2).

    def _v2_sessions(self, ask: Ask) -> Body:
        window = self._v2_range(ask.request)
        if isinstance(window, web.Response):
            return window
        segment = _segment_key(ask.request, ("user_ids",))
        totals = [m.totals(*window) for m in self._selected(ask.org_ids)]
        if segment:
            totals = [segment_totals(t, segment) for t in totals]
        return {"sessions_count": sum(t.created for t in totals)}

    def _v2_prs(self, ask: Ask) -> Body:
        """v2's counts: opened means opened in the period, so it is v3's created."""
        now = self._clock()
        window = self._v2_range(ask.request)
        if isinstance(window, web.Response):
            return window
        segment = _segment_key(ask.request, ("user_ids",))
        prs = _sum_prs([m.pull_requests(*window, now) for m in self._selected(ask.org_ids)])
        if segment:
            prs = segment_prs(prs, segment)
        return {"prs_opened": prs.created, "prs_closed": prs.closed, "prs_merged": prs.merged}

    def _v2_consumption(self, ask: Ask) -> Body:
        """By billing day (`YYYY-MM-DD` of its 08:00 UTC start), organisation and user;
        filtered by `org_ids`, only Devin's own ACUs count, as the v2 docs say. Of each
        organisation's ACUs a share is tied to no user: the total exceeds the users' sum."""
        window = self._v2_range(ask.request)
        if isinstance(window, web.Response):
            return window
        if len(billing_days(*window)) > _MAX_BUCKETS:
            return _too_many("start", "days")
        by_date: dict[str, float] = {}
        by_org: dict[str, float] = {}
        by_user: dict[str, float] = {}
        for org_id in self._ids(ask.org_ids):
            model = self.account.models[org_id]
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

    def _v2_cycles(self, ask: Ask) -> Body:
        """Every cycle, oldest first, its end inclusive (the cycle's last second, as the
        older v2 page's example has it)."""
        now = self._clock()
        return [
            {"start": _iso(start), "end": _iso(end - 1)}
            for start, end in billing_cycles(now - _HISTORY_SECONDS, now)
        ]

    def _v2_organizations(self, ask: Ask) -> Body:
        skip = int(ask.request.query.get("skip", "0"))
        limit = int(ask.request.query.get("limit", str(_PAGE_DEFAULT)))
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
                    "max_cycle_acu_limit": self.account.cycle_limits.get(org.id),
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
        if fault.body == "endless_body":
            return await _endless_body(request)
        if fault.body == "gzip_bomb":
            bomb = await asyncio.to_thread(_gzip_bomb)  # the first one takes a moment
            return web.Response(
                body=bomb,
                content_type="application/json",
                headers={**headers, "Content-Encoding": "gzip"},
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
