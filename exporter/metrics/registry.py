"""The registry one scrape renders: every collector of every metric family module."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from prometheus_client import CollectorRegistry

from exporter.metrics import families
from exporter.metrics.view import View, ViewCollector


@cache
def collectors() -> tuple[type[ViewCollector], ...]:
    """The `COLLECTORS` of each module under `exporter.metrics.families`, by module name:
    a new family module is picked up without being listed anywhere else."""
    found: list[type[ViewCollector]] = []
    for module in sorted(pkgutil.iter_modules(families.__path__), key=lambda m: m.name):
        found += importlib.import_module(f"{families.__name__}.{module.name}").COLLECTORS
    return tuple(found)


def view_registry(view: View) -> CollectorRegistry:
    """A registry holding every collector of one view, ready for an exposition encoder."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors():
        registry.register(collector(view))
    return registry
