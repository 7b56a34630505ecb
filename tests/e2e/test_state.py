"""Warm restarts with state.path: the previous run's values, served before the first poll."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import ExporterProcess, processes, stop_process, wait_for_line
from scrape import Series, label_values, parse

from exporter import main
from exporter.polling.state import decode, encode, match, value_type

pytestmark = pytest.mark.slow  # real processes, servers or builds

# Long enough that the restarted exporter's first poll is still waiting when it is scraped.
SLOW_SECONDS = 30.0
KEPT = (
    "devin_sessions_created",
    "devin_sessions_created_by_origin",
    "devin_enterprise_sessions",
    "devin_exporter_last_success_timestamp_seconds",
    "devin_up",
)


def kept_series(text: str) -> Series:
    """The series a restart must bring back, by name and labels."""
    return {(name, labels): v for (name, labels), v in parse(text).items() if name in KEPT}


def slow_down_every_target(process: ExporterProcess, orgs: list[str]) -> None:
    targets = [("v3_org_sessions", o) for o in orgs]
    targets += [("v2_enterprise_sessions", o) for o in [*orgs, ""]]
    for endpoint, org in targets:
        body = {"endpoint": endpoint, "org": org, "faults": [{"delay_seconds": SLOW_SECONDS}]}
        httpx.post(f"{process.demo_admin_url}/faults", json=body, timeout=5).raise_for_status()


def demo_requests(process: ExporterProcess) -> int:
    counts = httpx.get(f"{process.demo_admin_url}/requests", timeout=5).json()
    return sum(c["requests"] for c in counts if c["endpoint"] == "v3_org_sessions")


def wait_for(predicate: object, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_restart_serves_the_saved_values_before_its_first_poll_ends(tmp_path: Path) -> None:
    state = tmp_path / "state" / "state.json"
    state.parent.mkdir()
    seed_only = {
        "sessions": {"enabled": True, "interval": "2s"},
        "enterprise_sessions": {"enabled": True, "interval": "2s"},
        # The billing reads answer fast; this test needs every answer slow.
        "billing_cycles": {"enabled": False},
        "acu_limits": {"enabled": False},
    }
    # poll_interval is also each poll's time budget. With the fixture's 5 s, a slowed request
    # already counted in `seen` could fail its poll before a new request arrived, leaving
    # devin_up 0; 30 s outlasts wait_for's 20 s.
    with processes(
        tmp_path, state={"path": str(state)}, endpoints=seed_only, poll_interval="30s"
    ) as process:
        orgs = [o["id"] for o in _organizations(tmp_path)]
        slow_down_every_target(process, orgs)
        # Once a poll has met the slow answers, no later one can change the values.
        seen = demo_requests(process)
        wait_for(lambda: demo_requests(process) > seen, "no poll reached the slow demo API")
        before = kept_series(httpx.get(f"{process.url}/metrics", timeout=5).text)
        process.exporter.send_signal(signal.SIGTERM)
        assert 0 == process.exporter.wait(timeout=10)

        saved = state.read_bytes()
        assert not [key for key in process.keys if key.encode() in saved]
        assert decode(saved).windows

        log_path = tmp_path / "restarted.log"
        with log_path.open("w") as out:
            restarted = subprocess.Popen(
                [sys.executable, "-m", "exporter.cli", "--config", str(tmp_path / "config.yaml")],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        try:
            url = wait_for_line(log_path, r"event=started .*address=(\S+)", restarted).group(1)
            after = kept_series(httpx.get(f"{url}/metrics", timeout=5).text)
            # Not ready: no poll of this run has ended (every answer takes SLOW_SECONDS).
            assert 503 == httpx.get(f"{url}/readyz", timeout=5).status_code
        finally:
            stop_process(restarted)
        assert set(orgs) == label_values(before, "devin_sessions_created", "org")
        assert before == after
        assert {1.0} == {v for (name, _), v in after.items() if name == "devin_up"}
        restored = wait_for_line(log_path, r"event=state_restored .*samples=(\d+)", restarted)
        assert 4 * (2 * len(orgs) + 1) == int(restored.group(1))


def _organizations(tmp_path: Path) -> list[dict[str, str]]:
    document = yaml.safe_load((tmp_path / "config.yaml").read_text(encoding="utf-8"))
    organizations: list[dict[str, str]] = document["organizations"]
    return organizations


async def test_every_kind_of_value_survives_the_round_trip(
    running_everything: main.Runtime,
) -> None:
    poller = running_everything.poller
    snapshot = poller.snapshot()
    restored = match(
        decode(encode(snapshot, 0.0)),
        poller.targets,
        lambda t: [w.label for w in poller.windows_of(t)],
    )
    # The session list is not kept (its next poll gathers it again); everything else is.
    kept = {
        key: sample
        for key, sample in snapshot.samples.items()
        if value_type(key[0].row) is not None
    }
    assert {type(s.value).__name__ for s in kept.values()} >= {
        "SessionMetrics",
        "EnterpriseSessions",
        "ConsumedAcus",
        "LatestActiveUsers",
        "BillingCycle",
    }
    assert kept == restored.samples
    assert 0 == restored.skipped
