"""The demo enterprise: its organisations, their data, and which key may see what.

Keys: a service user key (`cog_`) in `service_user_keys` holds the org-level permissions
(metrics and consumption) on its organisations; one in `enterprise_service_user_keys` holds
the account-level ones, which every organisation inherits; `enterprise_keys` are enterprise
admins' personal keys (`apk_user_`), for v2 only.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from exporter.demo.data import OrgModel

# The demo's ACU limits: per billing cycle (about three times what a busy demo
# organisation consumes in one) and per session.
DEMO_ORG_CYCLE_LIMIT: Final = 250000.0
DEMO_ENTERPRISE_CYCLE_LIMIT: Final = 1000000.0
DEMO_SESSION_LIMIT: Final = 50


@dataclass(frozen=True)
class DemoOrg:
    id: str
    name: str


@dataclass
class DemoAccount:
    """Who exists in the demo enterprise and which key may see what."""

    orgs: list[DemoOrg]
    # cog_ key -> org ids it holds org-level permissions on (ViewOrgMetrics, ViewOrgConsumption)
    service_user_keys: dict[str, set[str]]
    enterprise_keys: set[str]  # apk_user_ keys of enterprise admins (v2)
    seed: int = 1
    extra_origins: Sequence[str] = ()
    # cog_ keys with account-level permissions (ViewAccountMetrics, ViewAccountConsumption,
    # ManageOrganizations): every /v3/enterprise endpoint, and every organisation's.
    enterprise_service_user_keys: set[str] = field(default_factory=set)
    # ACUs an organisation may consume in a billing cycle (not listed: no limit), and the
    # enterprise's own limit (None: none); the same in the ACU limits list and the listings.
    cycle_limits: dict[str, float] = field(default_factory=dict)
    enterprise_cycle_limit: float | None = None
    models: dict[str, OrgModel] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.models = {o.id: OrgModel(self.seed, o.id, self.extra_origins) for o in self.orgs}

    def add_org(self, org: DemoOrg) -> None:
        """A new organisation, with its data; keys that held every organisation get it too."""
        if org.id in self.models:
            raise ValueError(f"organisation {org.id} exists")
        everyone = set(self.models)
        for orgs in self.service_user_keys.values():
            if orgs >= everyone:
                orgs.add(org.id)
        self.orgs.append(org)
        self.models[org.id] = OrgModel(self.seed, org.id, self.extra_origins)

    def remove_org(self, org_id: str) -> None:
        """Forget an organisation, its data and every key's permission on it."""
        if org_id not in self.models:
            raise KeyError(org_id)
        self.orgs = [o for o in self.orgs if o.id != org_id]
        del self.models[org_id]
        self.cycle_limits.pop(org_id, None)
        for orgs in self.service_user_keys.values():
            orgs.discard(org_id)

    @classmethod
    def generate(
        cls, org_count: int = 3, *, seed: int = 1, extra_origins: Sequence[str] = ()
    ) -> DemoAccount:
        """`org_count` organisations, one service-user key for all, one with account-level
        permissions, and one enterprise admin key; every organisation but the first has a
        cycle limit, and so has the enterprise (all well above what the demo consumes)."""
        names = ["Platform", "Payments", "Mobile", "Data", "Growth", "Infra", "Search", "Ads"]
        orgs = [
            DemoOrg(id=f"org-demo{i:04d}", name=f"{names[i % len(names)]} {i // len(names) or ''}")
            for i in range(org_count)
        ]
        orgs = [DemoOrg(o.id, o.name.strip()) for o in orgs]
        return cls(
            orgs=orgs,
            service_user_keys={f"cog_{secrets.token_urlsafe(24)}": {o.id for o in orgs}},
            enterprise_keys={f"apk_user_{secrets.token_urlsafe(24)}"},
            seed=seed,
            extra_origins=tuple(extra_origins),
            enterprise_service_user_keys={f"cog_{secrets.token_urlsafe(24)}"},
            cycle_limits={o.id: DEMO_ORG_CYCLE_LIMIT for o in orgs[1:]},
            enterprise_cycle_limit=DEMO_ENTERPRISE_CYCLE_LIMIT,
        )

    @property
    def service_user_key(self) -> str:
        return next(iter(self.service_user_keys))

    @property
    def enterprise_key(self) -> str:
        return next(iter(self.enterprise_keys))

    @property
    def enterprise_service_user_key(self) -> str:
        return next(iter(self.enterprise_service_user_keys))

    def knows(self, key: str) -> bool:
        return (
            key in self.service_user_keys
            or key in self.enterprise_keys
            or key in self.enterprise_service_user_keys
        )
