"""A real Prometheus with our rules scrapes the demo exporter.

Every dashboard query and recording rule returns data, the billing-cycle and PR rules
agree with the raw series they join, every alert expression evaluates, and faults
injected into the demo Devin API make DevinTargetFailing and DevinAuthFailures fire.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from conftest import ExporterProcess, stop_process
from test_deploy import (
    RULE_FILES,
    alerts,
    dashboard_exprs,
    recording_rules,
    substitute_variables,
)

pytestmark = [pytest.mark.slow, pytest.mark.prometheus, pytest.mark.timeout(300)]

RECORDING_RULES, ALERTING_RULES = RULE_FILES
# Alerts are loaded with `for:` shortened to this, so that a test need not wait 15m.
SHORT_FOR = "2s"
# How long data may take to appear: a few 1s scrapes and 2s polls, with room for a slow CI.
DATA_WITHIN_SECONDS = 60.0
# How long an injected fault may take to fire an alert: the exporter's retries of the
# failed request, then a scrape, a rule evaluation and SHORT_FOR.
ALERT_WITHIN_SECONDS = 120.0

# Dashboard queries allowed to return no series in a run of a few seconds, with why.
# Every other query must return data; keep this list short.
NO_DATA_ALLOWED: dict[str, str] = {}


def require_prometheus() -> str:
    path = shutil.which("prometheus")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed: CI must have it (apt-get install prometheus)")
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def poll_until(condition: Callable[[], bool], within_seconds: float) -> bool:
    """Whether `condition` came true within the time, checked every half second."""
    deadline = time.monotonic() + within_seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def wait_for(what: str, condition: Callable[[], bool], within_seconds: float) -> None:
    assert poll_until(condition, within_seconds), f"{what}: not within {within_seconds:.0f}s"


def alerts_with_short_for(directory: Path) -> Path:
    """A copy of alerts.yml whose every `for:` is SHORT_FOR."""
    document = yaml.safe_load(ALERTING_RULES.read_text(encoding="utf-8"))
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["for"] = SHORT_FOR
    path = directory / "alerts.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Prometheus:
    """A Prometheus server on loopback, queried through its HTTP API."""

    url: str
    client: httpx.Client
    log_path: Path

    def api(self, path: str, **params: str) -> Any:
        response = self.client.get(f"{self.url}/api/v1/{path}", params=params)
        body = response.json()
        assert "success" == body["status"], f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The series an instant query returns now, or at the Unix time `at`."""
        data = self.api("query", query=expr, **({} if at is None else {"time": f"{at:.3f}"}))
        assert "vector" == data["resultType"], f"{expr}: {data['resultType']}"
        result: list[dict[str, Any]] = data["result"]
        return result

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def firing(self, alertname: str) -> list[dict[str, str]]:
        """The labels of every firing alert of that name."""
        return [
            alert["labels"]
            for alert in self.api("alerts")["alerts"]
            if alert["labels"]["alertname"] == alertname and alert["state"] == "firing"
        ]

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def prometheus_scraping(
    exporter: ExporterProcess, tmp_path: Path, *, alertmanager_url: str | None = None
) -> Iterator[Prometheus]:
    """Prometheus scraping `exporter` every second with both rule files (every `for:` 2 s),
    until the block ends; with `alertmanager_url`, it sends its alerts there."""
    target = urlsplit(exporter.url if "//" in exporter.url else f"http://{exporter.url}")
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RECORDING_RULES), str(alerts_with_short_for(tmp_path))],
        "scrape_configs": [
            {
                # The job name the alerts expect (DevinExporterDown).
                "job_name": "devin-exporter",
                "scheme": target.scheme,
                "static_configs": [{"targets": [target.netloc]}],
            }
        ],
    }
    if alertmanager_url is not None:
        alertmanager = {"static_configs": [{"targets": [urlsplit(alertmanager_url).netloc]}]}
        config["alerting"] = {"alertmanagers": [alertmanager]}
    with running_prometheus(tmp_path, config, f"--storage.tsdb.path={tmp_path / 'data'}") as server:
        wait_for(
            "the exporter scraped",
            lambda: [s["value"][1] for s in server.query('up{job="devin-exporter"}')] == ["1"],
            DATA_WITHIN_SECONDS,
        )
        yield server


