"""Settings: a YAML file, overridden by `DEVIN_EXPORTER_<SECTION>__<KEY>` variables."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from exporter.durations import Seconds
from exporter.reloading import APPLIED, RESTART
from exporter.sharding import ordinal_from_hostname, shard_of
from exporter.windows import Window

ENV_PREFIX = "DEVIN_EXPORTER_"
CONFIG_ENV = "DEVIN_EXPORTER_CONFIG"
DEFAULT_LISTEN_ADDRESS = ":9877"


def parse_listen_address(address: str) -> tuple[str, int]:
    """`host:port` as Go exporters take it: `:9877` is every interface, `[::1]:9877` IPv6."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        shown = repr(address) if len(address) <= 48 else "the value"  # never a pasted key
        raise ValueError(f"{shown} is not host:port (for example :9877 or 127.0.0.1:9877)")
    host = host.removeprefix("[").removesuffix("]")
    return host, int(port)


# Paths the exporter serves itself; the telemetry path may be none of them.
RESERVED_PATHS = ("/", "/healthz", "/readyz", "/status.json")
_URL_PATH = re.compile(r"^/[A-Za-z0-9._~/-]{1,127}$")


def check_telemetry_path(path: str) -> str:
    """The path to serve the metrics on, as `--web.telemetry-path` takes it: `/metrics`."""
    shown = repr(path) if len(path) <= 48 else "the value"  # never a pasted key
    if path in RESERVED_PATHS:
        raise ValueError(
            f"{shown} is served by the exporter itself ({', '.join(RESERVED_PATHS)}): "
            "pick another path, such as /metrics"
        )
    if not _URL_PATH.match(path):
        raise ValueError(
            f"{shown} is not a URL path: it starts with / and holds only letters, digits "
            "and . _ ~ / - (at most 128 characters)"
        )
    return path


class ConfigError(Exception):
    """A config that cannot be used; the message names the file and the key, never a secret."""


def _to_window(value: Any) -> Any:
    if isinstance(value, str):
        return Window.parse(value)
    return value


WindowField = Annotated[Window, BeforeValidator(_to_window)]


# A key file longer than this is no key (and `/dev/zero` fails at once, not after memory).
MAX_KEY_FILE_BYTES = 4096
_BOM = b"\xef\xbb\xbf"


def _read_secret_file(path: Path) -> SecretStr:
    """A key from a file: one line of visible ASCII; whitespace around it is dropped.

    No rule beyond these (length, alphabet, prefix), so that any key Devin may issue
    works; the errors name the file and never the content.
    """
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror}") from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise ValueError(f"{path} is longer than {MAX_KEY_FILE_BYTES} bytes: not a key")
    if raw.startswith(_BOM):
        raise ValueError(f"{path} starts with a byte order mark (BOM): save it as plain ASCII")
    text = raw.strip(b" \t\r\n")
    if not text:
        raise ValueError(f"{path} is empty")
    if b"\n" in text or b"\r" in text:
        raise ValueError(f"{path} holds more than one line; a key is one line")
    if not _visible_ascii(text):
        raise ValueError(
            f"{path} may hold only visible ASCII characters (no spaces, tabs or non-ASCII letters)"
        )
    return SecretStr(text.decode("ascii"))


def _visible_ascii(text: bytes) -> bool:
    """Whether every byte is visible ASCII: what an HTTP header value can carry as is."""
    return all(0x21 <= byte <= 0x7E for byte in text)


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
        if not _visible_ascii(key.get_secret_value().encode("utf-8")):
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
            _read_secret_file(path)
        return path

    @model_validator(mode="after")
    def _read_key_files(self) -> Self:
        for key in self.KEYS:
            path: Path | None = getattr(self, f"{key}_file")
            if path is not None:
                object.__setattr__(self, key, _read_secret_file(path))
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


MAX_SEGMENTS = 20
MAX_WINDOW_SECONDS = 400 * 86400.0


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
            _read_secret_file(path)  # the error names the file, never its content
        return path

    @model_validator(mode="after")
    def _key_for_hashes(self) -> Self:
        if self.user_label == "hashed" and self.hash_key_file is None:
            raise ValueError("user_label hashed needs hash_key_file (a file holding the key)")
        if self.hash_key_file is not None:
            self._hash_key = _read_secret_file(self.hash_key_file)
        return self

    @property
    def hash_key(self) -> SecretStr | None:
        """The key of the hashes, read from `hash_key_file` (None without one)."""
        return self._hash_key


class LogSettings(_Section):
    level: Annotated[Literal["debug", "info", "warning", "error"], APPLIED] = "info"
    format: Annotated[Literal["logfmt", "json"], APPLIED] = "logfmt"


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
        default_factory=lambda: [_to_window(w) for w in ("1h", "24h", "7d", "30d")],
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
        # First wins: explicit arguments, then the environment, then the YAML file that
        # load_settings names in `yaml_file` (none: no file).
        return (init_settings, env_settings, _YamlSource(settings_cls))

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

Problem = tuple[str, str]
"""One thing wrong with a config: where (a dotted key or a variable) and what."""


