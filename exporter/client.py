"""Talks to Devin's metrics APIs over an injected `httpx.AsyncClient`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from exporter.models import EnterpriseSessions, SessionMetrics, validation_detail

V3_ORG_SESSIONS: Final = "v3_org_sessions"
V2_ENTERPRISE_SESSIONS: Final = "v2_enterprise_sessions"
ENDPOINTS: Final = (V3_ORG_SESSIONS, V2_ENTERPRISE_SESSIONS)

# Why a poll failed: the `reason` label of devin_exporter_poll_errors_total.
REASONS: Final = (
    "timeout",
    "connection",
    "rate_limited",
    "unauthorized",
    "forbidden",
    "not_found",
    "client_error",
    "server_error",
    "invalid_response",
)

_STATUS_REASONS: Final = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    429: "rate_limited",
}

ResponseHook = Callable[[str, int], None]
"""Told `(endpoint, status_code)` for every HTTP response received."""

_Model = TypeVar("_Model", bound=BaseModel)


class DevinAPIError(Exception):
    """A request that did not yield a usable answer; `reason` is one of REASONS."""

    def __init__(self, reason: str, *, status: int | None = None, detail: str = "") -> None:
        self.reason = reason
        self.status = status
        self.detail = detail
        text = reason if status is None else f"{reason} (HTTP {status})"
        super().__init__(f"{text}: {detail}" if detail else text)


def reason_for_status(status: int) -> str:
    """The poll-error reason for a non-2xx HTTP status."""
    if status in _STATUS_REASONS:
        return _STATUS_REASONS[status]
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "invalid_response"


class DevinAPI(Protocol):
    """Something that answers Devin's metrics API: the real client, or a test fake."""

    async def org_sessions(
        self, org_id: str, key: SecretStr, *, time_after: int, time_before: int
    ) -> SessionMetrics: ...

    async def enterprise_sessions(
        self, key: SecretStr, *, start: datetime, end: datetime, org_ids: Sequence[str] = ()
    ) -> EnterpriseSessions: ...


def rfc3339(moment: datetime) -> str:
    """`2026-11-21T23:00:00Z`: the v2 API's date-time parameters."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DevinClient:
    """The real `DevinAPI`: bearer auth, a cap on requests in flight, typed answers.

    The caller owns `http` (its base URL, timeouts and lifetime).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        max_concurrency: int = 8,
        on_response: ResponseHook | None = None,
    ) -> None:
        self._http = http
        self._slots = asyncio.Semaphore(max_concurrency)
        self._on_response = on_response

    async def org_sessions(
        self, org_id: str, key: SecretStr, *, time_after: int, time_before: int
    ) -> SessionMetrics:
        return await self._get(
            V3_ORG_SESSIONS,
            f"/v3/organizations/{org_id}/metrics/sessions",
            key,
            {"time_after": time_after, "time_before": time_before},
            SessionMetrics,
        )

    async def enterprise_sessions(
        self, key: SecretStr, *, start: datetime, end: datetime, org_ids: Sequence[str] = ()
    ) -> EnterpriseSessions:
        params: dict[str, Any] = {"start": rfc3339(start), "end": rfc3339(end)}
        if org_ids:
            params["org_ids"] = list(org_ids)
        return await self._get(
            V2_ENTERPRISE_SESSIONS,
            "/v2/enterprise/metrics/sessions",
            key,
            params,
            EnterpriseSessions,
        )

    async def _get(
        self,
        endpoint: str,
        path: str,
        key: SecretStr,
        params: dict[str, Any],
        model: type[_Model],
    ) -> _Model:
        secret = key.get_secret_value()
        headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json"}
        async with self._slots:
            try:
                response = await self._http.get(path, params=params, headers=headers)
            except httpx.TimeoutException:
                raise DevinAPIError("timeout") from None
            except httpx.TransportError as err:
                raise DevinAPIError("connection", detail=type(err).__name__) from None
        if self._on_response is not None:
            self._on_response(endpoint, response.status_code)
        if response.status_code != 200:
            raise DevinAPIError(
                reason_for_status(response.status_code),
                status=response.status_code,
                detail=_redact(_error_detail(response), secret),
            )
        try:
            return model.model_validate_json(response.content)
        except ValidationError as err:
            first = err.errors(include_input=False, include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise DevinAPIError(
                "invalid_response", status=200, detail=_redact(f"{where}: {first['msg']}", secret)
            ) from None


def _error_detail(response: httpx.Response) -> str:
    try:
        return validation_detail(json.loads(response.content))
    except ValueError:
        return ""


def _redact(text: str, secret: str) -> str:
    """Remove the key from text that came back from the API (a hostile API may echo it)."""
    return text.replace(secret, "<redacted>") if secret else text
