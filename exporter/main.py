"""Builds everything once from the settings, runs it, and shuts it all down in one place."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.billing import billing_view, log_billing
from exporter.config import (
    ConfigError,
    Organization,
    Settings,
)
from exporter.devin.client import DevinClient
from exporter.devin.errors import DevinAPIError
from exporter.devin.ratelimit import KeyGates, key_digest
from exporter.devin.retries import RetryPolicy
from exporter.devin.transport import AiohttpTransport
from exporter.logs import configure_logging
from exporter.metrics.exposition import Exposition
from exporter.metrics.instruments import Instruments
from exporter.polling.admission import Admission
from exporter.polling.attribution import Attribution, UserLabels
from exporter.polling.discovery import left_out, list_organizations, merge
from exporter.polling.plan import build_targets, format_seconds
from exporter.polling.poller import Poller
from exporter.polling.state import StateStore
from exporter.polling.strategies import strategy_of
from exporter.polling.targets import Target
from exporter.reloading import needing_restart
from exporter.web.listener import Listener, ServerLimits, listen
from exporter.web.server import ExporterApp

if TYPE_CHECKING:  # the demo, the backfill and the web config (bcrypt, TLS): only when asked
    from exporter.backfill.steps import Command as BackfillCommand
    from exporter.web.security import WebSecurity

Clock = Callable[[], float]
log = structlog.get_logger("exporter")

_KEY_PREFIXES = {
    "service_user_key": "cog_",
    "enterprise_key": "apk_user_",
    "enterprise_service_user_key": "cog_",
}


def http_client(settings: Settings) -> httpx.AsyncClient:
    """The one HTTP client to Devin; the caller closes it."""
    keys = {key_digest(k) for k in settings.api_keys()}
    return httpx.AsyncClient(
        base_url=settings.devin.base_url,
        timeout=settings.devin.timeout,
        headers={"User-Agent": f"devin-exporter/{__version__}"},
        # Each key has its own cap on requests in flight; the pool must not be tighter,
        # or one key's slow requests would starve the others.
        transport=AiohttpTransport(
            max_connections=max(1, len(keys)) * settings.devin.max_concurrency
        ),
    )


def _retry_policy(settings: Settings) -> RetryPolicy:
    devin = settings.devin
    return RetryPolicy(
        attempts=devin.max_attempts,
        initial_backoff_seconds=devin.retry_initial_backoff,
        max_backoff_seconds=devin.retry_max_backoff,
        # Retries of one poll never run into the next poll.
        budget_seconds=settings.poll_interval,
    )


@dataclass
class Runtime:
    """Everything that runs, built once from the settings; `close()` stops it all."""

    settings: Settings  # as configured; discovery adds organizations to a copy
    registry: CollectorRegistry  # the exporter's own counters, rendered per scrape
    client: DevinClient
    poller: Poller
    exposition: Exposition
    instruments: Instruments  # the exporter's own counters, on `registry`
    scheduler: AsyncIOScheduler | None = None
    listener: Listener | None = None
    discovered: list[Organization] | None = None  # the latest successful listing
    state: StateStore | None = None  # with state.path: the snapshot kept across restarts

    @property
    def effective(self) -> Settings:
        """The settings with the discovered organizations merged in."""
        if self.discovered is None:
            return self.settings
        return self.settings.with_organizations(merge(self.settings, self.discovered))

    @property
    def ready(self) -> bool:
        """Every target polled once; with discovery, after its first listing too."""
        if self.settings.discovery.enabled and self.discovered is None:
            return False
        return self.poller.ready or not self.poller.targets

    async def discover(self) -> None:
        """List the organizations, and poll the ones that are new, and drop the gone."""
        try:
            found = await list_organizations(self.client, self.settings)
        except DevinAPIError as err:
            log.warning("discovery_failed", reason=err.reason, status=err.status)
            return
        before = {o.id for o in self.effective.organizations}
        self.discovered = found
        after = {o.id for o in self.effective.organizations}
        if before != after or not self.poller.targets:
            log.info(
                "organizations_discovered",
                total=len(after),
                added=_some(after - before),
                removed=_some(before - after),
            )
        skipped = left_out(self.settings, found)
        self.instruments.organizations_left_out(skipped)
        if skipped:
            log.warning(
                "organizations_left_out",
                listed=len(found),
                polled=len(after),
                left_out=skipped,
                max_organizations=self.settings.discovery.max_organizations,
                hint="raise discovery.max_organizations, or narrow discovery.include",
            )
        self._apply(self.effective)

    @property
    def url(self) -> str:
        if self.listener is None:
            raise RuntimeError("the exporter is not serving HTTP")
        return self.listener.url

    @property
    def bound(self) -> str:
        """Where the socket listens, as `ss -l` shows it: `127.0.0.1:9877`, `[::1]:9877`,
        or `*:9877` for every interface (which `url` reaches through loopback)."""
        if self.listener is None:
            raise RuntimeError("the exporter is not serving HTTP")
        host, port = self.listener.host or "*", self.listener.port
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def reload(self, new: Settings) -> None:
        """Apply a re-read config: orgs, keys, windows, intervals, staleness and logging.

        Series of the orgs and windows that stay are not interrupted. Each setting declares
        whether a reload applies it (exporter.reloading): those that need a restart keep
        their old values until then, and the log names each one that changed.
        """
        pending = needing_restart(self.settings, new)
        if pending:
            log.warning("reload_needs_restart", keys=",".join(pending))
        configure_logging(new.log.level, new.log.format, secrets=secrets_of(new))
        self.client.retry_policy = _retry_policy(new)
        self.client.max_response_bytes = new.devin.max_response_bytes
        self.client.timeout_seconds = new.devin.timeout
        if not new.discovery.enabled:
            self.discovered = None
        self.settings = new
        self._apply(self.effective)
        if self.scheduler is not None:
            schedule_discovery(self.scheduler, self)
        log.info(
            "config_reloaded",
            targets=len(self.poller.targets),
            windows=",".join(w.label for w in new.windows),
            intervals=intervals(self.poller.targets) or None,
        )

    def _apply(self, effective: Settings) -> None:
        self.exposition.organizations = effective.polled_organizations
        self.exposition.stale_after_seconds = effective.stale_after_seconds
        self.exposition.billing = billing_view(effective)
        self.poller.cycle_start_day = effective.billing.cycle_start_day
        targets = build_targets(effective)
        self.client.retain_keys([t.key for t in targets])
        self.poller.sessions_lookback_seconds = effective.endpoints.sessions_live.lookback
        self.poller.sessions_max_repos = effective.endpoints.sessions_live.max_repos
        self.poller.reconfigure(targets, list(effective.windows))
        # The labels are a restart's to change; a new `top` is polled for at once.
        top = effective.endpoints.user_consumption.top
        if top != self.poller.attribution.top:
            self.poller.attribution = replace(self.poller.attribution, top=top)
            if self.scheduler is not None:
                users = [t for t in self.poller.targets if strategy_of(t.row).attributed]
                self.poller.dispatch(users)
        if self.state is not None:
            self.state.adopt()  # targets discovery just added take their saved values

    async def close(self) -> None:
        """Stop polling (cancelling requests in flight), save the snapshot, stop serving."""
        await self.poller.close()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.state is not None:
            await self.state.save_if_changed()
        await self.exposition.close()
        if self.listener is not None:
            await self.listener.close()


def devin_client(
    settings: Settings, http: httpx.AsyncClient, instruments: Instruments
) -> DevinClient:
    """The client to Devin, with the configured retries, rate limits and size cap."""
    devin = settings.devin
    return DevinClient(
        http,
        gates=KeyGates(
            devin.requests_per_second, devin.max_concurrency, on_wait=instruments.waited
        ),
        retry=_retry_policy(settings),
        on_response=instruments.response,
        on_retry=instruments.retry,
        max_response_bytes=devin.max_response_bytes,
        timeout_seconds=devin.timeout,
    )


def build(settings: Settings, http: httpx.AsyncClient, *, clock: Clock = time.time) -> Runtime:
    """Registry, client, poller and exposition, wired; nothing runs yet."""
    registry = CollectorRegistry()
    instruments = Instruments(registry)
    client = devin_client(settings, http, instruments)
    poller = Poller(
        client,
        build_targets(settings),
        list(settings.windows),
        instruments,
        clock=clock,
        sessions_lookback_seconds=settings.endpoints.sessions_live.lookback,
        sessions_max_repos=settings.endpoints.sessions_live.max_repos,
        attribution=attribution(settings),
        admission=Admission.for_concurrency(settings.devin.max_concurrency),
    )
    exposition = Exposition(
        poller,
        instruments,
        registry,
        settings.polled_organizations,
        settings.stale_after_seconds,
        clock=clock,
    )
    runtime = Runtime(settings, registry, client, poller, exposition, instruments)
    exposition.billing = billing_view(settings)
    poller.cycle_start_day = settings.billing.cycle_start_day
    if settings.state.path is not None:
        runtime.state = StateStore(settings.state.path, poller, clock=clock)
    return runtime


def attribution(settings: Settings) -> Attribution:
    """How per-user ACUs are bounded and labelled, from the settings."""
    chosen = settings.attribution
    key = chosen.hash_key
    secret = key.get_secret_value().encode() if key is not None else b""
    labels = UserLabels(chosen.user_label, secret if chosen.user_label == "hashed" else b"")
    return Attribution(settings.endpoints.user_consumption.top, labels)


def secrets_of(settings: Settings) -> list[str]:
    """The keys (and the key of hashed user labels), for the log's redaction of any
    fragment of them."""
    return [key.get_secret_value() for key in settings.secrets()]


def _some(ids: set[str], shown: int = 10) -> str | None:
    """A few ids for a log line, and how many more: a listing of thousands stays one
    short line."""
    if not ids:
        return None
    first = sorted(ids)[:shown]
    more = len(ids) - len(first)
    return ",".join(first) + (f" (+{more} more)" if more else "")


# How often the snapshot is saved to state.path when it has changed (and on shutdown): a
# restart after a crash loses at most this much of the polls' work.
STATE_SAVE_INTERVAL_SECONDS = 10.0


def schedule_discovery(scheduler: AsyncIOScheduler, runtime: Runtime) -> None:
    """Keep the discovery job in line with the settings: add, re-time or remove it."""
    discovery = runtime.settings.discovery
    job = scheduler.get_job("discovery")
    if not discovery.enabled:
        if job is not None:
            job.remove()
        return
    trigger = IntervalTrigger(seconds=discovery.interval, jitter=min(30, discovery.interval / 10))
    if job is not None:
        if job.trigger.interval.total_seconds() != discovery.interval:
            job.reschedule(trigger)
        return
    scheduler.add_job(
        runtime.discover,
        trigger,
        id="discovery",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        next_run_time=datetime.now(UTC),
    )


async def start(
    settings: Settings, http: httpx.AsyncClient, *, clock: Clock = time.time
) -> Runtime:
    """Build, schedule the polls, and serve HTTP; `Runtime.close()` undoes it."""
    runtime = build(settings, http, clock=clock)
    if runtime.state is not None:
        # Before the first poll is scheduled: the old values are served while it runs,
        # rendered at once for the first scrape.
        runtime.state.restore()
        runtime.exposition.prepare()
    scheduler = AsyncIOScheduler(timezone="UTC")
    runtime.poller.schedule(scheduler)
    schedule_discovery(scheduler, runtime)
    if runtime.state is not None:
        scheduler.add_job(
            runtime.state.save_if_changed,
            IntervalTrigger(seconds=STATE_SAVE_INTERVAL_SECONDS),
            id="state-save",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
    scheduler.start()
    runtime.scheduler = scheduler
    try:
        security = _web_security(settings.web.config_file)
        app = ExporterApp(
            runtime.exposition,
            runtime.poller,
            alive=lambda: scheduler.running,
            ready=lambda: runtime.ready,
            middlewares=[security.middleware] if security else [],
            clock=clock,
            metrics_path=settings.web.telemetry_path,
        ).app()
        web = settings.web
        runtime.listener = await listen(
            app,
            web.listen_address,
            ssl_context=security.ssl_context() if security else None,
            limits=ServerLimits(
                max_connections=web.max_connections,
                header_timeout_seconds=web.header_timeout,
                keepalive_timeout_seconds=web.idle_timeout,
                max_header_bytes=web.max_header_bytes,
            ),
        )
    except BaseException:
        await runtime.close()
        raise
    return runtime


def _web_security(path: Path | None) -> WebSecurity | None:
    """The web config file's TLS and basic auth, loaded (with bcrypt) only when given."""
    if path is None:
        return None
    from exporter.web.security import WebSecurity

    return WebSecurity.from_file(path)


