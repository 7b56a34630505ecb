"""End to end, as an operator runs it: `devin-exporter` processes on loopback."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import ROOT, ExporterProcess, stop_process, wait_for_line
from scrape import families, label_values, parse, value

from exporter import __version__

pytestmark = pytest.mark.slow  # real processes, servers or builds

CLI = [sys.executable, "-m", "exporter.cli"]


def documented_metric_names() -> set[str]:
    table = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `(devin_[a-z_]+)` \|", table, flags=re.MULTILINE))


def test_version_flag_prints_the_version() -> None:
    result = subprocess.run([*CLI, "--version"], capture_output=True, text=True, check=False)
    assert (0, f"devin-exporter {__version__}\n") == (result.returncode, result.stdout)


def test_full_run_serves_every_family_and_never_logs_a_key(
    demo_exporter: ExporterProcess,
) -> None:
    text = httpx.get(f"{demo_exporter.url}/metrics", timeout=5).text
    series = parse(text)
    assert documented_metric_names() <= set(families(text))
    assert 3 == len(label_values(series, "devin_sessions_created", "org"))
    assert {"1h", "24h", "7d", "30d"} == label_values(series, "devin_sessions_created", "window")

    # A failing target makes the exporter log errors: they must not carry a key either.
    org = sorted(label_values(series, "devin_sessions_created", "org"))[0]
    demo_exporter.inject_fault("v3_org_sessions", org, 401)
    deadline = time.monotonic() + 15
    while "event=auth_failed" not in demo_exporter.log():
        assert time.monotonic() < deadline, demo_exporter.log()
        time.sleep(0.1)
    series = parse(httpx.get(f"{demo_exporter.url}/metrics", timeout=5).text)
    assert 0 == value(series, "devin_up", endpoint="v3_org_sessions", org=org)
    page = httpx.get(f"{demo_exporter.url}/", timeout=5).text
    demo_exporter.exporter.send_signal(signal.SIGTERM)
    assert 0 == demo_exporter.exporter.wait(timeout=10)

    log = demo_exporter.log()
    assert "event=started" in log
    assert "event=stopped" in log
    assert 1 == log.count("event=auth_failed"), "an auth failure is logged once, not every poll"
    assert "reason=unauthorized" in log
    for key in demo_exporter.keys:
        assert key not in log
        assert key not in text
        assert key not in page


@pytest.mark.parametrize("argv", [["once", "--demo"], ["--demo", "once"]])
def test_once_prints_the_exposition_and_exits_0_when_every_target_answers(
    argv: list[str],
) -> None:
    result = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=60, check=False)
    assert 0 == result.returncode, result.stderr
    series = parse(result.stdout)
    assert 3 == len(label_values(series, "devin_sessions_created", "org"))


def test_once_exits_1_when_a_target_fails(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                # Nothing listens on port 9 of loopback: every request is refused.
                "devin": {"base_url": "http://127.0.0.1:9", "service_user_key": "cog_x"},
                "organizations": [{"id": "org-a"}],
            }
        )
    )
    result = subprocess.run(
        [*CLI, "once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 1 == result.returncode
    series = parse(result.stdout)
    assert 0 == value(series, "devin_up", endpoint="v3_org_sessions", org="org-a")
    assert 4 == value(
        series,
        "devin_exporter_poll_errors_total",
        endpoint="v3_org_sessions",
        org="org-a",
        reason="connection",
    )
    assert "cog_x" not in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "{config}", "check-config"],
        ["check-config", "--config", "{config}"],
        ["--log.format", "json", "check-config", "--config", "{config}", "--log.level", "debug"],
    ],
)
def test_check_config_takes_its_flags_before_or_after_the_command(
    tmp_path: Path, argv: list[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("devin: {service_user_key: cog_x}\norganizations: [{id: org-a}]\n")

    result = subprocess.run(
        [*CLI, *(a.format(config=config) for a in argv)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    first_line = result.stdout.splitlines()[0] if result.stdout else ""
    assert (0, f"{config}: configuration is valid", "") == (
        result.returncode,
        first_line,
        result.stderr,
    )


def test_check_config_reports_every_error_in_one_run_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    missing = tmp_path / "missing.key"
    config.write_text(
        f"devin:\n  service_key: cog_secret_x\n  service_user_key_file: {missing}\n"
        "organizations: [{id: org-a}]\npol_interval: 5m\n"
    )

    result = subprocess.run(
        [*CLI, "--config", str(config), "check-config"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert 2 == result.returncode
    assert [
        f"devin-exporter: invalid configuration in {config} "
        "(or its DEVIN_EXPORTER_* environment overrides):",
        f"  devin.service_user_key_file: cannot read {missing}: No such file or directory",
        "  devin.service_key: not a known setting; did you mean service_user_key?",
        "  pol_interval: not a known setting; did you mean poll_interval?",
    ] == result.stderr.splitlines()
    assert "cog_secret_x" not in result.stderr


def test_daemon_exits_2_on_a_bad_config_and_names_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("devin:\n  timeout: soon\norganizations: [{id: org-a}]\n")
    result = subprocess.run(
        [*CLI, "--config", str(config)], capture_output=True, text=True, timeout=30, check=False
    )
    assert 2 == result.returncode
    assert str(config) in result.stderr
    assert "devin.timeout" in result.stderr


def test_demo_mode_listens_where_told_and_stops_on_sigint(tmp_path: Path) -> None:
    log_path = tmp_path / "demo.log"
    with log_path.open("w") as out:
        process = subprocess.Popen(
            [*CLI, "--demo", "--web.listen-address", "127.0.0.1:0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 20
        while not (match := re.search(r"event=started .*address=(\S+).*", log_path.read_text())):
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        url = match.group(1)
        port = url.rsplit(":", 1)[1]
        assert f"bound=127.0.0.1:{port} " in match.group(0)
        assert "poll_interval_seconds=60.0 intervals=sessions:1m," in match.group(0)
        while httpx.get(f"{url}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        series = parse(httpx.get(f"{url}/metrics", timeout=5).text)
        assert 3 == len(label_values(series, "devin_org_info", "org"))
        assert (value(series, "devin_enterprise_sessions", window="30d") or 0) > 0
        process.send_signal(signal.SIGINT)
        assert 0 == process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_flags_override_the_config_file_in_the_daemon(tmp_path: Path) -> None:
    """--log.* and --web.* beat the file: JSON logs at info, metrics on another path."""
    config = tmp_path / "config.yaml"
    config.write_text("log: {level: warning, format: logfmt}\nweb: {telemetry_path: /metrics}\n")
    log_path = tmp_path / "exporter.log"
    command = [*CLI, "--demo", "--config", str(config), "--web.listen-address", "127.0.0.1:0"]
    command += ["--web.telemetry-path", "/probe/metrics", "--log.format", "json"]
    command += ["--log.level", "info"]
    with log_path.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        line = json.loads(wait_for_line(log_path, r'\{[^\n]*"event": "started"[^\n]*', process)[0])
        assert ("/probe/metrics", line["address"].removeprefix("http://")) == (
            line["telemetry_path"],
            line["bound"],
        )
        deadline = time.monotonic() + 20
        while httpx.get(f"{line['address']}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        metrics = httpx.get(f"{line['address']}/probe/metrics", timeout=5)
        assert 200 == metrics.status_code
        assert 3 == len(label_values(parse(metrics.text), "devin_org_info", "org"))
        assert 404 == httpx.get(f"{line['address']}/metrics", timeout=5).status_code
    finally:
        stop_process(process)
