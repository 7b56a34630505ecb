"""Settings: a YAML file, overridden by `DEVIN_EXPORTER_<SECTION>__<KEY>` variables.

The package's public face; each concern has a module of its own:
`addresses` (host:port and the telemetry path), `keyfiles` (keys read from files),
`schema` (the sections), `settings` (the whole, its cross-section checks and policy),
`errors` (ConfigError and its messages), `load` (the sources and `load_settings`).
"""

from exporter.config.addresses import (
    DEFAULT_LISTEN_ADDRESS,
    RESERVED_PATHS,
    check_telemetry_path,
    parse_listen_address,
)
from exporter.config.errors import ConfigError, Problem
from exporter.config.keyfiles import MAX_KEY_FILE_BYTES
from exporter.config.load import CONFIG_ENV, config_path_from_env, load_settings
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
    SessionsLiveSettings,
    ShardingSettings,
    StateSettings,
    UserConsumptionSettings,
    WebSettings,
    WindowField,
)
from exporter.config.settings import (
    ENV_PREFIX,
    MAX_SEGMENTS,
    MAX_WINDOW_SECONDS,
    NO_CYCLE_SOURCE,
    Settings,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_LISTEN_ADDRESS",
    "ENV_PREFIX",
    "MAX_KEY_FILE_BYTES",
    "MAX_SEGMENTS",
    "MAX_WINDOW_SECONDS",
    "NO_CYCLE_SOURCE",
    "RESERVED_PATHS",
    "AttributionSettings",
    "BillingSettings",
    "ConfigError",
    "CycleSource",
    "DevinSettings",
    "DiscoverySettings",
    "EndpointSettings",
    "EndpointsSettings",
    "LogSettings",
    "Organization",
    "Problem",
    "Segment",
    "SessionsLiveSettings",
    "Settings",
    "ShardingSettings",
    "StateSettings",
    "UserConsumptionSettings",
    "WebSettings",
    "WindowField",
    "check_telemetry_path",
    "config_path_from_env",
    "load_settings",
    "parse_listen_address",
]
