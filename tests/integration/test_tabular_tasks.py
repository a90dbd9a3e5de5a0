"""Clustering, anomaly detection and forecasting end to end on shipped tables, each through
the pipeline's own step functions in process (the kfp.local run of ``driftloop train`` takes
minutes per table on 2 shared cores; its steps are these functions):

prepare -> id-hash split -> train candidates (MLflow, sqlite) -> evaluate on test ->
register with lineage tags -> gate (the blueprint's metric and direction) -> promote ->
drift reference on val+test -> the real predictor (``driftloop serve``, KServe ModelServer
subprocess) with its payload logger pointed at the real monitor service -> v1, v2 JSON and
gRPC answers equal to the model's own -> an in-distribution window and a shifted one (the
drift metrics of the task's own detectors) -> feedback through the predictor's API, counted
and scored by the monitor.
"""

from __future__ import annotations

import json
import math
import signal
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pandas as pd
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from driftloop.blueprints import BlueprintSpec, get_blueprint
from driftloop.settings import Settings
from tests.integration.conftest_monitor import scrape, serving, value, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW = 40  # instances per monitor window
REQUESTS = 4  # requests per window


@dataclass
class Case:
    dataset: str
    options: dict
    candidates: list[str]
    detector: str  # the detector that must flag the shifted window
    pick: Any  # held-out frame -> the rows of the in-distribution window (positions)
    shift: Any  # (blueprint, model, rows frame) -> shifted model-input records
    truth: Any  # (blueprint, model, held-out frame, answer outputs) -> feedback values


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def _cycle(held: pd.DataFrame) -> list[int]:
    return [i % len(held) for i in range(WINDOW)]


def _a_few_anomalies(held: pd.DataFrame) -> list[int]:
    """3 labelled anomalies among 37 normal rows: live ROC-AUC has both kinds to rank,
    and the window stays close to the table's 5 %."""
    anomalies = np.flatnonzero(held["anomaly"].to_numpy() == 1)[:3]
    normal = np.flatnonzero(held["anomaly"].to_numpy() == 0)[: WINDOW - len(anomalies)]
    return np.random.default_rng(0).permutation(np.concatenate([anomalies, normal])).tolist()


def _one_cluster(blueprint, model, rows: pd.DataFrame) -> list[dict]:
    """Rows of a single cluster: the cluster mix moves, and the features with it."""
    features = blueprint.features(rows)
    clusters = model.predict(features)
    common = pd.Series(clusters).value_counts().index[0]
    picked = features[clusters == common]
    return _records(picked.sample(n=WINDOW, replace=True, random_state=0))


def _larger(blueprint, model, rows: pd.DataFrame) -> list[dict]:
    """Every measurement 60 % larger: the scores move."""
    features = blueprint.features(rows).head(WINDOW) * 1.6
    return _records(features)


def _warmer(blueprint, model, rows: pd.DataFrame) -> list[dict]:
    """Every history 15 degrees warmer."""
    shifted = _records(blueprint.features(rows).head(WINDOW))
    for row in shifted:
        row["temperature"] = [v + 15 for v in row["temperature"]]
    return shifted


CASES = {
    "clustering": Case(
        "penguins",
        {"task": "clustering"},
        ["kmeans"],
        "chi2-prediction",
        _cycle,
        _one_cluster,
        lambda bp, model, held, outputs: [o["cluster"] for o in outputs],
    ),
    "anomaly": Case(
        "breast_cancer_anomaly",
        {"task": "anomaly"},
        ["isolation_forest"],
        "ks-prediction",
        _a_few_anomalies,
        _larger,
        lambda bp, model, held, outputs: [bool(v) for v in held["anomaly"]],
    ),
    "timeseries": Case(
        "nottingham_temperature",
        {},
        ["seasonal_naive", "gradient_boosting"],
        "ks-history",
        _cycle,
        _warmer,
        lambda bp, model, held, outputs: [[float(v) for v in row] for row in bp.targets(held)],
    ),
}


