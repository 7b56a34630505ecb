"""The command line: global flags before or after the command, and what they override."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from exporter import cli
from exporter.config import load_settings

MINIMAL = "devin: {service_user_key: cog_x}\norganizations: [{id: org-a}]\n"
FLAGS = [
    "--web.listen-address",
    "127.0.0.1:0",
    "--web.telemetry-path",
    "/probe/metrics",
    "--log.level",
    "debug",
    "--log.format",
    "json",
    "--shard",
    "1/3",
]


@pytest.fixture(autouse=True)
def _no_exporter_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep DEVIN_EXPORTER_* variables of the developer's shell out of these tests."""
    for name in list(os.environ):
        if name.startswith("DEVIN_EXPORTER_"):
            monkeypatch.delenv(name)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["check-config", "once"])
def test_global_flags_mean_the_same_before_and_after_the_command(
    config: Path, command: str
) -> None:
    before = cli.parse_args(["--config", str(config), *FLAGS, "--demo", command])
    after = cli.parse_args([command, "--config", str(config), *FLAGS, "--demo"])

    expected = {
        "web": {"listen_address": "127.0.0.1:0", "telemetry_path": "/probe/metrics"},
        "log": {"level": "debug", "format": "json"},
        "sharding": {"index": 1, "count": 3},
    }
    assert (config, True, expected) == (before.config, before.demo, cli.overrides_of(before))
    assert (config, True, expected) == (after.config, after.demo, cli.overrides_of(after))


def test_a_flag_given_on_both_sides_of_the_command_takes_the_later_value() -> None:
    args = cli.parse_args(["--log.level", "error", "check-config", "--log.level", "debug"])

    assert {"log": {"level": "debug"}} == cli.overrides_of(args)


def test_no_flag_is_no_override() -> None:
    for argv in ([], ["check-config"], ["once"]):
        args = cli.parse_args(argv)
        assert ({}, None, False) == (cli.overrides_of(args), args.config, args.demo)


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        MINIMAL + "web: {telemetry_path: /m, listen_address: ':9100'}\n"
        "log: {level: warning, format: logfmt}\n",
        encoding="utf-8",
    )
    args = cli.parse_args(["--web.telemetry-path", "/probe", "--log.format", "json"])

    settings = load_settings(path, **cli.overrides_of(args))

    assert ("/probe", ":9100") == (settings.web.telemetry_path, settings.web.listen_address)
    assert ("warning", "json") == (settings.log.level, settings.log.format)


