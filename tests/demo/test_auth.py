"""Who may ask the demo what: 401 without a known key, 403 for the wrong kind of key or
an organisation the key lacks, 404 for an organisation nobody has."""

from __future__ import annotations

import pytest

from exporter.demo.account import DemoAccount, DemoOrg

from .served import (
    ENTERPRISE_PATHS,
    ORG_PATHS,
    V2,
    V2_PATHS,
    V3,
    WINDOW,
    Served,
    T,
    serve,
    window_for,
)


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


@pytest.mark.parametrize("path", ORG_PATHS + ENTERPRISE_PATHS + V2_PATHS)
async def test_no_key_or_an_unknown_key_is_401(served: Served, path: str) -> None:
    url = path.format(org=served.org)

    missing = await served.http.get(url, params=WINDOW)
    unknown = await served.get(url, "cog_not_a_key_of_this_account", WINDOW)

    assert (401, 401) == (missing.status_code, unknown.status_code)
    assert "Invalid or missing API key" == missing.json()["detail"]


@pytest.mark.parametrize("path", ORG_PATHS)
async def test_org_endpoints_answer_the_org_key_and_the_account_key_not_the_admin_key(
    served: Served, path: str
) -> None:
    url = path.format(org=served.org)

    org_key = await served.get(url, served.account.service_user_key, WINDOW)
    account_key = await served.get(url, served.account.enterprise_service_user_key, WINDOW)
    admin_key = await served.get(url, served.account.enterprise_key, WINDOW)

    assert (200, 200, 403) == (org_key.status_code, account_key.status_code, admin_key.status_code)
    assert org_key.json() == account_key.json()
    assert {"detail": "This endpoint needs a service user key (cog_)"} == admin_key.json()


@pytest.mark.parametrize("path", ENTERPRISE_PATHS)
async def test_enterprise_endpoints_need_account_level_permissions(
    served: Served, path: str
) -> None:
    org_key = await served.get(path, served.account.service_user_key, window_for(path))
    admin_key = await served.get(path, served.account.enterprise_key, window_for(path))
    account_key = await served.ent_get(path)

    assert (403, 403, 200) == (
        org_key.status_code,
        admin_key.status_code,
        account_key.status_code,
    )
    assert "application/problem+json" == org_key.headers["Content-Type"].split(";")[0]
    problem = org_key.json()
    assert ("Forbidden", 403) == (problem["title"], problem["status"])
    assert problem["detail"].startswith("Service user lacks ")


@pytest.mark.parametrize("path", V2_PATHS)
async def test_v2_endpoints_need_the_enterprise_admin_key(served: Served, path: str) -> None:
    admin_key = await served.v2_get(path)
    service_key = await served.get(path, served.account.enterprise_service_user_key)

    assert (200, 403) == (admin_key.status_code, service_key.status_code)


async def test_an_org_key_is_403_on_an_org_it_lacks_and_404_on_an_unknown_org() -> None:
    account = DemoAccount(
        orgs=[DemoOrg("org-a", "A"), DemoOrg("org-b", "B")],
        service_user_keys={"cog_x": {"org-a"}},
        enterprise_keys={"apk_user_x"},
        enterprise_service_user_keys={"cog_account"},
    )
    async with serve(account) as running:
        path = "/v3/organizations/{org}/consumption/daily"
        home = await running.get(path.format(org="org-a"), "cog_x")
        other = await running.get(path.format(org="org-b"), "cog_x")
        unknown = await running.get(path.format(org="org-c"), "cog_account")

    assert (200, 403, 404) == (home.status_code, other.status_code, unknown.status_code)
    assert {"detail": "Service user lacks ViewOrgConsumption on this organization"} == (
        other.json()
    )
