"""The kustomize manifests, proven offline.

Every overlay renders with ``kubectl kustomize`` (secrets generated into a temp
copy, as ``make k8s-secrets`` does for real); every rendered object validates
against the Kubernetes 1.30 JSON schemas (kubernetes-validate, strict: unknown
fields fail) or, for custom resources, against the openAPIV3Schema of its CRD
in ../shared/crds (unknown fields fail too, unless the CRD preserves them);
policy checks cover every pod; the PrometheusRule matches the rules file; the
compiled pipelines' Secrets and ConfigMap exist where KFP runs them.

The helpers here are shared with test_chart.py.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
OVERLAYS = ("kind", "production")
KUBERNETES_VERSION = "1.30.0"
KUBECTL = shutil.which("kubectl")
CRD_FILES = {
    ("serving.kserve.io", "InferenceService"): "kserve/serving.kserve.io_inferenceservices.yaml",
    ("serving.kserve.io", "ClusterServingRuntime"): (
        "kserve/serving.kserve.io_clusterservingruntimes.yaml"
    ),
    ("serving.kserve.io", "ServingRuntime"): "kserve/serving.kserve.io_servingruntimes.yaml",
    (
        "monitoring.coreos.com",
        "PodMonitor",
    ): "prometheus-operator/monitoring.coreos.com_podmonitors.yaml",
    ("monitoring.coreos.com", "ServiceMonitor"): (
        "prometheus-operator/monitoring.coreos.com_servicemonitors.yaml"
    ),
    ("monitoring.coreos.com", "PrometheusRule"): (
        "prometheus-operator/monitoring.coreos.com_prometheusrules.yaml"
    ),
    ("monitoring.coreos.com", "AlertmanagerConfig"): (
        "prometheus-operator/monitoring.coreos.com_alertmanagerconfigs.yaml"
    ),
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


# --------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------
def kustomize(directory: Path) -> list[dict]:
    out = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, list[dict]]:
    if KUBECTL is None:
        pytest.skip("kubectl (with kustomize) is not installed")
    copy_root = tmp_path_factory.mktemp("manifests")
    shutil.copytree(MANIFESTS, copy_root / "manifests", ignore=shutil.ignore_patterns("*.env"))
    generated = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "generate_k8s_secrets.py"),
            str(copy_root / "manifests" / "base" / "secrets"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert generated.returncode == 0, generated.stderr
    return {name: kustomize(copy_root / "manifests" / "overlays" / name) for name in OVERLAYS}


# --------------------------------------------------------------------------
# schema validation
# --------------------------------------------------------------------------
def strict_schema(schema):
    """A CRD schema that rejects unknown fields, as the API server's strict
    field validation does (where the CRD does not preserve unknown fields)."""
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict_schema(value) for key, value in schema.items()}
    if (
        "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


class CrdLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader without the YAML 1.1 "value" tag: CRD enums contain a bare ``=``."""


CrdLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@cache
def crd_validator(crd_root: str, group: str, version: str, kind: str):
    import jsonschema

    relative = CRD_FILES.get((group, kind))
    if relative is None:
        raise AssertionError(f"no CRD schema known for {group}/{kind}")
    crd = yaml.load((Path(crd_root) / relative).read_text(), Loader=CrdLoader)  # noqa: S506
    assert crd["spec"]["names"]["kind"] == kind
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema = copy.deepcopy(served["schema"]["openAPIV3Schema"])
            # metadata is validated by the API server itself, not the CRD schema
            strict = strict_schema(schema)
            strict["properties"]["metadata"] = {"type": "object"}
            return jsonschema.Draft7Validator(strict)
    raise AssertionError(f"{relative} serves no version {version}")


def validation_errors(docs: list[dict], crd_dir: Path) -> list[str]:
    import kubernetes_validate

    errors = []
    for doc in docs:
        kind, api_version = doc["kind"], doc["apiVersion"]
        where = f"{kind}/{doc['metadata'].get('name')}"
        group, _, version = api_version.rpartition("/")
        if (group, kind) in CRD_FILES:
            validator = crd_validator(str(crd_dir), group, version, kind)
            errors += [
                f"{where}: {'.'.join(map(str, e.path))}: {e.message}"
                for e in validator.iter_errors(doc)
            ]
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{where}: no schema for {api_version} {kind} in Kubernetes 1.30")
    return errors


