"""Run an aiohttp application on a socket, with limits that hold under abuse.

aiohttp brings the idle keep-alive timeout, the bounds on the request line and on header
fields, and handler cancellation; those are passed to it. It has no deadline for reading a
request's headers, no cap on connections, and leaves accept() to asyncio, whose loop on
Python 3.11 keeps calling accept() after EMFILE and logs a traceback each time (thousands a
second). So `_Guard` accepts connections itself: it counts them, answers a client that is
too slow (408) or sends too much header (431), backs off when the process is out of file
descriptors, and at the cap aborts a stalled or idle connection to make room for the new
one (the order is `_SHED_ORDER`'s). Every complaint goes through a `RateLimitedLog`.

It stands on aiohttp's documented ground only: `web.Server` as a protocol factory (the low
level server's documented role), the asyncio protocol methods of what it makes, and a
middleware (first in the chain) that tells the guard when a request starts and ends.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import cast

import structlog
from aiohttp import web
from aiohttp.http import HttpProcessingError

from exporter.config import parse_listen_address
from exporter.logs import RateLimitedLog

log = structlog.get_logger("exporter.web.listener")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ServerLimits:
    """How much of the server one client may hold; the defaults suit a metrics endpoint.

    `max_line_bytes`, `max_field_bytes` and `max_headers` are aiohttp's `max_line_size`,
    `max_field_size` and `max_headers` (a request breaking them is answered 400), and
    `keepalive_timeout_seconds` is its `keepalive_timeout`; the rest is enforced here.
    """

    # Open connections, whatever their state. At the cap a new connection takes the place
    # of a stalled (headers not complete) or idle (kept alive) one: see _SHED_ORDER.
    max_connections: int = 256
    # From accept (TLS handshake included), or from a kept-alive connection's first byte,
    # to the end of the request's headers; past it the client gets 408 and is closed.
    header_timeout_seconds: float = 5.0
    # A kept-alive connection with no request for this long is closed (aiohttp's own
    # default, 3630 s, would let idle connections pile up to the cap).
    keepalive_timeout_seconds: float = 75.0
    max_line_bytes: int = 8190  # the request line
    max_field_bytes: int = 8190  # one header line
    max_headers: int = 64  # header lines in one request
    # The request line and headers together; past it the client gets 431 and is closed.
    max_header_bytes: int = 32768
    # After accept() fails for want of file descriptors or memory, wait this long.
    accept_backoff_seconds: float = 0.5
    # Each kind of complaint (a bad request, a shed connection, a failed accept) is logged
    # at most once per interval, with the number held back.
    log_interval_seconds: float = 10.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"ServerLimits.{name} must be positive, not {value!r}")


# errno values of accept() that say "out of resources": retrying at once cannot succeed.
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Errors of one connection that was given up before we accepted it: take the next.
_CLIENT_ERRORS = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})
# Connections the kernel holds for us while we are at the cap: deep enough that a flood
# does not make it drop a scraper's handshake (which costs the scraper a 1 s retransmit).
# Memory in the kernel, not file descriptors; Linux caps it at net.core.somaxconn.
_BACKLOG = 1024
_ACCEPT_BATCH = 32  # accepts (and sheds) per readiness event: a flood cannot starve the loop
# A connection cannot be shed as stalled or silent before this age, so that a client whose
# request is on its way (a TLS handshake over a slow link) is not cut by a flood behind it.
_SHED_GRACE_SECONDS = 0.25
# After a 408 or 431, how long the client may go on sending (read and dropped) before the
# connection is cut: closing at once with unread data would reset it, and the client
# might never see its answer.
_LINGER_SECONDS = 1.0


def _answer(status: int, phrase: str, body: str) -> bytes:
    payload = body.encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + payload


_REQUEST_TIMEOUT = _answer(408, "Request Timeout", "request headers not received in time\n")
_HEADERS_TOO_LARGE = _answer(431, "Request Header Fields Too Large", "request headers too large\n")


class _State(enum.Enum):
    SILENT = "silent"  # accepted, nothing read from it yet (or in its TLS handshake)
    WAITING = "waiting"  # part of a request's headers read
    READY = "ready"  # a request's headers read; aiohttp is about to handle it
    BUSY = "busy"  # a request is being handled
    IDLE = "idle"  # between requests on a kept-alive connection
    REJECTED = "rejected"  # answered 408 or 431, lingering before the close
    CLOSING = "closing"  # aborted: its descriptor is freed on the loop's next turn
    GONE = "gone"  # not yet filed, or forgotten


# The order in which connections make room at the cap, the reason logged for each, and
# whether it must be older than _SHED_GRACE_SECONDS. The silent go after the idle: on a
# loop slowed by a flood, a scraper's request may sit unread for a while.
_SHED_ORDER = (
    (_State.REJECTED, None, False),
    (_State.WAITING, "stalled", True),
    (_State.IDLE, "idle", False),
    (_State.SILENT, "silent", True),
)
_HEADER_END = b"\r\n\r\n"


def _header_end(tail: bytes, data: bytes) -> int:
    """Where in `data` the header block ends (just past its blank line), or -1; `tail`
    is what came before it (its last three bytes are enough)."""
    spanning = (tail[-3:] + data[:3]).find(_HEADER_END)
    if spanning >= 0:
        return spanning + 4 - len(tail[-3:])
    end = data.find(_HEADER_END)
    return end + 4 if end >= 0 else -1


class _Conn:
    """One accepted connection, as the guard sees it."""

    __slots__ = (
        "header_bytes",
        "peer",
        "since",
        "sock",
        "state",
        "tail",
        "timer",
        "transport",
    )

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.state = _State.GONE  # until the guard files it
        self.since = 0.0  # loop time it entered its state
        self.transport: asyncio.Transport | None = None  # after the TLS handshake, if any
        self.header_bytes = 0
        self.tail = b""  # the last bytes of headers read, to find an end split in two
        self.timer: asyncio.TimerHandle | None = None  # the header deadline, or the linger


class _Protocol(asyncio.Protocol):
    """Sits between the transport and aiohttp's handler and tells the guard what it sees."""

    def __init__(self, guard: _Guard, conn: _Conn, handler: asyncio.Protocol) -> None:
        self._guard = guard
        self._conn = conn
        self._handler = handler

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._handler.connection_made(transport)
        self._guard.made(self._conn, cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        if self._guard.received(self._conn, data):
            self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        self._handler.eof_received()
        return None  # as aiohttp's handler: the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.forget(self._conn)
        self._handler.connection_lost(exc)

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()


class _Guard:
    """Accepts connections for aiohttp's server and holds them to `ServerLimits`."""

    def __init__(
        self,
        server: web.Server,
        sockets: list[socket.socket],
        limits: ServerLimits,
        ssl_context: ssl.SSLContext | None,
        log: RateLimitedLog,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = server
        self._sockets = sockets
        self._limits = limits
        self._ssl = ssl_context
        self._log = log
        self._conns: dict[_Conn, None] = {}
        # Per state, its connections in the order they entered it (oldest first).
        self._queues: dict[_State, dict[_Conn, None]] = {
            state: {} for state in _State if state is not _State.GONE
        }
        self._by_transport: dict[asyncio.BaseTransport, _Conn] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._armed = False
        self._full = False  # at the cap, with nothing to shed: wait for a slot
        self._backoff: asyncio.TimerHandle | None = None
        self._wake: asyncio.TimerHandle | None = None  # when the oldest stalled can be shed
        self._closed = False

    async def track(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The middleware's work: aiohttp calls it once per request, after the headers are
        parsed: the end of the header deadline, and the request's start and end."""
        transport = request.transport
        conn = None if transport is None else self._by_transport.get(transport)
        if conn is not None:
            self._dispatched(conn)
        try:
            return await handler(request)
        finally:
            if conn is not None:
                self._finished(conn)

    @property
    def open_connections(self) -> int:
        """Connections that count towards the cap: all but those being aborted."""
        return len(self._conns) - len(self._queues[_State.CLOSING])

    def start(self) -> None:
        self._arm()

    # --- accepting ---------------------------------------------------------------------

    def _arm(self) -> None:
        if self._armed or self._closed or self._full or self._backoff is not None:
            return
        for sock in self._sockets:
            self._loop.add_reader(sock, self._on_readable, sock)
        self._armed = True

    def _disarm(self) -> None:
        if self._armed:
            for sock in self._sockets:
                self._loop.remove_reader(sock)
            self._armed = False

    def _slot_freed(self) -> None:
        """A connection went, or became one that can be shed: accept again if waiting."""
        if self._full:
            self._full = False
            if self._wake is not None:
                self._wake.cancel()
                self._wake = None
            self._arm()

    def _end_backoff(self) -> None:
        self._backoff = None
        self._arm()

    def _on_readable(self, listening: socket.socket) -> None:
        for _ in range(_ACCEPT_BATCH):
            # One out for each one in. A shed connection is aborted, and its descriptor
            # freed on the loop's next turn: at most a batch more than the cap are open.
            # With nothing to shed (every connection mid-request, or too new), new ones
            # wait in the kernel's backlog until a request ends or the grace runs out.
            full = self.open_connections >= self._limits.max_connections
            if full and self._victim() is None:
                heads = [
                    next(iter(queue)).since
                    for queue in (self._queues[_State.WAITING], self._queues[_State.SILENT])
                    if queue
                ]
                if heads:  # when the first of them is old enough to be shed
                    if self._wake is not None:
                        self._wake.cancel()
                    wake_at = min(heads) + _SHED_GRACE_SECONDS
                    self._wake = self._loop.call_at(wake_at, self._slot_freed)
                self._full = True
                self._disarm()
                return
            try:
                sock, address = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                if err.errno in _CLIENT_ERRORS:
                    continue
                # Out of file descriptors (or memory), or stranger: retrying at once would
                # spin, so log it (rate-limited), make room if that helps, and wait a little.
                self._log.log(
                    logging.WARNING,
                    "http_accept_failed",
                    reason=errno.errorcode.get(err.errno or 0, type(err).__name__),
                    connections=len(self._conns),
                    backoff_seconds=self._limits.accept_backoff_seconds,
                )
                if err.errno in _RESOURCE_ERRORS:
                    self._shed()
                self._disarm()
                self._backoff = self._loop.call_later(
                    self._limits.accept_backoff_seconds, self._end_backoff
                )
                return
            self._open(sock, address)
            if full:
                self._shed()

    def _open(self, sock: socket.socket, address: object) -> None:
        sock.setblocking(False)
        peer = address[0] if isinstance(address, tuple) else str(address)
        conn = _Conn(sock, str(peer))
        self._conns[conn] = None
        self._set_state(conn, _State.SILENT)
        self._set_timer(conn, self._limits.header_timeout_seconds)
        task = self._loop.create_task(self._connect(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, conn: _Conn) -> None:
        if self._closed:
            conn.sock.close()
            self.forget(conn)
            return

        def protocol() -> _Protocol:
            # web.Server is documented as a protocol factory for loop.create_server().
            return _Protocol(self, conn, cast(asyncio.Protocol, self._server()))

        try:
            if self._ssl is None:
                await self._loop.connect_accepted_socket(protocol, conn.sock)
            else:
                await self._loop.connect_accepted_socket(
                    protocol,
                    conn.sock,
                    ssl=self._ssl,
                    # A backstop: the header deadline, which covers the handshake, is
                    # shorter and is the one that cuts (and logs) a stalled handshake.
                    ssl_handshake_timeout=self._limits.header_timeout_seconds + 1,
                    ssl_shutdown_timeout=self._limits.header_timeout_seconds,
                )
        except Exception as err:  # the handshake failed; the transport closed the socket
            if conn.state is not _State.CLOSING:
                self._log.log(
                    logging.WARNING,
                    "http_tls_handshake_failed",
                    reason=type(err).__name__,
                    peer=conn.peer,
                )
            self.forget(conn)

    # --- what the protocol and aiohttp report ------------------------------------------

    def made(self, conn: _Conn, transport: asyncio.Transport) -> None:
        conn.transport = transport
        self._by_transport[transport] = conn
        if conn.state is _State.CLOSING:  # shed or timed out during the TLS handshake
            transport.abort()

    def received(self, conn: _Conn, data: bytes) -> bool:
        """Whether aiohttp gets these bytes; counts the bytes of headers not yet complete."""
        state = conn.state
        if state in (_State.BUSY, _State.READY):
            return True  # a body, or pipelined requests: aiohttp bounds those
        if state is _State.IDLE:
            conn.header_bytes = 0
            conn.tail = b""
            self._set_timer(conn, self._limits.header_timeout_seconds)
        elif state not in (_State.SILENT, _State.WAITING):
            return False  # answered and closing: what follows is dropped
        end = _header_end(conn.tail, data)
        conn.header_bytes += len(data) if end < 0 else end
        if conn.header_bytes > self._limits.max_header_bytes:
            self._reject(conn, _HEADERS_TOO_LARGE, 431, "headers_too_large")
            return False
        if end >= 0:
            # Not stalled: cannot be shed. The deadline runs on until aiohttp takes it.
            self._set_state(conn, _State.READY)
        else:
            conn.tail = (conn.tail + data[-3:])[-3:]
            if state is not _State.WAITING:
                self._set_state(conn, _State.WAITING)
        return True

    def _dispatched(self, conn: _Conn) -> None:
        if conn.state in (_State.SILENT, _State.WAITING, _State.READY, _State.IDLE):
            self._cancel_timer(conn)
            conn.header_bytes = 0
            self._set_state(conn, _State.BUSY)

    def _finished(self, conn: _Conn) -> None:
        if conn.state is _State.BUSY:
            self._set_state(conn, _State.IDLE)

    def forget(self, conn: _Conn) -> None:
        """The connection is gone: its slot is free."""
        if conn not in self._conns:
            return
        del self._conns[conn]
        self._cancel_timer(conn)
        self._set_state(conn, _State.GONE)
        if conn.transport is not None:
            self._by_transport.pop(conn.transport, None)
        self._slot_freed()

    # --- cutting connections -----------------------------------------------------------

    def _expire(self, conn: _Conn) -> None:
        conn.timer = None
        if conn.state is _State.REJECTED:
            self._abort(conn)  # lingered long enough
        elif conn.state in (_State.SILENT, _State.WAITING, _State.READY):
            if conn.transport is None:
                self._log.log(
                    logging.WARNING,
                    "http_request_rejected",
                    reason="tls_handshake_timeout",
                    peer=conn.peer,
                )
                self._abort(conn)
            else:
                self._reject(conn, _REQUEST_TIMEOUT, 408, "header_timeout")

    def _reject(self, conn: _Conn, answer: bytes, status: int, reason: str) -> None:
        """Answer and close, lingering so that the client can read the answer."""
        self._log.log(
            logging.WARNING, "http_request_rejected", reason=reason, status=status, peer=conn.peer
        )
        transport = conn.transport
        assert transport is not None
        transport.write(answer)
        self._set_state(conn, _State.REJECTED)
        self._set_timer(conn, _LINGER_SECONDS)
        if transport.can_write_eof():
            transport.write_eof()
        else:  # TLS: close_notify after the answer
            transport.close()

    def _victim(self) -> tuple[_Conn, str | None] | None:
        """The connection that can best make room, and why: the oldest answered one, else
        the one stalled longest in its headers, else the one idle longest, else the one
        silent longest, else one that has not taken its response for a header timeout."""
        now = self._loop.time()
        for state, reason, graced in _SHED_ORDER:
            queue = self._queues[state]
            if queue:
                conn = next(iter(queue))
                if not (graced and now - conn.since < _SHED_GRACE_SECONDS):
                    return conn, reason
        slow = now - self._limits.header_timeout_seconds
        for conn in self._queues[_State.BUSY]:  # oldest first
            if conn.since > slow:
                break
            if conn.transport is not None and conn.transport.get_write_buffer_size() > 0:
                return conn, "slow_reader"
        return None

    def _shed(self) -> bool:
        """Abort one connection to make room; False if none can go."""
        victim = self._victim()
        if victim is None:
            return False
        conn, reason = victim
        if reason is not None:
            self._log.log(
                logging.WARNING,
                "http_connection_shed",
                reason=reason,
                connections=self.open_connections,
                max_connections=self._limits.max_connections,
            )
        if conn.state in (_State.SILENT, _State.WAITING) and conn.transport is not None:
            conn.transport.write(_REQUEST_TIMEOUT)
        # Even an idle one is aborted rather than closed: a TLS close would wait for the
        # client's close_notify, and the slot is wanted now.
        self._abort(conn)
        return True

    def _abort(self, conn: _Conn) -> None:
        if conn.state is _State.GONE:
            return
        self._set_state(conn, _State.CLOSING)
        self._cancel_timer(conn)
        if conn.transport is not None:
            conn.transport.abort()
        else:  # still in its TLS handshake (or not yet started): make the handshake fail
            with suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)

    # --- bookkeeping -------------------------------------------------------------------

    def _set_state(self, conn: _Conn, state: _State) -> None:
        if conn.state is not _State.GONE:
            del self._queues[conn.state][conn]
        conn.state = state
        conn.since = self._loop.time()
        if state is not _State.GONE:
            self._queues[state][conn] = None
            if state in (_State.IDLE, _State.REJECTED, _State.CLOSING):
                self._slot_freed()  # it can be shed now, or no longer counts

    def _set_timer(self, conn: _Conn, seconds: float) -> None:
        self._cancel_timer(conn)
        conn.timer = self._loop.call_later(seconds, self._expire, conn)

    @staticmethod
    def _cancel_timer(conn: _Conn) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None

    # --- shutting down -----------------------------------------------------------------

    async def stop(self) -> None:
        """Stop accepting, and drop the connections still in their TLS handshake."""
        self._closed = True
        self._disarm()
        for timer in (self._backoff, self._wake):
            if timer is not None:
                timer.cancel()
        self._backoff = self._wake = None
        for sock in self._sockets:
            sock.close()
        for conn in list(self._conns):
            if conn.transport is None:
                self._abort(conn)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """After aiohttp's shutdown: cut what is left, and log the counts held back."""
        for conn in list(self._conns):
            self._abort(conn)
        for _ in range(10):  # let the transports' connection_lost run: no socket outlives us
            if not self._conns:
                break
            await asyncio.sleep(0)
        self._log.flush()


class _AiohttpLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log, rate-limited: a malformed request is one line, no traceback.

    aiohttp takes a standard-library logger, so this adapter stands in for its own
    (`aiohttp.server`); what it writes goes out as our events, through the
    `RateLimitedLog`'s structlog logger.
    """

    def __init__(self, limited: RateLimitedLog) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})
        self._limited = limited

    def log(
        self, level: int, msg: object, *args: object, exc_info: object = None, **kwargs: object
    ) -> None:
        level = _standard_level(level)
        exc = exc_info if isinstance(exc_info, BaseException) else None
        if exc_info is True:
            exc = sys.exc_info()[1]
        # aiohttp's one message with a peer: "Error handling request from %s".
        peer = str(args[0]) if args and str(msg).startswith("Error handling") else None
        if isinstance(exc, ConnectionError):
            # The client went (or was shed) mid-response: nothing to answer, nothing broke.
            self._limited.log(
                logging.DEBUG, "http_client_disconnected", reason=type(exc).__name__, peer=peer
            )
        elif isinstance(exc, HttpProcessingError):
            # The client's fault, already answered 400: its class says what was wrong.
            # Never its message: that quotes the request, which may hold a password.
            self._limited.log(
                min(level, logging.WARNING),
                "http_request_rejected",
                reason=type(exc).__name__,
                status=400,
                peer=peer,
            )
        elif exc is not None:  # a handler's bug: keep the traceback, once per interval
            self._limited.log(
                level, "http_handler_failed", reason=type(exc).__name__, exc_info=exc, peer=peer
            )
        else:
            self._limited.log(level, "http_server_message", reason=str(msg)[:60])


def _standard_level(level: int) -> int:
    """The standard level at or below `level` (DEBUG to CRITICAL): structlog knows those
    only, and the standard library let a library log at any number."""
    return max(logging.DEBUG, min(logging.CRITICAL, level - level % 10))


@dataclass
class Listener:
    """A running server: `url` has the bound port (useful after binding port 0)."""

    runner: web.AppRunner
    guard: _Guard
    host: str
    port: int
    scheme: str = "http"

    @property
    def url(self) -> str:
        host = self.host or "127.0.0.1"
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return (
            f"{self.scheme}://[{host}]:{self.port}"
            if ":" in host
            else (f"{self.scheme}://{host}:{self.port}")
        )

    @property
    def open_connections(self) -> int:
        """Connections that count towards the cap: accepted, and not being aborted."""
        return self.guard.open_connections

    async def close(self) -> None:
        await self.guard.stop()
        await self.runner.cleanup()
        await self.guard.close()


async def _bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for `host` (every interface if empty), all on one port."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            try:
                sock = socket.socket(family, kind, proto)
            except OSError:
                continue  # a family this host lacks (IPv6 disabled), as asyncio does
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if len(sockets) > 1:  # port 0: the others take the port the first one got
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            try:
                sock.bind(address)
            except OSError as err:
                raise OSError(
                    err.errno, f"error while attempting to bind on address {address!r}: {err}"
                ) from None
            sock.listen(_BACKLOG)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    if not sockets:
        raise OSError(errno.EADDRNOTAVAIL, f"no address to listen on for {host!r}")
    return sockets


async def listen(
    app: web.Application,
    address: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    shutdown_timeout: float = 2.0,
    limits: ServerLimits | None = None,
) -> Listener:
    """Start `app` on `address` (port 0 picks a free port), held to `limits`."""
    limits = limits or ServerLimits()
    host, port = parse_listen_address(address)
    limited = RateLimitedLog(log, interval_seconds=limits.log_interval_seconds)
    guard: _Guard | None = None  # made once the server exists; no request comes before

    @web.middleware
    async def tracked(request: web.Request, handler: Handler) -> web.StreamResponse:
        assert guard is not None
        return await guard.track(request, handler)

    app.middlewares.insert(0, tracked)  # first: it sees every request, whatever follows
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        # A request whose client has gone is not worth finishing.
        handler_cancellation=True,
        keepalive_timeout=limits.keepalive_timeout_seconds,
        max_line_size=limits.max_line_bytes,
        max_field_size=limits.max_field_bytes,
        max_headers=limits.max_headers,
        logger=cast(logging.Logger, _AiohttpLog(limited)),
    )
    await runner.setup()
    try:
        sockets = await _bind(host, port)
    except BaseException:
        await runner.cleanup()
        raise
    assert runner.server is not None
    guard = _Guard(runner.server, sockets, limits, ssl_context, limited)
    guard.start()
    return Listener(
        runner=runner,
        guard=guard,
        host=host,
        port=sockets[0].getsockname()[1],
        scheme="https" if ssl_context else "http",
    )
