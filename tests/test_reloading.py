"""Every setting says how a change of it takes effect; a reload names what it cannot apply."""

from __future__ import annotations

import re
from pathlib import Path

from exporter.config import Settings, load_settings
from exporter.reloading import APPLIED, RESTART, declared, needing_restart


def test_every_leaf_setting_declares_whether_a_reload_applies_it() -> None:
    undeclared = [key for key, how in declared(Settings).items() if how is None]
    assert [] == undeclared


def test_the_response_cap_and_the_timeout_are_applied_and_the_listener_is_not() -> None:
    found = declared(Settings)
    assert (APPLIED, APPLIED) == (found["devin.max_response_bytes"], found["devin.timeout"])
    assert (RESTART, RESTART) == (found["web.listen_address"], found["state.path"])
    assert APPLIED == found["endpoints.sessions_live.lookback"]


def test_needing_restart_names_each_changed_setting_that_a_reload_cannot_apply() -> None:
    orgs = [{"id": "org-a", "service_user_key": "cog_a"}]
    old = load_settings(None, organizations=orgs)
    new = load_settings(
        None,
        organizations=[*orgs, {"id": "org-b", "service_user_key": "cog_b"}],
        devin={"requests_per_second": 2, "max_response_bytes": 4096, "timeout": "3s"},
        web={"listen_address": "127.0.0.1:9100"},
        poll_interval="1m",
    )

    assert ["devin.requests_per_second", "web.listen_address"] == needing_restart(old, new)
    assert [] == needing_restart(old, old)


def test_the_readme_lists_exactly_the_settings_that_need_a_restart() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    listed = readme.split("<!-- restart-keys:start -->")[1].split("<!-- restart-keys:end -->")[0]
    restart = [key for key, how in declared(Settings).items() if how is RESTART]
    assert restart == re.findall(r"`([a-z_.]+)`", listed)
