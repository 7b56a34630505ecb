"""What an operator can do about a failed poll, one hint per reason of DevinAPIError.

A refused key's hint (401, 403) follows from the target's row: the kind of key it takes,
the permission in every spelling of Devin's pages, whose data it asks for and its endpoint
group. A new row of a known key kind needs no hint of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from exporter.devin.table import Endpoint, KeyKind
from exporter.polling.targets import Target


@dataclass(frozen=True)
class KeyText:
    """How the hints name one kind of key."""

    name: str  # "service user": "the service user key", "service user lacks ..."
    new: str  # what to create when it is revoked
    setting: str  # the setting under `devin:` (or `organizations[]`) that holds it
    form: str  # what a key of this kind is, for a 403 that says it is not one
    grants: bool  # True: Devin grants it permissions; False: the key itself is the right


KEYS: Final[Mapping[KeyKind, KeyText]] = {
    "service_user": KeyText(
        "service user",
        "a new key for the service user",
        "service_user_key_file",
        "a cog_ service user key",
        grants=True,
    ),
    "enterprise_service_user": KeyText(
        "enterprise service user",
        "a new key for the service user",
        "enterprise_service_user_key_file",
        "a cog_ service user key with enterprise permissions",
        grants=True,
    ),
    "enterprise_admin": KeyText(
        "enterprise",
        "a new personal API key as an enterprise admin",
        "enterprise_key_file",
        "an enterprise admin's personal API key (apk_user_...)",
        grants=False,
    ),
}

# The other reasons, as docs/runbook.md explains them.
_REASONS: Final[Mapping[str, str]] = {
    "timeout": "Devin did not answer in time: raise devin.timeout, or check the egress path",
    "connection": "Devin could not be reached: check DNS, proxy and firewall egress rules",
    "rate_limited": "Devin kept answering 429: lower devin.requests_per_second",
    "not_found": "Devin answered 404 for {org}: check its id in organizations",
    "client_error": "Devin refused the request: check the exporter version against its API",
    "server_error": "Devin's side failed: check Devin's status page and wait",
    "invalid_response": "Devin's answer did not fit its contract: check the exporter version",
    "response_too_large": "the answer exceeded devin.max_response_bytes: raise the limit",
}


def hint_for(target: Target, reason: str) -> str:
    """What an operator can do about `reason` (one of DevinAPIError's) on this target."""
    return hint(target.row, target.org, reason)


def hint(row: Endpoint[Any], org: str, reason: str) -> str:
    """The hint for `reason` on `row`, asked for `org` ("" for the whole enterprise)."""
    where = org or "the enterprise"
    if reason == "unauthorized":
        return _unauthorized(KEYS[row.key])
    if reason == "forbidden":
        return _forbidden(row, KEYS[row.key], where)
    return _REASONS.get(reason, "").format(org=where)


def _unauthorized(key: KeyText) -> str:
    return f"the {key.name} key is unknown or revoked: create {key.new} and update {key.setting}"


def _forbidden(row: Endpoint[Any], key: KeyText, where: str) -> str:
    if not key.grants:
        fix = ", or ".join((f"create {key.new} and update {key.setting}", *_drop(row)))
        return f"the {key.name} key is not {key.form}, which Devin's {row.version} API needs: {fix}"
    on = f"on {where}" if row.scope == "organization" else f"at {row.scope} level, for {where}"
    fix = ", or ".join(("grant the permission", *_drop(row)))
    return f"{key.name} lacks {row.permissions} {on} (or the key is not {key.form}): {fix}"


def _drop(row: Endpoint[Any]) -> tuple[str, ...]:
    """How to stop asking, short of fixing the key: per organisation, then per group."""
    ways = ["remove the organization from the config"] if row.scope == "organization" else []
    if row.group is not None:
        ways.append(f"disable endpoints.{row.group}")
    return tuple(ways)
