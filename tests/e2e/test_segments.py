"""Segments: a team or a playbook gets its own session series, labelled `segment`."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from conftest import FIXED_NOW, Clock, Demo, require_tool, running_exporter
from scrape import label_values, parse, value

pytestmark = pytest.mark.slow  # real processes, servers or builds

SEGMENTS = [
    {"name": "platform-team", "user_ids": ["user-1", "user-2"]},
    {"name": "triage-playbook", "playbook_id": "playbook-7"},
]


async def test_each_segment_is_polled_per_org_with_its_filters(
    demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    settings = demo.settings(segments=SEGMENTS)
    async with running_exporter(settings, clock) as runtime:
        text = (await http.get(f"{runtime.url}/metrics")).text
    series = parse(text)
    org = demo.account.orgs[0].id
    auth = {"Authorization": f"Bearer {demo.account.service_user_key}"}
    span = {"time_after": int(FIXED_NOW - 86400), "time_before": int(FIXED_NOW)}
    team = await http.get(
        f"{demo.url}/v3/organizations/{org}/metrics/sessions",
        params={**span, "user_ids": ["user-1", "user-2"]},
        headers=auth,
    )
    whole = await http.get(
        f"{demo.url}/v3/organizations/{org}/metrics/sessions", params=span, headers=auth
    )
    assert team.json()["sessions_created_count"] == value(
        series, "devin_sessions_created", org=org, window="24h", segment="platform-team"
    )
    # The whole-org series keep exactly their labels; a segment is a slice of them.
    assert whole.json()["sessions_created_count"] == value(
        series, "devin_sessions_created", org=org, window="24h"
    )
    assert team.json()["sessions_created_count"] < whole.json()["sessions_created_count"]
    assert {"platform-team", "triage-playbook"} == label_values(
        series, "devin_sessions_created", "segment"
    )
    assert 1 == value(
        series, "devin_up", endpoint="v3_org_sessions", org=org, segment="triage-playbook"
    )
    promtool = require_tool("promtool")
    process = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate(text.encode())
    assert (b"", 0) == (out, process.returncode)
