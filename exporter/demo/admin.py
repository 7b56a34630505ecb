"""The demo's administration API, on loopback only: its organisations, its fault plan,
and the requests it has counted (for tests and benchmarks)."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from exporter.demo.account import DemoAccount, DemoOrg
from exporter.demo.errors import error
from exporter.demo.faults import FaultPlan, PlanEntry

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Administered(Protocol):
    """What the admin API changes: read at each request, so either may be replaced."""

    account: DemoAccount
    plan: FaultPlan


class _NewOrg(BaseModel):
    """Body of `POST /_demo/orgs`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    name: str = Field(max_length=256)


def admin_routes(demo: Administered) -> list[web.RouteDef]:
    """The routes under `/_demo/`."""

    async def account(request: web.Request) -> web.Response:
        return web.json_response(
            {"orgs": [{"id": o.id, "name": o.name} for o in demo.account.orgs]}
        )

    async def add_org(request: web.Request) -> web.Response:
        """`{"id", "name"}`: a new organisation, with its data (409 if the id exists)."""
        try:
            new = _NewOrg.model_validate_json(await request.read())
        except ValidationError as err:
            return web.json_response({"detail": err.errors(include_url=False)}, status=422)
        try:
            demo.account.add_org(DemoOrg(new.id, new.name))
        except ValueError:
            return error(409, "Organization exists")
        return web.json_response({"ok": True})

    async def remove_org(request: web.Request) -> web.Response:
        try:
            demo.account.remove_org(request.match_info["org_id"])
        except KeyError:
            return error(404, "Unknown organization")
        return web.json_response({"ok": True})

    async def set_faults(request: web.Request) -> web.Response:
        try:
            entry = PlanEntry.model_validate_json(await request.read())
        except ValidationError as err:
            return web.json_response({"detail": err.errors(include_url=False)}, status=422)
        demo.plan.set(entry)
        return web.json_response({"ok": True})

    async def clear_faults(request: web.Request) -> web.Response:
        demo.plan.clear()
        return web.json_response({"ok": True})

    async def requests(request: web.Request) -> web.Response:
        counts = [
            {"endpoint": endpoint, "org": org, "requests": n}
            for (endpoint, org), n in sorted(demo.plan.requests.items())
        ]
        return web.json_response(counts)

    return [
        web.get("/_demo/account", account),
        web.post("/_demo/orgs", add_org),
        web.delete("/_demo/orgs/{org_id}", remove_org),
        web.post("/_demo/faults", set_faults),
        web.delete("/_demo/faults", clear_faults),
        web.get("/_demo/requests", requests),
    ]


@web.middleware
async def admin_on_loopback_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse the admin API to any peer that is not on loopback."""
    if request.path.startswith("/_demo/"):
        remote = request.remote or ""
        try:
            loopback = ipaddress.ip_address(remote).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            return error(403, "the demo admin API answers on loopback only")
    return await handler(request)
