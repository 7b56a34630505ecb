"""A hand-made snapshot holding a value of every kind a metric family renders.

Small on purpose: one or two organisations, a window or two, a segment, a value Devin
left null. The golden expositions under golden/ are rendered from it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr

from exporter.config import Organization
from exporter.devin.models import (
    ActiveUsers,
    AcuLimit,
    BillingCycle,
    EnterpriseSessions,
    PrMetrics,
    SearchMetrics,
    SessionMetrics,
    SessionsByCategory,
    UsageMetrics,
    V2PrMetrics,
)
from exporter.devin.table import ENDPOINTS
from exporter.metrics.view import Billing, View
from exporter.polling.attribution import UserAcus
from exporter.polling.backoff import AuthBackoff
from exporter.polling.live import ActiveState, FinishedCount, Histogram, LiveSessions, RepoCount
from exporter.polling.snapshot import Sample, Snapshot, WindowState
from exporter.polling.strategies import AcuLimits, ConsumedAcus, LatestActiveUsers, OrgLimits
from exporter.polling.targets import Target
from exporter.windows import Window

NOW = 1_790_000_000.0
KEY = SecretStr("cog_golden")


def _target(endpoint: str, org: str = "org-a", segment: str = "") -> Target:
    return Target(ENDPOINTS[endpoint], org, KEY, interval_seconds=300.0, segment=segment)


def _values() -> list[tuple[Target, str, BaseModel]]:
    sessions: dict[str, Any] = {
        "sessions_created_count": 12,
        "sessions_created_by_size": {"xs": 5, "s": 4, "m": 3},
        "sessions_created_by_origin": {"slack": 7, "webapp": 5},
        "sessions_created_with_playbook_count": 2,
        "sessions_created_with_search_count": 3,
        "sessions_with_merged_prs_count": 4,
        "sessions_with_merged_prs_by_size": {"s": 1, "m": 3},
        "avg_acus_per_session": 2.5,
    }
    live = LiveSessions(
        active=(
            ActiveState(
                status="running", status_detail="working", sessions=2, oldest_updated_at=NOW - 90
            ),
            ActiveState(
                status="running", status_detail="finished", sessions=1, oldest_updated_at=NOW - 30
            ),
        ),
        finished=(
            FinishedCount(origin="slack", status="exit", sessions=3),
            FinishedCount(origin="webapp", status="finished", sessions=1),
        ),
        acus=(
            Histogram(
                origin="slack", bucket_counts=(1, 2, 0, 0, 0, 0, 0, 0, 0), count=3, total=4.5
            ),
        ),
        durations=(
            Histogram(
                origin="slack", bucket_counts=(0, 3, 0, 0, 0, 0, 0, 0, 0), count=3, total=2400.0
            ),
        ),
        tracked_sessions=7,
        by_repo=(
            RepoCount(repo="", sessions=1, acus=0.5),
            RepoCount(repo="github.com/acme/api", sessions=2, acus=3.5),
            RepoCount(repo="other", sessions=1, acus=1.0),
        ),
    )
    return [
        (_target("v3_org_sessions"), "24h", SessionMetrics.model_validate(sessions)),
        # A value Devin left null: only its own series goes missing.
        (
            _target("v3_org_sessions", "org-b"),
            "24h",
            SessionMetrics.model_validate({**sessions, "avg_acus_per_session": None}),
        ),
        (
            _target("v3_org_sessions", segment="platform-team"),
            "24h",
            SessionMetrics.model_validate({**sessions, "sessions_created_count": 5}),
        ),
        (_target("v2_enterprise_sessions", ""), "24h", EnterpriseSessions(sessions_count=30)),
        (_target("v2_enterprise_sessions", "org-b"), "24h", EnterpriseSessions(sessions_count=9)),
        (
            _target("v3_org_prs"),
            "7d",
            PrMetrics.model_validate(
                {
                    "prs_created_count": 6,
                    "prs_opened_count": 2,
                    "prs_closed_count": 1,
                    "prs_merged_count": 3,
                }
            ),
        ),
        (
            _target("v2_enterprise_prs", "org-b"),
            "7d",
            V2PrMetrics.model_validate({"prs_opened": 4, "prs_closed": 0, "prs_merged": 2}),
        ),
        (
            _target("v3_org_searches"),
            "7d",
            SearchMetrics.model_validate({"searches_created_count": 11}),
        ),
        (_target("v3_org_active_users"), "7d", ActiveUsers(active_users=8)),
        (
            _target("v3_org_active_user_buckets"),
            "dau",
            LatestActiveUsers(active_users=5, start_time=NOW - 2 * 86400, end_time=NOW - 86401),
        ),
        (
            _target("v3_org_consumption_daily"),
            "7d",
            ConsumedAcus(by_product={"devin": 120.5, "cascade": 3.25, "terminal": 0.0}),
        ),
        (
            _target("v3_org_consumption_daily"),
            "cycle",
            ConsumedAcus(by_product={"devin": 358.375, "cascade": 1.5}),
        ),
        (
            _target("v3_enterprise_consumption_cycles", ""),
            "cycle",
            BillingCycle(start=int(NOW - 10 * 86400), end=int(NOW + 20 * 86400)),
        ),
        (
            _target("v3_enterprise_sessions_by_category", ""),
            "7d",
            SessionsByCategory.model_validate(
                {
                    "categories": [
                        {"category": "bug_fix", "sessions_count": 9, "acus": 20.5},
                        {"category": "feature", "sessions_count": 4, "acus": 31.0},
                    ]
                }
            ),
        ),
        (
            _target("v3_org_usage"),
            "7d",
            UsageMetrics.model_validate(
                {
                    "sessions_count": 14,
                    "searches_count": 11,
                    "prs_created_count": 6,
                    "prs_merged_count": 3,
                }
            ),
        ),
        (_target("v3_org_sessions_list"), "", live),
        (
            _target("v2_enterprise_user_consumption", ""),
            "7d",
            UserAcus(
                by_label={"user_a": 60.0, "other": 30.0, "unattributed": 10.0},
                total=100.0,
                users=7,
            ),
        ),
        (
            _target("v3_enterprise_acu_limits", ""),
            "limits",
            AcuLimits(
                items=[
                    AcuLimit(cycle_acu_limit=20000.0, scope="enterprise"),
                    AcuLimit(cycle_acu_limit=5000.0, scope="org", org_id="org-a"),
                    AcuLimit(cycle_acu_limit=None, scope="org", org_id="org-b"),  # no limit
                    AcuLimit(cycle_acu_limit=10.0, scope="user", user_id="user-1"),
                ]
            ),
        ),
        (
            _target("v3_enterprise_organizations", ""),
            "limits",
            OrgLimits(
                cycle={"org-a": 5000.0, "org-b": None},
                session={"org-a": 50.0, "org-b": None},
            ),
        ),
    ]


def view() -> View:
    """The hand-made snapshot, every sample fetched a minute before `NOW`."""
    values = _values()
    targets = tuple(dict.fromkeys(t for t, _, _ in values))
    samples = {(t, w): Sample(v, NOW - 60) for t, w, v in values}
    states = {
        (t, w): WindowState(last_success=NOW - 60, last_attempt=NOW - 60) for t, w, _ in values
    }
    failing = _target("v3_org_sessions", "org-c")
    states[failing, "24h"] = WindowState(
        last_error="forbidden",
        last_attempt=NOW - 60,
        last_failure="forbidden",
        last_failure_at=NOW - 60,
        last_failure_status=403,
    )
    snapshot = Snapshot(
        version=1,
        targets=(*targets, failing),
        windows=tuple(Window.parse(w) for w in ("24h", "7d")),
        samples=samples,
        states=states,
        up={**dict.fromkeys(targets, True), failing: False},
        backoff={failing: AuthBackoff("forbidden", 1, NOW + 600)},
        cycle=(NOW - 10 * 86400, NOW + 20 * 86400),
    )
    organizations = (
        Organization(id="org-a", name="Platform"),
        Organization(id="org-b"),
        Organization(id="org-c", name="Payments"),
    )
    return View(
        snapshot,
        organizations,
        stale_after_seconds=900.0,
        now=NOW,
        billing=Billing(acu_price=2.25, currency="EUR"),
    )
