"""Poll-cycle wall time, start-up time and memory, against a demo API that answers slowly.

Each cell starts a fresh exporter process polling the first N organisations of a demo API
whose every answer is delayed by the API latency, and measures:

- start-up: from spawning the process to `poller.ready` (the first complete snapshot),
  interpreter start, imports and settings included;
- one more cycle, `poller.poll_all()`, run back to back after the first one (the key's
  rate-limit bucket starts empty, as in a steady state where polls run back to back);
  unless the first cycle already took over twice the bound, which then stands for it;
- the process's RSS after the first snapshot, after one scrape as Prometheus makes it
  (OpenMetrics, gzip), after a scrape of every format besides, and its peak;
- a bare client's replay of the same requests (bench/replay.py), the floor of both.

Both are set beside the lower bound of a cycle, per API key (each key has its own rate
limit and cap on requests in flight, `devin.requests_per_second` and
`devin.max_concurrency`): `max(n / rate, n * latency / concurrency)` over the two keys,
where n is N*W requests for the v3 service-user key and (N+1)*W for the v2 enterprise key.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import Child
from bench.scrape import VARIANTS, Variant, exporter_settings, fetch

PROMETHEUS = Variant("openmetrics", True)


@dataclass(frozen=True)
class PollPlan:
    orgs: tuple[int, ...] = (10, 100, 500)
    latencies_seconds: tuple[float, ...] = (0.05, 0.2)
    windows: int = 4
    requests_per_second: float = 100.0
    max_concurrency: int = 16
    # When the first cycle (start() to ready) takes over this many bounds (+5 s), it is
    # reported as the cycle and no second cycle is run: this keeps a slow exporter's run short.
    skip_second_cycle_over: float = 2.0
    # Where a bare httpx client replays the cycle too (for its CPU per request).
    httpx_orgs: tuple[int, ...] = (500,)


def requests_per_key(orgs: int, windows: int) -> dict[str, int]:
    """Requests in one cycle, per key: v3 one per org and window, v2 also the enterprise."""
    return {"v3_service_user_key": orgs * windows, "v2_enterprise_key": (orgs + 1) * windows}


def planned_requests(values: dict[str, Any]) -> int | None:
    """Requests per cycle by the exporter's own plan, where it has one (a cross-check)."""
    try:
        from exporter.polling.plan import request_plan  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    from exporter.config import load_settings

    return sum(p.requests for p in request_plan(load_settings(None, **values)))


def lower_bound_seconds(requests: int, rate: float, latency: float, concurrency: int) -> float:
    return max(requests / rate, requests * latency / concurrency)


