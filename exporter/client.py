"""Talks to Devin's metrics APIs over an injected `httpx.AsyncClient`."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Generic, Literal, Protocol, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from exporter.models import (
    ActiveUsers,
    ActiveUsersSeries,
    BillingCycle,
    CursorPage,
    DailyConsumption,
    EnterpriseSessions,
    OffsetPage,
    OrganizationSummary,
    PrMetrics,
    SearchMetrics,
    SessionMetrics,
    SessionsByCategory,
    validation_detail,
)
from exporter.ratelimit import KeyGates

# The `endpoint` label of every request, and the demo API's fault-plan endpoint names.
V3_ORG_SESSIONS: Final = "v3_org_sessions"
V3_ORG_PRS: Final = "v3_org_prs"
V3_ORG_SEARCHES: Final = "v3_org_searches"
V3_ORG_ACTIVE_USERS: Final = "v3_org_active_users"
V3_ORG_ACTIVE_USER_BUCKETS: Final = "v3_org_active_user_buckets"  # dau, wau and mau
V3_ORG_CONSUMPTION_DAILY: Final = "v3_org_consumption_daily"
V3_ENTERPRISE_SESSIONS: Final = "v3_enterprise_sessions"
V3_ENTERPRISE_PRS: Final = "v3_enterprise_prs"
V3_ENTERPRISE_SEARCHES: Final = "v3_enterprise_searches"
V3_ENTERPRISE_ACTIVE_USERS: Final = "v3_enterprise_active_users"
V3_ENTERPRISE_CONSUMPTION_DAILY: Final = "v3_enterprise_consumption_daily"
V3_ENTERPRISE_SESSIONS_BY_CATEGORY: Final = "v3_enterprise_sessions_by_category"
V3_ENTERPRISE_CONSUMPTION_CYCLES: Final = "v3_enterprise_consumption_cycles"
V3_ENTERPRISE_ORGANIZATIONS: Final = "v3_enterprise_organizations"
V2_ENTERPRISE_SESSIONS: Final = "v2_enterprise_sessions"
V2_ENTERPRISE_PRS: Final = "v2_enterprise_prs"
V2_ENTERPRISE_CONSUMPTION_DAILY: Final = "v2_enterprise_consumption_daily"
V2_ENTERPRISE_ORGANIZATIONS: Final = "v2_enterprise_organizations"

ActiveUserPeriod = Literal["dau", "wau", "mau"]
"""The period of `org_active_user_buckets`: UTC days, Monday-start UTC weeks, UTC months."""

# A list endpoint followed past this many pages is broken (or hostile), not big.
MAX_PAGES: Final = 1000

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
_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
# Cooldown of a key after a 429 that does not say how long to wait.
_DEFAULT_COOLDOWN_SECONDS: Final = 1.0

ResponseHook = Callable[[str, int], None]
"""Told `(endpoint, status_code)` for every HTTP response received."""
RetryHook = Callable[[str, str], None]
"""Told `(endpoint, reason)` before every retry."""

_Model = TypeVar("_Model", bound=BaseModel)
_Item = TypeVar("_Item", bound=BaseModel)


class DevinAPIError(Exception):
    """A request that did not yield a usable answer; `reason` is one of REASONS."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.reason = reason
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        text = reason if status is None else f"{reason} (HTTP {status})"
        super().__init__(f"{text}: {detail}" if detail else text)

    @property
    def transient(self) -> bool:
        """Worth another try: timeouts, dropped connections, 429 and 500/502/503/504."""
        return self.reason in ("timeout", "connection") or self.status in _RETRY_STATUSES


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one request tries: attempts, full-jitter backoff, and a time budget."""

    attempts: int = 3
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    # A request and its retries end within this (the exporter uses the poll interval),
    # so a Retry-After never holds a target past its next poll.
    budget_seconds: float = 60.0


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


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
        self,
        org_id: str,
        key: SecretStr,
        *,
        time_after: int,
        time_before: int,
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> SessionMetrics: ...

    async def enterprise_sessions(
        self, key: SecretStr, *, start: datetime, end: datetime, org_ids: Sequence[str] = ()
    ) -> EnterpriseSessions: ...

    async def org_prs(
        self, org_id: str, key: SecretStr, *, time_after: int, time_before: int
    ) -> PrMetrics: ...

    async def org_searches(
        self, org_id: str, key: SecretStr, *, time_after: int, time_before: int
    ) -> SearchMetrics: ...

    async def org_active_users(
        self, org_id: str, key: SecretStr, *, time_after: int, time_before: int
    ) -> ActiveUsers: ...

    async def org_active_user_buckets(
        self,
        org_id: str,
        key: SecretStr,
        period: ActiveUserPeriod,
        *,
        time_after: int,
        time_before: int,
    ) -> list[ActiveUsers]: ...

    async def org_consumption_daily(
        self,
        org_id: str,
        key: SecretStr,
        *,
        time_after: int | None = None,
        time_before: int | None = None,
    ) -> DailyConsumption: ...

    async def enterprise_metric_sessions(
        self, key: SecretStr, *, time_after: int, time_before: int, org_ids: Sequence[str] = ()
    ) -> SessionMetrics: ...

    async def enterprise_prs(
        self, key: SecretStr, *, time_after: int, time_before: int, org_ids: Sequence[str] = ()
    ) -> PrMetrics: ...

    async def enterprise_searches(
        self, key: SecretStr, *, time_after: int, time_before: int, org_ids: Sequence[str] = ()
    ) -> SearchMetrics: ...

    async def enterprise_active_users(
        self, key: SecretStr, *, time_after: int, time_before: int, org_ids: Sequence[str] = ()
    ) -> ActiveUsers: ...

    async def enterprise_consumption_daily(
        self,
        key: SecretStr,
        *,
        time_after: int | None = None,
        time_before: int | None = None,
        org_ids: Sequence[str] = (),
    ) -> DailyConsumption: ...

    async def enterprise_sessions_by_category(
        self, key: SecretStr, *, time_after: int, time_before: int, org_ids: Sequence[str] = ()
    ) -> SessionsByCategory: ...

    async def enterprise_consumption_cycles(
        self, key: SecretStr, *, page_size: int = 100
    ) -> list[BillingCycle]: ...

    async def enterprise_organizations(
        self, key: SecretStr, *, page_size: int = 100
    ) -> list[OrganizationSummary]: ...

    async def v2_enterprise_prs(
        self, key: SecretStr, *, start: datetime, end: datetime, org_ids: Sequence[str] = ()
    ) -> PrMetrics: ...

    async def v2_consumption_daily(
        self, key: SecretStr, *, start: datetime, end: datetime, org_ids: Sequence[str] = ()
    ) -> DailyConsumption: ...

    async def v2_organizations(
        self, key: SecretStr, *, page_size: int = 100
    ) -> list[OrganizationSummary]: ...


def rfc3339(moment: datetime) -> str:
    """`2026-11-21T23:00:00Z`: the v2 API's date-time parameters."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Request(Generic[_Model]):
    """One GET to Devin: which endpoint (for metrics), where, with which key, parsed how."""

    endpoint: str
    path: str
    key: SecretStr = field(repr=False)
    params: dict[str, Any]
    model: type[_Model]


