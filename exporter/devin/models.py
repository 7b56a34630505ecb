"""Typed, lenient models of Devin's responses (see exporter/devin/contract/)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    TypeAdapter,
    ValidationError,
    field_validator,
)

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
    model_config = ConfigDict(
        extra="ignore", frozen=True, strict=True, allow_inf_nan=False, defer_build=True
    )

    # Fields the contract requires but that are read as optional: a null or absent one
    # drops only its own series (and is counted), never the whole answer.
    EXPECTED: ClassVar[tuple[str, ...]] = ()

    def missing(self) -> list[str]:
        """The expected fields that came null or absent."""
        return [name for name in self.EXPECTED if getattr(self, name) is None]


class SessionMetrics(_Response):
    """`SessionMetricsResponse` of `GET /v3/{organizations/{org_id},enterprise}/metrics/sessions`.

    Every field is required by the contract, yet an organisation with no sessions in a
    window may plausibly get `avg_acus_per_session: null`: each field is read as optional
    so that one null costs only its own series.
    """

    EXPECTED: ClassVar[tuple[str, ...]] = (
        "sessions_created_count",
        "sessions_created_by_size",
        "sessions_created_by_origin",
        "sessions_created_with_playbook_count",
        "sessions_created_with_search_count",
        "sessions_with_merged_prs_count",
        "sessions_with_merged_prs_by_size",
        "avg_acus_per_session",
    )

    sessions_created_count: Count | None = None
    sessions_created_by_size: _Counts | None = None
    sessions_created_by_origin: _Counts | None = None
    sessions_created_with_playbook_count: Count | None = None
    sessions_created_with_search_count: Count | None = None
    sessions_with_merged_prs_count: Count | None = None
    sessions_with_merged_prs_by_size: _Counts | None = None
    avg_acus_per_session: Annotated[float, Field(ge=0, le=1e15)] | None = None

    @field_validator("sessions_created_by_origin", mode="after")
    @classmethod
    def _all_origins(cls, counts: dict[str, int] | None) -> dict[str, int] | None:
        return None if counts is None else _with_known_keys(counts, KNOWN_ORIGINS)

    @field_validator("sessions_created_by_size", "sessions_with_merged_prs_by_size", mode="after")
    @classmethod
    def _all_sizes(cls, counts: dict[str, int] | None) -> dict[str, int] | None:
        return None if counts is None else _with_known_keys(counts, KNOWN_SIZES)


class EnterpriseSessions(_Response):
    """`SessionsMetrics` of `GET /v2/enterprise/metrics/sessions`."""

    sessions_count: Count


# ACUs are fractional; the bound keeps a hostile body from producing absurd samples.
Acus = Annotated[float, Field(ge=0, le=1e15)]
# Unix seconds: from the epoch to the year 6325, so that milliseconds fail loudly.
UnixSeconds = Annotated[int, Field(ge=0, le=2**37)]
# Billing days start at midnight PST, 08:00 UTC: v3 `date` numbers fall there.
BILLING_DAY_OFFSET_SECONDS = 8 * 3600
# Always present in `acus_by_product`, as 0.0 when absent or null (the reference: a product
# without product-level data "defaults to 0.0"); products beyond these are kept when sent.
KNOWN_PRODUCTS = ("devin", "cascade", "terminal", "review")

_Text = Annotated[str, Field(max_length=256)]
_Id = Annotated[str, Field(min_length=1, max_length=128)]
_Products = Annotated[dict[_Key, Acus], Field(max_length=64)]
_Item = TypeVar("_Item", bound=BaseModel)


def _unix_seconds(value: Any) -> Any:
    """An ISO 8601 date-time (v2) as Unix seconds; anything else is left to validation."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
    return value


