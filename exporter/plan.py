"""Which targets this replica polls, and what one poll cycle costs in requests."""

from __future__ import annotations

from dataclasses import dataclass

from exporter import client as c
from exporter.config import Organization, Settings
from exporter.endpoints import ENDPOINTS, ENTERPRISE_TWIN, V2_TWIN
from exporter.targets import Target

# Org-level endpoints, each polled for every organization of the shard.
_ORG_ENDPOINTS = tuple(name for name in ENDPOINTS if name.startswith("v3_org_"))
# Enterprise-wide endpoints, polled once (by shard 0) with the enterprise service user.
_ENTERPRISE_ENDPOINTS = (
    c.V3_ENTERPRISE_SESSIONS_BY_CATEGORY,
    c.V3_ENTERPRISE_CONSUMPTION_CYCLES,
)


def build_targets(settings: Settings) -> list[Target]:
    """The targets of this replica's shard, for every enabled endpoint group.

    Org-level groups get one target per org: with the org's own or the default service
    user key on the org endpoint, or else (enterprise mode) with the enterprise service
    user key on the enterprise twin filtered by `org_ids`. dau/wau/mau have no enterprise
    twin here. With an enterprise admin key, v2 sessions get one target per org and the
    enterprise-wide one; enterprise-wide targets are polled by shard 0 only.
    """
    orgs = settings.polled_organizations
    targets: list[Target] = []
    for endpoint in _ORG_ENDPOINTS:
        group = ENDPOINTS[endpoint].group
        if not settings.enabled(group):
            continue
        interval = settings.interval_of(group)
        for org in orgs:
            key = settings.key_for(org)
            if key is None:  # only the enterprise admin key sees it: v2, where there is one
                admin_key = settings.devin.enterprise_key
                if admin_key is not None and endpoint in V2_TWIN:
                    targets.append(Target(V2_TWIN[endpoint], org.id, admin_key, interval))
                continue
            name = endpoint
            if settings.through_enterprise(org):
                if endpoint not in ENTERPRISE_TWIN:
                    continue
                name = ENTERPRISE_TWIN[endpoint]
            targets.append(Target(name, org.id, key, interval))
    if settings.enabled("sessions"):
        targets += _segment_targets(settings, orgs)
    owns_enterprise = settings.sharding.owns_enterprise
    service_key = settings.devin.enterprise_service_user_key
    if service_key is not None and owns_enterprise:
        targets += [
            Target(endpoint, "", service_key, settings.interval_of(ENDPOINTS[endpoint].group))
            for endpoint in _ENTERPRISE_ENDPOINTS
            if settings.enabled(ENDPOINTS[endpoint].group)
        ]
    enterprise_key = settings.devin.enterprise_key
    if enterprise_key is not None and settings.enabled("enterprise_sessions"):
        interval = settings.interval_of("enterprise_sessions")
        if owns_enterprise:
            targets.append(Target(c.V2_ENTERPRISE_SESSIONS, "", enterprise_key, interval))
        targets += [Target(c.V2_ENTERPRISE_SESSIONS, o.id, enterprise_key, interval) for o in orgs]
    return targets


def _segment_targets(settings: Settings, orgs: list[Organization]) -> list[Target]:
    """Per org and segment, the v3 sessions endpoint with the segment's filters (only for
    orgs with a service user key: the enterprise endpoints take no user filters)."""
    targets = []
    interval = settings.interval_of("sessions")
    for segment in settings.segments:
        filters = tuple(
            (name, tuple(values))
            for name, values in (
                ("user_ids", segment.user_ids),
                ("service_user_ids", segment.service_user_ids),
                ("playbook_id", [segment.playbook_id] if segment.playbook_id else []),
            )
            if values
        )
        targets += [
            Target(c.V3_ORG_SESSIONS, o.id, key, interval, segment.name, filters)
            for o in orgs
            if (key := settings.key_for(o)) is not None and not settings.through_enterprise(o)
        ]
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
            f"{t.org}#{t.segment}" if t.segment else t.org,
            tuple(w.label for w in ENDPOINTS[t.endpoint].windows(windows)),
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
    per_hour = sum(p.requests * 3600 / p.interval_seconds for p in plan)
    lines.append(
        f"{len(plan)} targets, {total} requests per cycle, {per_hour:.0f} per hour "
        "(pages of paginated lists count once; discovery is not included)"
    )
    return "\n".join(lines) + "\n"


def format_seconds(seconds: float) -> str:
    """`300` as `5m`, `3600` as `1h`: for people reading the plan."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