# --- the training pipeline's steps ------------------------------------------------------
def train_register_gate(name: str, case: Case, settings: Settings, tmp_path: Path):
    from driftloop.datasets.files import write_frame
    from driftloop.lineage import TAG_SPLIT_SCHEME, version_tags
    from driftloop.monitor.reference import MIN_ROWS, fit_reference
    from driftloop.registry import ModelRegistry
    from driftloop.training.candidates import train_candidates
    from driftloop.training.evaluate import evaluate
    from driftloop.training.gate import gate
    from driftloop.training.splits import split_frame

    spec = BlueprintSpec("tabular", case.options)
    blueprint, dataset, _ = get_blueprint(spec).prepare(case.dataset, None)
    frame = blueprint.load(dataset, None)
    splits = split_frame(frame, seed=7, label_column=blueprint.class_column, min_held_out=MIN_ROWS)
    fingerprints = dict(splits.fingerprints) | {"scheme": str(splits.scheme)}
    result = train_candidates(
        blueprint,
        splits.train,
        splits.val,
        seed=7,
        experiment="tabular-tasks",
        settings=settings,
        candidates=case.candidates,
        fingerprints=fingerprints,
    )
    metric = blueprint.metric
    test_metrics = evaluate(blueprint, result.model, splits.test)
    registry = ModelRegistry(settings.resolved_tracking_uri)
    tags = version_tags(
        dataset_fingerprint="shipped",
        split_fingerprints=splits.fingerprints,
        metric_name=metric.name,
        metric_value=test_metrics[metric.name],
        blueprint=blueprint.spec,
        flavour=blueprint.flavour,
    ) | {TAG_SPLIT_SCHEME: str(splits.scheme)}
    version = registry.register(name, result.run_id, tags=tags)
    paths = {part: tmp_path / f"{part}.parquet" for part in ("val", "test")}
    for part, path in paths.items():
        write_frame(getattr(splits, part), path)
    decision = gate(name, version, blueprint, paths["test"], splits.fingerprints["test"], settings)
    assert decision.outcome == "promote", decision.reason
    registry.promote(name, version)
    fit_reference(name, version, [paths["val"], paths["test"]], settings)
    held_out = pd.concat([splits.val, splits.test], ignore_index=True)
    return blueprint, result.model, test_metrics, version, held_out


# --- wire helpers ------------------------------------------------------------------------
def grpc_input(tensor: dict) -> pb.ModelInferRequest.InferInputTensor:
    flat = np.array(tensor["data"], dtype=object).reshape(-1).tolist()
    field, values = {
        "FP32": ("fp32_contents", flat),
        "FP64": ("fp64_contents", flat),
        "BYTES": ("bytes_contents", [str(v).encode() for v in flat]),
    }[tensor["datatype"]]
    return pb.ModelInferRequest.InferInputTensor(
        name=tensor["name"],
        datatype=tensor["datatype"],
        shape=tensor["shape"],
        contents=pb.InferTensorContents(**{field: values}),
    )


def grpc_outputs(response: pb.ModelInferResponse) -> list[dict]:
    """Per-instance outputs of a typed-contents answer, as the v1 answer shapes them."""
    columns = {}
    for output in response.outputs:
        contents = output.contents
        values = {
            "INT64": list(contents.int64_contents),
            "FP64": list(contents.fp64_contents),
            "BOOL": list(contents.bool_contents),
            "BYTES": [v.decode() for v in contents.bytes_contents],
        }[output.datatype]
        columns[output.name] = np.array(values, dtype=object).reshape(list(output.shape)).tolist()
    n = len(next(iter(columns.values())))
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


def v2_instances(outputs: list[dict], n: int) -> list[dict]:
    """Per-instance outputs of a v2 JSON answer, as the v1 answer shapes them."""
    arrays = {o["name"]: np.array(o["data"], dtype=object).reshape(o["shape"]) for o in outputs}
    return [
        {name: array[i].tolist() if array.ndim > 1 else array[i] for name, array in arrays.items()}
        for i in range(n)
    ]


