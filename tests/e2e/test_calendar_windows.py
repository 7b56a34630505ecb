"""`today` and `cycle` windows end to end: the exporter asks for the calendar span."""

from __future__ import annotations

import httpx
import pytest
from conftest import FIXED_NOW, Clock, Demo, running_exporter
from scrape import label_values, parse, value

from exporter.demo.data import billing_cycles
from exporter.windows import day_start

pytestmark = pytest.mark.slow  # real processes, servers or builds


async def test_today_and_cycle_equal_the_demo_api_over_their_calendar_spans(
    demo: Demo, http: httpx.AsyncClient, clock: Clock
) -> None:
    settings = demo.settings(windows=["1h", "today", "cycle"])
    async with running_exporter(settings, clock) as runtime:
        series = parse((await http.get(f"{runtime.url}/metrics")).text)
    assert {"1h", "today", "cycle"} == label_values(series, "devin_sessions_created", "window")
    org = demo.account.orgs[0].id
    # The cycle is Devin's (read with the enterprise admin key): the demo's starts on the 5th.
    [(cycle_start, _)] = billing_cycles(FIXED_NOW, FIXED_NOW)
    for window, start in (("today", day_start(FIXED_NOW)), ("cycle", cycle_start)):
        answer = await http.get(
            f"{demo.url}/v3/organizations/{org}/metrics/sessions",
            params={"time_after": int(start), "time_before": int(FIXED_NOW)},
            headers={"Authorization": f"Bearer {demo.account.service_user_key}"},
        )
        assert answer.json()["sessions_created_count"] == value(
            series, "devin_sessions_created", org=org, window=window
        )
