"""exporter.web.listener under abuse: slow, stalled, idle and too many connections, and
accept() out of file descriptors; real sockets on 127.0.0.1, limits made small.

The abusive clients that need many sockets run in a child process (`Abuser`), so that
this process's file descriptors can be rationed (`file_descriptor_budget`) as a systemd
unit's `LimitNOFILE=` would ration the exporter's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import ssl
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
import structlog
import trustme
from aiohttp import web
from conftest import Clock, wait_until
from structlog.testing import capture_logs
from structlog.typing import EventDict

from exporter.logs import RateLimitedLog
from exporter.web.listener import Listener, ServerLimits, _AiohttpLog, _State, listen

# A child process that keeps `count` connections abusing the server on `port`:
#   loris: sends a request line and one header, then one more header line a second,
#          never the blank line that ends the headers; reconnects when cut;
#   flood: sends complete GET /metrics requests back to back on a kept-alive connection,
#          reading each response; reconnects when cut.
# It starts on a line "go" on stdin, prints "ready" once every connection has been opened
# once, and on the end of stdin prints its counts as JSON and exits.
ABUSER = r"""
import asyncio, json, os, re, sys

port, count, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
stats = {"opened": 0, "cut": 0, "ok": 0}
first = asyncio.Semaphore(0)

async def loris(reader, writer):
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: loris\r\n")
    while True:
        try:
            await asyncio.wait_for(reader.read(1024), 1.0)
            return  # answered (408) or closed
        except asyncio.TimeoutError:
            writer.write(b"X-Loris: 1\r\n")

async def flood(reader, writer):
    while True:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: flood\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        await reader.readexactly(length)
        stats["ok"] += head.startswith(b"HTTP/1.1 200 ")

