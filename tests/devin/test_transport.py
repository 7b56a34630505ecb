"""exporter.devin.transport against raw HTTP servers on 127.0.0.1: what the client relies on."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
import trustme

from exporter.devin.transport import AiohttpTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
BODY = b'{"sessions": 3}'


@asynccontextmanager
async def raw_server(
    handler: Handler, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server whose every connection runs `handler`; yields its URL and the request
    lines it read (the handler appends them)."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, ssl.SSLError):
            pass  # the client hung up, or refused the certificate: what some tests want
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", []
    finally:
        server.close()
        await server.wait_closed()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    """The request line and headers of the next request; b"" when the client hung up."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return b""


def answer(body: bytes, *headers: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@asynccontextmanager
async def client(url: str, **options: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = AiohttpTransport(max_connections=4, **options)  # type: ignore[arg-type]
    async with httpx.AsyncClient(base_url=url, timeout=2.0, transport=transport) as http:
        yield http


async def test_a_compressed_body_comes_out_raw_as_sent() -> None:
    """No decompression in the transport: the client decodes within its cap."""
    compressed = gzip.compress(BODY * 100)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(answer(compressed, "Content-Encoding: gzip"))
        await writer.drain()
        writer.close()

    async with (
        raw_server(handler) as (url, _),
        client(url) as http,
        http.stream("GET", "/", headers={"Accept-Encoding": "gzip"}) as response,
    ):
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert "gzip" == response.headers["Content-Encoding"]
    assert compressed == raw


async def test_the_request_goes_out_as_httpx_built_it() -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await read_head(reader))
        writer.write(answer(BODY))
        await writer.drain()
        writer.close()

    async with raw_server(handler) as (url, _), client(url) as http:
        response = await http.get(
            "/v2/x", params={"org_ids": ["a", "b"], "start": "2026-01-01T00:00:00Z"}
        )
    assert (200, BODY) == (response.status_code, response.content)
    request_line, *header_lines = heads[0].decode().split("\r\n")
    assert "GET /v2/x?org_ids=a&org_ids=b&start=2026-01-01T00%3A00%3A00Z HTTP/1.1" == request_line
    assert "Accept-Encoding: gzip, deflate" not in header_lines  # no aiohttp defaults added
    assert any(line.lower().startswith("user-agent: python-httpx") for line in header_lines)


async def test_a_dropped_kept_alive_connection_is_one_request_and_a_transport_error() -> None:
    """aiohttp would send the GET again on its own; here the client's retries decide."""
    requests = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        while await read_head(reader):
            requests += 1
            if requests == 1:
                writer.write(answer(BODY))  # kept alive ...
                await writer.drain()
                continue
            writer.transport.abort()  # ... and dropped under the next request
            return

    async with raw_server(handler) as (url, _), client(url) as http:
        assert 200 == (await http.get("/first")).status_code
        with pytest.raises(httpx.TransportError) as caught:
            await http.get("/second")
    assert not isinstance(caught.value, httpx.TimeoutException)
    assert 2 == requests


async def test_a_silent_server_is_a_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await reader.read()  # until the client gives up

    async with raw_server(handler) as (url, _):
        transport = AiohttpTransport(max_connections=1)
        async with httpx.AsyncClient(base_url=url, timeout=0.2, transport=transport) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get("/")


async def test_a_body_that_stalls_is_a_read_timeout_while_reading() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(answer(BODY)[:-5])
        await writer.drain()
        await reader.read()  # until the client gives up

    transport = AiohttpTransport(max_connections=1)
    async with (
        raw_server(handler) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=0.2, transport=transport) as http,
        http.stream("GET", "/") as response,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await response.aread()


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with raw_server(read_head) as (url, _):
        pass  # closed: nothing listens on its port any more
    async with client(url) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")


async def test_a_body_closed_before_its_end_never_reuses_its_connection() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while await read_head(reader):
            # Far more than one read: the client stops after its first chunk.
            writer.write(answer(b"x" * 2**20))
            await writer.drain()

    async with raw_server(handler) as (url, _), client(url) as http:
        async with http.stream("GET", "/") as response:
            async for _ in response.aiter_raw():
                break
        assert 200 == (await http.get("/")).status_code
        assert 200 == (await http.get("/")).status_code
    assert 2 == connections  # a new one after the cut; the one read to its end is reused


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@asynccontextmanager
async def tls_server(ca: trustme.CA) -> AsyncIterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(answer(BODY))
        await writer.drain()
        writer.close()

    async with raw_server(handler, tls=context) as (url, _):
        yield url


async def test_tls_verifies_the_server_certificate(ca: trustme.CA) -> None:
    """By default against httpx's CA bundle, which does not hold the test CA."""
    async with tls_server(ca) as url, client(url) as http:
        with pytest.raises(httpx.ConnectError, match="certificate"):
            await http.get("/")


async def test_tls_with_a_trusted_ca_answers(ca: trustme.CA) -> None:
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    async with tls_server(ca) as url, client(url, verify=trusted) as http:
        assert BODY == (await http.get("/")).content


async def test_requests_go_through_http_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    heads: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await read_head(reader))
        writer.write(answer(BODY))
        await writer.drain()
        writer.close()

    async with raw_server(proxy) as (proxy_url, _):
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with client("http://devin.invalid") as http:
            assert BODY == (await http.get("/v3/x")).content
    assert heads[0].startswith(b"GET http://devin.invalid/v3/x HTTP/1.1")


async def test_no_proxy_exempts_its_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(answer(BODY))
        await writer.drain()
        writer.close()

    async with raw_server(handler) as (url, _):
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing there
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with client(url) as http:
            assert BODY == (await http.get("/")).content


async def test_a_header_flood_is_a_transport_error_not_a_timeout() -> None:
    """A header line past aiohttp's 8 KiB: HTTP broke down (reason `connection`)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(answer(BODY, "X-Flood: " + "a" * 64 * 2**10))
        await writer.drain()

    async with raw_server(handler) as (url, _), client(url) as http:
        with pytest.raises(httpx.TransportError) as caught:
            await http.get("/")
    assert not isinstance(caught.value, httpx.TimeoutException)