def _warn_on_odd_keys(settings: Settings) -> None:
    keys: list[tuple[str, Any]] = [
        ("devin.service_user_key", settings.devin.service_user_key),
        ("devin.enterprise_key", settings.devin.enterprise_key),
        ("devin.enterprise_service_user_key", settings.devin.enterprise_service_user_key),
    ]
    keys += [
        (f"organizations[{o.id}].service_user_key", o.service_user_key)
        for o in settings.organizations
    ]
    for name, key in keys:
        prefix = _KEY_PREFIXES[name.rsplit(".", 1)[-1]]
        if key is not None and not key.get_secret_value().startswith(prefix):
            log.warning("key_prefix_unexpected", key=name, expected_prefix=prefix)


def intervals(targets: Iterable[Target]) -> str:
    """How often each endpoint group is really polled, `sessions:1m,consumption:1h`: the
    groups' own intervals, which poll_interval is only the default of."""
    every: dict[str, float] = {}
    for target in targets:
        group = target.row.group or target.endpoint
        every.setdefault(group, target.interval_seconds)
    return ",".join(f"{group}:{format_seconds(seconds)}" for group, seconds in every.items())


Reloader = Callable[[], Settings]


async def run(settings: Settings, reload: Reloader | None = None) -> int:
    """The daemon: serve until SIGTERM or SIGINT; on SIGHUP apply `reload()`'s settings."""
    configure_logging(settings.log.level, settings.log.format, secrets=secrets_of(settings))
    _warn_on_odd_keys(settings)
    log_billing(settings)
    stop = asyncio.Event()
    hangup = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, hangup.set)
    async with http_client(settings) as http:
        try:
            runtime = await start(settings, http)
        except OSError as err:
            # No traceback: the address and the OS's reason say all there is.
            log.error(  # noqa: TRY400
                "listen_failed", address=settings.web.listen_address, error=err.strerror
            )
            return 1
        log.info(
            "started",
            version=__version__,
            address=runtime.url,
            bound=runtime.bound,
            telemetry_path=settings.web.telemetry_path,
            targets=len(runtime.poller.targets),
            windows=",".join(w.label for w in settings.windows),
            poll_interval_seconds=settings.poll_interval,
            intervals=intervals(runtime.poller.targets) or None,  # none before discovery
        )
        reloads = loop.create_task(_reload_on_hangup(runtime, hangup, reload))
        try:
            await stop.wait()
        finally:
            reloads.cancel()
            await runtime.close()
            log.info("stopped")
    return 0


