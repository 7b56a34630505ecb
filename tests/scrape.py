"""Reading an exposition back into values, for assertions."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Series:
    """{(sample name, labels): value} for every sample in a text exposition."""
    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series[sample.name, frozenset(sample.labels.items())] = sample.value
    return series


def value(series: Series, metric: str, /, **labels: str) -> float | None:
    """The value of one series, or None when it is absent."""
    return series.get((metric, frozenset(labels.items())))


def names(series: Series) -> set[str]:
    return {name for name, _ in series}


def label_values(series: Series, name: str, label: str) -> set[str]:
    return {dict(labels)[label] for n, labels in series if n == name and label in dict(labels)}


def families(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    """{family name as documented: (type, label names)}; counters keep their `_total`."""
    found: dict[str, tuple[str, frozenset[str]]] = {}
    for family in text_string_to_metric_families(text):
        name = f"{family.name}_total" if family.type == "counter" else family.name
        labels = {k for s in family.samples for k in s.labels if k != "le"}
        found[name] = (family.type, frozenset(labels))
    return found
