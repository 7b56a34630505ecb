"""Settings: YAML file, environment overrides, key files, and errors that name file and key."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

from exporter import cli
from exporter.config import (
    CONFIG_ENV,
    ConfigError,
    Settings,
    config_path_from_env,
    load_settings,
)

SECRET = "cog_TopSecretServiceKey0123456789"
ENTERPRISE_SECRET = "apk_user_TopSecretEnterpriseKey987"
ORG_SECRET = "cog_TopSecretOrgKey555"

MINIMAL = f"""
devin:
  service_user_key: {SECRET}
organizations:
  - id: org-a
"""


@pytest.fixture(autouse=True)
def _no_exporter_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep DEVIN_EXPORTER_* variables of the developer's shell out of these tests."""
    for name in list(os.environ):
        if name.startswith("DEVIN_EXPORTER_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Settings:
    return load_settings(write(tmp_path, text))


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value)


# Defaults and values from the file.


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


def test_base_url_loses_its_trailing_slash(tmp_path: Path) -> None:
    text = MINIMAL.replace("devin:\n", "devin:\n  base_url: http://127.0.0.1:8000/\n")
    settings = load(tmp_path, text)

    assert settings.devin.base_url == "http://127.0.0.1:8000"


def test_empty_file_is_a_config_with_nothing_to_poll(tmp_path: Path) -> None:
    path = write(tmp_path, "")

    message = config_error(path)

    assert "nothing to poll" in message
    assert str(path) in message


# Precedence: file < environment < explicit overrides.


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


# Keys read from files.


def test_key_files_are_read_and_stripped(tmp_path: Path) -> None:
    (tmp_path / "service.key").write_text(f"  {SECRET}\n\n", encoding="utf-8")
    (tmp_path / "enterprise.key").write_text(f"{ENTERPRISE_SECRET}\n", encoding="utf-8")
    (tmp_path / "org.key").write_text(f"\t{ORG_SECRET}\r\n", encoding="utf-8")
    text = f"""
    devin:
      service_user_key_file: {tmp_path / "service.key"}
      enterprise_key_file: {tmp_path / "enterprise.key"}
    organizations:
      - id: org-a
        service_user_key_file: {tmp_path / "org.key"}
      - id: org-b
    """

    settings = load(tmp_path, text)

    org_a, org_b = settings.organizations
    assert settings.devin.service_user_key is not None
    assert settings.devin.enterprise_key is not None
    assert settings.devin.service_user_key.get_secret_value() == SECRET
    assert settings.devin.enterprise_key.get_secret_value() == ENTERPRISE_SECRET
    assert settings.key_for(org_a).get_secret_value() == ORG_SECRET
    assert settings.key_for(org_b).get_secret_value() == SECRET


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


# Every error: a ConfigError naming the file and the key, never showing a key.

KEYED = f"devin:\n  service_user_key: {SECRET}\n"


