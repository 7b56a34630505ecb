"""What went wrong with a request to Devin, said safely: the error, its reason (the
`reason` label of devin_exporter_poll_errors_total), and details without the key."""

from __future__ import annotations

import json
from typing import Final

from exporter.devin.models import validation_detail
from exporter.devin.redact import redact

# Why a poll failed: the `reason` label of devin_exporter_poll_errors_total.
REASONS: Final = (
    "timeout",
    "connection",
    "rate_limited",
    "unauthorized",
    "forbidden",
    "not_found",
    "client_error",
    "server_error",
    "invalid_response",
    "response_too_large",
)

_STATUS_REASONS: Final = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    429: "rate_limited",
}
_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
# A detail from the API is cut to this many characters.
_DETAIL_CHARS: Final = 200


class DevinAPIError(Exception):
    """A request that did not yield a usable answer; `reason` is one of REASONS."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.reason = reason
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        text = reason if status is None else f"{reason} (HTTP {status})"
        super().__init__(f"{text}: {detail}" if detail else text)

    @property
    def transient(self) -> bool:
        """Worth another try: timeouts, dropped connections, 429 and 500/502/503/504."""
        return self.reason in ("timeout", "connection") or self.status in _RETRY_STATUSES


def reason_for_status(status: int) -> str:
    """The poll-error reason for a non-2xx HTTP status."""
    if status in _STATUS_REASONS:
        return _STATUS_REASONS[status]
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "invalid_response"


def invalid_response(detail: str) -> DevinAPIError:
    """A 200 answer that cannot be used: `detail` says why (already redacted)."""
    return DevinAPIError("invalid_response", status=200, detail=detail)


def error_detail(content: bytes | bytearray) -> str:
    """The detail of an error answer's body (problem details or FastAPI's), or ""."""
    try:
        return validation_detail(json.loads(content))
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return ""


def safe_detail(text: str, secret: str) -> str:
    """Text from the API, without any fragment of the key (a hostile API may echo it), cut
    to 200 characters. The fragments go before the cut, so that none can survive it."""
    return redact(text, [secret])[:_DETAIL_CHARS]
