"""The demo Devin API as a real server on loopback, and the requests the demo tests make."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from exporter.demo.account import DemoAccount
from exporter.demo.app import DemoAPI
from exporter.devin.spec import Contract
from exporter.web.listener import listen

T = 1_790_000_000  # the demo API's fixed "now": 2026-09-21T14:13:20Z
DAY = 86400
WEEK = 7 * DAY
WINDOW = {"time_after": T - WEEK, "time_before": T}
V3 = "/v3/organizations/{org}/metrics/sessions"
V2 = "/v2/enterprise/metrics/sessions"

ORG_PATHS = [
    "/v3/organizations/{org}/metrics/prs",
    "/v3/organizations/{org}/metrics/searches",
    "/v3/organizations/{org}/metrics/active-users",
    "/v3/organizations/{org}/metrics/dau",
    "/v3/organizations/{org}/metrics/wau",
    "/v3/organizations/{org}/metrics/mau",
    "/v3/organizations/{org}/consumption/daily",
]
ENTERPRISE_PATHS = [
    "/v3/enterprise/metrics/sessions",
    "/v3/enterprise/metrics/prs",
    "/v3/enterprise/metrics/searches",
    "/v3/enterprise/metrics/active-users",
    "/v3/enterprise/metrics/sessions-by-category",
    "/v3/enterprise/consumption/daily",
    "/v3/enterprise/consumption/cycles",
    "/v3/enterprise/organizations",
]
V2_PATHS = [
    "/v2/enterprise/metrics/prs",
    "/v2/enterprise/consumption/daily",
    "/v2/enterprise/organizations",
]
# Endpoints whose time range is required.
REQUIRED_WINDOW = [p for p in ORG_PATHS + ENTERPRISE_PATHS if "consumption" not in p]
REQUIRED_WINDOW.remove("/v3/enterprise/organizations")


def window_for(path: str) -> dict[str, int]:
    """WINDOW where the contract documents a time range for `path`, else no parameters."""
    operation = Contract.load().operation(path)
    assert operation is not None, path
    return WINDOW if "time_after" in operation.parameters else {}


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class Served:
    """A running demo API and an httpx client pointed at it."""

    api: DemoAPI
    http: httpx.AsyncClient

    @property
    def account(self) -> DemoAccount:
        return self.api.account

    @property
    def org(self) -> str:
        return self.account.orgs[0].id

    @property
    def orgs(self) -> list[str]:
        return [o.id for o in self.account.orgs]

    def auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def cog(self) -> dict[str, str]:
        return self.auth(self.account.service_user_key)

    def apk(self) -> dict[str, str]:
        return self.auth(self.account.enterprise_key)

    async def get(self, path: str, key: str, params: Any = None) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.auth(key))

    async def v3(
        self, org: str | None = None, after: int = T - DAY, before: int = T
    ) -> httpx.Response:
        """The org sessions endpoint over [after, before], with the org-level key."""
        params = {"time_after": after, "time_before": before}
        return await self.http.get(
            V3.format(org=org or self.org), params=params, headers=self.cog()
        )

    async def v2(self, params: dict[str, Any]) -> httpx.Response:
        """The v2 sessions endpoint, with the enterprise admin key."""
        return await self.http.get(V2, params=params, headers=self.apk())

    async def org_get(self, path: str, org: str | None = None, **params: Any) -> httpx.Response:
        """An org endpoint with the org-level service user key."""
        url = path.format(org=org or self.org)
        return await self.get(url, self.account.service_user_key, params or window_for(url))

    async def ent_get(self, path: str, params: Any = None) -> httpx.Response:
        """An enterprise endpoint with the account-level service user key."""
        key = self.account.enterprise_service_user_key
        return await self.get(path, key, params or window_for(path))

    async def v2_get(self, path: str, params: Any = None) -> httpx.Response:
        return await self.get(path, self.account.enterprise_key, params)

    async def add_faults(self, org: str, faults: list[dict[str, Any]]) -> None:
        """Faults for the org sessions endpoint of `org`."""
        entry = {"endpoint": "v3_org_sessions", "org": org, "faults": faults}
        response = await self.http.post("/_demo/faults", json=entry)
        assert response.json() == {"ok": True}


@asynccontextmanager
async def serve(account: DemoAccount) -> AsyncIterator[Served]:
    """Run the demo API for `account` on a free loopback port, its clock fixed at T."""
    api = DemoAPI(account, clock=lambda: float(T))
    listener = await listen(api.app(), "127.0.0.1:0")
    try:
        async with httpx.AsyncClient(base_url=listener.url, timeout=10) as http:
            yield Served(api, http)
    finally:
        await listener.close()
