"""deploy/kubernetes/sharded: a StatefulSet of shards that replaces the base Deployment."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import ROOT

from exporter.config import load_settings

pytestmark = pytest.mark.slow  # real processes, servers or builds

SHARDED = ROOT / "deploy" / "kubernetes" / "sharded"
BASE = ROOT / "deploy" / "kubernetes" / "base"


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((SHARDED / name).read_text())
    return document


def test_overlay_builds_on_the_base_and_replaces_its_deployment() -> None:
    kustomization = load("kustomization.yaml")
    assert "../base" in kustomization["resources"]
    for resource in kustomization["resources"]:
        assert (SHARDED / resource).exists()
    (patch,) = kustomization["patches"]
    deleted = yaml.safe_load(patch["patch"])
    assert ("Deployment", "devin-exporter", "delete") == (
        deleted["kind"],
        deleted["metadata"]["name"],
        deleted["$patch"],
    )
    servicemonitors = [p for p in BASE.glob("*.yaml") if "kind: ServiceMonitor" in p.read_text()]
    assert 1 == len(servicemonitors), "one ServiceMonitor scrapes every shard"


@pytest.mark.parametrize("name", ["statefulset.yaml", "service-headless.yaml"])
def test_manifests_validate(name: str) -> None:
    kubernetes_validate.validate(load(name), "1.30", strict=True)


def test_shard_count_matches_replicas_and_pods_keep_the_base_template() -> None:
    statefulset = load("statefulset.yaml")
    base = yaml.safe_load((BASE / "deployment.yaml").read_text())
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert str(statefulset["spec"]["replicas"]) == env["DEVIN_EXPORTER_SHARDING__COUNT"]
    assert "devin-exporter-shards" == statefulset["spec"]["serviceName"]
    (base_container,) = base["spec"]["template"]["spec"]["containers"]
    assert {k: v for k, v in container.items() if k != "env"} == base_container
    assert statefulset["spec"]["selector"] == base["spec"]["selector"]


def test_each_pod_name_gives_a_valid_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    statefulset = load("statefulset.yaml")
    replicas = statefulset["spec"]["replicas"]
    for ordinal in range(replicas):
        monkeypatch.setenv("HOSTNAME", f"{statefulset['metadata']['name']}-{ordinal}")
        monkeypatch.setenv("DEVIN_EXPORTER_SHARDING__COUNT", str(replicas))
        settings = load_settings(
            None, devin={"service_user_key": "cog_x"}, organizations=[{"id": "org-a"}]
        )
        assert (ordinal, replicas) == (settings.sharding.index, settings.sharding.count)
