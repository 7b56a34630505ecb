"""httpx's client API over aiohttp's connection pool: an `httpx.AsyncBaseTransport`.

httpcore's pool re-scans every connection, and asks each socket whether it has expired,
for every request queued and every response finished: with a pool of 32 connections and
requests waiting on it, that was over half the exporter's CPU per request
(docs/performance.md). aiohttp (a dependency already, for the server) keeps idle
connections per host in a list and finds one in constant time.

What the client relies on holds here as it did with httpcore:

- bodies come out raw, as the network carried them: aiohttp's decompression is off, so
  the client decodes gzip and deflate itself within `devin.max_response_bytes`;
- a timeout is an `httpx.TimeoutException` and a failed or dropped connection an
  `httpx.TransportError` (never the other way round), so each keeps its poll reason;
- TLS certificates are verified, against the same CA bundle httpx uses (certifi, or
  SSL_CERT_FILE / SSL_CERT_DIR), built only when the base URL is `https`;
- a response closed before its end closes its connection: it is never reused.

The `httpx-aiohttp` package does the same job but maps a dropped connection
(`ServerDisconnectedError`) to `httpx.ConnectTimeout`, which would turn the poll reason
`connection` into `timeout`.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import AsyncIterator
from typing import Final

import aiohttp
import httpx
from yarl import URL

# How many bytes of the body to ask aiohttp for at a time at most (it hands over what
# has arrived, up to this): the client's cap is checked between reads.
_READ_BYTES: Final = 64 * 2**10


def _timeouts(request: httpx.Request) -> aiohttp.ClientTimeout:
    """httpx's per-request timeouts in aiohttp's terms: `pool` bounds the wait for a
    connection (aiohttp's `connect` includes it), `read` every read of the socket."""
    given = request.extensions.get("timeout", {})
    return aiohttp.ClientTimeout(
        total=None,
        connect=given.get("pool"),
        sock_connect=given.get("connect"),
        sock_read=given.get("read"),
    )


def _mapped(error: Exception, request: httpx.Request) -> httpx.TransportError:
    """The httpx error for an aiohttp one; the message is aiohttp's."""
    message = str(error) or type(error).__name__
    kind: type[httpx.TransportError]
    if isinstance(error, aiohttp.SocketTimeoutError):
        kind = httpx.ReadTimeout
    elif isinstance(error, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(error, TimeoutError):  # aiohttp.ServerTimeoutError is one
        kind = httpx.ReadTimeout
    elif isinstance(error, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake
        kind = httpx.ConnectError
    elif isinstance(error, aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        kind = httpx.ReadError
    elif isinstance(error, aiohttp.InvalidURL):
        kind = httpx.UnsupportedProtocol
    else:  # a dropped connection, a malformed status line or header: HTTP broke down
        kind = httpx.RemoteProtocolError
    return kind(message, request=request)


class _Body(httpx.AsyncByteStream):
    """The raw body of one aiohttp response, as httpx reads a network stream."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while chunk := await content.read(_READ_BYTES):
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as err:
            raise _mapped(err, self._request) from None

    async def aclose(self) -> None:
        if self._response.content.is_eof():
            self._response.release()  # read to its end: the connection goes back to the pool
        else:
            self._response.close()  # left unread (past the cap, or an error): never reused


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp pool of at most `max_connections`, opened on the first request (it
    needs the running event loop) and closed by `aclose()` with the httpx client."""

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_seconds: float = 5.0,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be positive, not {max_connections}")
        self._max_connections = max_connections
        self._keepalive_seconds = keepalive_seconds
        self._verify = verify
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    def _open(self, scheme: str) -> aiohttp.ClientSession:
        if self._session is None:
            # Built on first use, and only for https: plain-HTTP runs (the demo, the tests,
            # a sidecar proxy) never load a CA bundle.
            context = self._verify or (httpx.create_ssl_context() if scheme == "https" else None)
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=self._keepalive_seconds,
                ssl=context if context is not None else True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # the client inflates within its cap
                cookie_jar=aiohttp.DummyCookieJar(),  # nothing a server sets is kept
                timeout=aiohttp.ClientTimeout(total=None),
                # Not aiohttp's trust_env: it reads .netrc and the proxy variables in a
                # thread of their own for every request. The proxy is found once per host.
                trust_env=False,
            )
            # aiohttp sends a GET again, unasked, when a kept-alive connection drops before
            # the answer: a second request the key's rate limit never allowed and the
            # counters never see. The client's own retries decide. There is no public
            # switch; tests/devin/test_transport.py fails if this one stops working.
            self._session._retry_connection = False
        return self._session

    def _proxy_for(self, url: httpx.URL) -> str | None:
        """The proxy of HTTPS_PROXY / HTTP_PROXY (or ALL_PROXY) for this URL's host, unless
        NO_PROXY exempts it, read once per scheme and host, as httpx reads them."""
        where = (url.scheme, url.host)
        if where not in self._proxies:
            proxy = urllib.request.getproxies().get(url.scheme) or (
                urllib.request.getproxies().get("all")
            )
            bypass = proxy is not None and urllib.request.proxy_bypass(url.host)
            self._proxies[where] = None if bypass else proxy
        return self._proxies[where]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open(request.url.scheme)
        body = await request.aread()
        try:
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=_timeouts(request),
                server_hostname=request.extensions.get("sni_hostname"),
                proxy=self._proxy_for(request.url),
            )
        except (aiohttp.ClientError, TimeoutError) as err:
            raise _mapped(err, request) from None
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",  # aiohttp's client speaks nothing else
                "reason_phrase": (response.reason or "").encode(),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
