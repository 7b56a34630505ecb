"""Typed, lenient models of Devin's metrics responses (see exporter/api/*.openapi.yaml)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The spec's keys. Devin has added origins before and will again: keys beyond these are
# kept and exported, never dropped; these are always present, as 0 when absent.
KNOWN_ORIGINS = (
    "api",
    "automation",
    "code_scan",
    "desktop",
    "jira",
    "linear",
    "slack",
    "teams",
    "webapp",
)
KNOWN_SIZES = ("xs", "s", "m", "l", "xl")

# A count beyond 2**53 is no real count, and cannot be a float sample exactly anyway.
Count = Annotated[int, Field(ge=0, le=2**53)]
# Any key becomes a label value; the bounds keep a hostile body from exploding cardinality.
_Key = Annotated[str, Field(min_length=1, max_length=64)]
_Counts = Annotated[dict[_Key, Count], Field(max_length=64)]


def _with_known_keys(counts: dict[str, int], known: tuple[str, ...]) -> dict[str, int]:
    return {**dict.fromkeys(known, 0), **counts}


class _Response(BaseModel):
    # Strict: a count that arrives as "12" or true is not the documented shape.
    # Unknown top-level fields are ignored so that the API may grow.
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, allow_inf_nan=False)


class SessionMetrics(_Response):
    """`SessionMetricsResponse` of `GET /v3/organizations/{org_id}/metrics/sessions`."""

    sessions_created_count: Count
    sessions_created_by_size: _Counts
    sessions_created_by_origin: _Counts
    sessions_created_with_playbook_count: Count
    sessions_created_with_search_count: Count
    sessions_with_merged_prs_count: Count
    sessions_with_merged_prs_by_size: _Counts
    avg_acus_per_session: Annotated[float, Field(ge=0)]

    @field_validator("sessions_created_by_origin", mode="after")
    @classmethod
    def _all_origins(cls, counts: dict[str, int]) -> dict[str, int]:
        return _with_known_keys(counts, KNOWN_ORIGINS)

    @field_validator("sessions_created_by_size", "sessions_with_merged_prs_by_size", mode="after")
    @classmethod
    def _all_sizes(cls, counts: dict[str, int]) -> dict[str, int]:
        return _with_known_keys(counts, KNOWN_SIZES)


class EnterpriseSessions(_Response):
    """`SessionsMetrics` of `GET /v2/enterprise/metrics/sessions`."""

    sessions_count: Count


def validation_detail(body: Any) -> str:
    """The first `msg` of a FastAPI `HTTPValidationError` body, if it is one (uncut)."""
    if isinstance(body, dict) and isinstance(body.get("detail"), list) and body["detail"]:
        first = body["detail"][0]
        if isinstance(first, dict):
            loc = ".".join(str(p) for p in first.get("loc", []))
            return f"{loc}: {first.get('msg', '')}"
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        detail: str = body["detail"]
        return detail
    return ""
