"""Run an aiohttp application on a socket and hand back something to stop it with."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from aiohttp import web

from exporter.config import parse_listen_address


@dataclass
class Listener:
    """A running server: `url` has the bound port (useful after binding port 0)."""

    runner: web.AppRunner
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

    async def close(self) -> None:
        await self.runner.cleanup()


async def listen(
    app: web.Application,
    address: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    shutdown_timeout: float = 2.0,
) -> Listener:
    """Start `app` on `address` (port 0 picks a free port)."""
    host, port = parse_listen_address(address)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host or None, port, ssl_context=ssl_context)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    # After binding port 0, the runner's addresses hold the real port.
    bound_port = runner.addresses[0][1] if runner.addresses else port
    return Listener(
        runner=runner,
        host=host,
        port=bound_port,
        scheme="https" if ssl_context else "http",
    )
