"""Scrape latency and throughput of /metrics: the exporter, a stock exporter, a static floor.

For each size, one exporter process polls the demo API once (no API latency), then its
exposition is copied into the two baselines so that all three serve the same series:

- `stock`: prometheus-client's `start_http_server` over a fresh registry with one Gauge
  child per series, rendering on every scrape (the common way exporters are written);
- `static`: aiohttp returning the same bytes prebuilt, gzipped once (nothing can be faster
  over HTTP in Python; this is the floor).
"""

from __future__ import annotations

import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.loadgen import Cell, CellResult, run_wrk
from bench.procs import Child

OPENMETRICS_ACCEPT = "application/openmetrics-text; version=1.0.0"
TEXT_ACCEPT = "text/plain; version=0.0.4"
SERVERS = ("exporter", "stock", "static")
FORMATS = ("text", "openmetrics")


@dataclass(frozen=True)
class Size:
    label: str
    orgs: int


@dataclass(frozen=True)
class Variant:
    format: str
    gzip: bool

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Accept": OPENMETRICS_ACCEPT if self.format == "openmetrics" else TEXT_ACCEPT,
            "Accept-Encoding": "gzip" if self.gzip else "identity",
        }

    @property
    def label(self) -> str:
        return f"{self.format}{'+gzip' if self.gzip else ''}"


VARIANTS = tuple(Variant(f, g) for f in FORMATS for g in (False, True))


@dataclass
class Plan:
    """How long each cell runs, and when a cell is too slow to run at all."""

    duration_seconds: float = 2.0
    concurrencies: tuple[int, ...] = (1, 32)
    # A cell whose one round of concurrent scrapes would take longer than this is skipped.
    max_round_seconds: float = 6.0


def fetch(url: str, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """One request as a scraper makes it; the body as sent (still gzipped if it was)."""
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback http only)
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
        return response.read(), {k.lower(): v for k, v in response.headers.items()}


def count_series(exposition: bytes) -> int:
    return sum(
        1 for line in exposition.decode().splitlines() if line.strip() and not line.startswith("#")
    )


# What issue 6 sizes the exporter by: v3 org sessions and v2 enterprise sessions.
BENCH_GROUPS = ("sessions", "enterprise_sessions")


def _only_session_groups() -> dict[str, Any]:
    """Settings values that turn off every endpoint group but the sessions ones, if any."""
    from exporter.config import Settings

    field = Settings.model_fields.get("endpoints")
    groups = getattr(field.annotation, "model_fields", {}) if field is not None else {}
    off = {g: {"enabled": False} for g in groups if g not in BENCH_GROUPS}
    return {"endpoints": off} if off else {}


def exporter_settings(demo: dict[str, Any], orgs: int, **devin: Any) -> dict[str, Any]:
    """Settings values for an exporter polling the first `orgs` organisations of a demo API.

    Only the sessions endpoints are polled (v3 per org, v2 per org and enterprise-wide), so
    that series and requests stay comparable from run to run as endpoints are added.
    """
    return {
        **_only_session_groups(),
        "devin": {
            "base_url": demo["url"],
            "service_user_key": demo["service_user_key"],
            "enterprise_key": demo["enterprise_key"],
            "timeout": "30s",
            **devin,
        },
        "organizations": demo["orgs"][:orgs],
        "poll_interval": "1h",  # no poll during the measurements: the snapshot stays put
        "web": {"listen_address": "127.0.0.1:0"},
    }


