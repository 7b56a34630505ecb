"""Which discovered organizations are polled: configured first, then admitted ones by
id, up to `discovery.max_organizations`."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, SecretStr

from exporter.config import Organization, Settings, load_settings
from exporter.devin.models import CursorPage, OffsetPage, OrganizationSummary
from exporter.devin.redact import MARK
from exporter.devin.table import Call, Endpoint
from exporter.polling.discovery import left_out, list_organizations, merge

Model = TypeVar("Model", bound=BaseModel)
Item = TypeVar("Item", bound=BaseModel)


def settings(max_organizations: int, configured: list[str], **discovery: object) -> Settings:
    return load_settings(
        None,
        devin={"enterprise_service_user_key": "cog_enterprise"},
        organizations=[{"id": org} for org in configured],
        discovery={"enabled": True, "max_organizations": max_organizations, **discovery},
    )


def found(*ids: str) -> list[Organization]:
    return [Organization(id=org, name=org.upper()) for org in ids]


def test_under_the_cap_every_admitted_organization_is_polled() -> None:
    configured = settings(10, ["org-a"])

    merged = merge(configured, found("org-c", "org-b", "org-a"))

    assert ["org-a", "org-b", "org-c"] == [o.id for o in merged]
    assert 0 == left_out(configured, found("org-c", "org-b", "org-a"))


def test_past_the_cap_configured_ones_stay_and_the_first_discovered_ids_fill_the_rest() -> None:
    configured = settings(3, ["org-z"])
    listing = found(*(f"org-{i:03d}" for i in range(10, 0, -1)))

    merged = merge(configured, listing)

    assert ["org-z", "org-001", "org-002"] == [o.id for o in merged]
    assert 8 == left_out(configured, listing)


def test_excluded_organizations_do_not_count_against_the_cap() -> None:
    configured = settings(2, [], exclude=["org-00[12]"])
    listing = found("org-001", "org-002", "org-003", "org-004", "org-005")

    assert ["org-003", "org-004"] == [o.id for o in merge(configured, listing)]
    assert 1 == left_out(configured, listing)


class Listing:
    """A fake of DevinAPI that lists the given organizations."""

    def __init__(self, *items: OrganizationSummary) -> None:
        self.items = list(items)

    async def fetch(self, endpoint: Endpoint[Model], key: SecretStr, call: Call) -> Model:
        raise NotImplementedError(endpoint.name)

    async def pages(
        self,
        endpoint: Endpoint[CursorPage[Item]] | Endpoint[OffsetPage[Item]],
        key: SecretStr,
        *,
        page_size: int = 100,
        call: Call | None = None,
    ) -> list[Item]:
        return list(self.items)  # type: ignore[arg-type]


ENTERPRISE_KEY = "cog_enterpriseSECRETvalue123"


async def test_a_listed_name_or_id_never_carries_part_of_a_key() -> None:
    """Names become the `name` label of devin_org_info; ids become `org` labels."""
    api = Listing(
        OrganizationSummary(org_id="org-a", name=f"Team {ENTERPRISE_KEY[4:16]}"),
        OrganizationSummary(org_id=f"org-{ENTERPRISE_KEY[4:20]}", name="Echo"),
        OrganizationSummary(org_id="org-b", name="Plain"),
    )
    configured = load_settings(
        None,
        devin={"enterprise_service_user_key": ENTERPRISE_KEY},
        discovery={"enabled": True},
    )

    found = await list_organizations(api, configured)

    assert [("org-a", f"Team {MARK}"), ("org-b", "Plain")] == [(o.id, o.name) for o in found]
