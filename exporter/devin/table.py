"""Every Devin endpoint the exporter calls, one row each.

The client, the plan, `once --explain`, the demo API's routes and docs/endpoints.md read
these rows. `exporter/devin/contract/` holds Devin's published contract: the operation of
each row's path cites the reference page it follows, and the tests check the rows, every
request the client can send and every answer of the demo against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from exporter.devin.models import (
    ActiveUsers,
    ActiveUsersSeries,
    AcuLimit,
    BillingCycle,
    BillingCycles,
    CursorPage,
    DailyConsumption,
    EnterpriseSessions,
    OffsetPage,
    OrganizationSummary,
    PrMetrics,
    SearchMetrics,
    SessionItem,
    SessionMetrics,
    SessionsByCategory,
    UsageMetrics,
    V2PrMetrics,
)

Model = TypeVar("Model", bound=BaseModel)

Scope = Literal["organization", "enterprise"]
"""Whose data an answer holds: one organisation's (by path or `org_ids`), or the enterprise's."""
KeyKind = Literal["service_user", "enterprise_service_user", "enterprise_admin"]
"""`cog_` service user of an org, `cog_` service user with enterprise permissions, `apk_user_`."""
Shape = Literal["window", "daily", "periods", "cycles", "limits", "list", "live", "users"]
"""How the poller asks: once per window; daily buckets once per poll; dau/wau/mau buckets;
billing cycles (every page); ACU limits (every page); a list followed page by page
(discovery, and the organisations' limits); the session list followed incrementally from
the previous poll (live session state); per-user consumption once per consumption window."""
Pagination = Literal["none", "cursor", "offset"]

ACTIVE_USER_PERIODS = ("dau", "wau", "mau")
"""The `{period}` of the dau/wau/mau paths: UTC days, Monday-start UTC weeks, UTC months."""

PageModel = CursorPage[Any] | OffsetPage[Any]


@dataclass(frozen=True)
class Call:
    """One request as the contract names it: the path's parameters and the query's."""

    path: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint(Generic[Model]):
    """One Devin endpoint: a row of the table."""

    name: str  # the `endpoint` label value
    version: Literal["v2", "v3"]
    path: str  # template: `{org_id}`, and `{period}` for dau/wau/mau
    scope: Scope
    key: KeyKind
    permission: str  # as the reference page names it
    params: frozenset[str]  # every query parameter the contract documents
    model: type[Model]
    shape: Shape
    group: str | None  # its group under `endpoints:` in the config; None: not a group's
    twin: str | None = None  # the enterprise endpoint that answers for one org by `org_ids`
    v2_twin: str | None = None  # the v2 endpoint for orgs only an enterprise admin key sees
    pagination: Pagination = "none"
    # The product that ACUs without a product split are, in an answer for one
    # organisation; None: `unattributed`.
    org_product: str | None = None
    # The permission as other copies of the reference page spell it (x-permission-also).
    permission_also: tuple[str, ...] = ()
    # Asked for the enterprise as a whole, never for one organisation: a row that shares
    # its path with an organisation's use of the same endpoint (by `org_ids`).
    whole_enterprise: bool = False

    @property
    def permissions(self) -> str:
        """The permission in every spelling Devin's pages use: what an operator grants."""
        return " or ".join((self.permission, *self.permission_also))

    @property
    def per_org_path(self) -> bool:
        return "{org_id}" in self.path

    def url(self, call: Call) -> str:
        """The path with its parameters filled in."""
        return self.path.format_map(call.path)

    def call(
        self,
        org: str = "",
        start: float | None = None,
        end: float | None = None,
        filters: Sequence[tuple[str, Sequence[str]]] = (),
        *,
        period: str | None = None,
    ) -> Call:
        """The request for one org ("" for the whole enterprise) over [start, end].

        The org goes into the path where the path names it, else into `org_ids`; times are
        Unix seconds in v3 and RFC 3339 in v2; `filters` (segments) pass through by name.
        """
        path: dict[str, str] = {}
        params: dict[str, Any] = {}
        if org and self.whole_enterprise:
            raise ValueError(f"{self.name} is asked for the whole enterprise, not for {org}")
        if self.per_org_path:
            if not org:
                raise ValueError(f"{self.name} needs an organisation")
            path["org_id"] = org
        elif org:
            params["org_ids"] = [org]
        if ("{period}" in self.path) != (period is not None):
            raise ValueError(f"{self.name}: a period goes with a {{period}} path, and only there")
        if period is not None:
            path["period"] = period
        if self.version == "v3":
            if start is not None:
                params["time_after"] = int(start)
            if end is not None:
                params["time_before"] = int(end)
        else:
            if start is not None:
                params["start"] = rfc3339(start)
            if end is not None:
                params["end"] = rfc3339(end)
        for name, values in filters:
            if values:
                params[name] = values[0] if name == "playbook_id" else list(values)
        unknown = set(params) - self.params
        if unknown:
            raise ValueError(f"{self.name} takes no {', '.join(sorted(unknown))}")
        return Call(path, params)

    def range_of(self, call: Call) -> tuple[float | None, float | None]:
        """The [start, end] a call asks for (None where it leaves a bound open)."""
        if self.version == "v3":
            after, before = call.params.get("time_after"), call.params.get("time_before")
            return (
                None if after is None else float(after),
                None if before is None else float(before),
            )
        start, end = call.params.get("start"), call.params.get("end")
        return (
            None if start is None else _from_rfc3339(start),
            None if end is None else _from_rfc3339(end),
        )

    def ranged(self, call: Call, start: float, end: float) -> Call:
        """The same call over [start, end] instead."""
        if self.version == "v3":
            bounds: dict[str, Any] = {"time_after": int(start), "time_before": int(end)}
        else:
            bounds = {"start": rfc3339(start), "end": rfc3339(end)}
        kept = {k: v for k, v in call.params.items() if k not in RANGE_PARAMS}
        return Call(call.path, {**kept, **bounds})


def _from_rfc3339(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def rfc3339(timestamp: float) -> str:
    """`2026-11-21T23:00:00Z`: the v2 API's date-time parameters."""
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_V3_RANGE = frozenset({"time_after", "time_before"})
_V2_RANGE = frozenset({"start_date", "end_date", "start", "end"})
RANGE_PARAMS = _V3_RANGE | _V2_RANGE
"""The query parameters that bound a request's time range, in v3 and v2."""
_SESSION_FILTERS = frozenset({"user_ids", "service_user_ids", "playbook_id"})
_ACTIVE_THRESHOLDS = frozenset({"min_sessions", "min_searches"})
_ORG_IDS = frozenset({"org_ids"})
_CURSOR = frozenset({"first", "after"})
_SESSION_LIST = _CURSOR | frozenset(
    {
        "session_ids",
        "created_after",
        "created_before",
        "updated_after",
        "updated_before",
        "tags",
        "playbook_id",
        "origins",
        "schedule_id",
    }
)

_ORG = "/v3/organizations/{org_id}"

ROWS: tuple[Endpoint[Any], ...] = (
    # Organisation endpoints (v3): a service user key with the org-level permission.
    Endpoint(
        "v3_org_sessions",
        "v3",
        f"{_ORG}/metrics/sessions",
        "organization",
        "service_user",
        "ViewOrgMetrics",
        _V3_RANGE | _SESSION_FILTERS,
        SessionMetrics,
        "window",
        "sessions",
        twin="v3_enterprise_sessions",
        permission_also=("ViewAccountMetrics",),
    ),
    Endpoint(
        "v3_org_prs",
        "v3",
        f"{_ORG}/metrics/prs",
        "organization",
        "service_user",
        "ViewOrgMetrics",
        _V3_RANGE | _SESSION_FILTERS,
        PrMetrics,
        "window",
        "prs",
        twin="v3_enterprise_prs",
        v2_twin="v2_enterprise_prs",
        permission_also=("ViewAccountMetrics",),
    ),
    Endpoint(
        "v3_org_searches",
        "v3",
        f"{_ORG}/metrics/searches",
        "organization",
        "service_user",
        "ViewOrgMetrics",
        _V3_RANGE,
        SearchMetrics,
        "window",
        "searches",
        twin="v3_enterprise_searches",
        permission_also=("ViewAccountMetrics",),
    ),
    Endpoint(
        "v3_org_active_users",
        "v3",
        f"{_ORG}/metrics/active-users",
        "organization",
        "service_user",
        "ViewOrgMetrics",
        _V3_RANGE | _ACTIVE_THRESHOLDS,
        ActiveUsers,
        "window",
        "active_users",
        twin="v3_enterprise_active_users",
        permission_also=("ViewAccountMetrics",),
    ),
    Endpoint(
        "v3_org_active_user_buckets",
        "v3",
        f"{_ORG}/metrics/{{period}}",
        "organization",
        "service_user",
        "ViewOrgMetrics",
        _V3_RANGE | _ACTIVE_THRESHOLDS,
        ActiveUsersSeries,
        "periods",
        "active_user_buckets",
        twin="v3_enterprise_active_user_buckets",
        permission_also=("ViewAccountMetrics",),
    ),
    Endpoint(
        "v3_org_consumption_daily",
        "v3",
        f"{_ORG}/consumption/daily",
        "organization",
        "service_user",
        "ViewOrgConsumption",
        _V3_RANGE,
        DailyConsumption,
        "daily",
        "consumption",
        twin="v3_enterprise_org_consumption_daily",
        v2_twin="v2_enterprise_consumption_daily",
        permission_also=("ManageBilling",),
    ),
    Endpoint(
        "v3_org_usage",
        "v3",
        f"{_ORG}/metrics/usage",
        "organization",
        "service_user",
        "ViewOrgMetrics",
        _V3_RANGE,
        UsageMetrics,
        "window",
        "usage",
        twin="v3_enterprise_org_usage",
        permission_also=("ViewAccountMetrics",),
    ),
    Endpoint(
        "v3_org_sessions_list",
        "v3",
        f"{_ORG}/sessions",
        "organization",
        "service_user",
        "ViewOrgSessions",
        _SESSION_LIST,
        CursorPage[SessionItem],
        "live",
        "sessions_live",
        twin="v3_enterprise_sessions_list",
        pagination="cursor",
    ),
    # Enterprise endpoints (v3): a service user with enterprise-level permissions. For an
    # org without a key of its own they answer for it through `org_ids` or the path.
    Endpoint(
        "v3_enterprise_sessions",
        "v3",
        "/v3/enterprise/metrics/sessions",
        "enterprise",
        "enterprise_service_user",
        "ViewAccountMetrics",
        _V3_RANGE | _SESSION_FILTERS | _ORG_IDS,
        SessionMetrics,
        "window",
        "sessions",
    ),
    Endpoint(
        "v3_enterprise_prs",
        "v3",
        "/v3/enterprise/metrics/prs",
        "enterprise",
        "enterprise_service_user",
        "ViewAccountMetrics",
        _V3_RANGE | _SESSION_FILTERS | _ORG_IDS,
        PrMetrics,
        "window",
        "prs",
    ),
    Endpoint(
        "v3_enterprise_searches",
        "v3",
        "/v3/enterprise/metrics/searches",
        "enterprise",
        "enterprise_service_user",
        "ViewAccountMetrics",
        _V3_RANGE | _ORG_IDS,
        SearchMetrics,
        "window",
        "searches",
    ),
    Endpoint(
        "v3_enterprise_active_users",
        "v3",
        "/v3/enterprise/metrics/active-users",
        "enterprise",
        "enterprise_service_user",
        "ViewAccountMetrics",
        _V3_RANGE | _ACTIVE_THRESHOLDS | _ORG_IDS,
        ActiveUsers,
        "window",
        "active_users",
    ),
    Endpoint(
        "v3_enterprise_active_user_buckets",
        "v3",
        "/v3/enterprise/metrics/{period}",
        "enterprise",
        "enterprise_service_user",
        "ViewAccountMetrics",
        _V3_RANGE | _ACTIVE_THRESHOLDS | _ORG_IDS,
        ActiveUsersSeries,
        "periods",
        "active_user_buckets",
    ),
    Endpoint(
        "v3_enterprise_org_consumption_daily",
        "v3",
        "/v3/enterprise/consumption/daily/organizations/{org_id}",
        "enterprise",
        "enterprise_service_user",
        "ViewAccountConsumption",
        _V3_RANGE,
        DailyConsumption,
        "daily",
        "consumption",
        permission_also=("ManageBilling",),
    ),
    Endpoint(
        "v3_enterprise_consumption_daily",
        "v3",
        "/v3/enterprise/consumption/daily",
        "enterprise",
        "enterprise_service_user",
        "ViewAccountConsumption",
        _V3_RANGE,
        DailyConsumption,
        "daily",
        "consumption",  # enterprise-wide: devin_billing_cycle_acus_consumed{org=""}
        permission_also=("ManageBilling",),
    ),
    Endpoint(
        "v3_enterprise_usage",
        "v3",
        "/v3/enterprise/metrics/usage",
        "enterprise",
        "enterprise_service_user",
        "ViewAccountMetrics",
        _V3_RANGE,
        UsageMetrics,
        "window",
        "usage",
    ),
    Endpoint(
        "v3_enterprise_org_usage",
        "v3",
        "/v3/enterprise/organizations/{org_id}/metrics/usage",
        "enterprise",
        "enterprise_service_user",
        "ViewAccountMetrics",
        _V3_RANGE,
        UsageMetrics,
        "window",
        "usage",
    ),
    Endpoint(
        "v3_enterprise_sessions_by_category",
        "v3",
        "/v3/enterprise/metrics/sessions-by-category",
        "enterprise",
        "enterprise_service_user",
        "ViewAccountMetrics",
        _V3_RANGE | _ORG_IDS,
        SessionsByCategory,
        "window",
        "sessions_by_category",
    ),
    Endpoint(
        "v3_enterprise_consumption_cycles",
        "v3",
        "/v3/enterprise/consumption/cycles",
        "enterprise",
        "enterprise_service_user",
        "ViewAccountConsumption",
        _CURSOR,
        CursorPage[BillingCycle],
        "cycles",
        "billing_cycles",
        pagination="cursor",
        permission_also=("ManageBilling",),
    ),
    Endpoint(
        "v3_enterprise_acu_limits",
        "v3",
        "/v3/enterprise/consumption/acu-limits/devin",
        "enterprise",
        "enterprise_service_user",
        "ViewAccountConsumption",
        _CURSOR,
        CursorPage[AcuLimit],
        "limits",
        "acu_limits",
        pagination="cursor",
    ),
    Endpoint(
        "v3_enterprise_organizations",
        "v3",
        "/v3/enterprise/organizations",
        "enterprise",
        "enterprise_service_user",
        "ManageOrganizations",
        _CURSOR,
        CursorPage[OrganizationSummary],
        "list",
        "acu_limits",  # the organisations' ACU limits; discovery lists it too
        pagination="cursor",
    ),
    Endpoint(
        "v3_enterprise_sessions_list",
        "v3",
        "/v3/enterprise/sessions",
        "enterprise",
        "enterprise_service_user",
        "ViewAccountSessions",
        _SESSION_LIST | _ORG_IDS,
        CursorPage[SessionItem],
        "live",
        "sessions_live",
        pagination="cursor",
    ),
    # v2: an enterprise admin's personal key, for organisations no v3 key can see.
    Endpoint(
        "v2_enterprise_sessions",
        "v2",
        "/v2/enterprise/metrics/sessions",
        "enterprise",
        "enterprise_admin",
        "Enterprise Admin personal API key",
        _V2_RANGE | frozenset({"org_ids", "user_ids"}),
        EnterpriseSessions,
        "window",
        "enterprise_sessions",
    ),
    Endpoint(
        "v2_enterprise_prs",
        "v2",
        "/v2/enterprise/metrics/prs",
        "enterprise",
        "enterprise_admin",
        "Enterprise Admin personal API key",
        _V2_RANGE | frozenset({"org_ids", "user_ids"}),
        V2PrMetrics,
        "window",
        "prs",
    ),
    Endpoint(
        "v2_enterprise_consumption_daily",
        "v2",
        "/v2/enterprise/consumption/daily",
        "enterprise",
        "enterprise_admin",
        "Enterprise Admin personal API key",
        _V2_RANGE | _ORG_IDS,
        DailyConsumption,
        "daily",
        "consumption",
        # "When filtering by org_ids, only Devin session ACUs are included" (Cascade and
        # Terminal are tied to no organisation):
        # https://docs.devin.ai/api-reference/v2/consumption/daily-consumption
        org_product="devin",
    ),
    # The same endpoint without `org_ids`: the enterprise's ACUs by user (every product;
    # `consumption_by_user`), one request per consumption window.
    Endpoint(
        "v2_enterprise_user_consumption",
        "v2",
        "/v2/enterprise/consumption/daily",
        "enterprise",
        "enterprise_admin",
        "Enterprise Admin personal API key",
        _V2_RANGE | _ORG_IDS,
        DailyConsumption,
        "users",
        "user_consumption",
        whole_enterprise=True,
    ),
    Endpoint(
        "v2_enterprise_consumption_cycles",
        "v2",
        "/v2/enterprise/consumption/cycles",
        "enterprise",
        "enterprise_admin",
        "Enterprise Admin personal API key",
        frozenset(),
        BillingCycles,
        "cycles",
        "billing_cycles",
    ),
    Endpoint(
        "v2_enterprise_organizations",
        "v2",
        "/v2/enterprise/organizations",
        "enterprise",
        "enterprise_admin",
        "Enterprise Admin personal API key",
        frozenset({"skip", "limit"}),
        OffsetPage[OrganizationSummary],
        "list",
        "acu_limits",  # the organisations' ACU limits; discovery lists it too
        pagination="offset",
    ),
)

ENDPOINTS: dict[str, Endpoint[Any]] = {row.name: row for row in ROWS}

# The rows the exporter picks by role, named here once: the organisations' listings by the
# key that reads them (discovery), and the sessions row that segments slice by its filters.
ORG_LISTINGS: dict[KeyKind, Endpoint[Any]] = {row.key: row for row in ROWS if row.shape == "list"}
SEGMENTED = ENDPOINTS["v3_org_sessions"]
assert _SESSION_FILTERS <= SEGMENTED.params


def endpoint(name: str) -> Endpoint[Any]:
    """The row named `name`; a KeyError names it."""
    return ENDPOINTS[name]
