"""The web addresses as the config file and the flags take them: `host:port`, a URL path."""

from __future__ import annotations

import re

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
