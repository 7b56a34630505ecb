"""The exporter's HTTP face: /metrics, /healthz, /readyz and a status page at /."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from aiohttp import hdrs, web

from exporter import __version__
from exporter.metrics.exposition import Exposition
from exporter.polling.poller import Poller

Clock = Callable[[], float]


# The two formats rendered, with the exact version each body is written in.
CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _ranges(header: str) -> list[tuple[str, dict[str, str], float]]:
    """(lower-cased value, parameters, q) for each element of an Accept-style header."""
    parsed = []
    for element in header.split(","):
        value, *params = (part.strip() for part in element.split(";"))
        if not value:
            continue
        options = {}
        for param in params:
            name, _, setting = param.partition("=")
            options[name.strip().lower()] = setting.strip().strip('"')
        try:
            q = float(options.pop("q", "1"))
        except ValueError:
            q = 0.0
        parsed.append((value.lower(), options, q))
    return parsed


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether gzip is acceptable: named with q > 0, or covered by `*` with q > 0."""
    codings = {value: q for value, _, q in _ranges(accept_encoding)}
    return codings.get("gzip", codings.get("*", 0.0)) > 0


def wants_openmetrics(accept: str) -> bool:
    """OpenMetrics 1.x when the client ranks it at least as high as the text format."""
    openmetrics = text = 0.0
    for value, params, q in _ranges(accept):
        version = params.get("version", "1")
        if value == "application/openmetrics-text" and version.split(".")[0] == "1":
            openmetrics = max(openmetrics, q)
        elif value in ("text/plain", "text/*", "*/*"):
            text = max(text, q)
    return openmetrics > 0 and openmetrics >= text


def _when(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return "never"
    moment = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{moment} ({now - timestamp:.0f}s ago)"


class ExporterApp:
    """Builds the aiohttp application; every dependency comes in through the constructor."""

    def __init__(
        self,
        exposition: Exposition,
        poller: Poller,
        *,
        alive: Callable[[], bool],
        ready: Callable[[], bool] | None = None,
        middlewares: Iterable[web.middleware] = (),  # type: ignore[valid-type]
        clock: Clock = time.time,
    ) -> None:
        self._exposition = exposition
        self._poller = poller
        self._alive = alive
        self._ready = ready or (lambda: poller.ready)
        self._middlewares = list(middlewares)
        self._clock = clock

    def app(self) -> web.Application:
        app = web.Application(middlewares=self._middlewares)
        app.add_routes(
            [
                web.get("/metrics", self.metrics),
                web.get("/healthz", self.healthz),
                web.get("/readyz", self.readyz),
                web.get("/", self.status_page),
            ]
        )
        return app

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        openmetrics = wants_openmetrics(request.headers.get(hdrs.ACCEPT, ""))
        gzip = accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, ""))
        head, tail = await self._exposition.body(openmetrics=openmetrics, gzip=gzip)
        # Two writes of cached bytes: no per-scrape copy of a body that may be megabytes.
        response = web.StreamResponse()
        response.headers[hdrs.CONTENT_TYPE] = (
            CONTENT_TYPE_OPENMETRICS if openmetrics else CONTENT_TYPE_TEXT
        )
        response.headers[hdrs.VARY] = f"{hdrs.ACCEPT}, {hdrs.ACCEPT_ENCODING}"
        if gzip:
            response.headers[hdrs.CONTENT_ENCODING] = "gzip"
        response.content_length = len(head) + len(tail)
        await response.prepare(request)
        await response.write(head)
        await response.write(tail)
        await response.write_eof()
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        if self._alive():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="scheduler stopped\n")

    async def readyz(self, request: web.Request) -> web.Response:
        if self._ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="waiting for the first poll of every target\n")

    async def status_page(self, request: web.Request) -> web.Response:
        now = self._clock()
        rows = []
        for target in self._poller.targets:
            next_poll = self._poller.next_poll(target)
            for window in self._poller.windows_of(target):
                state = self._poller.states[target, window.label]
                error = state.last_error or ""
                last_failure = (
                    f"{state.last_failure} at {_when(state.last_failure_at, now)}"
                    if state.last_failure
                    else "none"
                )
                cells = (
                    target.endpoint,
                    (target.org or "(enterprise)")
                    + (f" segment {target.segment}" if target.segment else ""),
                    window.label,
                    error or ("ok" if state.last_success else "pending"),
                    _when(state.last_success, now),
                    last_failure,
                    next_poll.strftime("%Y-%m-%d %H:%M:%S UTC") if next_poll else "-",
                )
                cls = ' class="error"' if error else ""
                rows.append(
                    f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
                )
        page = _PAGE.format(
            version=html.escape(__version__),
            ready="ready" if self._ready() else "starting",
            rows="\n".join(rows),
        )
        return web.Response(text=page, content_type="text/html")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Devin exporter</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }}
tr.error td {{ background: #fdd; }}
</style></head>
<body>
<h1>Devin exporter</h1>
<p>Version {version}, {ready}. <a href="/metrics">Metrics</a>,
<a href="/healthz">health</a>, <a href="/readyz">readiness</a>.</p>
<table>
<tr><th>endpoint</th><th>org</th><th>window</th><th>latest poll</th>
<th>last success</th><th>last error</th><th>next poll</th></tr>
{rows}
</table>
</body></html>
"""
