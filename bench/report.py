"""Turns the figures of a run into the targets (issues 6 and 14) and Markdown tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The targets of issues 6 and 14.
FLOOR_RATIO_MAX = 1.5  # /metrics p50 within this of the static floor ...
FLOOR_SIZES = ("10k", "100k")  # ... at these sizes
STOCK_SPEEDUP_MIN = 10.0  # and at least this many times faster than the stock exporter
TARGET_SIZE = "10k"
CYCLE_RATIO_MAX = 1.15  # poll-cycle wall time over its lower bound
RSS_MAX_MB = 80.0  # RSS after scrapes at 100 and 500 orgs (seed endpoints, 4 windows)
RSS_ORGS = (100, 500)
RSS_SMALL_ORGS = 10  # ... and at 10 orgs, within this of the dependencies' import floor:
RSS_OVER_DEPS_MAX = 1.10
STARTUP_RATIO_MAX = 1.15  # first complete snapshot <= this x its lower bound + slack
STARTUP_SLACK_SECONDS = 1.0
IDLE_CPU_MAX = 0.005  # of one core, between polls
RESTART_MAX_SECONDS = 1.0  # exec to the previous values on /metrics, with state.path


@dataclass
class Target:
    name: str
    figure: str
    passed: bool | None  # None: not measured in this run
    ratio: float | None = None  # the figure over its bound: at most 1 passes

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
    """Every target with its figure and its ratio to the bound, measured in this run."""
    found = _scrape_targets(results)
    found += _poll_targets(results)
    found += _memory_targets(results)
    found += _lean_targets(results)
    return found


def _cell_name(r: dict[str, Any]) -> str:
    return f"{r['format']}{'+gzip' if r['gzip'] else ''}, {r['concurrency']} scraper(s)"


def _scrape_targets(results: dict[str, Any]) -> list[Target]:
    found: list[Target] = []
    all_ratios = scrape_ratios(results)
    for size in FLOOR_SIZES:
        floors = [r for r in all_ratios if r["size"] == size and r["over_floor"] is not None]
        name = f"/metrics p50 at {size} series <= {FLOOR_RATIO_MAX}x static floor"
        if not floors:
            found.append(Target(name, "not measured", None))
            continue
        worst = max(floors, key=lambda r: r["over_floor"])
        best = min(floors, key=lambda r: r["over_floor"])
        ratio = worst["over_floor"] / FLOOR_RATIO_MAX
        found.append(
            Target(
                name,
                f"{best['over_floor']:.2f}x to {worst['over_floor']:.2f}x "
                f"(worst: {_cell_name(worst)})",
                ratio <= 1.0,
                ratio,
            )
        )
    speedups = [
        r for r in all_ratios if r["size"] == TARGET_SIZE and r["stock_over_exporter"] is not None
    ]
    name = f"/metrics p50 at {TARGET_SIZE} series >= {STOCK_SPEEDUP_MIN:.0f}x faster than stock"
    if speedups:
        worst = min(speedups, key=lambda r: r["stock_over_exporter"])
        best = max(speedups, key=lambda r: r["stock_over_exporter"])
        ratio = STOCK_SPEEDUP_MIN / worst["stock_over_exporter"]
        found.append(
            Target(
                name,
                f"{worst['stock_over_exporter']:.1f}x to {best['stock_over_exporter']:.1f}x "
                f"(worst: {_cell_name(worst)})",
                ratio <= 1.0,
                ratio,
            )
        )
    else:
        found.append(Target(name, "not measured", None))
    return found


def _startup_bound(bound: float) -> float:
    return STARTUP_RATIO_MAX * bound + STARTUP_SLACK_SECONDS


def _poll_targets(results: dict[str, Any]) -> list[Target]:
    polls = results["poll"]
    if not polls:
        return [Target("poll cycle and first snapshot", "not measured", None)]
    found = []
    for orgs in sorted({p["orgs"] for p in polls}):
        cells = [p for p in polls if p["orgs"] == orgs]
        worst = max(cells, key=lambda p: p["cycle_seconds"] / p["bound_seconds"])
        ratio = worst["cycle_seconds"] / worst["bound_seconds"] / CYCLE_RATIO_MAX
        found.append(
            Target(
                f"poll cycle <= {CYCLE_RATIO_MAX}x its lower bound, {orgs} orgs",
                f"worst {worst['cycle_seconds'] / worst['bound_seconds']:.2f}x "
                f"({worst['latency_seconds'] * 1000:.0f} ms: {worst['cycle_seconds']:.2f} s "
                f"vs {worst['bound_seconds']:.2f} s)",
                ratio <= 1.0,
                ratio,
            )
        )
    starts = [
        (f"{p['orgs']} orgs, {p['latency_seconds'] * 1000:.0f} ms", p)
        for p in [*polls, *([results["lean"]["every_group"]] if results.get("lean") else [])]
    ]
    label, late = max(
        starts, key=lambda s: s[1]["startup_seconds"] / _startup_bound(s[1]["bound_seconds"])
    )
    if late is results.get("lean", {}).get("every_group"):
        label += ", every group"
    ratio = late["startup_seconds"] / _startup_bound(late["bound_seconds"])
    found.append(
        Target(
            f"first complete snapshot <= {STARTUP_RATIO_MAX}x lower bound "
            f"+ {STARTUP_SLACK_SECONDS:.0f} s",
            f"worst {late['startup_seconds']:.1f} s vs {_startup_bound(late['bound_seconds']):.1f}"
            f" s ({label})",
            ratio <= 1.0,
            ratio,
        )
    )
    return found


def _rss_after(results: dict[str, Any], orgs: int) -> float | None:
    cells = [p for p in results["poll"] if p["orgs"] == orgs]
    return max(mb(p["rss_kib_after_scrapes"]) for p in cells) if cells else None


def _memory_targets(results: dict[str, Any]) -> list[Target]:
    found = []
    for orgs in RSS_ORGS:
        rss = _rss_after(results, orgs)
        name = f"RSS at {orgs} orgs (seed endpoints, 4 windows) < {RSS_MAX_MB:.0f} MB"
        if rss is None:
            found.append(Target(name, "not measured", None))
            continue
        found.append(Target(name, f"{rss:.1f} MB", rss < RSS_MAX_MB, rss / RSS_MAX_MB))
    rss = _rss_after(results, RSS_SMALL_ORGS)
    deps = results.get("lean", {}).get("deps_floor_kib")
    name = f"RSS at {RSS_SMALL_ORGS} orgs <= {RSS_OVER_DEPS_MAX:.2f}x the dependencies' import"
    if rss is None or deps is None:
        found.append(Target(name, "not measured", None))
    else:
        bound = RSS_OVER_DEPS_MAX * mb(deps)
        found.append(
            Target(
                name,
                f"{rss:.1f} MB vs {bound:.1f} MB ({mb(deps):.1f} MB imported)",
                rss <= bound,
                rss / bound,
            )
        )
    return found


def _lean_targets(results: dict[str, Any]) -> list[Target]:
    lean = results.get("lean")
    if not lean:
        return [Target("idle CPU, warm restart", "not measured", None)]
    idle = lean["idle"]
    restart = lean["restart"]
    return [
        Target(
            f"idle CPU between polls at {idle['orgs']} orgs < {IDLE_CPU_MAX:.1%} of a core",
            f"{idle['share']:.3%} ({idle['cpu_seconds']:.2f} s in {idle['wall_seconds']:.0f} s)",
            idle["share"] < IDLE_CPU_MAX,
            idle["share"] / IDLE_CPU_MAX,
        ),
        Target(
            f"restart with state.path: previous values on /metrics <= "
            f"{RESTART_MAX_SECONDS:.0f} s from exec",
            f"{restart['warm_seconds']:.2f} s at {restart['latency_seconds']:.0f} s API latency "
            f"(without: {restart['cold_seconds']:.1f} s; importing the exporter alone: "
            f"{lean['exporter_import_seconds']:.2f} s)",
            restart["warm_seconds"] <= RESTART_MAX_SECONDS and restart["warm_values_kept"],
            restart["warm_seconds"] / RESTART_MAX_SECONDS,
        ),
    ]


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
        "bound in whole rounds",
        "exporter CPU per request",
    ]
    rows = []
    for p in results["poll"]:
        ratio = p["cycle_seconds"] / p["bound_seconds"]
        over = p["startup_seconds"] - p["bound_seconds"]
        startup_ok = p["startup_seconds"] <= _startup_bound(p["bound_seconds"])
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
                f"{over:+.2f} s " + ("ok" if startup_ok else "MISS"),
                str(p["targets_down"]),
                f"{p['bound_in_rounds_seconds']:.2f} s" if "bound_in_rounds_seconds" in p else "-",
                f"{p['cycle_cpu_seconds'] / p['requests_total'] * 1000:.2f} ms"
                if p.get("cycle_cpu_seconds") is not None
                else "-",
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
    rows = []
    lean = results.get("lean")
    if lean:
        deps = f"{mb(lean['deps_floor_kib']):.1f} MB"
        rows.append(["the dependencies imported, nothing else", "", deps, "", "", ""])
    rows.append(
        [
            "imports only, nothing running",
            "",
            f"{mb(results['memory_imports_kib']):.1f} MB",
            "",
            "",
            "",
        ]
    )
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
                f"{mb(p['rss_kib_ready']):.1f} MB",
                f"{mb(p['hwm_kib_ready']):.1f} MB",
                f"{mb(p['rss_kib_after_scrapes']):.1f} MB",
                f"{mb(p['hwm_kib']):.1f} MB",
            ]
        )
    if lean:
        every = lean["every_group"]
        rows.append(
            [
                f"{every['orgs']} orgs, every endpoint group, "
                f"{every['latency_seconds'] * 1000:.0f} ms",
                "",
                f"{mb(every['rss_kib_ready']):.1f} MB",
                f"{mb(every['hwm_kib']):.1f} MB",
                "",
                "",
            ]
        )
    return _table(header, rows)


def lean_table(results: dict[str, Any]) -> str:
    lean = results.get("lean")
    if not lean:
        return "Not measured in this run."
    every, idle, restart = lean["every_group"], lean["idle"], lean["restart"]
    header = ["cell", "figure", "bound"]
    rows = [
        [
            f"every endpoint group, {every['orgs']} orgs x 4 windows, "
            f"{every['latency_seconds'] * 1000:.0f} ms: first complete snapshot from exec",
            f"{every['startup_seconds']:.1f} s "
            f"({' + '.join(str(n) for n in every['requests_by_key'])} requests by key, "
            f"{every['targets_down']} targets down)",
            f"{every['bound_seconds']:.1f} s lower bound; "
            f"{_startup_bound(every['bound_seconds']):.1f} s target",
        ],
        [
            f"idle CPU between polls, {idle['orgs']} orgs",
            f"{idle['share']:.3%} of a core",
            f"{IDLE_CPU_MAX:.1%}",
        ],
        [
            f"restart, {restart['orgs']} orgs, API latency {restart['latency_seconds']:.0f} s: "
            "exec to the previous values on /metrics, with state.path",
            f"{restart['warm_seconds']:.2f} s"
            + ("" if restart["warm_values_kept"] else " (values differ from the first run's)"),
            f"{RESTART_MAX_SECONDS:.0f} s",
        ],
        [
            "... without state.path (a whole first cycle)",
            f"{restart['cold_seconds']:.2f} s",
            "",
        ],
        [
            "importing the dependencies alone / the exporter's modules (with them)",
            f"{lean['deps_import_seconds']:.2f} s / {lean['exporter_import_seconds']:.2f} s",
            "",
        ],
    ]
    return _table(header, rows)


def targets_table(results: dict[str, Any]) -> str:
    rows = [
        [t.name, t.figure, f"{t.ratio:.2f}" if t.ratio is not None else "-", t.mark]
        for t in targets(results)
    ]
    return _table(["target", "this run", "figure / bound", ""], rows)


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
        "### Every endpoint group, idle CPU, restarts",
        "",
        "The every-group cell delays every endpoint's answers (not only the seed ones') and "
        "bounds its first snapshot by the exporter's own targets, per key; the restart "
        "cells stop an exporter with `state.path` after its first snapshot, slow the demo "
        "API down, and time a new process from exec until its /metrics holds every "
        "`devin_sessions_*` line of the first one.",
        "",
        lean_table(results),
        "",
        "### Memory",
        "",
        "RSS in MB (10^6 bytes) from /proc; the target rows use RSS after scrapes.",
        "",
        memory_table(results),
        "",
    ]
    return "\n".join(parts)
