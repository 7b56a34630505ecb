"""`--demo` and `demo-api`: the exporter against the built-in demo Devin API, or that API
alone. The demo package is imported here only, when one of them is asked for."""

from __future__ import annotations

import asyncio
import signal
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from exporter.config import EndpointsSettings, Settings, load_settings
from exporter.logs import configure_logging
from exporter.main import run, run_once, secrets_of
from exporter.web.listener import listen

if TYPE_CHECKING:
    from exporter.demo.account import DemoAccount

log = structlog.get_logger("exporter")


# The demo serves on loopback unless --web.listen-address says otherwise: its data is
# synthetic, but an exporter reachable from the network should be a choice.
DEMO_LISTEN_ADDRESS = "127.0.0.1:9877"
# The demo shows everything, every endpoint group, at one pace it can sustain.
DEMO_INTERVAL = "1m"


def demo_settings(
    path: Path | None, overrides: dict[str, Any], account: DemoAccount, url: str
) -> Settings:
    """The operator's settings, pointed at the demo API with its organisations and keys."""
    return load_settings(
        path,
        **{
            "poll_interval": DEMO_INTERVAL,
            "endpoints": {
                group: {"enabled": True, "interval": DEMO_INTERVAL}
                for group in EndpointsSettings.model_fields
            },
            **overrides,
            "web": {"listen_address": DEMO_LISTEN_ADDRESS, **overrides.get("web", {})},
            "devin": {
                "base_url": url,
                "service_user_key": account.service_user_key,
                "enterprise_key": account.enterprise_key,
                "enterprise_service_user_key": account.enterprise_service_user_key,
                # The demo API is local: no need to spread its requests like Devin's.
                "requests_per_second": 100,
            },
            "organizations": [{"id": o.id, "name": o.name} for o in account.orgs],
        },
    )


async def run_with_demo(path: Path | None, overrides: dict[str, Any], *, once: bool) -> int:
    """`--demo`: start the demo API on a free loopback port and run the exporter against it."""
    from exporter.demo.account import DemoAccount
    from exporter.demo.app import DemoAPI

    account = DemoAccount.generate(3)
    demo = await listen(DemoAPI(account).app(), "127.0.0.1:0")
    try:
        settings = demo_settings(path, overrides, account, demo.url)
        if once:
            return await run_once(settings)
        configure_logging(settings.log.level, settings.log.format, secrets=secrets_of(settings))
        log.info("demo_api_started", url=demo.url, orgs=len(account.orgs))
        return await run(settings)
    finally:
        await demo.close()


async def run_demo_api(host: str, port: int, orgs: int, seed: int, faults: Path | None) -> int:
    """`devin-exporter demo-api`: the demo API alone; prints its keys for a config file."""
    from exporter.demo.account import DemoAccount
    from exporter.demo.app import DemoAPI
    from exporter.demo.faults import FaultPlan

    configure_logging("info", "logfmt")
    account = DemoAccount.generate(orgs, seed=seed)
    plan = FaultPlan.from_file(faults) if faults else FaultPlan()
    listener = await listen(DemoAPI(account, plan=plan).app(), f"{host}:{port}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # The demo keys are throw-away and printed on purpose, so that a config can use them;
    # in one write, so that whoever reads the first line finds the rest with it.
    banner = [
        f"demo Devin API on {listener.url}",
        f"  service user key (cog_):    {account.service_user_key}",
        f"  enterprise key (apk_user_): {account.enterprise_key}",
        f"  enterprise service user key (cog_): {account.enterprise_service_user_key}",
        *(f"  organization {org.id}  {org.name}" for org in account.orgs),
    ]
    print("\n".join(banner), flush=True)
    try:
        await stop.wait()
    finally:
        with suppress(Exception):
            await listener.close()
    return 0
