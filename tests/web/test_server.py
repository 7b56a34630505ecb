"""ExporterApp's routes: content negotiation of /metrics (format by Accept, gzip by
Accept-Encoding, q-values honoured), the metrics path, and basic auth over every page."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import httpx
import pytest
from conftest import Demo, running_exporter
from fakes import Clock, FakeDevin, make_poller, target
from prometheus_client import CollectorRegistry

from exporter.metrics.exposition import Exposition
from exporter.metrics.instruments import Instruments
from exporter.web.listener import listen
from exporter.web.server import ExporterApp, accepts_gzip, wants_openmetrics

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", False),
        ("gzip", True),
        ("GZIP", True),
        ("gzip, deflate, br", True),
        ("gzip;q=0", False),
        ("gzip;q=0.00", False),
        ("GZIP;Q=0", False),
        ("gzip; q=0.001", True),
        ("*", True),
        ("*;q=0", False),
        ("deflate", False),
        ("gzip;q=0, *", False),
        ("identity", False),
    ],
)
def test_gzip_only_when_acceptable(header: str, expected: bool) -> None:
    assert expected == accepts_gzip(header)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", False),
        ("text/plain", False),
        ("application/openmetrics-text", True),
        ("application/openmetrics-text; version=1.0.0", True),
        (PROMETHEUS_ACCEPT, True),
        ("application/openmetrics-text;q=0, text/plain", False),
        ("application/openmetrics-text;version=0.0.1", False),
        ("application/openmetrics-text;version=2.0.0", False),
        ("text/plain;q=0.9, application/openmetrics-text;q=0.5", False),
        ("*/*", False),
    ],
)
def test_openmetrics_when_ranked_at_least_as_high_as_text(header: str, expected: bool) -> None:
    assert expected == wants_openmetrics(header)


async def test_metrics_are_served_at_the_configured_path_and_linked_from_the_page() -> None:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a"))
    await poller.poll_all()
    registry = CollectorRegistry()
    exposition = Exposition(poller, Instruments(registry), registry, [], 900.0, clock=clock)
    app = ExporterApp(
        exposition, poller, alive=lambda: True, clock=clock, metrics_path="/internal/metrics"
    ).app()
    listener = await listen(app, "127.0.0.1:0")
    try:
        async with httpx.AsyncClient(base_url=listener.url) as http:
            moved = await http.get("/internal/metrics")
            old = await http.get("/metrics")
            page = (await http.get("/")).text
    finally:
        await listener.close()
        await exposition.close()
    assert (200, 404) == (moved.status_code, old.status_code)
    assert "devin_sessions_created" in moved.text
    assert '<a href="internal/metrics">metrics</a>' in page


ALICE_PASSWORD = "alice-s3cret-pw"


@pytest.mark.parametrize("path", ["/", "/status.json", "/metrics"])
async def test_basic_auth_guards_the_status_page_and_its_json_like_the_metrics(
    demo: Demo, clock: Clock, tmp_path: Path, path: str
) -> None:
    hashed = bcrypt.hashpw(ALICE_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    web_config = tmp_path / "web.yml"
    web_config.write_text(f"basic_auth_users:\n  alice: {hashed}\n")
    settings = demo.settings(web={"listen_address": "127.0.0.1:0", "config_file": web_config})
    async with (
        running_exporter(settings, clock, ready=False) as runtime,
        httpx.AsyncClient(base_url=runtime.url) as http,
    ):
        anonymous = await http.get(path)
        wrong = await http.get(path, auth=("alice", "wrong"))
        alice = await http.get(path, auth=("alice", ALICE_PASSWORD))
        probe = await http.get("/healthz")
    assert (401, 401, 200, 200) == (
        anonymous.status_code,
        wrong.status_code,
        alice.status_code,
        probe.status_code,
    )
