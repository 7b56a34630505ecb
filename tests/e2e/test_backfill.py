"""`devin-exporter backfill` end to end: the command against the demo Devin API, its file
through `promtool tsdb create-blocks-from openmetrics`, and a real Prometheus on the blocks
answering instant queries at past steps with the demo's own answers for those ranges."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import ALL_GROUPS, FIXED_NOW, Demo, require_tool, wait_until
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from test_prometheus_stack import running_prometheus

from exporter.backfill.steps import SERIES_LABELS, Steps, stamp
from exporter.demo.faults import Fault, PlanEntry
from exporter.devin.table import ENDPOINTS
from exporter.windows import DAY_SECONDS, day_start

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

STEP = 3 * 3600
SINCE = 12 * 3600
UNTIL = FIXED_NOW  # the demo's fixed now: the steps are the 3h multiples of its last 12h
WINDOWS = ["1h", "24h", "today", "cycle"]
TIMES = Steps(SINCE, UNTIL, STEP).times


@dataclass
class Run:
    status: int
    stderr: str


def write_config(demo: Demo, tmp_path: Path, *, everything: bool = False, **devin: Any) -> Path:
    """A config for the demo: sessions, consumption and dau/wau/mau of every org; with
    `everything`, every endpoint group and the enterprise service user."""
    account = demo.account
    keys = {
        "service_user_key_file": account.service_user_key,
        "enterprise_key_file": account.enterprise_key,
    }
    groups = ["consumption", "active_user_buckets"]
    if everything:
        keys["enterprise_service_user_key_file"] = account.enterprise_service_user_key
        groups = list(ALL_GROUPS)
    for name, key in keys.items():
        (tmp_path / name).write_text(key + "\n", encoding="utf-8")
    config = {
        "devin": {
            "base_url": demo.url,
            **{name: str(tmp_path / name) for name in keys},
            "requests_per_second": 1000,
            "retry_initial_backoff": "10ms",
            "retry_max_backoff": "50ms",
            **devin,
        },
        "organizations": [{"id": o.id} for o in account.orgs],
        "windows": WINDOWS,
        "endpoints": {group: {"enabled": True} for group in groups},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def backfill_args(config: Path, output: Path, *more: str) -> list[str]:
    return [
        *(sys.executable, "-m", "exporter.cli", "backfill", "--config", str(config)),
        *("--since", f"{SINCE}s", "--until", stamp(UNTIL), "--step", f"{STEP}s"),
        *("--output", str(output), *more),
    ]


async def backfill(*args: str) -> tuple[Run, str]:
    """Run the command (the demo serves from this event loop meanwhile)."""
    process = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Run(process.returncode, err.decode()), out.decode()


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...], int], float]:
    """Every sample of the file, read strictly as OpenMetrics."""
    text = path.read_text(encoding="utf-8")
    return {
        (s.name, tuple(sorted(s.labels.items())), int(float(s.timestamp))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def create_blocks(output: Path, blocks: Path) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool")
    command = [promtool, "tsdb", "create-blocks-from", "openmetrics", str(output), str(blocks)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def has_journal(output: Path) -> bool:
    return Path(f"{output}.journal.json").exists()


def explained_total(out: str) -> int:
    match = re.search(r"^(\d+) requests in total", out, re.MULTILINE)
    assert match is not None, out
    return int(match.group(1))


def requests_made(demo: Demo) -> int:
    return sum(demo.api.plan.requests.values())


async def demo_answer(
    demo: Demo, endpoint: str, org: str, start: float, end: float, **kw: str
) -> Any:
    """The demo's own answer for one range, asked directly."""
    row = ENDPOINTS[endpoint]
    call = row.call(org, start, end, **kw)
    async with httpx.AsyncClient(base_url=demo.url, timeout=10) as http:
        response = await http.get(
            row.url(call),
            params=call.params,
            headers={"Authorization": f"Bearer {demo.account.service_user_key}"},
        )
    response.raise_for_status()
    return response.json()


def test_the_steps_are_past_and_include_one_inside_a_billing_day() -> None:
    assert 4 == len(TIMES)
    assert any(day_start(t) != t for t in TIMES)


async def test_explain_counts_exactly_the_requests_the_run_makes(
    demo: Demo, tmp_path: Path
) -> None:
    config = write_config(demo, tmp_path)
    explained, out = await backfill(*backfill_args(config, tmp_path / "out.om", "--explain"))
    assert (0, 0) == (explained.status, requests_made(demo)), explained.stderr
    total = explained_total(out)
    ran, _ = await backfill(*backfill_args(config, tmp_path / "out.om"))
    assert 0 == ran.status, ran.stderr
    assert total == requests_made(demo)
    refused, _ = await backfill(
        *backfill_args(config, tmp_path / "again.om", "--max-requests", str(total - 1))
    )
    assert 2 == refused.status
    assert f"needs {total} requests" in refused.stderr
    assert total == requests_made(demo)  # refused before asking anything
    assert not (tmp_path / "again.om").exists()


