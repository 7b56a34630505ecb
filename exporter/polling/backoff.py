"""After a 401 or 403 a target's polls slow down: keys do not flake, so asking again at
the full rate only fills the log and Devin's audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# The reasons of DevinAPIError that mean the key was refused.
AUTH_REASONS: Final = frozenset({"unauthorized", "forbidden"})
# The delay doubles from the target's poll interval up to this.
AUTH_BACKOFF_MAX_SECONDS: Final = 3600.0


@dataclass
class AuthBackoff:
    """A target whose key was refused: how often in a row, and when to try again."""

    reason: str
    failures: int
    retry_at: float


def refused_again(
    previous: AuthBackoff | None, reason: str, interval_seconds: float, now: float
) -> AuthBackoff:
    """The backoff after one more refusal: the delay doubles with each one in a row."""
    failures = previous.failures + 1 if previous else 1
    delay = min(interval_seconds * 2 ** (failures - 1), AUTH_BACKOFF_MAX_SECONDS)
    return AuthBackoff(reason, failures, now + delay)
