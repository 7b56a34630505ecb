"""The web config in force: TLS, basic auth and response headers, reloaded on change.

The file and the certificate files it names are watched: a change is picked up by
the next request or TLS handshake. A change that does not load, an empty file, or
one that would turn basic auth off keeps the previous configuration in force and is
logged as `web_config_reload_failed`.
"""

from __future__ import annotations

import math
import os
import ssl
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path

import bcrypt
import structlog
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from exporter.web.basic_auth import (
    DEFAULT_AUTH_LIMITS,
    BasicAuthChecker,
    BasicAuthLimits,
    Verdict,
    basic_credentials,
)
from exporter.web.tls import check_same_listener, server_context
from exporter.web.webconfig import WebConfig, WebConfigError, load_web_config

log = structlog.get_logger("exporter.web.security")

REALM = "devin-exporter"
DEFAULT_UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/readyz"})


class WebSecurity:
    """The web config in force: TLS for the listener, basic auth and headers for aiohttp.

    Wire it as `web.Application(middlewares=[security.middleware])` and
    `web.TCPSite(runner, host, port, ssl_context=security.ssl_context())`.
    """

    def __init__(
        self,
        path: Path,
        config: WebConfig,
        *,
        unauthenticated_paths: frozenset[str] = DEFAULT_UNAUTHENTICATED_PATHS,
        check_interval_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        checkpw: Callable[[bytes, bytes], bool] = bcrypt.checkpw,
        auth_limits: BasicAuthLimits = DEFAULT_AUTH_LIMITS,
    ) -> None:
        self._path = path
        self._unauthenticated_paths = unauthenticated_paths
        self._check_interval_seconds = check_interval_seconds
        self._clock = clock
        self._auth = BasicAuthChecker(auth_limits, checkpw=checkpw, clock=clock)
        self._config = config
        self._tls_context = self._build_tls_context(config)
        self._fingerprint = _fingerprint(path, config)
        self._next_check = clock() + check_interval_seconds
        self._last_failure = ""

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        unauthenticated_paths: frozenset[str] = DEFAULT_UNAUTHENTICATED_PATHS,
        check_interval_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        checkpw: Callable[[bytes, bytes], bool] = bcrypt.checkpw,
        auth_limits: BasicAuthLimits = DEFAULT_AUTH_LIMITS,
    ) -> WebSecurity:
        """Load `path`; raises WebConfigError if the file or a file it names is unusable."""
        return cls(
            path,
            load_web_config(path),
            unauthenticated_paths=unauthenticated_paths,
            check_interval_seconds=check_interval_seconds,
            clock=clock,
            checkpw=checkpw,
            auth_limits=auth_limits,
        )

    @property
    def config(self) -> WebConfig:
        return self._config

    def ssl_context(self) -> ssl.SSLContext | None:
        """The context for the listening socket, or None when the file configures no TLS.

        Each handshake first checks the files for changes, then switches the
        connection to the newest context: new certificates, keys and client CAs
        apply to new connections without a restart. OpenSSL runs the callback for
        every ClientHello, with or without SNI.
        """
        return self._tls_context

    def reload_if_changed(self) -> bool:
        """Reload when the file or a file it names changed; True if a new config is in force.

        Checks (a few stat calls) at most once per check interval. A file that fails
        to load is logged once per distinct failure and retried at the next check.
        Fails closed: an empty file, or one that would turn basic auth or TLS off,
        is a failure too, so a truncated or half-written file never opens the door.
        """
        now = self._clock()
        if now < self._next_check:
            return False
        self._next_check = now + self._check_interval_seconds
        fingerprint = _fingerprint(self._path, self._config)
        if fingerprint == self._fingerprint:
            return False
        try:
            config = load_web_config(self._path, allow_empty=False)
            check_same_listener(self._path, self._config, config)
            _check_auth_stays_on(self._path, self._config, config)
            tls_context = self._build_tls_context(config)
        except WebConfigError as exc:
            self._report_failure(exc)
            return False
        self._config, self._tls_context = config, tls_context
        # Taken before loading, so a change made while loading is seen at the next
        # check; if the new file names other files, that check reloads once more.
        self._fingerprint = fingerprint
        self._last_failure = ""
        log.info("web_config_reloaded", path=str(self._path))
        return True

    def _report_failure(self, error: WebConfigError) -> None:
        """Log a failed reload once, not at every check until the file is fixed."""
        if str(error) == self._last_failure:
            return
        self._last_failure = str(error)
        # key and reason come from WebConfigError: redacted, never a password or hash.
        log.error(
            "web_config_reload_failed",
            path=str(self._path),
            key=error.key,
            reason=error.reason,
            kept="previous config",
        )

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Enforce basic auth (except on unauthenticated paths) and add the configured headers."""
        self.reload_if_changed()
        headers = self._config.http_server_config.headers
        response: web.StreamResponse
        verdict = await self._authorize(request)
        if verdict is Verdict.ALLOW:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                exc.headers.update(headers)
                raise
        else:
            response = self._refusal(verdict)
        if not response.prepared:
            response.headers.update(headers)
        return response

    async def _authorize(self, request: web.Request) -> Verdict:
        users = self._config.basic_auth_users
        if not users:
            return Verdict.ALLOW
        path = request.path
        if path in self._unauthenticated_paths or path in self._config.auth_excluded_paths:
            return Verdict.ALLOW
        credentials = basic_credentials(request.headers.get(hdrs.AUTHORIZATION))
        if credentials is None:
            return Verdict.DENY
        user, password = credentials
        return await self._auth.check(user, password, users, request.remote or "")

    def _refusal(self, verdict: Verdict) -> web.Response:
        headers = {
            Verdict.DENY: {hdrs.WWW_AUTHENTICATE: f'Basic realm="{REALM}"'},
            Verdict.THROTTLED: {
                hdrs.RETRY_AFTER: str(math.ceil(self._auth.limits.client_failure_refill_seconds))
            },
            Verdict.BUSY: {hdrs.RETRY_AFTER: "1"},
        }[verdict]
        status = HTTPStatus(verdict.value)
        return web.Response(status=status, text=f"{status}: {status.phrase}", headers=headers)

    def _build_tls_context(self, config: WebConfig) -> ssl.SSLContext | None:
        context = server_context(self._path, config.tls_server_config)
        if context is not None:
            context.sni_callback = self._select_tls_context
        return context

    def _select_tls_context(
        self, connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext
    ) -> None:
        self.reload_if_changed()
        if self._tls_context is not None and connection.context is not self._tls_context:
            connection.context = self._tls_context


def _check_auth_stays_on(path: Path, old: WebConfig, new: WebConfig) -> None:
    """Refuse a reload that turns basic auth off; a restart can.

    `basic_auth_users:` with nothing after it is also what a half-written file looks like.
    """
    if old.basic_auth_users and not new.basic_auth_users:
        raise WebConfigError(path, "basic_auth_users", "turning basic auth off needs a restart")


def _fingerprint(path: Path, config: WebConfig) -> tuple[tuple[int, int, int] | None, ...]:
    """Inode, size and mtime of the config file and the files it names (None if missing)."""
    tls = config.tls_server_config
    files = (path, tls.cert_file, tls.key_file, tls.client_ca_file)
    return tuple(_stat(file) for file in files if file is not None)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        result = os.stat(path)
    except OSError:
        return None
    return (result.st_ino, result.st_size, result.st_mtime_ns)
