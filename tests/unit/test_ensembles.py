"""Ensembles over a blueprint's fitted candidates (``training.ensembles``).

The tabular members each see one of three independent columns of a target
that depends on all three, so a vote, an average or a stack of them must beat
every member on validation rows: the tests can tell an ensemble that combines
from one that merely repeats its best member.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from driftloop.blueprints import get_blueprint
from driftloop.blueprints.scoring import macro_f1
from driftloop.blueprints.tabular.schema import TableSchema
from driftloop.training.candidates import CandidateResult
from driftloop.training.ensembles import (
    HARD_VOTING,
    SOFT_VOTING,
    STACKING,
    WEIGHTED_AVERAGE,
    WeightedVotingClassifier,
    ensemble_candidates,
    score_weights,
    shared_steps,
)

COLUMNS = ("a", "b", "c")


def three_column_table(n: int, seed: int, *, classes: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({column: rng.normal(0, 1, n) for column in COLUMNS})
    total = frame.sum(axis=1) + rng.normal(0, 0.05, n)
    frame["y"] = np.where(total > 0, "up", "down") if classes else total
    frame.insert(0, "id", [f"r{seed}-{i}" for i in range(n)])
    return frame


def one_column_member(column: str, estimator) -> Pipeline:
    """A table pipeline (schema first, like every tabular candidate) that reads one column."""
    return Pipeline(
        [
            ("schema", TableSchema()),
            ("pick", ColumnTransformer([(column, "passthrough", [column])])),
            ("model", estimator),
        ]
    )


def fitted_members(blueprint, train, val, make_estimator):
    fitted, results = {}, []
    for column in COLUMNS:
        name = f"only_{column}"
        member = one_column_member(column, make_estimator())
        member.fit(blueprint.features(train), blueprint.targets(train))
        fitted[name] = member
        results.append(CandidateResult(name, blueprint.score(member, val), {}, 0.0))
    return fitted, results


@pytest.fixture(scope="module")
def classification():
    blueprint = get_blueprint("tabular", target="y", task="classification")
    train = three_column_table(300, 1, classes=True)
    val = three_column_table(200, 2, classes=True)
    fitted, results = fitted_members(blueprint, train, val, LogisticRegression)
    built = ensemble_candidates(blueprint, fitted, results, train, val, seed=3)
    return blueprint, train, val, results, {name: (model, m) for name, model, m in built}


@pytest.fixture(scope="module")
def regression():
    blueprint = get_blueprint("tabular", target="y", task="regression")
    train = three_column_table(300, 4, classes=False)
    val = three_column_table(200, 5, classes=False)
    fitted, results = fitted_members(blueprint, train, val, LinearRegression)
    built = ensemble_candidates(blueprint, fitted, results, train, val, seed=3)
    return blueprint, train, val, results, {name: (model, m) for name, model, m in built}


def test_classification_ensembles_beat_every_member(classification):
    blueprint, _, val, results, built = classification
    assert set(built) == {SOFT_VOTING, HARD_VOTING, STACKING}
    best_member = max(r.metrics["macro_f1"] for r in results)
    assert best_member < 0.85  # one column of three cannot be enough
    for name, (model, metrics) in built.items():
        # the metrics returned are the blueprint's own score on the validation rows
        assert metrics == pytest.approx(blueprint.score(model, val)), name
    assert built[SOFT_VOTING][1]["macro_f1"] > best_member + 0.05
    assert built[STACKING][1]["macro_f1"] > best_member + 0.1


def test_classification_ensembles_predict_the_classes(classification):
    blueprint, _, val, _, built = classification
    features = blueprint.features(val)
    for name, (model, _) in built.items():
        assert list(model.classes_) == ["down", "up"], name
        labels = model.predict(features)
        assert set(labels) <= {"down", "up"} and len(set(labels)) == 2, name
        probabilities = model.predict_proba(features)
        assert probabilities.shape == (len(val), 2)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
        assert (labels == model.classes_[probabilities.argmax(axis=1)]).all(), name
        # the shared schema stays in front: serving reads the model's first step
        assert model.steps[0][0] == "schema" and model.steps[-1][0] == "ensemble"
        again = pickle.loads(pickle.dumps(model))
        assert (again.predict(features) == labels).all()


def test_regression_average_and_stack_beat_every_member(regression):
    blueprint, _, val, results, built = regression
    assert set(built) == {WEIGHTED_AVERAGE, STACKING}
    best_member = min(r.metrics["rmse"] for r in results)
    average = built[WEIGHTED_AVERAGE][1]["rmse"]
    assert average < 0.9 * best_member
    # the ridge over the members' predictions recovers the sum of the three columns
    assert built[STACKING][1]["rmse"] < 0.2 * best_member
    model = built[WEIGHTED_AVERAGE][0]
    members = model.named_steps["ensemble"].estimators_
    features = blueprint.features(val)
    by_hand = np.mean([m.predict(features) for m in members], axis=0)
    # near-equal scores give near-equal weights: close to the plain mean
    np.testing.assert_allclose(model.predict(features), by_hand, atol=0.05)


def test_top_picks_by_the_blueprint_direction(regression):
    blueprint, train, val, results, _ = regression
    fitted = {f"only_{c}": one_column_member(c, LinearRegression()) for c in COLUMNS}
    for member in fitted.values():
        member.fit(blueprint.features(train), blueprint.targets(train))
    ranked = sorted(results, key=lambda r: r.metrics["rmse"])  # rmse: lower is better
    built = ensemble_candidates(blueprint, fitted, results, train, val, top=2)
    model = dict((name, m) for name, m, _ in built)[WEIGHTED_AVERAGE]
    names = [name for name, _ in model.named_steps["ensemble"].estimators]
    assert names == [ranked[0].name, ranked[1].name]
    assert ensemble_candidates(blueprint, fitted, results, train, val, top=1) == []


def test_weights_follow_the_scores():
    assert score_weights([0.9, 0.6, 0.3], greater_is_better=True) == pytest.approx(
        [0.5, 1 / 3, 1 / 6]
    )
    # lower is better: an error half as large weighs twice as much
    assert score_weights([1.0, 2.0], greater_is_better=False) == pytest.approx([2 / 3, 1 / 3])


def test_a_heavy_voter_outvotes_two_light_ones(classification):
    blueprint, train, val, _, _ = classification
    members = [
        (c, one_column_member(c, LogisticRegression()).fit(train[list(COLUMNS)], train["y"]))
        for c in COLUMNS
    ]
    features = val[list(COLUMNS)]
    heavy = WeightedVotingClassifier.from_fitted(members, [0.6, 0.2, 0.2], voting="hard")
    assert (heavy.predict(features) == members[0][1].predict(features)).all()
    even = WeightedVotingClassifier.from_fitted(members, None, voting="hard")
    assert (even.predict(features) != members[0][1].predict(features)).any()
    # refitting (what a stability analysis does) works on clones of the members
    refitted = even.fit(train[list(COLUMNS)], train["y"])
    assert set(refitted.predict(features)) <= {"down", "up"}


TEXTS = {
    "positive": ["great product fast delivery", "excellent quality recommend", "love it great"],
    "negative": ["terrible product never arrived", "awful quality broken", "bad service awful"],
}


def text_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = rng.choice(["positive", "negative"], n)
    texts = [
        " ".join(rng.choice(" ".join(TEXTS[label]).split(), 4)) + f" item{rng.integers(0, 5)}"
        for label in labels
    ]
    return pd.DataFrame({"id": [f"t{seed}-{i}" for i in range(n)], "text": texts, "label": labels})


def test_sentiment_soft_voting_leaves_out_a_member_without_probabilities():
    from driftloop.blueprints.sentiment import text_pipeline

    blueprint = get_blueprint("sentiment", char_ngrams=False, max_features=300)
    train, val = text_frame(120, 1), text_frame(60, 2)
    pool = blueprint.candidates(0)
    fitted = {
        "logreg": pool["logreg"],
        "complement_nb": pool["complement_nb"],
        # a raw LinearSVC: labels and decision_function, no predict_proba
        "raw_svc": text_pipeline(LinearSVC(), char_ngrams=False, max_features=300),
    }
    results = []
    for name, model in fitted.items():
        model.fit(blueprint.features(train), blueprint.targets(train))
        if hasattr(model, "predict_proba"):
            metrics = blueprint.score(model, val)
        else:
            metrics = {"macro_f1": macro_f1(val["label"], model.predict(val["text"].tolist()))}
        results.append(CandidateResult(name, metrics, {}, 0.0))
    # normaliser and TF-IDF are configured alike in all three: kept once, in front
    assert shared_steps(list(fitted.values())) == 2

    built = {
        name: model
        for name, model, _ in ensemble_candidates(blueprint, fitted, results, train, val)
    }
    assert set(built) == {SOFT_VOTING, HARD_VOTING, STACKING}
    soft = built[SOFT_VOTING].named_steps["ensemble"]
    assert sorted(name for name, _ in soft.estimators) == ["complement_nb", "logreg"]
    hard = built[HARD_VOTING].named_steps["ensemble"]
    assert sorted(name for name, _ in hard.estimators) == ["complement_nb", "logreg", "raw_svc"]
    texts = blueprint.features(val)
    for name, model in built.items():
        assert [n for n, _ in model.steps] == ["normalize", "tfidf", "ensemble"], name
        assert set(model.predict(texts)) <= {"negative", "positive"}, name
        assert blueprint.score(model, val)["macro_f1"] > 0.8, name
        # what the drift monitor reads: the TF-IDF before the final step
        blueprint.drift_featurizer(model, val)


def test_shared_steps_compare_configuration_not_identity():
    pool = get_blueprint("sentiment").candidates(0)
    # the default TF-IDF is a FeatureUnion (words + characters): configured alike in three
    assert shared_steps([pool["logreg"], pool["linear_svc"], pool["complement_nb"]]) == 2
    # the XGBoost candidate reads words only: only the normaliser is shared
    assert shared_steps([pool["logreg"], pool["xgboost"]]) == 1
    other = get_blueprint("sentiment", max_features=500).candidates(0)["logreg"]
    assert shared_steps([pool["logreg"], other]) == 1


@pytest.mark.slow
def test_an_ensemble_the_drift_monitor_cannot_watch_is_not_offered(caplog):
    # logreg's TF-IDF (words + characters) and XGBoost's (words only) differ: only the
    # normaliser is shared, so the ensemble has no TF-IDF before its final step
    blueprint = get_blueprint("sentiment", max_features=300)
    train, val = text_frame(120, 3), text_frame(60, 4)
    pool = blueprint.candidates(0)
    pool["xgboost"].set_params(classifier__n_estimators=10)
    fitted = {name: pool[name] for name in ("logreg", "xgboost")}
    results = []
    for name, model in fitted.items():
        model.fit(blueprint.features(train), blueprint.targets(train))
        results.append(CandidateResult(name, blueprint.score(model, val), {}, 0.0))
    with caplog.at_level("WARNING", logger="driftloop.training.ensembles"):
        built = ensemble_candidates(blueprint, fitted, results, train, val)
    assert built == []
    refused = [r.getMessage() for r in caplog.records if "not offered" in r.getMessage()]
    assert len(refused) == 3 and all("vectorizer" in message for message in refused)


def test_rows_ordered_in_time_get_no_stacking(regression):
    blueprint, train, val, results, _ = regression
    in_time = get_blueprint("tabular", target="y", task="regression", time_column="a")
    fitted = {f"only_{c}": one_column_member(c, LinearRegression()) for c in COLUMNS}
    for member in fitted.values():
        member.fit(blueprint.features(train), blueprint.targets(train))
    built = [name for name, _, _ in ensemble_candidates(in_time, fitted, results, train, val)]
    assert built == [WEIGHTED_AVERAGE]


def test_clusterers_get_no_ensemble(regression):
    from sklearn.cluster import KMeans

    blueprint, train, val, _, _ = regression
    fitted, results = {}, []
    for k in (2, 3):
        model = one_column_member("a", KMeans(n_clusters=k, n_init=1, random_state=0))
        fitted[f"kmeans_{k}"] = model.fit(blueprint.features(train))
        results.append(CandidateResult(f"kmeans_{k}", {"rmse": float(k)}, {}, 0.0))
    assert ensemble_candidates(blueprint, fitted, results, train, val) == []