@contextmanager
def running_prometheus(tmp_path: Path, config: dict[str, Any], *flags: str) -> Iterator[Prometheus]:
    """Prometheus on loopback with this config and these flags, ready, until the block ends."""
    binary = require_prometheus()
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--web.listen-address=127.0.0.1:{port}",
                # Each alert's generatorURL (by default the machine's host name).
                f"--web.external-url=http://127.0.0.1:{port}",
                *flags,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(timeout=5) as client:
            server = Prometheus(f"http://127.0.0.1:{port}", client, log_path)

            def ready() -> bool:
                assert process.poll() is None, f"prometheus exited:\n{server.log()}"
                try:
                    return client.get(f"{server.url}/-/ready").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for("prometheus ready", ready, DATA_WITHIN_SECONDS)
            yield server
    finally:
        stop_process(process)


def queries_without_data(prometheus: Prometheus, exprs: list[str]) -> list[str]:
    """The expressions still returning no series after DATA_WITHIN_SECONDS of retries."""
    pending = list(exprs)

    def all_have_data() -> bool:
        pending[:] = [e for e in pending if not prometheus.query(e)]
        return not pending

    poll_until(all_have_data, DATA_WITHIN_SECONDS)
    return pending


def test_every_dashboard_query_and_recording_rule_returns_data(
    demo_exporter: ExporterProcess, tmp_path: Path
) -> None:
    with prometheus_scraping(demo_exporter, tmp_path) as prometheus:
        exprs = [substitute_variables(e) for e in dashboard_exprs()]
        allowed = [e for e in exprs if any(key in e for key in NO_DATA_ALLOWED)]
        missing = queries_without_data(prometheus, [e for e in exprs if e not in allowed])
        assert [] == missing

        records = [rule["record"] for rule in recording_rules()]
        assert [] == queries_without_data(prometheus, records)


def values_by(prometheus: Prometheus, expr: str, *labels: str) -> dict[tuple[str, ...], float]:
    """{label values: value} of the series an instant query returns."""
    return {
        tuple(s["metric"].get(label, "") for label in labels): float(s["value"][1])
        for s in prometheus.query(expr)
    }


def test_value_and_cost_rules_agree_with_the_exporters_series(
    demo_exporter: ExporterProcess, tmp_path: Path
) -> None:
    """The rules' joins hold on real scrape labels (job, instance), which promtool cases fake."""
    with prometheus_scraping(demo_exporter, tmp_path) as prometheus:
        records = (
            "job:devin_billing_cycle_elapsed:ratio",
            "org:devin_billing_cycle_acus:projected",
            "org_window:devin_prs_merge_rate:ratio",
        )
        assert [] == queries_without_data(prometheus, list(records))

        def disagreements() -> list[str]:
            """Where a rule's value is not the one computed from the raw series.

            A rule is evaluated a moment before the queries here, and the demo's counts
            move between polls: the caller retries until both sides agree.
            """
            found = []
            # The demo's cycle is a calendar month of real time: well inside (0, 1).
            [elapsed] = values_by(prometheus, "job:devin_billing_cycle_elapsed:ratio").values()
            start = "max(devin_billing_cycle_start_timestamp_seconds)"
            end = "max(devin_billing_cycle_end_timestamp_seconds)"
            cycle = values_by(prometheus, f"(time() - {start}) / ({end} - {start})")[()]
            if not 0 < elapsed < 1 or elapsed != pytest.approx(cycle, rel=1e-3):
                found.append(f"elapsed {elapsed}, cycle {cycle}")
            # projected x elapsed gives back each organisation's consumption.
            consumed = values_by(prometheus, "devin_billing_cycle_acus_consumed", "org")
            projected = values_by(prometheus, "org:devin_billing_cycle_acus:projected", "org")
            if consumed.keys() != projected.keys():
                found.append(f"projected for {sorted(projected)}, consumed by {sorted(consumed)}")
            for org, acus in consumed.items():
                if acus != pytest.approx(projected.get(org, 0) * elapsed, rel=1e-3):
                    found.append(f"{org}: consumed {acus}, projected {projected.get(org)}")
            merged = values_by(prometheus, 'devin_prs{state="merged"}', "org", "window")
            created = values_by(prometheus, 'devin_prs{state="created"}', "org", "window")
            expected = {key: merged[key] / n for key, n in created.items() if n > 0}
            rates = values_by(prometheus, "org_window:devin_prs_merge_rate:ratio", "org", "window")
            if expected != pytest.approx(rates):
                found.append(f"merge rates {rates}, expected {expected}")
            return found

        poll_until(lambda: not disagreements(), DATA_WITHIN_SECONDS)
        assert [] == disagreements()


