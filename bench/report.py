"""Turns the figures of a run into the targets and Markdown tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FLOOR_RATIO_MAX = 1.5  # /metrics p50 within this of the static floor ...
FLOOR_SIZES = ("10k", "100k")  # ... at these sizes
STOCK_SPEEDUP_MIN = 10.0  # and at least this many times faster than the stock exporter
TARGET_SIZE = "10k"
CYCLE_RATIO_MAX = 1.15  # poll cycle and first snapshot over a bare client's replay
CPU_PER_REQUEST_MAX = 0.001  # exporter CPU seconds per Devin request ...
CPU_ORGS = 500  # ... at this many organisations, at every latency
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


def _latency(p: dict[str, Any]) -> str:
    return f"{p['latency_seconds'] * 1000:.0f} ms"


def _ms_or_dash(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f} ms"


def _cpu_targets(polls: list[dict[str, Any]]) -> list[Target]:
    found = []
    for p in [p for p in polls if p["orgs"] == CPU_ORGS]:
        name = (
            f"exporter CPU per Devin request <= {CPU_PER_REQUEST_MAX * 1000:.1f} ms, "
            f"{CPU_ORGS} orgs, {_latency(p)}"
        )
        cpu = p.get("cycle_cpu_per_request_seconds")
        if cpu is None:
            found.append(Target(name, "not measured (no second cycle)", None))
            continue
        found.append(
            Target(
                name,
                f"{_ms_or_dash(cpu)} (bare aiohttp "
                f"{_ms_or_dash(p['aiohttp_cpu_per_request_seconds'])}, bare httpx "
                f"{_ms_or_dash(p['httpx_cpu_per_request_seconds'])})",
                cpu <= CPU_PER_REQUEST_MAX,
                cpu / CPU_PER_REQUEST_MAX,
            )
        )
    return found


def _poll_targets(results: dict[str, Any]) -> list[Target]:
    polls = [p for p in results["poll"] if "replay_cycle_seconds" in p]
    if not polls:
        return [Target("poll cycle and first snapshot", "not measured", None)]
    found = _cpu_targets(polls)
    for orgs in sorted({p["orgs"] for p in polls}):
        cells = [p for p in polls if p["orgs"] == orgs]
        worst = max(cells, key=lambda p: p["cycle_seconds"] / p["replay_cycle_seconds"])
        over = worst["cycle_seconds"] / worst["replay_cycle_seconds"]
        found.append(
            Target(
                f"poll cycle <= {CYCLE_RATIO_MAX}x a bare client's replay, {orgs} orgs",
                f"worst {over:.2f}x ({_latency(worst)}: {worst['cycle_seconds']:.2f} s "
                f"vs {worst['replay_cycle_seconds']:.2f} s)",
                over <= CYCLE_RATIO_MAX,
                over / CYCLE_RATIO_MAX,
            )
        )
    for orgs in sorted({p["orgs"] for p in polls}):
        cells = [p for p in polls if p["orgs"] == orgs]
        worst = max(cells, key=lambda p: p["startup_seconds"] / p["replay_first_from_exec_seconds"])
        over = worst["startup_seconds"] / worst["replay_first_from_exec_seconds"]
        found.append(
            Target(
                f"first snapshot from exec <= {CYCLE_RATIO_MAX}x a bare client's, {orgs} orgs",
                f"worst {over:.2f}x ({_latency(worst)}: {worst['startup_seconds']:.2f} s "
                f"vs {worst['replay_first_from_exec_seconds']:.2f} s)",
                over <= CYCLE_RATIO_MAX,
                over / CYCLE_RATIO_MAX,
            )
        )
    every = (results.get("lean") or {}).get("every_group")
    if every:
        ratio = every["startup_seconds"] / _startup_bound(every["bound_seconds"])
        found.append(
            Target(
                f"first snapshot, every group, {every['orgs']} orgs <= "
                f"{STARTUP_RATIO_MAX}x lower bound + {STARTUP_SLACK_SECONDS:.0f} s",
                f"{every['startup_seconds']:.1f} s vs "
                f"{_startup_bound(every['bound_seconds']):.1f} s",
                ratio <= 1.0,
                ratio,
            )
        )
    return found


def _rss_after(results: dict[str, Any], orgs: int) -> float | None:
    """RSS after a scrape as Prometheus makes it (older runs: after every variant)."""
    cells = [p for p in results["poll"] if p["orgs"] == orgs]
    key = "rss_kib_after_scrape"
    return max(mb(p.get(key, p["rss_kib_after_scrapes"])) for p in cells) if cells else None


def _memory_targets(results: dict[str, Any]) -> list[Target]:
    found = []
    for orgs in RSS_ORGS:
        rss = _rss_after(results, orgs)
        name = f"RSS after a scrape, {orgs} orgs (seed endpoints, 4 windows) < {RSS_MAX_MB:.0f} MB"
        if rss is None:
            found.append(Target(name, "not measured", None))
            continue
        found.append(Target(name, f"{rss:.1f} MB", rss < RSS_MAX_MB, rss / RSS_MAX_MB))
    rss = _rss_after(results, RSS_SMALL_ORGS)
    deps = results.get("lean", {}).get("deps_floor_kib")
    name = f"RSS after a scrape, {RSS_SMALL_ORGS} orgs <= {RSS_OVER_DEPS_MAX:.2f}x the deps' import"
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
        "bare client's cycle",
        "cycle / bare",
        "first snapshot (from exec)",
        "bare client's (from exec)",
        "first / bare",
        "targets down",
        "CPU per request: exporter",
        "bare aiohttp",
        "bare httpx",
    ]
    rows = []
    for p in results["poll"]:
        replayed = "replay_cycle_seconds" in p
        cycle = p["cycle_seconds"] / p["replay_cycle_seconds"] if replayed else None
        first = p["startup_seconds"] / p["replay_first_from_exec_seconds"] if replayed else None

        def mark(ratio: float | None) -> str:
            if ratio is None:
                return "-"
            return f"{ratio:.2f}x " + ("ok" if ratio <= CYCLE_RATIO_MAX else "MISS")

        rows.append(
            [
                str(p["orgs"]),
                _latency(p),
                f"{p['requests']['v3_service_user_key']} + {p['requests']['v2_enterprise_key']}",
                f"{p['bound_seconds']:.2f} s",
                f"{p['cycle_seconds']:.2f} s"
                + (" (first)" if p.get("cycle_kind") == "first" else ""),
                f"{p['replay_cycle_seconds']:.2f} s" if replayed else "-",
                mark(cycle),
                f"{p['startup_seconds']:.2f} s",
                f"{p['replay_first_from_exec_seconds']:.2f} s" if replayed else "-",
                mark(first),
                str(p["targets_down"])
                + (f" ({p['replay_errors']} bare errors)" if p.get("replay_errors") else ""),
                _ms_or_dash(p.get("cycle_cpu_per_request_seconds")),
                _ms_or_dash(p.get("aiohttp_cpu_per_request_seconds")),
                _ms_or_dash(p.get("httpx_cpu_per_request_seconds")),
            ]
        )
    return _table(header, rows)


def imports_table(results: dict[str, Any]) -> str:
    """Import time by package, largest first: those over 5 ms, then the rest summed."""
    packages = (results.get("lean") or {}).get("import_breakdown")
    if not packages:
        return "Not measured in this run."
    shown = [p for p in packages if p["seconds"] >= 0.005]
    rest = sum(p["seconds"] for p in packages if p["seconds"] < 0.005)
    total = sum(p["seconds"] for p in packages)
    rows = [[p["package"], f"{p['seconds'] * 1000:.1f} ms"] for p in shown]
    rows.append([f"{len(packages) - len(shown)} others", f"{rest * 1000:.1f} ms"])
    rows.append(["all (self times summed)", f"{total * 1000:.1f} ms"])
    return _table(["package or module", "import time"], rows)


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
        "RSS after a scrape",
        "after every format",
        "peak RSS",
    ]
    rows = []
    lean = results.get("lean")
    if lean:
        deps = f"{mb(lean['deps_floor_kib']):.1f} MB"
        rows.append(["the dependencies imported, nothing else", "", deps, "", "", "", ""])
    rows.append(
        [
            "imports only, nothing running",
            "",
            f"{mb(results['memory_imports_kib']):.1f} MB",
            "",
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
                "",
                f"{mb(size['exporter_rss_kib_after']):.0f} MB",
                f"{mb(size['exporter_hwm_kib']):.0f} MB",
            ]
        )
    for p in results["poll"]:
        rows.append(
            [
                f"{p['orgs']} orgs, poll bench at {p['latency_seconds'] * 1000:.0f} ms",
                "",
                f"{mb(p['rss_kib_ready']):.1f} MB",
                f"{mb(p['hwm_kib_ready']):.1f} MB",
                f"{mb(p['rss_kib_after_scrape']):.1f} MB" if "rss_kib_after_scrape" in p else "-",
                f"{mb(p['rss_kib_after_scrapes']):.1f} MB",
                f"{mb(p['hwm_kib']):.1f} MB",
            ]
        )
    every = (lean or {}).get("every_group")
    if every:
        rows.append(
            [
                f"{every['orgs']} orgs, every endpoint group, "
                f"{every['latency_seconds'] * 1000:.0f} ms",
                "",
                f"{mb(every['rss_kib_ready']):.1f} MB",
                f"{mb(every['hwm_kib']):.1f} MB",
                "",
                "",
                "",
            ]
        )
    return _table(header, rows)


def lean_table(results: dict[str, Any]) -> str:
    lean = results.get("lean")
    if not lean:
        return "Not measured in this run."
    every, idle, restart = lean.get("every_group"), lean["idle"], lean["restart"]
    header = ["cell", "figure", "bound"]
    rows = []
    if every:
        rows.append(
            [
                f"every endpoint group, {every['orgs']} orgs x 4 windows, "
                f"{every['latency_seconds'] * 1000:.0f} ms: first complete snapshot from exec",
                f"{every['startup_seconds']:.1f} s "
                f"({' + '.join(str(n) for n in every['requests_by_key'])} requests by key, "
                f"{every['targets_down']} targets down)",
                f"{every['bound_seconds']:.1f} s lower bound; "
                f"{_startup_bound(every['bound_seconds']):.1f} s target",
            ]
        )
    rows += [
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
        if results.get("exporter_tree_at_end", m.get("exporter_tree")) == m.get("exporter_tree")
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
        "`poller.ready`. The bare client replays the requests the demo API recorded in the "
        "exporter's first cycle, each key under the same rate and cap (bench/replay.py): "
        "its first replay from exec of its process (interpreter, import of aiohttp, the "
        "requests), and its second, right after, beside the cycle. CPU per request = "
        "process CPU time in the cycle over its requests; bare httpx is measured at "
        f"{', '.join(str(o) for o in poll.get('httpx_orgs', ()))} organisations.",
        "",
        poll_table(results),
        "",
        *_plan_mismatch(results),
        "### Idle CPU, restarts (and every endpoint group, with --every-group)",
        "",
        "The every-group cell delays every endpoint's answers (not only the seed ones') and "
        "bounds its first snapshot by the exporter's own targets, per key; the restart "
        "cells stop an exporter with `state.path` after its first snapshot, slow the demo "
        "API down, and time a new process from exec until its /metrics holds every "
        "`devin_sessions_*` line of the first one.",
        "",
        lean_table(results),
        "",
        "### Import time",
        "",
        "`python -X importtime -c 'import exporter.main, exporter.cli'`, the least self "
        "time of each module over 3 interpreters, summed by top-level package (the "
        "exporter's modules each apart).",
        "",
        imports_table(results),
        "",
        "### Memory",
        "",
        "RSS in MB (10^6 bytes) from /proc. The targets use the RSS after one scrape as "
        "Prometheus makes it (OpenMetrics, gzip); `after every format` is after a scrape "
        "of each of the four variants besides (both formats rendered and held).",
        "",
        memory_table(results),
        "",
    ]
    return "\n".join(parts)
