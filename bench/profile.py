"""Where the exporter's CPU goes per Devin request: `python -m bench.profile`.

A demo API in a process of its own answers after `--latency`; this process builds the
exporter as `exporter.main` does, runs one poll cycle to warm up (connections, caches),
then one more under cProfile, and prints the CPU per request (process time over the
cycle's requests, without the profiler) and the profiled self time grouped by layer:
the HTTP pool and client, retries, gates, admission, parsing, instruments, logging, the
event loop. Functions are timed in CPU time (waiting in epoll costs nothing). cProfile
slows everything it sees by about the same factor, so the shares are what to read, not
the profiled milliseconds.

    python -m bench.profile --orgs 100 --latency 0.05
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procs import Child
from bench.scrape import exporter_settings

# Layer of a function, by the first fragment of its file path (or name) that matches.
LAYERS: tuple[tuple[str, str], ...] = (
    ("httpcore/_async/connection_pool", "httpcore pool"),
    ("httpcore/_async/connection.py", "httpcore pool"),
    ("httpcore/_synchronization", "httpcore pool"),
    ("httpcore/", "httpcore connection (h11)"),
    ("h11/", "httpcore connection (h11)"),
    ("anyio/", "anyio (httpcore's sockets)"),
    ("sniffio/", "anyio (httpcore's sockets)"),
    ("httpx/", "httpx client"),
    ("exporter/devin/transport", "aiohttp transport"),
    ("aiohttp/", "aiohttp client"),
    ("yarl/", "aiohttp client"),
    ("multidict/", "aiohttp client"),
    ("aiolimiter/", "gates (rate, slots)"),
    ("exporter/devin/ratelimit", "gates (rate, slots)"),
    ("exporter/polling/admission", "admission"),
    ("pydantic", "parsing (pydantic)"),
    ("exporter/devin/redact", "parsing: redaction"),
    ("exporter/devin/client", "client (request, retries, body)"),
    ("exporter/devin/retries", "client (request, retries, body)"),
    ("exporter/devin/body", "client (request, retries, body)"),
    ("exporter/devin/errors", "client (request, retries, body)"),
    ("exporter/devin/table", "client (request, retries, body)"),
    ("zlib", "client (request, retries, body)"),
    ("prometheus_client/", "instruments"),
    ("exporter/metrics/instruments", "instruments"),
    ("structlog/", "logging"),
    ("logging/", "logging"),
    ("exporter/polling/", "poller, strategies"),
    ("exporter/windows", "poller, strategies"),
    ("hashlib", "gates (rate, slots)"),
    ("asyncio/", "event loop (asyncio)"),
    ("selectors", "event loop (asyncio)"),
    ("socket", "event loop (asyncio)"),
    ("contextlib", "contextlib (any layer)"),
)


def layer_of(filename: str, name: str) -> str:
    where = f"{filename}:{name}"
    for fragment, layer in LAYERS:
        if fragment in where:
            return layer
    if filename == "~":  # a builtin: named like <method 'x' of 'y' objects>
        if "select" in name or "epoll" in name or "socket" in name:
            return "event loop (asyncio)"
        if "sha256" in name or "hexdigest" in name:
            return "gates (rate, slots)"
        return "builtins (any layer)"
    return "other"


def by_layer(stats: pstats.Stats) -> dict[str, float]:
    """Profiled self time (tottime) per layer, in seconds."""
    layers: dict[str, float] = {}
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, name), (_, _, tottime, _, _) in table.items():
        layer = layer_of(filename, name)
        layers[layer] = layers.get(layer, 0.0) + tottime
    return layers


async def cycle(values: dict[str, Any], profile: bool) -> tuple[int, float, pstats.Stats | None]:
    """Requests, CPU seconds of one measured cycle, and its profile (if asked)."""
    from exporter import main
    from exporter.config import load_settings
    from exporter.logs import configure_logging

    configure_logging("error", "logfmt")
    settings = load_settings(None, **values)
    async with main.http_client(settings) as http:
        runtime = main.build(settings, http)
        counted = runtime.instruments.api_requests
        try:
            await runtime.poller.poll_all()  # warm-up: connections, caches, the bucket
            before = sum(s.value for m in counted.collect() for s in m.samples)
            # CPU time, not wall time: the event loop's waits in epoll are not the exporter's cost.
            profiler = cProfile.Profile(time.process_time) if profile else None
            cpu = time.process_time()
            if profiler is not None:
                profiler.enable()
            await runtime.poller.poll_all()
            if profiler is not None:
                profiler.disable()
            cpu = time.process_time() - cpu
            after = sum(s.value for m in counted.collect() for s in m.samples)
        finally:
            await runtime.close()
    return int(after - before), cpu, pstats.Stats(profiler) if profiler else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05, help="API latency, seconds")
    parser.add_argument("--top", type=int, default=25, help="functions listed by self time")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="devin-profile-") as tmp,
        Child("demo", {"orgs": args.orgs, "delay_seconds": args.latency}, Path(tmp)) as demo,
    ):
        values = exporter_settings(
            demo.hello, args.orgs, requests_per_second=100.0, max_concurrency=16
        )
        requests, cpu, _ = asyncio.run(cycle(values, profile=False))
        _, profiled_cpu, stats = asyncio.run(cycle(values, profile=True))
    assert stats is not None
    print(
        f"{args.orgs} orgs x 4 windows, {args.latency * 1000:.0f} ms: {requests} requests, "
        f"CPU {cpu:.3f} s = {cpu / requests * 1000:.2f} ms per request "
        f"(under cProfile {profiled_cpu / requests * 1000:.2f} ms)"
    )
    layers = by_layer(stats)
    total = sum(layers.values())
    print(f"\n{'layer':<32} {'share':>6} {'ms/request (unprofiled)':>24}")
    for layer, seconds in sorted(layers.items(), key=lambda kv: -kv[1]):
        share = seconds / total
        print(f"{layer:<32} {share:>6.1%} {share * cpu / requests * 1000:>24.3f}")
    print()
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
