"""Loading: file < environment < explicit overrides, the config path, the YAML source and the
variables, every problem of a run reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from configs import ENTERPRISE_SECRET, MINIMAL, SECRET, config_error, load, write

from exporter.config import CONFIG_ENV, config_path_from_env, load_settings


def test_env_timeout_overrides_only_timeout_and_keeps_other_devin_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = f"""
    devin:
      base_url: http://devin.internal
      timeout: 3s
      max_concurrency: 4
      service_user_key: {SECRET}
    organizations:
      - id: org-a
    """
    monkeypatch.setenv("DEVIN_EXPORTER_DEVIN__TIMEOUT", "7s")

    settings = load(tmp_path, text)

    assert settings.devin.timeout == 7.0
    assert settings.devin.base_url == "http://devin.internal"
    assert settings.devin.max_concurrency == 4
    assert settings.devin.service_user_key is not None
    assert settings.devin.service_user_key.get_secret_value() == SECRET


def test_env_poll_interval_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVIN_EXPORTER_POLL_INTERVAL", "1m")

    settings = load(tmp_path, MINIMAL + "poll_interval: 10m\n")

    assert settings.poll_interval == 60.0


def test_explicit_overrides_beat_the_environment_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, MINIMAL + "web:\n  listen_address: ':9000'\n")
    monkeypatch.setenv("DEVIN_EXPORTER_WEB__LISTEN_ADDRESS", ":9001")

    settings = load_settings(path, web={"listen_address": "127.0.0.1:9002"})

    assert settings.web.listen_address == "127.0.0.1:9002"


def test_config_env_variable_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, MINIMAL + "poll_interval: 90s\n")
    monkeypatch.setenv(CONFIG_ENV, str(path))

    resolved = config_path_from_env(None)
    settings = load_settings(resolved)

    assert resolved == path
    assert settings.poll_interval == 90.0


def test_explicit_config_path_wins_over_the_env_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "from-env.yaml"))

    assert config_path_from_env(tmp_path / "explicit.yaml") == tmp_path / "explicit.yaml"


def test_no_config_path_without_flag_or_env_variable() -> None:
    assert config_path_from_env(None) is None


def test_environment_alone_is_a_complete_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVIN_EXPORTER_DEVIN__ENTERPRISE_KEY", ENTERPRISE_SECRET)

    settings = load_settings(None)

    assert settings.organizations == []
    assert settings.devin.enterprise_key is not None
    assert settings.devin.enterprise_key.get_secret_value() == ENTERPRISE_SECRET


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    message = config_error(path)

    assert message == f"cannot read config file {path}: No such file or directory"


def test_yaml_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, f"- {SECRET}\n- org-a\n")

    message = config_error(path)

    assert message == f"config file {path} must hold a mapping of keys at the top level"


def test_bad_env_override_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, MINIMAL)
    monkeypatch.setenv("DEVIN_EXPORTER_POLL_INTERVAL", "often")

    message = config_error(path)

    assert "poll_interval" in message
    assert "DEVIN_EXPORTER_" in message


def test_unparsable_env_override_of_a_list_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variable that is not valid JSON for a list must not escape as a traceback."""
    path = write(tmp_path, MINIMAL)
    monkeypatch.setenv("DEVIN_EXPORTER_ORGANIZATIONS", "[{")

    message = config_error(path)

    assert "organizations" in message


def test_an_unknown_variable_gets_the_nearest_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVIN_EXPORTER_LOGS__LEVEL", "debug")

    message = config_error(write(tmp_path, MINIMAL))

    assert [
        "  DEVIN_EXPORTER_LOGS__LEVEL: not a known setting; did you mean DEVIN_EXPORTER_LOG?"
    ] == message.splitlines()[1:]


def test_every_error_is_reported_in_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typo in a section does not hide its key files; a bad variable hides nothing."""
    missing = tmp_path / "missing.key"
    monkeypatch.setenv("DEVIN_EXPORTER_POL_INTERVAL", "1m")
    path = write(
        tmp_path,
        f"""
        devin:
          service_key: {SECRET}
          enterprise_key_file: {missing}
          timeout: soon
        organizations:
          - id: org-a
            service_user_key_file: {missing}
        windows: [1h, 1x]
        """,
    )

    message = config_error(path)

    no_file = f"cannot read {missing}: No such file or directory"
    assert [
        f"invalid configuration in {path} (or its DEVIN_EXPORTER_* environment overrides):",
        "  DEVIN_EXPORTER_POL_INTERVAL: not a known setting; did you mean "
        "DEVIN_EXPORTER_POLL_INTERVAL?",
        "  devin.timeout: 'soon' is not a duration such as 30s, 5m, 1h30m or 7d",
        f"  devin.enterprise_key_file: {no_file}",
        "  devin.service_key: not a known setting; did you mean service_user_key?",
        f"  organizations[0].service_user_key_file: {no_file}",
        "  windows[1]: '1x' is not a duration such as 30s, 5m, 1h30m or 7d",
    ] == message.splitlines()
    assert SECRET not in message
