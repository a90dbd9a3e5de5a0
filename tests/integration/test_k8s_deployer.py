"""KubernetesDeployer against an API server on 127.0.0.1.

The server below speaks the real Kubernetes REST paths for InferenceServices
(GET, and PATCH with ``application/merge-patch+json``, RFC 7386 semantics,
``resourceVersion`` conflicts, ``generation`` bumps on spec changes) and plays
the KServe controller by moving ``status`` along over successive reads. The
deployer reaches it through a real kubeconfig file and the real ``kubernetes``
client: nothing in the client is mocked.
"""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from driftloop.deploy import READY, TIMEOUT, DeployError, get_deployer
from driftloop.deploy.kubernetes import (
    MODEL_URI_ENV,
    REVISION_ANNOTATION,
    KubernetesDeployer,
    load_api_client,
)

pytestmark = pytest.mark.integration

NAMESPACE = "driftloop-test"
TOKEN = "test-token-123"
PATH = f"/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices/"


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch, as the API server applies it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def inference_service(name: str) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "generation": 1,
            "resourceVersion": "100",
            "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"},
        },
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "driftloop-sklearn"},
                    "runtime": "driftloop-sklearn",
                    "env": [
                        {"name": "MLFLOW_TRACKING_URI", "value": "http://driftloop-mlflow:5000"},
                        {"name": MODEL_URI_ENV, "value": f"models:/{name}@champion"},
                    ],
                },
                "containers": [{"name": "drift-monitor", "image": "monitor:1"}],
            }
        },
        "status": {
            "observedGeneration": 1,
            "url": f"http://{name}-predictor.{NAMESPACE}.svc.cluster.local",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


class FakeKubeApi(ThreadingHTTPServer):
    """Holds InferenceServices; after a spec change the "controller" needs
    ``stale_reads`` reads to notice it and ``settle_reads`` more to be Ready."""

    daemon_threads = True

    def __init__(self, stale_reads=2, settle_reads=2, become_ready=True, status_code=None):
        super().__init__(("127.0.0.1", 0), Handler)
        self.objects = {"sentiment": inference_service("sentiment")}
        self.stale_reads = stale_reads
        self.settle_reads = settle_reads
        self.become_ready = become_ready
        self.forced_status = status_code
        self.conflicts_to_inject = 0
        self.requests: list[dict] = []
        self.reads_since_change = 0
        self.rolling = False
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def controller_step(self, obj: dict) -> None:
        """Advance the status of ``obj`` by one read, like a reconciling controller."""
        generation = obj["metadata"]["generation"]
        status = obj["status"]
        if not self.rolling:
            return
        self.reads_since_change += 1
        if self.reads_since_change <= self.stale_reads:
            return  # old generation still reported Ready: the trap a naive poller falls into
        status["observedGeneration"] = generation
        if self.become_ready and self.reads_since_change > self.stale_reads + self.settle_reads:
            status["conditions"] = [{"type": "Ready", "status": "True"}]
            self.rolling = False
        else:
            status["conditions"] = [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "RevisionMissing",
                    "message": "new pods starting",
                }
            ]


class Handler(BaseHTTPRequestHandler):
    server: FakeKubeApi

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, reason: str, message: str) -> None:
        self._send(
            code,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": message,
                "reason": reason,
                "code": code,
            },
        )

    def _lookup(self):
        srv = self.server
        srv.requests.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers)}
        )
        if srv.forced_status:
            self._status(srv.forced_status, "Forbidden", "forbidden by test")
            return None
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._status(401, "Unauthorized", "Unauthorized")
            return None
        path = self.path.split("?")[0]
        if not path.startswith(PATH) or path[len(PATH) :] not in srv.objects:
            self._status(404, "NotFound", f"inferenceservices.serving.kserve.io {path!r} not found")
            return None
        return path[len(PATH) :]

    def do_GET(self):  # noqa: N802 - http.server API
        name = self._lookup()
        if name is None:
            return
        with self.server.lock:
            obj = self.server.objects[name]
            self.server.controller_step(obj)
            self._send(200, obj)

    def do_PATCH(self):  # noqa: N802 - http.server API
        name = self._lookup()
        if name is None:
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests[-1]["body"] = body
        if self.headers.get("Content-Type") != "application/merge-patch+json":
            self._status(415, "UnsupportedMediaType", "merge patch expected")
            return
        srv = self.server
        with srv.lock:
            obj = srv.objects[name]
            if srv.conflicts_to_inject:
                srv.conflicts_to_inject -= 1
                obj["metadata"]["resourceVersion"] = str(
                    int(obj["metadata"]["resourceVersion"]) + 1
                )
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != obj["metadata"]["resourceVersion"]:
                self._status(409, "Conflict", "the object has been modified")
                return
            patched = merge_patch(obj, body)
            if patched["spec"] != obj["spec"]:
                patched["metadata"]["generation"] += 1
                srv.reads_since_change = 0
                srv.rolling = True
            patched["metadata"]["resourceVersion"] = str(
                int(obj["metadata"]["resourceVersion"]) + 1
            )
            srv.objects[name] = patched
            self._send(200, patched)


@pytest.fixture
def kube_api():
    servers = []

    def start(**options) -> FakeKubeApi:
        server = FakeKubeApi(**options)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def kubeconfig(tmp_path, monkeypatch):
    """Write a real kubeconfig for ``server`` and point KUBECONFIG at it."""

    def write(server: FakeKubeApi):
        path = tmp_path / "kubeconfig"
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "test", "cluster": {"server": server.url}}],
                    "users": [{"name": "tester", "user": {"token": TOKEN}}],
                    "contexts": [
                        {
                            "name": "test",
                            "context": {
                                "cluster": "test",
                                "user": "tester",
                                "namespace": NAMESPACE,
                            },
                        }
                    ],
                    "current-context": "test",
                }
            )
        )
        monkeypatch.setenv("KUBECONFIG", str(path))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        return path

    return write


