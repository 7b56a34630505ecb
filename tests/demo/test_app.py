"""The demo Devin API as a real server on loopback: auth, validation, data, and faults."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import ValidationError

import exporter
from exporter.demo.account import DemoAccount, DemoOrg
from exporter.demo.app import DemoAPI
from exporter.devin.models import EnterpriseSessions, SessionMetrics
from exporter.web.listener import listen

T = 1_790_000_000  # the demo API's fixed "now"
DAY = 86400
V3 = "/v3/organizations/{org}/metrics/sessions"
V2 = "/v2/enterprise/metrics/sessions"
SPEC = (
    Path(exporter.__file__).parent
    / "devin"
    / "contract"
    / "devin-v3-org-metrics-sessions.openapi.yaml"
)


@dataclass
class Served:
    """A running demo API and an httpx client pointed at it."""

    api: DemoAPI
    http: httpx.AsyncClient

    @property
    def account(self) -> DemoAccount:
        return self.api.account

    @property
    def org(self) -> str:
        return self.account.orgs[0].id

    def cog(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.account.service_user_key}"}

    def apk(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.account.enterprise_key}"}

    async def v3(
        self, org: str | None = None, after: int = T - DAY, before: int = T
    ) -> httpx.Response:
        params = {"time_after": after, "time_before": before}
        return await self.http.get(
            V3.format(org=org or self.org), params=params, headers=self.cog()
        )

    async def v2(self, params: dict[str, Any]) -> httpx.Response:
        return await self.http.get(V2, params=params, headers=self.apk())

    async def add_faults(self, org: str, faults: list[dict[str, Any]]) -> None:
        entry = {"endpoint": "v3_org_sessions", "org": org, "faults": faults}
        response = await self.http.post("/_demo/faults", json=entry)
        assert response.json() == {"ok": True}


@asynccontextmanager
async def serve(account: DemoAccount) -> AsyncIterator[Served]:
    """Run the demo API for `account` on a free loopback port, its clock fixed at T."""
    api = DemoAPI(account, clock=lambda: float(T))
    listener = await listen(api.app(), "127.0.0.1:0")
    try:
        async with httpx.AsyncClient(base_url=listener.url, timeout=10) as http:
            yield Served(api, http)
    finally:
        await listener.close()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serve(DemoAccount.generate(3, seed=5, extra_origins=["github"])) as running:
        yield running


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def assert_http_validation_error(body: Any) -> None:
    """The body has the spec's HTTPValidationError shape: detail, a list of {loc, msg, type}."""
    schemas = yaml.safe_load(SPEC.read_text(encoding="utf-8"))["components"]["schemas"]
    assert list(schemas["HTTPValidationError"]["properties"]) == ["detail"]
    assert list(body) == ["detail"]
    assert isinstance(body["detail"], list)
    assert body["detail"]
    for item in body["detail"]:
        assert set(item) == set(schemas["ValidationError"]["required"])
        assert all(isinstance(part, str | int) for part in item["loc"])
        assert isinstance(item["msg"], str)
        assert isinstance(item["type"], str)


# Devin's auth rules.


@pytest.mark.parametrize("path", [V3.format(org="org-demo0000"), V2])
async def test_no_key_is_401(served: Served, path: str) -> None:
    response = await served.http.get(path, params={"time_after": 0, "time_before": T})

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or missing API key"}


@pytest.mark.parametrize("path", [V3.format(org="org-demo0000"), V2])
async def test_unknown_key_is_401(served: Served, path: str) -> None:
    response = await served.http.get(
        path,
        params={"time_after": 0, "time_before": T},
        headers={"Authorization": "Bearer cog_not_a_key_of_this_account"},
    )

    assert response.status_code == 401


async def test_a_non_bearer_authorization_is_401(served: Served) -> None:
    response = await served.http.get(
        V3.format(org=served.org),
        params={"time_after": 0, "time_before": T},
        headers={"Authorization": f"Basic {served.account.service_user_key}"},
    )

    assert response.status_code == 401


async def test_an_enterprise_key_on_v3_is_403(served: Served) -> None:
    response = await served.http.get(
        V3.format(org=served.org),
        params={"time_after": 0, "time_before": T},
        headers=served.apk(),
    )

    assert response.status_code == 403
    assert response.json() == {"detail": "This endpoint needs a service user key (cog_)"}


async def test_a_service_user_key_on_v2_is_403(served: Served) -> None:
    response = await served.http.get(V2, headers=served.cog())

    assert response.status_code == 403
    assert response.json() == {"detail": "Enterprise admin personal API key (apk_user_) required"}


async def test_a_service_user_key_limited_to_another_org_is_403_there_and_200_at_home() -> None:
    account = DemoAccount(
        orgs=[DemoOrg("org-a", "A"), DemoOrg("org-b", "B")],
        service_user_keys={"cog_x": {"org-a"}},
        enterprise_keys={"apk_user_x"},
    )
    async with serve(account) as running:
        home = await running.v3("org-a")
        other = await running.v3("org-b")

    assert (home.status_code, other.status_code) == (200, 403)
    assert other.json() == {"detail": "Service user lacks ViewOrgMetrics on this organization"}


