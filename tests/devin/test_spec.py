"""The endpoint table and every request the client can send, checked against Devin's
vendored contract (exporter/devin/contract/), not against our demo."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from conftest import MOCK_BASE_URL
from pydantic import SecretStr

from exporter.config import Settings, load_settings
from exporter.devin.client import DevinClient
from exporter.devin.ratelimit import KeyGates
from exporter.devin.retries import RetryPolicy
from exporter.devin.spec import Contract
from exporter.devin.table import ACTIVE_USER_PERIODS, ENDPOINTS, ROWS, Endpoint
from exporter.polling.discovery import list_organizations
from exporter.polling.plan import build_targets
from exporter.polling.strategies import Span, strategy_of
from exporter.windows import Window

NOW = 1_790_000_000.0
CONTRACT = Contract.load()
ORGS = [{"id": "org-aaa"}, {"id": "org-bbb"}]
WINDOWS = ["1h", "24h", "7d", "today", "cycle"]
SEGMENT = {
    "name": "team",
    "user_ids": ["user-1", "user-2"],
    "service_user_ids": ["su-1"],
    "playbook_id": "pb-1",
}
ALL_GROUPS = {
    group: {"enabled": True} for group in {row.group for row in ROWS if row.group is not None}
}


ROWS_OF_TEMPLATE: dict[str, list[Endpoint[Any]]] = {}
for _row in ROWS:  # two rows share a path when they use one endpoint two ways
    for _period in ACTIVE_USER_PERIODS if "{period}" in _row.path else ("",):
        ROWS_OF_TEMPLATE.setdefault(_row.path.replace("{period}", _period), []).append(_row)


def row_of(template: str, org_ids: bool) -> Endpoint[Any]:
    """The row a request to `template` is: the whole-enterprise one when it has no
    `org_ids`, where the path has one."""
    rows = ROWS_OF_TEMPLATE[template]
    return next((r for r in rows if r.whole_enterprise == (not org_ids)), rows[0])


def operation_of(row: Endpoint[Any]) -> Any:
    operation = CONTRACT.operation(row.path.replace("{period}", ACTIVE_USER_PERIODS[0]))
    assert operation is not None, f"{row.name}: {row.path} is not in the contract"
    return operation


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_each_row_names_exactly_the_query_parameters_its_operation_documents(
    row: Endpoint[Any],
) -> None:
    assert set(operation_of(row).parameters) == set(row.params)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_each_row_names_the_permission_its_operation_gives(row: Endpoint[Any]) -> None:
    permission = operation_of(row).spec.get("x-permission")
    if permission is None:  # the two seed specs predate x-permission
        pytest.skip("seed spec")
    assert permission.split(" (")[0] == row.permission
    assert tuple(operation_of(row).spec.get("x-permission-also", [])) == row.permission_also


def test_every_operation_of_the_contract_cites_its_reference_pages() -> None:
    uncited = [
        op.path
        for op in CONTRACT.operations
        if ("seed" not in op.document and not all(r.startswith("https://") for r in op.references))
        or ("seed" not in op.document and not op.references)
    ]
    seeds = {"/v3/organizations/{org_id}/metrics/sessions", "/v2/enterprise/metrics/sessions"}
    assert [] == [p for p in uncited if p not in seeds]


def test_every_row_is_one_operation_and_no_operation_is_left_without_a_row() -> None:
    assert set(CONTRACT.templates()) == set(ROWS_OF_TEMPLATE)


# Bodies just valid enough for each model, so that every strategy goes on to its next call.
_SESSIONS = {"sessions_created_count": 1, "avg_acus_per_session": 1.0}
_CONSUMPTION = {
    "total_acus": 1.0,
    "consumption_by_date": [{"date": int(NOW) - 86400, "acus": 1.0}],
}
_BODIES: dict[str, Any] = {
    "SessionMetrics": _SESSIONS,
    "EnterpriseSessions": {"sessions_count": 1},
    "PrMetrics": {"prs_created_count": 1},
    "V2PrMetrics": {"prs_opened": 1},
    "SearchMetrics": {"searches_created_count": 1},
    "ActiveUsers": {"active_users": 1},
    "ActiveUsersSeries": [{"active_users": 1, "start_time": 0, "end_time": 1}],
    "DailyConsumption": _CONSUMPTION,
    "UsageMetrics": {"sessions_count": 1},
    "SessionsByCategory": {"categories": []},
    "CursorPage[BillingCycle]": {"items": [{"after": 0, "before": int(NOW) + 1}]},
    "BillingCycles": [{"start": "2026-11-05T08:00:00Z", "end": "2099-12-05T07:59:59Z"}],
    "CursorPage[AcuLimit]": {"items": [{"cycle_acu_limit": 5000, "scope": "enterprise"}]},
    "CursorPage[OrganizationSummary]": {"items": [{"org_id": "org-ccc", "name": "C"}]},
    "OffsetPage[OrganizationSummary]": {"items": [{"org_id": "org-ccc", "org_name": "C"}]},
    "CursorPage[SessionItem]": {
        "items": [
            {
                "session_id": "s-1",
                "org_id": "org-aaa",
                "status": "exit",
                "acus_consumed": 2.5,
                "created_at": int(NOW) - 600,
                "updated_at": int(NOW) - 60,
            }
        ]
    },
}


class ContractCheck:
    """A MockTransport handler: checks each request against the contract, answers 200."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.endpoints: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        operation = CONTRACT.operation(request.url.path)
        if operation is None:
            self.problems.append(f"{request.url.path}: no such operation")
            return httpx.Response(404)
        query: dict[str, list[str]] = {}
        for name, value in request.url.params.multi_items():
            query.setdefault(name, []).append(value)
        self.problems += [
            f"{request.url.path} {p.loc}: {p.msg}" for p in operation.check_query(query)
        ]
        row = row_of(operation.path, "org_ids" in query)
        self.endpoints.add(row.name)
        return httpx.Response(200, content=json.dumps(_BODIES[row.model.__name__]))


