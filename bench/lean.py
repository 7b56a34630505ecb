"""The leanness cells: the dependencies' memory floor, every endpoint group at 500
organisations, the idle CPU between polls, and restarts with and without `state.path`.

- deps floor: the RSS of a process that has imported the exporter's dependencies and
  nothing else (`bench.child.DEPENDENCIES`), the floor under any exporter built on them;
- every group: a fresh exporter polling every endpoint group of N organisations whose
  every answer (every endpoint, not only the seed ones) is delayed by the API latency;
  from exec to its first complete snapshot, beside the lower bound of a cycle computed
  from the exporter's own targets, per key;
- idle CPU: the CPU time an exporter of N organisations burns in a stretch between polls
  (after its first snapshot, nobody scraping), over the wall time;
- restart: an exporter with `state.path` polls N organisations, stops (saving its
  snapshot), and the demo API then delays every answer by a long latency; from exec of
  a second exporter to the moment its /metrics, scraped as Prometheus does (OpenMetrics,
  gzip), holds every value of the first one, with the state file, and again without it
  (which must wait for a whole first cycle).
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.poll import lower_bound_seconds
from bench.procs import ROOT, Child
from bench.scrape import Variant, exporter_settings, fetch

# A scrape as Prometheus makes it: what a restart must show the old values to.
PROMETHEUS = Variant("openmetrics", True).headers


def _scrape(url: str) -> bytes:
    body, headers = fetch(f"{url}/metrics", PROMETHEUS)
    return gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body


@dataclass(frozen=True)
class LeanPlan:
    every_group_orgs: int = 500
    every_group_latency_seconds: float = 0.2
    idle_orgs: int = 10
    idle_seconds: float = 20.0
    restart_orgs: int = 20
    restart_latency_seconds: float = 2.0
    windows: int = 4
    requests_per_second: float = 100.0
    max_concurrency: int = 16


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def imports(workdir: Path) -> dict[str, Any]:
    """RSS and import time of the dependencies alone, and of the exporter's modules."""
    with Child("deps", {}, workdir) as deps:
        found = {
            "deps_floor_kib": deps.memory_kib()["VmRSS"],
            "deps_import_seconds": deps.hello["import_seconds"],
        }
    with Child("imports", {}, workdir) as exporter:
        found["exporter_import_seconds"] = exporter.hello["import_seconds"]
    return found


def import_breakdown(runs: int = 3) -> list[dict[str, Any]]:
    """Import time of the exporter by top-level package (the exporter's own modules each
    apart), from `python -X importtime`: the least self time of each module over `runs`
    fresh interpreters, summed per package, largest first."""
    least: dict[str, int] = {}
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import exporter.main, exporter.cli"],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, _, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
            least[name] = min(least.get(name, 1 << 62), int(own))
    by_package: Counter[str] = Counter()
    for name, microseconds in least.items():
        package = name if name.startswith("exporter.") else name.split(".")[0]
        by_package[package] += microseconds
    return [{"package": p, "seconds": us / 1e6} for p, us in by_package.most_common()]


def _settings(demo: dict[str, Any], orgs: int, plan: LeanPlan) -> dict[str, Any]:
    values = exporter_settings(
        demo,
        orgs,
        requests_per_second=plan.requests_per_second,
        max_concurrency=plan.max_concurrency,
    )
    values["windows"] = ["1h", "24h", "7d", "30d"][: plan.windows]
    return values


def requests_by_key(values: dict[str, Any]) -> list[int]:
    """Requests of one cycle per API key, by the exporter's own targets and strategies."""
    from exporter.config import load_settings
    from exporter.devin.ratelimit import key_digest
    from exporter.polling.plan import build_targets
    from exporter.polling.strategies import strategy_of

    settings = load_settings(None, **values)
    counts: Counter[str] = Counter()
    for target in build_targets(settings):
        strategy = strategy_of(target.row)
        counts[key_digest(target.key)] += strategy.requests_per_poll(settings.windows)
    return list(counts.values())


