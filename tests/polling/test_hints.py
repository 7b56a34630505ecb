"""Operator hints: one for every reason on every row; a refused key's follows from the row."""

from __future__ import annotations

from dataclasses import replace
from typing import get_args

import pytest
from fakes import target
from pydantic import SecretStr

from exporter.config import DevinSettings, Organization
from exporter.devin.errors import REASONS
from exporter.devin.table import ENDPOINTS, ROWS, KeyKind
from exporter.polling.hints import KEYS, hint, hint_for
from exporter.polling.targets import Target

ENDPOINT_NAMES = [row.name for row in ROWS]


@pytest.mark.parametrize("reason", REASONS)
@pytest.mark.parametrize("endpoint", ENDPOINT_NAMES)
def test_every_reason_has_a_hint_for_the_target(endpoint: str, reason: str) -> None:
    hint = hint_for(Target(ENDPOINTS[endpoint], "org-a", SecretStr("cog_x")), reason)
    assert len(hint) > 20
    assert "{" not in hint


def test_the_hint_names_the_organisation_or_the_enterprise() -> None:
    assert "org-a" in hint_for(target("org-a"), "forbidden")
    enterprise = Target(ENDPOINTS["v2_enterprise_sessions"], "", SecretStr("apk_user_x"))
    assert "the enterprise" in hint_for(enterprise, "not_found")


@pytest.mark.parametrize(
    ("endpoint", "spellings"),
    [
        ("v3_org_sessions", ("ViewOrgMetrics", "ViewAccountMetrics")),
        ("v3_org_consumption_daily", ("ViewOrgConsumption", "ManageBilling")),
        ("v3_enterprise_org_consumption_daily", ("ViewAccountConsumption", "ManageBilling")),
    ],
)
def test_a_403_hint_names_the_permission_in_each_spelling_of_devins_pages(
    endpoint: str, spellings: tuple[str, str]
) -> None:
    hint = hint_for(Target(ENDPOINTS[endpoint], "org-a", SecretStr("cog_x")), "forbidden")
    assert all(spelling in hint for spelling in spellings), hint


def test_the_seed_endpoints_keep_the_texts_operators_know() -> None:
    """What the sessions rows said before the hints followed the row, word for word."""
    org = Target(ENDPOINTS["v3_org_sessions"], "org-a", SecretStr("cog_x"))
    admin = Target(ENDPOINTS["v2_enterprise_sessions"], "", SecretStr("apk_user_x"))
    assert (
        "the service user key is unknown or revoked: create a new key for the service user "
        "and update service_user_key_file"
    ) == hint_for(org, "unauthorized")
    assert hint_for(org, "forbidden").startswith(
        "service user lacks ViewOrgMetrics or ViewAccountMetrics on org-a (or the key is not "
        "a cog_ service user key): grant the permission, or remove the organization from the "
        "config"
    )
    assert (
        "the enterprise key is unknown or revoked: create a new personal API key as an "
        "enterprise admin and update enterprise_key_file"
    ) == hint_for(admin, "unauthorized")
    assert hint_for(admin, "forbidden").startswith(
        "the enterprise key is not an enterprise admin's personal API key (apk_user_...)"
    )


def test_every_kind_of_key_has_its_texts_and_names_a_real_setting() -> None:
    assert set(get_args(KeyKind)) == set(KEYS)
    settings = set(DevinSettings.model_fields) | set(Organization.model_fields)
    assert set() == {text.setting for text in KEYS.values()} - settings


@pytest.mark.parametrize("name", ENDPOINT_NAMES)
def test_a_refused_key_names_its_setting_and_the_group_to_disable(name: str) -> None:
    endpoint = ENDPOINTS[name]
    assert KEYS[endpoint.key].setting in hint(endpoint, "org-a", "unauthorized")
    assert f"disable endpoints.{endpoint.group}" in hint(endpoint, "org-a", "forbidden")


def test_only_an_organisations_own_endpoint_offers_to_remove_the_organisation() -> None:
    remove = "remove the organization from the config"
    assert remove in hint(ENDPOINTS["v3_org_prs"], "org-a", "forbidden")
    assert remove not in hint(ENDPOINTS["v3_enterprise_prs"], "org-a", "forbidden")
    enterprise = hint(ENDPOINTS["v3_enterprise_prs"], "org-a", "forbidden")
    assert "ViewAccountMetrics at enterprise level, for org-a" in enterprise


def test_a_new_row_of_a_known_kind_needs_no_hint_of_its_own() -> None:
    """A row the table does not hold yet: its 401/403 hints come from what it declares."""
    row = replace(
        ENDPOINTS["v3_org_prs"],
        name="v3_org_new_thing",
        permission="ViewOrgNewThing",
        permission_also=("ManageNewThing",),
        group="new_thing",
    )
    assert row.name not in ENDPOINTS
    forbidden = hint(row, "org-b", "forbidden")
    assert "service user lacks ViewOrgNewThing or ManageNewThing on org-b" in forbidden
    assert forbidden.endswith("or disable endpoints.new_thing")
    assert "service_user_key_file" in hint(row, "org-b", "unauthorized")
