"""The sections of the config (`devin`, `web`, `endpoints`, ...), each a frozen model.

Every leaf declares how a change takes effect (`APPLIED` by a reload, or `RESTART`)
beside its definition; `exporter.reloading` reads these declarations.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from exporter.config.addresses import (
    DEFAULT_LISTEN_ADDRESS,
    check_telemetry_path,
    parse_listen_address,
)
from exporter.config.keyfiles import read_key_file, visible_ascii
from exporter.durations import Seconds
from exporter.reloading import APPLIED, RESTART
from exporter.sharding import ordinal_from_hostname, shard_of
from exporter.windows import Window


def _to_window(value: Any) -> Any:
    if isinstance(value, str):
        return Window.parse(value)
    return value


WindowField = Annotated[Window, BeforeValidator(_to_window)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_KEY_NAMES = ("service_user_key", "enterprise_key", "enterprise_service_user_key")


class _KeyedSection(_Section):
    """A section whose keys come inline (`service_user_key`) or from a file (`..._file`).

    Each key and each file is checked by a field validator, so that a missing file is
    reported beside every other error of the section (a model validator runs only once
    every field is valid); the model validator then reads the files for their keys.
    """

    KEYS: ClassVar[tuple[str, ...]]

    @field_validator(*_KEY_NAMES, check_fields=False)
    @classmethod
    def _usable_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is None:
            return None
        if not key.get_secret_value().strip():
            raise ValueError("must not be blank")
        if not visible_ascii(key.get_secret_value().encode("utf-8")):
            # It goes into an HTTP header: say so now, not with a traceback at the first poll.
            raise ValueError("may hold only visible ASCII characters")
        return key

    @field_validator(*(f"{name}_file" for name in _KEY_NAMES), check_fields=False)
    @classmethod
    def _readable_key_file(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        # The key is declared before its file, so info.data holds it if it is valid.
        key = str(info.field_name).removesuffix("_file")
        if path is not None and info.data.get(key) is not None:
            raise ValueError(f"set {key} or {key}_file, not both")
        if path is not None:
            read_key_file(path)
        return path

    @model_validator(mode="after")
    def _read_key_files(self) -> Self:
        for key in self.KEYS:
            path: Path | None = getattr(self, f"{key}_file")
            if path is not None:
                object.__setattr__(self, key, read_key_file(path))
        return self


class DevinSettings(_KeyedSection):
    base_url: Annotated[str, RESTART] = "https://api.devin.ai"
    timeout: Annotated[Seconds, APPLIED] = Field(default=10.0, gt=0)
    # Per API key, shared by every target that uses the key.
    max_concurrency: Annotated[int, RESTART] = Field(default=8, ge=1, le=256)
    requests_per_second: Annotated[float, RESTART] = Field(default=5.0, gt=0, le=1000)
    # Transient failures (timeouts, dropped connections, 429, 500/502/503/504) only.
    max_attempts: Annotated[int, APPLIED] = Field(default=3, ge=1, le=10)
    retry_initial_backoff: Annotated[Seconds, APPLIED] = Field(default=1.0, gt=0)
    retry_max_backoff: Annotated[Seconds, APPLIED] = Field(default=30.0, gt=0)
    # An answer larger than this, counted after decompression, fails its poll as
    # `response_too_large`: a hostile or broken upstream cannot exhaust memory.
    max_response_bytes: Annotated[int, APPLIED] = Field(default=16 * 2**20, ge=1024, le=2**30)
    service_user_key: Annotated[SecretStr | None, APPLIED] = None
    service_user_key_file: Annotated[Path | None, APPLIED] = None
    enterprise_key: Annotated[SecretStr | None, APPLIED] = None
    enterprise_key_file: Annotated[Path | None, APPLIED] = None
    # A service user (cog_...) with account-level permissions: polls the v3 enterprise
    # endpoints with org_ids for every organization without a key of its own, and lists
    # organizations for discovery.
    enterprise_service_user_key: Annotated[SecretStr | None, APPLIED] = None
    enterprise_service_user_key_file: Annotated[Path | None, APPLIED] = None

    KEYS: ClassVar[tuple[str, ...]] = _KEY_NAMES

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class Organization(_KeyedSection):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    name: str | None = None
    service_user_key: Annotated[SecretStr | None, APPLIED] = None
    service_user_key_file: Annotated[Path | None, APPLIED] = None

    KEYS: ClassVar[tuple[str, ...]] = ("service_user_key",)

    @property
    def display_name(self) -> str:
        return self.name or self.id


class WebSettings(_Section):
    listen_address: Annotated[str, RESTART] = DEFAULT_LISTEN_ADDRESS
    telemetry_path: Annotated[str, RESTART] = "/metrics"
    config_file: Annotated[Path | None, RESTART] = None
    # Past this many connections the stalled and idle ones are shed for new ones.
    max_connections: Annotated[int, RESTART] = Field(default=256, ge=1, le=65536)
    # A request's line and headers must arrive within this (slowloris).
    header_timeout: Annotated[Seconds, RESTART] = Field(default=5.0, gt=0)
    # A kept-alive connection with no request for this long is closed.
    idle_timeout: Annotated[Seconds, RESTART] = Field(default=75.0, gt=0)
    max_header_bytes: Annotated[int, RESTART] = Field(default=32768, ge=1024, le=2**20)

    @field_validator("listen_address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        parse_listen_address(value)
        return value

    @field_validator("telemetry_path")
    @classmethod
    def _url_path(cls, value: str) -> str:
        return check_telemetry_path(value)


class EndpointSettings(_Section):
    """One endpoint group: whether it is polled, and how often (default: poll_interval)."""

    enabled: Annotated[bool, APPLIED] = True
    interval: Annotated[Seconds | None, APPLIED] = Field(default=None, ge=1)


class SessionsLiveSettings(EndpointSettings):
    """Live session state (opt-in): the session list, read incrementally every minute.

    `lookback` bounds what is listed and kept: a session not updated for that long is no
    longer counted as active, and a first poll (or a restart) reads that far back.
    """

    enabled: Annotated[bool, APPLIED] = False
    interval: Annotated[Seconds | None, APPLIED] = Field(default=60.0, ge=1)
    lookback: Annotated[Seconds, APPLIED] = Field(default=86400.0, ge=300, le=31 * 86400)
    # Per organisation, the first this many repositories of completed sessions keep a
    # `repo` label of their own for the life of the process; the rest count as `other`.
    # A reload that raises it admits more; one that lowers it takes no label back.
    max_repos: Annotated[int, APPLIED] = Field(default=50, ge=0, le=10_000)


class UserConsumptionSettings(EndpointSettings):
    """Per-user ACUs (opt-in): enterprise-wide, one request per consumption window.

    Per window the `top` users by ACUs keep a series of their own; `other` and
    `unattributed` hold the rest, so that a window's series add up to Devin's total.
    """

    enabled: Annotated[bool, APPLIED] = False
    top: Annotated[int, APPLIED] = Field(default=20, ge=1, le=1000)


def _opt_in() -> Any:
    return Field(default_factory=lambda: EndpointSettings(enabled=False))


class EndpointsSettings(_Section):
    """Per endpoint group; consumption and billing data change slowly, sessions fast.

    The groups beyond sessions are opt-in: some need permissions a metrics-only service
    user lacks (consumption: ManageBilling or ViewOrgConsumption), and each adds requests.
    """

    sessions: EndpointSettings = EndpointSettings()
    enterprise_sessions: EndpointSettings = EndpointSettings()  # v2, needs enterprise_key
    prs: EndpointSettings = _opt_in()
    searches: EndpointSettings = _opt_in()
    active_users: EndpointSettings = _opt_in()
    active_user_buckets: EndpointSettings = _opt_in()  # dau/wau/mau
    consumption: EndpointSettings = _opt_in()
    # Enterprise-wide; need devin.enterprise_service_user_key.
    sessions_by_category: EndpointSettings = _opt_in()
    # Devin's billing cycles, read whenever a key can (v3 enterprise service user, else v2
    # enterprise admin): the `cycle` window and devin_billing_cycle_* follow them.
    billing_cycles: EndpointSettings = EndpointSettings()
    # ACU limits per billing cycle and per session, read whenever a key can.
    acu_limits: EndpointSettings = EndpointSettings()
    usage: EndpointSettings = _opt_in()  # Devin's usage summary (metrics/usage)
    # Sessions running or waiting now (the session list; ViewOrgSessions).
    sessions_live: SessionsLiveSettings = SessionsLiveSettings()
    # ACUs per user, enterprise-wide (v2 daily consumption; needs devin.enterprise_key).
    user_consumption: UserConsumptionSettings = UserConsumptionSettings()

    # Slow-changing groups poll less often unless told otherwise (seconds).
    DEFAULT_INTERVALS: ClassVar[dict[str, float]] = {
        "active_user_buckets": 3600.0,
        "consumption": 3600.0,
        "billing_cycles": 6 * 3600.0,
        "acu_limits": 3600.0,
        "user_consumption": 3600.0,
    }


class DiscoverySettings(_Section):
    """List the enterprise's organizations every `interval` and poll them all.

    Organizations listed under `organizations` keep their names and keys; `include` and
    `exclude` are regular expressions matched in full against an org's id or name.
    """

    enabled: Annotated[bool, APPLIED] = False
    interval: Annotated[Seconds, APPLIED] = Field(default=3600.0, ge=60)
    include: Annotated[list[str], APPLIED] = Field(default_factory=list)
    exclude: Annotated[list[str], APPLIED] = Field(default_factory=list)
    page_size: Annotated[int, APPLIED] = Field(default=100, ge=1, le=200)
    # Past this many admitted organizations the rest are left out (and counted): a
    # listing that grows without bound cannot grow memory, jobs or requests with it.
    max_organizations: Annotated[int, APPLIED] = Field(default=1000, ge=1, le=100_000)

    @field_validator("include", "exclude")
    @classmethod
    def _regexes(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"{pattern!r} is not a regular expression: {err}") from None
        return patterns

    def admits(self, org_id: str, name: str) -> bool:
        """Whether a discovered organization is polled."""

        def matches(patterns: list[str]) -> bool:
            return any(re.fullmatch(p, org_id) or re.fullmatch(p, name) for p in patterns)

        return (not self.include or matches(self.include)) and not matches(self.exclude)


class Segment(_Section):
    """A named slice of an organization's sessions, exported with `segment="<name>"`."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    user_ids: list[str] = Field(default_factory=list, max_length=1000)
    service_user_ids: list[str] = Field(default_factory=list, max_length=1000)
    playbook_id: str | None = None

    @model_validator(mode="after")
    def _some_filter(self) -> Self:
        if not (self.user_ids or self.service_user_ids or self.playbook_id):
            raise ValueError("a segment needs user_ids, service_user_ids or a playbook_id")
        return self