def _format_location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, directly or inside `list[...]`, `... | None`, Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        if (model := _model_in(argument)) is not None:
            return model
    return None


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the config takes where `loc` points (a section, or an item of a list)."""
    model: type[BaseModel] | None = Settings
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _did_you_mean(name: str, known: list[str], spell: Any = str) -> str:
    """`; did you mean X?` for a near miss, else the keys that would be accepted."""
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"; did you mean {spell(close[0])}?"
    return f" (known: {', '.join(spell(k) for k in known)})" if known else ""


# `windows: ...`: a model-level check's message that starts with the key it is about.
_NAMED_KEY = re.compile(r"^([a-z_]+(?:\.[a-z_]+)*): (.+)$", re.DOTALL)


def _validation_problems(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        loc = item["loc"]
        key = _format_location(loc) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
            message = "not a known setting" + _did_you_mean(loc[-1], _keys_at(loc[:-1]))
        named = _NAMED_KEY.match(message) if not loc else None
        if named:  # a check across sections that names the key it is about
            key, message = named.group(1), named.group(2)
        problems.append((key, message))
    return problems


def _describe(problems: list[Problem], source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    lines += [f"  {key}: {message}" for key, message in problems]
    return "\n".join(lines)


def config_path_from_env(explicit: Path | None) -> Path | None:
    """The config file: `--config` if given, else `$DEVIN_EXPORTER_CONFIG`, else none."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else None


def _without_long_quotes(text: str) -> str:
    """A parser's message with any long quoted text left out: it may be a pasted key."""
    return re.sub(r"'[^']{17,}'", "'...'", text)


def _yaml_reason(err: yaml.YAMLError) -> str:
    """` at line 4, column 3: expected ',' or ']', but got ':' (while parsing a flow
    sequence at line 2, column 12)`: where the parser stopped, and why."""
    if not isinstance(err, yaml.MarkedYAMLError):
        return ""
    where = ""
    if (mark := err.problem_mark) is not None:
        where = f" at line {mark.line + 1}, column {mark.column + 1}"
    reason = f": {_without_long_quotes(err.problem)}" if err.problem else ""
    if err.context:
        context = _without_long_quotes(err.context)
        if (start := err.context_mark) is not None:
            context += f" at line {start.line + 1}, column {start.column + 1}"
        reason += f" ({context})"
    return where + reason


class _YamlSource(YamlConfigSettingsSource):
    """pydantic-settings' YAML source, with errors that name the file and say what is wrong."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        path = Path(str(file_path))
        try:
            raw = super()._read_file(file_path)
        except UnicodeDecodeError:
            raise ConfigError(f"config file {path} is not UTF-8 text") from None
        except RecursionError:
            raise ConfigError(f"config file {path} is nested too deeply") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path} is not valid YAML{_yaml_reason(err)}") from None
        except OSError as err:
            raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
        except (ValueError, TypeError, IndexError, OverflowError):
            # Tagged scalars such as `!!int devin` fail in PyYAML's constructors with plain
            # Python errors rather than YAMLError.
            raise ConfigError(
                f"config file {path} is not valid YAML: a tagged value is wrong"
            ) from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys at the top level")
        if not all(isinstance(key, str) for key in raw):
            raise ConfigError(f"config file {path}: top-level keys must be strings")
        return raw


def _environment_problems() -> list[Problem]:
    """A mistyped DEVIN_EXPORTER_* variable is an error, as a mistyped file key is."""
    sections = [name.upper() for name in Settings.model_fields]
    problems = []
    for variable in sorted(os.environ):
        if not variable.startswith(ENV_PREFIX) or variable == CONFIG_ENV:
            continue
        section = variable.removeprefix(ENV_PREFIX).split("__", 1)[0]
        if section not in sections:
            hint = _did_you_mean(section, sections, spell=lambda s: f"{ENV_PREFIX}{s}")
            problems.append((variable, f"not a known setting{hint}"))
    return problems


def load_settings(path: Path | None, **overrides: Any) -> Settings:
    """Read and validate the settings; raises ConfigError naming the file and every key
    that is wrong (unknown variables, unknown keys, bad values, unreadable key files) at
    once. Only a file that cannot be read or parsed stops the check short."""
    source = f"{path} (or its {ENV_PREFIX}* environment overrides)" if path else "environment"
    problems = _environment_problems()

    def failed(first_line: str | None = None) -> ConfigError:
        lines = [first_line] if first_line else []
        if problems:
            lines.append(_describe(problems, source))
        return ConfigError("\n".join(lines))

    if path is not None and not path.is_file():
        # The YAML source skips a file that is not there; a named config must exist.
        reason = "not a file" if path.exists() else "No such file or directory"
        raise failed(f"cannot read config file {path}: {reason}")

    class FileSettings(Settings):
        model_config = SettingsConfigDict(yaml_file=path)

    try:
        settings = FileSettings(**overrides)
    except ConfigError as err:  # the file cannot be read or parsed
        raise failed(str(err)) from None
    except ValidationError as err:
        problems += _validation_problems(err)
    except SettingsError as err:  # an environment override that is not valid JSON
        problems.append((f"{ENV_PREFIX}*", str(err)))
    else:
        if not problems:
            return settings
    raise failed()
