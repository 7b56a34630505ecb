"""The demo account: its keys, and organisations that come and go."""

from __future__ import annotations

from exporter.demo.account import DemoAccount, DemoOrg

from .served import (
    WINDOW,
    serve,
)


def test_generate_makes_an_account_level_service_user_key() -> None:
    account = DemoAccount.generate(2)

    key = account.enterprise_service_user_key
    assert key.startswith("cog_")
    assert key not in account.service_user_keys
    assert key not in account.enterprise_keys


async def test_an_added_org_is_not_granted_to_a_key_limited_to_other_orgs() -> None:
    account = DemoAccount(
        orgs=[DemoOrg("org-a", "A"), DemoOrg("org-b", "B")],
        service_user_keys={"cog_a": {"org-a"}, "cog_all": {"org-a", "org-b"}},
        enterprise_keys={"apk_user_x"},
    )
    async with serve(account) as running:
        await running.http.post("/_demo/orgs", json={"id": "org-c", "name": "C"})
        limited = await running.get("/v3/organizations/org-c/metrics/prs", "cog_a", WINDOW)
        wide = await running.get("/v3/organizations/org-c/metrics/prs", "cog_all", WINDOW)

    assert (403, 200) == (limited.status_code, wide.status_code)