class ShardingSettings(_Section):
    """Split the organisations over `count` replicas; this one polls shard `index`.

    With `count` > 1 and no `index`, the index is the ordinal at the end of $HOSTNAME,
    as a StatefulSet names its pods (`devin-exporter-2` is shard 2).
    """

    index: Annotated[int | None, RESTART] = Field(default=None, ge=0)
    count: Annotated[int, RESTART] = Field(default=1, ge=1, le=1024)

    @model_validator(mode="after")
    def _index_in_range(self) -> Self:
        index = self.index
        if index is None and self.count > 1:
            hostname = os.environ.get("HOSTNAME", "")
            index = ordinal_from_hostname(hostname)
            if index is None:
                raise ValueError(
                    f"index is not set and HOSTNAME {hostname!r} does not end in a pod ordinal"
                )
            object.__setattr__(self, "index", index)
        if index is not None and index >= self.count:
            raise ValueError(f"index {index} must be less than count {self.count}")
        return self

    @property
    def shard(self) -> int:
        return self.index or 0

    def owns(self, org_id: str) -> bool:
        """Whether this replica polls `org_id`."""
        return shard_of(org_id, self.count) == self.shard

    @property
    def owns_enterprise(self) -> bool:
        """The enterprise-wide series are served by shard 0 only."""
        return self.shard == 0


