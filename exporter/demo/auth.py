"""Who may ask the demo what: a row's key kind and permission against the request's key.

401: no or unknown key. 403: the wrong kind of key, or an organisation the key lacks. 404:
an organisation nobody has. The `/v3/enterprise/*` endpoints answer 401 and 403 as RFC 9457
problem details (which keep `detail`), as Devin's newer pages document.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from exporter.demo.account import DemoAccount
from exporter.demo.errors import error, problem
from exporter.devin.table import Endpoint


def bearer(request: web.Request) -> str | None:
    """The request's bearer token, if it sends one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def denied(
    account: DemoAccount, row: Endpoint[Any], request: web.Request, org_id: str
) -> web.Response | None:
    """Why a key may not ask a row, if it may not: by the row's key kind and permission."""
    if row.key == "enterprise_admin":
        return _v2_denied(account, request)
    if row.key == "service_user":
        return _org_denied(account, request, org_id, row.permission)
    refused = _enterprise_denied(account, request, row.permission)
    if refused is None and row.per_org_path and org_id not in account.models:
        return problem(404, "Not Found", "Unknown organization")
    return refused


def _org_denied(
    account: DemoAccount, request: web.Request, org_id: str, permission: str
) -> web.Response | None:
    """Why a v3 organisation request is refused, if it is."""
    key = bearer(request)
    if key is None or not account.knows(key):
        return error(401, "Invalid or missing API key")
    if key in account.enterprise_service_user_keys:  # inherited by every org
        return None if org_id in account.models else error(404, "Unknown organization")
    if key not in account.service_user_keys:
        return error(403, "This endpoint needs a service user key (cog_)")
    if org_id not in account.service_user_keys[key]:
        status = 403 if org_id in account.models else 404
        return error(status, f"Service user lacks {permission} on this organization")
    return None


def _enterprise_denied(
    account: DemoAccount, request: web.Request, permission: str
) -> web.Response | None:
    """Why a v3 enterprise request is refused, if it is (as problem details)."""
    key = bearer(request)
    if key is None or not account.knows(key):
        return problem(401, "Unauthorized", "Invalid or missing API key")
    if key in account.enterprise_service_user_keys:
        return None
    if key in account.service_user_keys:
        return problem(403, "Forbidden", f"Service user lacks {permission} at the enterprise level")
    return problem(403, "Forbidden", "This endpoint needs a service user key (cog_)")


def _v2_denied(account: DemoAccount, request: web.Request) -> web.Response | None:
    key = bearer(request)
    if key is None or not account.knows(key):
        return error(401, "Invalid or missing API key")
    if key not in account.enterprise_keys:
        return error(403, "Enterprise admin personal API key (apk_user_) required")
    return None
