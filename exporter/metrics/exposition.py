"""/metrics bodies from pre-rendered bytes: rendered once per change, not once per scrape.

The snapshot's families (tens of thousands of series for a large enterprise) are rendered
in a worker thread, in both formats, plain and gzipped, when a scrape finds that the
poller has moved on. The exporter's own counters are rendered as a separate tail, again
only when they changed. For gzip, the snapshot part is deflated with a sync flush and the
compressor kept: the tail is deflated from a copy of it, so the body is one gzip member.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporter.config import Organization
from exporter.metrics.instruments import Instruments
from exporter.metrics.registry import view_registry
from exporter.metrics.release import release_freed_memory
from exporter.metrics.view import Billing, View
from exporter.polling.poller import Poller

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

    def head(self, *, gzip: bool) -> bytes:
        return self.gzipped if gzip else self.plain

    def tail(self, own: bytes, *, gzip: bool) -> bytes:
        """The exporter's own families after this part: deflated from where it left off."""
        if not gzip:
            return own
        compressor = self.compressor.copy()
        return compressor.compress(own) + compressor.flush()


@dataclass
class _Rendered:
    version: int
    expires_at: float
    text: _Part
    openmetrics: _Part
    # Tails for the exporter's own families, by (openmetrics, gzip), for one version of
    # them: between polls, a scrape is two cached byte strings.
    tails: dict[tuple[bool, bool], tuple[int, bytes]] = field(default_factory=dict)


def _render(view: View) -> _Rendered:
    registry = view_registry(view)
    openmetrics = generate_openmetrics(registry).removesuffix(_EOF)  # type: ignore[no-untyped-call]
    rendered = _Rendered(
        version=view.snapshot.version,
        expires_at=view.expires_at,
        text=_Part.of(generate_latest(registry)),
        openmetrics=_Part.of(openmetrics),
    )
    del registry, openmetrics
    # The families of a large snapshot took tens of MB, now free but still resident.
    release_freed_memory()
    return rendered


class Exposition:
    """Renders the snapshot when a scrape finds it changed, and assembles each body.

    Rendering happens on demand, not on every poll: a poll cycle landing target by target
    costs no renders unless someone scrapes, and then one per scrape at most.
    """

    def __init__(
        self,
        poller: Poller,
        instruments: Instruments,
        own_registry: CollectorRegistry,
        organizations: list[Organization],
        stale_after_seconds: float,
        *,
        clock: Clock = time.time,
    ) -> None:
        self._poller = poller
        self._instruments = instruments
        self._own = own_registry
        self.organizations = organizations
        self.stale_after_seconds = stale_after_seconds
        self.billing = Billing()  # set from the settings by whoever builds it
        self._clock = clock
        self._rendered: _Rendered | None = None
        self._rendering: asyncio.Task[_Rendered] | None = None

    def _start_render(self) -> asyncio.Task[_Rendered]:
        """Render the latest snapshot in a worker thread, or join the render under way."""
        if self._rendering is None or self._rendering.done():
            view = View(
                snapshot=self._poller.snapshot(),
                organizations=tuple(self.organizations),
                stale_after_seconds=self.stale_after_seconds,
                now=self._clock(),
                billing=self.billing,
            )
            self._rendering = asyncio.get_running_loop().create_task(
                asyncio.to_thread(_render, view)
            )
        return self._rendering

    async def _current(self) -> _Rendered:
        """A rendering at least as new as the snapshot this scrape found, and not stale.

        Polls landing while it renders wait for the next scrape: waiting for a rendering
        that matches the poller's version at the end would, while polls land faster than
        a rendering takes, hold a scrape through one rendering after another.
        """
        wanted = self._poller.version
        while True:
            rendered = self._rendered
            if (
                rendered is not None
                and rendered.version >= wanted
                and self._clock() < rendered.expires_at
            ):
                return rendered
            self._rendered = await asyncio.shield(self._start_render())

    def _own_tail(self, rendered: _Rendered, *, openmetrics: bool, gzip: bool) -> bytes:
        version = self._instruments.version
        cached = rendered.tails.get((openmetrics, gzip))
        if cached is not None and cached[0] == version:
            return cached[1]
        own = (
            generate_openmetrics(self._own)  # type: ignore[no-untyped-call]
            if openmetrics
            else generate_latest(self._own)
        )
        part = rendered.openmetrics if openmetrics else rendered.text
        tail: bytes = part.tail(own, gzip=gzip)
        rendered.tails[openmetrics, gzip] = (version, tail)
        return tail

    async def body(self, *, openmetrics: bool, gzip: bool) -> tuple[bytes, bytes]:
        """The whole exposition in one format, as two pieces to send one after the other."""
        rendered = await self._current()
        part = rendered.openmetrics if openmetrics else rendered.text
        return part.head(gzip=gzip), self._own_tail(rendered, openmetrics=openmetrics, gzip=gzip)

    async def close(self) -> None:
        if self._rendering is not None and not self._rendering.done():
            self._rendering.cancel()
