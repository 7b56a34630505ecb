"""Talks to Devin over an injected `httpx.AsyncClient`: one request path for every row of
the endpoint table, and the two paginators."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Final, Generic, Protocol, TypeVar

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

from exporter.devin.models import CursorPage, OffsetPage, validation_detail
from exporter.devin.ratelimit import KeyGates
from exporter.devin.table import Call, Endpoint

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
    """Something that answers Devin's API: the real client, or a test fake."""

    async def fetch(self, endpoint: Endpoint[_Model], key: SecretStr, call: Call) -> _Model:
        """One answer of `endpoint` for `call`, parsed into the row's model."""
        ...

    async def pages(
        self,
        endpoint: Endpoint[CursorPage[_Item]] | Endpoint[OffsetPage[_Item]],
        key: SecretStr,
        *,
        page_size: int = 100,
    ) -> list[_Item]:
        """Every item of a paginated list, all pages, in the order the API lists them."""
        ...


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

    async def fetch(self, endpoint: Endpoint[_Model], key: SecretStr, call: Call) -> _Model:
        """One answer of `endpoint` for `call`, with retries, parsed into the row's model."""
        return await self._get(
            _Request(endpoint.name, endpoint.url(call), key, dict(call.params), endpoint.model)
        )

    async def pages(
        self,
        endpoint: Endpoint[CursorPage[_Item]] | Endpoint[OffsetPage[_Item]],
        key: SecretStr,
        *,
        page_size: int = 100,
    ) -> list[_Item]:
        """Every item of a paginated list: `first`/`after` (v3) or `skip`/`limit` (v2).

        A repeated cursor, a page that does not advance, or more than MAX_PAGES pages is
        an `invalid_response`: a broken (or hostile) list, not a big one.
        """
        if not 1 <= page_size <= 200:
            raise ValueError(f"page_size must be 1 to 200, not {page_size}")
        if endpoint.pagination == "offset":
            return await self._offset_pages(endpoint, key, page_size)
        return await self._cursor_pages(endpoint, key, page_size)

    async def _cursor_pages(
        self, endpoint: Endpoint[Any], key: SecretStr, page_size: int
    ) -> list[Any]:
        found: list[Any] = []
        seen: set[str] = set()
        params: dict[str, Any] = {"first": page_size}
        for _ in range(MAX_PAGES):
            page = await self.fetch(endpoint, key, Call(params=dict(params)))
            found.extend(page.items)
            if not page.has_next_page:
                return found
            cursor = page.end_cursor
            if not cursor:
                raise _invalid("pagination: has_next_page without end_cursor")
            if cursor in seen:
                raise _invalid("pagination: end_cursor repeated")
            seen.add(cursor)
            params["after"] = cursor
        raise _invalid(f"pagination: more than {MAX_PAGES} pages")

    async def _offset_pages(
        self, endpoint: Endpoint[Any], key: SecretStr, page_size: int
    ) -> list[Any]:
        found: list[Any] = []
        skip = 0
        for _ in range(MAX_PAGES):
            call = Call(params={"skip": skip, "limit": page_size})
            page = await self.fetch(endpoint, key, call)
            found.extend(page.items)
            if not page.has_more:
                return found
            following = page.next_cursor if page.next_cursor is not None else skip + len(page.items)
            if following <= skip:
                raise _invalid("pagination: has_more without progress")
            skip = following
        raise _invalid(f"pagination: more than {MAX_PAGES} pages")

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


def _invalid(detail: str) -> DevinAPIError:
    return DevinAPIError("invalid_response", status=200, detail=detail)


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