def _error_cases(tmp: Path) -> list[tuple[str, str, str]]:
    """(case id, YAML text, the error line that must follow the message's header)."""
    missing = tmp / "missing.key"
    empty = tmp / "empty.key"
    full = tmp / "full.key"
    unknown = "not a known setting; did you mean"
    not_duration = "is not a duration such as 30s, 5m, 1h30m or 7d"
    not_host_port = "is not host:port (for example :9877 or 127.0.0.1:9877)"
    no_file = "No such file or directory"
    return [
        (
            "unknown-top-level",
            MINIMAL + "pol_interval: 5m\n",
            f"pol_interval: {unknown} poll_interval?",
        ),
        (
            "unknown-nested",
            MINIMAL.replace("devin:\n", f"devin:\n  service_key: {SECRET}\n"),
            f"devin.service_key: {unknown} service_user_key?",
        ),
        (
            "unknown-in-org",
            MINIMAL + "    org_name: A\n",
            f"organizations[0].org_name: {unknown} name?",
        ),
        ("bad-duration", MINIMAL + "poll_interval: 5x\n", f"poll_interval: '5x' {not_duration}"),
        ("bad-window", MINIMAL + "windows: [1h, 1x]\n", f"windows[1]: '1x' {not_duration}"),
        (
            "zero-timeout",
            MINIMAL.replace("devin:\n", "devin:\n  timeout: 0s\n"),
            "devin.timeout: '0s' must be longer than zero",
        ),
        (
            "key-and-key-file",
            MINIMAL.replace("devin:\n", f"devin:\n  service_user_key_file: {full}\n"),
            "devin.service_user_key_file: set service_user_key or service_user_key_file, not both",
        ),
        (
            "key-file-missing",
            f"devin:\n  service_user_key_file: {missing}\norganizations:\n  - id: org-a\n",
            f"devin.service_user_key_file: cannot read {missing}: {no_file}",
        ),
        (
            "key-file-empty",
            f"devin:\n  service_user_key_file: {empty}\norganizations:\n  - id: org-a\n",
            f"devin.service_user_key_file: {empty} is empty",
        ),
        (
            "enterprise-key-file-missing",
            KEYED + f"  enterprise_key_file: {missing}\norganizations:\n  - id: org-a\n",
            f"devin.enterprise_key_file: cannot read {missing}: {no_file}",
        ),
        (
            "org-key-file-missing",
            KEYED + f"organizations:\n  - id: org-a\n    service_user_key_file: {missing}\n",
            f"organizations[0].service_user_key_file: cannot read {missing}: {no_file}",
        ),
        (
            "blank-key",
            "devin:\n  service_user_key: '   '\norganizations:\n  - id: org-a\n",
            "devin.service_user_key: must not be blank",
        ),
        (
            "nothing-to-poll",
            KEYED,
            "(top level): nothing to poll: list organizations, enable discovery, or set "
            "devin.enterprise_key for the enterprise-wide count",
        ),
        (
            "org-without-key",
            "organizations:\n  - id: org-a\n",
            "(top level): organizations[0] (org-a) has no key: set its service_user_key "
            "(or _file), devin.service_user_key, or devin.enterprise_service_user_key",
        ),
        (
            "duplicate-org-ids",
            MINIMAL + "  - id: org-b\n  - id: org-a\n",
            "organizations: organization ids must be unique: org-a",
        ),
        (
            "duplicate-window-labels",
            MINIMAL + "windows: [1h, 1h]\n",
            "windows: windows must be distinct",
        ),
        (
            "duplicate-window-lengths",
            MINIMAL + "windows: [1h, 60m]\n",
            "windows: windows must be distinct",
        ),
        (
            "stale-after-too-short",
            MINIMAL + "poll_interval: 5m\nstale_after: 1m\n",
            "(top level): stale_after must not be shorter than poll_interval",
        ),
        (
            "bad-listen-address",
            MINIMAL + "web:\n  listen_address: localhost\n",
            f"web.listen_address: 'localhost' {not_host_port}",
        ),
        (
            "listen-port-out-of-range",
            MINIMAL + "web:\n  listen_address: ':70000'\n",
            f"web.listen_address: ':70000' {not_host_port}",
        ),
        (
            "bad-log-format",
            MINIMAL + "log:\n  format: xml\n",
            "log.format: Input should be 'logfmt' or 'json'",
        ),
        (
            "bad-log-level",
            MINIMAL + "log:\n  level: trace\n",
            "log.level: Input should be 'debug', 'info', 'warning' or 'error'",
        ),
        (
            "telemetry-path-reserved",
            MINIMAL + "web:\n  telemetry_path: /readyz\n",
            "web.telemetry_path: '/readyz' is served by the exporter itself (/, /healthz, "
            "/readyz, /status.json): pick another path, such as /metrics",
        ),
        (
            "telemetry-path-relative",
            MINIMAL + "web:\n  telemetry_path: metrics\n",
            "web.telemetry_path: 'metrics' is not a URL path: it starts with / and holds only "
            "letters, digits and . _ ~ / - (at most 128 characters)",
        ),
        (
            "bad-base-url",
            MINIMAL.replace("devin:\n", "devin:\n  base_url: api.devin.ai\n"),
            "devin.base_url: must start with http:// or https://",
        ),
        (
            "bad-org-id",
            KEYED + "organizations:\n  - id: 'org a'\n",
            "organizations[0].id: String should match pattern '^[A-Za-z0-9_.:-]+$'",
        ),
        (
            "string-for-section",
            MINIMAL + "log: loud\n",
            "log: Input should be a valid dictionary or instance of LogSettings",
        ),
    ]


