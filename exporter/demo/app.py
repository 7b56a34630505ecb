"""The demo Devin API: both metrics endpoints, Devin's auth rules, and injectable faults."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web
from pydantic import ValidationError

from exporter.client import V2_ENTERPRISE_SESSIONS, V3_ORG_SESSIONS
from exporter.demo.data import OrgModel, Totals
from exporter.demo.faults import Fault, FaultPlan, PlanEntry

# v2 counts without a start date go back this far.
_HISTORY_SECONDS: Final = 400 * 86400
# A stalled answer hangs this long at most, or until the client hangs up.
_STALL_SECONDS: Final = 3600.0

Clock = Callable[[], float]


@dataclass(frozen=True)
class DemoOrg:
    id: str
    name: str


@dataclass
class DemoAccount:
    """Who exists in the demo enterprise and which key may see what."""

    orgs: list[DemoOrg]
    service_user_keys: dict[str, set[str]]  # cog_ key -> org ids it holds ViewOrgMetrics on
    enterprise_keys: set[str]
    seed: int = 1
    extra_origins: Sequence[str] = ()
    models: dict[str, OrgModel] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.models = {o.id: OrgModel(self.seed, o.id, self.extra_origins) for o in self.orgs}

    @classmethod
    def generate(
        cls, org_count: int = 3, *, seed: int = 1, extra_origins: Sequence[str] = ()
    ) -> DemoAccount:
        """`org_count` organisations, one service-user key for all, one enterprise key."""
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
        )

    @property
    def service_user_key(self) -> str:
        return next(iter(self.service_user_keys))

    @property
    def enterprise_key(self) -> str:
        return next(iter(self.enterprise_keys))


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


def _faulty_body(body: dict[str, Any], kind: str) -> bytes:
    text = json.dumps(body).encode()
    if kind == "malformed":
        return b'{"sessions_count": 12,, "oops": ]'
    if kind == "truncated":
        return text[: len(text) // 2]
    if kind == "missing_fields":
        return json.dumps({k: v for k, v in list(body.items())[1:-1]}).encode()
    if kind == "extra_fields":
        return json.dumps({**body, "new_field": {"nested": [1, 2]}, "note": "added"}).encode()
    if kind == "new_keys":
        grown = dict(body)
        for name, new_key in (
            ("sessions_created_by_origin", "devin_cli"),
            ("sessions_created_by_size", "xxl"),
        ):
            if name in grown:
                grown[name] = {**grown[name], new_key: 2}
        return json.dumps(grown).encode()
    return text


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
        self._org_ids = {o.id for o in account.orgs}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_admin_on_loopback_only])
        app.add_routes(
            [
                web.get("/v3/organizations/{org_id}/metrics/sessions", self._v3_sessions),
                web.get("/v2/enterprise/metrics/sessions", self._v2_sessions),
                web.get("/_demo/account", self._admin_account),
                web.post("/_demo/faults", self._admin_set_faults),
                web.delete("/_demo/faults", self._admin_clear_faults),
                web.get("/_demo/requests", self._admin_requests),
            ]
        )
        return app

    # Devin's endpoints.

    async def _v3_sessions(self, request: web.Request) -> web.StreamResponse:
        org_id = request.match_info["org_id"]
        fault = self.plan.next_fault(V3_ORG_SESSIONS, org_id)
        key = _bearer(request)
        if key is None or (
            key not in self.account.service_user_keys and key not in self.account.enterprise_keys
        ):
            return _error(401, "Invalid or missing API key")
        if key not in self.account.service_user_keys:
            return _error(403, "This endpoint needs a service user key (cog_)")
        if org_id not in self.account.service_user_keys[key]:
            status = 403 if org_id in self._org_ids else 404
            return _error(status, "Service user lacks ViewOrgMetrics on this organization")
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
        totals = self.account.models[org_id].totals(after, min(before, self._clock()))
        return await self._answer(request, fault, _session_body(totals))

    async def _v2_sessions(self, request: web.Request) -> web.StreamResponse:
        org_ids = request.query.getall("org_ids", []) or request.query.getall("org_ids[]", [])
        fault = self.plan.next_fault(V2_ENTERPRISE_SESSIONS, ",".join(org_ids))
        key = _bearer(request)
        if key is None or (
            key not in self.account.service_user_keys and key not in self.account.enterprise_keys
        ):
            return _error(401, "Invalid or missing API key")
        if key not in self.account.enterprise_keys:
            return _error(403, "Enterprise admin personal API key (apk_user_) required")
        start = _datetime_param(request, "start", "start_date")
        if isinstance(start, web.Response):
            return start
        end = _datetime_param(request, "end", "end_date")
        if isinstance(end, web.Response):
            return end
        now = self._clock()
        begin = start.timestamp() if start else now - _HISTORY_SECONDS
        finish = min(end.timestamp() if end else now, now)
        if begin > finish:
            return _invalid(["query", "start"], "start must be before end", "value_error")
        selected = [o for o in org_ids if o in self._org_ids] if org_ids else sorted(self._org_ids)
        count = sum(self.account.models[o].totals(begin, finish).created for o in selected)
        return await self._answer(request, fault, {"sessions_count": count})

    async def _answer(
        self, request: web.Request, fault: Fault | None, body: dict[str, Any]
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
