"""deploy/ checked offline: every file parses; the Helm values use only keys the official Dagster
chart (dagster/dagster 1.13) documents; the K8sRunLauncher config the chart renders from them
passes dagster-k8s's own config schema and builds a K8sRunLauncher; the run queue and pools equal
deploy/dagster.yaml's and load into a DagsterInstance; the code-location image serves the package's
definitions module; the training launcher lands on GPU nodes; the lake backend and every secret
come from Kubernetes secrets, never from a file. (deploy/dagster.yaml itself runs a backfill on a
real PostgreSQL server in test_postgres_instance.py.)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from replyassets_tests.scale.harness import ROOT

DEPLOY = ROOT / "deploy"
VALUES = DEPLOY / "helm" / "values.yaml"

# The chart's documented values (helm/dagster/schema/schema/charts/... in dagster-io/dagster,
# release 1.13: DagsterHelmValues and its subschemas), for the sections these values set.
CHART_TOP = {
    "dagsterWebserver", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
    "generateCeleryConfigSecret", "rabbitmq", "redis", "flower", "ingress", "imagePullSecrets",
    "computeLogManager", "scheduler", "runLauncher", "pythonLogs", "dagsterDaemon", "busybox", "migrate",
    "telemetry", "serviceAccount", "global", "retention", "concurrency", "additionalInstanceConfig",
    "nameOverride", "fullnameOverride", "rbacEnabled", "extraManifests",
}
CHART_GLOBAL = {"postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName",
                "dagsterInstanceConfigMap"}
CHART_POSTGRESQL = {"postgresqlScheme", "image", "enabled", "postgresqlHost", "postgresqlUsername",
                    "postgresqlPassword", "postgresqlDatabase", "postgresqlParams", "service"}
CHART_RUN_LAUNCHER_TYPES = {"CeleryK8sRunLauncher", "K8sRunLauncher", "CustomRunLauncher"}
CHART_K8S_RUN_LAUNCHER = {
    "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile", "envConfigMaps",
    "envSecrets", "envVars", "volumeMounts", "volumes", "labels", "failPodOnRunFailure", "resources",
    "schedulerName", "securityContext", "runK8sConfig",
}
CHART_K8S_RUN_LAUNCHER_REQUIRED = {"imagePullPolicy", "loadInclusterConfig", "envConfigMaps", "envSecrets",
                                   "envVars", "volumeMounts", "volumes"}
CHART_CONCURRENCY = {"enabled": None, "pools": {"defaultLimit", "granularity", "opGranularityRunBuffer"},
                     "runs": {"maxConcurrentRuns", "tagConcurrencyLimits"}}
CHART_DAEMON = {
    "enabled", "image", "runCoordinator", "heartbeatTolerance", "env", "envConfigMaps", "envSecrets",
    "deploymentLabels", "labels", "nodeSelector", "affinity", "tolerations", "podSecurityContext",
    "securityContext", "resources", "checkDbReadyInitContainer", "livenessProbe", "readinessProbe",
    "startupProbe", "annotations", "runMonitoring", "runRetries", "sensors", "schedules", "backfills",
    "schedulerName", "logFormat", "volumeMounts", "volumes", "initContainerResources", "extraContainers",
    "extraPrependedInitContainers",
}
CHART_RUN_COORDINATOR = {"enabled", "type", "config"}
CHART_RUN_RETRIES = {"enabled", "maxRetries", "retryOnAssetOrOpFailure"}
CHART_USER_DEPLOYMENTS = {"enabled", "enableSubchart", "imagePullSecrets", "deployments"}
CHART_USER_DEPLOYMENT = {
    "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns",
    "deploymentNamespace", "port", "replicaCount", "env", "envConfigMaps", "envSecrets", "annotations",
    "nodeSelector", "affinity", "tolerations", "podSecurityContext", "securityContext", "resources",
    "livenessProbe", "readinessProbe", "startupProbe", "labels", "volumeMounts", "volumes", "schedulerName",
    "initContainers", "sidecarContainers", "deploymentStrategy",
}
CHART_IMAGE = {"repository", "tag", "pullPolicy", "digest"}
PULL_POLICIES = {"Always", "IfNotPresent", "Never"}
# Environment variables that hold secrets: never a literal value in a file.
SECRET_ENV = {"APIFY_API_TOKEN", "ANTHROPIC_API_KEY", "PGPASSWORD", "HF_TOKEN", "DAGSTER_PG_PASSWORD",
              "REPLYASSETS_DUCKLAKE_CATALOG"}


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def _deployment(values: dict) -> dict:
    (dep,) = values["dagster-user-deployments"]["deployments"]
    return dep


def _env(dep: dict) -> dict[str, dict]:
    return {e["name"]: e for e in dep["env"]}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snake_keys(obj):
    if isinstance(obj, dict):
        return {_snake(k): _snake_keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_snake_keys(v) for v in obj]
    return obj


def test_every_deploy_file_parses_and_holds_no_secret():
    files = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))
    assert {p.relative_to(DEPLOY).as_posix() for p in files} >= {
        "dagster.yaml", "helm/values.yaml", "k8s/data-pvc.yaml", "k8s/training-rbac.yaml"}
    for path in files:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs and all(isinstance(d, dict) for d in docs), path
        text = path.read_text()
        # No literal credentials: no password value, no API key shapes.
        assert not re.search(r"(?i)^\s*(postgresql)?password:\s*['\"]?[^\s{'\"#]", text, re.M), path
        assert not re.search(r"sk-ant-|apify_api_[A-Za-z0-9]{8}|hf_[A-Za-z0-9]{20}", text), path
        for doc in docs:
            for name, entry in _env_entries(doc):
                if name in SECRET_ENV:
                    assert "value" not in entry, f"{path}: {name} has a literal value"


def _env_entries(obj):
    if isinstance(obj, dict):
        if isinstance(obj.get("name"), str) and ("value" in obj or "valueFrom" in obj):
            yield obj["name"], obj
        for v in obj.values():
            yield from _env_entries(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _env_entries(v)


def test_helm_values_use_only_keys_the_chart_documents(values):
    assert set(values) <= CHART_TOP, set(values) - CHART_TOP
    assert set(values["global"]) <= CHART_GLOBAL
    assert set(values["postgresql"]) <= CHART_POSTGRESQL
    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in values["postgresql"]  # from global.postgresqlSecretName
    launcher = values["runLauncher"]
    assert set(launcher) == {"type", "config"} and launcher["type"] == "K8sRunLauncher"
    assert launcher["type"] in CHART_RUN_LAUNCHER_TYPES and set(launcher["config"]) == {"k8sRunLauncher"}
    k8s = launcher["config"]["k8sRunLauncher"]
    assert CHART_K8S_RUN_LAUNCHER_REQUIRED <= set(k8s) <= CHART_K8S_RUN_LAUNCHER, set(k8s) ^ CHART_K8S_RUN_LAUNCHER
    assert k8s["imagePullPolicy"] in PULL_POLICIES
    conc = values["concurrency"]
    assert set(conc) <= set(CHART_CONCURRENCY) and conc["enabled"] is True
    for section in ("pools", "runs"):
        assert set(conc[section]) <= CHART_CONCURRENCY[section]
    assert all(set(t) <= {"key", "value", "limit"} for t in conc["runs"]["tagConcurrencyLimits"])
    daemon = values["dagsterDaemon"]
    assert set(daemon) <= CHART_DAEMON
    assert set(daemon["runCoordinator"]) <= CHART_RUN_COORDINATOR
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert set(daemon["runRetries"]) <= CHART_RUN_RETRIES
    uds = values["dagster-user-deployments"]
    assert set(uds) <= CHART_USER_DEPLOYMENTS and uds["enabled"] and uds["enableSubchart"]
    dep = _deployment(values)
    assert {"name", "image", "port"} <= set(dep) <= CHART_USER_DEPLOYMENT, set(dep) - CHART_USER_DEPLOYMENT
    assert {"repository", "pullPolicy"} <= set(dep["image"]) <= CHART_IMAGE
    assert dep["image"]["pullPolicy"] in PULL_POLICIES and isinstance(dep["image"]["tag"], str)
    assert dep["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert all(set(e) <= {"name", "value", "valueFrom"} for e in dep["env"])


def test_rendered_k8s_run_launcher_passes_dagster_k8s_schema(values, tmp_path):
    """The instance config the chart writes for K8sRunLauncher (its dagsterYaml.runLauncher.k8s
    template: camelCase values to the launcher's snake_case fields), validated by dagster-k8s's
    config schema, then a K8sRunLauncher built from it (a kubeconfig file stands in for the
    cluster's in-cluster config)."""
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    rendered = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": k8s.get("jobNamespace") or "replyassets",
        "image_pull_policy": k8s["imagePullPolicy"],
        "service_account_name": "dagster",
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "env_config_maps": [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"},
                            *[c["name"] for c in k8s["envConfigMaps"]]],
        "env_secrets": [s["name"] for s in k8s["envSecrets"]],
        "env_vars": k8s["envVars"],
        "volume_mounts": _snake_keys(k8s["volumeMounts"]),
        "volumes": k8s["volumes"],
        "labels": k8s.get("labels", {}),
        "resources": k8s.get("resources", {}),
        "fail_pod_on_run_failure": k8s.get("failPodOnRunFailure", False),
    }
    env = {"DAGSTER_HOME": "/opt/dagster/dagster_home", "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "dagster-instance",
           "DAGSTER_K8S_PG_PASSWORD_SECRET": "dagster-postgresql-secret",
           "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": "dagster-pipeline-env"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        result = process_config(K8sRunLauncher.config_type(), rendered)
        assert result.success, [e.message for e in result.errors]
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443"}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        }))
        config = {**result.value, "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
        launcher = K8sRunLauncher(**config)
    assert launcher.image_pull_policy == "IfNotPresent" and launcher.fail_pod_on_run_failure
    assert launcher.resources["requests"]["memory"] == "1Gi"


def test_run_queue_and_pools_match_deploy_instance_and_load(values, tmp_path):
    import dagster as dg

    deploy = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    helm = values["concurrency"]
    as_instance = {"pools": _snake_keys(helm["pools"]), "runs": {
        "max_concurrent_runs": helm["runs"]["maxConcurrentRuns"],
        "tag_concurrency_limits": helm["runs"]["tagConcurrencyLimits"]}}  # tag values keep camelCase
    assert as_instance == deploy["concurrency"]
    daemon = values["dagsterDaemon"]
    assert daemon["runRetries"]["maxRetries"] == deploy["run_retries"]["max_retries"]
    assert daemon["runRetries"]["retryOnAssetOrOpFailure"] == deploy["run_retries"]["retry_on_asset_or_op_failure"]
    assert daemon["runMonitoring"]["enabled"] == deploy["run_monitoring"]["enabled"]
    # The same queue and pools as a (SQLite) instance: Dagster accepts them.
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump({
        "concurrency": as_instance, "run_coordinator": deploy["run_coordinator"],
        "run_monitoring": deploy["run_monitoring"], "run_retries": deploy["run_retries"]}))
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        cfg = instance.get_concurrency_config()
        assert cfg.run_queue_config.max_concurrent_runs == 8
        assert cfg.pool_config.default_pool_limit == 1
        assert {t["key"] for t in cfg.run_queue_config.tag_concurrency_limits} == {"dagster/partition", "replyassets/trains"}
        assert instance.run_retries_enabled and instance.run_monitoring_enabled
    finally:
        instance.dispose()


def test_code_location_image_serves_the_package_definitions(values):
    from importlib.util import find_spec

    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r'^CMD\s+(\[.*\])\s*$', dockerfile, re.M)
    assert cmd, "Dockerfile has no exec-form CMD"
    import json

    argv = json.loads(cmd.group(1))
    assert argv[:3] == ["dagster", "api", "grpc"]
    module = argv[argv.index("-m") + 1]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert module == pyproject["tool"]["dg"]["project"]["code_location_target_module"] == "replyassets.definitions"
    assert find_spec(module) is not None
    dep = _deployment(values)
    assert dep["dagsterApiGrpcArgs"] == ["-m", module]
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == module
    # The image has what the instance and the launcher need.
    deps = " ".join(pyproject["project"]["dependencies"])
    assert "dagster-postgres==" in deps and "dagster-k8s==" in deps


def test_training_launcher_lands_on_gpu_nodes_with_the_shared_volume(values, monkeypatch, tmp_path):
    from replyassets.defs.launchers import (
        LAUNCHER_ENV,
        build_pod_spec,
        training_launcher_for,
    )
    from replyassets.settings import load_settings

    dep = _deployment(values)
    env = _env(dep)
    monkeypatch.setenv(LAUNCHER_ENV, env[LAUNCHER_ENV]["value"])
    monkeypatch.setenv("REPLYASSETS_DATA_DIR", env["REPLYASSETS_DATA_DIR"]["value"])
    launcher = training_launcher_for(load_settings("production"))
    assert launcher.kind == "kubernetes" and launcher.image.endswith("-cuda")
    spec = build_pod_spec(
        image=launcher.image, gpus=launcher.gpus, cpu=launcher.cpu, memory=launcher.memory,
        node_selector=launcher.node_selector, tolerations=launcher.tolerations, secret_env=launcher.secret_env,
        pvc_claim_name=launcher.pvc_claim_name, remote_shared_dir=launcher.remote_shared_dir,
    )
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    (container,) = spec["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "shared", "mountPath": "/shared"} in container["volumeMounts"]
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "replyassets-secrets", "key": "HF_TOKEN",
                                                               "optional": False}}} in container["env"]
    # The orchestrating side sees the same volume where the launcher stages files.
    pvc = yaml.safe_load((DEPLOY / "k8s" / "data-pvc.yaml").read_text())
    claim = pvc["metadata"]["name"]
    assert launcher.pvc_claim_name == claim and "ReadWriteMany" in pvc["spec"]["accessModes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": claim}} in dep["volumes"]
    assert {"name": "data", "mountPath": launcher.shared_dir} in dep["volumeMounts"]
    assert launcher.shared_dir == env["REPLYASSETS_DATA_DIR"]["value"]
    # In the local profile the variable changes nothing about where training runs.
    assert training_launcher_for(load_settings("local")).kind == "local"


