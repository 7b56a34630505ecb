"""Who and what spends, end to end on loopback: per-user ACUs from the demo's v2 daily
consumption (sums, the `top` bound, hashed labels and where raw ids may not go), and
sessions by repository across state changes and a restart with `state.path`."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FIXED_NOW, Clock, Demo, processes, running_exporter
from scrape import Series, parse

from exporter.demo.data import DEMO_PR_URLS, LiveSession, live_sessions
from exporter.polling.live import OVERLAP_SECONDS, completion

pytestmark = pytest.mark.slow  # real processes, servers or builds

DAY = 86400
LOOKBACK = 86400.0
WINDOWS = ["1h", "24h", "7d", "today", "cycle"]
ONLY_USERS = {
    "sessions": {"enabled": False},
    "enterprise_sessions": {"enabled": False},
    "user_consumption": {"enabled": True, "top": 3},
}
# The repository each of the demo's pull request URLs names, written out by hand.
REPO_OF_URL = {
    "https://github.com/acme/api/pull/{n}": "github.com/acme/api",
    "https://github.com/acme/web/pull/{n}": "github.com/acme/web",
    "https://github.com/Acme-Labs/ML-Pipeline/pull/{n}": "github.com/acme-labs/ml-pipeline",
    "https://github.acme.example/platform/auth/pull/{n}": "github.acme.example/platform/auth",
    "https://gitlab.com/acme/platform/infra/-/merge_requests/{n}": "gitlab.com/acme/platform/infra",
    "https://gitlab.com/acme/platform/billing/payments-service/-/merge_requests/{n}": (
        "gitlab.com/acme/platform/billing/payments-service"
    ),
    "https://gitlab.acme.example/data/warehouse/dbt-models/-/merge_requests/{n}": (
        "gitlab.acme.example/data/warehouse/dbt-models"
    ),
    "https://bitbucket.org/acme/mobile-app/pull-requests/{n}": "bitbucket.org/acme/mobile-app",
    "https://bitbucket.acme.example/projects/OPS/repos/deploy-scripts/pull-requests/{n}": (
        "bitbucket.acme.example/ops/deploy-scripts"
    ),
    "https://dev.azure.com/acme/Payments/_git/ledger/pullrequest/{n}": (
        "dev.azure.com/acme/payments/ledger"
    ),
    "https://acme.visualstudio.com/Legacy/_git/erp-connector/pullrequest/{n}": (
        "acme.visualstudio.com/legacy/erp-connector"
    ),
}


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def billing_range(window: str, now: float) -> tuple[float, float]:
    """The billing days (from 08:00 UTC) a window covers, worked out here by hand."""
    moment = datetime.fromtimestamp(now, UTC)
    today = moment.replace(hour=8, minute=0, second=0, microsecond=0)
    if today > moment:
        today -= timedelta(days=1)
    if window == "today":
        return today.timestamp(), now
    if window == "cycle":
        raise ValueError("the cycle's start is Devin's: see cycle_range")
    days = {"24h": 1, "7d": 7, "30d": 30}[window]
    return today.timestamp() - days * DAY, today.timestamp()


def consumption_request(demo_url: str, key: str, window: str, now: float) -> dict[str, Any]:
    """The request for the whole enterprise's consumption over the window's billing days."""
    start, end = billing_range(window, now)
    return {
        "url": f"{demo_url}/v2/enterprise/consumption/daily",
        "params": {"start": rfc3339(start), "end": rfc3339(end)},
        "headers": {"Authorization": f"Bearer {key}"},
    }


def devin_answer(demo_url: str, key: str, window: str, now: float) -> dict[str, Any]:
    """What Devin (the demo, in a process of its own) answers for the window."""
    response = httpx.get(**consumption_request(demo_url, key, window, now), timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def cycle_start(http: httpx.AsyncClient, demo: Demo) -> float:
    """Where the billing cycle holding FIXED_NOW began, as Devin's v2 cycles list says (the
    exporter's cycle source with an enterprise admin key)."""
    headers = {"Authorization": f"Bearer {demo.account.enterprise_key}"}
    cycles = (
        await http.get(f"{demo.url}/v2/enterprise/consumption/cycles", headers=headers)
    ).json()
    starts = [datetime.fromisoformat(c["start"].replace("Z", "+00:00")).timestamp() for c in cycles]
    return max(s for s in starts if s <= FIXED_NOW)