def assert_same(outputs: list[dict], expected: list[dict]) -> None:
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected, strict=True):
        assert set(got) == set(want), (got, want)
        for key, wanted in want.items():
            numbers = isinstance(wanted, list) and wanted and isinstance(wanted[0], float)
            if isinstance(wanted, float) or numbers:
                np.testing.assert_allclose(got[key], wanted, rtol=1e-5, atol=1e-6)
            else:
                assert got[key] == wanted, (key, got[key], wanted)


# --- the stack: three registered models, their monitors and predictors ----------------------
@dataclass
class Served:
    blueprint: Any
    model: Any
    test_metrics: dict
    version: str
    held_out: pd.DataFrame
    monitor: Any  # MonitorService
    monitor_url: str
    predictor: Any  # RunningPredictor


def _start_predictor(name: str, home: Path, env: dict):
    from tests.integration.conftest_serving import running_predictor

    manager = running_predictor(name, home, env=env, ready_timeout=180)
    return manager, manager.__enter__()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Train, register, gate and fit the references of every task in one registry (MLflow's
    and the monitor's imports and database set-up paid once); each task's monitor and
    predictor start while the next task trains (a predictor start is ~30 s on 2 busy
    cores). A task whose training or predictor fails is recorded and fails its own test."""
    from concurrent.futures import ThreadPoolExecutor

    from driftloop.monitor.service import MonitorService
    from driftloop.registry import scoped_tracking_uri

    home = tmp_path_factory.mktemp("tabular-tasks")
    settings = Settings(
        home=home,
        monitor_window=WINDOW,
        reload_interval_s=0.3,
        monitor_feedback_poll_s=0.3,
        score_min_samples=5,
    )
    env = {
        "DRIFTLOOP_HOME": str(home),
        "MLFLOW_TRACKING_URI": settings.resolved_tracking_uri,
        "DRIFTLOOP_STORE_URL": settings.resolved_store_url,
        "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
    }
    trained, failed, monitors, starts = {}, {}, {}, {}
    with ExitStack() as stack, ThreadPoolExecutor(len(CASES)) as pool:
        for task, case in CASES.items():
            name = f"tabular-{task}"
            try:
                folder = home / task
                folder.mkdir()
                with scoped_tracking_uri(settings.resolved_tracking_uri):
                    trained[task] = train_register_gate(name, case, settings, folder)
            except Exception as exc:  # noqa: BLE001 - reported by that task's own test
                failed[task] = exc
                continue
            # this task's monitor and predictor start while the next task trains
            service = MonitorService(name, settings)
            monitors[task] = (service, stack.enter_context(serving(service)))
            logger = {"DRIFTLOOP_LOGGER_URL": f"{monitors[task][1]}/events"}
            starts[task] = pool.submit(_start_predictor, name, home, env | logger)
        served = {}
        for task, future in starts.items():
            try:
                manager, predictor = future.result()
            except Exception as exc:  # noqa: BLE001 - a predictor that never got ready
                failed[task] = exc
                continue
            stack.push(manager.__exit__)
            service, url = monitors[task]
            served[task] = Served(*trained[task], service, url, predictor)
        # runs first on exit: every predictor shuts down at once, not one after another
        stack.callback(_signal_all, [s.predictor for s in served.values()])
        yield served, failed


def _signal_all(predictors) -> None:
    for predictor in predictors:
        if predictor.process.poll() is None:
            predictor.process.send_signal(signal.SIGTERM)


# --- the test ------------------------------------------------------------------------------
@pytest.mark.parametrize("task", list(CASES))
def test_a_task_end_to_end(task, stack):
    served_tasks, failed = stack
    if task in failed:
        raise failed[task]
    served, case, name = served_tasks[task], CASES[task], f"tabular-{task}"
    blueprint, model, version = served.blueprint, served.model, served.version
    service, url, predictor = served.monitor, served.monitor_url, served.predictor
    metric, test_metrics, held_out = blueprint.metric, served.test_metrics, served.held_out
    assert metric.name in test_metrics and math.isfinite(test_metrics[metric.name])
    codec = blueprint.codec(model)

    def expected(records: list[dict]) -> list[dict]:
        return codec.predict(codec.decode_v1(records)).instances

    rows = _records(blueprint.features(held_out))
    picked = case.pick(held_out)
    in_domain = [rows[i] for i in picked]
    complete = [r for r in rows if all(v is not None for v in r.values())]
    shifted = case.shift(blueprint, model, held_out)
    wait_for(lambda: service.engine.bundle is not None, 90, "the drift reference to load")
    step = WINDOW // REQUESTS
    with httpx.Client(base_url=predictor.url, timeout=30) as client:
        # v1: the in-distribution window, answers equal to the model's own
        request_ids = []
        for start in range(0, WINDOW, step):
            batch = in_domain[start : start + step]
            response = client.post(f"/v1/models/{name}:predict", json={"instances": batch})
            assert response.status_code == 200, response.text
            assert_same(response.json()["predictions"], expected(batch))
            request_ids.append((response.headers["x-request-id"], start))
        wait_for(lambda: len(service.engine.reports) >= 1, 60, "the in-distribution window")
        # v2 JSON: the shifted window
        for start in range(0, WINDOW, step):
            batch = shifted[start : start + step]
            body = {"inputs": codec.v2_inputs(codec.decode_v1(batch).summaries)}
            response = client.post(f"/v2/models/{name}/infer", json=body)
            assert response.status_code == 200, response.text
            assert_same(v2_instances(response.json()["outputs"], len(batch)), expected(batch))
        wait_for(lambda: len(service.engine.reports) >= 2, 60, "the shifted window")
        # gRPC typed contents
        with grpc.insecure_channel(f"127.0.0.1:{predictor.grpc_port}") as channel:
            batch = complete[:3]  # typed contents have no null
            inputs = codec.v2_inputs(codec.decode_v1(batch).summaries)
            request = pb.ModelInferRequest(model_name=name, inputs=[grpc_input(t) for t in inputs])
            response = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
            assert response.model_version == version
            assert_same(grpc_outputs(response), expected(batch))
        # feedback on the in-distribution requests, through the predictor's API
        held = held_out.iloc[picked].reset_index(drop=True)
        truths = case.truth(blueprint, model, held, expected(in_domain))
        for request_id, start in request_ids:
            answer = client.post(
                f"/v1/feedback/{request_id}", json={"value": truths[start : start + step]}
            )
            assert answer.status_code == 200, answer.text
    metrics = wait_for(
        lambda: (
            (m := scrape(url))
            and value(m, "driftloop_feedback_since_champion", version=version) == len(request_ids)
            # the live score is set after the count: wait for it too (clustering has none)
            and (
                task == "clustering"
                or not math.isnan(value(m, "driftloop_live_score", version=version) or math.nan)
            )
            and m
        ),
        30,
        "feedback to be counted",
    )
    first, last = service.engine.reports[0], service.engine.reports[1]
    flagged = {r.name: r.detected for r in last.results}
    assert flagged[case.detector], [(r.name, r.p_value) for r in last.results]
    assert not {r.name: r.detected for r in first.results}[case.detector]
    detected = {
        labels["detector"]: v
        for labels, v in metrics["driftloop_drift_detected"]
        if labels["version"] == version
    }
    assert detected[case.detector] == 1
    assert value(metrics, "driftloop_champion_test_score", version=version) == pytest.approx(
        test_metrics[metric.name], rel=1e-6
    )
    live = value(metrics, "driftloop_live_score", version=version)
    if task == "timeseries":  # the values that came: live MASE from the served forecasts
        want = blueprint.feedback.live_score(expected(in_domain), truths)
        assert live == pytest.approx(want, rel=1e-6) and live < 1.5
    elif task == "anomaly":  # was it an anomaly: live ROC-AUC of the served scores
        assert live is not None and 0 <= live <= 1
    else:  # the cluster a user names: live agreement, no live silhouette
        assert live is None or math.isnan(live)
        assert value(metrics, "driftloop_live_accuracy_ratio", version=version) == 1.0
