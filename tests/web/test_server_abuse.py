"""The exporter's HTTP server under abuse, started as the project starts it (`running`):
a fresh scrape still gets its 200, and bad requests are answered and logged once.

The scrapes under a slowloris and under a flood run with this process rationed to the
cap plus a few dozen file descriptors, as `LimitNOFILE=` would ration the exporter: the
server must hold its connections under the cap for the scraper to get a socket at all.
The one timed assertion is the issue's "a fresh scraper gets 200 within 2 s", asserted
with a margin (5 s) for a loaded machine.
"""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from conftest import wait_until
from structlog.testing import capture_logs

from exporter import main
from exporter.web.listener import ServerLimits

from .test_listener_abuse import (
    Client,
    abusing,
    clients,
    events,
    fields,
    file_descriptor_budget,
    status_of,
    tracebacks,
)

CAP = ServerLimits().max_connections
SCRAPE_WITHIN_SECONDS = 5.0  # the issue asks for 2 s; the margin is for a noisy machine
GET_METRICS = b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n"


def port_of(runtime: main.Runtime) -> int:
    assert runtime.listener is not None
    return runtime.listener.port


async def timed_scrape(http: httpx.AsyncClient, runtime: main.Runtime) -> tuple[int, float]:
    """Status and seconds of a scrape on a new connection."""
    started = time.monotonic()
    response = await http.get(f"{runtime.url}/metrics")
    return response.status_code, time.monotonic() - started


@pytest.mark.parametrize(("mode", "count"), [("loris", 320), ("flood", 400)])
async def test_a_fresh_scrape_gets_200_during_abuse_past_the_cap(
    running: main.Runtime,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    count: int,
) -> None:
    """loris: connections sending headers a line a second, forever; flood: complete
    requests back to back. Both more connections than the cap."""
    assert running.listener is not None
    listener = running.listener
    with capture_logs() as logs:
        async with abusing(port_of(running), count, mode) as abuser:
            with caplog.at_level(logging.WARNING), file_descriptor_budget(CAP + 32):
                await abuser.go()
                await wait_until(lambda: listener.open_connections >= CAP, within_seconds=30)
                status, seconds = await timed_scrape(http, running)
            stats = await abuser.stop()
    assert 200 == status
    assert seconds < SCRAPE_WITHIN_SECONDS
    assert stats["cut"] > 0  # connections past the cap made room by being shed
    # Never out of descriptors (the budget would have made accept() fail), and the
    # sheds told in one line a kind.
    assert [] == events(logs, "http_accept_failed")
    shed = [fields(e, "reason") for e in events(logs, "http_connection_shed")]
    assert len(shed) == len(set(shed))
    assert [] == tracebacks(logs, caplog.records)


async def test_too_many_header_bytes_get_431_and_one_log_line(
    running: main.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    # 40 headers of 1 KiB: each within aiohttp's bounds, together past max_header_bytes.
    request = GET_METRICS + b"".join(b"X-Big-%d: %s\r\n" % (i, b"b" * 1024) for i in range(40))
    with caplog.at_level(logging.DEBUG), capture_logs() as logs:
        async with clients() as opened:
            for _ in range(30):
                opened.append(await Client.connect(port_of(running), request + b"\r\n"))
            statuses = [status_of(await client.answer()) for client in opened]
    assert [431] * 30 == statuses
    lines = events(logs, "http_request_rejected")
    assert [("warning", "headers_too_large", 431, "127.0.0.1")] == [
        fields(e, "log_level", "reason", "status", "peer") for e in lines
    ]
    assert [] == tracebacks(logs, caplog.records)


async def test_an_overlong_header_line_gets_400_and_one_log_line_without_traceback(
    running: main.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    secret = b"s3cret-" * 2000  # past max_field_bytes; aiohttp's error message quotes it
    request = GET_METRICS + b"Authorization: Basic " + secret + b"\r\n\r\n"
    with caplog.at_level(logging.DEBUG), capture_logs() as logs:
        async with clients() as opened:
            for _ in range(30):
                opened.append(await Client.connect(port_of(running), request))
            statuses = [status_of(await client.answer()) for client in opened]
    assert [400] * 30 == statuses
    lines = events(logs, "http_request_rejected")
    assert [("LineTooLong", 400)] == [fields(e, "reason", "status") for e in lines]
    assert [] == tracebacks(logs, caplog.records)
    assert [] == [r for r in caplog.records if r.name.startswith("aiohttp")]
    assert "s3cret" not in caplog.text + repr(logs)


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /metrics HTTP/9.9",  # BadStatusLine
        b"GET /met rics HTTP/1.1",  # BadStatusLine
        b"GARBAGE",  # BadHttpMethod: logged at debug by aiohttp on a first request
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # TLS to the plain port
    ],
)
async def test_a_malformed_request_line_gets_400_without_a_traceback(
    running: main.Runtime, caplog: pytest.LogCaptureFixture, request_line: bytes
) -> None:
    with caplog.at_level(logging.DEBUG), capture_logs() as logs:
        async with clients() as opened:
            for _ in range(5):
                opened.append(
                    await Client.connect(port_of(running), request_line + b"\r\nHost: x\r\n\r\n")
                )
            statuses = [status_of(await client.answer()) for client in opened]
    assert [400] * 5 == statuses
    lines = events(logs, "http_request_rejected")
    assert 1 == len(lines)
    assert [] == tracebacks(logs, caplog.records)
    assert [] == [r for r in caplog.records if r.name.startswith("aiohttp")]


async def test_a_handler_that_fails_logs_its_traceback_once_per_interval(
    running: main.Runtime, http: httpx.AsyncClient
) -> None:
    """Our bugs keep their traceback, but a client cannot make us write it per request."""

    async def broken(*, openmetrics: bool, gzip: bool) -> tuple[bytes, bytes]:
        raise RuntimeError("rendering broke")

    running.exposition.body = broken  # type: ignore[method-assign]
    with capture_logs() as logs:
        statuses = [(await http.get(f"{running.url}/metrics")).status_code for _ in range(10)]
    assert [500] * 10 == statuses
    lines = events(logs, "http_handler_failed")
    assert [("error", "RuntimeError", True)] == [
        (e["log_level"], e["reason"], isinstance(e.get("exc_info"), RuntimeError)) for e in lines
    ]