async def demo_answer(http: httpx.AsyncClient, demo: Demo, window: str) -> dict[str, Any]:
    """What the in-process demo answers for the window, at FIXED_NOW."""
    key = demo.account.enterprise_key
    if window == "cycle":
        request = consumption_request(demo.url, key, "today", FIXED_NOW)
        request["params"]["start"] = rfc3339(await cycle_start(http, demo))
    else:
        request = consumption_request(demo.url, key, window, FIXED_NOW)
    response = await http.get(**request)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def users_by_window(series: Series) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for (name, labels), value in series.items():
        if name == "devin_user_acus_consumed":
            label = dict(labels)
            found.setdefault(label["window"], {})[label["user"]] = value
    return found


def ranked(by_user: dict[str, float]) -> list[str]:
    return [u for u, _ in sorted(by_user.items(), key=lambda item: (-item[1], item[0]))]


async def test_each_window_adds_up_to_devin_s_total_with_top_users_other_and_unattributed(
    demo: Demo, clock: Clock, http: httpx.AsyncClient
) -> None:
    settings = demo.settings(windows=WINDOWS, endpoints=ONLY_USERS)
    async with running_exporter(settings, clock) as runtime:
        served = users_by_window(parse((await http.get(f"{runtime.url}/metrics")).text))
        # A reload applies a new `top` at once, without waiting for the next hour.
        top_5 = {**ONLY_USERS, "user_consumption": {"enabled": True, "top": 5}}
        runtime.reload(demo.settings(windows=WINDOWS, endpoints=top_5))
        after: dict[str, dict[str, float]] = {}
        deadline = time.monotonic() + 10
        while len(after.get("7d", {})) != 5 + 2:
            assert time.monotonic() < deadline, after
            after = users_by_window(parse((await http.get(f"{runtime.url}/metrics")).text))

    # 1h is no whole number of billing days: no per-user series, as no devin_acus_consumed.
    assert {"24h", "7d", "today", "cycle"} == set(served)
    for window, by_label in served.items():
        answer = await demo_answer(http, demo, window)
        users: dict[str, float] = answer["consumption_by_user"]
        top = ranked(users)[:3]
        assert len(users) > 3
        assert {*top, "other", "unattributed"} == set(by_label), window
        assert [users[u] for u in top] == [by_label[u] for u in top]
        assert sum(users[u] for u in users if u not in top) == pytest.approx(by_label["other"])
        assert answer["total_acus"] - sum(users.values()) == pytest.approx(by_label["unattributed"])
        assert answer["total_acus"] == pytest.approx(sum(by_label.values()), rel=1e-9)
    week = (await demo_answer(http, demo, "7d"))["consumption_by_user"]
    assert {*ranked(week)[:5], "other", "unattributed"} == set(after["7d"])


def test_hashed_labels_are_the_hmac_of_each_user_and_no_raw_id_appears_anywhere(
    tmp_path: Path,
) -> None:
    """The exporter and the demo API as processes: the 7d window's labels are the HMACs of
    Devin's top 20 users, computed here, and no user id Devin sent is in /metrics,
    /status.json, the status page, the log (at debug) or the state file."""
    key = "k-" + "0123456789abcdef" * 2
    (tmp_path / "hash.key").write_text(f"\n  {key}  \n")
    state = tmp_path / "state.json"
    config = {
        "attribution": {"user_label": "hashed", "hash_key_file": str(tmp_path / "hash.key")},
        "state": {"path": str(state)},
    }
    with processes(tmp_path, **config) as process:
        demo_url = process.demo_admin_url.removesuffix("/_demo")
        now = time.time()
        users = devin_answer(demo_url, process.keys[1], "7d", now)["consumption_by_user"]
        metrics = httpx.get(f"{process.url}/metrics", timeout=10).text
        status = httpx.get(f"{process.url}/status.json", timeout=10).text
        page = httpx.get(f"{process.url}/", timeout=10).text
        deadline = time.monotonic() + 30
        while not state.exists():  # saved within 10 s of a change
            assert time.monotonic() < deadline, "the state file was never saved"
            time.sleep(0.2)
        saved = state.read_text()
    log = process.log()

    def label(user_id: str) -> str:
        return hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()[:16]

    served = users_by_window(parse(metrics))
    assert {label(u) for u in ranked(users)[:20]} == set(served["7d"]) - {"other", "unattributed"}
    assert all(
        re.fullmatch(r"[0-9a-f]{16}|other|unattributed", u) for w in served.values() for u in w
    )
    assert len(users) > 20
    for text in (metrics, status, page, saved, log):
        assert not [u for u in users if u in text]
        assert key not in text
    assert json.loads(saved)["windows"]  # a whole state file, with the other targets' values


