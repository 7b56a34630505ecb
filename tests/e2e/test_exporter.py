"""End to end, in-process: the demo API and the exporter as real HTTP servers on loopback."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from conftest import FIXED_NOW, Clock, Demo, require_tool, running_exporter, wait_until
from scrape import label_values, names, parse, value

from exporter import main
from exporter.demo.faults import Fault, PlanEntry
from exporter.devin.models import KNOWN_ORIGINS, KNOWN_SIZES
from exporter.devin.table import rfc3339
from exporter.polling.targets import Target

pytestmark = pytest.mark.slow  # real processes, servers or builds

WINDOWS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


async def scrape(http: httpx.AsyncClient, runtime: main.Runtime) -> dict[Any, float]:
    response = await http.get(f"{runtime.url}/metrics")
    assert response.status_code == 200
    return parse(response.text)


async def ask_demo_v3(http: httpx.AsyncClient, demo: Demo, org: str, seconds: int) -> Any:
    response = await http.get(
        f"{demo.url}/v3/organizations/{org}/metrics/sessions",
        params={"time_after": int(FIXED_NOW - seconds), "time_before": int(FIXED_NOW)},
        headers={"Authorization": f"Bearer {demo.account.service_user_key}"},
    )
    assert response.status_code == 200
    return response.json()


def target(runtime: main.Runtime, endpoint: str, org: str) -> Target:
    return next(t for t in runtime.poller.targets if (t.endpoint, t.org) == (endpoint, org))


async def test_v3_values_equal_what_the_demo_api_answers(
    running: main.Runtime, demo: Demo, http: httpx.AsyncClient
) -> None:
    series = await scrape(http, running)
    for org in demo.account.orgs:
        for window, seconds in WINDOWS.items():
            answer = await ask_demo_v3(http, demo, org.id, seconds)
            labels = {"org": org.id, "window": window}
            assert answer["sessions_created_count"] == value(
                series, "devin_sessions_created", **labels
            )
            assert answer["avg_acus_per_session"] == value(
                series, "devin_session_average_acus", **labels
            )
            assert answer["sessions_with_merged_prs_count"] == value(
                series, "devin_sessions_with_merged_prs", **labels
            )
            assert answer["sessions_created_with_playbook_count"] == value(
                series, "devin_sessions_created_with_playbook", **labels
            )
            assert answer["sessions_created_with_search_count"] == value(
                series, "devin_sessions_created_with_search", **labels
            )
            for origin, count in answer["sessions_created_by_origin"].items():
                assert count == value(
                    series, "devin_sessions_created_by_origin", origin=origin, **labels
                )
            for size, count in answer["sessions_created_by_size"].items():
                assert count == value(series, "devin_sessions_created_by_size", size=size, **labels)
            for size, count in answer["sessions_with_merged_prs_by_size"].items():
                assert count == value(
                    series, "devin_sessions_with_merged_prs_by_size", size=size, **labels
                )


async def test_v2_values_equal_what_the_demo_api_answers(
    running: main.Runtime, demo: Demo, http: httpx.AsyncClient
) -> None:
    series = await scrape(http, running)
    auth = {"Authorization": f"Bearer {demo.account.enterprise_key}"}
    for window, seconds in WINDOWS.items():
        params: dict[str, Any] = {
            "start": rfc3339(FIXED_NOW - seconds),
            "end": rfc3339(FIXED_NOW),
        }
        total = await http.get(
            f"{demo.url}/v2/enterprise/metrics/sessions", params=params, headers=auth
        )
        assert total.json()["sessions_count"] == value(
            series, "devin_enterprise_sessions", window=window
        )
        for org in demo.account.orgs:
            one = await http.get(
                f"{demo.url}/v2/enterprise/metrics/sessions",
                params={**params, "org_ids": [org.id]},
                headers=auth,
            )
            assert one.json()["sessions_count"] == value(
                series, "devin_enterprise_org_sessions", org=org.id, window=window
            )


async def test_every_origin_and_size_is_exported_and_an_unknown_origin_is_kept(
    running: main.Runtime, demo: Demo, http: httpx.AsyncClient
) -> None:
    series = await scrape(http, running)
    origins = label_values(series, "devin_sessions_created_by_origin", "origin")
    assert {*KNOWN_ORIGINS, "github"} == origins
    assert set(KNOWN_SIZES) == label_values(series, "devin_sessions_created_by_size", "size")
    org = demo.account.orgs[0].id
    answer = await ask_demo_v3(http, demo, org, WINDOWS["30d"])
    assert answer["sessions_created_by_origin"]["github"] == value(
        series, "devin_sessions_created_by_origin", org=org, window="30d", origin="github"
    )


async def test_an_origin_that_appears_later_is_exported(
    running: main.Runtime, demo: Demo, http: httpx.AsyncClient
) -> None:
    org = demo.account.orgs[1].id
    demo.api.plan.set(
        PlanEntry(endpoint="v3_org_sessions", org=org, faults=[Fault(body="new_keys")])
    )
    await running.poller.poll_target(target(running, "v3_org_sessions", org))
    series = await scrape(http, running)
    assert 2 == value(
        series, "devin_sessions_created_by_origin", org=org, window="24h", origin="devin_cli"
    )
    assert 2 == value(series, "devin_sessions_created_by_size", org=org, window="24h", size="xxl")
    assert 1 == value(series, "devin_up", endpoint="v3_org_sessions", org=org)


async def test_exporter_health_series(
    running: main.Runtime, demo: Demo, http: httpx.AsyncClient
) -> None:
    series = await scrape(http, running)
    for t in running.poller.targets:
        assert 1 == value(series, "devin_up", endpoint=t.endpoint, org=t.org)
        for window in (w.label for w in running.poller.windows_of(t)):
            assert FIXED_NOW == value(
                series,
                "devin_exporter_last_success_timestamp_seconds",
                endpoint=t.endpoint,
                org=t.org,
                window=window,
            )
    # Error series appear with a target's first error of a reason, not before.
    assert "devin_exporter_poll_errors_total" not in {name for name, _ in series}
    v3_requests = len(demo.account.orgs) * len(WINDOWS)
    assert v3_requests == value(
        series, "devin_exporter_api_requests_total", endpoint="v3_org_sessions", code="200"
    )
    assert (len(demo.account.orgs) + 1) * len(WINDOWS) == value(
        series, "devin_exporter_api_requests_total", endpoint="v2_enterprise_sessions", code="200"
    )
    assert len(demo.account.orgs) == value(
        series, "devin_exporter_poll_duration_seconds_count", endpoint="v3_org_sessions"
    )
    for org in demo.account.orgs:
        assert 1 == value(series, "devin_org_info", org=org.id, name=org.name)
    assert "devin_exporter_build_info" in names(series)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(status=401), "unauthorized"),
        (Fault(status=403), "forbidden"),
        (Fault(status=404), "not_found"),
        (Fault(status=422), "client_error"),
        (Fault(status=429, retry_after="1"), "rate_limited"),
        (Fault(status=500), "server_error"),
        (Fault(body="malformed"), "invalid_response"),
        (Fault(body="truncated"), "invalid_response"),
    ],
    ids=lambda p: (
        getattr(p, "status", None) or getattr(p, "body", p) if isinstance(p, Fault) else p
    ),
)
async def test_a_failing_target_is_counted_and_the_others_keep_serving(
    running: main.Runtime, demo: Demo, http: httpx.AsyncClient, fault: Fault, reason: str
) -> None:
    bad, good = demo.account.orgs[0].id, demo.account.orgs[1].id
    before = await scrape(http, running)
    demo.api.plan.set(PlanEntry(endpoint="v3_org_sessions", org=bad, faults=[fault]))
    await running.poller.poll_all()

    series = await scrape(http, running)
    assert 0 == value(series, "devin_up", endpoint="v3_org_sessions", org=bad)
    assert len(WINDOWS) == value(
        series,
        "devin_exporter_poll_errors_total",
        endpoint="v3_org_sessions",
        org=bad,
        reason=reason,
    )
    # The last good values stay until they are stale.
    assert value(before, "devin_sessions_created", org=bad, window="24h") == value(
        series, "devin_sessions_created", org=bad, window="24h"
    )
    for t in running.poller.targets:
        if (t.endpoint, t.org) != ("v3_org_sessions", bad):
            assert 1 == value(series, "devin_up", endpoint=t.endpoint, org=t.org)
    assert value(before, "devin_sessions_created", org=good, window="24h") == value(
        series, "devin_sessions_created", org=good, window="24h"
    )
    status = (await http.get(f"{running.url}/status.json")).json()
    (entry,) = (
        t for t in status["targets"] if (t["endpoint"], t["org"]) == ("v3_org_sessions", bad)
    )
    assert (reason, {reason}) == (
        entry["last_error"]["reason"],
        {w["reason"] for w in entry["windows"]},
    )
    page = (await http.get(f"{running.url}/")).text
    assert f"<b>{reason}</b>" in page


async def test_a_missing_field_drops_only_its_own_series_and_is_counted(
    running: main.Runtime, demo: Demo, http: httpx.AsyncClient
) -> None:
    """The fault leaves out the first and last fields of the answer:
    `sessions_created_count` and `avg_acus_per_session`."""
    org = demo.account.orgs[0].id
    fault = Fault(body="missing_fields")
    demo.api.plan.set(PlanEntry(endpoint="v3_org_sessions", org=org, faults=[fault]))
    await running.poller.poll_all()

    series = await scrape(http, running)
    missing = {
        field: value(
            series,
            "devin_exporter_fields_missing_total",
            endpoint="v3_org_sessions",
            field=field,
        )
        for field in ("sessions_created_count", "avg_acus_per_session")
    }
    assert {field: len(WINDOWS) for field in missing} == missing
    assert 1 == value(series, "devin_up", endpoint="v3_org_sessions", org=org)
    assert value(series, "devin_sessions_created", org=org, window="24h") is None
    assert value(series, "devin_session_average_acus", org=org, window="24h") is None
    direct = await ask_demo_v3(http, demo, org, 86400)
    assert direct["sessions_created_by_origin"]["slack"] == value(
        series, "devin_sessions_created_by_origin", org=org, window="24h", origin="slack"
    )


async def test_real_auth_failures_are_reported_by_reason(
    demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    """A revoked key gives 401; a key without ViewOrgMetrics on the org gives 403."""
    orgs = demo.account.orgs
    demo.account.service_user_keys["cog_only_first_org"] = {orgs[0].id}
    settings = demo.settings(
        organizations=[
            {"id": orgs[0].id, "service_user_key": "cog_only_first_org"},
            {"id": orgs[1].id, "service_user_key": "cog_only_first_org"},
            {"id": orgs[2].id, "service_user_key": "cog_revoked"},
        ]
    )
    async with running_exporter(settings, clock) as runtime:
        series = await scrape(http, runtime)
    assert 1 == value(series, "devin_up", endpoint="v3_org_sessions", org=orgs[0].id)
    for org, reason in ((orgs[1].id, "forbidden"), (orgs[2].id, "unauthorized")):
        assert 0 == value(series, "devin_up", endpoint="v3_org_sessions", org=org)
        assert len(WINDOWS) == value(
            series,
            "devin_exporter_poll_errors_total",
            endpoint="v3_org_sessions",
            org=org,
            reason=reason,
        )
        assert value(series, "devin_sessions_created", org=org, window="1h") is None


async def test_series_vanish_once_older_than_stale_after(
    running: main.Runtime, demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    bad, good = demo.account.orgs[0].id, demo.account.orgs[1].id
    demo.api.plan.set(PlanEntry(endpoint="v3_org_sessions", org=bad, faults=[Fault(status=503)]))
    stale_after = 3 * 3600  # three polls of the fixture's 1h interval

    clock.now = FIXED_NOW + stale_after - 1
    await running.poller.poll_all()
    series = await scrape(http, running)
    assert value(series, "devin_sessions_created", org=bad, window="1h") is not None

    clock.now = FIXED_NOW + stale_after + 1
    await running.poller.poll_all()
    series = await scrape(http, running)
    assert value(series, "devin_sessions_created", org=bad, window="1h") is None
    assert not any(
        dict(labels).get("org") == bad
        for name, labels in series
        if name.startswith("devin_sessions")
    )
    assert value(series, "devin_sessions_created", org=good, window="1h") is not None
    assert 0 == value(series, "devin_up", endpoint="v3_org_sessions", org=bad)
    assert FIXED_NOW == value(
        series,
        "devin_exporter_last_success_timestamp_seconds",
        endpoint="v3_org_sessions",
        org=bad,
        window="1h",
    )


async def test_not_ready_until_the_first_cycle_has_finished(
    demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    slow = demo.account.orgs[2].id
    demo.api.plan.set(
        PlanEntry(endpoint="v3_org_sessions", org=slow, faults=[Fault(delay_seconds=1.0)])
    )
    settings = demo.settings()
    async with running_exporter(settings, clock, ready=False) as runtime:
        assert 503 == (await http.get(f"{runtime.url}/readyz")).status_code
        assert 200 == (await http.get(f"{runtime.url}/healthz")).status_code
        await wait_until(lambda: runtime.poller.ready)
        assert 200 == (await http.get(f"{runtime.url}/readyz")).status_code


async def test_metrics_negotiate_openmetrics_and_gzip(
    running: main.Runtime, http: httpx.AsyncClient
) -> None:
    plain = await http.get(f"{running.url}/metrics", headers={"Accept-Encoding": "identity"})
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "content-encoding" not in plain.headers

    om = await http.get(
        f"{running.url}/metrics",
        headers={
            "Accept": "application/openmetrics-text; version=1.0.0",
            "Accept-Encoding": "gzip",
        },
    )
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert "gzip" == om.headers["content-encoding"]
    assert om.text.endswith("# EOF\n")
    assert "devin_sessions_created" in om.text


async def test_status_page_lists_every_target_and_window(
    running: main.Runtime, demo: Demo, http: httpx.AsyncClient
) -> None:
    page = await http.get(f"{running.url}/")
    assert page.headers["content-type"].startswith("text/html")
    # One row per target, its windows folded in.
    rows = re.findall(r'<tr class="(\w+)"><td>', page.text)
    assert ["ok"] * len(running.poller.targets) == rows
    assert " ".join(WINDOWS) in page.text
    assert "(enterprise)" in page.text
    for key in (demo.account.service_user_key, demo.account.enterprise_key):
        assert key not in page.text


@pytest.mark.prometheus
async def test_promtool_finds_nothing_to_complain_about(
    running: main.Runtime, http: httpx.AsyncClient
) -> None:
    promtool = require_tool("promtool")
    text = (await http.get(f"{running.url}/metrics")).text
    process = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(text.encode())
    assert (b"", b"", 0) == (out, err, process.returncode)
