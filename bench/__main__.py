"""`python -m bench` (`make bench`): every benchmark, a table, bench/results.{json,md}.

python -m bench                 # the full run (about 7 minutes on 2 cores)
python -m bench --write-docs    # ... and put the tables into docs/performance.md
python -m bench --quick         # a smaller matrix, to try the bench itself
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import lean, poll, report, scrape
from bench.loadgen import wrk_path
from bench.procs import ROOT, Child

RESULTS_JSON = ROOT / "bench" / "results.json"
RESULTS_MD = ROOT / "bench" / "results.md"
# --quick and --only runs, so that they never overwrite the figures of a full run.
PARTIAL_JSON = ROOT / "bench" / "results-partial.json"
PARTIAL_MD = ROOT / "bench" / "results-partial.md"
DOCS = ROOT / "docs" / "performance.md"
DOCS_START, DOCS_END = "<!-- bench:start -->", "<!-- bench:end -->"

# Organisations polled for about 1k, 10k and 100k series with 4 windows and v2 on (about
# 130 series per organisation, the exporter's own included, plus about 60 in all).
SIZES = (scrape.Size("1k", 8), scrape.Size("10k", 77), scrape.Size("100k", 773))
QUICK_SIZES = (scrape.Size("1k", 8), scrape.Size("10k", 77))


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        platform.processor() or "unknown",
    )
    meminfo = Path("/proc/meminfo").read_text().split()
    memory_kib = int(meminfo[meminfo.index("MemTotal:") + 1])
    from exporter import __version__

    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gb": memory_kib * 1024 / 1e9,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "exporter_version": __version__,
        "commit": _commit(),
        "exporter_tree": _exporter_tree(),
    }


def _exporter_tree() -> str:
    """The exporter's code as git sees it: its tree at HEAD, and whether it has changes
    (commits of the docs or the bench during a run change nothing measured)."""
    done = subprocess.run(
        ["git", "rev-parse", "HEAD:exporter"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "exporter"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()[:12] + ("+changes" if dirty.stdout.strip() else "")


def _commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--", "exporter") else "")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller matrix (not for docs)")
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk if installed (auto), or the asyncio one",
    )
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per scrape cell")
    parser.add_argument("--only", choices=("scrape", "poll", "lean"), help="run one part only")
    parser.add_argument(
        "--every-group",
        action="store_true",
        help="also poll every endpoint group at 500 organisations (about 3 minutes more)",
    )
    parser.add_argument(
        "--write-docs", action="store_true", help=f"rewrite the tables in {DOCS.relative_to(ROOT)}"
    )
    parser.add_argument(
        "--from-results",
        action="store_true",
        help=f"run nothing: report {RESULTS_JSON.relative_to(ROOT)} again (with --write-docs)",
    )
    return parser.parse_args(argv)


def run_scrapes(
    args: argparse.Namespace, generator: str, workdir: Path, plan: scrape.Plan
) -> list[dict[str, Any]]:
    sizes = QUICK_SIZES if args.quick else SIZES
    loadgen = Child("loadgen", {}, workdir) if generator == "python" else None
    try:
        runner = scrape.CellRunner(generator, loadgen)
        with Child("demo", {"orgs": max(s.orgs for s in sizes)}, workdir) as demo:
            return [scrape.run_size(size, demo.hello, plan, runner, workdir) for size in sizes]
    finally:
        if loadgen is not None:
            loadgen.close()


def write_docs(text: str) -> None:
    doc = DOCS.read_text(encoding="utf-8")
    head, start, rest = doc.partition(DOCS_START)
    _, end, tail = rest.partition(DOCS_END)
    if not start or not end:
        raise SystemExit(f"{DOCS} has no {DOCS_START} ... {DOCS_END} section")
    DOCS.write_text(f"{head}{DOCS_START}\n{text}\n{DOCS_END}{tail}", encoding="utf-8")


def _is_full(results: dict[str, Any]) -> bool:
    parts = ("scrape", "poll", "lean")
    return not results["quick"] and all(bool(results.get(part)) for part in parts)


def publish(results: dict[str, Any], *, docs: bool) -> None:
    """Print the report, write it as Markdown, and with `docs` into the docs' section."""
    text = report.markdown(results)
    path_json, path_md = (
        (RESULTS_JSON, RESULTS_MD) if _is_full(results) else (PARTIAL_JSON, PARTIAL_MD)
    )
    path_md.write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {path_json.relative_to(ROOT)} and {path_md.relative_to(ROOT)}")
    if docs:
        if not _is_full(results):
            raise SystemExit("--write-docs wants a full run (no --quick, no --only)")
        write_docs(text)
        print(f"rewrote the results section of {DOCS.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_results:
        publish(json.loads(RESULTS_JSON.read_text(encoding="utf-8")), docs=args.write_docs)
        return 0
    if args.write_docs and (args.quick or args.only):
        raise SystemExit("--write-docs wants a full run (no --quick, no --only)")
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if wrk_path() else "python"
    if generator == "wrk" and not wrk_path():
        raise SystemExit("wrk is not installed (apt-get install wrk), use --generator python")
    started = time.monotonic()
    plan = scrape.Plan(duration_seconds=args.duration)
    poll_plan = (
        poll.PollPlan(orgs=(10, 100), latencies_seconds=(0.05,), httpx_orgs=(100,))
        if args.quick
        else poll.PollPlan()
    )
    lean_plan = (
        lean.LeanPlan(every_group_orgs=50, idle_seconds=5.0) if args.quick else lean.LeanPlan()
    )
    results: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "machine": machine(),
        "generator": generator,
        "scrape_plan": plan.__dict__,
        "poll_settings": poll_plan.__dict__,
        "lean_settings": lean_plan.__dict__,
        "scrape": [],
        "poll": [],
        "lean": {},
    }
    print(
        f"bench: load generator {generator}, {results['machine']['nproc']} CPUs",
        file=sys.stderr,
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="devin-bench-") as tmp:
        workdir = Path(tmp)
        with Child("imports", {}, workdir) as imports:
            results["memory_imports_kib"] = imports.memory_kib()["VmRSS"]
        if args.only in (None, "scrape"):
            results["scrape"] = run_scrapes(args, generator, workdir, plan)
        if args.only in (None, "poll"):
            results["poll"] = poll.run(poll_plan, workdir)
        if args.only in (None, "lean"):
            results["lean"] = lean.run(lean_plan, workdir, every_groups=args.every_group)
    results["duration_seconds"] = time.monotonic() - started
    results["commit_at_end"] = _commit()
    results["exporter_tree_at_end"] = _exporter_tree()
    if results["exporter_tree_at_end"] != results["machine"]["exporter_tree"]:
        print("bench: WARNING the exporter's code changed during the run", file=sys.stderr)
    results["targets"] = [t.__dict__ for t in report.targets(results)]
    results["scrape_ratios"] = report.scrape_ratios(results)

    path = RESULTS_JSON if _is_full(results) else PARTIAL_JSON
    temporary = RESULTS_JSON.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
    publish(results, docs=args.write_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
