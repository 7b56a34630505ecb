"""What a request may ask: a query the contract does not allow, a reversed range, a
bad cursor or too many days is a 422 in FastAPI's HTTPValidationError shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import exporter

from .served import (
    DAY,
    REQUIRED_WINDOW,
    V3,
    WINDOW,
    Served,
    T,
)

SPEC = (
    Path(exporter.__file__).parent
    / "devin"
    / "contract"
    / "devin-v3-org-metrics-sessions.openapi.yaml"
)


def assert_http_validation_error(body: Any) -> None:
    """The body has the spec's HTTPValidationError shape: detail, a list of {loc, msg, type}."""
    schemas = yaml.safe_load(SPEC.read_text(encoding="utf-8"))["components"]["schemas"]
    assert list(schemas["HTTPValidationError"]["properties"]) == ["detail"]
    assert list(body) == ["detail"]
    assert isinstance(body["detail"], list)
    assert body["detail"]
    for item in body["detail"]:
        assert set(item) == set(schemas["ValidationError"]["required"])
        assert all(isinstance(part, str | int) for part in item["loc"])
        assert isinstance(item["msg"], str)
        assert isinstance(item["type"], str)


async def test_missing_time_after_is_422_with_the_spec_shape(served: Served) -> None:
    response = await served.http.get(
        V3.format(org=served.org), params={"time_before": T}, headers=served.cog()
    )

    assert response.status_code == 422
    assert_http_validation_error(response.json())
    assert response.json() == {
        "detail": [{"loc": ["query", "time_after"], "msg": "Field required", "type": "missing"}]
    }


async def test_a_non_integer_time_before_is_422_with_the_spec_shape(served: Served) -> None:
    response = await served.http.get(
        V3.format(org=served.org),
        params={"time_after": T - DAY, "time_before": "yesterday"},
        headers=served.cog(),
    )

    assert response.status_code == 422
    assert_http_validation_error(response.json())
    [item] = response.json()["detail"]
    assert (item["loc"], item["type"]) == (["query", "time_before"], "int_parsing")


async def test_time_after_later_than_time_before_is_422(served: Served) -> None:
    response = await served.v3(after=T, before=T - DAY)

    assert response.status_code == 422
    assert_http_validation_error(response.json())


async def test_a_bad_v2_date_is_422_with_the_spec_shape(served: Served) -> None:
    response = await served.v2({"start": "last tuesday"})

    assert response.status_code == 422
    assert_http_validation_error(response.json())
    assert response.json()["detail"][0]["loc"] == ["query", "start"]


@pytest.mark.parametrize("path", REQUIRED_WINDOW)
async def test_a_missing_time_after_is_422(served: Served, path: str) -> None:
    response = await served.get(
        path.format(org=served.org),
        served.account.enterprise_service_user_key,
        {"time_before": T},
    )

    assert 422 == response.status_code
    assert [{"loc": ["query", "time_after"], "msg": "Field required", "type": "missing"}] == (
        response.json()["detail"]
    )


@pytest.mark.parametrize(
    ("path", "params", "loc"),
    [
        ("/v3/enterprise/organizations", {"first": 0}, ["query", "first"]),
        ("/v3/enterprise/organizations", {"first": 201}, ["query", "first"]),
        ("/v3/enterprise/consumption/cycles", {"after": "not a cursor"}, ["query", "after"]),
        ("/v3/enterprise/consumption/daily", {"time_after": T, "time_before": 0}, None),
        ("/v3/enterprise/metrics/active-users", {**WINDOW, "min_sessions": -1}, None),
        ("/v3/enterprise/metrics/prs", {"time_after": T, "time_before": "x"}, None),
        ("/v3/enterprise/consumption/daily", {"time_after": 0}, ["query", "time_after"]),
    ],
    ids=[
        "first-0",
        "first-201",
        "bad-cursor",
        "reversed",
        "negative-min",
        "not-int",
        "too-many-days",
    ],
)
async def test_bad_parameters_are_422_http_validation_errors(
    served: Served, path: str, params: dict[str, Any], loc: list[str] | None
) -> None:
    response = await served.ent_get(path, params)

    assert 422 == response.status_code
    [item] = response.json()["detail"]
    assert {"loc", "msg", "type"} == set(item)
    if loc is not None:
        assert loc == item["loc"]


@pytest.mark.parametrize(("params"), [{"limit": 0}, {"limit": 201}, {"skip": -1}])
async def test_bad_v2_page_parameters_are_422(served: Served, params: dict[str, int]) -> None:
    response = await served.v2_get("/v2/enterprise/organizations", params)

    assert 422 == response.status_code