def test_launcher_settings_reject_unknown_fields_and_read_files(tmp_path):
    from replyassets.defs.launchers import (
        TrainingLaunchError,
        launcher_settings_from_env,
    )

    assert launcher_settings_from_env("") == {}
    assert launcher_settings_from_env('{"gpus": 2}') == {"gpus": 2}
    path = tmp_path / "launcher.yaml"
    path.write_text("namespace: ml\nnode_selector: {pool: gpu}\n")
    assert launcher_settings_from_env(str(path)) == {"namespace": "ml", "node_selector": {"pool": "gpu"}}
    with pytest.raises(TrainingLaunchError, match="unknown launcher setting"):
        launcher_settings_from_env("node_selectr: {pool: gpu}")


def test_lake_backend_and_secrets_come_from_kubernetes_secrets(values, monkeypatch):
    from replyassets.core import db
    from replyassets.settings import load_settings

    dep = _deployment(values)
    env = _env(dep)
    assert env["REPLYASSETS_PROFILE"]["value"] == "production"
    # The variables the storage layer reads (replyassets/core/db.py, settings.storage).
    for name in ("REPLYASSETS_STORAGE_BACKEND", "REPLYASSETS_DUCKLAKE_DATA_PATH", "REPLYASSETS_DATA_DIR"):
        monkeypatch.setenv(name, env[name]["value"])
    storage = db.storage_from_settings(load_settings("production"))
    assert storage.backend == "ducklake" and storage.data_path == "/data/lake"
    assert storage.catalog_env == db.CATALOG_ENV
    catalog = env[db.CATALOG_ENV]
    assert "value" not in catalog and catalog["valueFrom"]["secretKeyRef"]["name"] == "replyassets-secrets"
    assert {"name": "replyassets-secrets"} in dep["envSecrets"]
    # The README's `kubectl create secret` commands create every key the values refer to.
    readme = (ROOT / "README.md").read_text()
    keys = set(re.findall(r"--from-literal=([A-Za-z_][A-Za-z0-9_-]*)=", readme))
    assert {"APIFY_API_TOKEN", "ANTHROPIC_API_KEY", "PGPASSWORD", "HF_TOKEN", "ducklake-catalog",
            "postgresql-password"} <= keys, keys
    # The production resources read exactly those secrets from the environment.
    resources = (ROOT / "replyassets" / "defs" / "resources.py").read_text()
    assert 'EnvVar("APIFY_API_TOKEN")' in resources and 'EnvVar("ANTHROPIC_API_KEY")' in resources
    # The chart's instance password comes from the pre-created secret.
    assert values["global"]["postgresqlSecretName"] == "dagster-postgresql-secret"


def test_readme_walks_from_laptop_to_team():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## From a laptop to a team", 1)
    assert len(section) == 2, "README has no 'From a laptop to a team' section"
    body = section[1].split("\n## ", 1)[0]
    for needle in ("make demo", "docker build", "deploy/helm/values.yaml", "deploy/dagster.yaml",
                   "helm upgrade --install", "create secret generic", "deploy/k8s/data-pvc.yaml"):
        assert needle in body, needle
    for path in re.findall(r"`(deploy/[^`\s]+)`", body):
        assert (ROOT / path).exists(), path
