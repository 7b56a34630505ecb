"""A backfill run: every step's answers, rendered by the daemon's own metric families.

Each step t asks what a poll at t would have asked (through the daemon's strategies,
client, retries and per-key rate limits; bucketed endpoints through `BucketCache`), and
renders the answers with the daemon's collectors at t, so names, labels and values are
the daemon's. The earliest step runs alone (it sets the range the bucketed endpoints are
asked for), the rest a few at a time.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import structlog
from prometheus_client.metrics_core import Metric

from exporter.backfill.buckets import BucketCache
from exporter.backfill.plan import BackfillPlan, backfill_targets, explain, plan
from exporter.backfill.progress import Progress
from exporter.backfill.spool import Spool
from exporter.backfill.steps import Command, Steps, stamp
from exporter.config import Settings
from exporter.devin.client import DevinAPI
from exporter.devin.errors import DevinAPIError
from exporter.devin.models import BillingCycle
from exporter.files import replacing
from exporter.metrics.families.health import HealthCollector
from exporter.metrics.registry import collectors
from exporter.metrics.view import View
from exporter.polling.snapshot import Sample, Snapshot
from exporter.polling.strategies import Span, strategy_of
from exporter.polling.targets import Target
from exporter.windows import day_cycle

log = structlog.get_logger("exporter.backfill")

EXIT_LEFT_OUT = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
STEPS_IN_FLIGHT = 4
JOURNAL_FORMAT = "devin-exporter-backfill/1"


class BackfillError(Exception):
    """A run that cannot start: a bad journal, a range that does not match it."""


def journal_path(output: Path) -> Path:
    return output.with_name(output.name + ".journal.json")


@dataclass
class Outcome:
    """What the steps done so far left out, as (endpoint, org, window, reason) -> steps."""

    left_out: dict[tuple[str, str, str, str], list[int]] = field(
        default_factory=lambda: defaultdict(list)
    )
    done: set[int] = field(default_factory=set)


Labels = tuple[tuple[str, str], ...]


def read_journal(output: Path) -> tuple[Steps, set[int], Labels]:
    """The range of an interrupted or partial run, the steps it finished, and the labels
    it added to every series."""
    path = journal_path(output)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != JOURNAL_FORMAT:
            raise BackfillError(f"{path}: not a journal this version writes")
        steps = Steps(float(data["since"]), float(data["until"]), float(data["step"]))
        if not output.exists():
            raise BackfillError(f"{output} is missing: nothing to resume; start without --resume")
        labels = tuple((str(k), str(v)) for k, v in data.get("labels", []))
        return steps, {int(t) for t in data["done"]}, labels
    except FileNotFoundError:
        raise BackfillError(
            f"{path} is missing: --resume continues a run that stopped early, beside its output"
        ) from None
    except (ValueError, KeyError, TypeError) as err:
        raise BackfillError(f"{path}: unreadable ({err})") from None


def _write_journal(output: Path, steps: Steps, done: set[int], labels: Labels) -> None:
    body = {
        "format": JOURNAL_FORMAT,
        "since": steps.since,
        "until": steps.until,
        "step": steps.step,
        "done": sorted(done),
        "labels": [list(pair) for pair in labels],
    }
    with replacing(journal_path(output)) as out:
        out.write(json.dumps(body) + "\n")


class Backfill:
    """One run over a list of steps, against one DevinAPI."""

    def __init__(
        self,
        settings: Settings,
        api: DevinAPI,
        steps: Steps,
        labels: Labels = (),
    ) -> None:
        self._settings = settings
        self._labels = dict(labels)
        self._api = BucketCache(api, steps.until)
        self._steps = steps
        self._windows = list(settings.windows)
        self._targets = backfill_targets(settings)
        # Billing cycles first: the `cycle` window of a step starts where its cycle does.
        self._cycles = [t for t in self._targets if strategy_of(t.row).first]
        self._others = [t for t in self._targets if t not in self._cycles]

    async def step(self, t: int) -> tuple[list[Metric], list[tuple[Target, str, str]]]:
        """The Devin families at t, and each (target, window, reason) left out."""
        samples: dict[tuple[Target, str], Sample] = {}
        failed: list[tuple[Target, str, str]] = []
        # Devin's cycle once read, else billing.cycle_start_day's; None: no `cycle` window.
        day = self._settings.billing.cycle_start_day
        cycle = day_cycle(float(t), day) if day is not None else None
        for group in (self._cycles, self._others):
            cycle_start = cycle[0] if cycle is not None else None
            results = await asyncio.gather(
                *(
                    strategy_of(target.row).fetch(
                        self._api,
                        target,
                        strategy_of(target.row).windows(self._windows),
                        Span(float(t), cycle_start),
                    )
                    for target in group
                )
            )
            for target, outcomes in zip(group, results, strict=True):
                for label, outcome in outcomes.items():
                    if isinstance(outcome, DevinAPIError):
                        failed.append((target, label, outcome.reason))
                        continue
                    samples[target, label] = Sample(outcome, float(t))
                    if isinstance(outcome, BillingCycle):
                        cycle = (float(outcome.start), float(outcome.end))
        return self._render(t, samples, cycle), failed

    def _render(
        self,
        t: int,
        samples: dict[tuple[Target, str], Sample],
        cycle: tuple[float, float] | None = None,
    ) -> list[Metric]:
        snapshot = Snapshot(
            version=0,
            targets=tuple(self._targets),
            windows=tuple(self._windows),
            samples=samples,
            states={},
            up={},
            cycle=cycle,
        )
        view = View(
            snapshot,
            tuple(self._settings.polled_organizations),
            self._settings.stale_after_seconds,
            float(t),
        )
        # The Devin families only: devin_up and the exporter's own series describe the
        # daemon's polls, not Devin's past.
        families = [
            family
            for collector in collectors()
            if collector is not HealthCollector
            for family in collector(view).collect()
            if family.samples
        ]
        if self._labels:
            for family in families:
                family.samples = [
                    s._replace(labels={**s.labels, **self._labels}) for s in family.samples
                ]
        return families


async def run_backfill(
    settings: Settings,
    api: DevinAPI,
    steps: Steps,
    output: Path,
    *,
    done: set[int] | None = None,
    labels: Labels = (),
    stream: TextIO | None = None,
) -> int:
    """Every step not in `done`, into `output`; the exit status of the command."""
    done = set(done or ())
    backfill = Backfill(settings, api, steps, labels)
    pending = [t for t in steps.times if t not in done]
    try:
        spool = Spool(output.parent)
    except OSError as err:
        print(f"devin-exporter: cannot write beside {output}: {err.strerror}", file=sys.stderr)
        return EXIT_USAGE
    outcome = Outcome(done=done)
    stop = asyncio.Event()
    progress = Progress(len(steps.times), len(steps.times) - len(pending), stream)
    try:
        if done:
            try:
                spool.resume(output, done)  # steps left unfinished are done again, whole
            except ValueError as err:
                print(f"devin-exporter: cannot resume from {output}: {err}", file=sys.stderr)
                return EXIT_USAGE

        async def work(t: int) -> None:
            families, failed = await backfill.step(t)
            spool.add(t, families)
            for target, window, reason in failed:
                org = f"{target.org}#{target.segment}" if target.segment else target.org
                outcome.left_out[target.endpoint, org, window, reason].append(t)
            if not failed:
                outcome.done.add(t)
            progress.step()

        async def steps_in_turn() -> None:
            for t in pending[:1]:
                await work(t)
            queue = iter(pending[1:])

            async def worker() -> None:
                for t in queue:
                    await work(t)

            await asyncio.gather(*(worker() for _ in range(STEPS_IN_FLIGHT)))

        with _stopping_on_signals(stop):
            running = asyncio.ensure_future(steps_in_turn())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
            for task in (running, stopped):
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        written = spool.write(output)
    finally:
        progress.close()
        spool.close()
    interrupted = stop.is_set()
    complete = outcome.done >= set(steps.times)
    if complete:
        journal_path(output).unlink(missing_ok=True)
    else:
        _write_journal(output, steps, outcome.done, labels)
    for (endpoint, org, window, reason), times in sorted(outcome.left_out.items()):
        log.warning(
            "backfill_left_out",
            endpoint=endpoint,
            org=org or "(enterprise)",
            window=window,
            reason=reason,
            steps=describe_steps(sorted(times), steps.step),
        )
    log.info(
        "backfill_written",
        path=str(output),
        steps_done=len(outcome.done & set(steps.times)),
        steps=len(steps.times),
        families=written.families,
        series=written.series,
        samples=written.samples,
        resume=None if complete else f"--resume (journal {journal_path(output).name})",
    )
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_LEFT_OUT if outcome.left_out else 0


@contextmanager
def _stopping_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Ctrl-C or SIGTERM: stop starting steps, drop the ones in flight, write what is done."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def describe_steps(times: list[int], step: float) -> str:
    """`2026-11-20T10:00:00Z..2026-11-20T14:00:00Z (5 steps), 2026-11-21T03:00:00Z`."""
    runs: list[list[int]] = []
    for t in times:
        if runs and t - runs[-1][-1] == step:
            runs[-1].append(t)
        else:
            runs.append([t])
    return ", ".join(
        stamp(r[0]) if len(r) == 1 else f"{stamp(r[0])}..{stamp(r[-1])} ({len(r)} steps)"
        for r in runs
    )


def explain_text(p: BackfillPlan, times: list[int], step: float) -> str:
    """`--explain`'s answer for the steps still to do."""
    if not times:
        return "nothing to do: every step is done\n"
    return explain(p, stamp(times[0]), stamp(times[-1]), step)


