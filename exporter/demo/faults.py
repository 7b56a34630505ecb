"""Faults: what the demo Devin API does wrong, per endpoint and organisation (the plan),
and how (the effects on an answer)."""

from __future__ import annotations

import asyncio
import functools
import json
import time
import zlib
from collections import Counter, deque
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Body = Literal[
    "ok",
    "malformed",
    "truncated",
    "missing_fields",
    "extra_fields",
    "new_keys",
    "gzip_bomb",  # about 1 MB of gzip that inflates to more than 1 GiB
    "endless_body",  # a 200 whose JSON never ends, streamed until the client hangs up
]


class Fault(BaseModel):
    """One step of a plan; it applies to `times` requests in a row (forever if unset)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: int | None = Field(default=None, ge=100, le=599)
    retry_after: str | None = None  # delta-seconds ("3") or an HTTP-date
    delay_seconds: float = Field(default=0.0, ge=0, le=600)
    body: Body = "ok"
    stall: bool = False  # send the headers and half the body, then hang
    reset: bool = False  # drop the connection without an answer
    times: int | None = Field(default=None, ge=1)


class PlanEntry(BaseModel):
    """The faults of one target: `org` is "" for the v2 request without `org_ids`."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str
    org: str = ""
    faults: list[Fault]


_PLAN = TypeAdapter(list[PlanEntry])
# A stalled answer hangs this long at most, or until the client hangs up.
_STALL_SECONDS: Final = 3600.0


class FaultPlan:
    """Per (endpoint, org), a queue of faults consumed by requests; also counts requests."""

    def __init__(self, entries: list[PlanEntry] | None = None) -> None:
        self._steps: dict[tuple[str, str], list[Fault]] = {}
        self._used: Counter[tuple[str, str]] = Counter()
        self.requests: Counter[tuple[str, str]] = Counter()
        # When the latest requests came (monotonic seconds, endpoint, org): bounded.
        self.arrivals: deque[tuple[float, str, str]] = deque(maxlen=10_000)
        for entry in entries or []:
            self.set(entry)

    @classmethod
    def from_file(cls, path: Path) -> FaultPlan:
        return cls(_PLAN.validate_python(yaml.safe_load(path.read_text(encoding="utf-8")) or []))

    def set(self, entry: PlanEntry) -> None:
        key = (entry.endpoint, entry.org)
        self._steps[key] = list(entry.faults)
        self._used[key] = 0

    def clear(self) -> None:
        self._steps.clear()
        self._used.clear()

    def next_fault(self, endpoint: str, org: str) -> Fault | None:
        """Count a request of the target and return the fault it must suffer, if any."""
        key = (endpoint, org)
        self.requests[key] += 1
        self.arrivals.append((time.monotonic(), endpoint, org))
        steps = self._steps.get(key)
        while steps:
            step = steps[0]
            if step.times is None:
                return step
            if self._used[key] < step.times:
                self._used[key] += 1
                return step
            steps.pop(0)
            self._used[key] = 0
        return None


async def respond(request: web.Request, fault: Fault | None, body: Any) -> web.StreamResponse:
    """The answer `body` as `fault` leaves it (as it is without a fault)."""
    if fault is None:
        return web.json_response(body)
    if fault.delay_seconds:
        await asyncio.sleep(fault.delay_seconds)
    if fault.reset:
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError  # aiohttp drops the handler quietly
    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
    if fault.status is not None and fault.status != 200:
        return web.json_response(
            {"detail": f"injected fault {fault.status}"}, status=fault.status, headers=headers
        )
    if fault.body == "endless_body":
        return await _endless_body(request)
    if fault.body == "gzip_bomb":
        bomb = await asyncio.to_thread(_gzip_bomb)  # the first one takes a moment
        return web.Response(
            body=bomb,
            content_type="application/json",
            headers={**headers, "Content-Encoding": "gzip"},
        )
    payload = _faulty_body(body, fault.body)
    if fault.stall:
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Content-Length": str(len(payload))}
        )
        await response.prepare(request)
        await response.write(payload[: len(payload) // 2])
        await _until_disconnected(request, _STALL_SECONDS)
        return response
    return web.Response(body=payload, content_type="application/json", headers=headers)


def _faulty_body(body: Any, kind: str) -> bytes:
    """The body as a fault leaves it; a list body (dau/wau/mau) has each item changed."""
    text = json.dumps(body).encode()
    if kind == "malformed":
        return b'{"sessions_count": 12,, "oops": ]'
    if kind == "truncated":
        return text[: len(text) // 2]
    if kind in ("missing_fields", "extra_fields", "new_keys"):
        changed = (
            [_changed(item, kind) for item in body]
            if isinstance(body, list)
            else _changed(body, kind)
        )
        return json.dumps(changed).encode()
    return text


# largest cap the exporter allows (`devin.max_response_bytes`, 1 GiB at most).
_BOMB_BLOCKS: Final = 1025
_BOMB_BLOCK_BYTES: Final = 2**20
# The endless body: an array that never closes, sent about 60 kB at a time.
_ENDLESS_HEAD: Final = b'{"sessions_created_count": 1, "filler": ['
_ENDLESS_CHUNK: Final = b"0, " * 20_000


@functools.cache
def _gzip_bomb() -> bytes:
    """A well-formed gzip body of about 1 MB that inflates to 1 GiB and 1 MiB of zeros.

    Built once, and cheaply: compressing a GiB would take seconds, so one block of zeros
    is compressed after a full flush (which makes it refer to nothing before it) and then
    repeated; only the trailer's CRC-32 runs over every byte.
    """
    zeros = bytes(_BOMB_BLOCK_BYTES)
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(_BOMB_BLOCKS):
        crc = zlib.crc32(zeros, crc)
    size = _BOMB_BLOCKS * _BOMB_BLOCK_BYTES
    last = b"\x03\x00"  # an empty final block (fixed Huffman codes)
    trailer = crc.to_bytes(4, "little") + (size % 2**32).to_bytes(4, "little")
    return head + block * (_BOMB_BLOCKS - 1) + last + trailer


async def _endless_body(request: web.Request) -> web.StreamResponse:
    """A 200 of JSON that never ends: written until the client hangs up (or a limit).

    Writes wait while the client does not read (aiohttp's flow control), and stop as
    soon as the connection closes, so a client that gives up costs the server nothing.
    """
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    deadline = time.monotonic() + _STALL_SECONDS
    try:
        await response.write(_ENDLESS_HEAD)
        while time.monotonic() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            await response.write(_ENDLESS_CHUNK)
            await asyncio.sleep(0)  # let the loop notice a hang-up between writes
    except ConnectionError:
        pass  # the client hung up mid-write
    return response


def _changed(body: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == "missing_fields":
        return {k: v for k, v in list(body.items())[1:-1]}
    if kind == "extra_fields":
        return {**body, "new_field": {"nested": [1, 2]}, "note": "added"}
    grown = dict(body)
    for name, new_key in (
        ("sessions_created_by_origin", "devin_cli"),
        ("sessions_created_by_size", "xxl"),
    ):
        if name in grown:
            grown[name] = {**grown[name], new_key: 2}
    return grown


async def _until_disconnected(request: web.Request, limit_seconds: float) -> None:
    """Hang until the client gives up (or the limit passes), so stalls do not pile up.

    aiohttp does not cancel a handler whose client went away, so a plain sleep would hold
    every stalled request until the limit, and the server's shutdown would wait for them.
    """
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.05)
