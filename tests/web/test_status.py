"""The status page and /status.json: summary, order, JSON shape, hints, gzip, size at 100 orgs.

Most tests run the real ExporterApp on loopback over a poller of a hand-written fake of
the DevinAPI Protocol (tests/fakes.py); the last ones run the whole exporter against the
demo API.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from conftest import Demo
from fakes import INTERVAL, NOW, Clock, FakeDevin, make_poller, target
from httpx import Headers
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from exporter import main
from exporter.config import Organization, load_settings
from exporter.demo.account import DemoAccount
from exporter.demo.faults import Fault, PlanEntry
from exporter.devin.errors import DevinAPIError
from exporter.devin.table import ENDPOINTS
from exporter.metrics.exposition import Exposition
from exporter.metrics.instruments import Instruments
from exporter.polling.hints import hint_for
from exporter.polling.plan import build_targets
from exporter.polling.poller import Poller
from exporter.polling.targets import Target
from exporter.web.listener import listen
from exporter.web.server import ExporterApp
from exporter.web.status import STATES, Filter, collect, render_page
from exporter.windows import Window

MAX_PAGE_BYTES = 150 * 1024
TARGET_FIELDS = {
    "endpoint",
    "org",
    "org_name",
    "segment",
    "state",
    "last_success_timestamp",
    "next_poll_timestamp",
    "backoff_until_timestamp",
    "last_error",
    "windows",
}


@asynccontextmanager
async def serve(
    poller: Poller, clock: Clock, organizations: list[Organization] | None = None
) -> AsyncIterator[str]:
    """The real ExporterApp for `poller` on a free loopback port; yields its URL."""
    registry = CollectorRegistry()
    exposition = Exposition(
        poller, Instruments(registry), registry, organizations or [], 900.0, clock=clock
    )
    app = ExporterApp(exposition, poller, alive=lambda: True, clock=clock).app()
    listener = await listen(app, "127.0.0.1:0")
    try:
        yield listener.url
    finally:
        await listener.close()
        await exposition.close()


async def four_states() -> tuple[Poller, Clock]:
    """org-ok polled fine, org-failing answered 503, org-refused 403, org-new never polled."""
    api, clock = FakeDevin(), Clock()
    targets = [target(org) for org in ("org-ok", "org-failing", "org-refused", "org-new")]
    poller = make_poller(api, clock, *targets)
    api.errors["org-failing"] = DevinAPIError("server_error", status=503, detail="upstream said X")
    api.errors["org-refused"] = DevinAPIError("forbidden", status=403)
    for t in targets[:3]:
        await poller.poll_target(t)
    clock.now += 40
    return poller, clock


def row_states(page: str) -> list[tuple[str, bool]]:
    """(state, hidden) of each row of the targets table, in order."""
    return [
        (state, bool(hidden))
        for state, hidden in re.findall(r'<tr class="(\w+)"( hidden)?><td>', page)
    ]


async def test_summary_counts_each_target_once_by_its_state() -> None:
    poller, clock = await four_states()
    status = collect(poller.snapshot(), {}, clock.now)
    assert {"failing": 1, "backing_off": 1, "pending": 1, "ok": 1} == status.counts()
    assert [("server_error", 503, 1), ("forbidden", 403, 1)] == sorted(
        status.reasons(), key=lambda r: r[0], reverse=True
    )


async def test_failing_then_backing_off_then_pending_then_ok() -> None:
    poller, clock = await four_states()
    status = collect(poller.snapshot(), {}, clock.now)
    assert [
        ("failing", "org-failing"),
        ("backing_off", "org-refused"),
        ("pending", "org-new"),
        ("ok", "org-ok"),
    ] == [(t.state, t.org) for t in status.targets]
    page = render_page(status, version="1", ready=True, metrics_path="/metrics", shown=Filter())
    assert [(s, False) for s in STATES] == row_states(page)


async def test_the_page_shows_the_summary_reason_status_hint_and_backoff() -> None:
    poller, clock = await four_states()
    async with serve(poller, clock) as url, httpx.AsyncClient() as http:
        page = (await http.get(url)).text
    assert "2 of 4 targets need attention: 1 failing, 1 backing off" in page
    assert '<b>1</b>failing</a><a class="backing_off" href="?state=backing_off"><b>1</b>' in page
    assert "<b>server_error</b> HTTP 503, <span" in page
    assert "40 s ago" in page
    hint = hint_for(target("org-failing"), "server_error").replace("'", "&#x27;")
    assert hint in page
    assert "Backing off after 1 refusal in a row, until" in page
    assert "waiting for the first poll" in page
    # Devin's detail string stays in the debug log.
    assert "upstream said X" not in page


async def test_a_failed_window_keeps_its_http_status_and_time() -> None:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a"))
    api.errors["org-a"] = DevinAPIError("server_error", status=502)
    await poller.poll_all()
    state = poller.states[target("org-a"), "1h"]
    assert ("server_error", 502, NOW) == (
        state.last_failure,
        state.last_failure_status,
        state.last_failure_at,
    )
    api.errors["org-a"] = DevinAPIError("timeout")  # no answer, so no status
    clock.now += INTERVAL
    await poller.poll_all()
    assert (None, NOW + INTERVAL) == (state.last_failure_status, state.last_failure_at)


async def test_status_json_has_one_entry_per_target_with_the_documented_fields() -> None:
    poller, clock = await four_states()
    async with serve(poller, clock) as url, httpx.AsyncClient() as http:
        response = await http.get(f"{url}/status.json")
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert {"failing": 1, "backing_off": 1, "pending": 1, "ok": 1, "total": 4} == document[
        "summary"
    ]
    entries = {e["org"]: e for e in document["targets"]}
    assert 4 == len(document["targets"])
    for entry in document["targets"]:
        assert TARGET_FIELDS == set(entry)
    failing = entries["org-failing"]
    assert {
        "reason": "server_error",
        "http_status": 503,
        "timestamp": NOW,
        "hint": hint_for(target("org-failing"), "server_error"),
    } == failing["last_error"]
    assert ("failing", None, None) == (
        failing["state"],
        failing["last_success_timestamp"],
        failing["backoff_until_timestamp"],
    )
    assert [
        {
            "window": "1h",
            "state": "failing",
            "reason": "server_error",
            "http_status": 503,
            "last_success_timestamp": None,
        },
        {
            "window": "24h",
            "state": "failing",
            "reason": "server_error",
            "http_status": 503,
            "last_success_timestamp": None,
        },
    ] == failing["windows"]
    refused = entries["org-refused"]
    assert ("backing_off", NOW + INTERVAL, 403) == (
        refused["state"],
        refused["backoff_until_timestamp"],
        refused["last_error"]["http_status"],
    )
    assert ("ok", NOW, None) == (
        entries["org-ok"]["state"],
        entries["org-ok"]["last_success_timestamp"],
        entries["org-ok"]["last_error"],
    )
    assert ("pending", None) == (entries["org-new"]["state"], entries["org-new"]["last_error"])


async def test_a_recovered_target_is_ok_and_keeps_its_last_error_for_the_record() -> None:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a"))
    api.errors["org-a"] = DevinAPIError("rate_limited", status=429)
    await poller.poll_all()
    del api.errors["org-a"]
    clock.now += INTERVAL
    await poller.poll_all()
    (status,) = collect(poller.snapshot(), {}, clock.now).targets
    assert ("ok", NOW + INTERVAL) == (status.state, status.last_success_timestamp)
    assert status.last_error is not None
    assert ("rate_limited", 429, NOW) == (
        status.last_error.reason,
        status.last_error.http_status,
        status.last_error.timestamp,
    )
    page = render_page(
        collect(poller.snapshot(), {}, clock.now),
        version="1",
        ready=True,
        metrics_path="/metrics",
        shown=Filter(),
    )
    assert "All 1 targets ok" in page
    assert "last failed <span" in page


async def test_organisation_names_are_shown_and_escaped() -> None:
    api, clock = FakeDevin(), Clock()
    poller = make_poller(api, clock, target("org-a"), target("org-b"))
    await poller.poll_all()
    orgs = [Organization(id="org-a", name="<Ads & Co>"), Organization(id="org-b")]
    async with serve(poller, clock, orgs) as url, httpx.AsyncClient() as http:
        page = (await http.get(url)).text
        document = (await http.get(f"{url}/status.json")).json()
    assert "&lt;Ads &amp; Co&gt; <small>org-a</small>" in page
    assert "<Ads" not in page
    assert {"org-a": "<Ads & Co>", "org-b": "org-b"} == {
        e["org"]: e["org_name"] for e in document["targets"]
    }


async def test_a_segment_is_named_on_its_row_and_in_the_json() -> None:
    api, clock = FakeDevin(), Clock()
    segment = Target(
        ENDPOINTS["v3_org_sessions"], "org-a", SecretStr("cog_a"), INTERVAL, segment="team-a"
    )
    poller = make_poller(api, clock, target("org-a"), segment)
    await poller.poll_all()
    async with serve(poller, clock) as url, httpx.AsyncClient() as http:
        page = (await http.get(url)).text
        document = (await http.get(f"{url}/status.json")).json()
    assert "v3_org_sessions <small>segment team-a</small>" in page
    assert ["", "team-a"] == [e["segment"] for e in document["targets"]]


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("", ["failing", "backing_off", "pending", "ok"]),
        ("?state=failing", ["failing"]),
        ("?state=backing_off", ["backing_off"]),
        ("?q=org-new", ["pending"]),
        ("?q=FORBIDDEN+403", ["backing_off"]),  # every word, in any case
        ("?q=org-ok+forbidden", []),
        ("?state=failing&q=org-ok", []),
        ("?state=bogus", ["failing", "backing_off", "pending", "ok"]),
    ],
)
async def test_the_filter_works_without_javascript(query: str, shown: list[str]) -> None:
    """The GET form hides rows on the server; every row stays in the page for the script."""
    poller, clock = await four_states()
    async with serve(poller, clock) as url, httpx.AsyncClient() as http:
        page = (await http.get(f"{url}/{query}")).text
    rows = row_states(page)
    assert 4 == len(rows)
    assert shown == [state for state, hidden in rows if not hidden]
    assert (not shown) == ('<p id="empty">' in page)


async def test_the_filter_is_kept_in_the_form() -> None:
    poller, clock = await four_states()
    async with serve(poller, clock) as url, httpx.AsyncClient() as http:
        page = (await http.get(f"{url}/?state=failing&q=%22%3E%3Cscript%3E")).text
    assert '<option value="failing" selected>' in page
    assert 'value="&quot;&gt;&lt;script&gt;"' in page


async def test_the_page_has_no_inline_script_or_style_for_a_strict_csp_to_block() -> None:
    """With `Content-Security-Policy: default-src 'self'` the page stays styled and scripted."""
    poller, clock = await four_states()
    async with serve(poller, clock) as url, httpx.AsyncClient(base_url=url) as http:
        page = (await http.get("/")).text
        style = await http.get("/status.css")
        script = await http.get("/status.js")
    assert [] == re.findall(r"<script>|<style|<[^>]*\s(?:style|on\w+)=", page)
    assert '<script src="status.js"></script>' in page
    assert '<link rel="stylesheet" href="status.css">' in page
    assert ("text/css", "text/javascript") == (
        style.headers["content-type"].split(";")[0],
        script.headers["content-type"].split(";")[0],
    )
    assert "tr.failing" in style.text
    assert "setInterval(refresh" in script.text


async def raw(http: httpx.AsyncClient, url: str, accept_encoding: str) -> tuple[Headers, bytes]:
    """The headers and the body as sent (httpx would otherwise decode the gzip)."""
    async with http.stream("GET", url, headers={"Accept-Encoding": accept_encoding}) as response:
        assert 200 == response.status_code
        return response.headers, b"".join([chunk async for chunk in response.aiter_raw()])


@pytest.mark.parametrize("path", ["/", "/status.json"])
async def test_gzip_only_when_the_client_accepts_it(path: str) -> None:
    poller, clock = await four_states()
    async with serve(poller, clock) as url, httpx.AsyncClient() as http:
        plain = await raw(http, f"{url}{path}", "identity")
        zipped = await raw(http, f"{url}{path}", "gzip, deflate")
        refused = await raw(http, f"{url}{path}", "gzip;q=0")
    assert "gzip" == zipped[0]["content-encoding"]
    assert plain[1] == gzip.decompress(zipped[1])
    assert len(zipped[1]) < len(plain[1])
    assert "content-encoding" not in plain[0]
    assert "content-encoding" not in refused[0]
    assert "Accept-Encoding" == zipped[0]["vary"]
    assert "no-store" == zipped[0]["cache-control"]


def hundred_orgs() -> tuple[list[Organization], list[Target], list[Window]]:
    """100 organisations with the default session endpoints (v3 and v2) and windows; the
    billing reads (two enterprise-wide rows) are left out of this measure."""
    account = DemoAccount.generate(100)
    settings = load_settings(
        None,
        devin={
            "base_url": "https://devin.test",
            "service_user_key": account.service_user_key,
            "enterprise_key": account.enterprise_key,
        },
        organizations=[{"id": o.id, "name": o.name} for o in account.orgs],
        endpoints={"billing_cycles": {"enabled": False}, "acu_limits": {"enabled": False}},
    )
    return settings.organizations, build_targets(settings), list(settings.windows)


@pytest.mark.parametrize("failing_orgs", [0, 25, 100], ids=["none", "quarter", "all"])
async def test_the_page_at_100_orgs_and_4_windows_stays_under_150_kb(failing_orgs: int) -> None:
    """Failing orgs alternate between a refused key (the longest hint, and a backoff) and a
    server error, on both of their targets."""
    orgs, targets, windows = hundred_orgs()
    api, clock = FakeDevin(), Clock()
    poller = Poller(api, targets, windows, Instruments(CollectorRegistry()), clock=clock)
    for i, org in enumerate(orgs[:failing_orgs]):
        refused = i % 2 == 1
        api.errors[org.id] = DevinAPIError(
            "forbidden" if refused else "server_error", status=403 if refused else 500
        )
    await poller.poll_all()
    async with serve(poller, clock, orgs) as url, httpx.AsyncClient() as http:
        _, page = await raw(http, url, "identity")
        _, zipped = await raw(http, url, "gzip")
    print(f"status page at 100 orgs, {failing_orgs} failing: {len(page)} B, gzip {len(zipped)} B")
    assert (4, 201) == (len(windows), len(row_states(page.decode())))
    assert len(page) <= MAX_PAGE_BYTES, len(page)
    assert len(zipped) <= len(page) // 5
    counts = collect(poller.snapshot(), {}, clock.now).counts()
    assert 2 * failing_orgs == counts["failing"] + counts["backing_off"]


# The whole exporter against the demo API.


async def test_demo_failures_show_with_names_statuses_and_hints(
    running: main.Runtime, demo: Demo, http: httpx.AsyncClient
) -> None:
    broken, refused = demo.account.orgs[0], demo.account.orgs[1]
    demo.api.plan.set(
        PlanEntry(endpoint="v3_org_sessions", org=broken.id, faults=[Fault(status=500)])
    )
    demo.api.plan.set(
        PlanEntry(endpoint="v3_org_sessions", org=refused.id, faults=[Fault(status=403)])
    )
    await running.poller.poll_all()

    document = (await http.get(f"{running.url}/status.json")).json()
    first = [(e["state"], e["org"], e["org_name"]) for e in document["targets"][:2]]
    assert [("failing", broken.id, broken.name), ("backing_off", refused.id, refused.name)] == first
    errors = [
        (e["last_error"]["reason"], e["last_error"]["http_status"]) for e in document["targets"][:2]
    ]
    assert [("server_error", 500), ("forbidden", 403)] == errors
    assert all(e["next_poll_timestamp"] is not None for e in document["targets"])
    assert len(running.poller.targets) == document["summary"]["total"]

    page = (await http.get(f"{running.url}/")).text
    assert f"{broken.name} <small>{broken.id}</small>" in page
    assert "HTTP 403" in page
    assert "service user lacks ViewOrgMetrics or ViewAccountMetrics on " + refused.id in page
    assert "(enterprise)" in page
    for secret in (demo.account.service_user_key, demo.account.enterprise_key, "injected fault"):
        assert secret not in page
        assert secret not in str(document)