# Sessions by repository.

ONLY_LIVE = {
    "sessions": {"enabled": False},
    "enterprise_sessions": {"enabled": False},
    "sessions_live": {"enabled": True, "max_repos": 3},
}


def repo_of(session: LiveSession) -> str:
    """The `repo` of a demo session, by the hand-written table above."""
    if not session.pull_requests:
        return ""
    url = session.pull_requests[0][0]
    (repo,) = [r for t, r in REPO_OF_URL.items() if url.startswith(t.split("{n}")[0])]
    return repo


def completions(
    org: str, polls: list[float], known: set[str] | None = None
) -> dict[str, tuple[str, float]]:
    """Session id -> (repo, ACUs) as the first listing that shows it completed has it."""
    known = known or set()
    seen: dict[str, tuple[str, float]] = {}
    since = polls[0] - LOOKBACK
    for now in polls:
        for s in live_sessions(org, now):
            if s.updated_at < since or s.session_id in known:
                continue
            if completion(s.status, s.status_detail) is not None:
                seen.setdefault(s.session_id, (repo_of(s), s.acus_consumed))
        since = now - OVERLAP_SECONDS
    return seen


def served_by_repo(series: Series, org: str) -> dict[str, tuple[float, float]]:
    sessions: dict[str, float] = {}
    acus: dict[str, float] = {}
    for (name, labels), value in series.items():
        label = dict(labels)
        if label.get("org") != org:
            continue
        if name == "devin_sessions_finished_by_repo_total":
            sessions[label["repo"]] = value
        elif name == "devin_session_acus_by_repo_total":
            acus[label["repo"]] = value
    assert sessions.keys() == acus.keys()
    return {repo: (sessions[repo], acus[repo]) for repo in sessions}


def check_by_repo(
    served: dict[str, tuple[float, float]], counted: dict[str, tuple[str, float]]
) -> None:
    """Each completion once: "" and each named repository exactly, the rest as `other`,
    and at most 3 (max_repos) named."""
    expected: dict[str, tuple[int, float]] = {}
    for repo, acus in counted.values():
        n, total = expected.get(repo, (0, 0.0))
        expected[repo] = (n + 1, total + acus)
    named = set(served) - {"", "other"}
    assert 3 == len(named) < len(set(expected) - {""})
    for repo in {"", *named}:
        assert expected[repo][0] == served[repo][0], repo
        assert expected[repo][1] == pytest.approx(served[repo][1]), repo
    rest = [v for r, v in expected.items() if r not in named and r != ""]
    assert sum(n for n, _ in rest) == served["other"][0]
    assert sum(a for _, a in rest) == pytest.approx(served["other"][1])


async def test_sessions_by_repository_count_once_across_state_changes_and_a_restart(
    moving_demo: Demo, clock: Clock, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    demo = moving_demo
    settings = demo.settings(endpoints=ONLY_LIVE, state={"path": str(tmp_path / "state.json")})
    org = demo.account.orgs[0].id
    polls = [FIXED_NOW + step * 1800 for step in range(6)]
    async with running_exporter(settings, clock) as runtime:
        for now in polls[1:]:
            clock.now = now
            await runtime.poller.poll_all()
        before = served_by_repo(parse((await http.get(f"{runtime.url}/metrics")).text), org)

    clock.now = restart = polls[-1] + 3600
    async with running_exporter(settings, clock) as runtime:
        after = served_by_repo(parse((await http.get(f"{runtime.url}/metrics")).text), org)

    counted = completions(org, polls)
    check_by_repo(before, counted)
    assert sum(n for n, _ in before.values()) == len(counted)
    # After the restart: only sessions that completed since, none of those counted before.
    fresh = completions(org, [restart], known=set(counted))
    assert fresh
    assert sum(n for n, _ in after.values()) == len(fresh)
    assert len(fresh) < len(completions(org, [restart]))


def test_the_demo_s_pull_requests_span_every_host_and_the_table_above_covers_them() -> None:
    assert set(DEMO_PR_URLS) == set(REPO_OF_URL)
    hosts = {r.split("/")[0] for r in REPO_OF_URL.values()}
    assert {"github.com", "gitlab.com", "bitbucket.org", "dev.azure.com"} <= hosts
    repos = Counter(repo_of(s) for s in live_sessions("org-demo0000", FIXED_NOW))
    assert repos[""] > 0
    assert len(repos) > 4
    assert any(len(s.pull_requests) == 2 for s in live_sessions("org-demo0000", FIXED_NOW))
