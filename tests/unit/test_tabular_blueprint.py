"""The tabular blueprint: task inference, column kinds, candidates, feedback rows, metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.blueprints.tabular.blueprint import (
    TabularBlueprint,
    class_labels,
    infer_task,
)
from driftloop.blueprints.tabular.schema import (
    DateParts,
    TableSchema,
    coerce_column,
    infer_kind,
    infer_kinds,
)
from driftloop.datasets.errors import DatasetValidationError


def table(n: int = 160, seed: int = 0) -> pd.DataFrame:
    """Every column kind, with gaps: a classification (y) and a regression (amount) target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    colour = rng.choice(["red", "green", "blue"], n)
    flag = rng.random(n) < 0.4
    score = x + (colour == "red") + 0.5 * flag + rng.normal(0, 0.3, n)
    frame = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "x one": x,
            "colour": colour,
            "flag": flag,
            "answer": rng.choice(["yes", "no"], n),
            "day": (
                pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
            ).strftime("%Y-%m-%d"),
            "code": rng.integers(1, 5, n),
            "constant": 7,
            "empty": np.nan,
        }
    )
    frame.loc[rng.random(n) < 0.1, "x one"] = np.nan
    frame.loc[rng.random(n) < 0.1, "colour"] = None
    frame["y"] = np.where(score > np.median(score), "high", "low")
    frame["amount"] = score * 10 + 50
    return frame


# --- task inference ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "task", "reason"),
    [
        (["a", "b", "a"], "classification", "non-numeric values"),
        ([True, False, True], "classification", "non-numeric values"),
        ([0, 1, 1, 0], "classification", "2 distinct integers (<= 10)"),
        ([1.0, 2.0, np.nan, 3.0], "classification", "3 distinct integers"),
        (list(range(10)) * 2, "classification", "10 distinct integers"),
        (list(range(11)), "regression", "numeric with 11 distinct values"),
        ([0.5, 1.5, 2.25], "regression", "numeric with 3 distinct values"),
    ],
)
def test_infer_task_and_its_reason(values, task, reason):
    got, why = infer_task(pd.Series(values, name="t"))
    assert got == task
    assert reason in why and "'t'" in why


def test_resolve_fixes_auto_and_keeps_a_given_task():
    frame = table()
    resolved, why = TabularBlueprint(target="amount").resolve(frame)
    assert resolved.task == "regression" and why.startswith("task regression")
    given, why = TabularBlueprint(target="amount", task="classification").resolve(frame)
    assert given.task == "classification" and why == "task classification (given)"
    with pytest.raises(ValueError, match="not resolved yet"):
        _ = TabularBlueprint(target="amount").task


def test_options_are_checked():
    with pytest.raises(ValueError, match="--task must be one of"):
        TabularBlueprint(target="y", task="forecasting")
    with pytest.raises(ValueError, match="--target"):
        _ = TabularBlueprint(task="regression").target_column
    with pytest.raises(DatasetValidationError, match=r"--target: no column 'Y' \(did you mean"):
        TabularBlueprint(target="Y").resolve(table())
    with pytest.raises(DatasetValidationError, match="holds the row ids"):
        TabularBlueprint(target="id").resolve(table())


def test_class_labels_are_text_with_integers_unified():
    labels = class_labels(pd.Series([1.0, 2, np.nan, True, " a ", None], dtype=object))
    assert labels.iloc[[0, 1, 3, 4]].tolist() == ["1", "2", "True", "a"]
    assert labels.isna().tolist() == [False, False, True, False, False, True]


# --- column kinds and coercion -------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([1.5, None, 3.0], "numeric"),
        ([1, 2, 3], "numeric"),
        ([True, False, None], "boolean"),
        (["True", "false", None, "TRUE"], "boolean"),
        (["yes", "no", "yes"], "categorical"),
        (["2024-01-01", "2024-02-03", None], "datetime"),
        (["2024-01-01 10:00:00", "2024-02-03T11:30:00"], "datetime"),
        (["red", "green", None], "categorical"),
        (["u1", "u2", "u3"], "categorical"),
        (["1.5", "2", "?"] + ["3"] * 40, "numeric"),  # numbers with a stray marker
        ([None, None], "numeric"),  # all missing: nothing to learn, imputed away
        (["20240101", "20240102"], "categorical"),  # numbers typed as text on purpose
        (["07", "12", "12"], "categorical"),
    ],
)
def test_infer_kind(values, kind):
    assert infer_kind(pd.Series(values, dtype=object if None in values else None)) == kind