def deployer(**options) -> KubernetesDeployer:
    options.setdefault("poll_interval_s", 0.02)
    options.setdefault("timeout_s", 10)
    return KubernetesDeployer(load_api_client(), NAMESPACE, **options)


def test_rollout_patches_model_uri_and_waits_for_the_new_generation(kube_api, kubeconfig):
    api = kube_api(stale_reads=2, settle_reads=3)
    kubeconfig(api)

    result = deployer().roll_out("sentiment", "7")

    assert result.status == READY and result.ready
    assert result.model_uri == "models:/sentiment/7"
    assert result.url == f"http://sentiment-predictor.{NAMESPACE}.svc.cluster.local"
    patches = [r for r in api.requests if r["method"] == "PATCH"]
    assert len(patches) == 1
    assert patches[0]["headers"]["Content-Type"] == "application/merge-patch+json"
    assert patches[0]["body"]["metadata"]["resourceVersion"] == "100"
    stored = api.objects["sentiment"]
    env = {e["name"]: e["value"] for e in stored["spec"]["predictor"]["model"]["env"]}
    assert env == {
        "MLFLOW_TRACKING_URI": "http://driftloop-mlflow:5000",
        MODEL_URI_ENV: "models:/sentiment/7",
    }
    assert stored["metadata"]["annotations"][REVISION_ANNOTATION] == result.revision
    assert stored["spec"]["predictor"]["annotations"][REVISION_ANNOTATION] == result.revision
    assert stored["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    # the sidecar survives the patch untouched
    assert stored["spec"]["predictor"]["containers"] == [
        {"name": "drift-monitor", "image": "monitor:1"}
    ]
    # it did not stop at the stale "Ready" of the previous generation
    reads_after_patch = [
        r for r in api.requests[api.requests.index(patches[0]) :] if r["method"] == "GET"
    ]
    assert len(reads_after_patch) >= 2 + 3 + 1
    assert stored["status"]["observedGeneration"] == stored["metadata"]["generation"] == 2


def test_same_version_again_still_forces_a_new_revision(kube_api, kubeconfig):
    api = kube_api(stale_reads=0, settle_reads=0)
    kubeconfig(api)
    first = deployer().roll_out("sentiment", "3")
    second = deployer().roll_out("sentiment", "3")
    assert first.ready and second.ready
    assert first.revision != second.revision
    assert api.objects["sentiment"]["metadata"]["generation"] == 3


def test_explicit_model_uri_is_served_verbatim(kube_api, kubeconfig):
    api = kube_api(stale_reads=0, settle_reads=0)
    kubeconfig(api)
    result = deployer().roll_out("sentiment", "5", model_uri="models:/sentiment@champion")
    assert result.ready
    env = api.objects["sentiment"]["spec"]["predictor"]["model"]["env"]
    assert {"name": MODEL_URI_ENV, "value": "models:/sentiment@champion"} in env
    assert api.objects["sentiment"]["metadata"]["annotations"]["driftloop.io/model-version"] == "5"


def test_write_conflict_is_retried_with_a_fresh_read(kube_api, kubeconfig):
    api = kube_api(stale_reads=0, settle_reads=0)
    api.conflicts_to_inject = 1
    kubeconfig(api)
    result = deployer().roll_out("sentiment", "2")
    assert result.ready
    assert [r["method"] for r in api.requests].count("PATCH") == 2


def test_rollout_that_never_becomes_ready_times_out_with_the_reason(kube_api, kubeconfig):
    api = kube_api(stale_reads=0, become_ready=False)
    kubeconfig(api)
    result = deployer(timeout_s=0.5).roll_out("sentiment", "9")
    assert result.status == TIMEOUT and not result.ready
    assert "RevisionMissing" in result.message and "new pods starting" in result.message


def test_missing_inference_service_is_a_clear_error(kube_api, kubeconfig):
    kubeconfig(kube_api())
    with pytest.raises(DeployError, match=f"InferenceService {NAMESPACE}/fraud not found"):
        deployer().roll_out("fraud", "1")


def test_forbidden_is_a_clear_error(kube_api, kubeconfig):
    kubeconfig(kube_api(status_code=403))
    with pytest.raises(DeployError, match="not allowed to get InferenceService"):
        deployer().roll_out("sentiment", "1")


def test_get_deployer_and_cli_honour_kubeconfig(kube_api, kubeconfig, home, monkeypatch):
    from click.testing import CliRunner

    from driftloop.cli import cli
    from driftloop.settings import Settings, get_settings

    api = kube_api(stale_reads=0, settle_reads=0)
    kubeconfig(api)
    chosen = get_deployer(Settings(home=home, target="kubernetes", namespace=NAMESPACE))
    assert isinstance(chosen, KubernetesDeployer)
    assert chosen.api.api_client.configuration.host == api.url

    monkeypatch.setenv("DRIFTLOOP_TARGET", "kubernetes")
    monkeypatch.setenv("DRIFTLOOP_NAMESPACE", NAMESPACE)
    get_settings.cache_clear()
    outcome = CliRunner().invoke(cli, ["deploy", "sentiment", "--version", "4", "--json"])
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.output)
    assert report["status"] == READY and report["model_uri"] == "models:/sentiment/4"

    outcome = CliRunner().invoke(cli, ["deploy", "nosuchmodel", "--version", "4"])
    assert outcome.exit_code == 2
    assert "InferenceService driftloop-test/nosuchmodel not found" in outcome.output
