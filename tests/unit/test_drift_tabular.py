"""The tabular blueprint's drift featurizer with the default detectors, and tabular events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.blueprints.tabular.blueprint import TabularBlueprint
from driftloop.blueprints.tabular.drift import TableFeaturizer
from driftloop.monitor.events import join_instances, pair_samples

N = 600


def table(
    n: int, seed: int, *, shift: float = 0.0, mix: tuple[float, float, float] = (0.5, 0.3, 0.2)
):
    rng = np.random.default_rng(seed)
    x = rng.normal(0 + shift, 1, n)
    z = rng.uniform(0, 10, n)
    colour = rng.choice(["red", "green", "blue"], n, p=list(mix))
    flag = rng.random(n) < 0.4
    day = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    score = x + (colour == "red") - 0.1 * z + rng.normal(0, 0.3, n)
    frame = pd.DataFrame(
        {
            "id": [f"r{seed}-{i}" for i in range(n)],
            "x": x,
            "z": z,
            "colour": colour,
            "flag": flag,
            "day": day.strftime("%Y-%m-%d"),
        }
    )
    frame["y"] = np.where(score > 0, "high", "low")
    frame["amount"] = score * 10 + 50
    return frame


@pytest.fixture(scope="module")
def classifier():
    blueprint = TabularBlueprint(target="y", task="classification")
    train = table(N, 0).drop(columns=["amount"])
    model = blueprint.candidates(0)["logistic_regression"].fit(
        blueprint.features(train), blueprint.targets(train)
    )
    return blueprint, model


@pytest.fixture(scope="module")
def regressor():
    blueprint = TabularBlueprint(target="amount", task="regression")
    train = table(N, 0).drop(columns=["y"])
    model = blueprint.candidates(0)["ridge"].fit(
        blueprint.features(train), blueprint.targets(train)
    )
    return blueprint, model


def test_groups_and_codes(classifier):
    blueprint, model = classifier
    reference = table(300, 1).drop(columns=["amount"])
    featurizer = blueprint.drift_featurizer(model, reference)
    assert isinstance(featurizer, TableFeaturizer)
    assert featurizer.groups == {
        "numeric": "continuous",
        "categorical": "categorical",
        "prediction": "categorical",
    }
    rows = pd.DataFrame(
        {"x": [0.1, None], "z": [1.0, 2.0], "colour": ["purple", None], "flag": [True, None],
         "day": ["2024-02-01", "2024-03-01"]}
    ).astype(object)  # fmt: skip
    outputs = [{"label": "high"}, {"label": "low"}]
    features = featurizer.transform(rows, outputs)
    assert features["numeric"].shape == (2, 3)  # x, z and the date as seconds
    assert not np.isnan(features["numeric"]).any()  # a missing number takes the median
    # colour: blue, green, red -> 0..2, other 3, missing 4; flag: False, True -> 0, 1, missing 3
    assert features["categorical"].tolist() == [[3, 1], [4, 3]]
    assert features["prediction"].ravel().tolist() == [0, 1]
    assert featurizer.categories("categorical") == {0: [0, 1, 2, 3, 4], 1: [0, 1, 2, 3]}
    assert featurizer.knows({"label": "high"}) and not featurizer.knows({"label": "mid"})
    kinds = {d.features: d.kind for d in featurizer.default_detectors()}
    assert kinds == {"numeric": "ks", "categorical": "chisquare", "prediction": "chisquare"}


def test_a_table_without_categorical_columns_has_no_categorical_group(regressor):
    blueprint, model = regressor
    numeric_only = TabularBlueprint(target="amount", task="regression")
    train = table(N, 0)[["x", "z", "amount"]]
    model = numeric_only.candidates(0)["ridge"].fit(
        numeric_only.features(train), numeric_only.targets(train)
    )
    featurizer = numeric_only.drift_featurizer(model, table(200, 1)[["x", "z", "amount"]])
    assert featurizer.groups == {"numeric": "continuous", "prediction": "continuous"}
    assert {d.features for d in featurizer.default_detectors()} == {"numeric", "prediction"}
    assert featurizer.knows({"prediction": 1.5}) and not featurizer.knows({"label": "x"})


@pytest.mark.slow  # alibi-detect
@pytest.mark.parametrize("which", ["classifier", "regressor"])
def test_default_detectors_see_a_numeric_shift_and_a_category_mix_shift(which, request):
    from driftloop.monitor.reference import build_reference

    blueprint, model = request.getfixturevalue(which)
    drop = "amount" if which == "classifier" else "y"
    bundle = build_reference(blueprint, model, table(1000, 1).drop(columns=[drop]), seed=0)
    assert {d.name for d in bundle.config.detectors} >= {"ks-numeric", "chi2-categorical"}

    def run(frame):
        features = blueprint.features(frame.drop(columns=[drop]))
        outputs = bundle.codec.decode_v1(features.to_dict("records"))
        answer = bundle.codec.predict(outputs)
        results = bundle.detectors.run(
            bundle.featurizer.transform(outputs.model_input, answer.instances)
        )
        return {r.name: r.detected for r in results}

    assert not any(run(table(200, 2)).values())
    assert run(table(200, 3, shift=1.0))["ks-numeric"]
    assert run(table(200, 4, mix=(0.1, 0.3, 0.6)))["chi2-categorical"]


def test_tabular_v1_and_v2_bodies_give_the_same_samples(classifier):
    blueprint, model = classifier
    codec = blueprint.codec(model)
    rows = [
        {"x": 0.5, "z": 3.0, "colour": "red", "flag": True, "day": "2024-05-01"},
        {"x": -1.0, "z": None, "colour": "blue", "flag": False, "day": "2024-06-01"},
    ]
    answer = codec.predict(codec.decode_v1(rows))
    v1_request = {"instances": rows}
    v1_response = {"predictions": answer.instances}
    v2_request = {"inputs": codec.v2_inputs(rows)}
    v2_response = {
        "outputs": [
            {"name": name, "datatype": datatype, "shape": list(array.shape), "data": array.tolist()}
            for name, datatype, array in answer.tensors
        ],
        "parameters": answer.parameters,
    }
    v1 = pair_samples(v1_request, v1_response, codec)
    v2 = pair_samples(v2_request, v2_response, codec)
    assert [s.output for s in v1] == answer.instances
    assert [s.output["label"] for s in v2] == [o["label"] for o in answer.instances]
    for a, b in zip(v1, v2, strict=True):
        assert a.output["probabilities"] == pytest.approx(b.output["probabilities"])
        assert a.output["low_confidence"] == b.output["low_confidence"]
    joined = join_instances([s.model_input for s in v2])
    assert isinstance(joined, pd.DataFrame) and len(joined) == 2
    assert joined["colour"].tolist() == ["red", "blue"]


def test_regression_v2_response_gives_prediction_dicts(regressor):
    blueprint, model = regressor
    codec = blueprint.codec(model)
    rows = [{"x": 0.5, "z": 3.0, "colour": "red", "flag": True, "day": "2024-05-01"}]
    answer = codec.predict(codec.decode_v1(rows))
    response = {
        "outputs": [
            {"name": n, "datatype": d, "shape": list(a.shape), "data": a.tolist()}
            for n, d, a in answer.tensors
        ]
    }
    (sample,) = pair_samples({"inputs": codec.v2_inputs(rows)}, response, codec)
    assert sample.output == pytest.approx(answer.instances[0])
