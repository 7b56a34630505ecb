"""Talks to Devin over an injected `httpx.AsyncClient`: one request path for every row of
the endpoint table, and the two paginators."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import itertools
import json
import random
import time
import zlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Final, Generic, Protocol, TypeVar, cast

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from exporter.devin.models import CursorPage, OffsetPage, validation_detail
from exporter.devin.ratelimit import KeyGates
from exporter.devin.redact import Redactor, redact
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
    "response_too_large",
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
# The default cap on an answer, counted after decompression (`devin.max_response_bytes`).
DEFAULT_MAX_RESPONSE_BYTES: Final = 16 * 2**20
# An error answer is read this far, for its detail; the rest is never read.
_ERROR_BODY_BYTES: Final = 64 * 2**10
# The content codings the client decodes itself (httpx would inflate each network chunk
# whole, so one chunk of a gzip bomb could become hundreds of MB before any cap could
# look at it): zlib's `wbits` for each.
_ZLIB_WBITS: Final = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}
_ACCEPT_ENCODING: Final = "gzip, deflate"
# A compressed body is inflated at most this much input and output at a time, so that
# decoding holds only the answer so far and one small step besides.
_INFLATE_STEP_BYTES: Final = 16 * 2**10

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


def _pause(policy: RetryPolicy, error: DevinAPIError, attempt: int, elapsed: float) -> float | None:
    """Seconds to wait before trying again after `error`, or None to give up.

    Only transient failures, at most `policy.attempts` in all, never past the budget,
    and not at all when the server asks for a wait longer than the budget left. No wait
    after a 429, whose cooldown the key's gate applies to every request of the key, this
    one too; Retry-After when the server says; full jitter otherwise.
    """
    left = policy.budget_seconds - elapsed
    if not error.transient or attempt >= policy.attempts or left <= 0:
        return None
    if (error.retry_after or 0.0) > left:
        return None
    if error.status == 429:
        return 0.0
    if error.retry_after is not None:
        return max(0.0, error.retry_after)
    ceiling = policy.initial_backoff_seconds * 2.0 ** min(attempt - 1, 64)
    return min(random.uniform(0.0, min(ceiling, policy.max_backoff_seconds)), left)


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
        return await self._get(
            _Request(endpoint.name, endpoint.url(call), key, dict(call.params), endpoint.model)
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
        """One request with its retries: transient failures only, within the budget.

        A loop of its own rather than tenacity's: most requests succeed at once, and
        tenacity's state and iteration protocol cost a tenth of a millisecond of CPU
        per request (docs/performance.md).
        """
        policy = self.retry_policy
        clock = asyncio.get_running_loop().time
        try:
            # The deadline covers everything: waits for the key's gate, a server that
            # trickles its answer a byte at a time (httpx's timeout is per read), retries.
            async with asyncio.timeout(policy.budget_seconds):
                started = clock()
                for attempt in itertools.count(1):
                    try:
                        return await self._attempt(request)
                    except DevinAPIError as error:
                        pause = _pause(policy, error, attempt, clock() - started)
                        if pause is None:
                            raise
                        reason = error.reason
                    if self._on_retry is not None:
                        self._on_retry(request.endpoint, reason)
                    await asyncio.sleep(pause)
        except TimeoutError:
            raise DevinAPIError("timeout", detail="deadline of the poll passed") from None
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

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
            # Only what `_read_body` can decode within the cap (not br or zstd, which
            # httpx would offer when their packages happen to be installed).
            "Accept-Encoding": _ACCEPT_ENCODING,
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
                    body = await _read_body(response, limit)
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
                detail=_redact(_error_detail(body.content), secret),
                retry_after=retry_after,
            )
        if body.unreadable:
            raise _invalid(_redact(body.unreadable, secret))
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
        raise _invalid(_redact(problem, secret))


@dataclass
class _Body:
    """What was read of an answer: at most the limit of it, decoded."""

    content: bytearray = field(default_factory=bytearray)
    cut: bool = False  # the answer went on past the limit; the rest was left unread
    unreadable: str = ""  # why its content coding could not be decoded, if it could not
    coding: str = "identity"

    @property
    def decoded(self) -> str:
        """How the size was counted, for an error's detail."""
        return "" if self.coding == "identity" else f" after {self.coding} decoding"


