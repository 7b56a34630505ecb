"""The request plan: which targets a replica polls and what one cycle costs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporter.cli import main
from exporter.config import ConfigError, Settings, load_settings
from exporter.polling.plan import request_plan


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "devin": {"service_user_key": "cog_x", "enterprise_key": "apk_user_y"},
        "organizations": [{"id": f"org-{i}"} for i in range(5)],
        "windows": ["1h", "24h", "7d", "30d", "today", "cycle"],
    }
    values.update(overrides)
    return load_settings(None, **values)


def test_rolling_endpoints_cost_one_request_per_org_and_window() -> None:
    plan = request_plan(settings())
    sessions = [p for p in plan if p.endpoint == "v3_org_sessions"]
    assert (5, 5 * 6) == (len(sessions), sum(p.requests for p in sessions))
    enterprise = [p for p in plan if p.endpoint == "v2_enterprise_sessions"]
    assert 6 * 6 == sum(p.requests for p in enterprise)


def test_a_disabled_endpoint_group_is_not_planned() -> None:
    plan = request_plan(settings(endpoints={"enterprise_sessions": {"enabled": False}}))
    assert {
        "v3_org_sessions",
        "v2_enterprise_consumption_cycles",  # billing_cycles: on whenever a key can read it
        "v2_enterprise_organizations",  # acu_limits: likewise
    } == {p.endpoint for p in plan}


def test_each_group_has_its_own_interval() -> None:
    plan = request_plan(settings(endpoints={"sessions": {"interval": "1m"}}))
    every = {p.endpoint: p.interval_seconds for p in plan}
    assert {60.0} == {p.interval_seconds for p in plan if p.endpoint == "v3_org_sessions"}
    assert {300.0} == {p.interval_seconds for p in plan if p.endpoint == "v2_enterprise_sessions"}
    assert 6 * 3600.0 == every["v2_enterprise_consumption_cycles"]
    assert 3600.0 == every["v2_enterprise_organizations"]


FULL = {"service_user_key": "cog_x", "enterprise_key": "apk_user_y"}


@pytest.mark.parametrize(
    ("devin", "billing", "expected"),
    [
        (
            {**FULL, "enterprise_service_user_key": "cog_e"},
            {},
            {"v3_enterprise_consumption_cycles", "v3_enterprise_acu_limits"},
        ),
        (FULL, {}, {"v2_enterprise_consumption_cycles", "v2_enterprise_organizations"}),
        ({"service_user_key": "cog_x"}, {"cycle_start_day": 23}, set()),
    ],
    ids=["v3", "v2", "cycle_start_day"],
)
def test_the_cycle_and_the_limits_are_read_from_the_first_source_a_key_can_read(
    devin: dict[str, str], billing: dict[str, int], expected: set[str]
) -> None:
    plan = request_plan(settings(devin=devin, billing=billing))
    read = {p.endpoint for p in plan if p.endpoint.startswith(("v3_enterprise", "v2_enterprise"))}
    assert expected <= read
    assert not {"v3_enterprise_consumption_cycles", "v2_enterprise_consumption_cycles"} & (
        read - expected
    )


def test_every_shard_reads_the_cycle_and_the_limits_and_shard_0_the_enterprise_total() -> None:
    devin = {**FULL, "enterprise_service_user_key": "cog_e"}
    endpoints = {"consumption": {"enabled": True}}
    plans = [
        {p.endpoint for p in request_plan(settings(devin=devin, endpoints=endpoints, sharding=s))}
        for s in ({"index": 0, "count": 2}, {"index": 1, "count": 2})
    ]
    billing = {
        "v3_enterprise_consumption_cycles",
        "v3_enterprise_acu_limits",
        "v3_enterprise_organizations",
    }
    assert billing <= plans[0]
    assert billing <= plans[1]
    assert "v3_enterprise_consumption_daily" in plans[0]
    assert "v3_enterprise_consumption_daily" not in plans[1]


def test_a_cycle_window_without_a_source_of_the_cycle_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"billing\.cycle_start_day") as error:
        settings(devin={"service_user_key": "cog_x"})
    assert "\n  windows: the cycle window needs to know the billing cycle" in str(error.value)
    assert "devin.enterprise_service_user_key" in str(error.value)
    assert "devin.enterprise_key" in str(error.value)
    with pytest.raises(ConfigError, match=r"billing\.cycle_start_day"):
        settings(endpoints={"billing_cycles": {"enabled": False}})


def test_once_explain_costs_the_billing_reads_at_10_organisations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cost the closing note quotes: 10 organisations, the default windows and groups,
    with an enterprise service user key (cycle, limits and listing hourly or slower)."""
    config = tmp_path / "config.yaml"
    orgs = ", ".join(f"{{id: org-{i}}}" for i in range(10))
    config.write_text(
        "devin: {service_user_key: cog_x, enterprise_service_user_key: cog_e}\n"
        f"organizations: [{orgs}]\n"
    )
    assert 0 == main(["once", "--explain", "--config", str(config)])
    out = capsys.readouterr().out
    for row, window, every in (
        ("v3_enterprise_consumption_cycles", "current", "6h"),
        ("v3_enterprise_acu_limits", "limits", "1h"),
        ("v3_enterprise_organizations", "limits", "1h"),
    ):
        assert re.search(rf"^{row} +\(enterprise\) +{window} +1 +{every}$", out, re.MULTILINE)
    # 10 orgs x 4 windows of sessions every 5m (480/h), and 1/6 + 1 + 1 for billing.
    assert "13 targets, 43 requests per cycle, 482 per hour" in out


