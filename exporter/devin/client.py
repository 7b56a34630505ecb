"""Talks to Devin over an injected `httpx.AsyncClient`: one request path for every row of
the endpoint table, and the two paginators."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Protocol, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from exporter.devin.body import ACCEPT_ENCODING, read_body
from exporter.devin.errors import (
    DevinAPIError,
    error_detail,
    invalid_response,
    reason_for_status,
    safe_detail,
)
from exporter.devin.models import CursorPage, OffsetPage
from exporter.devin.ratelimit import KeyGates
from exporter.devin.redact import Redactor
from exporter.devin.retries import RetryPolicy, parse_retry_after, with_retries
from exporter.devin.table import Call, Endpoint

# A list endpoint followed past this many pages is broken (or hostile), not big.
MAX_PAGES: Final = 1000

# Cooldown of a key after a 429 that does not say how long to wait.
_DEFAULT_COOLDOWN_SECONDS: Final = 1.0
# The default cap on an answer, counted after decompression (`devin.max_response_bytes`).
DEFAULT_MAX_RESPONSE_BYTES: Final = 16 * 2**20
# An error answer is read this far, for its detail; the rest is never read.
_ERROR_BODY_BYTES: Final = 64 * 2**10

ResponseHook = Callable[[str, int], None]
"""Told `(endpoint, status_code)` for every HTTP response received."""
RetryHook = Callable[[str, str], None]
"""Told `(endpoint, reason)` before every retry."""

_Model = TypeVar("_Model", bound=BaseModel)
_Item = TypeVar("_Item", bound=BaseModel)


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
        call: Call | None = None,
    ) -> list[_Item]:
        """Every item of a paginated list, all pages, in the order the API lists them;
        `call` names the path's parameters and any filters besides the page's own."""
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

    The caller owns `http` (its base URL, default timeouts and lifetime); `timeout_seconds`,
    when set, is each request's timeout instead. An answer larger than
    `max_response_bytes`, counted after decompression, is `response_too_large`: it is
    read no further than that, so a hostile or broken upstream cannot exhaust memory.
    Both may be changed between requests (a reload does).
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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        timeout_seconds: float | None = None,
    ) -> None:
        self._http = http
        # Where every path goes, ending with one slash ("/" without a base URL).
        self._base_url = str(http.base_url).removesuffix("/") + "/"
        self._gates = gates or KeyGates(requests_per_second=10, max_concurrency=8)
        self.retry_policy = retry or RetryPolicy()
        self._on_response = on_response
        self._on_retry = on_retry
        self._clock = clock
        self.max_response_bytes = max_response_bytes
        self.timeout_seconds = timeout_seconds
        self._redactors: dict[SecretStr, Redactor] = {}

    @property
    def max_response_bytes(self) -> int:
        return self._max_response_bytes

    @max_response_bytes.setter
    def max_response_bytes(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"max_response_bytes must be positive, not {value}")
        self._max_response_bytes = value

    def retain_keys(self, keys: list[SecretStr]) -> None:
        """Forget the rate-limit state and the redactors of keys no longer in use."""
        self._gates.retain(keys)
        self._redactors = {k: r for k, r in self._redactors.items() if k in keys}

    def _redactor(self, key: SecretStr) -> Redactor:
        """The key's redactor, built once (its fragments) rather than for every answer."""
        redactor = self._redactors.get(key)
        if redactor is None:
            redactor = self._redactors[key] = Redactor([key.get_secret_value()])
        return redactor

    async def fetch(self, endpoint: Endpoint[_Model], key: SecretStr, call: Call) -> _Model:
        """One answer of `endpoint` for `call`, with retries, parsed into the row's model."""
        request = _Request(
            endpoint.name, endpoint.url(call), key, dict(call.params), endpoint.model
        )
        on_retry = self._on_retry
        return await with_retries(
            self.retry_policy,
            functools.partial(self._attempt, request),
            None if on_retry is None else functools.partial(on_retry, endpoint.name),
        )

    async def pages(
        self,
        endpoint: Endpoint[CursorPage[_Item]] | Endpoint[OffsetPage[_Item]],
        key: SecretStr,
        *,
        page_size: int = 100,
        call: Call | None = None,
    ) -> list[_Item]:
        """Every item of a paginated list: `first`/`after` (v3) or `skip`/`limit` (v2).

        `call` holds the path's parameters and the filters every page is asked with.

        A repeated cursor, a page that does not advance, or more than MAX_PAGES pages is
        an `invalid_response`: a broken (or hostile) list, not a big one.
        """
        if not 1 <= page_size <= 200:
            raise ValueError(f"page_size must be 1 to 200, not {page_size}")
        if endpoint.pagination == "offset":
            return await self._offset_pages(endpoint, key, page_size)
        return await self._cursor_pages(endpoint, key, page_size, call or Call())

    async def _cursor_pages(
        self, endpoint: Endpoint[Any], key: SecretStr, page_size: int, call: Call
    ) -> list[Any]:
        found: list[Any] = []
        seen: set[str] = set()
        params: dict[str, Any] = {**call.params, "first": page_size}
        for _ in range(MAX_PAGES):
            page = await self.fetch(endpoint, key, Call(call.path, dict(params)))
            found.extend(page.items)
            if not page.has_next_page:
                return found
            cursor = page.end_cursor
            if not cursor:
                raise invalid_response("pagination: has_next_page without end_cursor")
            if cursor in seen:
                raise invalid_response("pagination: end_cursor repeated")
            seen.add(cursor)
            params["after"] = cursor
        raise invalid_response(f"pagination: more than {MAX_PAGES} pages")

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
                raise invalid_response("pagination: has_more without progress")
            skip = following
        raise invalid_response(f"pagination: more than {MAX_PAGES} pages")

    def _url(self, request: _Request[Any]) -> httpx.URL:
        """The request's absolute URL, parsed once: given a relative path and `params`,
        httpx would parse it three times (path, base URL joined, query merged), a third of
        its cost per request."""
        query = f"?{httpx.QueryParams(request.params)}" if request.params else ""
        return httpx.URL(f"{self._base_url}{request.path.lstrip('/')}{query}")

    async def _attempt(self, request: _Request[_Model]) -> _Model:
        secret = request.key.get_secret_value()
        headers = {
            "Authorization": f"Bearer {secret}",
            "Accept": "application/json",
            # Only what `read_body` can decode within the cap.
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        gate = self._gates.for_key(request.key)
        async with gate.slot():
            try:
                url = self._url(request)
                async with self._http.stream(
                    "GET",
                    url,
                    headers=headers,
                    timeout=self.timeout_seconds or httpx.USE_CLIENT_DEFAULT,
                ) as response:
                    status = response.status_code
                    retry_after_header = response.headers.get("Retry-After")
                    limit = self._max_response_bytes if status == 200 else _ERROR_BODY_BYTES
                    body = await read_body(response, limit)
                # Leaving the block closes the response: past the cap, the rest of the
                # answer is never read (and its connection is not reused).
            except httpx.TimeoutException:
                raise DevinAPIError("timeout") from None
            except httpx.TransportError as err:
                raise DevinAPIError("connection", detail=type(err).__name__) from None
        if self._on_response is not None:
            self._on_response(request.endpoint, status)
        if status != 200:
            retry_after = parse_retry_after(retry_after_header, self._clock())
            if status == 429:
                cooldown = retry_after if retry_after is not None else _DEFAULT_COOLDOWN_SECONDS
                gate.cool_down(min(cooldown, self.retry_policy.budget_seconds))
            raise DevinAPIError(
                reason_for_status(status),
                status=status,
                detail=safe_detail(error_detail(body.content), secret),
                retry_after=retry_after,
            )
        if body.unreadable:
            raise invalid_response(safe_detail(body.unreadable, secret))
        if body.cut:
            # The error's traceback holds this frame: let the buffer go before raising.
            body.content.clear()
            raise DevinAPIError(
                "response_too_large",
                status=status,
                detail=f"more than {self._max_response_bytes} bytes{body.decoded}",
            )
        try:
            # A fragment of the key echoed in an answer must not become a label value.
            return request.model.model_validate_json(
                self._redactor(request.key).scrub(body.content)
            )
        except ValidationError as err:
            first = err.errors(include_input=False, include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            problem = f"{where}: {first['msg']}"
        # Raised out here, so that the error keeps neither the ValidationError (which holds
        # the input) nor, through its traceback, the buffer.
        body.content.clear()
        raise invalid_response(safe_detail(problem, secret))
