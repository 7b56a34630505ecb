"""/metrics bodies from pre-rendered bytes: rendered once per change, not once per scrape.

The snapshot's families (tens of thousands of series for a large enterprise) are rendered
in a worker thread, plain and gzipped, when a scrape finds that the poller has moved on,
in the format that scrape asks for: the other format is rendered (from the same
snapshot) only if some scrape asks for it too, so that a Prometheus server, which asks
for one format, never has the exporter hold the bodies of both (megabytes at hundreds of
organisations). The exporter's own counters are rendered as a separate tail, again
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
from exporter.metrics.view import View
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
    """One snapshot's rendering: the parts rendered so far, by format (OpenMetrics or not)."""

    version: int
    expires_at: float
    view: View | None  # until both formats are rendered
    parts: dict[bool, _Part] = field(default_factory=dict)
    rendering: dict[bool, asyncio.Task[_Part]] = field(default_factory=dict)
    # Tails for the exporter's own families, by (openmetrics, gzip), for one version of
    # them: between polls, a scrape is two cached byte strings.
    tails: dict[tuple[bool, bool], tuple[int, bytes]] = field(default_factory=dict)


def _render(view: View, openmetrics: bool) -> _Part:
    registry = view_registry(view)
    if openmetrics:
        body = generate_openmetrics(registry).removesuffix(_EOF)  # type: ignore[no-untyped-call]
    else:
        body = generate_latest(registry)
    del registry
    part = _Part.of(body)
    # The families of a large snapshot took tens of MB, now free but still resident.
    release_freed_memory()
    return part


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
        self._clock = clock
        self._rendered: _Rendered | None = None

    def _fresh(self) -> _Rendered:
        """A rendering, nothing rendered yet, of the poller's snapshot as it is now."""
        view = View(
            snapshot=self._poller.snapshot(),
            organizations=tuple(self.organizations),
            stale_after_seconds=self.stale_after_seconds,
            now=self._clock(),
        )
        return _Rendered(view.snapshot.version, view.expires_at, view)

    async def _current(self, openmetrics: bool) -> tuple[_Rendered, _Part]:
        """A rendering at least as new as the snapshot this scrape found, and not stale,
        with the part of the format asked for: rendered in a worker thread, or joined
        while another scrape's render of it is under way.

        Polls landing while it renders wait for the next scrape: waiting for a rendering
        that matches the poller's version at the end would, while polls land faster than
        a rendering takes, hold a scrape through one rendering after another.
        """
        wanted = self._poller.version
        rendered = self._rendered
        if rendered is None or rendered.version < wanted or self._clock() >= rendered.expires_at:
            rendered = self._rendered = self._fresh()
        part = rendered.parts.get(openmetrics)
        if part is not None:
            return rendered, part
        task = rendered.rendering.get(openmetrics)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            # None under way, or the last one failed: the next scrape tries again.
            assert rendered.view is not None  # only dropped once both parts are there
            task = asyncio.get_running_loop().create_task(
                asyncio.to_thread(_render, rendered.view, openmetrics)
            )
            rendered.rendering[openmetrics] = task
        part = await asyncio.shield(task)
        rendered.parts[openmetrics] = part
        rendered.rendering.pop(openmetrics, None)
        if len(rendered.parts) == 2:
            rendered.view = None  # the snapshot's copy is needed no more
        return rendered, part

    def _own_tail(
        self, rendered: _Rendered, part: _Part, *, openmetrics: bool, gzip: bool
    ) -> bytes:
        version = self._instruments.version
        cached = rendered.tails.get((openmetrics, gzip))
        if cached is not None and cached[0] == version:
            return cached[1]
        own = (
            generate_openmetrics(self._own)  # type: ignore[no-untyped-call]
            if openmetrics
            else generate_latest(self._own)
        )
        tail: bytes = part.tail(own, gzip=gzip)
        rendered.tails[openmetrics, gzip] = (version, tail)
        return tail

    async def body(self, *, openmetrics: bool, gzip: bool) -> tuple[bytes, bytes]:
        """The whole exposition in one format, as two pieces to send one after the other."""
        rendered, part = await self._current(openmetrics)
        tail = self._own_tail(rendered, part, openmetrics=openmetrics, gzip=gzip)
        return part.head(gzip=gzip), tail

    async def close(self) -> None:
        if self._rendered is not None:
            for task in self._rendered.rendering.values():
                task.cancel()
