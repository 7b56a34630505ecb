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
from exporter.metrics.view import Billing, View
from exporter.polling.poller import Poller

Clock = Callable[[], float]
_EOF = b"# EOF\n"
_GZIP_WBITS = 16 + zlib.MAX_WBITS


def _deflated_prefix(data: bytes) -> tuple[bytes, zlib._Compress]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, _GZIP_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH), compressor


@dataclass
class _Part:
    """One format of the snapshot's families: a gzip stream left open, and the plain bytes
    once a scrape without gzip has asked for them (Prometheus asks with gzip: megabytes at
    hundreds of organisations that it would never read)."""

    gzipped: bytes
    compressor: zlib._Compress
    plain: bytes | None

    @classmethod
    def of(cls, plain: bytes, *, keep_plain: bool) -> _Part:
        gzipped, compressor = _deflated_prefix(plain)
        return cls(gzipped, compressor, plain if keep_plain else None)

    def head(self, *, gzip: bool) -> bytes:
        if gzip:
            return self.gzipped
        if self.plain is None:
            raise RuntimeError("the plain body was not kept: inflate it first")
        return self.plain

    def inflated(self) -> bytes:
        """The plain bytes, from the gzip stream (the sync flush put out all of them)."""
        return zlib.decompressobj(_GZIP_WBITS).decompress(self.gzipped)

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


def _render(view: View, openmetrics: bool, keep_plain: bool = True) -> _Part:
    registry = view_registry(view)
    if openmetrics:
        body = generate_openmetrics(registry).removesuffix(_EOF)  # type: ignore[no-untyped-call]
    else:
        body = generate_latest(registry)
    del registry
    part = _Part.of(body, keep_plain=keep_plain)
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
        self.billing = Billing()  # set from the settings by whoever builds it
        self._clock = clock
        self._rendered: _Rendered | None = None
        self._preparing: asyncio.Task[tuple[_Rendered, _Part]] | None = None

    def _fresh(self) -> _Rendered:
        """A rendering, nothing rendered yet, of the poller's snapshot as it is now."""
        view = View(
            snapshot=self._poller.snapshot(),
            organizations=tuple(self.organizations),
            stale_after_seconds=self.stale_after_seconds,
            now=self._clock(),
            billing=self.billing,
        )
        return _Rendered(view.snapshot.version, view.expires_at, view)

    async def _current(self, openmetrics: bool, gzip: bool) -> tuple[_Rendered, _Part]:
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
            return rendered, await self._with_plain(part, gzip)
        task = rendered.rendering.get(openmetrics)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            # None under way, or the last one failed: the next scrape tries again.
            assert rendered.view is not None  # only dropped once both parts are there
            task = asyncio.get_running_loop().create_task(
                asyncio.to_thread(_render, rendered.view, openmetrics, not gzip)
            )
            rendered.rendering[openmetrics] = task
        part = await asyncio.shield(task)
        rendered.parts[openmetrics] = part
        rendered.rendering.pop(openmetrics, None)
        if len(rendered.parts) == 2:
            rendered.view = None  # the snapshot's copy is needed no more
        return rendered, await self._with_plain(part, gzip)

    @staticmethod
    async def _with_plain(part: _Part, gzip: bool) -> _Part:
        """The part, with its plain bytes inflated (once, in a worker thread) if the
        scrape asks for them and they were not kept."""
        if not gzip and part.plain is None:
            part.plain = await asyncio.to_thread(part.inflated)
        return part

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
        rendered, part = await self._current(openmetrics, gzip)
        tail = self._own_tail(rendered, part, openmetrics=openmetrics, gzip=gzip)
        return part.head(gzip=gzip), tail

    def prepare(self) -> None:
        """Render now what Prometheus asks for (OpenMetrics, gzip), so that the first
        scrape finds it: after a restore from `state.path`, before the first polls land
        and compete with it. A failure is left for that scrape to meet again."""
        task = asyncio.get_running_loop().create_task(self._current(openmetrics=True, gzip=True))
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._preparing = task

    async def close(self) -> None:
        if self._preparing is not None:
            self._preparing.cancel()
        if self._rendered is not None:
            for task in self._rendered.rendering.values():
                task.cancel()
