"""The loopback admin API: the fault plan, request counts, and organisations."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .served import (
    DAY,
    WINDOW,
    Served,
    T,
    iso,
)


async def test_an_invalid_fault_plan_is_422(served: Served) -> None:
    entry = {"endpoint": "v3_org_sessions", "faults": [{"status": 999}]}

    response = await served.http.post("/_demo/faults", json=entry)

    assert response.status_code == 422


async def test_requests_are_counted_per_endpoint_and_org(served: Served) -> None:
    for _ in range(3):
        await served.v3()
    await served.v2({"start": iso(T - DAY)})
    await served.v2({"start": iso(T - DAY), "org_ids": [served.org]})

    response = await served.http.get("/_demo/requests")

    assert response.json() == [
        {"endpoint": "v2_enterprise_sessions", "org": "", "requests": 1},
        {"endpoint": "v2_enterprise_sessions", "org": served.org, "requests": 1},
        {"endpoint": "v3_org_sessions", "org": served.org, "requests": 3},
    ]


async def test_deleting_faults_clears_them(served: Served) -> None:
    await served.add_faults(served.org, [{"status": 503}])
    before = await served.v3()

    cleared = await served.http.delete("/_demo/faults")
    after = await served.v3()

    assert (before.status_code, cleared.json(), after.status_code) == (503, {"ok": True}, 200)


async def test_the_account_endpoint_lists_the_orgs(served: Served) -> None:
    response = await served.http.get("/_demo/account")

    expected = [{"id": o.id, "name": o.name} for o in served.account.orgs]
    assert response.json() == {"orgs": expected}
    assert served.account.service_user_key not in json.dumps(response.json())


async def test_requests_to_new_endpoints_are_counted_under_their_names(served: Served) -> None:
    await served.org_get("/v3/organizations/{org}/metrics/dau")
    await served.org_get("/v3/organizations/{org}/metrics/mau")
    await served.ent_get("/v3/enterprise/consumption/cycles", {})

    counts = (await served.http.get("/_demo/requests")).json()

    assert [
        {"endpoint": "v3_enterprise_consumption_cycles", "org": "", "requests": 1},
        {"endpoint": "v3_org_active_user_buckets", "org": served.org, "requests": 2},
    ] == counts


async def test_an_added_org_is_listed_served_and_reachable_with_the_account_wide_keys(
    served: Served,
) -> None:
    added = await served.http.post("/_demo/orgs", json={"id": "org-new0001", "name": "New"})

    account = (await served.http.get("/_demo/account")).json()
    listed = (await served.ent_get("/v3/enterprise/organizations")).json()
    by_org_key = await served.org_get("/v3/organizations/{org}/metrics/prs", "org-new0001")
    by_account_key = await served.get(
        "/v3/organizations/org-new0001/metrics/sessions",
        served.account.enterprise_service_user_key,
        WINDOW,
    )

    assert {"ok": True} == added.json()
    assert {"id": "org-new0001", "name": "New"} in account["orgs"]
    assert "org-new0001" in [o["org_id"] for o in listed["items"]]
    assert (200, 200) == (by_org_key.status_code, by_account_key.status_code)
    assert by_account_key.json()["sessions_created_count"] > 0


async def test_a_removed_org_disappears_everywhere(served: Served) -> None:
    gone = served.orgs[1]

    removed = await served.http.delete(f"/_demo/orgs/{gone}")

    listed = (await served.ent_get("/v3/enterprise/organizations")).json()
    metrics = await served.org_get("/v3/organizations/{org}/metrics/sessions", gone)
    assert {"ok": True} == removed.json()
    assert gone not in [o["org_id"] for o in listed["items"]]
    assert 2 == listed["total"]
    assert 404 == metrics.status_code
    assert gone not in [o["id"] for o in (await served.http.get("/_demo/account")).json()["orgs"]]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"id": "org-demo0000", "name": "Again"}, 409),
        ({"id": "", "name": "Empty"}, 422),
        ({"id": "org-x", "name": "X", "extra": 1}, 422),
        ({"id": "org x/y", "name": "Slash"}, 422),
    ],
    ids=["duplicate", "empty-id", "unknown-field", "bad-characters"],
)
async def test_a_bad_new_org_is_refused(served: Served, body: dict[str, Any], status: int) -> None:
    response = await served.http.post("/_demo/orgs", json=body)

    assert status == response.status_code
    assert 3 == len(served.account.orgs)


async def test_removing_an_unknown_org_is_404(served: Served) -> None:
    response = await served.http.delete("/_demo/orgs/org-nope")

    assert 404 == response.status_code