def run_cell(
    demo: Child, orgs: int, latency: float, plan: PollPlan, workdir: Path
) -> dict[str, Any]:
    values = exporter_settings(
        demo.hello,
        orgs,
        requests_per_second=plan.requests_per_second,
        max_concurrency=plan.max_concurrency,
    )
    values["windows"] = ["1h", "24h", "7d", "30d"][: plan.windows]
    per_key = requests_per_key(orgs, plan.windows)
    rate, concurrency = plan.requests_per_second, plan.max_concurrency
    bound = max(lower_bound_seconds(n, rate, latency, concurrency) for n in per_key.values())
    total = sum(per_key.values())
    demo.ask({"cmd": "record"})
    with Child("exporter", {"settings": values}, workdir, timeout=900) as exporter:
        hello = exporter.hello
        memory_ready = exporter.memory_kib()
        recorded: list[list[str]] = demo.ask({"cmd": "recorded"})["requests"]
        first = hello["ready_at"] - hello["start_called_at"]
        if first > plan.skip_second_cycle_over * bound + 5:
            # Far off the bound already: a second cycle would add minutes and say nothing new.
            cycle = {"seconds": first, "targets_down": hello["targets_down"], "kind": "first"}
            cycle_cpu = None
        else:
            cpu_before = exporter.cpu_seconds()
            cycle = {**exporter.ask({"cmd": "cycle"}, timeout=900), "kind": "second"}
            cycle_cpu = exporter.cpu_seconds() - cpu_before
        # A scrape as Prometheus makes it (OpenMetrics, gzip), then every other variant.
        fetch(f"{hello['url']}/metrics", PROMETHEUS.headers)
        memory_scraped = exporter.memory_kib()
        for variant in VARIANTS:
            fetch(f"{hello['url']}/metrics", variant.headers)
        memory_after = exporter.memory_kib()
    floors = replay_floors(
        demo.hello["url"], recorded, plan, workdir, httpx=orgs in plan.httpx_orgs
    )
    row = {
        "orgs": orgs,
        "windows": plan.windows,
        "latency_seconds": latency,
        "requests_per_second": rate,
        "max_concurrency": concurrency,
        "requests": per_key,
        "requests_total": total,
        "requests_planned_by_exporter": planned_requests(values),
        "bound_seconds": bound,
        # The same bound if both keys shared one rate limit and one pool of connections.
        "bound_if_limits_shared_seconds": lower_bound_seconds(total, rate, latency, concurrency),
        "startup_seconds": hello["ready_at"] - exporter.spawned_at,
        "start_to_ready_seconds": hello["ready_at"] - hello["start_called_at"],
        "cycle_seconds": cycle["seconds"],
        "cycle_kind": cycle["kind"],
        # The exporter's own CPU time in that cycle: what it spends besides waiting.
        "cycle_cpu_seconds": cycle_cpu,
        # The bound counting whole rounds of C requests: none can start before a slot frees.
        "bound_in_rounds_seconds": max(
            max(n / rate, -(-n // concurrency) * latency) for n in per_key.values()
        ),
        "targets": hello["targets"],
        "targets_down": max(hello["targets_down"], cycle["targets_down"]),
        "rss_kib_ready": memory_ready["VmRSS"],
        "hwm_kib_ready": memory_ready["VmHWM"],
        "rss_kib_after_scrape": memory_scraped["VmRSS"],
        "rss_kib_after_scrapes": memory_after["VmRSS"],
        "hwm_kib": memory_after["VmHWM"],
        "cycle_cpu_per_request_seconds": cycle_cpu / total if cycle_cpu is not None else None,
        **floors,
    }
    print(
        f"poll {orgs:>4} orgs x {plan.windows} windows, {latency * 1000:.0f} ms: "
        f"bound {bound:.2f}s, start-up {row['startup_seconds']:.2f}s, "
        f"cycle {row['cycle_seconds']:.2f}s, down {row['targets_down']}, "
        f"RSS {memory_after['VmRSS'] / 1024:.0f} MiB (peak {memory_after['VmHWM'] / 1024:.0f}); "
        f"bare aiohttp: first {floors['replay_first_from_exec_seconds']:.2f}s from exec, "
        f"cycle {floors['replay_cycle_seconds']:.2f}s; CPU per request: exporter "
        f"{_ms(row['cycle_cpu_per_request_seconds'])}, aiohttp "
        f"{_ms(floors['aiohttp_cpu_per_request_seconds'])}, httpx "
        f"{_ms(floors['httpx_cpu_per_request_seconds'])}",
        file=sys.stderr,
        flush=True,
    )
    return row


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f} ms"


def replay_floors(
    url: str, recorded: list[list[str]], plan: PollPlan, workdir: Path, *, httpx: bool
) -> dict[str, Any]:
    """A bare aiohttp client's replay of the exporter's first cycle, twice in a row (from
    exec of its process to the end of the first; the second alone, as the cycle's floor),
    and with `httpx` one replay by a bare httpx client; CPU per request of each."""
    args = {"url": url, "rate": plan.requests_per_second, "concurrency": plan.max_concurrency}
    with Child("replay", {**args, "client": "aiohttp"}, workdir, timeout=900) as replay:
        first = replay.ask({"cmd": "run", "requests": recorded}, timeout=900)
        second = replay.ask({"cmd": "run", "requests": recorded}, timeout=900)
        spawned_at = replay.spawned_at
    found: dict[str, Any] = {
        "replay_requests": len(recorded),
        "replay_errors": first["errors"] + second["errors"],
        "replay_first_from_exec_seconds": first["ended_at"] - spawned_at,
        "replay_first_seconds": first["seconds"],
        "replay_cycle_seconds": second["seconds"],
        "aiohttp_cpu_per_request_seconds": second["cpu_seconds"] / max(1, len(recorded)),
        "httpx_cpu_per_request_seconds": None,
        "httpx_replay_seconds": None,
    }
    if httpx:
        with Child("replay", {**args, "client": "httpx"}, workdir, timeout=900) as replay:
            ran = replay.ask({"cmd": "run", "requests": recorded}, timeout=900)
        found["httpx_cpu_per_request_seconds"] = ran["cpu_seconds"] / max(1, len(recorded))
        found["httpx_replay_seconds"] = ran["seconds"]
        found["replay_errors"] += ran["errors"]
    return found


def run(plan: PollPlan, workdir: Path) -> list[dict[str, Any]]:
    rows = []
    for latency in plan.latencies_seconds:
        args = {"orgs": max(plan.orgs), "delay_seconds": latency}
        with Child("demo", args, workdir) as demo:
            for orgs in plan.orgs:
                rows.append(run_cell(demo, orgs, latency, plan, workdir))
    return rows
