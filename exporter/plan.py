"""Which targets this replica polls, and what one poll cycle costs in requests."""

from __future__ import annotations

from dataclasses import dataclass

from exporter.client import V2_ENTERPRISE_SESSIONS, V3_ORG_SESSIONS
from exporter.config import Settings
from exporter.endpoints import ENDPOINTS
from exporter.targets import Target


def build_targets(settings: Settings) -> list[Target]:
    """The targets of this replica's shard, for every enabled endpoint group.

    Org-level endpoints get one target per org. With an enterprise key, the v2 sessions
    endpoint gets one target per org and, on shard 0, the enterprise-wide one.
    """
    orgs = settings.polled_organizations
    targets: list[Target] = []
    if settings.enabled("sessions"):
        interval = settings.interval_of("sessions")
        targets += [Target(V3_ORG_SESSIONS, o.id, settings.key_for(o), interval) for o in orgs]
    enterprise_key = settings.devin.enterprise_key
    if enterprise_key is not None and settings.enabled("enterprise_sessions"):
        interval = settings.interval_of("enterprise_sessions")
        if settings.sharding.owns_enterprise:
            targets.append(Target(V2_ENTERPRISE_SESSIONS, "", enterprise_key, interval))
        targets += [Target(V2_ENTERPRISE_SESSIONS, o.id, enterprise_key, interval) for o in orgs]
    return targets


@dataclass(frozen=True)
class PlannedRequest:
    """One target's share of a poll cycle."""

    endpoint: str
    org: str
    windows: tuple[str, ...]
    requests: int
    interval_seconds: float


def request_plan(settings: Settings) -> list[PlannedRequest]:
    """Every target with the windows its requests serve and how many requests it sends."""
    windows = settings.windows
    return [
        PlannedRequest(
            t.endpoint,
            t.org,
            tuple(w.label for w in windows),
            ENDPOINTS[t.endpoint].requests_per_poll(windows),
            t.interval_seconds,
        )
        for t in build_targets(settings)
    ]


def explain(plan: list[PlannedRequest]) -> str:
    """The plan as a table, with the requests one cycle of every target sends."""
    rows = [("endpoint", "org", "windows", "requests", "every")]
    rows += [
        (
            p.endpoint,
            p.org or "(enterprise)",
            ",".join(p.windows),
            str(p.requests),
            format_seconds(p.interval_seconds),
        )
        for p in plan
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    total = sum(p.requests for p in plan)
    lines.append(f"{len(plan)} targets, {total} requests per cycle")
    return "\n".join(lines) + "\n"


def format_seconds(seconds: float) -> str:
    """`300` as `5m`, `3600` as `1h`: for people reading the plan."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
