"""Organization discovery: list the enterprise's organizations and decide which to poll."""

from __future__ import annotations

from collections.abc import Container

import structlog
from pydantic import ValidationError

from exporter.config import Organization, Settings
from exporter.devin.client import DevinAPI
from exporter.devin.errors import DevinAPIError
from exporter.devin.redact import Redactor
from exporter.devin.table import ORG_LISTINGS

log = structlog.get_logger("exporter.polling.discovery")


async def list_organizations(api: DevinAPI, settings: Settings) -> list[Organization]:
    """The enterprise's organizations, every page; v3 with the enterprise service user if
    there is one, else v2 with the enterprise admin key."""
    discovery = settings.discovery
    devin = settings.devin
    if devin.enterprise_service_user_key is not None:
        found = await api.pages(
            ORG_LISTINGS["enterprise_service_user"],
            devin.enterprise_service_user_key,
            page_size=discovery.page_size,
        )
    elif devin.enterprise_key is not None:
        found = await api.pages(
            ORG_LISTINGS["enterprise_admin"],
            devin.enterprise_key,
            page_size=discovery.page_size,
        )
    else:  # excluded by the settings' validation
        raise DevinAPIError("client_error", detail="no key may list organizations")
    # Ids and names become label values and log fields: none may carry part of a key.
    redactor = Redactor(k.get_secret_value() for k in settings.api_keys())
    organizations = []
    for summary in found:
        if redactor.leaks(summary.org_id):
            log.warning("organization_skipped", reason="id_holds_part_of_a_key")
            continue
        try:
            name = redactor(summary.name) or None
            organizations.append(Organization(id=summary.org_id, name=name))
        except ValidationError:
            # One odd id must not stop the others from being polled.
            log.warning("organization_skipped", reason="invalid_id", id=summary.org_id[:64])
    return organizations


def merge(settings: Settings, discovered: list[Organization]) -> list[Organization]:
    """The configured organizations, then every admitted discovered one not among them,
    up to `discovery.max_organizations` in all (see `left_out`).

    A configured organization keeps its name and key even when discovery finds it.
    """
    configured = {o.id: o for o in settings.organizations}
    named = [
        c.model_copy(update={"name": c.name or d.name})
        for c in settings.organizations
        for d in [next((d for d in discovered if d.id == c.id), c)]
    ]
    room = max(0, settings.discovery.max_organizations - len(named))
    return [*named, *_admitted(settings, discovered, configured)[:room]]


def left_out(settings: Settings, discovered: list[Organization]) -> int:
    """How many admitted discovered organizations `max_organizations` leaves out."""
    configured = {o.id for o in settings.organizations}
    admitted = len(_admitted(settings, discovered, configured))
    room = max(0, settings.discovery.max_organizations - len(configured))
    return max(0, admitted - room)


def _admitted(
    settings: Settings, discovered: list[Organization], configured: Container[str]
) -> list[Organization]:
    """The discovered organizations that include/exclude admit, by id: the cap keeps the
    same ones from one listing to the next."""
    admitted = {
        o.id: o
        for o in discovered
        if o.id not in configured and settings.discovery.admits(o.id, o.name or "")
    }
    return [admitted[org_id] for org_id in sorted(admitted)]
