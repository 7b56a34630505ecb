"""Injected faults: each hits its own row and organisation, and does what it says."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from exporter.devin.client import DevinClient
from exporter.devin.errors import DevinAPIError
from exporter.devin.models import (
    ActiveUsersSeries,
    SessionMetrics,
)
from exporter.devin.retries import RetryPolicy
from exporter.devin.table import ENDPOINTS

from .served import (
    DAY,
    Served,
    T,
    iso,
)


async def test_a_500_fault_twice_fails_two_requests_then_answers(served: Served) -> None:
    await served.add_faults(served.org, [{"status": 500, "times": 2}])

    statuses = [(await served.v3()).status_code for _ in range(3)]

    assert statuses == [500, 500, 200]


async def test_a_fault_hits_only_its_own_org(served: Served) -> None:
    other = served.account.orgs[1].id
    await served.add_faults(served.org, [{"status": 503}])

    assert [(await served.v3(o)).status_code for o in (served.org, other)] == [503, 200]


async def test_a_429_fault_sends_retry_after(served: Served) -> None:
    await served.add_faults(served.org, [{"status": 429, "retry_after": "7", "times": 1}])

    response = await served.v3()

    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")


@pytest.mark.parametrize("kind", ["malformed", "truncated"])
async def test_broken_body_faults_fail_validation(served: Served, kind: str) -> None:
    await served.add_faults(served.org, [{"body": kind, "times": 1}])

    response = await served.v3()

    assert response.status_code == 200
    with pytest.raises(ValidationError):
        SessionMetrics.model_validate_json(response.content)


async def test_a_missing_fields_fault_leaves_the_first_and_last_fields_out(served: Served) -> None:
    await served.add_faults(served.org, [{"body": "missing_fields", "times": 1}])

    response = await served.v3()

    parsed = SessionMetrics.model_validate_json(response.content)
    assert ["sessions_created_count", "avg_acus_per_session"] == parsed.missing()


async def test_extra_fields_fault_still_validates(served: Served) -> None:
    clean = (await served.v3()).json()
    await served.add_faults(served.org, [{"body": "extra_fields", "times": 1}])

    response = await served.v3()

    assert response.json()["note"] == "added"
    assert SessionMetrics.model_validate_json(response.content) == SessionMetrics.model_validate(
        clean
    )


async def test_new_keys_fault_still_validates_and_keeps_the_new_keys(served: Served) -> None:
    await served.add_faults(served.org, [{"body": "new_keys", "times": 1}])

    metrics = SessionMetrics.model_validate_json((await served.v3()).content)

    assert metrics.sessions_created_by_origin["devin_cli"] == 2
    assert metrics.sessions_created_by_size["xxl"] == 2


async def test_a_v2_fault_without_org_ids_targets_the_org_empty_string(served: Served) -> None:
    entry = {"endpoint": "v2_enterprise_sessions", "org": "", "faults": [{"status": 502}]}
    await served.http.post("/_demo/faults", json=entry)

    unfiltered = await served.v2({"start": iso(T - DAY)})
    filtered = await served.v2({"start": iso(T - DAY), "org_ids": [served.org]})

    assert (unfiltered.status_code, filtered.status_code) == (502, 200)


async def test_a_fault_on_org_prs_hits_prs_only(served: Served) -> None:
    entry = {"endpoint": "v3_org_prs", "org": served.org, "faults": [{"status": 503}]}
    await served.http.post("/_demo/faults", json=entry)

    prs = await served.org_get("/v3/organizations/{org}/metrics/prs")
    sessions = await served.org_get("/v3/organizations/{org}/metrics/sessions")

    assert (503, 200) == (prs.status_code, sessions.status_code)


async def test_a_fault_on_enterprise_organizations_targets_org_empty_string(
    served: Served,
) -> None:
    entry = {"endpoint": "v3_enterprise_organizations", "org": "", "faults": [{"status": 500}]}
    await served.http.post("/_demo/faults", json=entry)
    client = DevinClient(served.http, retry=RetryPolicy(attempts=1))

    with pytest.raises(DevinAPIError) as caught:
        await client.pages(
            ENDPOINTS["v3_enterprise_organizations"],
            SecretStr(served.account.enterprise_service_user_key),
        )

    assert ("server_error", 500) == (caught.value.reason, caught.value.status)


async def test_a_missing_fields_fault_breaks_each_bucket(served: Served) -> None:
    entry = {
        "endpoint": "v3_org_active_user_buckets",
        "org": served.org,
        "faults": [{"body": "missing_fields", "times": 1}],
    }
    await served.http.post("/_demo/faults", json=entry)

    response = await served.org_get("/v3/organizations/{org}/metrics/wau")

    assert 200 == response.status_code
    with pytest.raises(ValidationError):
        ActiveUsersSeries.model_validate_json(response.content)
