"""Which discovered organizations are polled: configured first, then admitted ones by
id, up to `discovery.max_organizations`."""

from __future__ import annotations

from exporter.config import Organization, Settings, load_settings
from exporter.polling.discovery import left_out, merge


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