# --------------------------------------------------------------------------
# policy
# --------------------------------------------------------------------------
def pods(docs: list[dict]):
    """(where, pod-level spec, containers, init containers, pod labels) for every pod
    the objects will create, including KServe predictor pods."""
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind in WORKLOAD_KINDS:
            template = doc["spec"]["template"]
            spec = template["spec"]
            yield (
                f"{kind}/{name}",
                spec,
                spec["containers"],
                spec.get("initContainers", []),
                template["metadata"].get("labels", {}),
            )
        elif kind == "InferenceService":
            predictor = doc["spec"]["predictor"]
            model = dict(predictor.get("model") or {}, name="kserve-container")
            containers = ([model] if predictor.get("model") else []) + predictor.get(
                "containers", []
            )
            labels = dict(predictor.get("labels", {}))
            labels["serving.kserve.io/inferenceservice"] = name
            yield f"{kind}/{name}", predictor, containers, [], labels
        elif kind in ("ClusterServingRuntime", "ServingRuntime"):
            yield f"{kind}/{name}", doc["spec"], doc["spec"]["containers"], [], None


def policy_violations(docs: list[dict]) -> list[str]:
    problems = []
    for where, spec, containers, init_containers, _labels in pods(docs):
        pod_security = spec.get("securityContext") or {}
        for container in [*containers, *init_containers]:
            cname = f"{where}/{container['name']}"
            security = container.get("securityContext") or {}

            def effective(key, _security=security, _pod=pod_security):
                return _security.get(key, _pod.get(key))

            if effective("runAsNonRoot") is not True:
                problems.append(f"{cname}: runAsNonRoot is not true")
            if (effective("runAsUser") or 1) == 0:
                problems.append(f"{cname}: runs as uid 0")
            if security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cname}: root filesystem is writable")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cname}: allowPrivilegeEscalation is not false")
            if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{cname}: capabilities not dropped (ALL)")
            if (effective("seccompProfile") or {}).get("type") != "RuntimeDefault":
                problems.append(f"{cname}: seccompProfile is not RuntimeDefault")
            resources = container.get("resources") or {}
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (resources.get(bound) or {}):
                        problems.append(f"{cname}: no {resource} {bound}")
            if container in containers:
                for probe in ("livenessProbe", "readinessProbe"):
                    if not container.get(probe):
                        problems.append(f"{cname}: no {probe}")
    return problems


def selects(selector: dict, labels: dict) -> bool:
    match = selector.get("matchLabels") or {}
    if not match and not selector.get("matchExpressions"):
        return False  # the empty selector is the default deny, not a policy for this pod
    for expression in selector.get("matchExpressions") or []:
        if expression["operator"] == "Exists" and expression["key"] not in labels:
            return False
        if (
            expression["operator"] == "In"
            and labels.get(expression["key"]) not in expression["values"]
        ):
            return False
    return all(labels.get(key) == value for key, value in match.items())


def network_policy_gaps(docs: list[dict]) -> list[str]:
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    gaps = []
    default_deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    if not default_deny:
        gaps.append("no default-deny NetworkPolicy (empty podSelector, Ingress+Egress, no rules)")
    for where, _spec, _containers, _init, labels in pods(docs):
        if labels is None:
            continue  # a runtime template, not a pod
        if not any(selects(p["spec"]["podSelector"], labels) for p in policies):
            gaps.append(f"{where}: no NetworkPolicy selects its pods ({labels})")
    return gaps


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_whole_loop(rendered, overlay):
    kinds = {(d["kind"], d["metadata"]["name"]) for d in rendered[overlay]}
    for expected in [
        ("Namespace", "driftloop"),
        ("StatefulSet", "driftloop-postgres"),
        ("StatefulSet", "driftloop-minio"),
        ("Deployment", "driftloop-mlflow"),
        ("ClusterServingRuntime", "driftloop-sklearn"),
        ("InferenceService", "sentiment"),
        ("Deployment", "driftloop-trigger"),
        ("Deployment", "driftloop-console"),
        ("Service", "driftloop-console"),
        ("NetworkPolicy", "driftloop-console"),
        ("PrometheusRule", "driftloop-alerts"),
        ("AlertmanagerConfig", "driftloop-retrain"),
        ("PodMonitor", "driftloop-predictor"),
        ("PodMonitor", "driftloop-monitor"),
        ("Role", "driftloop-deployer"),
        ("NetworkPolicy", "default-deny-all"),
        ("Secret", "driftloop-trigger-token"),
    ]:
        assert expected in kinds, f"{overlay}: {expected} missing"
    assert not any(d["kind"] in ("ClusterRole", "ClusterRoleBinding") for d in rendered[overlay])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_its_schema(rendered, overlay, crd_dir):
    docs = rendered[overlay]
    assert validation_errors(docs, crd_dir) == []
    assert len(docs) >= 40


