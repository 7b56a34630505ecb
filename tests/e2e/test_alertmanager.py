"""Alerts reach a receiver through a real Alertmanager, carrying what the runbook promises.

Debian's Alertmanager runs the compose stack's routing tree (deploy/compose/alertmanager.yml),
its receivers pointed at a webhook served by the test and its timers shortened; a real
Prometheus evaluates deploy/prometheus/alerts.yml against the demo exporter and sends to it.
A fault injected into the demo Devin API must arrive as a firing DevinTargetFailing with its
summary, description and runbook URL, and lifting the fault must arrive as its resolution.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from aiohttp import web
from conftest import ExporterProcess, stop_process
from test_deploy import (
    COMPOSE_DIR,
    RUNBOOK,
    RUNBOOK_URL,
    alerts,
    bind_mounts,
    compose,
    markdown_anchors,
    require_tool,
)
from test_prometheus_stack import (
    ALERT_WITHIN_SECONDS,
    DATA_WITHIN_SECONDS,
    first_org,
    free_port,
    prometheus_scraping,
    wait_for,
)

pytestmark = pytest.mark.slow  # real processes, servers or builds

ALERTMANAGER_CONFIG = COMPOSE_DIR / "alertmanager.yml"
INSTALL = "apt-get install prometheus-alertmanager"
# Timers of every route, so that a notification leaves within a second or two of the alert
# reaching Alertmanager (the shipped 30s group_wait would dominate the test's run time).
# Nothing in the test waits for a repeat.
SHORT_TIMERS = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}
# Where Alertmanager posts its notifications to the test's webhook.
WEBHOOK_PATH = "/alerts"

T = TypeVar("T")


def alertmanager_binary() -> str:
    # Debian names the server prometheus-alertmanager; upstream's tarball and image, alertmanager.
    return require_tool("alertmanager", "prometheus-alertmanager", install=INSTALL)


def amtool_check_config(path: Path) -> str:
    """What `amtool check-config` prints for a valid file; fails the test for an invalid one."""
    amtool = require_tool("amtool", install=INSTALL)
    result = subprocess.run(
        [amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    return result.stdout


# --- the compose stack's Alertmanager config --------------------------------------------


@pytest.mark.alertmanager
def test_compose_alertmanager_config_passes_amtool_check_config() -> None:
    assert "SUCCESS" in amtool_check_config(ALERTMANAGER_CONFIG)


def test_compose_stack_runs_alertmanager_with_that_config() -> None:
    services = compose()["services"]
    alertmanager = services["alertmanager"]
    assert ALERTMANAGER_CONFIG == bind_mounts(alertmanager)["/etc/alertmanager/alertmanager.yml"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in alertmanager["command"]
    assert "alertmanager" in services["prometheus"]["depends_on"]


# --- a webhook receiver, Alertmanager and Prometheus as real servers ----------------------


@dataclass
class Webhook:
    """An Alertmanager webhook receiver that keeps every notification it is sent."""

    notifications: list[dict[str, Any]] = field(default_factory=list)

    async def receive(self, request: web.Request) -> web.Response:
        self.notifications.append(await request.json())
        return web.Response()

    def delivered(self, status: str, labels: dict[str, str]) -> list[tuple[dict[str, Any], Any]]:
        """(notification, alert) for each `status` alert received so far that has `labels`."""
        return [
            (notification, alert)
            for notification in self.notifications
            for alert in notification["alerts"]
            if alert["status"] == status and labels.items() <= alert["labels"].items()
        ]

    async def first(
        self, status: str, labels: dict[str, str], within_seconds: float
    ) -> tuple[dict[str, Any], Any]:
        """The first delivery of a `status` alert with `labels`, waiting up to the time."""
        deadline = time.monotonic() + within_seconds
        while not self.delivered(status, labels):
            assert time.monotonic() < deadline, (
                f"no {status} alert with {labels} within {within_seconds:.0f}s; received "
                f"{[(n['status'], n['groupLabels']) for n in self.notifications]}"
            )
            await asyncio.sleep(0.1)
        return self.delivered(status, labels)[0]


@asynccontextmanager
async def serving(webhook: Webhook) -> AsyncIterator[str]:
    """The webhook on 127.0.0.1 and a free port; yields the URL to give Alertmanager."""
    app = web.Application()
    app.router.add_post(WEBHOOK_PATH, webhook.receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}{WEBHOOK_PATH}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def in_thread(manager: AbstractContextManager[T]) -> AsyncIterator[T]:
    """Enter and leave a blocking context manager off the event loop (the webhook's)."""
    value = await asyncio.to_thread(manager.__enter__)
    try:
        yield value
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """The compose stack's config, each receiver replaced by the webhook, timers shortened.

    Routes, grouping and inhibition stay as shipped, so they are what the test runs.
    """
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    webhook = {"url": webhook_url, "send_resolved": True}
    config["receivers"] = [
        {"name": receiver["name"], "webhook_configs": [webhook]} for receiver in config["receivers"]
    ]
    root = config["route"]
    pending = [root]
    while pending:
        route = pending.pop()
        for key, value in SHORT_TIMERS.items():
            if route is root or key in route:  # a child route that sets none inherits them
                route[key] = value
        pending.extend(route.get("routes", []))
    return config


@contextmanager
def alertmanager(config: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    """Alertmanager with `config` on 127.0.0.1 and a free port; yields its URL."""
    binary = alertmanager_binary()
    config_path = tmp_path / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    amtool_check_config(config_path)
    port = free_port()
    log_path = tmp_path / "alertmanager.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.path={tmp_path / 'alertmanager'}",
                f"--web.listen-address=127.0.0.1:{port}",
                # The link in each notification (by default the machine's host name).
                f"--web.external-url=http://127.0.0.1:{port}",
                # No high-availability cluster: it would listen on 0.0.0.0:9094.
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, f"alertmanager exited:\n{log_path.read_text()}"
        try:
            return httpx.get(f"{url}/-/ready", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for("alertmanager ready", ready, DATA_WITHIN_SECONDS)
        yield url
    finally:
        stop_process(process)


# --- what a receiver is sent --------------------------------------------------------------


def rendered(template: str, labels: dict[str, str]) -> str:
    """An annotation as Prometheus renders it, for templates that use only `$labels.x`."""
    text = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    assert "{{" not in text, f"a template this test cannot render: {template!r}"
    return text


def timestamp(value: str) -> float:
    """Seconds since the epoch of an RFC 3339 time as Alertmanager writes it (nanoseconds, Z)."""
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed).timestamp()


@pytest.mark.prometheus
@pytest.mark.alertmanager
@pytest.mark.timeout(300)
async def test_a_failing_target_reaches_the_receiver_firing_then_resolved(
    demo_exporter: ExporterProcess, tmp_path: Path
) -> None:
    """DevinTargetFailing is delivered with its labels, summary, description and runbook URL,
    then as resolved once the fault is lifted."""
    [rule] = [rule for rule in alerts() if rule["alert"] == "DevinTargetFailing"]
    webhook = Webhook()
    async with serving(webhook) as webhook_url:
        config = alertmanager_config(webhook_url)
        async with (
            in_thread(alertmanager(config, tmp_path)) as alertmanager_url,
            in_thread(
                prometheus_scraping(demo_exporter, tmp_path, alertmanager_url=alertmanager_url)
            ) as prom,
        ):
            org = await asyncio.to_thread(first_org, prom)
            # Only this target's alert is looked at: on a loaded machine another target's
            # polls may time out and fire an alert of their own.
            target = {"alertname": "DevinTargetFailing", "endpoint": "v3_org_sessions", "org": org}
            demo_exporter.inject_fault("v3_org_sessions", org, 500)

            notification, firing = await webhook.first("firing", target, ALERT_WITHIN_SECONDS)
            instance = urlsplit(demo_exporter.url).netloc or demo_exporter.url
            labels = {**target, "job": "devin-exporter", "instance": instance, **rule["labels"]}
            assert labels == firing["labels"]
            annotations = {k: rendered(v, labels) for k, v in rule["annotations"].items()}
            assert annotations == firing["annotations"]
            anchor = "devintargetfailing"
            assert RUNBOOK_URL + anchor == firing["annotations"]["runbook_url"]
            assert anchor in markdown_anchors(RUNBOOK)
            assert firing["generatorURL"].startswith(f"{prom.url}/graph?")
            assert alertmanager_url == notification["externalURL"]
            # Routed as shipped: a warning takes the root route, grouped per target.
            assert config["route"]["receiver"] == notification["receiver"]
            group_by = config["route"]["group_by"]
            assert {key: labels[key] for key in group_by} == notification["groupLabels"]
            assert [] == webhook.delivered("resolved", target)

            lifted = time.time()
            demo_exporter.clear_faults()

            notification, resolved = await webhook.first("resolved", target, ALERT_WITHIN_SECONDS)
            assert labels == resolved["labels"]
            assert annotations == resolved["annotations"]
            assert firing["startsAt"] == resolved["startsAt"]
            # Resolved by the lifted fault (Prometheus stamps the evaluation that saw the
            # target recover), not by a timeout in Alertmanager.
            assert lifted <= timestamp(resolved["endsAt"])
            assert config["route"]["receiver"] == notification["receiver"]
