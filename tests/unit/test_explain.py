"""SHAP explanations are real: linear contributions are coef x (x - mean) on the model's own
scaled features, tree contributions plus the base value add up to the model's output, and
transformed features (one-hot, missing indicators, date parts) sum back into their input
column. Texts: the words' contributions add up to the predicted class's probability."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from driftloop.blueprints import get_blueprint
from driftloop.blueprints.base import Blueprint
from driftloop.blueprints.explain import Attribution, ExplainError, importance
from driftloop.blueprints.tabular.blueprint import TabularBlueprint
from driftloop.blueprints.tabular.explain import TableExplainer
from driftloop.blueprints.text_explain import MAX_FEATURES, TextExplainer, word_spans
from tests.integration.conftest_serving import NEGATIVE, POSITIVE, table_frame, train_text_model


def fitted(dataset: str, target: str, candidate: str, **params):
    frame, _ = table_frame(dataset)
    blueprint, _ = TabularBlueprint(target=target).resolve(frame)
    frame = blueprint._labelled(frame)
    model = blueprint.candidates(0)[candidate]
    if params:
        model.set_params(**params)
    features = blueprint.features(frame)
    model.fit(features, blueprint.targets(frame))
    return blueprint, model, features


@pytest.fixture(scope="module")
def penguins_logistic():
    return fitted("penguins", "species", "logistic_regression")


def test_linear_contributions_are_coef_times_centred_scaled_features():
    blueprint, model, features = fitted("diabetes", "progression", "ridge")
    background, rows = features.iloc[:100], features.iloc[100:110]
    explainer = blueprint.explainer(model, background)
    assert explainer.method == "linear SHAP" and explainer.uses_background
    attributions = explainer.explain(rows, [None] * len(rows))

    prepare, ridge = explainer.prepare, model.steps[-1][1]
    scaled, scaled_background = prepare.transform(rows), prepare.transform(background)
    assert scaled.shape[1] == len(explainer.columns)  # no missing values: one feature per column
    expected = ridge.coef_ * (scaled - scaled_background.mean(axis=0))
    got = np.array([a.contributions for a in attributions])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    assert [a.features for a in attributions][0] == list(features.columns)
    np.testing.assert_allclose(
        [a.value for a in attributions], model.predict(rows), rtol=1e-6, atol=1e-6
    )
    assert attributions[0].output == "prediction"


def test_linear_classifier_sums_one_hot_columns_into_their_category(penguins_logistic):
    blueprint, model, features = penguins_logistic
    background, rows = features.iloc[::3], features.iloc[1:40:4]
    explainer = blueprint.explainer(model, background)
    labels = [str(label) for label in model.predict(rows)]
    attributions = explainer.explain(rows, labels)

    logistic = model.steps[-1][1]
    # the background explained against: its first rows, transformed by the model
    matrix, matrix_background = explainer.prepare.transform(rows), explainer.background
    assert len(matrix_background) == min(len(background), 100)
    names = list(model.named_steps["prepare"].get_feature_names_out())
    island = [i for i, name in enumerate(names) if name.startswith("categorical__island_")]
    assert len(island) == 3
    for row, (attribution, label) in enumerate(zip(attributions, labels, strict=True)):
        k = list(logistic.classes_).index(label)
        centred = matrix[row] - matrix_background.mean(axis=0)
        per_feature = logistic.coef_[k] * centred
        column = attribution.features.index("island")
        assert attribution.contributions[column] == pytest.approx(per_feature[island].sum())
        # base + contributions = the class's linear score (its log-odds under softmax)
        score = matrix[row] @ logistic.coef_[k] + logistic.intercept_[k]
        assert attribution.value == pytest.approx(score, rel=1e-6)
        assert attribution.output == f"log-odds of {label}"
    assert "island_Biscoe" not in attributions[0].features


def test_linear_model_without_background_says_so(penguins_logistic):
    blueprint, model, features = penguins_logistic
    explainer = blueprint.explainer(model)
    with pytest.raises(ExplainError, match="background sample"):
        explainer.explain(features.head(2), ["Adelie", "Adelie"])


@pytest.mark.parametrize(
    ("candidate", "params"),
    [
        ("random_forest", {"model__n_estimators": 30, "model__n_jobs": 1}),
        ("xgboost", {"model__n_estimators": 30, "model__n_jobs": 1}),
        pytest.param(  # fitting 3 x 15 trees, and shap reading them: several seconds
            "hist_gradient_boosting", {"model__max_iter": 15}, marks=pytest.mark.slow
        ),
    ],
)
def test_tree_contributions_add_up_to_the_model_output(candidate, params):
    blueprint, model, features = fitted("penguins", "species", candidate, **params)
    rows = features.iloc[::17]
    explainer = blueprint.explainer(model)  # tree SHAP: no background needed
    assert not explainer.uses_background
    labels = [str(label) for label in model.predict(rows)]
    attributions = explainer.explain(rows, labels)
    estimator = model.steps[-1][1]
    matrix = explainer.prepare.transform(rows)
    if candidate == "random_forest":  # forests explain the probability itself
        outputs = model.predict_proba(rows)
    elif candidate == "xgboost":  # boosting: the margin (log-odds) per class
        outputs = estimator.booster_.predict(matrix, output_margin=True)
    else:
        outputs = estimator.decision_function(matrix)
    for row, (attribution, label) in enumerate(zip(attributions, labels, strict=True)):
        k = list(model.classes_).index(label)
        assert attribution.value == pytest.approx(float(outputs[row, k]), abs=1e-4)
        assert attribution.base_value + attribution.contributions.sum() == pytest.approx(
            attribution.value
        )
    assert attributions[0].output.startswith(
        "probability of" if candidate == "random_forest" else "log-odds of"
    )


def test_any_other_estimator_gets_additive_permutation_shap():
    from sklearn.neighbors import KNeighborsRegressor

    blueprint, model, features = fitted("diabetes", "progression", "ridge")
    model.steps[-1] = ("model", KNeighborsRegressor(n_neighbors=7))
    model.fit(features, blueprint.targets(table_frame("diabetes")[0]))
    explainer = blueprint.explainer(model, features.iloc[:20])
    assert explainer.method == "permutation SHAP" and explainer.uses_background
    rows = features.iloc[200:203]
    attributions = explainer.explain(rows, [None] * 3)
    np.testing.assert_allclose([a.value for a in attributions], model.predict(rows), rtol=1e-6)
    background_mean = model.predict(features.iloc[:20]).mean()
    assert attributions[0].base_value == pytest.approx(background_mean, rel=1e-6)


def test_an_ensemble_of_pipelines_is_explained_whole_over_input_columns():
    from sklearn.ensemble import VotingClassifier
    from sklearn.pipeline import Pipeline

    from driftloop.blueprints.tabular.schema import TableSchema

    frame, _ = table_frame("penguins")
    blueprint, _ = TabularBlueprint(target="species").resolve(frame)
    frame = blueprint._labelled(frame)
    candidates = blueprint.candidates(0)
    members = [
        (name, Pipeline(candidates[name].steps[1:]))  # each member prepares columns its own way
        for name in ("logistic_regression", "random_forest")
    ]
    candidates["random_forest"].set_params(model__n_estimators=20, model__n_jobs=1)
    ensemble = Pipeline(
        [("schema", TableSchema()), ("ensemble", VotingClassifier(members, voting="soft"))]
    )
    features = blueprint.features(frame)
    ensemble.fit(features, blueprint.targets(frame))

    explainer = blueprint.explainer(ensemble, features.iloc[::7])
    assert explainer.method == "permutation SHAP over input columns" and explainer.uses_background
    rows = features.iloc[[3, 200, 300]]
    labels = [str(label) for label in ensemble.predict(rows)]
    attributions = explainer.explain(rows, labels)
    probabilities = ensemble.predict_proba(rows)
    for row, (attribution, label) in enumerate(zip(attributions, labels, strict=True)):
        k = list(ensemble.classes_).index(label)
        assert attribution.value == pytest.approx(probabilities[row, k], abs=1e-9)
        assert attribution.features == list(features.columns)
        assert attribution.output == f"probability of {label}"
    with pytest.raises(ExplainError, match="background sample"):
        blueprint.explainer(ensemble).explain(rows, labels)


def test_binary_one_output_model_explains_either_class():
    frame, _ = table_frame("penguins")
    frame = frame[frame["species"] != "Chinstrap"]
    blueprint, _ = TabularBlueprint(target="species").resolve(frame)
    model = blueprint.candidates(0)["xgboost"].set_params(model__n_estimators=20, model__n_jobs=1)
    features = blueprint.features(frame)
    model.fit(features, blueprint.targets(frame))
    rows = features.iloc[:3]
    margin = model.steps[-1][1].booster_.predict(
        blueprint.explainer(model).prepare.transform(rows), output_margin=True
    )
    explainer = blueprint.explainer(model)
    as_first = explainer.explain(rows, ["Adelie"] * 3)
    as_second = explainer.explain(rows, ["Gentoo"] * 3)
    for row in range(3):
        assert as_second[row].value == pytest.approx(float(margin[row]), abs=1e-4)
        assert as_first[row].value == pytest.approx(-float(margin[row]), abs=1e-4)
        assert as_first[row].output == "log-odds of Adelie"


def test_dates_and_missing_indicators_sum_back_into_their_columns():
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame(
        {
            "amount": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "shop": rng.choice(["a", "b", "c"], size=n),
            "opened": pd.date_range("2020-01-01", periods=n, freq="D").astype(str),
            "closed": pd.date_range("2021-06-01", periods=n, freq="12h").astype(str),
            "y": rng.normal(size=n),
        }
    )
    blueprint = TabularBlueprint(target="y", task="regression")
    model = blueprint.candidates(0)["ridge"]
    features = blueprint.features(frame)
    model.fit(features, frame["y"])
    explainer = TableExplainer(model, features, classifier=False)
    # every transformed feature belongs to exactly one input column
    assert (explainer.grouping.sum(axis=1) == 1).all()
    per_column = dict(zip(explainer.columns, explainer.grouping.sum(axis=0), strict=True))
    assert per_column == {"amount": 2, "shop": 3, "opened": 5, "closed": 5}
    attributions = explainer.explain(features.head(5), [None] * 5)
    np.testing.assert_allclose(
        [a.value for a in attributions], model.predict(features.head(5)), atol=1e-6
    )


def test_text_contributions_add_up_to_the_predicted_probability():
    model = train_text_model()
    texts = [POSITIVE[0] + " and " + POSITIVE[2], NEGATIVE[1]]
    labels = [str(label) for label in model.predict(texts)]
    assert labels == ["positive", "negative"]
    explainer = get_blueprint("sentiment").explainer(model)
    attributions = explainer.explain(texts, labels)
    probabilities = model.predict_proba(texts)
    empty = model.predict_proba([""])[0]
    for row, attribution in enumerate(attributions):
        k = list(model.classes_).index(labels[row])
        assert attribution.value == pytest.approx(probabilities[row, k], abs=1e-9)
        assert attribution.base_value == pytest.approx(empty[k])
        assert attribution.output == f"probability of {labels[row]}"
    top = attributions[0].top(3)
    positive_only = words(POSITIVE) - words(NEGATIVE)
    assert top["contributions"][0]["feature"] in positive_only
    assert top["contributions"][0]["contribution"] > 0
    shown = sum(c["contribution"] for c in top["contributions"])
    assert top["base_value"] + shown + top["rest"] == pytest.approx(top["value"])
    assert attributions[1].top(1)["contributions"][0]["feature"] in words(NEGATIVE) - words(
        POSITIVE
    )


def words(texts: list[str]) -> set[str]:
    return {word for text in texts for word in re.findall(r"\w+", text)}


def test_long_texts_are_explained_by_runs_of_words():
    text = " ".join(f"word{i}" for i in range(300))
    spans = word_spans(text)
    assert len(spans) == MAX_FEATURES
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    model = train_text_model()
    (attribution,) = TextExplainer(model).explain([text], ["positive"])
    assert len(attribution.features) == MAX_FEATURES
    assert attribution.value == pytest.approx(model.predict_proba([text])[0, 1], abs=1e-9)


def test_importance_is_mean_absolute_contribution_per_key():
    def attribution(features, contributions):
        return Attribution("x", 0.0, features, features, np.array(contributions, dtype=float))

    table = importance(
        [attribution(["Good", "good", "bad"], [0.2, 0.1, -0.4]), attribution(["bad"], [-0.2])],
        key=str.lower,
    )
    assert table.to_dict("records") == [
        {"feature": "bad", "mean_abs_contribution": pytest.approx(0.3)},
        {"feature": "good", "mean_abs_contribution": pytest.approx(0.15)},
    ]


def test_a_blueprint_explains_nothing_unless_it_says_so():
    assert Blueprint.explainer(get_blueprint("sentiment"), object()) is None
