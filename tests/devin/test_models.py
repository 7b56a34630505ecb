"""Devin's response models: lenient about new keys and null or absent fields, strict about
the shape of a count."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from exporter.devin.models import (
    KNOWN_ORIGINS,
    KNOWN_PRODUCTS,
    KNOWN_SIZES,
    AcuLimit,
    BillingCycle,
    BillingCycles,
    DailyConsumption,
    EnterpriseSessions,
    PrMetrics,
    SessionMetrics,
    SessionsByCategory,
    UsageMetrics,
    V2PrMetrics,
    validation_detail,
)

SESSION_FIELDS = [
    "sessions_created_count",
    "sessions_created_by_size",
    "sessions_created_by_origin",
    "sessions_created_with_playbook_count",
    "sessions_created_with_search_count",
    "sessions_with_merged_prs_count",
    "sessions_with_merged_prs_by_size",
    "avg_acus_per_session",
]


def session_body(**changes: Any) -> dict[str, Any]:
    """A valid SessionMetricsResponse body, with `changes` applied."""
    body: dict[str, Any] = {
        "sessions_created_count": 10,
        "sessions_created_by_size": {"xs": 4, "s": 3, "m": 2, "l": 1, "xl": 0},
        "sessions_created_by_origin": {"slack": 6, "webapp": 4},
        "sessions_created_with_playbook_count": 2,
        "sessions_created_with_search_count": 3,
        "sessions_with_merged_prs_count": 5,
        "sessions_with_merged_prs_by_size": {"xs": 3, "s": 2},
        "avg_acus_per_session": 2.5,
    }
    body.update(changes)
    return body


def parse(body: dict[str, Any]) -> SessionMetrics:
    return SessionMetrics.model_validate_json(json.dumps(body))


def test_session_metrics_reads_every_documented_field() -> None:
    metrics = parse(session_body())

    assert metrics.sessions_created_count == 10
    assert metrics.sessions_created_with_playbook_count == 2
    assert metrics.sessions_created_with_search_count == 3
    assert metrics.sessions_with_merged_prs_count == 5
    assert metrics.avg_acus_per_session == 2.5
    assert metrics.missing() == []


def test_unknown_origin_key_is_kept_beside_the_known_ones() -> None:
    metrics = parse(session_body(sessions_created_by_origin={"slack": 6, "github": 4}))

    expected = {**dict.fromkeys(KNOWN_ORIGINS, 0), "slack": 6, "github": 4}
    assert metrics.sessions_created_by_origin == expected


def test_unknown_size_key_is_kept_beside_the_known_ones() -> None:
    metrics = parse(
        session_body(
            sessions_created_by_size={"xxl": 2, "m": 8},
            sessions_with_merged_prs_by_size={"xxl": 1},
        )
    )

    assert metrics.sessions_created_by_size == {"xs": 0, "s": 0, "m": 8, "l": 0, "xl": 0, "xxl": 2}
    assert metrics.sessions_with_merged_prs_by_size == {
        **dict.fromkeys(KNOWN_SIZES, 0),
        "xxl": 1,
    }


def test_known_keys_absent_from_the_body_are_zero() -> None:
    metrics = parse(
        session_body(
            sessions_created_by_origin={},
            sessions_created_by_size={},
            sessions_with_merged_prs_by_size={},
        )
    )

    assert metrics.sessions_created_by_origin == dict.fromkeys(KNOWN_ORIGINS, 0)
    assert metrics.sessions_created_by_size == dict.fromkeys(KNOWN_SIZES, 0)
    assert metrics.sessions_with_merged_prs_by_size == dict.fromkeys(KNOWN_SIZES, 0)


def test_avg_acus_may_arrive_as_an_integer() -> None:
    metrics = parse(session_body(avg_acus_per_session=3))

    assert metrics.avg_acus_per_session == 3.0


def test_unknown_top_level_fields_are_ignored() -> None:
    metrics = parse(session_body(sessions_abandoned_count=4, meta={"v": 2}))

    assert "sessions_abandoned_count" not in metrics.model_dump()
    assert metrics == parse(session_body())


@pytest.mark.parametrize("absent", [True, False], ids=["absent", "null"])
@pytest.mark.parametrize("field", SESSION_FIELDS)
def test_a_null_or_absent_field_is_none_and_named_by_missing(field: str, absent: bool) -> None:
    body = session_body(**{field: None})
    if absent:
        del body[field]

    metrics = parse(body)

    assert getattr(metrics, field) is None
    assert metrics.missing() == [field]
    complete = parse(session_body())
    assert {k: v for k, v in metrics.model_dump().items() if k != field} == {
        k: v for k, v in complete.model_dump().items() if k != field
    }


def test_a_null_average_and_an_absent_origin_breakdown_are_both_named() -> None:
    body = session_body(avg_acus_per_session=None)
    del body["sessions_created_by_origin"]

    metrics = parse(body)

    assert (metrics.avg_acus_per_session, metrics.sessions_created_by_origin) == (None, None)
    assert metrics.missing() == ["sessions_created_by_origin", "avg_acus_per_session"]
    assert metrics.sessions_created_count == 10


def test_an_empty_object_parses_with_every_field_missing() -> None:
    assert SessionMetrics.model_validate_json("{}").missing() == SESSION_FIELDS


@pytest.mark.parametrize(
    ("changes", "loc", "error_type"),
    [
        ({"sessions_created_count": "12"}, ("sessions_created_count",), "int_type"),
        ({"sessions_created_count": -1}, ("sessions_created_count",), "greater_than_equal"),
        ({"sessions_created_count": True}, ("sessions_created_count",), "int_type"),
        ({"sessions_created_count": 1.5}, ("sessions_created_count",), "int_type"),
        (
            {"sessions_created_by_origin": {"slack": "3"}},
            ("sessions_created_by_origin", "slack"),
            "int_type",
        ),
        (
            {"sessions_created_by_size": {"m": -2}},
            ("sessions_created_by_size", "m"),
            "greater_than_equal",
        ),
        (
            {"sessions_with_merged_prs_by_size": {"s": False}},
            ("sessions_with_merged_prs_by_size", "s"),
            "int_type",
        ),
        ({"avg_acus_per_session": -0.5}, ("avg_acus_per_session",), "greater_than_equal"),
        ({"avg_acus_per_session": "2.5"}, ("avg_acus_per_session",), "float_type"),
        ({"sessions_created_by_origin": [1, 2]}, ("sessions_created_by_origin",), "dict_type"),
    ],
)
def test_a_count_of_the_wrong_shape_is_rejected(
    changes: dict[str, Any], loc: tuple[str, ...], error_type: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(session_body(**changes))

    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(loc, error_type)]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_avg_acus_rejects_nan_and_infinity_in_json(literal: str) -> None:
    text = json.dumps(session_body(avg_acus_per_session=0.0)).replace("0.0", literal)

    with pytest.raises(ValidationError) as caught:
        SessionMetrics.model_validate_json(text)

    assert [e["loc"] for e in caught.value.errors()] == [("avg_acus_per_session",)]


def test_avg_acus_rejects_a_python_nan() -> None:
    with pytest.raises(ValidationError) as caught:
        SessionMetrics.model_validate(session_body(avg_acus_per_session=float("nan")))

    assert [e["loc"] for e in caught.value.errors()] == [("avg_acus_per_session",)]


def test_a_breakdown_key_of_65_characters_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        parse(session_body(sessions_created_by_origin={"o" * 65: 1}))

    assert caught.value.errors()[0]["loc"][0] == "sessions_created_by_origin"


def test_a_breakdown_of_more_than_64_keys_is_rejected() -> None:
    origins = {f"origin{i}": 1 for i in range(65)}

    with pytest.raises(ValidationError) as caught:
        parse(session_body(sessions_created_by_origin=origins))

    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [
        (("sessions_created_by_origin",), "too_long")
    ]


@pytest.mark.parametrize("body", ["[]", "null", '"text"', "3"])
def test_a_body_that_is_not_an_object_is_rejected(body: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SessionMetrics.model_validate_json(body)

    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [((), "model_type")]


# PrMetrics (v3), V2PrMetrics and UsageMetrics: every count optional, each listed when missing.


def test_pr_metrics_read_the_four_counts_and_the_optional_taken_over_ones() -> None:
    prs = PrMetrics.model_validate_json(
        '{"prs_created_count": 12, "prs_opened_count": 3, "prs_closed_count": 2,'
        ' "prs_merged_count": 7, "prs_taken_over_count": 1}'
    )

    assert (12, 3, 2, 7, 1, None) == (
        prs.prs_created_count,
        prs.prs_opened_count,
        prs.prs_closed_count,
        prs.prs_merged_count,
        prs.prs_taken_over_count,
        prs.prs_taken_over_merged_count,
    )
    assert [] == prs.missing()


def test_pr_metrics_with_null_or_absent_counts_name_them() -> None:
    prs = PrMetrics.model_validate_json('{"prs_created_count": 4, "prs_merged_count": null}')

    assert (4, None, None, None) == (
        prs.prs_created_count,
        prs.prs_opened_count,
        prs.prs_closed_count,
        prs.prs_merged_count,
    )
    assert ["prs_opened_count", "prs_closed_count", "prs_merged_count"] == prs.missing()


@pytest.mark.parametrize(
    ("model", "body", "loc", "error_type"),
    [
        (PrMetrics, '{"prs_merged_count": "7"}', ("prs_merged_count",), "int_type"),
        (PrMetrics, '{"prs_created_count": -1}', ("prs_created_count",), "greater_than_equal"),
        (PrMetrics, "[]", (), "model_type"),
        (V2PrMetrics, '{"prs_opened": 1.5}', ("prs_opened",), "int_type"),
        (V2PrMetrics, "null", (), "model_type"),
        (UsageMetrics, '{"searches_count": "3"}', ("searches_count",), "int_type"),
        (UsageMetrics, '{"sessions_count": -2}', ("sessions_count",), "greater_than_equal"),
        (UsageMetrics, '"usage"', (), "model_type"),
    ],
)
def test_a_pr_or_usage_count_of_the_wrong_shape_is_rejected(
    model: type[PrMetrics | V2PrMetrics | UsageMetrics],
    body: str,
    loc: tuple[str, ...],
    error_type: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(body)

    assert [(loc, error_type)] == [(e["loc"], e["type"]) for e in caught.value.errors()]


def test_v2_prs_have_their_own_model_without_a_created_count() -> None:
    prs = V2PrMetrics.model_validate_json('{"prs_opened": 45, "prs_closed": 42, "prs_merged": 38}')

    assert {"prs_opened": 45, "prs_closed": 42, "prs_merged": 38} == prs.model_dump()
    assert [] == prs.missing()
    assert ["prs_closed"] == V2PrMetrics.model_validate_json(
        '{"prs_opened": 1, "prs_closed": null, "prs_merged": 0}'
    ).missing()


def test_usage_metrics_read_the_four_counts_and_name_the_missing_ones() -> None:
    usage = UsageMetrics.model_validate_json(
        '{"sessions_count": 9, "searches_count": 4, "prs_created_count": 3,'
        ' "prs_merged_count": 2, "prs_opened_count": 1}'
    )
    partial = UsageMetrics.model_validate_json('{"sessions_count": 9, "searches_count": null}')

    assert (9, 4, 3, 2) == (
        usage.sessions_count,
        usage.searches_count,
        usage.prs_created_count,
        usage.prs_merged_count,
    )
    assert [] == usage.missing()
    assert ["searches_count", "prs_created_count", "prs_merged_count"] == partial.missing()


# DailyConsumption: the known products, review among them, are always there.


def consumption(products: dict[str, Any]) -> DailyConsumption:
    day = {"date": 1733385600, "acus": 2.0, "acus_by_product": products}
    return DailyConsumption.model_validate_json(
        json.dumps({"total_acus": 2.0, "consumption_by_date": [day]})
    )


def test_review_is_a_known_product() -> None:
    assert ("devin", "cascade", "terminal", "review") == KNOWN_PRODUCTS


@pytest.mark.parametrize(
    "products",
    [{"devin": 2.0, "review": None}, {"devin": 2.0}],
    ids=["null", "absent"],
)
def test_a_null_or_absent_review_is_zero(products: dict[str, Any]) -> None:
    (day,) = consumption(products).consumption_by_date

    assert {"devin": 2.0, "cascade": 0.0, "terminal": 0.0, "review": 0.0} == day.acus_by_product


def test_a_review_amount_is_kept() -> None:
    (day,) = consumption({"devin": 1.5, "review": 0.5}).consumption_by_date

    assert {"devin": 1.5, "cascade": 0.0, "terminal": 0.0, "review": 0.5} == day.acus_by_product


# EnterpriseSessions.


def test_enterprise_sessions_reads_the_count_and_ignores_unknown_fields() -> None:
    sessions = EnterpriseSessions.model_validate_json('{"sessions_count": 42, "by_org": {"a": 1}}')

    assert sessions.sessions_count == 42
    assert sessions.model_dump() == {"sessions_count": 42}


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ("{}", "missing"),
        ('{"sessions_count": "42"}', "int_type"),
        ('{"sessions_count": -1}', "greater_than_equal"),
        ('{"sessions_count": true}', "int_type"),
        ('{"sessions_count": NaN}', "int_type"),
        ('{"sessions_count": 4.2}', "int_type"),
    ],
)
def test_enterprise_sessions_rejects_a_bad_count(body: str, error_type: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EnterpriseSessions.model_validate_json(body)

    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [
        (("sessions_count",), error_type)
    ]


# validation_detail: what the client shows of a 422.


def test_validation_detail_is_loc_and_msg_of_the_first_error() -> None:
    body = {
        "detail": [
            {"loc": ["query", "time_after"], "msg": "Field required", "type": "missing"},
            {"loc": ["query", "time_before"], "msg": "Field required", "type": "missing"},
        ]
    }

    assert validation_detail(body) == "query.time_after: Field required"


def test_validation_detail_takes_a_string_detail_as_it_is() -> None:
    assert validation_detail({"detail": "Invalid or missing API key"}) == (
        "Invalid or missing API key"
    )


@pytest.mark.parametrize("body", [None, [], {}, {"detail": []}, {"detail": [3]}, "text"])
def test_validation_detail_is_empty_for_other_bodies(body: Any) -> None:
    assert validation_detail(body) == ""


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (SessionMetrics, {"avg_acus_per_session": 1e308}),
        (SessionMetrics, {"sessions_created_count": 2**53 + 1}),
        (DailyConsumption, {"total_acus": 1e16, "consumption_by_date": []}),
        (
            DailyConsumption,
            {"total_acus": 1.0, "consumption_by_date": [{"date": 0, "acus": 1e300}]},
        ),
        (
            SessionsByCategory,
            {"categories": [{"category": "c", "sessions_count": 1, "acus": 1e20}]},
        ),
    ],
    ids=["average", "count", "total-acus", "day-acus", "category-acus"],
)
def test_every_number_from_upstream_is_bounded_like_the_counts(
    model: type[BaseModel], body: dict[str, Any]
) -> None:
    """A value no real answer holds (1e308 ACUs) fails the answer, as a count past 2**53
    does, rather than becoming a sample."""
    with pytest.raises(ValidationError):
        model.model_validate(body)


def test_a_v2_cycle_with_its_last_second_as_end_ends_one_second_later() -> None:
    inclusive = BillingCycles.model_validate(
        [{"start": "2024-01-05T08:00:00Z", "end": "2024-02-05T07:59:59Z"}]
    ).root[0]
    exclusive = BillingCycles.model_validate(
        [{"start": "2024-01-05T08:00:00Z", "end": "2024-02-05T08:00:00Z"}]
    ).root[0]

    assert (1704441600, 1707120000) == (inclusive.start, inclusive.end)
    assert inclusive == exclusive


def test_a_v3_cycle_reads_after_and_before_as_unix_seconds() -> None:
    cycle = BillingCycle.model_validate({"after": 1704441600, "before": 1707120000})

    assert (1704441600, 1707120000) == (cycle.start, cycle.end)


@pytest.mark.parametrize(
    "body",
    [
        {"cycle_acu_limit": -1, "scope": "org", "org_id": "org-a"},
        {"cycle_acu_limit": "100", "scope": "org", "org_id": "org-a"},
        {"cycle_acu_limit": 1e300, "scope": "enterprise"},
    ],
)
def test_an_acu_limit_that_is_no_number_of_acus_is_rejected(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AcuLimit.model_validate(body)


def test_a_null_acu_limit_reads_as_no_limit() -> None:
    assert (
        AcuLimit.model_validate({"cycle_acu_limit": None, "scope": "org"}).cycle_acu_limit is None
    )


@pytest.mark.parametrize("value", [-1, "12", True, None, [1]])
def test_a_bad_per_user_value_fails_without_naming_the_user(value: object) -> None:
    body = {"total_acus": 1, "consumption_by_date": {}, "consumption_by_user": {"user_x1": value}}

    with pytest.raises(ValidationError) as raised:
        DailyConsumption.model_validate(body)

    errors = raised.value.errors(include_input=False, include_url=False)
    assert [("consumption_by_user",)] == [e["loc"] for e in errors]
    assert "user_x1" not in str(errors)


def test_per_user_acus_are_kept_and_their_absence_is_none() -> None:
    body: dict[str, object] = {"total_acus": 3, "consumption_by_date": {"2026-11-20": 3}}
    assert DailyConsumption.model_validate(body).consumption_by_user is None
    body["consumption_by_user"] = {"user_a": 2, "user_b": 0.5}
    assert {"user_a": 2.0, "user_b": 0.5} == DailyConsumption.model_validate(
        body
    ).consumption_by_user
