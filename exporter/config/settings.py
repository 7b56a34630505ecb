"""`Settings`, the whole config: its sections, the checks across them, and the policy
read from them (which key polls an organization, how often a group is polled, where the
billing cycle comes from)."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from exporter.config.schema import (
    AttributionSettings,
    BillingSettings,
    CycleSource,
    DevinSettings,
    DiscoverySettings,
    EndpointSettings,
    EndpointsSettings,
    LogSettings,
    Organization,
    Segment,
    ShardingSettings,
    StateSettings,
    WebSettings,
    WindowField,
)
from exporter.durations import Seconds
from exporter.reloading import APPLIED
from exporter.windows import Window

ENV_PREFIX = "DEVIN_EXPORTER_"
MAX_SEGMENTS = 20
MAX_WINDOW_SECONDS = 400 * 86400.0


class Settings(BaseSettings):
    """Everything the exporter is told; built once by `load_settings` and passed down."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    devin: DevinSettings = DevinSettings()
    organizations: Annotated[list[Organization], APPLIED] = Field(default_factory=list)
    windows: Annotated[list[WindowField], APPLIED] = Field(
        default_factory=lambda: [Window.parse(w) for w in ("1h", "24h", "7d", "30d")],
        min_length=1,
    )
    poll_interval: Annotated[Seconds, APPLIED] = Field(default=300.0, ge=1)
    stale_after: Annotated[Seconds | None, APPLIED] = Field(default=None, gt=0)
    web: WebSettings = WebSettings()
    log: LogSettings = LogSettings()
    state: StateSettings = StateSettings()
    billing: BillingSettings = BillingSettings()
    sharding: ShardingSettings = ShardingSettings()
    endpoints: EndpointsSettings = EndpointsSettings()
    discovery: DiscoverySettings = DiscoverySettings()
    attribution: AttributionSettings = AttributionSettings()
    # Each segment is polled for every organization: sessions metrics only, bounded.
    segments: Annotated[list[Segment], APPLIED] = Field(
        default_factory=list, max_length=MAX_SEGMENTS
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # First wins: explicit arguments, then the environment; load_settings adds the
        # YAML file beneath them (exporter.config.load).
        return (init_settings, env_settings)

    @field_validator("windows")
    @classmethod
    def _distinct_windows(cls, windows: list[Window]) -> list[Window]:
        too_long = [w.label for w in windows if w.seconds > MAX_WINDOW_SECONDS]
        if too_long:
            raise ValueError(f"{', '.join(too_long)}: a window may be at most 400d")
        labels = [w.label for w in windows]
        rolling = [w.seconds for w in windows if not w.calendar]  # 60m and 1h are one window
        if len(set(labels)) != len(labels) or len(set(rolling)) != len(rolling):
            raise ValueError("windows must be distinct")
        return sorted(windows)

    @field_validator("segments")
    @classmethod
    def _distinct_segments(cls, segments: list[Segment]) -> list[Segment]:
        names = [s.name for s in segments]
        if len(set(names)) != len(names):
            raise ValueError("segment names must be unique")
        return segments

    @field_validator("organizations")
    @classmethod
    def _distinct_orgs(cls, orgs: list[Organization]) -> list[Organization]:
        ids = [o.id for o in orgs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"organization ids must be unique: {', '.join(duplicates)}")
        return orgs

    @model_validator(mode="after")
    def _something_to_poll(self) -> Self:
        devin = self.devin
        if not self.organizations and devin.enterprise_key is None and not self.discovery.enabled:
            raise ValueError(
                "nothing to poll: list organizations, enable discovery, or set "
                "devin.enterprise_key for the enterprise-wide count"
            )
        if self.discovery.enabled and (
            devin.enterprise_service_user_key is None and devin.enterprise_key is None
        ):
            raise ValueError(
                "discovery needs devin.enterprise_service_user_key (ManageOrganizations) "
                "or devin.enterprise_key to list the organizations"
            )
        default_key = devin.service_user_key or devin.enterprise_service_user_key
        if self.discovery.enabled and default_key is None:
            raise ValueError(
                "discovered organizations need devin.service_user_key or "
                "devin.enterprise_service_user_key"
            )
        for index, org in enumerate(self.organizations):
            if (
                org.service_user_key is None
                and default_key is None
                and devin.enterprise_key is None
            ):
                raise ValueError(
                    f"organizations[{index}] ({org.id}) has no key: set its service_user_key "
                    "(or _file), devin.service_user_key, or devin.enterprise_service_user_key"
                )
        if self.endpoints.user_consumption.enabled and devin.enterprise_key is None:
            raise ValueError(
                "endpoints.user_consumption needs devin.enterprise_key (an enterprise "
                "admin's personal API key): only v2 daily consumption answers per user"
            )
        if self.stale_after is not None and self.stale_after < self.poll_interval:
            raise ValueError("stale_after must not be shorter than poll_interval")
        if self.cycle_source is None and any(w.label == "cycle" for w in self.windows):
            raise ValueError(
                f"windows: the cycle window needs to know the billing cycle: {NO_CYCLE_SOURCE}"
            )
        return self

    @property
    def cycle_source(self) -> CycleSource | None:
        """Where the billing cycle comes from, in this order: Devin's v3 cycles (enterprise
        service user), its v2 cycles (enterprise admin key), billing.cycle_start_day; None
        if nothing says (then nothing cycle-based is exported)."""
        if self.enabled("billing_cycles"):
            if self.devin.enterprise_service_user_key is not None:
                return "v3"
            if self.devin.enterprise_key is not None:
                return "v2"
        if self.billing.cycle_start_day is not None:
            return "cycle_start_day"
        return None

    @property
    def stale_after_seconds(self) -> float:
        """How old a value may get before its series are dropped (default 3 polls)."""
        return self.stale_after if self.stale_after is not None else 3 * self.poll_interval

    def interval_of(self, group: str) -> float:
        """Seconds between polls of an endpoint group."""
        endpoint: EndpointSettings = getattr(self.endpoints, group)
        if endpoint.interval is not None:
            return endpoint.interval
        return max(self.poll_interval, EndpointsSettings.DEFAULT_INTERVALS.get(group, 0.0))

    def enabled(self, group: str) -> bool:
        endpoint: EndpointSettings = getattr(self.endpoints, group)
        return endpoint.enabled

    @property
    def polled_organizations(self) -> list[Organization]:
        """The organisations of this replica's shard (all of them when not sharded)."""
        return [o for o in self.organizations if self.sharding.owns(o.id)]

    def key_for(self, org: Organization) -> SecretStr | None:
        """The v3 key that polls `org`: its own, the default service user's, or else the
        enterprise service user's (which then goes through the enterprise endpoints).
        None when only the enterprise admin key (v2) can see it."""
        return (
            org.service_user_key
            or self.devin.service_user_key
            or self.devin.enterprise_service_user_key
        )

    def through_enterprise(self, org: Organization) -> bool:
        """Whether `org` is polled with the enterprise service user and `org_ids`."""
        return (
            org.service_user_key is None
            and self.devin.service_user_key is None
            and self.devin.enterprise_service_user_key is not None
        )

    def api_keys(self) -> list[SecretStr]:
        """Every configured key, for redaction."""
        devin = self.devin
        found = [devin.service_user_key, devin.enterprise_key, devin.enterprise_service_user_key]
        found += [o.service_user_key for o in self.organizations]
        return [key for key in found if key is not None]

    def secrets(self) -> list[SecretStr]:
        """Every configured secret (the keys, and the key of hashed user labels), for
        redaction."""
        hash_key = self.attribution.hash_key
        return [*self.api_keys(), *([hash_key] if hash_key is not None else [])]

    def with_organizations(self, organizations: list[Organization]) -> Settings:
        """These settings with another list of organizations (after discovery)."""
        return self.model_copy(update={"organizations": organizations})


NO_CYCLE_SOURCE = (
    "set billing.cycle_start_day (1..28, the contract's billing day), or "
    "devin.enterprise_service_user_key or devin.enterprise_key with endpoints.billing_cycles "
    "enabled, so that Devin's billing cycles are read"
)