def test_budget_rules_agree_with_the_exporters_limits_and_cycle(
    demo_exporter: ExporterProcess, tmp_path: Path
) -> None:
    """The ACU-limit rules join consumption and limits on real scrape labels: each
    organisation with a limit (and the enterprise, org="") gets its used and projected
    share, and the time to the reset is the cycle's end from now."""
    with prometheus_scraping(demo_exporter, tmp_path) as prometheus:
        records = (
            "org:devin_acu_cycle_limit_used:ratio",
            "org:devin_acu_cycle_limit_projected:ratio",
            "job:devin_billing_cycle_remaining:seconds",
        )
        assert [] == queries_without_data(prometheus, list(records))

        def disagreements() -> list[str]:
            found = []
            limits = values_by(prometheus, "devin_acu_cycle_limit", "org")
            consumed = values_by(prometheus, "devin_billing_cycle_acus_consumed", "org")
            projected = values_by(prometheus, "org:devin_billing_cycle_acus:projected", "org")
            used = values_by(prometheus, "org:devin_acu_cycle_limit_used:ratio", "org")
            share = values_by(prometheus, "org:devin_acu_cycle_limit_projected:ratio", "org")
            if ("",) not in limits or len(limits) < 2:
                found.append(f"limits of the enterprise and some organisations: {limits}")
            if used.keys() != limits.keys() or share.keys() != limits.keys():
                found.append(
                    f"used {sorted(used)}, projected {sorted(share)}, limits {sorted(limits)}"
                )
            for org, limit in limits.items():
                if used.get(org) != pytest.approx(consumed.get(org, -1) / limit, rel=1e-3):
                    found.append(f"{org}: used {used.get(org)}, consumed {consumed.get(org)}")
                if share.get(org) != pytest.approx(projected.get(org, -1) / limit, rel=1e-3):
                    found.append(f"{org}: projected share {share.get(org)}")
            [left] = values_by(prometheus, "job:devin_billing_cycle_remaining:seconds").values()
            end = "max(devin_billing_cycle_end_timestamp_seconds) - time()"
            if left != pytest.approx(values_by(prometheus, end)[()], abs=5):
                found.append(f"remaining {left}")
            price = values_by(prometheus, "devin_acu_price", "currency")
            if price != {("EUR",): 2.25}:
                found.append(f"price {price}")
            return found

        poll_until(lambda: not disagreements(), DATA_WITHIN_SECONDS)
        assert [] == disagreements()


