"""/metrics bodies from pre-rendered bytes: Devin's values once per change, the rest per scrape.

The snapshot's families (tens of thousands of series for a large enterprise) are rendered
in a worker thread when the poller reports a change, in both formats, plain and gzipped.
A scrape then only renders the exporter's own few counters and appends them. For gzip,
the snapshot part is deflated once with a sync flush and the compressor is kept: a scrape
copies it and deflates only its own tail, so the body stays one valid gzip member.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporter.collector import View, view_registry
from exporter.config import Organization
from exporter.poller import Poller

Clock = Callable[[], float]
_EOF = b"# EOF\n"
_GZIP_WBITS = 16 + zlib.MAX_WBITS


def _deflated_prefix(data: bytes) -> tuple[bytes, zlib._Compress]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, _GZIP_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH), compressor


@dataclass(frozen=True)
class _Part:
    """One format of the snapshot's families: plain bytes and a gzip stream left open."""

    plain: bytes
    gzipped: bytes
    compressor: zlib._Compress

    @classmethod
    def of(cls, plain: bytes) -> _Part:
        gzipped, compressor = _deflated_prefix(plain)
        return cls(plain, gzipped, compressor)

    def with_tail(self, tail: bytes, *, gzip: bool) -> bytes:
        if not gzip:
            return self.plain + tail
        compressor = self.compressor.copy()
        return self.gzipped + compressor.compress(tail) + compressor.flush()


@dataclass(frozen=True)
class _Rendered:
    version: int
    expires_at: float
    text: _Part
    openmetrics: _Part


def _render(view: View) -> _Rendered:
    registry = view_registry(view)
    openmetrics = generate_openmetrics(registry).removesuffix(_EOF)  # type: ignore[no-untyped-call]
    return _Rendered(
        version=view.snapshot.version,
        expires_at=view.expires_at,
        text=_Part.of(generate_latest(registry)),
        openmetrics=_Part.of(openmetrics),
    )


class Exposition:
    """Keeps the rendered snapshot current and assembles a body per scrape."""

    def __init__(
        self,
        poller: Poller,
        own_registry: CollectorRegistry,
        organizations: list[Organization],
        stale_after_seconds: float,
        *,
        clock: Clock = time.time,
    ) -> None:
        self._poller = poller
        self._own = own_registry
        self.organizations = organizations
        self.stale_after_seconds = stale_after_seconds
        self._clock = clock
        self._rendered: _Rendered | None = None
        self._rendering: asyncio.Task[_Rendered] | None = None
        poller.on_change(self._start_render)

    def _start_render(self) -> None:
        """Render the latest snapshot in a worker thread, unless a render is under way."""
        if self._rendering is not None and not self._rendering.done():
            return  # it will be followed by another if the version moved on meanwhile
        view = View(
            snapshot=self._poller.snapshot(),
            organizations=tuple(self.organizations),
            stale_after_seconds=self.stale_after_seconds,
            now=self._clock(),
        )
        self._rendering = asyncio.get_running_loop().create_task(asyncio.to_thread(_render, view))
        self._rendering.add_done_callback(self._rendered_done)

    def _rendered_done(self, task: asyncio.Task[_Rendered]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        self._rendered = task.result()
        if self._rendered.version != self._poller.version:
            self._start_render()

    async def _current(self) -> _Rendered:
        """The latest rendering; waits for a new one if it is behind the poller or stale."""
        while True:
            rendered = self._rendered
            if (
                rendered is not None
                and rendered.version == self._poller.version
                and self._clock() < rendered.expires_at
            ):
                return rendered
            if rendered is not None and self._clock() >= rendered.expires_at:
                self._rendered = None
            if self._rendering is None or self._rendering.done():
                self._start_render()
            assert self._rendering is not None
            await asyncio.shield(self._rendering)

    async def body(self, *, openmetrics: bool, gzip: bool) -> bytes:
        """The whole exposition in one format, gzipped or not."""
        rendered = await self._current()
        if openmetrics:
            tail = generate_openmetrics(self._own)  # type: ignore[no-untyped-call]
            return rendered.openmetrics.with_tail(tail, gzip=gzip)
        return rendered.text.with_tail(generate_latest(self._own), gzip=gzip)

    async def close(self) -> None:
        if self._rendering is not None and not self._rendering.done():
            self._rendering.cancel()
