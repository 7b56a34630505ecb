"""--demo: the operator's settings pointed at the demo API, on loopback unless told."""

from __future__ import annotations

from typing import Any

from exporter import demo_mode
from exporter.config import Settings
from exporter.demo.account import DemoAccount


def demo(overrides: dict[str, Any]) -> Settings:
    return demo_mode.demo_settings(None, overrides, DemoAccount.generate(3), "http://127.0.0.1:1")


def test_the_demo_binds_loopback_by_default() -> None:
    assert "127.0.0.1:9877" == demo({}).web.listen_address


def test_the_demo_binds_where_the_listen_address_flag_says() -> None:
    assert ":0" == demo({"web": {"listen_address": ":0"}}).web.listen_address


def test_another_web_flag_keeps_the_demo_on_loopback() -> None:
    settings = demo({"web": {"telemetry_path": "/probe"}})

    assert ("127.0.0.1:9877", "/probe") == (
        settings.web.listen_address,
        settings.web.telemetry_path,
    )


def test_the_demo_polls_every_group_at_the_pace_its_log_states() -> None:
    settings = demo({})

    groups = {group: settings.interval_of(group) for group in type(settings.endpoints).model_fields}
    assert {60.0} == set(groups.values())
    assert 60.0 == settings.poll_interval