def test_infer_kind_of_typed_columns():
    assert infer_kind(pd.Series(pd.to_datetime(["2024-01-01", None]))) == "datetime"
    assert infer_kind(pd.Series([1, None], dtype="Int64")) == "numeric"
    assert infer_kind(pd.Series([True, None], dtype="boolean")) == "boolean"
    assert infer_kind(pd.Series(["a", None], dtype="string")) == "categorical"
    durations = pd.Series(pd.to_timedelta(["1 min", None]))
    assert infer_kind(durations) == "numeric"
    assert coerce_column(durations, "numeric")[0].iloc[0] == 60.0


def test_coerce_column_counts_what_did_not_convert():
    numbers, failed = coerce_column(pd.Series(["1", " 2.5 ", "x", None, "inf"]), "numeric")
    assert numbers.iloc[:2].tolist() == [1.0, 2.5]
    assert numbers.iloc[2:].isna().all() and failed == 2  # "x" and inf; None was missing
    flags, failed = coerce_column(pd.Series([True, "false", " TRUE ", None, "maybe"]), "boolean")
    assert flags.iloc[:3].tolist() == ["True", "False", "True"]
    assert flags.iloc[3:].isna().all() and failed == 1
    dates, failed = coerce_column(pd.Series(["2024-01-01", "not a date", None]), "datetime")
    assert str(dates.dtype) == "datetime64[ns, UTC]" and failed == 1
    categories, failed = coerce_column(pd.Series([1, "a", None, 2.5], dtype=object), "categorical")
    assert categories.iloc[[0, 1, 3]].tolist() == ["1", "a", "2.5"]
    assert pd.isna(categories.iloc[2]) and failed == 0


def test_table_schema_records_kinds_and_coerces_later_frames():
    frame = table()
    features = frame.drop(columns=["id", "y", "amount"])
    schema = TableSchema().fit(features)
    assert schema.kinds_ == {
        "x one": "numeric",
        "colour": "categorical",
        "flag": "boolean",
        "answer": "categorical",
        "day": "datetime",
        "code": "numeric",
        "constant": "numeric",
        "empty": "numeric",
    }
    assert schema.columns_of("numeric") == ["x one", "code", "constant", "empty"]
    # a later frame with text where numbers were, a string boolean and columns reordered
    later = features.head(3).astype(object)[list(reversed(features.columns))]
    later["x one"] = ["1.5", None, "oops"]
    later["flag"] = ["true", "False", None]
    out = schema.transform(later)
    assert list(out.columns) == list(schema.kinds_)
    assert out["x one"].iloc[0] == 1.5 and out["x one"].iloc[1:].isna().all()
    assert out["flag"].iloc[:2].tolist() == ["True", "False"] and pd.isna(out["flag"].iloc[2])
    assert str(out["day"].dtype) == "datetime64[ns, UTC]"
    with pytest.raises(ValueError, match="missing column.*colour"):
        schema.transform(features.drop(columns=["colour"]))
    with pytest.raises(TypeError, match="pandas DataFrame"):
        schema.transform(features.to_numpy())
    # fixed kinds win over inference
    fixed = TableSchema(kinds={"code": "categorical", "absent": "numeric"}).fit(features)
    assert fixed.kinds_["code"] == "categorical" and "absent" not in fixed.kinds_


def test_date_parts():
    moments = pd.DataFrame({"d": pd.to_datetime(["2024-03-01", None], utc=True)})
    parts = DateParts().fit(moments).transform(moments)
    assert parts.shape == (2, 5)
    assert parts[0, :4].tolist() == [2024, 3, 4, 61] and np.isnan(parts[1]).all()
    assert DateParts().transform(pd.DataFrame(index=range(3))).shape == (3, 0)


def test_infer_kinds_on_a_whole_table():
    kinds = infer_kinds(table())
    assert kinds["id"] == "categorical" and kinds["amount"] == "numeric"


# --- data checks ---------------------------------------------------------------------
def test_validate_names_the_target_and_row_counts():
    frame = table(40)
    classifier = TabularBlueprint(target="y", task="classification")
    report = classifier.validate(frame)
    assert report["rows"] == 40 and report["target"] == "y"
    assert set(report["labels"]) == {"high", "low"} and "amount" in report["features"]
    gaps = frame.assign(y=frame["y"].where(frame.index >= 3))
    with pytest.raises(DatasetValidationError, match="column 'y': 3 of 40 rows have no target"):
        classifier.validate(gaps)
    with pytest.raises(DatasetValidationError, match=r"a single class \('high'\) in 40 rows"):
        classifier.validate(frame.assign(y="high"))
    regressor = TabularBlueprint(target="y", task="regression")
    with pytest.raises(
        DatasetValidationError, match=r"column 'y': 40 of 40 rows are not finite numbers"
    ):
        regressor.validate(frame)
    infinite = frame.assign(amount=frame["amount"].where(frame.index > 0, np.inf))
    with pytest.raises(DatasetValidationError, match="1 of 40 rows are not finite"):
        TabularBlueprint(target="amount", task="regression").validate(infinite)
    with pytest.raises(DatasetValidationError, match="no rows"):
        classifier.validate(frame.head(0))
    with pytest.raises(DatasetValidationError, match="no feature columns"):
        classifier.validate(frame[["id", "y"]])


