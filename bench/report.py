"""Turns the figures of a run into issue 6's targets and Markdown tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Issue 6's targets.
FLOOR_RATIO_MAX = 1.5  # /metrics p50 at 10k series, within this of the static floor
STOCK_SPEEDUP_MIN = 10.0  # ... and at least this many times faster than the stock exporter
TARGET_SIZE = "10k"
CYCLE_RATIO_MAX = 1.15  # poll-cycle wall time over its lower bound
RSS_MAX_MB = 80.0  # at 500 orgs (peak RSS)
RSS_ORGS = 500
STARTUP_SLACK_SECONDS = 1.0  # first complete snapshot, over the lower bound of a cycle


@dataclass
class Target:
    name: str
    figure: str
    passed: bool | None  # None: not measured in this run

    @property
    def mark(self) -> str:
        return {True: "pass", False: "**miss**", None: "n/a"}[self.passed]


def mb(kib: int) -> float:
    """KiB from /proc as MB (10^6 bytes), the unit of the memory target."""
    return kib * 1024 / 1e6


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    value = seconds * 1000
    if value >= 1000:
        return f"{seconds:.2f} s"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def _cells(results: dict[str, Any]) -> dict[tuple[str, str, bool, int, str], dict[str, Any]]:
    cells = {}
    for size in results["scrape"]:
        for row in size["cells"]:
            key = (row["size"], row["format"], row["gzip"], row["concurrency"], row["server"])
            cells[key] = row
    return cells


def _p50(row: dict[str, Any] | None) -> float | None:
    if row is None or row["result"] is None:
        return None
    value: float | None = row["result"]["p50_seconds"]
    return value


def scrape_ratios(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per cell: exporter p50 over the static floor's, and stock p50 over the exporter's."""
    cells = _cells(results)
    out = []
    for (size, fmt, gz, conc, server), row in cells.items():
        if server != "exporter":
            continue
        exporter = _p50(row)
        static = _p50(cells.get((size, fmt, gz, conc, "static")))
        stock = _p50(cells.get((size, fmt, gz, conc, "stock")))
        out.append(
            {
                "size": size,
                "format": fmt,
                "gzip": gz,
                "concurrency": conc,
                "over_floor": exporter / static if exporter and static else None,
                "stock_over_exporter": stock / exporter if exporter and stock else None,
            }
        )
    return out


def targets(results: dict[str, Any]) -> list[Target]:
    ratios = [r for r in scrape_ratios(results) if r["size"] == TARGET_SIZE]

    def cell_name(r: dict[str, Any]) -> str:
        return f"{r['format']}{'+gzip' if r['gzip'] else ''}, {r['concurrency']} scraper(s)"

    found: list[Target] = []
    floors = [r for r in ratios if r["over_floor"] is not None]
    if floors:
        worst = max(floors, key=lambda r: r["over_floor"])
        best = min(floors, key=lambda r: r["over_floor"])
        found.append(
            Target(
                f"/metrics p50 at {TARGET_SIZE} series <= {FLOOR_RATIO_MAX}x static floor",
                f"{best['over_floor']:.2f}x to {worst['over_floor']:.2f}x "
                f"(worst: {cell_name(worst)})",
                worst["over_floor"] <= FLOOR_RATIO_MAX,
            )
        )
    else:
        found.append(Target("/metrics p50 vs static floor", "not measured", None))
    speedups = [r for r in ratios if r["stock_over_exporter"] is not None]
    if speedups:
        worst = min(speedups, key=lambda r: r["stock_over_exporter"])
        best = max(speedups, key=lambda r: r["stock_over_exporter"])
        found.append(
            Target(
                f"/metrics p50 at {TARGET_SIZE} series >= {STOCK_SPEEDUP_MIN:.0f}x faster "
                "than stock",
                f"{worst['stock_over_exporter']:.1f}x to {best['stock_over_exporter']:.1f}x "
                f"(worst: {cell_name(worst)})",
                worst["stock_over_exporter"] >= STOCK_SPEEDUP_MIN,
            )
        )
    else:
        found.append(Target("/metrics p50 vs stock", "not measured", None))
    polls = results["poll"]
    if polls:
        worst = max(polls, key=lambda p: p["cycle_seconds"] / p["bound_seconds"])
        ratio = worst["cycle_seconds"] / worst["bound_seconds"]
        found.append(
            Target(
                f"poll cycle <= {CYCLE_RATIO_MAX}x its lower bound",
                f"worst {ratio:.2f}x ({worst['orgs']} orgs, "
                f"{worst['latency_seconds'] * 1000:.0f} ms: {worst['cycle_seconds']:.1f} s "
                f"vs {worst['bound_seconds']:.1f} s)",
                ratio <= CYCLE_RATIO_MAX,
            )
        )
        late = max(polls, key=lambda p: p["startup_seconds"] - p["bound_seconds"])
        over = late["startup_seconds"] - late["bound_seconds"]
        found.append(
            Target(
                f"first complete snapshot <= lower bound + {STARTUP_SLACK_SECONDS:.0f} s",
                f"worst +{over:.2f} s ({late['orgs']} orgs, "
                f"{late['latency_seconds'] * 1000:.0f} ms: {late['startup_seconds']:.1f} s "
                f"vs {late['bound_seconds']:.1f} s)",
                over <= STARTUP_SLACK_SECONDS,
            )
        )
        big = [p for p in polls if p["orgs"] == RSS_ORGS]
        if big:
            peak = max(mb(p["hwm_kib"]) for p in big)
            found.append(
                Target(
                    f"peak RSS at {RSS_ORGS} orgs < {RSS_MAX_MB:.0f} MB",
                    f"{peak:.0f} MB",
                    peak < RSS_MAX_MB,
                )
            )
    return found


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