def test_an_unknown_endpoint_group_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"endpoints\.sesions"):
        settings(endpoints={"sesions": {"enabled": False}})


def test_once_explain_prints_the_plan_and_its_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "devin: {service_user_key: cog_x}\norganizations: [{id: org-a}, {id: org-b}]\n"
    )
    assert 0 == main(["once", "--explain", "--config", str(config)])
    out = capsys.readouterr().out
    assert "v3_org_sessions  org-a  1h,24h,7d,30d  4" in out
    assert "2 targets, 8 requests per cycle, 96 per hour" in out


def test_bucketed_endpoints_cost_one_request_per_org_not_per_window() -> None:
    for orgs, windows in ((5, ["1h", "24h"]), (5, ["1h", "24h", "7d", "30d", "today", "cycle"])):
        plan = request_plan(
            settings(
                organizations=[{"id": f"org-{i}"} for i in range(orgs)],
                windows=windows,
                endpoints={"consumption": {"enabled": True}, "prs": {"enabled": True}},
            )
        )
        consumption = [p for p in plan if p.endpoint == "v3_org_consumption_daily"]
        prs = [p for p in plan if p.endpoint == "v3_org_prs"]
        assert orgs == sum(p.requests for p in consumption)
        assert orgs * len(windows) == sum(p.requests for p in prs)


def test_live_sessions_cost_one_listing_per_org_every_minute_whatever_the_windows() -> None:
    plan = request_plan(settings(endpoints={"sessions_live": {"enabled": True}}))
    live = [p for p in plan if p.endpoint == "v3_org_sessions_list"]
    assert [(f"org-{i}", ("live",), 1, 60.0) for i in range(5)] == [
        (p.org, p.windows, p.requests, p.interval_seconds) for p in live
    ]


def test_the_lookback_of_live_sessions_is_bounded() -> None:
    with pytest.raises(ConfigError, match=r"lookback"):
        settings(endpoints={"sessions_live": {"enabled": True, "lookback": "60d"}})


def test_per_user_consumption_costs_one_request_per_consumption_window_for_the_enterprise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "devin: {service_user_key: cog_x, enterprise_key: apk_user_y}\n"
        "organizations: [{id: org-a}, {id: org-b}]\n"
        "windows: [1h, 24h, 7d, today]\n"
        "endpoints: {enterprise_sessions: {enabled: false}, user_consumption: {enabled: true}}\n"
    )
    assert 0 == main(["once", "--explain", "--config", str(config)])
    out = capsys.readouterr().out
    # 1h is no whole billing day; cycle is there as for devin_acus_consumed (the enterprise
    # admin key reads Devin's v2 cycles).
    rows = [line.split() for line in out.splitlines()]
    assert [
        "v2_enterprise_user_consumption",
        "(enterprise)",
        "24h,today,7d,cycle",
        "4",
        "1h",
    ] in rows


def test_per_user_consumption_is_asked_by_shard_0_only_and_never_per_org() -> None:
    groups = {"user_consumption": {"enabled": True}}
    for index, expected in ((0, [""]), (1, [])):
        plan = request_plan(settings(endpoints=groups, sharding={"count": 2, "index": index}))
        assert expected == [p.org for p in plan if p.endpoint == "v2_enterprise_user_consumption"]


def test_per_user_consumption_without_the_enterprise_admin_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"user_consumption needs devin\.enterprise_key"):
        settings(
            devin={"service_user_key": "cog_x"}, endpoints={"user_consumption": {"enabled": True}}
        )
