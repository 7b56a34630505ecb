"""A bounded, decompression-bomb-proof reader of a streamed HTTP answer: never more than
a limit of it is held, counted after decoding gzip or deflate."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Final, cast

import httpx

# The content codings decoded here (httpx would inflate each network chunk whole, so one
# chunk of a gzip bomb could become hundreds of MB before any cap could look at it):
# zlib's `wbits` for each.
_ZLIB_WBITS: Final = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}
# What a request may accept: only what `read_body` can decode within the limit (not br or
# zstd, which httpx would offer when their packages happen to be installed).
ACCEPT_ENCODING: Final = "gzip, deflate"
# A compressed body is inflated at most this much input and output at a time, so that
# decoding holds only the answer so far and one small step besides.
_INFLATE_STEP_BYTES: Final = 16 * 2**10


@dataclass
class Body:
    """What was read of an answer: at most the limit of it, decoded."""

    content: bytearray = field(default_factory=bytearray)
    cut: bool = False  # the answer went on past the limit; the rest was left unread
    unreadable: str = ""  # why its content coding could not be decoded, if it could not
    coding: str = "identity"

    @property
    def decoded(self) -> str:
        """How the size was counted, for an error's detail."""
        return "" if self.coding == "identity" else f" after {self.coding} decoding"


async def read_body(response: httpx.Response, limit: int) -> Body:
    """At most `limit` bytes of a streamed answer, decoded; reading stops at the limit.

    A gzip or deflate body is inflated here, a bounded step at a time, so no answer,
    however large or however well compressed, takes much more memory than the limit.
    A server may compress without being asked: that is decoded within the same limit.
    """
    body = Body()
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