# --- trainer -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "task", "metric", "greater"),
    [("y", "classification", "macro_f1", True), ("amount", "regression", "rmse", False)],
)
def test_candidates_fit_and_score(target, task, metric, greater):
    frame = table(200)
    other = "amount" if target == "y" else "y"
    frame = frame.drop(columns=[other])
    train, val = frame.iloc[:150], frame.iloc[150:]
    blueprint = TabularBlueprint(target=target, task=task, n_jobs=1)
    assert blueprint.primary_metric == metric and blueprint.greater_is_better is greater
    assert blueprint.metric.direction == ("maximize" if greater else "minimize")
    scores = {}
    for name, candidate in blueprint.candidates(0).items():
        candidate.fit(blueprint.features(train), blueprint.targets(train))
        metrics = blueprint.score(candidate, val)
        assert metric in metrics and np.isfinite(metrics[metric]), name
        scores[name] = metrics[metric]
        assert blueprint.tuning_space(name), name
    if greater:
        assert max(scores.values()) > 0.7  # the signal is strong
        assert blueprint.better(0.9, 0.8) and not blueprint.better(0.8, 0.9)
    else:
        assert min(scores.values()) < frame["amount"].std()  # beats predicting the mean
        assert blueprint.better(0.8, 0.9) and not blueprint.better(0.9, 0.8)
    with pytest.raises(ValueError, match="empty frame"):
        blueprint.score(candidate, val.head(0))


def test_classifier_targets_are_text_and_regression_targets_floats():
    frame = table(20)
    assert TabularBlueprint(target="y", task="classification").targets(frame).dtype == object
    assert TabularBlueprint(target="code", task="regression").targets(frame).dtype == float
    assert TabularBlueprint(target="y", task="classification").class_column == "y"
    assert TabularBlueprint(target="amount", task="regression").class_column is None


def test_metric_overrides():
    classifier = TabularBlueprint(target="y", task="classification")
    assert classifier.metric.floor == 0.5
    assert TabularBlueprint(target="y", task="classification", floor="0.8").metric.floor == 0.8
    accuracy = TabularBlueprint(target="y", task="classification", metric="accuracy", floor=0.7)
    assert accuracy.metric.name == "accuracy" and accuracy.metric.floor == 0.7
    mae = TabularBlueprint(target="amount", task="regression", metric="mae")
    assert mae.primary_metric == "mae" and not mae.greater_is_better and mae.metric.floor is None
    r2 = TabularBlueprint(target="amount", task="regression", metric="r2", floor=0.3)
    assert r2.greater_is_better and r2.metric.floor == 0.3
    regression = TabularBlueprint(target="amount", task="regression")
    assert regression.metric.name == "rmse" and regression.metric.floor is None
    with pytest.raises(ValueError, match="metric 'nope' has no known direction"):
        _ = TabularBlueprint(target="y", task="classification", metric="nope").metric


def test_rows_from_feedback_and_input_example():
    blueprint = TabularBlueprint(target="y", task="classification")
    rows = blueprint.rows_from_feedback(
        [{"x one": 1.0, "colour": "red"}, {"x one": None, "colour": None}], ["high", "low"]
    )
    assert list(rows.columns) == ["x one", "colour", "y"]
    assert rows["y"].tolist() == ["high", "low"] and pd.isna(rows["x one"].iloc[1])
    frame = table(10)
    example = blueprint.input_example(frame)
    assert len(example) == 2 and list(example.index) == [0, 1]
    assert "y" not in example.columns and "id" not in example.columns
    with pytest.raises(ValueError, match="training rows"):
        blueprint.input_example()


def test_feedback_kind_follows_the_task():
    assert TabularBlueprint(target="y", task="classification").feedback.kind == "label"
    assert TabularBlueprint(target="amount", task="regression").feedback.kind == "number"