def scrape_table(results: dict[str, Any]) -> str:
    cells = _cells(results)
    ratios = {
        (r["size"], r["format"], r["gzip"], r["concurrency"]): r for r in scrape_ratios(results)
    }
    header = ["series", "format", "scrapers"]
    for server in ("exporter", "stock", "static"):
        header += [f"{server} p50", "p99", "req/s"]
    header += ["exporter / static", "stock / exporter"]
    rows = []
    for size in results["scrape"]:
        for fmt in ("text", "openmetrics"):
            for gz in (False, True):
                for conc in sorted({c["concurrency"] for c in size["cells"]}):
                    key = (size["label"], fmt, gz, conc)
                    row = [f"{size['series']:,}", fmt + (" gzip" if gz else ""), str(conc)]
                    for server in ("exporter", "stock", "static"):
                        cell = cells.get((*key, server))
                        if cell is None or cell["result"] is None:
                            row += ["skipped" if cell else "-", "", ""]
                            continue
                        result = cell["result"]
                        errors = f" ({result['errors']} err)" if result["errors"] else ""
                        row += [
                            ms(result["p50_seconds"]),
                            ms(result["p99_seconds"]),
                            f"{result['requests_per_second']:,.0f}{errors}",
                        ]
                    ratio = ratios.get(key, {})
                    over, speedup = ratio.get("over_floor"), ratio.get("stock_over_exporter")
                    mark_floor = mark_stock = ""
                    if size["label"] == TARGET_SIZE:
                        if over is not None:
                            mark_floor = " ok" if over <= FLOOR_RATIO_MAX else " MISS"
                        if speedup is not None:
                            mark_stock = " ok" if speedup >= STOCK_SPEEDUP_MIN else " MISS"
                    row += [
                        f"{over:.2f}x{mark_floor}" if over is not None else "-",
                        f"{speedup:.1f}x{mark_stock}" if speedup is not None else "-",
                    ]
                    rows.append(row)
    return _table(header, rows)


def sizes_table(results: dict[str, Any]) -> str:
    header = ["orgs x windows", "series", "text bytes", "text gzip bytes", "OpenMetrics bytes"]
    rows = []
    for size in results["scrape"]:
        gz = next(
            (
                c["result"]["body_bytes"]
                for c in size["cells"]
                if c["server"] == "exporter" and c["gzip"] and c["format"] == "text" and c["result"]
            ),
            None,
        )
        rows.append(
            [
                f"{size['orgs']} x 4",
                f"{size['series']:,}",
                f"{size['body_bytes']['text']:,}",
                f"{gz:,}" if gz else "-",
                f"{size['body_bytes']['openmetrics']:,}",
            ]
        )
    return _table(header, rows)


def poll_table(results: dict[str, Any]) -> str:
    header = [
        "orgs",
        "API latency",
        "requests (v3 + v2)",
        "lower bound",
        "poll cycle",
        "cycle / bound",
        "first snapshot (from exec)",
        "over bound",
        "targets down",
    ]
    rows = []
    for p in results["poll"]:
        ratio = p["cycle_seconds"] / p["bound_seconds"]
        over = p["startup_seconds"] - p["bound_seconds"]
        rows.append(
            [
                str(p["orgs"]),
                f"{p['latency_seconds'] * 1000:.0f} ms",
                f"{p['requests']['v3_service_user_key']} + {p['requests']['v2_enterprise_key']}",
                f"{p['bound_seconds']:.2f} s",
                f"{p['cycle_seconds']:.2f} s"
                + (" (first)" if p.get("cycle_kind") == "first" else ""),
                f"{ratio:.2f}x " + ("ok" if ratio <= CYCLE_RATIO_MAX else "MISS"),
                f"{p['startup_seconds']:.2f} s",
                f"{over:+.2f} s " + ("ok" if over <= STARTUP_SLACK_SECONDS else "MISS"),
                str(p["targets_down"]),
            ]
        )
    return _table(header, rows)


