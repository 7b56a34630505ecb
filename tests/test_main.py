"""The builder's own logic: the demo's settings and what the start-up log states."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from exporter import main
from exporter.config import Settings, load_settings
from exporter.devin.table import ENDPOINTS
from exporter.polling.targets import Target


@pytest.fixture(autouse=True)
def _no_exporter_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep DEVIN_EXPORTER_* variables of the developer's shell out of these tests."""
    for name in list(os.environ):
        if name.startswith("DEVIN_EXPORTER_"):
            monkeypatch.delenv(name)


def target(endpoint: str, org: str, interval_seconds: float) -> Target:
    return Target(ENDPOINTS[endpoint], org, SecretStr("cog_x"), interval_seconds)


def test_intervals_name_each_polled_group_once_with_its_own_interval() -> None:
    targets = [
        target("v3_org_sessions", "org-a", 300.0),
        target("v3_org_sessions", "org-b", 300.0),
        target("v3_enterprise_org_consumption_daily", "org-c", 3600.0),  # a twin: its group
        target("v3_enterprise_consumption_cycles", "", 6 * 3600.0),
    ]

    assert "sessions:5m,consumption:1h,billing_cycles:6h" == main.intervals(targets)


def test_intervals_of_no_target_is_empty() -> None:
    assert "" == main.intervals([])


def test_a_plain_run_loads_neither_the_demo_nor_the_web_config_machinery() -> None:
    """Memory: the demo API (and the contract's validator), bcrypt/TLS loading and the
    backfill's progress bar cost megabytes a run does not use."""
    code = (
        "import sys, exporter.cli, exporter.main; "
        "print(','.join(sorted(m for m in sys.modules if m.startswith("
        "('exporter.demo', 'exporter.devin.spec', 'jsonschema', 'tqdm', "
        "'exporter.web.webconfig', 'exporter.web.security', "
        "'exporter.web.basic_auth', 'exporter.web.tls', 'bcrypt')))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert "" == loaded


async def test_a_reload_applies_max_repos_and_top_but_user_labels_wait_for_a_restart(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "hash.key"
    key_file.write_text("0123456789abcdef0123456789abcdef\n")

    def settings(max_repos: int, top: int, **attribution: str) -> Settings:
        return load_settings(
            None,
            devin={"service_user_key": "cog_x", "enterprise_key": "apk_user_y"},
            organizations=[{"id": "org-a"}],
            endpoints={
                "sessions_live": {"enabled": True, "max_repos": max_repos},
                "user_consumption": {"enabled": True, "top": top},
            },
            attribution=attribution,
        )

    async with httpx.AsyncClient() as http:
        runtime = main.build(settings(3, 20), http)
        assert (3, 20, "id") == (
            runtime.poller.sessions_max_repos,
            runtime.poller.attribution.top,
            runtime.poller.attribution.labels.mode,
        )
        runtime.reload(settings(5, 7, user_label="hashed", hash_key_file=str(key_file)))

        assert (5, 7, "id") == (
            runtime.poller.sessions_max_repos,
            runtime.poller.attribution.top,
            runtime.poller.attribution.labels.mode,
        )
        await runtime.close()
    fresh = main.attribution(settings(5, 7, user_label="hashed", hash_key_file=str(key_file)))
    assert ("hashed", b"0123456789abcdef0123456789abcdef") == (fresh.labels.mode, fresh.labels.key)