async def test_prometheus_on_the_blocks_answers_past_steps_with_the_demos_answers(
    demo: Demo, tmp_path: Path
) -> None:
    output = tmp_path / "history.om"
    labels = ("--label", "job=devin-exporter", "--label", "instance=exporter:9877")
    ran, _ = await backfill(*backfill_args(write_config(demo, tmp_path), output, *labels))
    assert 0 == ran.status, ran.stderr
    blocks = tmp_path / "blocks"
    created = create_blocks(output, blocks)
    assert 0 == created.returncode, created.stderr
    org = demo.account.orgs[0].id
    expected: dict[tuple[str, int], float] = {}
    for t in TIMES:
        sessions = await demo_answer(demo, "v3_org_sessions", org, t - DAY_SECONDS, t)
        expected["created_24h", t] = sessions["sessions_created_count"]
        today = await demo_answer(demo, "v3_org_consumption_daily", org, day_start(t), t)
        expected["acus_today", t] = sum(d["acus"] for d in today["consumption_by_date"])
        dau = await demo_answer(
            demo, "v3_org_active_user_buckets", org, t - 3 * DAY_SECONDS, t, period="dau"
        )
        last = max((b for b in dau if b["end_time"] < t), key=lambda b: b["end_time"])
        expected["dau", t] = last["active_users"]
    queries = {
        "created_24h": (
            f'devin_sessions_created{{job="devin-exporter",instance="exporter:9877",'
            f'org="{org}",window="24h"}}'
        ),
        "acus_today": f'sum(devin_acus_consumed{{org="{org}",window="today"}})',
        "dau": f'devin_active_users_latest{{org="{org}",period="day"}}',
    }
    flags = (f"--storage.tsdb.path={blocks}", "--storage.tsdb.retention.time=100y")
    with running_prometheus(tmp_path, {"global": {}}, *flags) as prometheus:
        got = {
            (name, t): float(prometheus.query(expr, at=t)[0]["value"][1])
            for name, expr in queries.items()
            for t in TIMES
        }
    assert pytest.approx(expected) == got
    assert len({v for (name, _), v in got.items() if name == "created_24h"}) > 1  # it moves


async def test_every_group_backfills_with_the_daemons_labels_and_no_bookkeeping(
    demo: Demo, tmp_path: Path
) -> None:
    output = tmp_path / "all.om"
    config = write_config(demo, tmp_path, everything=True)
    ran, _ = await backfill(*backfill_args(config, output, "--label", "job=devin"))
    assert 0 == ran.status, ran.stderr
    got = samples(output)
    names = {name for name, _, _ in got}
    assert len(names) > 20
    assert all(n.startswith("devin_") and not n.startswith("devin_exporter_") for n in names)
    assert "devin_up" not in names
    assert "devin_sessions_active" not in names  # live state has no past
    label_names = {k for _, labels, _ in got for k, _ in labels}
    assert label_names <= SERIES_LABELS | {"job"}
    assert all(("job", "devin") in labels for _, labels, _ in got)
    assert {t for _, _, t in got} == set(TIMES)
    assert "event=backfill_progress steps_done=4 steps=4" in ran.stderr


async def test_a_step_that_still_fails_is_named_and_the_file_stays_valid(
    demo: Demo, tmp_path: Path
) -> None:
    org = demo.account.orgs[1].id
    # No retries: the one failing answer is the request's last word.
    demo.api.plan.set(
        PlanEntry(endpoint="v3_org_sessions", org=org, faults=[Fault(status=500, times=1)])
    )
    output = tmp_path / "out.om"
    ran, _ = await backfill(*backfill_args(write_config(demo, tmp_path, max_attempts=1), output))
    assert 1 == ran.status, ran.stderr
    left_out = re.findall(
        rf"event=backfill_left_out endpoint=v3_org_sessions org={org} window=(\S+) "
        r"reason=server_error steps=(\S+)",
        ran.stderr,
    )
    assert [(window, stamp(TIMES[0])) for window, _ in left_out] == left_out  # the first step
    [(window, _)] = left_out
    got = samples(output)  # parses strictly
    series = ("devin_sessions_created", (("org", org), ("window", window)))
    assert [t for t in TIMES if (*series, t) in got] == TIMES[1:]
    assert has_journal(output)
    # --resume asks again for that step alone (--explain says how much), and completes the file.
    demo.api.plan.clear()
    resume = (
        *(sys.executable, "-m", "exporter.cli", "backfill", "--config"),
        *(str(tmp_path / "config.yaml"), "--output", str(output), "--resume"),
    )
    explained, out = await backfill(*resume, "--explain")
    assert 0 == explained.status, explained.stderr
    assert f"1 step of 3h, {stamp(TIMES[0])} to {stamp(TIMES[0])}" in out
    before = requests_made(demo)
    resumed, _ = await backfill(*resume)
    assert 0 == resumed.status, resumed.stderr
    assert [t for t in TIMES if (*series, t) in samples(output)] == TIMES
    assert not has_journal(output)
    assert explained_total(out) == requests_made(demo) - before


async def test_an_interrupted_run_leaves_a_valid_file_and_resumes_to_the_same_result(
    demo: Demo, tmp_path: Path
) -> None:
    config = write_config(demo, tmp_path)
    whole = tmp_path / "whole.om"
    assert 0 == (await backfill(*backfill_args(config, whole)))[0].status
    for o in demo.account.orgs:  # slow enough to be interrupted mid-run
        demo.api.plan.set(
            PlanEntry(endpoint="v3_org_sessions", org=o.id, faults=[Fault(delay_seconds=0.3)])
        )
    output = tmp_path / "out.om"
    process = await asyncio.create_subprocess_exec(
        *backfill_args(config, output), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    before = requests_made(demo)
    await wait_until(lambda: requests_made(demo) >= before + 20, within_seconds=60)
    process.send_signal(signal.SIGINT)
    _, err = await process.communicate()
    assert 130 == process.returncode, err.decode()
    partial = samples(output)
    assert has_journal(output)
    assert set(partial.items()) < set(samples(whole).items())
    demo.api.plan.clear()
    resumed, _ = await backfill(
        *(sys.executable, "-m", "exporter.cli", "backfill", "--config", str(config)),
        *("--output", str(output), "--resume"),
    )
    assert 0 == resumed.status, resumed.stderr
    assert samples(whole) == samples(output)
