"""The demo Devin API held to Devin's vendored contract, as a real server on loopback:
every answer validates against its operation's schema, and every request the contract
does not document is refused (stricter than Devin, so that it cannot agree with a client
bug)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from exporter.demo.account import DemoAccount
from exporter.demo.app import DemoAPI
from exporter.devin.spec import Contract, Operation
from exporter.devin.table import ACTIVE_USER_PERIODS, ROWS, Call, Endpoint
from exporter.web.listener import listen

T = 1_790_000_000
DAY = 86400
CONTRACT = Contract.load()

# Every row once, and the dau/wau/mau rows once per period.
CASES = [
    (row, period)
    for row in ROWS
    for period in (ACTIVE_USER_PERIODS if "{period}" in row.path else (None,))
]


def case_id(case: tuple[Endpoint[Any], str | None]) -> str:
    row, period = case
    return f"{row.name}-{period}" if period else row.name


@pytest.fixture(scope="module")
def account() -> DemoAccount:
    return DemoAccount.generate(2, seed=3)


@pytest.fixture
async def http(account: DemoAccount) -> AsyncIterator[httpx.AsyncClient]:
    listener = await listen(DemoAPI(account, clock=lambda: float(T)).app(), "127.0.0.1:0")
    try:
        async with httpx.AsyncClient(base_url=listener.url, timeout=10) as client:
            yield client
    finally:
        await listener.close()


def key_for(row: Endpoint[Any], account: DemoAccount) -> str:
    return {
        "service_user": account.service_user_key,
        "enterprise_service_user": account.enterprise_service_user_key,
        "enterprise_admin": account.enterprise_key,
    }[row.key]


def request_of(
    row: Endpoint[Any], period: str | None, account: DemoAccount
) -> tuple[str, Call, Operation]:
    asks_org = (row.per_org_path or "org_ids" in row.params) and not row.whole_enterprise
    org = account.orgs[0].id if asks_org else ""
    timed = row.shape in ("window", "daily", "periods", "users")
    call = row.call(org, T - 7 * DAY if timed else None, T if timed else None, period=period)
    url = row.url(call)
    operation = CONTRACT.operation(url)
    assert operation is not None
    return url, call, operation


@pytest.mark.parametrize("case", CASES, ids=case_id)
async def test_every_answer_validates_against_its_operation(
    http: httpx.AsyncClient, account: DemoAccount, case: tuple[Endpoint[Any], str | None]
) -> None:
    row, period = case
    url, call, operation = request_of(row, period, account)

    response = await http.get(
        url, params=dict(call.params), headers={"Authorization": f"Bearer {key_for(row, account)}"}
    )

    assert 200 == response.status_code, response.text
    assert [] == operation.check_response(200, response.json())


@pytest.mark.parametrize("case", CASES, ids=case_id)
async def test_an_undocumented_parameter_is_refused_with_a_422(
    http: httpx.AsyncClient, account: DemoAccount, case: tuple[Endpoint[Any], str | None]
) -> None:
    row, period = case
    url, call, operation = request_of(row, period, account)
    params = {**call.params, "org_id": "org-x"}  # a plausible mistake; documented nowhere

    response = await http.get(
        url, params=params, headers={"Authorization": f"Bearer {key_for(row, account)}"}
    )

    assert 422 == response.status_code
    assert [] == operation.check_response(422, response.json())
    assert [["query", "org_id"]] == [item["loc"] for item in response.json()["detail"]]


@pytest.mark.parametrize(
    "row", [row for row in ROWS if "time_after" in row.params], ids=lambda row: row.name
)
async def test_a_time_bound_that_is_not_an_integer_is_refused(
    http: httpx.AsyncClient, account: DemoAccount, row: Endpoint[Any]
) -> None:
    url, call, _ = request_of(
        row, ACTIVE_USER_PERIODS[0] if "{period}" in row.path else None, account
    )

    response = await http.get(
        url,
        params={**call.params, "time_after": "2026-01-01"},
        headers={"Authorization": f"Bearer {key_for(row, account)}"},
    )

    assert (422, "int_parsing") == (response.status_code, response.json()["detail"][0]["type"])


async def test_the_enterprise_wide_consumption_takes_no_org_filter(
    http: httpx.AsyncClient, account: DemoAccount
) -> None:
    """The N-fold over-count: an `org_ids` on the enterprise-wide route is refused, not
    silently ignored, so no client can believe it got one organisation's ACUs."""
    response = await http.get(
        "/v3/enterprise/consumption/daily",
        params={"org_ids": account.orgs[0].id},
        headers={"Authorization": f"Bearer {account.enterprise_service_user_key}"},
    )

    assert (422, ["query", "org_ids"]) == (
        response.status_code,
        response.json()["detail"][0]["loc"],
    )


async def test_per_organisation_consumption_is_a_share_of_the_enterprise_total(
    http: httpx.AsyncClient, account: DemoAccount
) -> None:
    headers = {"Authorization": f"Bearer {account.enterprise_service_user_key}"}
    window = {"time_after": T - 7 * DAY, "time_before": T}
    total = (
        await http.get("/v3/enterprise/consumption/daily", params=window, headers=headers)
    ).json()["total_acus"]
    per_org = [
        (
            await http.get(
                f"/v3/enterprise/consumption/daily/organizations/{org.id}",
                params=window,
                headers=headers,
            )
        ).json()["total_acus"]
        for org in account.orgs
    ]

    assert all(0 < acus < total for acus in per_org)
    assert total == pytest.approx(sum(per_org), abs=0.01)
