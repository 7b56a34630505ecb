"""What a scrape renders from: the poller's snapshot, the fresh samples, and the helpers
every metric family shares (never calls Devin)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel

from exporter.config import Organization
from exporter.polling.snapshot import Snapshot, fresh_samples, stale_after_for
from exporter.polling.targets import Target

_Value = TypeVar("_Value", bound=BaseModel)


def gauge(name: str, help_text: str, labels: list[str]) -> GaugeMetricFamily:
    """A gauge family of polled values.

    Its HELP says what the value is, in a line; that every such value is polled in the
    background and cached, and what `window` covers, is said once in docs/metrics.md
    rather than in every family of every scrape.
    """
    return GaugeMetricFamily(name, help_text, labels=labels)


@dataclass(frozen=True)
class Billing:
    """What a rendering says beyond the polled values: whether this replica serves the
    enterprise-wide series (shard 0 does), and the price of an ACU if the operator set it."""

    enterprise: bool = True
    acu_price: float | None = None
    currency: str = "USD"


@dataclass(frozen=True)
class View:
    """What one rendering shows: a snapshot, the configured orgs, and which samples are fresh."""

    snapshot: Snapshot
    organizations: tuple[Organization, ...]
    stale_after_seconds: float
    now: float
    billing: Billing = Billing()

    def fresh(self, kind: type[_Value]) -> Iterator[tuple[Target, str, _Value]]:
        """Samples of one kind young enough to serve, in a stable order, whichever endpoint
        (an org's own, or its enterprise twin) they came from."""
        samples = fresh_samples(self.snapshot.samples, self.now, self.stale_after_seconds)
        for (target, window), sample in sorted(samples.items(), key=lambda kv: kv[0]):
            if isinstance(sample.value, kind):
                yield target, window, sample.value

    @property
    def expires_at(self) -> float:
        """When the first fresh sample turns stale, and this view with it."""
        deadlines = [
            deadline
            for (t, _), s in self.snapshot.samples.items()
            if (deadline := s.fetched_at + stale_after_for(t, self.stale_after_seconds)) >= self.now
        ]
        return min(deadlines, default=float("inf"))


def adder(target: Target) -> Callable[[GaugeMetricFamily, dict[str, str], float | None], None]:
    """Adds a sample with the family's labels, and `segment` for a segment's target.

    A family's samples may carry different label sets: the whole-org series keep the
    public labels exactly, and only a segment's series gain `segment`. A value Devin left
    null or absent (None) adds nothing: only its own series goes missing.
    """

    def add(family: GaugeMetricFamily, labels: dict[str, str], value: float | None) -> None:
        if value is None:
            return
        if target.segment:
            labels = {**labels, "segment": target.segment}
        family.add_sample(family.name, labels, value)

    return add


def each(counts: Mapping[str, int] | None) -> Iterator[tuple[str, int]]:
    """The items of a by-key breakdown, none when Devin left it null or absent."""
    return iter(counts.items()) if counts is not None else iter(())


class ViewCollector(Collector):
    """A collector of one metric family module, reading one view."""

    def __init__(self, view: View) -> None:
        self._view = view