class BillingSettings(_Section):
    """What Devin's API cannot tell: the contract's billing day without a key that reads
    the cycles, and the price of an ACU (set per contract, in the order form)."""

    # Cycles start on this day of the month at 08:00 UTC (midnight PST); used only when no
    # configured key can read Devin's billing cycles.
    cycle_start_day: Annotated[int | None, APPLIED] = Field(default=None, ge=1, le=28)
    acu_price: Annotated[float | None, APPLIED] = Field(
        default=None, gt=0, lt=1e9, allow_inf_nan=False
    )
    # ISO 4217 alphabetic code
    currency: Annotated[str, APPLIED] = Field(default="USD", pattern=r"^[A-Z]{3}$")


CycleSource = Literal["v3", "v2", "cycle_start_day"]
"""Where the billing cycle comes from: Devin's v3 or v2 cycles, or billing.cycle_start_day."""


class StateSettings(_Section):
    """Where the last good snapshot is kept across restarts (README, Resilience)."""

    # A file in a directory the exporter may write (an emptyDir or a volume in Kubernetes,
    # StateDirectory= under systemd); None: every start begins empty.
    path: Annotated[Path | None, RESTART] = None


class AttributionSettings(_Section):
    """How users are named in labels: Devin's user id (`id`), or (`hashed`) the first 16
    hex characters of HMAC-SHA256 keyed with the trimmed contents of `hash_key_file` over
    the user id. A restart applies either: series of one run never mix the two."""

    user_label: Annotated[Literal["id", "hashed"], RESTART] = "id"
    hash_key_file: Annotated[Path | None, RESTART] = None
    _hash_key: SecretStr | None = PrivateAttr(default=None)

    @field_validator("hash_key_file")
    @classmethod
    def _readable(cls, path: Path | None) -> Path | None:
        if path is not None:
            read_key_file(path)  # the error names the file, never its content
        return path

    @model_validator(mode="after")
    def _key_for_hashes(self) -> Self:
        if self.user_label == "hashed" and self.hash_key_file is None:
            raise ValueError("user_label hashed needs hash_key_file (a file holding the key)")
        if self.hash_key_file is not None:
            self._hash_key = read_key_file(self.hash_key_file)
        return self

    @property
    def hash_key(self) -> SecretStr | None:
        """The key of the hashes, read from `hash_key_file` (None without one)."""
        return self._hash_key


class LogSettings(_Section):
    level: Annotated[Literal["debug", "info", "warning", "error"], APPLIED] = "info"
    format: Annotated[Literal["logfmt", "json"], APPLIED] = "logfmt"