async def test_an_unknown_org_is_404(served: Served) -> None:
    response = await served.v3("org-nope")

    assert response.status_code == 404


# Query validation.


async def test_missing_time_after_is_422_with_the_spec_shape(served: Served) -> None:
    response = await served.http.get(
        V3.format(org=served.org), params={"time_before": T}, headers=served.cog()
    )

    assert response.status_code == 422
    assert_http_validation_error(response.json())
    assert response.json() == {
        "detail": [{"loc": ["query", "time_after"], "msg": "Field required", "type": "missing"}]
    }


async def test_a_non_integer_time_before_is_422_with_the_spec_shape(served: Served) -> None:
    response = await served.http.get(
        V3.format(org=served.org),
        params={"time_after": T - DAY, "time_before": "yesterday"},
        headers=served.cog(),
    )

    assert response.status_code == 422
    assert_http_validation_error(response.json())
    [item] = response.json()["detail"]
    assert (item["loc"], item["type"]) == (["query", "time_before"], "int_parsing")


async def test_time_after_later_than_time_before_is_422(served: Served) -> None:
    response = await served.v3(after=T, before=T - DAY)

    assert response.status_code == 422
    assert_http_validation_error(response.json())


async def test_a_bad_v2_date_is_422_with_the_spec_shape(served: Served) -> None:
    response = await served.v2({"start": "last tuesday"})

    assert response.status_code == 422
    assert_http_validation_error(response.json())
    assert response.json()["detail"][0]["loc"] == ["query", "start"]


# The data it serves.


async def test_v3_body_validates_and_matches_the_org_model(served: Served) -> None:
    response = await served.v3(after=T - 7 * DAY, before=T)

    metrics = SessionMetrics.model_validate_json(response.content)
    expected = served.account.models[served.org].totals(T - 7 * DAY, T)
    assert response.status_code == 200
    assert metrics.sessions_created_count == expected.created
    assert metrics.sessions_created_count > 0
    assert metrics.sessions_created_by_origin["github"] == expected.by_origin["github"]
    assert metrics.sessions_with_merged_prs_count == expected.merged
    assert metrics.avg_acus_per_session == expected.average_acus


async def test_v3_does_not_count_past_its_clock(served: Served) -> None:
    clipped = await served.v3(after=T - DAY, before=T + 30 * DAY)
    now = await served.v3(after=T - DAY, before=T)

    assert clipped.json() == now.json()


async def test_v2_body_validates(served: Served) -> None:
    response = await served.v2({"start": iso(T - DAY), "end": iso(T)})

    assert response.status_code == 200
    assert EnterpriseSessions.model_validate_json(response.content).sessions_count > 0


async def test_v2_with_org_ids_equals_v3_for_the_same_range(served: Served) -> None:
    org = served.account.orgs[1].id
    v3 = await served.v3(org, after=T - 3 * DAY, before=T - DAY)
    v2 = await served.v2({"start": iso(T - 3 * DAY), "end": iso(T - DAY), "org_ids": [org]})

    created = SessionMetrics.model_validate_json(v3.content).sessions_created_count
    assert EnterpriseSessions.model_validate_json(v2.content).sessions_count == created
    assert created > 0


async def test_v2_without_org_ids_is_the_sum_over_all_orgs(served: Served) -> None:
    per_org = [await served.v3(o.id, after=T - DAY, before=T) for o in served.account.orgs]
    total = await served.v2({"start": iso(T - DAY), "end": iso(T)})

    expected = sum(r.json()["sessions_created_count"] for r in per_org)
    assert total.json() == {"sessions_count": expected}


async def test_v2_with_two_org_ids_is_their_sum(served: Served) -> None:
    a, b, _ = (o.id for o in served.account.orgs)
    both = await served.v2({"start": iso(T - DAY), "end": iso(T), "org_ids": [a, b]})
    only_a = await served.v2({"start": iso(T - DAY), "end": iso(T), "org_ids": [a]})
    only_b = await served.v2({"start": iso(T - DAY), "end": iso(T), "org_ids": [b]})

    expected = only_a.json()["sessions_count"] + only_b.json()["sessions_count"]
    assert both.json()["sessions_count"] == expected


# Administration: fault injection and request counts.


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


async def test_a_v2_fault_without_org_ids_targets_the_org_empty_string(served: Served) -> None:
    entry = {"endpoint": "v2_enterprise_sessions", "org": "", "faults": [{"status": 502}]}
    await served.http.post("/_demo/faults", json=entry)

    unfiltered = await served.v2({"start": iso(T - DAY)})
    filtered = await served.v2({"start": iso(T - DAY), "org_ids": [served.org]})

    assert (unfiltered.status_code, filtered.status_code) == (502, 200)


async def test_the_account_endpoint_lists_the_orgs(served: Served) -> None:
    response = await served.http.get("/_demo/account")

    expected = [{"id": o.id, "name": o.name} for o in served.account.orgs]
    assert response.json() == {"orgs": expected}
    assert served.account.service_user_key not in json.dumps(response.json())
