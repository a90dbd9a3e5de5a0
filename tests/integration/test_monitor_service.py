"""The monitor as a real HTTP service on loopback, fed real CloudEvents.

The second test closes the loop for real: a registered model with a fitted
drift reference, the real predictor (``driftloop serve``) with its payload
logger pointed at the monitor, feedback through the predictor's API, and a
promotion that makes the monitor switch to the new champion's reference.
"""

from __future__ import annotations

import httpx
import pytest

from driftloop.monitor.service import MonitorService
from driftloop.settings import Settings
from tests.integration.conftest_monitor import scrape, serving, value, wait_for
from tests.unit.conftest_monitor import (
    ce_headers,
    corpus,
    small_text_model,
    tweets,
    v1_request,
    v1_response,
    v2_request,
    v2_response,
)

pytestmark = pytest.mark.integration
MODEL = "sentiment"


def register(tracking_uri: str, model, *, test_score: float) -> str:
    import mlflow
    import mlflow.sklearn

    from driftloop.registry import ModelRegistry

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("monitor-tests")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            model,
            name="model",
            pip_requirements=["scikit-learn"],
            # as training logs it (skops refuses driftloop's own transformers)
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        )
    registry = ModelRegistry(tracking_uri)
    version = registry.register(
        MODEL,
        run.info.run_id,
        tags={
            "driftloop.blueprint": "sentiment",
            "driftloop.metric.name": "macro_f1",
            "driftloop.metric.value": test_score,
        },
    )
    return version


@pytest.mark.slow  # MLflow import and a fresh registry database: ~15 s on 2 cores
def test_counts_pairs_and_rejects_events_without_a_reference(home):
    from tests.integration.conftest_serving import register_text_model

    settings = Settings(home=home, reload_interval_s=0.2, monitor_pending_ttl_s=2.0)
    version = register_text_model(settings.resolved_tracking_uri, MODEL)
    service = MonitorService(MODEL, settings)
    with serving(service) as url, httpx.Client(base_url=url, timeout=10) as client:
        wait_for(lambda: service.watched is not None, 30, "the registry poll")
        # response first, then request; v1 and v2; on both routes
        assert (
            client.post(
                "/",
                content=v2_response(["positive", "negative"]),
                headers=ce_headers("response", "a"),
            ).status_code
            == 202
        )
        paired = client.post(
            "/events", content=v2_request(["great", "awful"]), headers=ce_headers("request", "a")
        )
        assert (
            paired.status_code == 202 and paired.json()["paired"] and paired.json()["samples"] == 2
        )
        client.post("/events", content=v1_request(["fine"]), headers=ce_headers("request", "b"))
        client.post(
            "/events", content=v1_response(["positive"]), headers=ce_headers("response", "b")
        )
        duplicate = client.post(
            "/events", content=v1_response(["positive"]), headers=ce_headers("response", "b")
        )
        assert duplicate.status_code == 202  # "b" was paired and forgotten: a new half
        bad = client.post(
            "/events", content=b"{}", headers=ce_headers("request", "c") | {"ce-type": "other"}
        )
        assert bad.status_code == 400 and "ce-type" in bad.json()["detail"]
        mismatch_req = v2_request(["one", "two"])
        client.post("/events", content=mismatch_req, headers=ce_headers("request", "d"))
        broken = client.post(
            "/events", content=v2_response(["positive"]), headers=ce_headers("response", "d")
        )
        assert (
            broken.status_code == 400
            and "2 instances but response has 1" in broken.json()["detail"]
        )
        client.post("/events", content=v2_request(["lonely"]), headers=ce_headers("request", "e"))
        metrics = wait_for(
            lambda: (
                (m := scrape(url)) and value(m, "driftloop_events_total", type="unmatched") and m
            ),
            10,
            "pending halves to expire",
        )
        assert client.get("/healthz").json()["status"] == "ok"
        status = client.get("/status").json()
    assert (
        value(metrics, "driftloop_events_total", model=MODEL, version=version, type="request") == 4
    )
    assert value(metrics, "driftloop_events_total", type="response") == 4
    assert value(metrics, "driftloop_events_total", type="paired") == 2
    assert value(metrics, "driftloop_events_total", type="invalid") == 2
    assert value(metrics, "driftloop_events_total", type="unmatched") == 2  # "b" again, and "e"
    assert value(metrics, "driftloop_monitor_reference_loaded", model=MODEL, version=version) == 0
    assert value(metrics, "driftloop_monitor_window_size", model=MODEL) == settings.monitor_window
    assert "driftloop_drift_detected" not in metrics
    assert status["version"] == version and status["reference_loaded"] is False