async def worker():
    opened = False
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        stats["opened"] += 1
        if not opened:
            opened = True
            first.release()
        try:
            await (loris if mode == "loris" else flood)(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        stats["cut"] += 1
        writer.close()
        await asyncio.sleep(0.2)

async def main():
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    await stdin.readline()
    tasks = [asyncio.create_task(worker()) for _ in range(count)]
    for _ in range(count):
        await first.acquire()
    print("ready", flush=True)
    await stdin.read()
    print(json.dumps(stats), flush=True)
    os._exit(0)

asyncio.run(main())
"""


class Abuser:
    """The ABUSER script in a child process, started before this process's file
    descriptors are rationed (the child keeps the usual limit)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def spawn(cls, port: int, count: int, mode: str) -> Abuser:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            ABUSER,
            str(port),
            str(count),
            mode,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def go(self) -> None:
        """Open every connection; return once each has been opened once."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(b"go\n")
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        assert b"ready\n" == line

    async def stop(self) -> dict[str, int]:
        """End the child; its counts: connections opened, cut, and responses 200."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        if self.process.returncode is None:
            self.process.stdin.close()
        out = await asyncio.wait_for(self.process.stdout.read(), 30)
        await self.process.wait()
        stats: dict[str, int] = json.loads(out)
        return stats

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@asynccontextmanager
async def abusing(port: int, count: int, mode: str) -> AsyncIterator[Abuser]:
    abuser = await Abuser.spawn(port, count, mode)
    try:
        yield abuser
    finally:
        await abuser.kill()


@contextmanager
def file_descriptor_budget(extra: int) -> Iterator[None]:
    """Ration this process to the file descriptors open now plus `extra` (Linux only)."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to count open file descriptors")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    # The limit bounds the numbers of new descriptors: those open above it stay open and
    # leave the numbers below it free, so only the ones below count.
    budget = extra
    while budget != extra + sum(fd < budget for fd in fds):
        budget = extra + sum(fd < budget for fd in fds)
    resource.setrlimit(resource.RLIMIT_NOFILE, (budget, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def hello_app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello\n")

    app = web.Application()
    app.router.add_get("/", hello)
    return app


@asynccontextmanager
async def serving(limits: ServerLimits | None = None) -> AsyncIterator[Listener]:
    listener = await listen(hello_app(), "127.0.0.1:0", limits=limits)
    try:
        yield listener
    finally:
        await listener.close()


class Client:
    """A raw connection, for requests no HTTP library would send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, send: bytes = b"") -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(send)
        return cls(reader, writer)

    async def answer(self) -> bytes:
        """Everything the server sends until it closes (at most 10 s)."""
        return await asyncio.wait_for(self.reader.read(), 10)

    async def response(self) -> bytes:
        """One response with a Content-Length, leaving the connection open."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return head + await asyncio.wait_for(self.reader.readexactly(length), 10)

    def close(self) -> None:
        self.writer.close()


@asynccontextmanager
async def clients() -> AsyncIterator[list[Client]]:
    """A list to put raw clients in; all are closed at the end."""
    opened: list[Client] = []
    try:
        yield opened
    finally:
        for client in opened:
            client.close()


STALLED = b"GET / HTTP/1.1\r\nHost: x\r\n"  # the headers never end
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def events(logs: list[EventDict], event: str) -> list[EventDict]:
    """The captured lines (`structlog.testing.capture_logs`) of one event."""
    return [entry for entry in logs if entry["event"] == event]


def fields(entry: EventDict, *names: str) -> tuple[Any, ...]:
    return tuple(entry.get(name) for name in names)


def tracebacks(logs: list[EventDict], records: list[logging.LogRecord]) -> list[object]:
    """The lines with a traceback: ours (`logs`) and the standard library's loggers'
    (`records`: asyncio's, aiohttp's own)."""
    return [
        *(entry for entry in logs if entry.get("exc_info")),
        *(record for record in records if record.exc_info),
    ]


# --- deadlines -------------------------------------------------------------------------


async def test_a_client_trickling_its_headers_gets_408_at_the_header_timeout() -> None:
    async with serving(ServerLimits(header_timeout_seconds=0.3)) as listener, clients() as opened:
        client = await Client.connect(listener.port, STALLED)
        opened.append(client)

        async def trickle() -> None:
            while True:
                await asyncio.sleep(0.05)
                client.writer.write(b"X-Slow: 1\r\n")

        trickling = asyncio.create_task(trickle())
        try:
            answer = await client.answer()
        finally:
            trickling.cancel()
    assert 408 == status_of(answer)


async def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout() -> None:
    async with serving(ServerLimits(header_timeout_seconds=0.3)) as listener, clients() as opened:
        client = await Client.connect(listener.port)
        opened.append(client)
        answer = await client.answer()
        await wait_until(lambda: 0 == listener.open_connections)
    assert 408 == status_of(answer)


async def test_an_idle_kept_alive_connection_is_closed_at_the_keepalive_timeout() -> None:
    limits = ServerLimits(keepalive_timeout_seconds=0.3)
    async with serving(limits) as listener, clients() as opened:
        client = await Client.connect(listener.port, REQUEST)
        opened.append(client)
        first = await client.response()
        rest = await client.answer()  # the server closes without a word
    assert (200, b"") == (status_of(first), rest)


async def test_the_header_deadline_does_not_cut_a_kept_alive_connection_between_requests() -> None:
    """An idle connection is the keep-alive timeout's business, not the header deadline's."""
    limits = ServerLimits(header_timeout_seconds=0.2, keepalive_timeout_seconds=60)
    async with serving(limits) as listener, clients() as opened:
        client = await Client.connect(listener.port, REQUEST)
        opened.append(client)
        first = await client.response()
        await asyncio.sleep(0.5)  # idle past the header deadline
        client.writer.write(REQUEST)
        second = await client.response()
    assert (200, 200) == (status_of(first), status_of(second))


async def test_over_tls_a_stalled_handshake_is_cut_and_stalled_headers_get_408() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    limits = ServerLimits(header_timeout_seconds=0.3)
    with capture_logs() as logs:  # to the close, which logs the counts held back
        listener = await listen(
            hello_app(), "127.0.0.1:0", ssl_context=server_context, limits=limits
        )
        try:
            async with clients() as opened:
                no_handshake = await Client.connect(listener.port)  # TCP, never a ClientHello
                opened.append(no_handshake)
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", listener.port, ssl=client_context
                )
                opened.append(stalled := Client(reader, writer))
                writer.write(STALLED)
                answers = (await no_handshake.answer(), await stalled.answer())
                async with httpx.AsyncClient(verify=client_context, timeout=10) as http:
                    fresh = await http.get(f"{listener.url}/")
        finally:
            await listener.close()
    assert (b"", 408) == (answers[0], status_of(answers[1]))
    assert 200 == fresh.status_code
    assert [
        ("warning", "tls_handshake_timeout", None),
        ("warning", "header_timeout", 408),
    ] == [fields(e, "log_level", "reason", "status") for e in events(logs, "http_request_rejected")]


# --- the cap ---------------------------------------------------------------------------


async def test_past_the_cap_the_oldest_stalled_connections_are_shed_first() -> None:
    with capture_logs() as logs:  # to the close, which logs the counts held back
        async with serving(ServerLimits(max_connections=8)) as listener, clients() as opened:
            for _ in range(8):
                opened.append(await Client.connect(listener.port, STALLED))
                # One at a time, so that the server's order of arrival is ours.
                await wait_until(lambda: len(opened) == listener.open_connections)
            for _ in range(3):
                opened.append(await Client.connect(listener.port, STALLED))
            shed = [status_of(await client.answer()) for client in opened[:3]]
            async with httpx.AsyncClient(timeout=10) as http:
                fresh = await http.get(f"{listener.url}/")
            fourth = status_of(await opened[3].answer())
            after = listener.open_connections
    assert [408, 408, 408] == shed
    assert (200, 408) == (fresh.status_code, fourth)
    assert 8 >= after
    # One line when it starts; the three more sheds are counted, and told at the close.
    lines = events(logs, "http_connection_shed")
    assert [("warning", "stalled", 9, 8, None), ("warning", "stalled", None, None, 3)] == [
        fields(e, "log_level", "reason", "connections", "max_connections", "suppressed")
        for e in lines
    ]


async def test_at_the_cap_stalled_connections_go_before_idle_ones() -> None:
    async with serving(ServerLimits(max_connections=4)) as listener, clients() as opened:
        for send in (REQUEST, REQUEST, STALLED, STALLED):  # two idle, then two stalled
            opened.append(client := await Client.connect(listener.port, send))
            if send == REQUEST:
                await client.response()
            await wait_until(lambda: len(opened) == listener.open_connections)
        idle_first, idle_second, stalled_first, stalled_second = opened
        opened.append(await Client.connect(listener.port, STALLED))
        assert 408 == status_of(await stalled_first.answer())
        opened.append(await Client.connect(listener.port, STALLED))
        assert 408 == status_of(await stalled_second.answer())
        # The two newcomers are stalled too, but younger than the idle ones' idleness:
        # within the grace of a new connection only the idle can make room.
        opened.append(await Client.connect(listener.port, REQUEST))
        assert b"" == await idle_first.answer()
        assert 200 == status_of(await opened[-1].response())
        assert idle_second.reader.at_eof() is False


async def test_at_the_cap_with_every_connection_busy_new_ones_wait_their_turn() -> None:
    """Nothing to shed: the newcomer waits in the backlog and is served after."""
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="slow\n")

    app = hello_app()
    app.router.add_get("/slow", slow)
    listener = await listen(app, "127.0.0.1:0", limits=ServerLimits(max_connections=2))
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            busy = [asyncio.create_task(http.get(f"{listener.url}/slow")) for _ in range(2)]
            await wait_until(lambda: 2 == listener.open_connections)
            waiting = asyncio.create_task(http.get(f"{listener.url}/"))
            await asyncio.sleep(0.3)  # long past the grace: still nothing to shed
            assert not waiting.done()
            release.set()
            statuses = [(await task).status_code for task in [*busy, waiting]]
    finally:
        await listener.close()
    assert [200, 200, 200] == statuses


# --- accept() out of file descriptors --------------------------------------------------


async def test_out_of_file_descriptors_accept_backs_off_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        serving() as listener,
        abusing(listener.port, 60, "loris") as abuser,
        httpx.AsyncClient(timeout=10) as http,
    ):
        with capture_logs() as logs:
            with caplog.at_level(logging.WARNING), file_descriptor_budget(16):
                await abuser.go()
                await wait_until(lambda: bool(events(logs, "http_accept_failed")))
                # A window for a spinning accept loop to show itself (asyncio's logs
                # thousands of tracebacks a second here).
                await asyncio.sleep(1.5)
            stats = await abuser.stop()
            after = await http.get(f"{listener.url}/")
        records = list(caplog.records)  # the standard library's: asyncio's, aiohttp's
        with capture_logs() as at_close:
            await listener.close()  # flushes the counts held back
    accept_failed = events(logs, "http_accept_failed")
    assert [("warning", "EMFILE", None)] == [
        fields(e, "log_level", "reason", "suppressed") for e in accept_failed
    ]
    assert [] == [r for r in records if r.name.startswith("asyncio")]
    assert [] == tracebacks(logs, records)
    flushed = events(at_close, "http_accept_failed")
    # About one attempt per backoff (0.5 s); a spinning loop would try thousands of times.
    assert len(flushed) <= 1
    assert all(0 < e["suppressed"] <= 20 for e in flushed)
    assert stats["opened"] >= 60
    assert 200 == after.status_code


# --- the rate-limited log --------------------------------------------------------------


def test_rate_limited_log_lets_one_line_of_a_kind_through_per_interval() -> None:
    clock = Clock(now=0.0)
    limited = RateLimitedLog(
        structlog.get_logger("tests.limited"), interval_seconds=10, clock=clock
    )
    with capture_logs() as logs:
        sent = [limited.log(logging.WARNING, "bad", reason="a", peer="p") for _ in range(5)]
        sent.append(limited.log(logging.WARNING, "bad", reason="b"))
        clock.now = 9.9
        sent.append(limited.log(logging.WARNING, "bad", reason="a"))
        clock.now = 10.0
        sent.append(limited.log(logging.WARNING, "bad", reason="a"))
        sent.append(limited.log(logging.WARNING, "bad", reason="a"))
        limited.flush()
    assert [True, False, False, False, False, True, False, True, False] == sent
    assert [
        ("bad", "warning", "a", "p", None),
        ("bad", "warning", "b", None, None),
        ("bad", "warning", "a", None, 5),
        ("bad", "warning", "a", None, 1),
    ] == [fields(e, "event", "log_level", "reason", "peer", "suppressed") for e in logs]


def test_aiohttp_lines_at_any_level_are_written_at_the_standard_level_below() -> None:
    """The standard library takes any number as a level; structlog names DEBUG to CRITICAL."""
    adapter = _AiohttpLog(RateLimitedLog(structlog.get_logger("tests.aiohttp"), clock=Clock()))
    with capture_logs() as logs:
        for level, message in [(5, "a"), (25, "b"), (logging.ERROR, "c"), (99, "d")]:
            adapter.log(level, message)
    assert [
        ("http_server_message", "debug", "a"),
        ("http_server_message", "info", "b"),
        ("http_server_message", "error", "c"),
        ("http_server_message", "critical", "d"),
    ] == [fields(e, "event", "log_level", "reason") for e in logs]


async def test_the_guard_stands_on_documented_aiohttp_ground_only() -> None:
    """What the guard takes from aiohttp: `web.Server` makes asyncio protocols (its
    documented role as a protocol factory), and a middleware first in the chain sees every
    request, a 404 included. If an upgrade changes either, this fails before the
    slowloris tests do."""
    seen: list[str] = []

    @web.middleware
    async def after(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append(f"after {request.path}")
        return await handler(request)  # type: ignore[no-any-return]

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[after])
    app.router.add_get("/ok", ok)
    listener = await listen(app, "127.0.0.1:0")
    try:
        assert isinstance(listener.runner.server, web.Server)
        assert isinstance(listener.runner.server(), asyncio.BaseProtocol)
        async with httpx.AsyncClient() as http:
            statuses = [(await http.get(f"{listener.url}{p}")).status_code for p in ("/ok", "/x")]
        # Ours runs first, and the guard saw each request start and end on its connection.
        assert [200, 404] == statuses
        assert ["after /ok", "after /x"] == seen
        assert app.middlewares[1] is after
        # Kept alive: the guard moved it to busy at each request and back to idle after.
        assert [_State.IDLE] == [conn.state for conn in listener.guard._conns]
    finally:
        await listener.close()