# --- prepare (what the CLI runs before the pipeline) ----------------------------------
def test_prepare_resolves_validates_and_notes(tmp_path):
    path = tmp_path / "t.csv"
    table(200).drop(columns=["id"]).assign(id=[i % 7 for i in range(200)]).to_csv(path, index=False)
    blueprint, dataset, note = TabularBlueprint(target="amount").prepare(None, str(path))
    assert blueprint.task == "regression" and dataset == "file"
    assert "200 rows" in note and "ids hashed from row content" in note
    assert "column 'id' left out" in note
    numeric_classes = tmp_path / "n.csv"
    table(200).assign(y=lambda f: (f["y"] == "high").astype(float)).to_csv(
        numeric_classes, index=False
    )
    blueprint, _, note = TabularBlueprint(target="y").prepare(None, str(numeric_classes))
    assert blueprint.task == "classification" and "2 distinct integers" in note
    frame = blueprint.load(None, str(numeric_classes))
    assert sorted(frame["y"].unique()) == ["0", "1"]  # 0.0/1.0 read as the classes "0", "1"


def test_prepare_rejects_what_would_fail_in_the_run(tmp_path):
    path = tmp_path / "t.csv"
    frame = table(60)
    frame.assign(y=frame["y"].where(frame.index != 5)).to_csv(path, index=False)
    with pytest.raises(DatasetValidationError, match="column 'y': 1 of 60 rows have no target"):
        TabularBlueprint(target="y").prepare(None, str(path))
    frame.assign(y=["a"] * 55 + ["b"] * 5).to_csv(path, index=False)
    with pytest.raises(
        ValueError, match=r"column 'y': class 'b' has 5 rows \(60 rows in all\).*at least 10"
    ):
        TabularBlueprint(target="y").prepare(None, str(path))
    with pytest.raises(DatasetValidationError, match="rows are not finite numbers"):
        TabularBlueprint(target="answer", task="regression").prepare(None, str(path))
    with pytest.raises(DatasetValidationError, match="--id-column and --target both name 'y'"):
        TabularBlueprint(target="y", id_column="y").prepare(None, str(path))
    with pytest.raises(ValueError, match=r"the table has 60 rows.*use about 200 rows or more"):
        TabularBlueprint(target="amount").prepare(None, str(path))
    with pytest.raises(ValueError, match="--dataset names a shipped table"):
        TabularBlueprint(target="y").prepare("penguins", str(path))


def test_feedback_merges_into_a_table_with_typed_columns(tmp_path, monkeypatch):
    """A Parquet table's datetime column and the wire's ISO text merge into one file."""
    from types import SimpleNamespace

    import driftloop.store
    from driftloop.datasets.files import write_frame
    from driftloop.training.data_steps import merge_feedback

    base = table(20).drop(columns=["amount"]).assign(day=lambda f: pd.to_datetime(f["day"]))
    write_frame(base, tmp_path / "base.parquet")
    row = {c: None for c in base.columns if c not in ("id", "y")}
    row |= {"x one": 1.0, "colour": "red", "flag": True, "day": "2024-05-01T10:00:00"}
    pairs = [
        SimpleNamespace(request_id="req-1", value="high", inputs=[row]),
        SimpleNamespace(request_id="req-0", value=None, inputs=[row]),  # no truth: skipped
    ]
    fake = SimpleNamespace(feedback_pairs=lambda name: pairs, close=lambda: None)
    monkeypatch.setattr(driftloop.store, "PredictionStore", lambda url: fake)
    spec = TabularBlueprint(target="y", task="classification").spec.to_text()
    summary = merge_feedback(tmp_path / "base.parquet", tmp_path / "m.parquet", spec, "m", "x")
    assert summary["rows"] == 21 and summary["feedback_rows"] == 1
    merged = pd.read_parquet(tmp_path / "m.parquet")
    assert merged["y"].iloc[-1] == "high" and merged["id"].iloc[-1] == "req-1"
    days = TableSchema().fit(merged.drop(columns=["id", "y"])).transform(merged)["day"]
    assert days.notna().all() and days.iloc[-1] == pd.Timestamp("2024-05-01 10:00", tz="UTC")


def test_split_keeps_enough_rows_for_the_drift_reference():
    from driftloop.training.splits import check_row_count, rows_needed, split_frame

    frame = table(60)
    with pytest.raises(ValueError, match=r"60 rows leave \d+ for validation and test; at least 40"):
        split_frame(frame, label_column=None, min_held_out=40)
    assert len(split_frame(frame, label_column=None).train) > 30  # no minimum by default
    # 60 rows of two classes: a 6-row validation split may miss one, and the message says so
    with pytest.raises(ValueError, match=r"column 'y': class '\w+' \(\d+ rows\) has no row"):
        split_frame(frame, label_column="y")
    assert rows_needed(40) == 200
    check_row_count(200, 40)
    with pytest.raises(ValueError, match=r"the table has 100 rows; .* \(about 30\)"):
        check_row_count(100, 40)
