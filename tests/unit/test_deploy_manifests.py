"""deploy/ (issue 16), checked without a cluster: the Kubernetes manifests against the Kubernetes schemas,
compose.yaml against the compose specification, and the rules every file must keep (no default
secrets, non-root, probes on /readyz and /healthz, limits, alerts on series that exist)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from crm_core import metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    template = spec.get("jobTemplate", {}).get("spec", spec).get("template", {})
    return list(template.get("spec", {}).get("containers", []))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_each_kubernetes_manifest_matches_the_kubernetes_schemas(path: Path) -> None:
    for doc in documents(path):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_every_container_runs_as_non_root_with_limits_and_secrets_from_secrets() -> None:
    seen = 0
    for path in MANIFESTS:
        for doc in documents(path):
            pod = doc.get("spec", {}).get("jobTemplate", {}).get("spec", doc.get("spec", {})).get("template", {})
            for container in containers(doc):
                seen += 1
                assert pod["spec"]["securityContext"]["runAsNonRoot"] is True, path.name
                assert {"cpu", "memory"} <= set(container["resources"]["limits"]), (path.name, container["name"])
                for variable in container.get("env", []):
                    if variable["name"] in ("CRM_DATABASE_URL", "CRM_COOKIE_KEY", "CRM_REDIS_URL"):
                        assert "secretKeyRef" in variable["valueFrom"], (path.name, variable["name"])
    assert seen == 4  # migrate, web, worker, backup
    images = {container["image"] for path in MANIFESTS for doc in documents(path) for container in containers(doc)}
    assert len(images) == 1 and not next(iter(images)).endswith(":latest")  # one release everywhere


def test_the_web_pods_are_probed_and_scaled_and_browsers_stay_on_their_pod() -> None:
    web = {doc["kind"]: doc for doc in documents(DEPLOY / "k8s" / "web.yaml")}
    [container] = containers(web["Deployment"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
    assert web["Ingress"]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/affinity"] == "cookie"


def test_compose_matches_the_compose_specification_and_has_no_default_secrets() -> None:
    checked = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                              str(DEPLOY / "compose.yaml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    for secret in ("KESTREL_DB_PASSWORD", "KESTREL_COOKIE_KEY"):
        uses = re.findall(rf"\$\{{{secret}([^}}]*)\}}", text)
        assert uses and all(use.startswith(":?") for use in uses), secret  # required, never defaulted


def test_docker_compose_accepts_the_file_where_docker_compose_exists() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("docker compose is not installed here; the compose specification check above still ran")
    secrets = {"KESTREL_DB_PASSWORD": "x" * 20, "KESTREL_COOKIE_KEY": "y" * 40, "PATH": "/usr/bin:/bin"}
    checked = subprocess.run([docker, "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"],
                             capture_output=True, text=True, env=secrets)
    assert checked.returncode == 0, checked.stderr


def test_the_image_is_pinned_non_root_and_health_checked() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim", dockerfile, re.M)  # a pinned, slim base
    assert re.search(r"^USER kestrel$", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    assert "pip install --requirement requirements.txt" in dockerfile  # the pinned requirements


def test_the_alerts_watch_series_that_exist() -> None:
    rules = yaml.safe_load((DEPLOY / "alerts.yaml").read_text(encoding="utf-8"))["groups"][0]["rules"]
    ours = {collector._name for collector in vars(metrics).values()  # type: ignore[attr-defined]
            if hasattr(collector, "_name") and str(getattr(collector, "_name", "")).startswith("kestrel_")}
    ours |= {"kestrel_jobs_queued", "kestrel_db_pool_connections_in_use", "kestrel_db_pool_size"}
    for rule in rules:
        for name in re.findall(r"kestrel_[a-z_]+", rule["expr"]):
            base = re.sub(r"_(bucket|count|sum|total)$", "", name)
            assert base in ours or name in ours, (rule["alert"], name)


def test_the_grafana_dashboard_charts_series_that_exist() -> None:
    import json

    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    names = {re.sub(r"_(bucket|count|sum|total)$", "", name) for panel in dashboard["panels"]
             for target in panel["targets"] for name in re.findall(r"kestrel_[a-z_]+", target["expr"])}
    ours = {str(getattr(collector, "_name", "")) for collector in vars(metrics).values()}
    ours |= {"kestrel_jobs_queued", "kestrel_db_pool_connections_in_use", "kestrel_db_pool_size"}
    assert names and names <= ours, names - ours
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
