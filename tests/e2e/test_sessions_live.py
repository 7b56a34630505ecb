"""Live session state end to end: the exporter and the demo API on loopback, one clock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest
from conftest import FIXED_NOW, Clock, Demo, running_exporter
from scrape import Series, parse

from exporter import main
from exporter.demo.data import live_sessions
from exporter.polling.live import OVERLAP_SECONDS, TERMINAL, completion

pytestmark = pytest.mark.slow  # real processes, servers or builds

LOOKBACK = 86400.0
ONLY_LIVE = {
    "sessions": {"enabled": False},
    "enterprise_sessions": {"enabled": False},
    "billing_cycles": {"enabled": False},
    "acu_limits": {"enabled": False},
    "sessions_live": {"enabled": True},
}


def expected_active(org: str, now: float) -> dict[tuple[str, str], tuple[float, float]]:
    """(status, status_detail) -> (sessions, oldest update), from the demo's own data."""
    groups: dict[tuple[str, str], list[int]] = {}
    for s in live_sessions(org, now):
        if s.status not in TERMINAL and s.updated_at >= now - LOOKBACK:
            groups.setdefault((s.status, s.status_detail or ""), []).append(s.updated_at)
    return {k: (float(len(v)), float(min(v))) for k, v in groups.items()}


def served_active(series: Series, org: str) -> dict[tuple[str, str], tuple[float, float]]:
    counts = {
        (labels["status"], labels["status_detail"]): v
        for name, labels, v in _samples(series, "devin_sessions_active", org)
    }
    oldest = {
        (labels["status"], labels["status_detail"]): v
        for name, labels, v in _samples(
            series, "devin_sessions_active_oldest_timestamp_seconds", org
        )
    }
    assert counts.keys() == oldest.keys()
    return {k: (counts[k], oldest[k]) for k in counts}


def _samples(series: Series, name: str, org: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (n, dict(labels), v)
        for (n, labels), v in series.items()
        if n == name and dict(labels)["org"] == org
    ]


def served_finished(series: Series, org: str) -> Counter[tuple[str, str]]:
    return Counter(
        {
            (labels["origin"], labels["status"]): int(v)
            for _, labels, v in _samples(series, "devin_sessions_finished_total", org)
        }
    )


def completed(
    org: str, polls: list[float], known: Iterable[str] = ()
) -> dict[str, tuple[str, str]]:
    """Session id -> (origin, status), from the demo's own data as listed at each poll: a
    session counts once, with the status of the first listing that shows it completed,
    unless it is `known` (counted by an earlier run)."""
    known = set(known)
    seen: dict[str, tuple[str, str]] = {}
    since = polls[0] - LOOKBACK
    for now in polls:
        for s in live_sessions(org, now):
            if s.updated_at < since or s.session_id in known:
                continue
            status = completion(s.status, s.status_detail)
            if status is not None:
                seen.setdefault(s.session_id, (s.origin or "unknown", status))
        since = now - OVERLAP_SECONDS
    return seen


def expected_completions(org: str, polls: list[float]) -> Counter[tuple[str, str]]:
    return Counter(completed(org, polls).values())


async def scrape(http: httpx.AsyncClient, runtime: main.Runtime) -> Series:
    return parse((await http.get(f"{runtime.url}/metrics")).text)


async def test_active_sessions_follow_a_state_change_and_finished_ones_count_once(
    moving_demo: Demo, clock: Clock, http: httpx.AsyncClient
) -> None:
    demo = moving_demo
    settings = demo.settings(endpoints=ONLY_LIVE)
    org = demo.account.orgs[0].id
    async with running_exporter(settings, clock) as runtime:
        first = await scrape(http, runtime)
        assert expected_active(org, FIXED_NOW) == served_active(first, org)

        clock.now = FIXED_NOW + 1800  # sessions start, wait, finish
        await runtime.poller.poll_all()
        second = await scrape(http, runtime)

    assert expected_active(org, clock.now) == served_active(second, org)
    assert expected_active(org, clock.now) != expected_active(org, FIXED_NOW)
    assert expected_completions(org, [FIXED_NOW, clock.now]) == served_finished(second, org)
    # Billing suspensions and sessions waiting for a user are among the states served.
    states = set(served_active(second, org))
    assert {("suspended", "out_of_credits"), ("running", "waiting_for_user")} <= states


async def test_each_session_completes_once_across_updates_and_a_restart_with_state_path(
    moving_demo: Demo, clock: Clock, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Sessions updated after they ended, or completing twice, count once; a restart with
    `state.path` lists the lookback again and counts none of them a second time."""
    demo = moving_demo
    settings = demo.settings(endpoints=ONLY_LIVE, state={"path": str(tmp_path / "state.json")})
    org = demo.account.orgs[0].id
    polls = [FIXED_NOW + step * 1800 for step in range(6)]  # 2.5 h: bumps come 30 min late
    async with running_exporter(settings, clock) as runtime:
        for now in polls[1:]:
            clock.now = now
            await runtime.poller.poll_all()
        before = served_finished(await scrape(http, runtime), org)

    clock.now = restart = polls[-1] + 600
    async with running_exporter(settings, clock) as runtime:
        after = served_finished(await scrape(http, runtime), org)

    counted = completed(org, polls)
    assert Counter(counted.values()) == before
    # A finished session served again later, and one that completed twice, are among them.
    assert {"finished", "exit", "error"} <= {status for _, status in counted.values()}
    assert Counter(completed(org, [restart], known=counted).values()) == after
    # Without the saved ids, the restart's listing would have counted most of them again.
    assert sum(after.values()) < sum(Counter(completed(org, [restart]).values()).values())


async def test_enterprise_mode_lists_each_org_through_the_enterprise_list(
    demo: Demo, clock: Clock, http: httpx.AsyncClient
) -> None:
    settings = demo.settings(
        endpoints=ONLY_LIVE,
        devin={
            "base_url": demo.url,
            "requests_per_second": 1000,
            "enterprise_service_user_key": demo.account.enterprise_service_user_key,
        },
    )
    async with running_exporter(settings, clock) as runtime:
        series = await scrape(http, runtime)

    for org in demo.account.orgs:
        assert expected_active(org.id, FIXED_NOW) == served_active(series, org.id)
        assert 1 == demo.api.plan.requests["v3_enterprise_sessions_list", org.id]
    assert {"v3_enterprise_sessions_list"} == {
        dict(labels)["endpoint"] for (name, labels) in series if name == "devin_up"
    }