def test_every_rule_evaluates_without_error(demo_exporter: ExporterProcess, tmp_path: Path) -> None:
    with prometheus_scraping(demo_exporter, tmp_path) as prometheus:
        for alert in alerts():
            prometheus.query(alert["expr"])  # asserts the query succeeds

        expected = {r.get("record") or r["alert"] for r in recording_rules() + alerts()}
        never = "0001-01-01T00:00:00Z"

        def all_evaluated() -> bool:
            return all(rule["lastEvaluation"] != never for rule in prometheus.rules())

        wait_for("every rule evaluated", all_evaluated, DATA_WITHIN_SECONDS)
        rules = prometheus.rules()
        assert expected == {rule["name"] for rule in rules}
        unhealthy = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
        assert {} == unhealthy

        # The demo API is healthy: no alert fires, once the rules have seen the first
        # scrapes (DevinExporterDown may fire on the evaluations before them).
        def firing() -> list[dict[str, str]]:
            found = prometheus.api("alerts")["alerts"]
            return [a["labels"] for a in found if a["state"] == "firing"]

        poll_until(lambda: not firing(), DATA_WITHIN_SECONDS)
        assert [] == firing()


def first_org(prometheus: Prometheus) -> str:
    """The first organisation Prometheus knows of, once it knows any."""
    wait_for(
        "organisations known",
        lambda: bool(prometheus.query("devin_org_info")),
        DATA_WITHIN_SECONDS,
    )
    return str(sorted(s["metric"]["org"] for s in prometheus.query("devin_org_info"))[0])


def test_a_failing_devin_target_fires_devin_target_failing(
    demo_exporter: ExporterProcess, tmp_path: Path
) -> None:
    with prometheus_scraping(demo_exporter, tmp_path) as prometheus:
        org = first_org(prometheus)
        assert [] == prometheus.firing("DevinTargetFailing")

        demo_exporter.inject_fault("v3_org_sessions", org, 500)

        wait_for(
            f"DevinTargetFailing firing for {org}",
            lambda: bool(prometheus.firing("DevinTargetFailing")),
            ALERT_WITHIN_SECONDS,
        )
        firing = prometheus.firing("DevinTargetFailing")
        assert [("v3_org_sessions", org)] == [(a["endpoint"], a["org"]) for a in firing]
        assert "warning" == firing[0]["severity"]
        errors = f'devin_exporter_poll_errors_total{{org="{org}", reason="server_error"}}'
        reasons = prometheus.query(f"{errors} > 0")  # the series is born with its first error
        assert ["v3_org_sessions"] == [s["metric"]["endpoint"] for s in reasons]


def test_a_refused_key_fires_devin_auth_failures_until_a_poll_is_accepted(
    demo_exporter: ExporterProcess, tmp_path: Path
) -> None:
    """The alert reads devin_exporter_auth_failing, which holds through the exporter's backoff."""
    with prometheus_scraping(demo_exporter, tmp_path) as prometheus:
        org = first_org(prometheus)
        assert [] == prometheus.firing("DevinAuthFailures")

        demo_exporter.inject_fault("v3_org_sessions", org, 401)

        wait_for(
            f"DevinAuthFailures firing for {org}",
            lambda: bool(prometheus.firing("DevinAuthFailures")),
            ALERT_WITHIN_SECONDS,
        )
        firing = prometheus.firing("DevinAuthFailures")
        assert [("v3_org_sessions", org)] == [(a["endpoint"], a["org"]) for a in firing]
        assert "critical" == firing[0]["severity"]
        errors = f'devin_exporter_poll_errors_total{{org="{org}", reason="unauthorized"}} > 0'
        assert ["v3_org_sessions"] == [s["metric"]["endpoint"] for s in prometheus.query(errors)]
        assert "event=auth_failed" in demo_exporter.log()

        demo_exporter.clear_faults()

        # The next backed-off poll (a few doublings of the 2 s interval) is accepted.
        wait_for(
            "DevinAuthFailures resolved",
            lambda: not prometheus.firing("DevinAuthFailures"),
            ALERT_WITHIN_SECONDS,
        )