@pytest.mark.slow
def test_closed_loop_with_the_real_predictor(home, tmp_path):
    from driftloop.lineage import TAG_DRIFT_REFERENCE
    from driftloop.monitor.reference import fit_reference
    from driftloop.registry import ModelRegistry
    from tests.integration.conftest_serving import running_predictor

    settings = Settings(
        home=home, monitor_window=50, reload_interval_s=0.3, monitor_feedback_poll_s=0.3
    )
    tracking_uri = settings.resolved_tracking_uri
    registry = ModelRegistry(tracking_uri)
    v1 = register(tracking_uri, small_text_model(n_train=1500), test_score=0.8)
    registry.promote(MODEL, v1)
    reference = tmp_path / "reference.parquet"
    corpus().iloc[2000:2600][["id", "text", "label"]].to_parquet(reference)
    uri = fit_reference(MODEL, v1, reference, settings)
    assert registry.get_version(MODEL, v1).tags[TAG_DRIFT_REFERENCE] == uri

    service = MonitorService(MODEL, settings)
    with serving(service) as url:
        wait_for(lambda: service.engine.bundle is not None, 90, "the drift reference to load")
        env = {"DRIFTLOOP_LOGGER_URL": f"{url}/events", "DRIFTLOOP_RELOAD_INTERVAL_S": "0.5"}
        with (
            running_predictor(MODEL, home, env=env) as predictor,
            httpx.Client(base_url=predictor.url, timeout=30) as client,
        ):
            request_ids = []
            in_domain = corpus().iloc[3000:3100]["text"].tolist()
            for start in range(0, 100, 10):
                texts = in_domain[start : start + 10]
                if start % 20:
                    response = client.post(f"/v1/models/{MODEL}:predict", json={"instances": texts})
                else:
                    response = client.post(
                        f"/v2/models/{MODEL}/infer",
                        json={
                            "inputs": [
                                {"name": "text", "datatype": "BYTES", "shape": [10], "data": texts}
                            ]
                        },
                    )
                assert response.status_code == 200, response.text
                request_ids.append(response.headers["x-request-id"])
            # the logger's sender threads may reorder events: let the in-domain windows finish
            wait_for(lambda: len(service.engine.reports) >= 2, 60, "two in-domain windows")
            shifted = tweets().iloc[:50]["text"].tolist()
            for start in range(0, 50, 10):
                response = client.post(
                    f"/v1/models/{MODEL}:predict", json={"instances": shifted[start : start + 10]}
                )
                assert response.status_code == 200, response.text
            wait_for(lambda: len(service.engine.reports) >= 3, 60, "the tweets window")
            metrics = scrape(url)
            assert value(metrics, "driftloop_events_total", type="paired") == 15
            assert value(metrics, "driftloop_monitor_windows_total", version=v1) == 3
            last = service.engine.reports[-1]
            assert last.drift, [(r.name, r.p_value) for r in last.results]
            flags = [
                v for labels, v in metrics["driftloop_drift_detected"] if labels["version"] == v1
            ]
            assert len(flags) == 3 and max(flags) == 1
            status = httpx.get(f"{url}/status", timeout=10).json()
            assert status["version"] == v1 and status["last_windows"][-1]["drift"] is True
            assert value(metrics, "driftloop_champion_test_score", version=v1) == pytest.approx(0.8)

            # feedback through the predictor's API lands in the store the monitor polls
            for request_id in request_ids[:4]:
                answer = client.post(f"/v1/feedback/{request_id}", json={"correct": False})
                assert answer.status_code == 200, answer.text
            metrics = wait_for(
                lambda: (
                    (m := scrape(url))
                    and value(m, "driftloop_feedback_since_champion", version=v1) == 4
                    and m
                ),
                30,
                "feedback to be counted",
            )
            assert value(metrics, "driftloop_live_accuracy_ratio", version=v1) == 0.0
            assert value(metrics, "driftloop_feedback_total", model=MODEL) == 4

        # a new champion brings its own reference
        v2 = register(tracking_uri, small_text_model(n_train=1200), test_score=0.75)
        fit_reference(MODEL, v2, reference, settings)
        registry.promote(MODEL, v2)
        wait_for(
            lambda: service.engine.version == v2 and service.engine.bundle is not None,
            60,
            "the switch",
        )
        metrics = scrape(url)
    assert value(metrics, "driftloop_monitor_reference_loaded", version=v2) == 1
    assert value(metrics, "driftloop_monitor_reference_loaded", version=v1) is None
    assert value(metrics, "driftloop_drift_detected", version=v1) is None
    assert value(metrics, "driftloop_champion_test_score", version=v2) == pytest.approx(0.75)
    assert value(metrics, "driftloop_feedback_since_champion", version=v2) == 0