async def _read_body(response: httpx.Response, limit: int) -> _Body:
    """At most `limit` bytes of a streamed answer, decoded; reading stops at the limit.

    A gzip or deflate body is inflated here, a bounded step at a time, so no answer,
    however large or however well compressed, takes much more memory than the limit.
    A server may compress without being asked: that is decoded within the same limit.
    """
    body = _Body()
    if response.is_stream_consumed:
        # A transport that hands over a response it has read already (httpx.MockTransport
        # does) has decoded it too: only the limit is left to apply.
        body.content += response.content[:limit]
        body.cut = len(response.content) > limit
        return body
    header = response.headers.get("Content-Encoding", "")
    codings = [c for c in (c.strip().lower() for c in header.split(",")) if c and c != "identity"]
    if len(codings) > 1 or (codings and codings[0] not in _ZLIB_WBITS):
        # Stacked codings are legal HTTP, but not something Devin sends. The header goes
        # into the detail whole and as sent: the caller redacts the key, then cuts.
        body.unreadable = f"Content-Encoding not supported: {header}"
        return body
    inflater = _Inflater(codings[0]) if codings else None
    if inflater is not None:
        body.coding = inflater.coding
    # httpx types it an AsyncIterator; it is a generator, closed here as soon as we stop.
    raw = cast(AsyncGenerator[bytes, None], response.aiter_raw())
    async with contextlib.aclosing(raw) as chunks:
        async for chunk in chunks:
            if inflater is None:
                room = limit - len(body.content)
                body.content += chunk[:room]
                if len(chunk) > room:
                    body.cut = True
                    return body
                continue
            try:
                body.cut = inflater.inflate(chunk, body.content, limit)
            except zlib.error as err:
                body.unreadable = f"{inflater.coding}: {err}"
                return body
            if body.cut or inflater.eof:
                return body  # anything after the end of the compressed stream is ignored
    if inflater is not None and not inflater.eof:
        body.unreadable = f"{inflater.coding}: the compressed stream ends early"
    return body


class _Inflater:
    """One gzip or deflate stream, inflated a bounded step at a time."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._zlib = zlib.decompressobj(_ZLIB_WBITS[coding])
        # "deflate" is meant to be zlib-wrapped, but some servers send it raw.
        self._may_be_raw = coding == "deflate"

    @property
    def eof(self) -> bool:
        return self._zlib.eof

    def inflate(self, data: bytes, into: bytearray, limit: int) -> bool:
        """Append `data`, inflated, to `into`; True (and no more) once it would pass `limit`.

        Input goes in small slices and output comes out in small steps (zlib's
        `max_length`), so that neither a big network chunk nor a bomb makes a big buffer.
        """
        view = memoryview(data)
        for start in range(0, len(view), _INFLATE_STEP_BYTES):
            pending: bytes | memoryview = view[start : start + _INFLATE_STEP_BYTES]
            while True:
                room = limit - len(into)
                step = min(room + 1, _INFLATE_STEP_BYTES)
                out = self._decompress(pending, step)
                if len(out) > room:
                    into += memoryview(out)[:room]
                    return True
                into += out
                if self._zlib.eof:
                    return False
                pending = self._zlib.unconsumed_tail
                if not pending and len(out) < step:
                    break  # this slice is used up, and zlib holds no more output
        return False

    def _decompress(self, data: bytes | memoryview, max_length: int) -> bytes:
        try:
            return self._zlib.decompress(data, max_length)
        except zlib.error:
            if not self._may_be_raw:
                raise
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._zlib.decompress(data, max_length)
        finally:
            self._may_be_raw = False


def _invalid(detail: str) -> DevinAPIError:
    return DevinAPIError("invalid_response", status=200, detail=detail)


def _error_detail(content: bytes | bytearray) -> str:
    try:
        return validation_detail(json.loads(content))
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return ""


def _redact(text: str, secret: str) -> str:
    """Text from the API, without any fragment of the key (a hostile API may echo it), cut
    to 200 characters. The fragments go before the cut, so that none can survive it."""
    return redact(text, [secret])[:200]