_CASE_IDS = [case[0] for case in _error_cases(Path("/"))]


@pytest.mark.parametrize("case_id", _CASE_IDS)
def test_invalid_config_raises_config_error_naming_file_and_key(
    tmp_path: Path, case_id: str
) -> None:
    (tmp_path / "empty.key").write_text("  \n", encoding="utf-8")
    (tmp_path / "full.key").write_text(SECRET, encoding="utf-8")
    _, text, line = next(c for c in _error_cases(tmp_path) if c[0] == case_id)
    path = write(tmp_path, text)

    message = config_error(path)

    header = f"invalid configuration in {path} (or its DEVIN_EXPORTER_* environment overrides):"
    assert message == f"{header}\n  {line}"
    assert SECRET not in message


def test_invalid_yaml_gives_the_parsers_reason_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, f"devin:\n  service_user_key: {SECRET}\n  timeout: [5s\nlog: {{}}\n")

    message = config_error(path)

    assert (
        f"config file {path} is not valid YAML at line 4, column 4: expected ',' or ']', "
        "but got ':' (while parsing a flow sequence at line 3, column 12)"
    ) == message


def test_a_yaml_error_without_context_gives_the_problem_alone(tmp_path: Path) -> None:
    path = write(tmp_path, "log: level: info\n")

    message = config_error(path)

    assert (
        f"config file {path} is not valid YAML at line 1, column 11: mapping values are "
        "not allowed here"
    ) == message


def test_a_yaml_error_never_echoes_a_long_quoted_value(tmp_path: Path) -> None:
    """A key pasted as a tag comes back in the parser's reason: it is left out."""
    path = write(tmp_path, f"devin: !{SECRET} x\n")

    message = config_error(path)

    assert "could not determine a constructor for the tag '...'" in message
    assert not any(SECRET[i : i + 8] in message for i in range(len(SECRET) - 7))


def test_yaml_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, f"- {SECRET}\n- org-a\n")

    message = config_error(path)

    assert message == f"config file {path} must hold a mapping of keys at the top level"


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    message = config_error(path)

    assert message == f"cannot read config file {path}: No such file or directory"


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


# Every error in one run, with a hint for a misspelt key.


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


def test_every_key_file_of_a_section_is_reported_at_once(tmp_path: Path) -> None:
    files = [tmp_path / f"{name}.key" for name in ("a", "b", "c")]
    path = write(
        tmp_path,
        f"""
        devin:
          service_user_key_file: {files[0]}
          enterprise_key_file: {files[1]}
          enterprise_service_user_key_file: {files[2]}
        """,
    )

    message = config_error(path)

    keys = ("service_user_key_file", "enterprise_key_file", "enterprise_service_user_key_file")
    assert [
        f"  devin.{key}: cannot read {file}: No such file or directory"
        for key, file in zip(keys, files, strict=True)
    ] == message.splitlines()[1:]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "polling_interval: 5m\n",
            "polling_interval: not a known setting; did you mean poll_interval?",
        ),
        ("devin:\n  time_out: 5s\n", "devin.time_out: not a known setting; did you mean timeout?"),
        (
            "endpoints:\n  prs: {enable: true}\n",
            "endpoints.prs.enable: not a known setting; did you mean enabled?",
        ),
        (
            "endpoints:\n  session: {enabled: true}\n",
            "endpoints.session: not a known setting; did you mean sessions?",
        ),
        (
            "segments: [{name: a, user_id: [u]}]\n",
            "segments[0].user_id: not a known setting; did you mean user_ids?",
        ),
        (
            "web:\n  telemetry-path: /m\n",
            "web.telemetry-path: not a known setting; did you mean telemetry_path?",
        ),
    ],
)
def test_a_misspelt_key_gets_the_nearest_known_key(tmp_path: Path, text: str, line: str) -> None:
    message = config_error(write(tmp_path, MINIMAL + text))

    assert [f"  {line}"] == message.splitlines()[1:]


def test_an_unknown_key_far_from_any_lists_the_keys_of_its_section(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, MINIMAL + "log:\n  colour: true\n"))

    assert ["  log.colour: not a known setting (known: level, format)"] == message.splitlines()[1:]