async def _reload_on_hangup(
    runtime: Runtime, hangup: asyncio.Event, reload: Reloader | None
) -> None:
    while True:
        await hangup.wait()
        hangup.clear()
        if reload is None:
            log.warning("reload_unavailable", reason="no config file")
            continue
        try:
            new = reload()
        except ConfigError as err:
            # The message names file and key; a traceback would add nothing.
            log.error(  # noqa: TRY400
                "reload_failed", error=str(err).replace("\n", "; "), kept="previous config"
            )
            continue
        runtime.reload(new)


async def run_once(settings: Settings) -> int:
    """Poll every target once (after discovery, if enabled), print the exposition, and
    exit 1 if any target, or the discovery, failed."""
    configure_logging(settings.log.level, settings.log.format, secrets=secrets_of(settings))
    log_billing(settings)
    async with http_client(settings) as http:
        runtime = build(settings, http)
        if settings.discovery.enabled:
            await runtime.discover()
        await runtime.poller.poll_all()
        head, tail = await runtime.exposition.body(openmetrics=False, gzip=False)
    sys.stdout.write((head + tail).decode())
    failed = not all(runtime.poller.up(t) for t in runtime.poller.targets)
    return 1 if failed or (settings.discovery.enabled and runtime.discovered is None) else 0


async def run_backfill(settings: Settings, command: BackfillCommand) -> int:
    """`devin-exporter backfill`: the daemon's client, asked about past steps."""
    from exporter.backfill.run import backfill_command

    configure_logging(settings.log.level, settings.log.format, secrets=secrets_of(settings))

    @asynccontextmanager
    async def connect() -> AsyncIterator[DevinClient]:
        async with http_client(settings) as http:
            yield devin_client(settings, http, Instruments(CollectorRegistry()))

    return await backfill_command(settings, command, connect)