class DevinClient:
    """The real `DevinAPI`: bearer auth, per-key rate limits, retries, typed answers.

    The caller owns `http` (its base URL, timeouts and lifetime).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        gates: KeyGates | None = None,
        retry: RetryPolicy | None = None,
        on_response: ResponseHook | None = None,
        on_retry: RetryHook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._gates = gates or KeyGates(requests_per_second=10, max_concurrency=8)
        self.retry_policy = retry or RetryPolicy()
        self._on_response = on_response
        self._on_retry = on_retry
        self._clock = clock

    def retain_keys(self, keys: list[SecretStr]) -> None:
        """Forget the rate-limit state of keys no longer in use."""
        self._gates.retain(keys)

    async def org_sessions(
        self,
        org_id: str,
        key: SecretStr,
        *,
        time_after: int,
        time_before: int,
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> SessionMetrics:
        """`filters` narrow the count: user_ids, service_user_ids, playbook_id."""
        params: dict[str, Any] = {"time_after": time_after, "time_before": time_before}
        for name, values in (filters or {}).items():
            params[name] = list(values) if name != "playbook_id" else values[0]
        return await self._get(
            _Request(
                V3_ORG_SESSIONS,
                f"/v3/organizations/{org_id}/metrics/sessions",
                key,
                params,
                SessionMetrics,
            )
        )

    async def enterprise_sessions(
        self, key: SecretStr, *, start: datetime, end: datetime, org_ids: Sequence[str] = ()
    ) -> EnterpriseSessions:
        params: dict[str, Any] = {"start": rfc3339(start), "end": rfc3339(end)}
        if org_ids:
            params["org_ids"] = list(org_ids)
        return await self._get(
            _Request(
                V2_ENTERPRISE_SESSIONS,
                "/v2/enterprise/metrics/sessions",
                key,
                params,
                EnterpriseSessions,
            )
        )

    # Organisation endpoints (v3): a service user key with the org's permission.

    async def org_prs(
        self, org_id: str, key: SecretStr, *, time_after: int, time_before: int
    ) -> PrMetrics:
        return await self._windowed(
            V3_ORG_PRS,
            f"/v3/organizations/{org_id}/metrics/prs",
            PrMetrics,
            key,
            time_after,
            time_before,
        )

    async def org_searches(
        self, org_id: str, key: SecretStr, *, time_after: int, time_before: int
    ) -> SearchMetrics:
        return await self._windowed(
            V3_ORG_SEARCHES,
            f"/v3/organizations/{org_id}/metrics/searches",
            SearchMetrics,
            key,
            time_after,
            time_before,
        )

    async def org_active_users(
        self, org_id: str, key: SecretStr, *, time_after: int, time_before: int
    ) -> ActiveUsers:
        """Unique users with at least one session or search over the whole range."""
        return await self._windowed(
            V3_ORG_ACTIVE_USERS,
            f"/v3/organizations/{org_id}/metrics/active-users",
            ActiveUsers,
            key,
            time_after,
            time_before,
        )

    async def org_active_user_buckets(
        self,
        org_id: str,
        key: SecretStr,
        period: ActiveUserPeriod,
        *,
        time_after: int,
        time_before: int,
    ) -> list[ActiveUsers]:
        """Active users per UTC day, Monday-start week or month (`dau`, `wau`, `mau`)."""
        if period not in ("dau", "wau", "mau"):
            raise ValueError(f"period must be dau, wau or mau, not {period!r}")
        series = await self._get(
            _Request(
                V3_ORG_ACTIVE_USER_BUCKETS,
                f"/v3/organizations/{org_id}/metrics/{period}",
                key,
                _window(time_after, time_before),
                ActiveUsersSeries,
            )
        )
        return list(series.root)

    async def org_consumption_daily(
        self,
        org_id: str,
        key: SecretStr,
        *,
        time_after: int | None = None,
        time_before: int | None = None,
    ) -> DailyConsumption:
        """ACUs per billing day (from 08:00 UTC); needs a billing, not a metrics, permission."""
        return await self._get(
            _Request(
                V3_ORG_CONSUMPTION_DAILY,
                f"/v3/organizations/{org_id}/consumption/daily",
                key,
                _optional_window(time_after, time_before),
                DailyConsumption,
            )
        )

    # Enterprise endpoints (v3): a service user key with account-level permissions.

    async def enterprise_metric_sessions(
        self, key: SecretStr, *, time_after: int, time_before: int, org_ids: Sequence[str] = ()
    ) -> SessionMetrics:
        return await self._windowed(
            V3_ENTERPRISE_SESSIONS,
            "/v3/enterprise/metrics/sessions",
            SessionMetrics,
            key,
            time_after,
            time_before,
            org_ids,
        )

    async def enterprise_prs(
        self, key: SecretStr, *, time_after: int, time_before: int, org_ids: Sequence[str] = ()
    ) -> PrMetrics:
        return await self._windowed(
            V3_ENTERPRISE_PRS,
            "/v3/enterprise/metrics/prs",
            PrMetrics,
            key,
            time_after,
            time_before,
            org_ids,
        )

    async def enterprise_searches(
        self, key: SecretStr, *, time_after: int, time_before: int, org_ids: Sequence[str] = ()
    ) -> SearchMetrics:
        return await self._windowed(
            V3_ENTERPRISE_SEARCHES,
            "/v3/enterprise/metrics/searches",
            SearchMetrics,
            key,
            time_after,
            time_before,
            org_ids,
        )

    async def enterprise_active_users(
        self, key: SecretStr, *, time_after: int, time_before: int, org_ids: Sequence[str] = ()
    ) -> ActiveUsers:
        return await self._windowed(
            V3_ENTERPRISE_ACTIVE_USERS,
            "/v3/enterprise/metrics/active-users",
            ActiveUsers,
            key,
            time_after,
            time_before,
            org_ids,
        )

    async def enterprise_consumption_daily(
        self,
        key: SecretStr,
        *,
        time_after: int | None = None,
        time_before: int | None = None,
        org_ids: Sequence[str] = (),
    ) -> DailyConsumption:
        return await self._get(
            _Request(
                V3_ENTERPRISE_CONSUMPTION_DAILY,
                "/v3/enterprise/consumption/daily",
                key,
                _optional_window(time_after, time_before, org_ids),
                DailyConsumption,
            )
        )

    async def enterprise_sessions_by_category(
        self, key: SecretStr, *, time_after: int, time_before: int, org_ids: Sequence[str] = ()
    ) -> SessionsByCategory:
        return await self._windowed(
            V3_ENTERPRISE_SESSIONS_BY_CATEGORY,
            "/v3/enterprise/metrics/sessions-by-category",
            SessionsByCategory,
            key,
            time_after,
            time_before,
            org_ids,
        )

    async def enterprise_consumption_cycles(
        self, key: SecretStr, *, page_size: int = 100
    ) -> list[BillingCycle]:
        """Every billing cycle, all pages, in the order the API lists them."""
        return await self._cursor_pages(
            V3_ENTERPRISE_CONSUMPTION_CYCLES,
            "/v3/enterprise/consumption/cycles",
            key,
            page_size,
            CursorPage[BillingCycle],
        )

    async def enterprise_organizations(
        self, key: SecretStr, *, page_size: int = 100
    ) -> list[OrganizationSummary]:
        """Every organisation of the enterprise, all pages."""
        return await self._cursor_pages(
            V3_ENTERPRISE_ORGANIZATIONS,
            "/v3/enterprise/organizations",
            key,
            page_size,
            CursorPage[OrganizationSummary],
        )

    # Enterprise endpoints (v2): an enterprise admin's personal key.

    async def v2_enterprise_prs(
        self, key: SecretStr, *, start: datetime, end: datetime, org_ids: Sequence[str] = ()
    ) -> PrMetrics:
        """v2's counts (`prs_created_count` is None): opened means opened in the period."""
        params: dict[str, Any] = {"start": rfc3339(start), "end": rfc3339(end)}
        if org_ids:
            params["org_ids"] = list(org_ids)
        return await self._get(
            _Request(V2_ENTERPRISE_PRS, "/v2/enterprise/metrics/prs", key, params, PrMetrics)
        )

    async def v2_consumption_daily(
        self, key: SecretStr, *, start: datetime, end: datetime, org_ids: Sequence[str] = ()
    ) -> DailyConsumption:
        """ACUs per billing day (no product split in v2; with `org_ids`, Devin's own)."""
        params: dict[str, Any] = {"start": rfc3339(start), "end": rfc3339(end)}
        if org_ids:
            params["org_ids"] = list(org_ids)
        return await self._get(
            _Request(
                V2_ENTERPRISE_CONSUMPTION_DAILY,
                "/v2/enterprise/consumption/daily",
                key,
                params,
                DailyConsumption,
            )
        )

    async def v2_organizations(
        self, key: SecretStr, *, page_size: int = 100
    ) -> list[OrganizationSummary]:
        """Every organisation of the enterprise, by `skip`/`limit` pages."""
        _check_page_size(page_size)
        found: list[OrganizationSummary] = []
        skip = 0
        for _ in range(MAX_PAGES):
            page = await self._get(
                _Request(
                    V2_ENTERPRISE_ORGANIZATIONS,
                    "/v2/enterprise/organizations",
                    key,
                    {"skip": skip, "limit": page_size},
                    OffsetPage[OrganizationSummary],
                )
            )
            found.extend(page.items)
            if not page.has_more:
                return found
            following = page.next_cursor if page.next_cursor is not None else skip + len(page.items)
            if following <= skip:
                raise DevinAPIError(
                    "invalid_response", status=200, detail="pagination: has_more without progress"
                )
            skip = following
        raise DevinAPIError(
            "invalid_response", status=200, detail=f"pagination: more than {MAX_PAGES} pages"
        )

    async def _cursor_pages(
        self,
        endpoint: str,
        path: str,
        key: SecretStr,
        page_size: int,
        model: type[CursorPage[_Item]],
    ) -> list[_Item]:
        """Follow `end_cursor` to the last page; a repeated or missing cursor is an error."""
        _check_page_size(page_size)
        found: list[_Item] = []
        seen: set[str] = set()
        params: dict[str, Any] = {"first": page_size}
        for _ in range(MAX_PAGES):
            page = await self._get(_Request(endpoint, path, key, dict(params), model))
            found.extend(page.items)
            if not page.has_next_page:
                return found
            cursor = page.end_cursor
            if not cursor:
                raise DevinAPIError(
                    "invalid_response",
                    status=200,
                    detail="pagination: has_next_page without end_cursor",
                )
            if cursor in seen:
                raise DevinAPIError(
                    "invalid_response", status=200, detail="pagination: end_cursor repeated"
                )
            seen.add(cursor)
            params["after"] = cursor
        raise DevinAPIError(
            "invalid_response", status=200, detail=f"pagination: more than {MAX_PAGES} pages"
        )

    async def _windowed(
        self,
        endpoint: str,
        path: str,
        model: type[_Model],
        key: SecretStr,
        time_after: int,
        time_before: int,
        org_ids: Sequence[str] = (),
    ) -> _Model:
        """A metrics request over [time_after, time_before], optionally for some orgs."""
        return await self._get(
            _Request(endpoint, path, key, _window(time_after, time_before, org_ids), model)
        )

    async def _get(self, request: _Request[_Model]) -> _Model:
        """One request with its retries: transient failures only, within the budget."""
        policy = self.retry_policy
        backoff = wait_random_exponential(
            multiplier=policy.initial_backoff_seconds, max=policy.max_backoff_seconds
        )

        def wait(state: RetryCallState) -> float:
            error = _error_of(state)
            left = policy.budget_seconds - (state.seconds_since_start or 0.0)
            if error is not None and error.status == 429:
                return (
                    0.0  # the key's gate holds every request, this one too, until the cooldown ends
                )
            if error is not None and error.retry_after is not None:
                return max(0.0, min(error.retry_after, left))
            return max(0.0, min(backoff(state), left))

        class RetryAfterPastBudget(stop_base):
            """Give up now when the server asks for a wait longer than the budget left."""

            def __call__(self, state: RetryCallState) -> bool:
                error = _error_of(state)
                left = policy.budget_seconds - (state.seconds_since_start or 0.0)
                return error is not None and (error.retry_after or 0.0) > left

        def before_sleep(state: RetryCallState) -> None:
            error = _error_of(state)
            if error is not None and self._on_retry is not None:
                self._on_retry(request.endpoint, error.reason)

        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, DevinAPIError) and e.transient),
            stop=(
                stop_after_attempt(policy.attempts)
                | stop_after_delay(policy.budget_seconds)
                | RetryAfterPastBudget()
            ),
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            # The deadline covers everything: waits for the key's gate, a server that
            # trickles its answer a byte at a time (httpx's timeout is per read), retries.
            async with asyncio.timeout(policy.budget_seconds):
                async for attempt in retrying:
                    with attempt:
                        return await self._attempt(request)
        except TimeoutError:
            raise DevinAPIError("timeout", detail="deadline of the poll passed") from None
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _attempt(self, request: _Request[_Model]) -> _Model:
        secret = request.key.get_secret_value()
        headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json"}
        gate = self._gates.for_key(request.key)
        async with gate.slot():
            try:
                response = await self._http.get(
                    request.path, params=request.params, headers=headers
                )
            except httpx.TimeoutException:
                raise DevinAPIError("timeout") from None
            except (httpx.TransportError, httpx.DecodingError) as err:
                raise DevinAPIError("connection", detail=type(err).__name__) from None
        if self._on_response is not None:
            self._on_response(request.endpoint, response.status_code)
        if response.status_code != 200:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            if response.status_code == 429:
                cooldown = retry_after if retry_after is not None else _DEFAULT_COOLDOWN_SECONDS
                gate.cool_down(min(cooldown, self.retry_policy.budget_seconds))
            raise DevinAPIError(
                reason_for_status(response.status_code),
                status=response.status_code,
                detail=_redact(_error_detail(response), secret),
                retry_after=retry_after,
            )
        try:
            return request.model.model_validate_json(response.content)
        except ValidationError as err:
            first = err.errors(include_input=False, include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise DevinAPIError(
                "invalid_response", status=200, detail=_redact(f"{where}: {first['msg']}", secret)
            ) from None


def _window(time_after: int, time_before: int, org_ids: Sequence[str] = ()) -> dict[str, Any]:
    """v3 query parameters: Unix seconds, and `org_ids` as a repeated key when given."""
    params: dict[str, Any] = {"time_after": time_after, "time_before": time_before}
    if org_ids:
        params["org_ids"] = list(org_ids)
    return params


def _optional_window(
    time_after: int | None, time_before: int | None, org_ids: Sequence[str] = ()
) -> dict[str, Any]:
    """Like `_window`, leaving out a bound that is None (the API then picks its default)."""
    params: dict[str, Any] = {}
    if time_after is not None:
        params["time_after"] = time_after
    if time_before is not None:
        params["time_before"] = time_before
    if org_ids:
        params["org_ids"] = list(org_ids)
    return params


def _check_page_size(page_size: int) -> None:
    if not 1 <= page_size <= 200:
        raise ValueError(f"page_size must be 1 to 200, not {page_size}")


def _error_of(state: RetryCallState) -> DevinAPIError | None:
    error = state.outcome.exception() if state.outcome is not None else None
    return error if isinstance(error, DevinAPIError) else None


def _error_detail(response: httpx.Response) -> str:
    try:
        return validation_detail(json.loads(response.content))
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return ""


def _redact(text: str, secret: str) -> str:
    """Text from the API, without the key (a hostile API may echo it), cut to 200 characters.

    The key goes before the cut, so that no fragment of it can survive.
    """
    return (text.replace(secret, "<redacted>") if secret else text)[:200]