class CellRunner:
    """Runs cells with wrk, or with the Python load generator in its own process."""

    def __init__(self, generator: str, loadgen: Child | None) -> None:
        self.generator = generator
        self._loadgen = loadgen

    def run(self, cell: Cell, body_bytes: int) -> CellResult:
        if self.generator == "wrk":
            return run_wrk(cell, body_bytes)
        assert self._loadgen is not None
        answer = self._loadgen.ask({"cmd": "cell", "cell": cell.__dict__})
        result = CellResult(**answer)
        result.body_bytes = body_bytes
        return result


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_size(
    size: Size,
    demo: dict[str, Any],
    plan: Plan,
    runner: CellRunner,
    workdir: Path,
) -> dict[str, Any]:
    """Every server x variant x concurrency at one size; the exporter's memory after it."""
    values = exporter_settings(demo, size.orgs, requests_per_second=1000, max_concurrency=32)
    rows: list[dict[str, Any]] = []
    with Child("exporter", {"settings": values}, workdir) as exporter:
        base = exporter.hello["url"]
        text, _ = fetch(f"{base}/metrics", Variant("text", False).headers)
        openmetrics, _ = fetch(f"{base}/metrics", Variant("openmetrics", False).headers)
        series = count_series(text)
        text_path = workdir / f"{size.label}.prom"
        om_path = workdir / f"{size.label}.om"
        text_path.write_bytes(text)
        om_path.write_bytes(openmetrics)
        memory_ready = exporter.memory_kib()
        with (
            Child("stock", {"exposition": str(text_path)}, workdir) as stock,
            Child("static", {"text": str(text_path), "openmetrics": str(om_path)}, workdir) as st,
        ):
            if stock.hello["series"] != series:
                raise RuntimeError(f"stock serves {stock.hello['series']} series, not {series}")
            servers = {"exporter": exporter, "stock": stock, "static": st}
            _progress(f"scrape {size.label}: {size.orgs} orgs, {series} series")
            for variant in VARIANTS:
                for name, child in servers.items():
                    rows += _run_server(name, child, variant, size, series, plan, runner)
        memory_after = exporter.memory_kib()
    return {
        "label": size.label,
        "orgs": size.orgs,
        "series": series,
        "body_bytes": {v.label: len(text if v.format == "text" else openmetrics) for v in VARIANTS},
        "exporter_rss_kib_ready": memory_ready["VmRSS"],
        "exporter_hwm_kib_ready": memory_ready["VmHWM"],
        "exporter_rss_kib_after": memory_after["VmRSS"],
        "exporter_hwm_kib": memory_after["VmHWM"],
        "cells": rows,
    }


def _run_server(
    name: str,
    child: Child,
    variant: Variant,
    size: Size,
    series: int,
    plan: Plan,
    runner: CellRunner,
) -> list[dict[str, Any]]:
    url = f"{child.hello['url']}/metrics"
    body, headers = fetch(url, variant.headers)  # also warms the server up
    encoding = headers.get("content-encoding", "identity")
    if variant.gzip != (encoding == "gzip"):
        raise RuntimeError(f"{name} answered {variant.label} with Content-Encoding {encoding}")
    if variant.format == "openmetrics" and "openmetrics" not in headers.get("content-type", ""):
        raise RuntimeError(f"{name} did not answer OpenMetrics: {headers.get('content-type')}")
    rows = []
    single: CellResult | None = None
    for concurrency in plan.concurrencies:
        row: dict[str, Any] = {
            "size": size.label,
            "series": series,
            "server": name,
            "format": variant.format,
            "gzip": variant.gzip,
            "concurrency": concurrency,
            "result": None,
            "skipped": None,
        }
        duration = plan.duration_seconds
        if single is not None and single.p50_seconds is not None and concurrency > 1:
            round_seconds = single.p50_seconds * concurrency
            if round_seconds > plan.max_round_seconds:
                row["skipped"] = f"one round of {concurrency} scrapes takes ~{round_seconds:.0f}s"
                rows.append(row)
                _progress(f"  {name:8} {variant.label:17} c={concurrency:<2} skipped")
                continue
            duration = max(duration, 1.5 * round_seconds)
        cell = Cell(url, variant.headers, concurrency, duration)
        result = runner.run(cell, len(body))
        child.wait_idle()
        if concurrency == 1:
            single = result
        row["result"] = result.to_json()
        rows.append(row)
        _progress(
            f"  {name:8} {variant.label:17} c={concurrency:<2} "
            f"p50={_ms(result.p50_seconds)} p99={_ms(result.p99_seconds)} "
            f"{result.requests_per_second:.0f}/s errors={result.errors}"
        )
    return rows


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f}ms"
