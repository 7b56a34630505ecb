"""Which targets this replica polls, and what one poll cycle costs in requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from exporter.config import Organization, Settings
from exporter.devin.table import ENDPOINTS, ROWS, SEGMENTED, Endpoint
from exporter.polling.strategies import strategy_of
from exporter.polling.targets import Target

_TWINS = {r.twin for r in ROWS} | {r.v2_twin for r in ROWS}
# Polled for every organisation of the shard, with the org's key or through a twin.
_ORG_ROWS = tuple(r for r in ROWS if r.scope == "organization" and r.group)
# Polled once for the whole enterprise (by shard 0): enterprise rows that are no org
# endpoint's twin and need no org in their path.
_ENTERPRISE_ROWS = tuple(
    r
    for r in ROWS
    if r.scope == "enterprise"
    and r.group
    and r.name not in _TWINS
    and not r.per_org_path
    and not strategy_of(r).billing
)
# Read by every replica, one small listing each (see `billing_targets`): the row each
# source of the billing cycle reads, by version, and the rows that read ACU limits with
# each kind of enterprise key (session limits exist only in the organisations' listings).
CYCLE_ROWS = {r.version: r for r in ROWS if strategy_of(r).billing and strategy_of(r).first}
LIMIT_ROWS = {
    kind: tuple(
        r for r in ROWS if r.key == kind and strategy_of(r).billing and not strategy_of(r).first
    )
    for kind in ("enterprise_service_user", "enterprise_admin")
}


def build_targets(settings: Settings) -> list[Target]:
    """The targets of this replica's shard, for every enabled endpoint group.

    Org-level rows get one target per org: with the org's own or the default service user
    key on the org endpoint, or else (enterprise mode) with the enterprise service user key
    on the row's enterprise twin (by `org_ids` or the org in its path), or, for an org only
    the enterprise admin key sees, on its v2 twin. Enterprise-wide rows are polled by shard
    0 only; the v2 sessions row (enterprise admin key) is also asked for every org, per-user
    consumption (a whole-enterprise row) never. The billing cycle and the ACU limits are
    read by every replica (see `billing_targets`).
    """
    orgs = settings.polled_organizations
    targets: list[Target] = []
    for row in _ORG_ROWS:
        if row.group is None or not settings.enabled(row.group):
            continue
        interval = settings.interval_of(row.group)
        for org in orgs:
            polled = _row_for(settings, row, org)
            if polled is None:
                continue
            v2 = polled.name == row.v2_twin
            key = settings.devin.enterprise_key if v2 else settings.key_for(org)
            if key is not None:
                targets.append(Target(polled, org.id, key, interval))
    if settings.enabled("sessions"):
        targets += _segment_targets(settings, orgs)
    keys = _enterprise_keys(settings)
    for row in _ENTERPRISE_ROWS:
        key = keys.get(row.key)
        if row.group is None or key is None or not settings.enabled(row.group):
            continue
        interval = settings.interval_of(row.group)
        if settings.sharding.owns_enterprise:
            targets.append(Target(row, "", key, interval))
        if row.key == "enterprise_admin" and not row.whole_enterprise:  # v2 sessions: per org too
            targets += [Target(row, o.id, key, interval) for o in orgs]
    return targets + billing_targets(settings)


def billing_targets(settings: Settings) -> list[Target]:
    """The billing cycle from its source and the ACU limits, whichever keys can read them.

    Every replica reads them (a listing each): its own `cycle` windows need the cycle, and
    its own organisations' limits are in the lists. The v3 rows need the enterprise service
    user key; without it the v2 rows need the enterprise admin key.
    """
    targets = []
    source = settings.cycle_source
    if source in CYCLE_ROWS:
        row = CYCLE_ROWS[source]
        key = _enterprise_keys(settings)[row.key]
        if key is not None:
            targets.append(Target(row, "", key, settings.interval_of("billing_cycles")))
    if settings.enabled("acu_limits"):
        for kind, key in _enterprise_keys(settings).items():
            if key is not None:
                interval = settings.interval_of("acu_limits")
                targets += [Target(row, "", key, interval) for row in LIMIT_ROWS[kind]]
                break  # the v3 key, or else the v2 one
    return targets


def _enterprise_keys(settings: Settings) -> dict[str, SecretStr | None]:
    """The enterprise keys by kind, v3 first."""
    return {
        "enterprise_service_user": settings.devin.enterprise_service_user_key,
        "enterprise_admin": settings.devin.enterprise_key,
    }


def _row_for(settings: Settings, row: Endpoint[Any], org: Organization) -> Endpoint[Any] | None:
    """Which row answers for `org`: its own, its enterprise twin, or its v2 twin; None if
    no configured key sees it through this row."""
    if settings.key_for(org) is None:  # only the enterprise admin key sees it
        if row.v2_twin is None or settings.devin.enterprise_key is None:
            return None
        return ENDPOINTS[row.v2_twin]
    if settings.through_enterprise(org):
        return ENDPOINTS[row.twin] if row.twin is not None else None
    return row


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
            Target(SEGMENTED, o.id, key, interval, segment.name, filters)
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
            tuple(w.label for w in strategy_of(t.row).windows(windows)),
            strategy_of(t.row).requests_per_poll(windows),
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