class PrMetrics(_Response):
    """`PrMetricsResponse` of `GET /v3/{organizations/{org_id},enterprise}/metrics/prs`.

    `opened` counts PRs *currently* open, not opened in the window (the SDK's reading).
    """

    EXPECTED: ClassVar[tuple[str, ...]] = (
        "prs_created_count",
        "prs_opened_count",
        "prs_closed_count",
        "prs_merged_count",
    )

    prs_created_count: Count | None = None
    prs_opened_count: Count | None = None
    prs_closed_count: Count | None = None
    prs_merged_count: Count | None = None
    # PRs Devin did not create but pushed commits to (SDK only; optional).
    prs_taken_over_count: Count | None = None
    prs_taken_over_opened_count: Count | None = None
    prs_taken_over_merged_count: Count | None = None
    prs_taken_over_closed_count: Count | None = None


class V2PrMetrics(_Response):
    """The body of `GET /v2/enterprise/metrics/prs`: no `_count` suffix and no created
    count; `opened` means opened in the period (the older v2 usage page), v3's created."""

    EXPECTED: ClassVar[tuple[str, ...]] = ("prs_opened", "prs_closed", "prs_merged")

    prs_opened: Count | None = None
    prs_closed: Count | None = None
    prs_merged: Count | None = None


class UsageMetrics(_Response):
    """`GET /v3/{organizations/{org_id},enterprise}/metrics/usage`: counts over the range."""

    EXPECTED: ClassVar[tuple[str, ...]] = (
        "sessions_count",
        "searches_count",
        "prs_created_count",
        "prs_merged_count",
    )

    sessions_count: Count | None = None
    searches_count: Count | None = None
    prs_created_count: Count | None = None
    prs_merged_count: Count | None = None


class SearchMetrics(_Response):
    """`GET /v3/{organizations/{org_id},enterprise}/metrics/searches`."""

    searches_created_count: Count = Field(
        validation_alias=AliasChoices("searches_created_count", "searches_count")
    )


class ActiveUsers(_Response):
    """`ActiveUserMetricsResponse`: unique users with a session or a search in the range.

    Also one period of dau/wau/mau, whose `end_time` is inclusive (`...:59:59`).
    """

    active_users: Count
    start_time: UnixSeconds | None = None
    end_time: UnixSeconds | None = None


class ActiveUsersSeries(RootModel[Annotated[list[ActiveUsers], Field(max_length=5000)]]):
    """The plain JSON array of `GET .../metrics/{dau,wau,mau}`, in the order sent."""

    model_config = ConfigDict(frozen=True, strict=True)


class ConsumptionDay(_Response):
    """One billing day of `consumption_by_date`; `date` is its start in Unix seconds.

    v3 sends `date` as a number (the examples fall at 08:00 UTC, midnight PST), v2 as a
    `YYYY-MM-DD` key: a bare date becomes 08:00 UTC of that day, an ISO date-time its moment.
    `acus_by_product` is None when not sent (v2 has no product split).
    """

    date: UnixSeconds
    acus: Acus
    acus_by_product: _Products | None = None

    @field_validator("date", mode="before")
    @classmethod
    def _date_as_seconds(cls, value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and len(value) == 10:
            try:
                day = date.fromisoformat(value)
            except ValueError:
                return value
            midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return int(midnight.timestamp()) + BILLING_DAY_OFFSET_SECONDS
        return _unix_seconds(value)

    @field_validator("acus_by_product", mode="before")
    @classmethod
    def _drop_null_products(cls, value: Any) -> Any:
        # `review` is `number | null`: null means no data, the same as absent.
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if v is not None}
        return value

    @field_validator("acus_by_product", mode="after")
    @classmethod
    def _all_products(cls, acus: dict[str, float] | None) -> dict[str, float] | None:
        return None if acus is None else {**dict.fromkeys(KNOWN_PRODUCTS, 0.0), **acus}


_USERS: TypeAdapter[dict[str, float]] = TypeAdapter(
    dict[_Id, Acus], config=ConfigDict(strict=True, allow_inf_nan=False)
)
# Users of one enterprise in one answer: more is no answer of Devin's (and the response
# size cap bounds it anyway).
MAX_USERS = 100_000