async def backfill_command(
    settings: Settings,
    command: Command,
    connect: Callable[[], AbstractAsyncContextManager[DevinAPI]],
) -> int:
    """Plan, refuse or run; the exit status of `devin-exporter backfill`. `connect` opens
    the daemon's own client to Devin (its retries and per-key rate limits)."""
    done: set[int] = set()
    steps, labels = command.steps, command.labels
    if command.resume:
        try:
            journal_steps, done, journal_labels = read_journal(command.output)
        except BackfillError as err:
            print(f"devin-exporter: {err}", file=sys.stderr)
            return EXIT_USAGE
        if steps is not None and steps != journal_steps:
            print(
                "devin-exporter: --resume continues the journal's range; "
                "leave out --since, --until and --step",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if labels and labels != journal_labels:
            print(
                "devin-exporter: --resume adds the journal's labels; leave out --label",
                file=sys.stderr,
            )
            return EXIT_USAGE
        steps, labels = journal_steps, journal_labels
    if steps is None:
        print("devin-exporter: backfill needs --since (or --resume)", file=sys.stderr)
        return EXIT_USAGE
    times = [t for t in steps.times if t not in done]
    cost = plan(settings, times)
    if command.explain:
        print(explain_text(cost, times, steps.step), end="")
        return 0
    if command.max_requests is not None and cost.total > command.max_requests:
        print(
            f"devin-exporter: refusing: this backfill needs {cost.total} requests, more than "
            f"--max-requests {command.max_requests} (see backfill --explain)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if settings.discovery.enabled:
        log.warning(
            "backfill_without_discovery",
            organizations=len(settings.polled_organizations),
            hint="backfill covers the organizations the config lists; list discovered ones "
            "under organizations to include them",
        )
    async with connect() as api:
        return await run_backfill(settings, api, steps, command.output, done=done, labels=labels)
