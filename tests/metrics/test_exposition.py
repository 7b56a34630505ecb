"""Pre-rendered exposition: rendered once per change, spliced per scrape, valid in every form."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from typing import Any

import pytest
from fakes import INTERVAL, NOW, Clock, FakeDevin, make_poller, target
from prometheus_client import CollectorRegistry

from exporter.config import Organization
from exporter.metrics import exposition as exposition_module
from exporter.metrics.exposition import Exposition
from exporter.metrics.exposition import _render as render
from exporter.metrics.instruments import Instruments
from exporter.metrics.view import View


async def body(exposition: Exposition, *, openmetrics: bool, gzip: bool) -> bytes:
    head, tail = await exposition.body(openmetrics=openmetrics, gzip=gzip)
    return head + tail


def make_exposition(stale_after: float = 3 * INTERVAL) -> tuple[Exposition, Clock, FakeDevin]:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a"), target("org-b"))
    own = CollectorRegistry()
    exposition = Exposition(
        poller,
        Instruments(own),
        own,
        [Organization(id="org-a"), Organization(id="org-b")],
        stale_after,
        clock=clock,
    )
    return exposition, clock, api


async def test_gzip_body_is_one_complete_gzip_member_with_the_own_counters_at_the_end() -> None:
    exposition, _, _ = make_exposition()
    await exposition._poller.poll_all()
    plain = await body(exposition, openmetrics=False, gzip=False)
    zipped = await body(exposition, openmetrics=False, gzip=True)
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert plain == decoder.decompress(zipped)
    assert (True, b"") == (decoder.eof, decoder.unused_data)
    assert plain == gzip.decompress(zipped)
    assert b"devin_sessions_created{" in plain
    assert b"devin_exporter_" in plain.rstrip().splitlines()[-1]


async def test_openmetrics_body_ends_with_exactly_one_eof() -> None:
    exposition, _, _ = make_exposition()
    await exposition._poller.poll_all()
    for zipped in (False, True):
        raw = await body(exposition, openmetrics=True, gzip=zipped)
        text = gzip.decompress(raw) if zipped else raw
        assert 1 == text.count(b"# EOF")
        assert text.endswith(b"# EOF\n")


async def test_the_snapshot_is_rendered_once_per_change_not_per_scrape() -> None:
    exposition, _, _ = make_exposition()
    await exposition._poller.poll_all()
    await body(exposition, openmetrics=False, gzip=False)
    rendered = exposition._rendered
    for _ in range(5):
        await body(exposition, openmetrics=False, gzip=True)
    assert rendered is exposition._rendered
    await exposition._poller.poll_target(target("org-a"))
    await body(exposition, openmetrics=False, gzip=False)
    assert rendered is not exposition._rendered


async def test_series_vanish_when_stale_even_without_a_poll() -> None:
    exposition, clock, _ = make_exposition(stale_after=600)
    await exposition._poller.poll_all()
    assert b'devin_sessions_created{org="org-a"' in await body(
        exposition, openmetrics=False, gzip=False
    )
    clock.now = NOW + 3 * INTERVAL + 1  # never before three of the target's own polls
    raw = await body(exposition, openmetrics=False, gzip=False)
    assert b"devin_sessions_created{" not in raw
    assert b'devin_up{endpoint="v3_org_sessions",org="org-a"} 1.0' in raw


async def test_the_own_counters_are_rendered_again_only_when_they_change() -> None:
    exposition, _, _ = make_exposition()
    await exposition._poller.poll_all()
    first = await exposition.body(openmetrics=False, gzip=True)
    again = await exposition.body(openmetrics=False, gzip=True)
    assert first[1] is again[1]
    exposition._instruments.response("v3_org_sessions", 200)
    changed = await exposition.body(openmetrics=False, gzip=True)
    assert changed[1] is not again[1]
    assert b'code="200"' in gzip.decompress(changed[0] + changed[1])


async def test_polls_landing_during_every_render_do_not_hold_a_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exposition, _, _ = make_exposition()
    poller = exposition._poller
    await poller.poll_all()
    renders: list[int] = []

    def churning(view: View, openmetrics: bool, keep_plain: bool) -> Any:
        renders.append(view.snapshot.version)
        poller.version += 1  # a poll lands while this renders, as under a busy poller
        return render(view, openmetrics, keep_plain)

    monkeypatch.setattr(exposition_module, "_render", churning)
    raw = await asyncio.wait_for(body(exposition, openmetrics=False, gzip=False), timeout=30)
    assert b"devin_sessions_created{" in raw
    assert 1 == len(renders)  # the snapshot the scrape found, rendered once
    await body(exposition, openmetrics=False, gzip=False)
    assert 2 == len(renders)  # the next scrape shows what landed meanwhile


async def test_only_the_format_a_scrape_asks_for_is_rendered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Prometheus server asks for one format: the other is never rendered nor held."""
    exposition, _, _ = make_exposition()
    await exposition._poller.poll_all()
    formats: list[bool] = []

    def counting(view: View, openmetrics: bool, keep_plain: bool) -> Any:
        formats.append(openmetrics)
        return render(view, openmetrics, keep_plain)

    monkeypatch.setattr(exposition_module, "_render", counting)
    for zipped in (True, False, True):
        await body(exposition, openmetrics=True, gzip=zipped)
    assert [True] == formats
    text = await body(exposition, openmetrics=False, gzip=False)
    assert [True, False] == formats  # from the same snapshot, rendered when first asked
    assert b"devin_sessions_created{" in text


async def test_a_failed_render_is_tried_again_by_the_next_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exposition, _, _ = make_exposition()
    await exposition._poller.poll_all()
    failures = [MemoryError()]

    def failing_once(view: View, openmetrics: bool, keep_plain: bool) -> Any:
        if failures:
            raise failures.pop()
        return render(view, openmetrics, keep_plain)

    monkeypatch.setattr(exposition_module, "_render", failing_once)
    with pytest.raises(MemoryError):
        await body(exposition, openmetrics=False, gzip=False)
    assert b"devin_sessions_created{" in await body(exposition, openmetrics=False, gzip=False)


async def test_a_gzip_scrape_keeps_no_plain_body_and_a_plain_one_gets_the_same_bytes() -> None:
    exposition, _, _ = make_exposition()
    await exposition._poller.poll_all()
    zipped = await body(exposition, openmetrics=True, gzip=True)
    rendered = exposition._rendered
    assert rendered is not None
    assert None is rendered.parts[True].plain
    plain = await body(exposition, openmetrics=True, gzip=False)
    assert gzip.decompress(zipped) == plain
    assert rendered is exposition._rendered  # inflated from the same rendering