@pytest.fixture
async def checked() -> AsyncIterator[tuple[DevinClient, ContractCheck]]:
    check = ContractCheck()
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(check), base_url=MOCK_BASE_URL
    ) as http:
        gates = KeyGates(requests_per_second=10_000, max_concurrency=64)
        yield DevinClient(http, gates=gates, retry=RetryPolicy(attempts=1)), check


def _settings(**devin: str) -> Settings:
    # Per-user consumption needs the enterprise admin key: a mode without it leaves it off.
    groups = ALL_GROUPS if "enterprise_key" in devin else {**ALL_GROUPS, "user_consumption": {}}
    return load_settings(
        None,
        devin={"base_url": MOCK_BASE_URL, **devin},
        organizations=ORGS,
        windows=WINDOWS,
        endpoints=groups,
        segments=[SEGMENT],
    )


MODES: dict[str, Callable[[], Settings]] = {
    # Each org with the service user's key; v2 and enterprise-wide rows with their keys.
    "org keys": lambda: _settings(
        service_user_key="cog_org",
        enterprise_key="apk_user_admin",
        enterprise_service_user_key="cog_enterprise",
    ),
    # No org key: every org through the enterprise twins.
    "enterprise mode": lambda: _settings(enterprise_service_user_key="cog_enterprise"),
    # Only the enterprise admin key: the v2 twins.
    "v2 only": lambda: _settings(enterprise_key="apk_user_admin"),
}


async def _poll_every_target(client: DevinClient, settings: Settings) -> None:
    windows = settings.windows
    for target in build_targets(settings):
        strategy = strategy_of(target.row)
        await strategy.fetch(client, target, strategy.windows(windows), Span(NOW))
    if settings.devin.enterprise_service_user_key or settings.devin.enterprise_key:
        await list_organizations(client, settings)


@pytest.mark.parametrize("mode", MODES)
async def test_every_request_of_every_mode_follows_the_contract(
    checked: tuple[DevinClient, ContractCheck], mode: str
) -> None:
    client, check = checked

    await _poll_every_target(client, MODES[mode]())

    assert [] == check.problems
    assert check.endpoints


async def test_between_them_the_modes_send_every_polled_row(
    checked: tuple[DevinClient, ContractCheck],
) -> None:
    client, check = checked

    for settings in MODES.values():
        await _poll_every_target(client, settings())

    polled = {row.name for row in ROWS if row.group is not None or row.shape == "list"}
    assert polled == check.endpoints & polled
    assert [] == check.problems


async def test_the_enterprise_total_row_follows_the_contract_too(
    checked: tuple[DevinClient, ContractCheck],
) -> None:
    client, check = checked
    row = ENDPOINTS["v3_enterprise_consumption_daily"]

    await client.fetch(row, SecretStr("cog_enterprise"), row.call("", NOW - 86400, NOW))

    assert ([], {row.name}) == (check.problems, check.endpoints)


def test_the_checker_refuses_what_the_contract_lacks() -> None:
    """The check above can fail: an undocumented name, a missing required one, a bad type."""
    operation = operation_of(ENDPOINTS["v3_enterprise_searches"])

    problems = operation.check_query(
        {"time_after": ["abc"], "user_ids": ["u-1"], "org_ids": ["org-a", "org-b"]}
    )

    assert [
        (("query", "user_ids"), "extra_forbidden"),
        (("query", "time_before"), "missing"),
        (("query", "time_after"), "int_parsing"),
    ] == sorted(((p.loc, p.type) for p in problems), key=lambda x: x[1] != "extra_forbidden")


def test_a_window_list_reaches_every_strategy() -> None:
    assert {"cycle"} <= {
        w.label
        for w in strategy_of(ENDPOINTS["v3_org_consumption_daily"]).windows([Window.parse("7d")])
    }
