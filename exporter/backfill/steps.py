"""Which moments a backfill writes: the multiples of `--step` in (until - since, until]."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from exporter.durations import parse_duration

DEFAULT_STEP_SECONDS = 3600.0


@dataclass(frozen=True)
class Steps:
    """The backfill's range and step, in Unix seconds; steps align to the Unix epoch."""

    since: float  # how far back from `until`
    until: float
    step: float

    @property
    def times(self) -> list[int]:
        first = math.floor((self.until - self.since) / self.step) + 1
        last = math.floor(self.until / self.step)
        return [int(k * self.step) for k in range(first, last + 1)]


def parse_until(text: str) -> float:
    """An RFC 3339 time (`2026-11-20T00:00:00Z`, or with an offset) as Unix seconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 time such as 2026-11-20T00:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} needs a time zone: Z or an offset such as +01:00")
    return moment.astimezone(UTC).timestamp()


def parse_step(text: str) -> float:
    """A step of whole seconds, at least one."""
    seconds = parse_duration(text)
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"{text!r}: the step must be whole seconds, 1s or more")
    return seconds


# The labels the Devin families use; `--label` may add others, never one of these.
SERIES_LABELS = frozenset(
    {"org", "window", "origin", "size", "product", "period", "state", "status"}
    | {"status_detail", "category", "name", "segment"}
)
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def parse_label(text: str) -> tuple[str, str]:
    """`job=devin-exporter`: a label every backfilled series gets, so that the history
    joins the series Prometheus scrapes (which carry `job` and `instance`)."""
    name, sep, value = text.partition("=")
    if not sep or not _LABEL_NAME.match(name) or name.startswith("__"):
        raise ValueError(f"{text!r} is not NAME=VALUE with a Prometheus label name")
    if name in SERIES_LABELS:
        raise ValueError(f"{name!r} is a label of the Devin series themselves")
    return name, value


def stamp(t: float) -> str:
    """`2026-11-20T10:00:00Z`: a step as people read it."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Command:
    """`devin-exporter backfill`, as the command line gave it."""

    steps: Steps | None  # None with --resume: the journal's range
    output: Path
    resume: bool = False
    explain: bool = False
    max_requests: int | None = None
    labels: tuple[tuple[str, str], ...] = ()  # added to every series (`--label`)