def every_group(plan: LeanPlan, workdir: Path) -> dict[str, Any]:
    """From exec to the first complete snapshot with every endpoint group polled."""
    orgs, latency = plan.every_group_orgs, plan.every_group_latency_seconds
    args = {"orgs": orgs, "delay_seconds": latency, "every_endpoint": True}
    with Child("demo", args, workdir) as demo:
        from exporter.config import EndpointsSettings

        values = _settings(demo.hello, orgs, plan)
        values["endpoints"] = {g: {"enabled": True} for g in EndpointsSettings.model_fields}
        values["devin"]["enterprise_service_user_key"] = demo.hello["enterprise_service_user_key"]
        per_key = requests_by_key(values)
        rate, concurrency = plan.requests_per_second, plan.max_concurrency
        bound = max(lower_bound_seconds(n, rate, latency, concurrency) for n in per_key)
        with Child("exporter", {"settings": values}, workdir, timeout=1800) as exporter:
            hello = exporter.hello
            startup = hello["ready_at"] - exporter.spawned_at
            memory = exporter.memory_kib()
    _progress(
        f"every group: {orgs} orgs x {plan.windows} windows, {latency * 1000:.0f} ms: "
        f"{sum(per_key)} requests, bound {bound:.1f}s, first snapshot {startup:.1f}s, "
        f"RSS {memory['VmRSS'] / 1024:.0f} MiB"
    )
    return {
        "orgs": orgs,
        "latency_seconds": latency,
        "requests_by_key": per_key,
        "bound_seconds": bound,
        "startup_seconds": startup,
        "targets": hello["targets"],
        "targets_down": hello["targets_down"],
        "rss_kib_ready": memory["VmRSS"],
        "hwm_kib": memory["VmHWM"],
    }


def idle_cpu(plan: LeanPlan, workdir: Path) -> dict[str, Any]:
    """CPU share of one core an exporter uses between polls, nobody scraping."""
    with Child("demo", {"orgs": plan.idle_orgs}, workdir) as demo:
        values = _settings(demo.hello, plan.idle_orgs, plan)
        with Child("exporter", {"settings": values}, workdir) as exporter:
            exporter.wait_idle()
            cpu_before, started = exporter.cpu_seconds(), time.monotonic()
            time.sleep(plan.idle_seconds)
            cpu = exporter.cpu_seconds() - cpu_before
            wall = time.monotonic() - started
    share = cpu / wall
    _progress(f"idle: {plan.idle_orgs} orgs, {cpu:.3f} s of CPU in {wall:.1f} s ({share:.3%})")
    return {"orgs": plan.idle_orgs, "cpu_seconds": cpu, "wall_seconds": wall, "share": share}


def _values_of(body: bytes) -> dict[str, str]:
    """The polled session series, by name and labels: what a restart must bring back."""
    series = (line.rpartition(" ") for line in body.decode().splitlines())
    return {name: value for name, _, value in series if name.startswith("devin_sessions_")}


def _until_complete(
    url: str, expected: dict[str, str], spawned_at: float, limit: float
) -> tuple[float, bool]:
    """Seconds from exec until /metrics has every expected series (inf past `limit`), and
    whether each then had its expected value (the demo's own values move with time)."""
    while time.time() - spawned_at < limit:
        served = _values_of(_scrape(url))
        if expected.keys() <= served.keys():
            same = all(served[name] == value for name, value in expected.items())
            return time.time() - spawned_at, same
        time.sleep(0.01)
    return float("inf"), False


def restart(plan: LeanPlan, workdir: Path) -> dict[str, Any]:
    """From exec to the previous run's values on /metrics, with and without state.path."""
    orgs, latency = plan.restart_orgs, plan.restart_latency_seconds
    state = workdir / "state" / "state.json"
    state.parent.mkdir(exist_ok=True)
    with Child("demo", {"orgs": orgs}, workdir) as demo:
        values = _settings(demo.hello, orgs, plan)
        warm = {**values, "state": {"path": str(state)}}
        with Child("exporter", {"settings": warm}, workdir) as first:
            expected = _values_of(_scrape(first.hello["url"]))
        demo.ask({"cmd": "delay", "seconds": latency})
        limit = 120.0
        seconds, same = {}, {}
        for kind, settings in (("warm", warm), ("cold", values)):
            args = {"settings": settings, "hello": "started"}
            with Child("exporter", args, workdir) as exporter:
                url = exporter.hello["url"]
                seconds[kind], same[kind] = _until_complete(
                    url, expected, exporter.spawned_at, limit
                )
    _progress(
        f"restart: {orgs} orgs, {latency:.1f} s API latency: complete /metrics "
        f"{seconds['warm']:.2f}s after exec with state.path, {seconds['cold']:.2f}s without"
    )
    return {
        "orgs": orgs,
        "latency_seconds": latency,
        "series_checked": len(expected),
        "warm_seconds": seconds["warm"],
        "warm_values_kept": same["warm"],
        "cold_seconds": seconds["cold"],
    }


def run(plan: LeanPlan, workdir: Path, *, every_groups: bool = False) -> dict[str, Any]:
    """The leanness cells; the every-group cell (three minutes at 500 organisations) only
    when asked."""
    return {
        **imports(workdir),
        "import_breakdown": import_breakdown(),
        "idle": idle_cpu(plan, workdir),
        "restart": restart(plan, workdir),
        "every_group": every_group(plan, workdir) if every_groups else None,
    }
