"""Every error: a ConfigError naming the file and the key, never showing a key."""

from __future__ import annotations

from pathlib import Path

import pytest
from configs import MINIMAL, SECRET, config_error, write

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
