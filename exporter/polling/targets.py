"""A target: one endpoint polled for one organisation ("" for enterprise-wide)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr


@dataclass(frozen=True, order=True)
class Target:
    """What one scheduled job polls. Equality ignores the key and the interval, so a reload
    that rotates a key or changes an interval keeps the target's values."""

    endpoint: str
    org: str
    key: SecretStr = field(compare=False, repr=False)
    interval_seconds: float = field(default=300.0, compare=False)
    segment: str = ""  # a named slice of the org's sessions; "" for all of them
    filters: SessionFilters = field(default=(), compare=False)


SessionFilters = tuple[tuple[str, tuple[str, ...]], ...]
"""Query filters of a segment: (("user_ids", (...)), ("playbook_id", ("pb-1",)))."""
