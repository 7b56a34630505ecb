"""Prometheus duration strings (`30s`, `5m`, `1h30m`, `7d`) as seconds."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "y": 365 * 86400,
}
# Units must appear largest first and at most once, as in Prometheus (`1h30m`, not `30m1h`).
_DURATION = re.compile(
    r"^(?:(?P<y>\d+)y)?(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?"
    r"(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?$"
)


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration; raises ValueError for anything else or zero."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{_quoted(text)} is not a duration such as 30s, 5m, 1h30m or 7d")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for unit, n in match.groupdict().items() if n)
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return float(seconds)


def _to_seconds(value: Any) -> Any:
    if isinstance(value, bool):  # YAML's `yes` is not one second
        raise ValueError("must be a duration such as 30s or 5m, not a boolean")  # noqa: TRY004
    if isinstance(value, str):
        return parse_duration(value)
    return value


Seconds = Annotated[float, BeforeValidator(_to_seconds)]
"""A config field that takes `5m` or a plain number of seconds."""


def _quoted(text: str) -> str:
    """The value for an error message: quoted when short, else left out, since a long one
    may be a key pasted into the wrong field, and config errors must never show a key."""
    return repr(text) if len(text) <= 16 else "the value"
