"""Settings: the defaults, the checks across sections, and the policy read from them."""

from __future__ import annotations

from pathlib import Path

from configs import ENTERPRISE_SECRET, MINIMAL, ORG_SECRET, SECRET, config_error, load, write


def test_defaults_fill_everything_the_file_leaves_out(tmp_path: Path) -> None:
    settings = load(tmp_path, MINIMAL)

    assert settings.devin.base_url == "https://api.devin.ai"
    assert settings.devin.timeout == 10.0
    assert settings.devin.max_concurrency == 8
    assert [w.label for w in settings.windows] == ["1h", "24h", "7d", "30d"]
    assert [w.seconds for w in settings.windows] == [3600.0, 86400.0, 604800.0, 2592000.0]
    assert settings.poll_interval == 300.0
    assert settings.stale_after is None
    assert settings.web.listen_address == ":9877"
    assert (settings.log.level, settings.log.format) == ("info", "logfmt")


def test_stale_after_defaults_to_three_poll_intervals(tmp_path: Path) -> None:
    settings = load(tmp_path, MINIMAL + "poll_interval: 2m\n")

    assert settings.poll_interval == 120.0
    assert settings.stale_after_seconds == 360.0


def test_explicit_stale_after_is_used_as_given(tmp_path: Path) -> None:
    settings = load(tmp_path, MINIMAL + "poll_interval: 1m\nstale_after: 1h\n")

    assert settings.stale_after_seconds == 3600.0


def test_windows_are_sorted_shortest_first_and_keep_their_spelling(tmp_path: Path) -> None:
    settings = load(tmp_path, MINIMAL + "windows: [30d, 90m, 1w, 1h]\n")

    assert [w.label for w in settings.windows] == ["1h", "90m", "1w", "30d"]


def test_durations_may_be_plain_seconds(tmp_path: Path) -> None:
    settings = load(tmp_path, MINIMAL + "poll_interval: 45\n")

    assert settings.poll_interval == 45.0


def test_a_window_longer_than_400_days_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "windows: [1h, 99999999999d]\ndevin: {enterprise_key: apk_user_x}\n")

    assert "windows: 99999999999d: a window may be at most 400d" in config_error(path)


def test_a_400_day_window_is_still_valid(tmp_path: Path) -> None:
    settings = load(tmp_path, "windows: [1s, 400d]\ndevin: {enterprise_key: apk_user_x}\n")

    assert ["1s", "400d"] == [w.label for w in settings.windows]


def test_empty_file_is_a_config_with_nothing_to_poll(tmp_path: Path) -> None:
    path = write(tmp_path, "")

    message = config_error(path)

    assert "nothing to poll" in message
    assert str(path) in message


def test_an_org_key_is_preferred_over_the_shared_key(tmp_path: Path) -> None:
    text = f"""
    devin:
      service_user_key: {SECRET}
    organizations:
      - id: org-a
        service_user_key: {ORG_SECRET}
    """

    settings = load(tmp_path, text)

    assert settings.key_for(settings.organizations[0]).get_secret_value() == ORG_SECRET


def test_repr_and_str_never_show_a_key(tmp_path: Path) -> None:
    (tmp_path / "enterprise.key").write_text(ENTERPRISE_SECRET, encoding="utf-8")
    text = f"""
    devin:
      service_user_key: {SECRET}
      enterprise_key_file: {tmp_path / "enterprise.key"}
    organizations:
      - id: org-a
        service_user_key: {ORG_SECRET}
    """

    settings = load(tmp_path, text)

    for shown in (repr(settings), str(settings)):
        assert "org-a" in shown  # the text is a real rendering of the settings
        for secret in (SECRET, ENTERPRISE_SECRET, ORG_SECRET):
            assert secret not in shown
