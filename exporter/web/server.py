"""The exporter's HTTP face: /metrics, /healthz, /readyz, a status page at / and its
data at /status.json."""

from __future__ import annotations

import gzip as gzip_format
import json
import time
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import hdrs, web

from exporter import __version__
from exporter.metrics.exposition import Exposition
from exporter.polling.poller import Poller
from exporter.web.status import SCRIPT, STYLE, Filter, Status, as_json, collect, render_page

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
        metrics_path: str = "/metrics",
    ) -> None:
        self._exposition = exposition
        self._poller = poller
        self._alive = alive
        self._ready = ready or (lambda: poller.ready)
        self._middlewares = list(middlewares)
        self._clock = clock
        self._metrics_path = metrics_path

    def app(self) -> web.Application:
        app = web.Application(middlewares=self._middlewares)
        app.add_routes(
            [
                web.get(self._metrics_path, self.metrics),
                web.get("/healthz", self.healthz),
                web.get("/readyz", self.readyz),
                web.get("/", self.status_page),
                web.get("/status.json", self.status_json),
                web.get("/status.css", _asset(STYLE, "text/css")),
                web.get("/status.js", _asset(SCRIPT, "text/javascript")),
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

    def _status(self) -> Status:
        names = {o.id: o.display_name for o in self._exposition.organizations}
        return collect(self._poller.snapshot(), names, self._clock())

    async def status_page(self, request: web.Request) -> web.Response:
        page = render_page(
            self._status(),
            version=__version__,
            ready=self._ready(),
            metrics_path=self._metrics_path,
            shown=Filter.of(request.query),
        )
        return _compressible(request, page.encode(), "text/html; charset=utf-8")

    async def status_json(self, request: web.Request) -> web.Response:
        document = as_json(self._status(), version=__version__, ready=self._ready())
        body = json.dumps(document, separators=(",", ":")).encode()
        return _compressible(request, body, "application/json")


def _asset(text: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler for a fixed file of the status page."""
    body = text.encode()

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            body=body,
            headers={hdrs.CONTENT_TYPE: f"{content_type}; charset=utf-8"},
        )

    return handler


def _compressible(request: web.Request, body: bytes, content_type: str) -> web.Response:
    """`body`, gzipped when the client accepts it; never cached (it changes every poll)."""
    response = web.Response(
        headers={
            hdrs.CONTENT_TYPE: content_type,
            hdrs.VARY: hdrs.ACCEPT_ENCODING,
            hdrs.CACHE_CONTROL: "no-store",
        }
    )
    if accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, "")):
        # mtime=0: the same page compresses to the same bytes.
        body = gzip_format.compress(body, compresslevel=6, mtime=0)
        response.headers[hdrs.CONTENT_ENCODING] = "gzip"
    response.body = body
    return response
