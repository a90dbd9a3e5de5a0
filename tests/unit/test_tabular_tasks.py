"""The tabular blueprint's clustering, anomaly and time-series tasks, in process.

Real fits on the shipped tables (small: penguins, 376 breast-cancer rows, 240
months of Nottingham temperatures); codecs, drift features and feedback of each
task checked against the fitted model itself.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from driftloop.blueprints import BlueprintSpec, get_blueprint
from driftloop.blueprints.codec import Batch, InputError, InputTensor
from driftloop.blueprints.feedback import FeedbackError
from driftloop.cli import cli
from driftloop.datasets.errors import DatasetValidationError


def prepared(dataset: str | None, data: str | None = None, **options):
    spec = BlueprintSpec("tabular", {k: v for k, v in options.items() if v is not None})
    return get_blueprint(spec).prepare(dataset, data)


def halves(frame: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = frame.sample(frac=0.7, random_state=seed)
    return train, frame.drop(train.index)


def records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))


# fits on whole shipped tables: seconds each on 2 shared cores
slow = pytest.mark.slow


# --- clustering ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clustering():
    blueprint, dataset, note = prepared("penguins", task="clustering")
    frame = blueprint.load(dataset, None)
    train, val = halves(frame)
    models = {n: m.fit(blueprint.features(train)) for n, m in blueprint.candidates(0).items()}
    return blueprint, note, frame, train, val, models


@slow
def test_clustering_leaves_the_answer_out_and_ranks_by_silhouette(clustering):
    blueprint, note, frame, _, val, models = clustering
    assert blueprint.target_column is None and blueprint.targets(frame) is None
    assert "species" not in frame.columns and "column 'species' left out" in note
    assert blueprint.metric.name == "silhouette" and blueprint.metric.greater_is_better
    assert set(models) == {"kmeans", "gaussian_mixture", "density"}
    for model in models.values():
        metrics = blueprint.score(model, val)
        assert -1 <= metrics["silhouette"] <= 1 and metrics["davies_bouldin"] > 0
    # the number of clusters is searched
    assert "model__n_clusters" in blueprint.tuning_space("kmeans")
    assert "model__n_components" in blueprint.tuning_space("gaussian_mixture")
    # penguins form real groups: k-means finds structure well above random labels
    assert blueprint.score(models["kmeans"], val)["silhouette"] > 0.3


@slow
def test_cluster_ids_on_the_wire_drift_and_feedback(clustering):
    blueprint, _, _, _, val, models = clustering
    model = models["kmeans"]
    codec = blueprint.codec(model)
    rows = records(blueprint.features(val).head(5))
    answer = codec.predict(codec.decode_v1(rows))
    expected = model.predict(blueprint.features(val).head(5)).tolist()
    assert [i["cluster"] for i in answer.instances] == expected
    assert [t[0] for t in answer.tensors] == ["cluster"] and answer.labels[0] == str(expected[0])
    featurizer = blueprint.drift_featurizer(model, val)
    assert featurizer.groups["prediction"] == "categorical"
    assert featurizer.categories("prediction") == {0: [0, 1, 2]}
    features = featurizer.transform(codec.decode_v1(rows).model_input, answer.instances)
    assert features["prediction"].ravel().tolist() == expected
    assert "chi2-prediction" in [d.name for d in featurizer.default_detectors()]
    feedback = blueprint.feedback
    assert feedback.parse(expected[0], answer.instances[:1]) == (expected[0], True)
    assert feedback.parse(9, answer.instances[:1]) == (9, False)
    with pytest.raises(FeedbackError, match="cluster id"):
        feedback.parse("Adelie", answer.instances[:1])
    assert math.isnan(feedback.live_score(answer.instances, expected))


@slow
def test_the_density_method_assigns_new_rows(clustering):
    blueprint, _, _, _, val, models = clustering
    model = models["density"]
    clusters = model.predict(blueprint.features(val))
    assert len(clusters) == len(val) and (clusters >= 0).all()  # no noise label for new rows


def test_clustering_refuses_a_target():
    with pytest.raises(ValueError, match="--target: a clustering has no target"):
        prepared("penguins", task="clustering", target="species")


# --- anomaly detection -------------------------------------------------------------------
@pytest.fixture(scope="module")
def anomaly():
    blueprint, dataset, note = prepared("breast_cancer_anomaly", task="anomaly")
    frame = blueprint.load(dataset, None)
    train, val = halves(frame)
    models = {n: m.fit(blueprint.features(train)) for n, m in blueprint.candidates(0).items()}
    return blueprint, frame, train, val, models


@slow
def test_anomaly_ranks_by_roc_auc_with_a_label(anomaly):
    blueprint, frame, train, val, models = anomaly
    assert blueprint.metric.name == "roc_auc" and blueprint.target_column == "anomaly"
    # split and folded like classes: a split without an anomaly has no ROC-AUC
    assert blueprint.class_column == "anomaly" and blueprint.targets(frame) is None
    assert "anomaly" not in blueprint.features(frame).columns  # the label is not a feature
    assert set(models) == {"isolation_forest", "local_outlier_factor", "one_class_svm"}
    for model in models.values():
        metrics = blueprint.score(model, val)
        assert metrics["roc_auc"] > 0.8, metrics  # malignant tumours stand out
        # the flag is raised on the contamination share of the training rows
        flagged = model.predict(blueprint.features(train)).mean()
        assert flagged == pytest.approx(0.05, abs=0.02)


@slow
def test_anomaly_score_and_flag_on_the_wire_and_feedback(anomaly):
    blueprint, _, _, val, models = anomaly
    model = models["isolation_forest"]
    codec = blueprint.codec(model)
    rows = blueprint.features(val).head(6)
    answer = codec.predict(codec.decode_v1(records(rows)))
    np.testing.assert_allclose(
        [i["score"] for i in answer.instances], model.decision_function(rows), rtol=1e-6
    )
    assert [i["anomaly"] for i in answer.instances] == model.predict(rows).astype(bool).tolist()
    assert {t[0] for t in answer.tensors} == {"score", "anomaly"}
    featurizer = blueprint.drift_featurizer(model, val)
    assert featurizer.groups["prediction"] == "continuous"
    feedback = blueprint.feedback
    flag = answer.instances[0]["anomaly"]
    assert feedback.parse(flag, answer.instances[:1]) == (flag, True)
    with pytest.raises(FeedbackError, match="true"):
        feedback.parse("yes", answer.instances[:1])
    truths = [bool(v) for v in val["anomaly"].head(6)] + [True, False]
    outputs = answer.instances + [{"score": 9.0}, {"score": -9.0}]
    assert 0 <= feedback.live_score(outputs, truths) <= 1


@slow
def test_anomaly_without_a_label_ranks_by_score_stability(tmp_path):
    path = tmp_path / "t.csv"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    frame.to_csv(path, index=False)
    blueprint, _, _ = prepared(None, str(path), task="anomaly", contamination=0.1)
    assert blueprint.target_column is None and blueprint.metric.name == "score_stability"
    assert blueprint.class_column is None
    frame = blueprint.load(None, str(path))
    train, val = halves(frame)
    model = blueprint.candidates(0)["isolation_forest"].fit(blueprint.features(train))
    metrics = blueprint.score(model, val)
    assert 0.5 < metrics["score_stability"] <= 1  # a ranking resampling mostly keeps
    assert metrics["flagged_share"] == pytest.approx(0.1, abs=0.08)
    assert math.isnan(blueprint.feedback.live_score([{"score": 1.0}, {"score": 0}], [True, False]))


def test_contamination_applies_to_anomaly_only():
    with pytest.raises(ValueError, match="--contamination applies to --task anomaly"):
        prepared("diabetes", contamination=0.1)


# --- time series -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def series():
    blueprint, dataset, note = prepared("nottingham_temperature")
    frame = blueprint.load(dataset, None)
    train, val = halves(frame)
    models = {
        n: m.fit(blueprint.features(train), blueprint.targets(train))
        for n, m in blueprint.candidates(0).items()
    }
    return blueprint, note, frame, train, val, models


@slow
def test_series_windows_and_mase(series):
    blueprint, note, frame, _, val, models = series
    assert blueprint.task == "timeseries" and "--time-column 'month' given" in note
    assert blueprint.options["freq"] == "MS" and blueprint.options["season"] == 12
    assert blueprint.options["horizon"] == 12 and blueprint.options["history"] == 24
    assert len(frame) == 240 - 24 - 12 + 1 and frame["id"].is_unique
    first = frame.iloc[0]
    raw = blueprint._raw("nottingham_temperature", None)
    assert first["month"] == raw["month"].iloc[23]
    assert first["lag_24"] == raw["temperature"].iloc[0]
    assert first["ahead_1"] == raw["temperature"].iloc[24]
    assert blueprint.metric.name == "mase" and not blueprint.metric.greater_is_better
    scores = {name: blueprint.score(model, val) for name, model in models.items()}
    naive = scores["seasonal_naive"]
    assert naive["mase"] == pytest.approx(naive["seasonal_naive_mase"])
    # boosting on lags and the calendar beats repeating last year on this series
    assert scores["gradient_boosting"]["mase"] < naive["mase"]


@slow
def test_a_forecast_on_the_wire(series):
    blueprint, _, _, _, val, models = series
    model = models["gradient_boosting"]
    codec = blueprint.codec(model)
    example = records(blueprint.input_example(val))
    assert set(example[0]) == {"month", "temperature"} and len(example[0]["temperature"]) == 24
    answer = codec.predict(codec.decode_v1(example))
    expected = model.predict(blueprint.features(val).head(2))
    np.testing.assert_allclose([i["forecast"] for i in answer.instances], expected)
    first = answer.instances[0]
    assert len(first["forecast"]) == 12 and len(first["times"]) == 12 and first["scale"] > 0
    last = pd.Timestamp(example[0]["month"])
    assert first["times"][0] == (last + pd.offsets.MonthBegin(1)).strftime("%Y-%m-%d")
    # v2: the values as one [n, k] tensor; a longer history is cut to the last 24
    longer = [[0.0] * 6 + row["temperature"] for row in example]
    tensors = {
        "month": InputTensor("month", "BYTES", np.array([r["month"] for r in example], object)),
        "temperature": InputTensor("temperature", "FP64", np.array(longer)),
    }
    v2 = codec.predict(codec.decode_v2(tensors))
    np.testing.assert_allclose([i["forecast"] for i in v2.instances], expected)
    with pytest.raises(InputError, match=r"temperature has 5 values; the model needs the last 24"):
        codec.decode_v1([{"month": "1930-01-01", "temperature": [1.0] * 5}])
    with pytest.raises(InputError, match="month must be the time of the last value"):
        codec.decode_v1([{"month": "soon", "temperature": [1.0] * 24}])
    # drift features: the history's level/last/spread and the forecast's mean
    featurizer = blueprint.drift_featurizer(model, val)
    batch = codec.decode_v1(example)
    features = featurizer.transform(batch.model_input, answer.instances)
    assert features["history"].shape == (2, 3) and features["prediction"].shape == (2, 1)


@slow
def test_forecast_feedback_gives_live_mase(series):
    blueprint, _, _, _, val, models = series
    codec = blueprint.codec(models["seasonal_naive"])
    row = val.iloc[:1]
    answer = codec.predict(Batch(blueprint.features(row), []))
    truth = [float(v) for v in blueprint.targets(row)[0]]
    feedback = blueprint.feedback
    assert feedback.parse(truth[:3] + [None], answer.instances) == (truth[:3] + [None], None)
    with pytest.raises(FeedbackError, match="numbers"):
        feedback.parse(["warm"], answer.instances)
    live = feedback.live_score(answer.instances, [truth])
    assert live == pytest.approx(blueprint.score(models["seasonal_naive"], row)["mase"])
    # retraining rows from the stored input and the values that came
    summaries = codec.decode_v1(records(blueprint.features(row))).summaries
    rows = blueprint.rows_from_feedback(summaries, [truth[:2]])
    assert rows["ahead_1"].iloc[0] == truth[0] and math.isnan(rows["ahead_12"].iloc[0])
    assert rows["lag_1"].iloc[0] == row["lag_1"].iloc[0]


def series_table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", periods=n, freq="D")
    level = 20 + np.cumsum(rng.normal(0, 1, n)) + 3 * np.sin(np.arange(n) * 2 * np.pi / 7)
    return pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "sales": level.round(3)})


def test_auto_picks_a_series_and_says_why(tmp_path):
    path = tmp_path / "sales.csv"
    series_table().to_csv(path, index=False)
    blueprint, _, note = prepared(None, str(path), target="sales")
    assert blueprint.task == "timeseries" and blueprint.options["time_column"] == "day"
    assert "column 'day' is a regular time index (frequency D)" in note
    assert "serially correlated" in note and blueprint.options["season"] == 7
    # the same columns with the values shuffled: no serial correlation, a regression
    table = series_table()
    table["sales"] = table["sales"].sample(frac=1, random_state=1).to_numpy()
    table.to_csv(path, index=False)
    blueprint, _, note = prepared(None, str(path), target="sales")
    assert blueprint.task == "regression", note


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (
            lambda f: f.assign(day=f["day"].where(f.index != 5, "5th of Jan")),
            ["--time-column 'day': 1 of 200 values do not parse", "(e.g. '5th of Jan')"],
        ),
        (
            lambda f: f.assign(day=f["day"].where(f.index != 9, f["day"][8])),
            ["--time-column 'day': 1 time(s) repeat (e.g. 2024-01-09)"],
        ),
        (
            lambda f: f.iloc[[0, 2, 1, *range(3, len(f))]].reset_index(drop=True),
            ["--time-column 'day': rows are not in time order (row 3, 2024-01-02", "sort"],
        ),
        (
            lambda f: f.drop(index=[4, 50]).reset_index(drop=True),
            ["--time-column 'day': the times are not evenly spaced"],
        ),
        (
            lambda f: f.assign(day=np.arange(len(f)) + 2000.5),
            ["--time-column 'day': holds numbers (e.g. 2000.5)"],
        ),
    ],
)
def test_a_bad_time_column_is_one_line(home, tmp_path, change, needles):
    path = tmp_path / "sales.csv"
    change(series_table()).to_csv(path, index=False)
    result = CliRunner().invoke(
        cli, ["train", "tabular", "--data", str(path), "--target", "sales", "--time-column", "day"]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("driftloop: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (home / "pipeline-runs").exists()


def test_time_column_errors_name_the_option(tmp_path):
    path = tmp_path / "sales.csv"
    series_table().to_csv(path, index=False)
    with pytest.raises(DatasetValidationError, match="--time-column: no column 'date'"):
        prepared(None, str(path), target="sales", time_column="date")
    with pytest.raises(DatasetValidationError, match="--horizon 190: the series has 200 values"):
        prepared(None, str(path), target="sales", time_column="day", horizon=190)
    with pytest.raises(ValueError, match="--horizon applies to --task timeseries"):
        prepared("diabetes", horizon=3)


def test_feedback_per_instance_and_retraining_rows():
    from driftloop.blueprints.tabular.tasks import strategy_for

    clusters = strategy_for("clustering", {}).feedback()
    outputs = [{"cluster": 0}, {"cluster": 1}]
    assert clusters.parse([0, 1], outputs) == ([0, 1], True)
    assert clusters.parse(0, outputs) == (0, False)
    with pytest.raises(FeedbackError, match="3 items for a request of 2 instances"):
        clusters.parse([0, 1, 1], outputs)
    anomalies = strategy_for("anomaly", {"target": "bad"})
    flags = [{"anomaly": True, "score": 1.0}, {"anomaly": False, "score": 0.0}]
    assert anomalies.feedback().parse([True, False], flags) == ([True, False], True)
    # retraining rows: the inputs themselves, with the label when the task has one
    inputs = [{"a": 1.0}, {"a": 2.0}]
    rows = anomalies.rows_from_feedback(inputs, [True, False])
    assert rows.to_dict("list") == {"a": [1.0, 2.0], "bad": [1, 0]}
    rows = strategy_for("clustering", {}).rows_from_feedback(inputs, [0, 1])
    assert rows.to_dict("list") == {"a": [1.0, 2.0]}


@slow
def test_forecast_feedback_merges_into_windows_per_instance(series, tmp_path):
    """A request of two histories, one list of values per history: two window rows."""
    from driftloop.datasets.files import write_frame
    from driftloop.store import PredictionStore
    from driftloop.store.core import PredictionRecord
    from driftloop.training.data_steps import merge_feedback

    blueprint, _, frame, _, val, models = series
    codec = blueprint.codec(models["seasonal_naive"])
    batch = codec.decode_v1(records(blueprint.features(val.head(2))))
    answer = codec.predict(batch)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = PredictionStore(url)
    store.insert_predictions(
        [PredictionRecord("req-1", "temps", "1", batch.summaries, answer.instances, None, None)]
    )
    truths = [[float(v) for v in row] for row in blueprint.targets(val.head(2))]
    store.add_feedback("req-1", value=truths)
    store.close()
    write_frame(frame, tmp_path / "base.parquet")
    summary = merge_feedback(
        tmp_path / "base.parquet", tmp_path / "m.parquet", blueprint.spec.to_text(), "temps", url
    )
    assert summary["feedback_rows"] == 2
    merged = pd.read_parquet(tmp_path / "m.parquet").set_index("id")
    for index in range(2):
        row = merged.loc[f"req-1:{index}"]
        assert row["ahead_12"] == truths[index][11]
        assert row["lag_1"] == val["lag_1"].iloc[index]