def _plan_mismatch(results: dict[str, Any]) -> list[str]:
    odd = [
        p
        for p in results["poll"]
        if p.get("requests_planned_by_exporter") not in (None, p["requests_total"])
    ]
    if not odd:
        return []
    cells = ", ".join(
        f"{p['orgs']} orgs: {p['requests_planned_by_exporter']} planned, "
        f"{p['requests_total']} assumed"
        for p in odd
    )
    return [f"**The exporter's own request plan differs from the bound's count** ({cells}).", ""]


def memory_table(results: dict[str, Any]) -> str:
    header = [
        "exporter process",
        "series",
        "RSS after first snapshot",
        "peak until then",
        "RSS after scrapes",
        "peak RSS",
    ]
    rows = [
        [
            "imports only, nothing running",
            "",
            f"{mb(results['memory_imports_kib']):.0f} MB",
            "",
            "",
            "",
        ]
    ]
    for size in results["scrape"]:
        rows.append(
            [
                f"{size['orgs']} orgs, scrape bench (c=32 scrapes)",
                f"{size['series']:,}",
                f"{mb(size['exporter_rss_kib_ready']):.0f} MB",
                f"{mb(size['exporter_hwm_kib_ready']):.0f} MB",
                f"{mb(size['exporter_rss_kib_after']):.0f} MB",
                f"{mb(size['exporter_hwm_kib']):.0f} MB",
            ]
        )
    for p in results["poll"]:
        rows.append(
            [
                f"{p['orgs']} orgs, poll bench at {p['latency_seconds'] * 1000:.0f} ms (4 scrapes)",
                "",
                f"{mb(p['rss_kib_ready']):.0f} MB",
                f"{mb(p['hwm_kib_ready']):.0f} MB",
                f"{mb(p['rss_kib_after_scrapes']):.0f} MB",
                f"{mb(p['hwm_kib']):.0f} MB",
            ]
        )
    return _table(header, rows)


def targets_table(results: dict[str, Any]) -> str:
    rows = [[t.name, t.figure, t.mark] for t in targets(results)]
    return _table(["issue 6 target", "this run", ""], rows)


def markdown(results: dict[str, Any]) -> str:
    """The whole report: what `python -m bench` prints and writes to bench/results.md."""
    m = results["machine"]
    poll = results["poll_settings"]
    parts = [
        f"Run of {results['started']} on {m['nproc']} x {m['cpu']}, {m['memory_gb']:.0f} GB, "
        f"Python {m['python']}, exporter {m['exporter_version']} at {m['commit']}; "
        f"load generator: {results['generator']}; {results['duration_seconds']:.0f} s in all.",
        ""
        if results.get("commit_at_end", m["commit"]) == m["commit"]
        else f"**The exporter's code changed during this run (now {results['commit_at_end']}): "
        "run it again.**",
        "",
        "### Targets",
        "",
        targets_table(results),
        "",
        "### Scrapes of /metrics",
        "",
        f"Each cell: {results['scrape_plan']['duration_seconds']:.0f} s (longer when one round "
        "of concurrent scrapes is slower), scrapers on kept-alive connections (the stock "
        "server closes each one), p50/p99 latency of a whole response, req/s = responses per "
        "second. `exporter / static` is the exporter's p50 over the floor's; "
        "`stock / exporter` is how many times faster than stock the exporter is; the marks "
        f"apply at {TARGET_SIZE} series. A skipped cell would take more than "
        f"{results['scrape_plan']['max_round_seconds']:.0f} s for one round of its scrapers.",
        "",
        scrape_table(results),
        "",
        sizes_table(results),
        "",
        "### Poll cycle and start-up",
        "",
        f"`devin.requests_per_second` = {poll['requests_per_second']:g} and "
        f"`devin.max_concurrency` = {poll['max_concurrency']} (each per API key), "
        f"{poll['windows']} windows, the enterprise key set (v2 polled too). Lower bound = "
        "max over the two keys of max(n / rate, n x latency / concurrency). Poll cycle = one "
        "`poll_all()` right after the first, or the first cycle (start() to ready) when that "
        "took over twice the bound; first snapshot = from exec of the process to "
        "`poller.ready`.",
        "",
        poll_table(results),
        "",
        *_plan_mismatch(results),
        "### Memory",
        "",
        memory_table(results),
        "",
    ]
    return "\n".join(parts)
