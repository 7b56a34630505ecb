"""A target: one endpoint polled for one organisation ("" for enterprise-wide)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from exporter.devin.table import Endpoint


@dataclass(frozen=True, order=True)
class Target:
    """What one scheduled job polls: a row of the endpoint table, for one organisation.

    Equality and order are the row's name, the org and the segment: a reload that rotates
    a key or changes an interval keeps the target's values.
    """

    endpoint: str = field(init=False)  # the row's name: the `endpoint` label, the identity
    row: Endpoint[Any] = field(compare=False, repr=False)
    org: str
    key: SecretStr = field(compare=False, repr=False)
    interval_seconds: float = field(default=300.0, compare=False)
    segment: str = ""  # a named slice of the org's sessions; "" for all of them
    filters: SessionFilters = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoint", self.row.name)


SessionFilters = tuple[tuple[str, tuple[str, ...]], ...]
"""Query filters of a segment: (("user_ids", (...)), ("playbook_id", ("pb-1",)))."""