class DailyConsumption(_Response):
    """`ConsumptionResponse` of `GET .../consumption/daily` (v3), or the v2 body, normalised.

    v3 sends `consumption_by_date` as a list of days; v2 as a map `{"YYYY-MM-DD": acus}`,
    read here into the same list. Days come out sorted by date.
    """

    total_acus: Acus
    consumption_by_date: Annotated[list[ConsumptionDay], Field(max_length=5000)]
    # v2 only; absent in v3.
    consumption_by_org_id: Annotated[dict[_Id, Acus], Field(max_length=10000)] = Field(
        default_factory=dict
    )
    # v2 only, and optional there: user id -> ACUs over the range. None when not sent (an
    # absence is no user's zero).
    consumption_by_user: Annotated[dict[_Id, Acus], Field(max_length=MAX_USERS)] | None = None

    @field_validator("consumption_by_user", mode="before")
    @classmethod
    def _users_unnamed(cls, value: Any) -> Any:
        """Per-user ACUs, checked so that an error never names a user: user ids may be
        private (attribution.user_label hashed), and errors reach logs."""
        if value is None:
            return None
        try:
            return _USERS.validate_python(value)
        except ValidationError:
            raise ValueError("a user id or a user's ACUs is not of the documented shape") from None

    @field_validator("consumption_by_date", mode="before")
    @classmethod
    def _v2_map_as_list(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return [{"date": day, "acus": acus} for day, acus in value.items()]
        return value

    @field_validator("consumption_by_date", mode="after")
    @classmethod
    def _by_date(cls, days: list[ConsumptionDay]) -> list[ConsumptionDay]:
        return sorted(days, key=lambda d: d.date)


class SubcategoryMetrics(_Response):
    """One subcategory of a `CategoryMetrics`."""

    subcategory_id: _Text | None = None
    display_name: _Text = ""
    sessions_count: Count
    acus: Acus


class CategoryMetrics(_Response):
    """One category of `GET /v3/enterprise/metrics/sessions-by-category`."""

    category: Annotated[str, Field(min_length=1, max_length=128)]
    sessions_count: Count
    acus: Acus
    subcategories: Annotated[list[SubcategoryMetrics], Field(max_length=256)] = Field(
        default_factory=list
    )


class SessionsByCategory(_Response):
    """`GET /v3/enterprise/metrics/sessions-by-category`."""

    categories: Annotated[list[CategoryMetrics], Field(max_length=256)]


class BillingCycle(_Response):
    """A billing cycle: its bounds, Unix seconds, `end` exclusive.

    v3 (`GET /v3/enterprise/consumption/cycles`) names them `after` and `before` without
    defining them, as integers; v2 (`GET /v2/enterprise/consumption/cycles`) `start` and
    `end`, as date-times. An `end` at :59 seconds (the older v2 page's example ends a
    cycle at 23:59:59 and starts the next at 00:00:00) is the cycle's last second, so the
    cycle ends one second later; any other `end` is where the next cycle begins.
    """

    start: UnixSeconds = Field(validation_alias=AliasChoices("after", "start"))
    end: UnixSeconds = Field(validation_alias=AliasChoices("before", "end"))

    @field_validator("start", "end", mode="before")
    @classmethod
    def _iso_as_seconds(cls, value: Any) -> Any:
        return _unix_seconds(value)

    @field_validator("end", mode="after")
    @classmethod
    def _exclusive_end(cls, end: int) -> int:
        return end + 1 if end % 60 == 59 else end


class BillingCycles(RootModel[Annotated[list[BillingCycle], Field(max_length=5000)]]):
    """The plain JSON array of `GET /v2/enterprise/consumption/cycles`, in the order sent."""

    model_config = ConfigDict(frozen=True, strict=True)


class AcuLimit(_Response):
    """One item of `GET /v3/enterprise/consumption/acu-limits/devin`: the ACUs its scope may
    consume in one billing cycle. `org_id` set: an organisation's limit; `user_id` set: a
    user's; neither: the enterprise's. A null limit is no limit."""

    cycle_acu_limit: Acus | None = None
    scope: Annotated[str, Field(max_length=64)] | None = None
    org_id: _Id | None = None
    user_id: Annotated[str, Field(max_length=128)] | None = None


class OrganizationSummary(_Response):
    """An organisation of `GET /v3/enterprise/organizations` or `/v2/enterprise/organizations`.

    v3 calls the display name `name`, v2 `org_name`. Times are Unix seconds (v2 sends
    ISO date-times, converted here).
    """

    org_id: _Id
    name: _Text = Field(validation_alias=AliasChoices("name", "org_name"))
    created_at: UnixSeconds | None = None
    updated_at: UnixSeconds | None = None
    max_cycle_acu_limit: Acus | None = None
    max_session_acu_limit: Acus | None = None
    # v2 only.
    org_admin_count: Count | None = None
    org_member_count: Count | None = None
    org_user_count: Count | None = None

    @field_validator("created_at", "updated_at", mode="before")
    @classmethod
    def _iso_as_seconds(cls, value: Any) -> Any:
        return _unix_seconds(value)


# A status, status detail or origin becomes a label value: unknown ones pass through,
# cut to this length so that a hostile body cannot make long label values.
LABEL_VALUE_MAX = 64


def _label_value(value: Any) -> Any:
    return value[:LABEL_VALUE_MAX] if isinstance(value, str) else value


class SessionPullRequest(_Response):
    """A `SessionPullRequest` of a session: its URL (the repository is read from it)."""

    pr_url: Annotated[str, Field(max_length=2048)]
    pr_state: str | None = None


class SessionItem(_Response):
    """One `SessionResponse` of `GET /v3/{organizations/{org_id},enterprise}/sessions`: only
    the fields the exporter reads (ids, users, titles and tags never become labels)."""

    session_id: _Id
    org_id: Annotated[str, Field(max_length=128)]
    status: Annotated[str, Field(min_length=1)]
    status_detail: str | None = None
    origin: str | None = None
    acus_consumed: Acus
    created_at: UnixSeconds
    updated_at: UnixSeconds
    # Required by the contract; read as optional (none: no pull request to attribute).
    pull_requests: Annotated[list[SessionPullRequest], Field(max_length=1000)] = Field(
        default_factory=list
    )

    @field_validator("status", "status_detail", "origin", mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return _label_value(value)


class CursorPage(_Response, Generic[_Item]):
    """One page of a v3 list: `first`/`after` in, `end_cursor` out while `has_next_page`."""

    items: Annotated[list[_Item], Field(max_length=1000)]
    has_next_page: bool = False
    end_cursor: Annotated[str, Field(max_length=1024)] | None = None
    total: Count | None = None


class OffsetPage(_Response, Generic[_Item]):
    """One page of a v2 list: `skip`/`limit` in; `has_more`, and `next_cursor` (a skip)."""

    items: Annotated[list[_Item], Field(max_length=1000)]
    total: Count | None = None
    skip: Count | None = None
    limit: Count | None = None
    has_more: bool = False
    next_cursor: Count | None = None


def validation_detail(body: Any) -> str:
    """What an error body says, uncut: FastAPI's `HTTPValidationError` or RFC 9457's problem.

    A string `detail` as it is; else `loc: msg` of the first item of a `detail` (FastAPI) or
    `errors` (problem details, 422) list; else a problem's `title`; else "".
    """
    if not isinstance(body, dict):
        return ""
    detail = body.get("detail")
    if isinstance(detail, str) and detail:
        return detail
    for items in (detail, body.get("errors")):
        if isinstance(items, list) and items and isinstance(items[0], dict):
            first = items[0]
            loc = first.get("loc", [])
            where = ".".join(str(p) for p in loc) if isinstance(loc, list) else str(loc)
            return f"{where}: {first.get('msg', '')}"
    title = body.get("title")
    return title if isinstance(title, str) else ""
