"""Fault plans: what the demo Devin API does wrong, per endpoint and organisation."""

from __future__ import annotations

import time
from collections import Counter, deque
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Body = Literal[
    "ok",
    "malformed",
    "truncated",
    "missing_fields",
    "extra_fields",
    "new_keys",
    "gzip_bomb",  # about 1 MB of gzip that inflates to more than 1 GiB
    "endless_body",  # a 200 whose JSON never ends, streamed until the client hangs up
]


class Fault(BaseModel):
    """One step of a plan; it applies to `times` requests in a row (forever if unset)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: int | None = Field(default=None, ge=100, le=599)
    retry_after: str | None = None  # delta-seconds ("3") or an HTTP-date
    delay_seconds: float = Field(default=0.0, ge=0, le=600)
    body: Body = "ok"
    stall: bool = False  # send the headers and half the body, then hang
    reset: bool = False  # drop the connection without an answer
    times: int | None = Field(default=None, ge=1)


class PlanEntry(BaseModel):
    """The faults of one target: `org` is "" for the v2 request without `org_ids`."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str
    org: str = ""
    faults: list[Fault]


_PLAN = TypeAdapter(list[PlanEntry])


class FaultPlan:
    """Per (endpoint, org), a queue of faults consumed by requests; also counts requests."""

    def __init__(self, entries: list[PlanEntry] | None = None) -> None:
        self._steps: dict[tuple[str, str], list[Fault]] = {}
        self._used: Counter[tuple[str, str]] = Counter()
        self.requests: Counter[tuple[str, str]] = Counter()
        # When the latest requests came (monotonic seconds, endpoint, org): bounded.
        self.arrivals: deque[tuple[float, str, str]] = deque(maxlen=10_000)
        for entry in entries or []:
            self.set(entry)

    @classmethod
    def from_file(cls, path: Path) -> FaultPlan:
        return cls(_PLAN.validate_python(yaml.safe_load(path.read_text(encoding="utf-8")) or []))

    def set(self, entry: PlanEntry) -> None:
        key = (entry.endpoint, entry.org)
        self._steps[key] = list(entry.faults)
        self._used[key] = 0

    def clear(self) -> None:
        self._steps.clear()
        self._used.clear()

    def next_fault(self, endpoint: str, org: str) -> Fault | None:
        """Count a request of the target and return the fault it must suffer, if any."""
        key = (endpoint, org)
        self.requests[key] += 1
        self.arrivals.append((time.monotonic(), endpoint, org))
        steps = self._steps.get(key)
        while steps:
            step = steps[0]
            if step.times is None:
                return step
            if self._used[key] < step.times:
                self._used[key] += 1
                return step
            steps.pop(0)
            self._used[key] = 0
        return None