def test_validation_catches_mistakes(rendered, crd_dir):
    """The validators are not vacuous: typos and wrong types in core and CRD objects fail."""
    docs = copy.deepcopy(rendered["kind"])
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    by_name[("Deployment", "driftloop-trigger")]["spec"]["replicas"] = "one"
    by_name[("InferenceService", "sentiment")]["spec"]["predictor"]["loger"] = {"mode": "all"}
    by_name[("AlertmanagerConfig", "driftloop-retrain")]["spec"]["route"]["groupWait"] = 30
    by_name[("PodMonitor", "driftloop-predictor")]["spec"]["podMetricsEndpoints"][0]["prot"] = "x"
    errors = validation_errors(docs, crd_dir)
    assert any("Deployment/driftloop-trigger" in e and "replicas" in e for e in errors)
    assert any("InferenceService/sentiment" in e and "loger" in e for e in errors)
    assert any("AlertmanagerConfig/driftloop-retrain" in e for e in errors)
    assert any("PodMonitor/driftloop-predictor" in e and "prot" in e for e in errors)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_restricted_with_resources_and_probes(rendered, overlay):
    assert list(pods(rendered[overlay]))
    assert policy_violations(rendered[overlay]) == []


def test_policy_check_flags_a_root_container(rendered):
    docs = copy.deepcopy(rendered["kind"])
    mlflow = next(
        d for d in docs if d["metadata"]["name"] == "driftloop-mlflow" and d["kind"] == "Deployment"
    )
    container = mlflow["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    del container["readinessProbe"]
    mlflow["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = False
    problems = policy_violations(docs)
    assert any("driftloop-mlflow/mlflow: root filesystem is writable" in p for p in problems)
    assert any("driftloop-mlflow/mlflow: no readinessProbe" in p for p in problems)
    assert any("driftloop-mlflow/mlflow: runAsNonRoot" in p for p in problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_default_deny_and_a_network_policy_for_every_workload(rendered, overlay):
    assert network_policy_gaps(rendered[overlay]) == []
    gaps = network_policy_gaps(
        [
            d
            for d in rendered[overlay]
            if d["metadata"]["name"] != "driftloop-minio" or d["kind"] != "NetworkPolicy"
        ]
    )
    assert gaps == [
        f"StatefulSet/driftloop-minio: no NetworkPolicy selects its pods "
        f"({next(p[4] for p in pods(rendered[overlay]) if p[0] == 'StatefulSet/driftloop-minio')})"
    ]


def test_payload_logger_feeds_the_sidecar_monitor_with_its_token(rendered):
    docs = rendered["kind"]
    isvc = next(d for d in docs if d["kind"] == "InferenceService")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    predictor = isvc["spec"]["predictor"]
    # the predictor's own logger posts to the sidecar; KServe's cannot send a token
    assert "logger" not in predictor
    monitor = next(c for c in predictor["containers"] if c["name"] == "drift-monitor")
    assert {"name": "monitor", "containerPort": 8090, "protocol": "TCP"} in monitor["ports"]
    env = {e["name"]: e for e in predictor["model"]["env"]}
    assert env["DRIFTLOOP_MODEL_URI"]["value"] == "models:/sentiment@champion"
    assert env["DRIFTLOOP_LOGGER_URL"]["value"] == "http://localhost:8090/"
    monitor_env = {e["name"]: e for e in monitor["env"]}
    # one Secret, on both ends: the intake refuses events without its bearer token
    reference = monitor_env["DRIFTLOOP_MONITOR_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert env["DRIFTLOOP_MONITOR_TOKEN"]["valueFrom"]["secretKeyRef"] == reference
    secret = next(
        d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == reference["name"]
    )
    assert secret["metadata"]["namespace"] == "driftloop" and reference["key"] in secret["data"]
    api = next(
        d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "driftloop-api-token"
    )
    assert secret["data"][reference["key"]] != api["data"]["token"]
    runtime = next(d for d in rendered["kind"] if d["kind"] == "ClusterServingRuntime")
    assert "namespace" not in runtime["metadata"]  # cluster-scoped
    assert predictor["model"]["runtime"] == runtime["metadata"]["name"]
    assert predictor["model"]["modelFormat"]["name"] in {
        f["name"] for f in runtime["spec"]["supportedModelFormats"]
    }
    assert {"v1", "v2"} <= set(runtime["spec"]["protocolVersions"])
    assert {p["containerPort"] for p in runtime["spec"]["containers"][0]["ports"]} == {8080, 8081}


def sidecar_monitor_config(docs: list[dict], tmp_path: Path):
    """The detector config the sidecar runs with, read by the monitor's own loader."""
    from driftloop.monitor.config import load_config

    config_map = next(d for d in docs if d["metadata"]["name"] == "driftloop-monitor-config")
    isvc = next(d for d in docs if d["kind"] == "InferenceService")
    monitor = next(
        c for c in isvc["spec"]["predictor"]["containers"] if c["name"] == "drift-monitor"
    )
    mount = next(m for m in monitor["volumeMounts"] if m["name"] == "monitor-config")
    (config_arg,) = [a for a in monitor["args"] if a.startswith("--config=")]
    path = Path(config_arg.removeprefix("--config="))
    assert path.parent == Path(mount["mountPath"])  # the flag names a file in the ConfigMap
    written = tmp_path / path.name
    written.write_text(config_map["data"][path.name])
    window = next(e["value"] for e in monitor["env"] if e["name"] == "DRIFTLOOP_MONITOR_WINDOW")
    return load_config(written), int(window)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_monitor_config_map_is_the_monitors_default_config(rendered, overlay, tmp_path):
    from driftloop.monitor.config import DEFAULT_CONFIG
    from driftloop.settings import Settings

    config, window = sidecar_monitor_config(rendered[overlay], tmp_path)
    assert config == DEFAULT_CONFIG
    assert config.window_size(Settings(monitor_window=window)) == window == 200


def test_alertmanager_routes_the_retraining_alerts_to_the_trigger_with_a_bearer_secret(rendered):
    docs = rendered["kind"]
    config = next(d for d in docs if d["kind"] == "AlertmanagerConfig")
    matcher = config["spec"]["route"]["matchers"][0]
    import re

    rules = next(d for d in docs if d["kind"] == "PrometheusRule")
    alert_names = {r["alert"] for g in rules["spec"]["groups"] for r in g["rules"]}
    retraining = {"DriftDetected", "FeedbackBacklog", "LiveScoreDrop", "LiveHitRateDrop"}
    assert alert_names == retraining | {"DriftloopStoreDropping"}
    assert all(re.fullmatch(matcher["value"], name) for name in retraining)
    # dropped prediction rows page a person; they are no reason to retrain
    assert not re.fullmatch(matcher["value"], "DriftloopStoreDropping")
    webhook = config["spec"]["receivers"][0]["webhookConfigs"][0]
    assert webhook["url"].startswith("http://driftloop-trigger.driftloop.svc.cluster.local:8095/")
    credentials = webhook["httpConfig"]["authorization"]["credentials"]
    secret = next(
        d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == credentials["name"]
    )
    assert credentials["key"] in secret["data"]
    trigger = next(
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "driftloop-trigger"
    )
    env = {e["name"]: e for e in trigger["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DRIFTLOOP_TRIGGER_TOKEN"]["valueFrom"]["secretKeyRef"] == credentials
    # the global cap on retraining runs in flight, as the settings read it
    from driftloop.settings import Settings

    cap = env["DRIFTLOOP_TRIGGER_MAX_CONCURRENT_RUNS"]["value"]
    assert Settings(trigger_max_concurrent_runs=cap).trigger_max_concurrent_runs == 2


def test_prometheus_rule_is_generated_from_the_rules_file(rendered):
    rules_file = REPO / "src" / "driftloop" / "monitor" / "alert_rules.yaml"
    rule = next(d for d in rendered["kind"] if d["kind"] == "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(rules_file.read_text())["groups"]
    check = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "render_prometheus_rule.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_rbac_is_namespaced_and_minimal(rendered):
    role = next(d for d in rendered["kind"] if d["kind"] == "Role")
    verbs = {(tuple(r["apiGroups"]), v) for r in role["rules"] for v in r["verbs"]}
    assert (("serving.kserve.io",), "patch") in verbs
    assert not any(v in ("delete", "deletecollection", "*", "escalate", "bind") for _, v in verbs)
    assert all("*" not in r["resources"] for r in role["rules"])


def test_pipeline_secrets_and_config_exist_where_kfp_runs_them(rendered):
    compiled = sorted((REPO / "pipelines" / "compiled").glob("*.yaml"))
    if not compiled:
        pytest.skip("pipelines/compiled/*.yaml not built yet (make compile)")
    docs = rendered["kind"]
    available = {
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): set(
            (d.get("data") or {}).keys()
        )
        for d in docs
        if d["kind"] in ("Secret", "ConfigMap")
    }
    for path in compiled:
        spec, *platform = list(yaml.safe_load_all(path.read_text()))
        executors = spec["deploymentSpec"]["executors"]
        kubernetes = platform[0]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        assert set(executors) == set(kubernetes), f"{path.name}: executors without k8s settings"
        for name, executor in executors.items():
            assert executor["container"].get("image"), f"{path.name}:{name} has no image"
            for ref in kubernetes[name].get("secretAsEnv", []):
                keys = available.get(("Secret", "kubeflow", ref["secretName"]))
                assert keys is not None, (
                    f"{path.name}:{name}: Secret {ref['secretName']} not in kubeflow"
                )
                assert {k["secretKey"] for k in ref["keyToEnv"]} <= keys
            for ref in kubernetes[name].get("configMapAsEnv", []):
                keys = available.get(("ConfigMap", "kubeflow", ref["configMapName"]))
                assert keys is not None and {k["configMapKey"] for k in ref["keyToEnv"]} <= keys


# --------------------------------------------------------------------------
# secrets never committed
# --------------------------------------------------------------------------
NON_SECRET_KEYS = {"POSTGRES_USER", "access-key", "endpoint-url", "tracking-uri"}


def committed_files(*roots: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--", *roots], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    if out.returncode != 0:
        pytest.skip(f"not a git checkout: {out.stderr.strip()}")
    return [REPO / line for line in out.stdout.splitlines()]


def literal_secret_data(path: Path) -> list[str]:
    """Lines of Secret data in ``path`` that are literal values, not templates."""
    found = []
    for document in path.read_text().split("\n---"):
        if "kind: Secret" not in document:
            continue
        in_data = False
        for line in document.splitlines():
            stripped = line.strip()
            if stripped in ("data:", "stringData:"):
                in_data, indent = True, len(line) - len(line.lstrip())
                continue
            if in_data:
                if stripped and len(line) - len(line.lstrip()) <= indent:
                    in_data = False
                elif stripped and ":" in stripped and "{{" not in stripped:
                    found.append(f"{path.relative_to(REPO)}: {stripped}")
    return found


def test_no_secret_values_are_committed():
    files = committed_files("manifests", "charts")
    assert files
    assert not [f for f in files if f.name.endswith(".env")], "generated .env files are committed"
    literal = [
        hit
        for f in files
        if f.suffix in (".yaml", ".yml", ".tpl")
        for hit in literal_secret_data(f)
    ]
    assert literal == []
    for example in MANIFESTS.glob("base/secrets/*.env.example"):
        for line in example.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, value = line.partition("=")
                assert key in NON_SECRET_KEYS or value == "", f"{example.name}: {key} has a value"


def test_literal_secret_scan_finds_a_planted_value(tmp_path, monkeypatch):
    planted = tmp_path / "leak.yaml"
    planted.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData:\n  password: hunter2\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert literal_secret_data(planted) == ["leak.yaml: password: hunter2"]


def test_secret_generator_fills_random_values_once(tmp_path):
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("gen", REPO / "scripts" / "generate_k8s_secrets.py")
    gen = module_from_spec(spec)
    spec.loader.exec_module(gen)
    for example in MANIFESTS.glob("base/secrets/*.env.example"):
        shutil.copy(example, tmp_path / example.name)
    first = {p.name: gen.read_env(p) for p in gen.generate(tmp_path)}
    assert len(first) == 7
    assert len(first["monitor.env"]["token"]) == 48
    password = first["postgres.env"]["POSTGRES_PASSWORD"]
    assert len(password) == 48 and password != first["minio.env"]["secret-key"]
    assert f":{password}@" in first["store.env"]["url"]
    assert first["postgres.env"]["POSTGRES_USER"] == "driftloop"
    assert gen.generate(tmp_path) == []  # existing values are kept
    assert gen.read_env(tmp_path / "postgres.env")["POSTGRES_PASSWORD"] == password
    assert oct((tmp_path / "postgres.env").stat().st_mode & 0o777) == "0o600"


# --------------------------------------------------------------------------
# images and entry points
# --------------------------------------------------------------------------
DOCKERFILE = REPO / "images" / "Dockerfile"


def dockerfile_stages() -> dict[str, list[str]]:
    stages: dict[str, list[str]] = {}
    current = None
    for line in DOCKERFILE.read_text().splitlines():
        words = line.split()
        if words[:1] == ["FROM"]:
            current = words[-1] if "AS" in words else words[1]
            stages[current] = []
        elif current and line.strip() and not line.lstrip().startswith("#"):
            stages[current].append(line.strip())
    return stages


@pytest.mark.parametrize("target", ["trainer", "predictor", "monitor", "trigger", "mlflow"])
def test_every_image_target_is_non_root_with_a_healthcheck_decision(target):
    stages = dockerfile_stages()
    assert target in stages
    chain, stage = [], target
    text = DOCKERFILE.read_text()
    while stage in stages:  # follow FROM <stage> up to the python base
        chain.append(stage)
        parent = next(line.split()[1] for line in text.splitlines() if line.endswith(f"AS {stage}"))
        stage = parent
    instructions = [line for name in chain for line in stages[name]]
    users = [line for line in instructions if line.startswith("USER ")]
    assert users and all(not u.split()[1].startswith(("root", "0")) for u in users)
    assert any(line.startswith("HEALTHCHECK") for line in stages[target]), target


def test_dockerfile_installs_the_pinned_cpu_stack():
    text = DOCKERFILE.read_text()
    assert "download.pytorch.org/whl/cpu" in text
    assert "-c constraints.txt" in text
    assert "--no-deps -c constraints.txt alibi-detect==0.13.0" in text
    assert "ARG UID=10001" in text
    ignore = (REPO / "images" / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :][:1] == ["*"]  # deny by default, then allow-list


def test_default_base_image_matches_the_trainer_image_name():
    from driftloop.settings import Settings

    makefile = (REPO / "mk" / "kubernetes.mk").read_text()
    assert "trainer:driftloop " in makefile
    assert Settings.model_fields["base_image"].default == "ghcr.io/driftloop/driftloop:0.1.0"


def test_container_args_parse_with_the_driftloop_cli(rendered):
    """The args the manifests pass are accepted by the commands the images run."""
    import click

    from driftloop.cli import cli

    docs = rendered["kind"]
    runtime = next(d for d in docs if d["kind"] == "ClusterServingRuntime")
    isvc = next(d for d in docs if d["kind"] == "InferenceService")
    trigger = next(
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "driftloop-trigger"
    )
    console = deployment(docs, "driftloop-console")["spec"]["template"]["spec"]["containers"][0]
    # the driftloop image has no entry point of its own: the console names the command
    assert console["command"] == ["driftloop"] and console["args"][0] == "ui"
    calls = {
        "serve": [
            a.replace("{{.Name}}", isvc["metadata"]["name"])
            for a in runtime["spec"]["containers"][0]["args"]
        ],
        "monitor": isvc["spec"]["predictor"]["containers"][0]["args"],
        "trigger": trigger["spec"]["template"]["spec"]["containers"][0]["args"],
        "ui": console["args"][1:],
    }
    for command_name, args in calls.items():
        command = cli.get_command(click.Context(cli), command_name)
        if command is None:
            pytest.skip(f"driftloop {command_name} is not built yet")
        context = command.make_context(command_name, list(args))  # raises on unknown options
        if command_name == "serve":
            assert context.params["http_port"] == 8080 and context.params["grpc_port"] == 8081
        else:
            assert context.params["host"] == "0.0.0.0"


def deployment(docs: list[dict], name: str) -> dict:
    return next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name)


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def console_wiring_problems(docs: list[dict]) -> list[str]:
    """What keeps the console from sitting behind the predictor's token and reaching the loop."""
    problems = []
    console = deployment(docs, "driftloop-console")["spec"]["template"]["spec"]["containers"][0]
    env = env_of(console)
    args = dict(a.removeprefix("--").split("=", 1) for a in console["args"][1:])
    isvcs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "InferenceService"}
    namespace = deployment(docs, "driftloop-console")["metadata"]["namespace"]
    served = {f"http://{n}-predictor.{namespace}.svc.cluster.local" for n in isvcs}
    if args.get("predictor-url") not in served:
        problems.append(f"--predictor-url {args.get('predictor-url')} is no predictor Service")
    predictor_env = env_of(next(iter(isvcs.values()))["spec"]["predictor"]["model"])
    token = (env.get("DRIFTLOOP_API_TOKEN") or {}).get("valueFrom")
    if token is None or token != predictor_env["DRIFTLOOP_API_TOKEN"]["valueFrom"]:
        problems.append(f"DRIFTLOOP_API_TOKEN is not the predictor's Secret: {token}")
    if args.get("host") != "0.0.0.0":
        problems.append(f"--host {args.get('host')}: the Service cannot reach it")
    secret_names = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    for name, variable in env.items():
        ref = (variable.get("valueFrom") or {}).get("secretKeyRef")
        if ref and secret_names and ref["name"] not in secret_names:
            problems.append(f"{name}: no Secret {ref['name']}")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_console_is_behind_the_predictors_token(rendered, overlay):
    assert console_wiring_problems(rendered[overlay]) == []
    docs = copy.deepcopy(rendered[overlay])
    console = deployment(docs, "driftloop-console")["spec"]["template"]["spec"]["containers"][0]
    console["env"] = [e for e in console["env"] if e["name"] != "DRIFTLOOP_API_TOKEN"]
    assert console_wiring_problems(docs) == [
        "DRIFTLOOP_API_TOKEN is not the predictor's Secret: None"
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_the_console_reach_what_it_reads(rendered, overlay):
    policies = {
        d["metadata"]["name"]: d["spec"] for d in rendered[overlay] if d["kind"] == "NetworkPolicy"
    }
    console = {"app.kubernetes.io/name": "driftloop-console"}
    egress = {
        (peer["podSelector"]["matchLabels"].get("app.kubernetes.io/name"), port["port"])
        for rule in policies["driftloop-console"]["egress"]
        for peer in rule["to"]
        for port in rule["ports"]
    }
    for target, port in [
        ("driftloop-predictor", 8080),
        ("driftloop-mlflow", 5000),
        ("driftloop-postgres", 5432),
        ("driftloop-trigger", 8095),
        ("prometheus", 9090),
    ]:
        assert (target, port) in egress
        if target.startswith("driftloop-") and target != "driftloop-predictor":
            # the far end admits the console too (the predictor admits any client on 8080)
            ingress = policies[target]["ingress"]
            assert any(
                selects(peer.get("podSelector", {}), console)
                and {"protocol": "TCP", "port": port} in rule["ports"]
                for rule in ingress
                for peer in rule.get("from", [])
            ), target
    assert policies["driftloop-console"]["ingress"] == [
        {"ports": [{"protocol": "TCP", "port": 8088}]}
    ]


@pytest.mark.parametrize("overlay", ["kind", "production"])
def test_predictor_batches_in_process_with_kserve_batcher_semantics(rendered, overlay):
    from driftloop.settings import Settings

    isvc = next(d for d in rendered[overlay] if d["kind"] == "InferenceService")
    predictor = isvc["spec"]["predictor"]
    # KServe's agent batcher (v1 only, merges requests before the predictor) stays off:
    # the predictor's own batcher keeps one request id, record and event per request
    assert "batcher" not in predictor
    env = {e["name"]: e.get("value") for e in predictor["model"]["env"]}
    settings = Settings(
        max_batch_size=env["DRIFTLOOP_MAX_BATCH_SIZE"],
        max_latency_ms=env["DRIFTLOOP_MAX_LATENCY_MS"],
    )
    assert settings.max_batch_size > 1 and settings.max_latency_ms > 0