def test_an_unknown_variable_gets_the_nearest_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVIN_EXPORTER_LOGS__LEVEL", "debug")

    message = config_error(write(tmp_path, MINIMAL))

    assert [
        "  DEVIN_EXPORTER_LOGS__LEVEL: not a known setting; did you mean DEVIN_EXPORTER_LOG?"
    ] == message.splitlines()[1:]


# The check-config command.


def test_check_config_of_the_shipped_example_fails_only_on_its_missing_key_files(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The example validates once its three key files exist; all three are named at once."""
    if Path("/etc/devin-exporter").exists():
        pytest.skip("this machine has /etc/devin-exporter: the key files may exist")
    example = Path(__file__).resolve().parent.parent / "config.example.yaml"

    status = cli.main(["check-config", "--config", str(example)])

    keys = "/etc/devin-exporter"
    no_file = "No such file or directory"
    expected = [
        f"devin-exporter: invalid configuration in {example} "
        "(or its DEVIN_EXPORTER_* environment overrides):",
        f"  devin.service_user_key_file: cannot read {keys}/service-user.key: {no_file}",
        f"  devin.enterprise_key_file: cannot read {keys}/enterprise.key: {no_file}",
        f"  organizations[1].service_user_key_file: cannot read {keys}/payments.key: {no_file}",
    ]
    assert (2, expected) == (status, capsys.readouterr().err.splitlines())


def test_check_config_returns_0_for_a_valid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, MINIMAL)

    status = cli.main(["check-config", "--config", str(path)])

    out, err = capsys.readouterr()
    assert status == 0
    assert out.startswith(f"{path}: configuration is valid\n  billing cycle: unknown")
    assert "  ACU limits: unknown" in out
    assert err == ""


def test_check_config_returns_2_and_names_key_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, MINIMAL + "log:\n  format: xml\n")

    status = cli.main(["check-config", "--config", str(path)])

    out, err = capsys.readouterr()
    assert status == cli.EXIT_CONFIG == 2
    assert out == ""
    assert str(path) in err
    assert "log.format" in err
    assert SECRET not in err


def test_check_config_reads_the_file_named_by_the_env_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "organizations: []\n")
    monkeypatch.setenv(CONFIG_ENV, str(path))

    status = cli.main(["check-config"])

    assert status == 2
    assert str(path) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\xef\xbb\xbf" + SECRET.encode() + b"\n", "starts with a byte order mark (BOM)"),
        (SECRET.encode() + b"\n" + SECRET.encode() + b"\n", "holds more than one line"),
        (SECRET.encode() + "é".encode() + b"\n", "may hold only visible ASCII characters"),
        (SECRET.encode()[:8] + b" " + SECRET.encode()[8:], "may hold only visible ASCII"),
        (b"x" * 5000, "is longer than 4096 bytes: not a key"),
    ],
    ids=["bom", "two-lines", "non-ascii", "inner-space", "too-long"],
)
def test_a_key_file_that_cannot_be_a_header_value_is_refused_naming_the_file(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    key_file = tmp_path / "service.key"
    key_file.write_bytes(content)
    path = write(
        tmp_path, f"devin:\n  service_user_key_file: {key_file}\norganizations: [{{id: org-a}}]\n"
    )

    message = config_error(path)

    assert f"devin.service_user_key_file: {key_file} {reason}" in message
    assert SECRET not in message


def test_a_key_file_that_never_ends_fails_at_once(tmp_path: Path) -> None:
    """`/dev/zero` is read for 4 KiB, not until memory runs out."""
    path = write(
        tmp_path, "devin:\n  service_user_key_file: /dev/zero\norganizations: [{id: org-a}]\n"
    )

    assert "/dev/zero is longer than 4096 bytes" in config_error(path)


def test_a_window_longer_than_400_days_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "windows: [1h, 99999999999d]\ndevin: {enterprise_key: apk_user_x}\n")

    assert "windows: 99999999999d: a window may be at most 400d" in config_error(path)


def test_a_400_day_window_is_still_valid(tmp_path: Path) -> None:
    settings = load(tmp_path, "windows: [1s, 400d]\ndevin: {enterprise_key: apk_user_x}\n")

    assert ["1s", "400d"] == [w.label for w in settings.windows]


@pytest.mark.parametrize(
    "field",
    [
        "windows: [{key}]",
        "poll_interval: {key}",
        "web: {{listen_address: {key}{key}}}",
    ],
)
def test_a_key_pasted_into_the_wrong_field_is_not_echoed(tmp_path: Path, field: str) -> None:
    path = write(tmp_path, field.format(key=SECRET) + "\ndevin: {enterprise_key: apk_user_x}\n")

    message = config_error(path)

    assert "the value is not" in message
    assert not any(SECRET[i : i + 8] in message for i in range(len(SECRET) - 7))


@pytest.mark.parametrize(
    ("devin", "extra", "expected"),
    [
        (
            "{service_user_key: cog_x, enterprise_service_user_key: cog_e}",
            "",
            [
                "billing cycle: Devin's, from GET /v3/enterprise/consumption/cycles",
                "ACU limits: from /v3/enterprise/consumption/acu-limits/devin, "
                "/v3/enterprise/organizations",
            ],
        ),
        (
            "{service_user_key: cog_x, enterprise_key: apk_user_y}",
            "billing: {cycle_start_day: 23}\n",
            [
                "billing cycle: Devin's, from GET /v2/enterprise/consumption/cycles "
                "(devin.enterprise_key), else day 23 (billing.cycle_start_day)",
                "ACU limits: from /v2/enterprise/organizations",
            ],
        ),
        (
            "{service_user_key: cog_x}",
            "billing: {cycle_start_day: 23, acu_price: 2.5, currency: EUR}\n",
            [
                "billing cycle: from day 23 of each month at 08:00 UTC",
                "ACU limits: unknown, so none are exported",
                "spend: 2.5 EUR per ACU (billing.acu_price)",
            ],
        ),
    ],
    ids=["v3", "v2", "cycle_start_day"],
)
def test_check_config_explains_the_cycle_source_and_the_limits(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    devin: str,
    extra: str,
    expected: list[str],
) -> None:
    path = write(tmp_path, f"devin: {devin}\norganizations: [{{id: org-a}}]\n{extra}")

    assert 0 == cli.main(["check-config", "--config", str(path)])

    out = capsys.readouterr().out
    for line in expected:
        assert f"\n  {line}" in out


@pytest.mark.parametrize(
    ("billing", "key"),
    [
        ({"cycle_start_day": 29}, "billing.cycle_start_day"),
        ({"cycle_start_day": 0}, "billing.cycle_start_day"),
        ({"acu_price": 0}, "billing.acu_price"),
        ({"acu_price": -1.5}, "billing.acu_price"),
        ({"currency": "usd"}, "billing.currency"),
        ({"currency": "EURO"}, "billing.currency"),
    ],
)
def test_billing_settings_out_of_range_name_their_key(billing: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_settings(None, devin={"service_user_key": "cog_x"}, billing=billing)


def test_hashed_user_labels_without_a_readable_key_file_exit_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    missing = tmp_path / "no-such-key"
    for attribution, named in (
        ("{user_label: hashed}", "attribution: user_label hashed needs hash_key_file"),
        (
            f"{{user_label: hashed, hash_key_file: {missing}}}",
            f"attribution.hash_key_file: cannot read {missing}",
        ),
    ):
        config.write_text(
            f"devin: {{service_user_key: cog_x}}\norganizations: [{{id: org-a}}]\n"
            f"attribution: {attribution}\n"
        )
        assert 2 == cli.main(["check-config", "--config", str(config)])
        err = capsys.readouterr().err
        assert str(config) in err
        assert named in err


def test_the_hash_key_is_read_trimmed_and_never_shown(tmp_path: Path) -> None:
    key_file = tmp_path / "hash.key"
    key_file.write_text("  s3cret-hash-key-0123456789\n")

    settings = load_settings(
        None,
        devin={"service_user_key": "cog_x"},
        organizations=[{"id": "org-a"}],
        attribution={"user_label": "hashed", "hash_key_file": str(key_file)},
    )

    key = settings.attribution.hash_key
    assert key is not None
    assert "s3cret-hash-key-0123456789" == key.get_secret_value()
    assert "s3cret" not in repr(settings) + str(settings.model_dump())
    assert key in settings.secrets()  # redacted from the logs like the API keys