def test_telemetry_path_defaults_to_metrics(config: Path) -> None:
    assert "/metrics" == load_settings(config).web.telemetry_path


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--web.telemetry-path", "/healthz"], "'/healthz' is served by the exporter itself"),
        (["--web.telemetry-path", "metrics"], "'metrics' is not a URL path"),
        (["--web.listen-address", "localhost"], "'localhost' is not host:port"),
        (["--log.level", "trace"], "invalid choice: 'trace'"),
        (["--log.format", "xml"], "invalid choice: 'xml'"),
    ],
)
def test_a_bad_flag_is_a_usage_error_naming_the_flag(
    argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for position in ([*argv, "check-config"], ["check-config", *argv]):
        with pytest.raises(SystemExit) as exited:
            cli.parse_args(position)
        assert 2 == exited.value.code
        err = capsys.readouterr().err
        assert f"argument {argv[0]}: {reason}" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "{config}", "check-config"],
        ["check-config", "--config", "{config}"],
        ["--log.level", "debug", "check-config", "--config", "{config}"],
    ],
)
def test_check_config_takes_the_config_before_or_after_the_command(
    config: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main([a.format(config=config) for a in argv])

    out = capsys.readouterr().out
    assert (0, f"{config}: configuration is valid") == (status, out.splitlines()[0])


@pytest.mark.parametrize(
    "argv",
    [["--config", "{config}", "once", "--explain"], ["once", "--explain", "--config", "{config}"]],
)
def test_once_explain_takes_the_config_before_or_after_the_command(
    config: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main([a.format(config=config) for a in argv])

    out = capsys.readouterr().out
    assert 0 == status
    assert "v3_org_sessions  org-a" in out


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--demo", "check-config"], "check-config checks a config file; --demo needs none"),
        (["check-config", "--demo"], "check-config checks a config file; --demo needs none"),
        (["--demo", "once", "--explain"], "--explain takes a config"),
        (["--config", "x.yaml", "demo-api"], "demo-api takes only its own flags"),
        (["--log.level", "debug", "demo-api"], "demo-api takes only its own flags"),
        (["--demo", "backfill", "--since", "1d", "--output", "x.om"], "backfill takes a config"),
    ],
)
def test_a_flag_that_would_do_nothing_is_refused(
    argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 2 == cli.main(argv)
    assert reason in capsys.readouterr().err


BACKFILL = ["--since", "1d", "--until", "2026-11-20T00:00:00Z", "--step", "1h", "--output"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "{config}", "backfill", "--explain", *BACKFILL, "{out}"],
        ["backfill", *BACKFILL, "{out}", "--explain", "--config", "{config}"],
    ],
)
def test_backfill_explain_counts_the_requests_and_writes_nothing(
    config: Path, tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.om"
    status = cli.main([a.format(config=config, out=out) for a in argv])

    text = capsys.readouterr().out
    assert 0 == status
    assert "24 steps of 1h, 2026-11-19T01:00:00Z to 2026-11-20T00:00:00Z" in text
    assert "96 requests in total over 1 keys" in text  # 24 steps x 4 windows, one org
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--since", "soon"], "argument --since: 'soon' is not a duration"),
        (
            ["--since", "1d", "--until", "2026-11-20"],
            "argument --until: '2026-11-20' needs a time zone",
        ),
        (["--since", "1d", "--step", "500ms"], "argument --step: '500ms': the step must be whole"),
        (["--since", "1d", "--max-requests", "many"], "argument --max-requests: invalid int"),
        (["--since", "1d", "--label", "job"], "argument --label: 'job' is not NAME=VALUE"),
        (["--since", "1d", "--label", "__name__=x"], "argument --label: '__name__=x' is not"),
        (["--since", "1d", "--label", "org=x"], "'org' is a label of the Devin series"),
    ],
)
def test_a_bad_backfill_flag_is_a_usage_error_naming_the_flag(
    argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.parse_args(["backfill", *argv, "--output", "x.om"])
    assert 2 == exited.value.code
    assert reason in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--output", "x.om"], "backfill needs --since DURATION (or --resume)"),
        (["--since", "1d", "--until", "2999-01-01T00:00:00Z", "--output", "x.om"], "future"),
        (["--resume", "--output", "{missing}"], "journal.json is missing"),
    ],
)
def test_a_backfill_that_cannot_start_exits_2(
    config: Path, tmp_path: Path, argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "never.om"
    status = cli.main(
        ["--config", str(config), "backfill", *(a.format(missing=missing) for a in argv)]
    )
    assert 2 == status
    assert reason in capsys.readouterr().err


def test_a_backfill_that_cannot_write_or_read_its_output_exits_2_naming_it(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = tmp_path / "no-such-dir" / "x.om"
    args = ["--config", str(config), "backfill", "--since", "1h", "--until", "2026-11-20T00:00:00Z"]
    assert 2 == cli.main([*args, "--output", str(nowhere)])
    assert f"cannot write beside {nowhere}" in capsys.readouterr().err

    output = tmp_path / "x.om"
    output.write_text("devin_x 1 1700000000\nnot openmetrics\n", encoding="utf-8")
    journal = {"format": "devin-exporter-backfill/1", "since": 3600, "step": 3600}
    journal |= {"until": 1_763_596_800, "done": [1_763_596_800], "labels": []}
    (tmp_path / "x.om.journal.json").write_text(json.dumps(journal), encoding="utf-8")
    assert 2 == cli.main(["--config", str(config), "backfill", "--resume", "--output", str(output)])
    assert f"cannot resume from {output}" in capsys.readouterr().err
