"""A challenger replaces the incumbent only when it wins by more than the validation
noise (``training.significance``): a paired bootstrap over the validation rows.

Real fitted models on a table whose target is ``a + 0.5 b + noise``: the incumbent
reads ``a``; a challenger that also reads a pure-noise column ``z`` is as good in
truth and may look a little better on a few rows; one that reads ``b`` is better.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline

from driftloop.blueprints import get_blueprint
from driftloop.blueprints.tabular.schema import TableSchema
from driftloop.training.significance import paired_bootstrap, resamples_for


def table(rows: int, seed: int, *, classes: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({column: rng.normal(0, 1, rows) for column in "abz"})
    target = frame.a + 0.5 * frame.b + rng.normal(0, 1, rows)
    frame["y"] = np.where(target > 0, "up", "down") if classes else target
    return frame


def reading(columns: str, estimator) -> Pipeline:
    pick = ColumnTransformer([("pick", "passthrough", list(columns))])
    return Pipeline([("schema", TableSchema()), ("pick", pick), ("model", estimator)])


@pytest.fixture(scope="module")
def regression():
    blueprint = get_blueprint("tabular", target="y", task="regression")
    train = table(200, 1)
    models = {
        columns: reading(columns, LinearRegression()).fit(
            blueprint.features(train), blueprint.targets(train)
        )
        for columns in ("a", "az", "ab")
    }
    return blueprint, models


def test_a_challenger_barely_better_on_noisy_validation_does_not_replace_the_incumbent(
    regression,
):
    blueprint, models = regression
    noisy = table(40, 3)  # 40 rows: on these the noise column happens to help a little
    verdict = paired_bootstrap(
        blueprint, [models["a"]], [models["az"]], [noisy], names=("a", "a+z"), seed=0
    )
    assert blueprint.better(verdict.challenger_score, verdict.incumbent_score)  # it did win...
    assert verdict.incumbent_score - verdict.challenger_score < 0.01  # ...barely
    assert verdict.p_value > 0.2 and not verdict.challenger_wins
    assert verdict.winner == "a"
    assert verdict.summary().startswith("kept a: challenger a+z rmse")
    # its full-row scores are the blueprint's own
    assert verdict.incumbent_score == pytest.approx(blueprint.score(models["a"], noisy)["rmse"])
    assert verdict.challenger_score == pytest.approx(blueprint.score(models["az"], noisy)["rmse"])


def test_a_clearly_better_challenger_replaces_the_incumbent(regression):
    blueprint, models = regression
    verdict = paired_bootstrap(
        blueprint, [models["a"]], [models["ab"]], [table(300, 3)], names=("a", "a+b"), seed=0
    )
    assert verdict.challenger_wins and verdict.winner == "a+b"
    assert verdict.p_value <= 0.01 and verdict.resamples == 100
    assert verdict.summary().startswith("a+b replaces a: rmse")
    # a test cut short by its time limit has no evidence: the incumbent stays
    cut = paired_bootstrap(
        blueprint, [models["a"]], [models["ab"]], [table(300, 3)], seed=0, max_seconds=0.0
    )
    assert cut.resamples < 100 and not cut.challenger_wins


def test_folds_are_resampled_each_and_the_verdict_is_seeded(regression):
    blueprint, models = regression
    folds = [table(30, seed) for seed in (4, 5, 6)]
    run = lambda seed: paired_bootstrap(  # noqa: E731
        blueprint, [models["a"]] * 3, [models["az"]] * 3, folds, seed=seed, resamples=50
    )
    assert run(7) == run(7)
    verdict = run(7)
    mean = np.mean([blueprint.score(models["a"], fold)["rmse"] for fold in folds])
    assert verdict.incumbent_score == pytest.approx(mean)


@pytest.mark.parametrize("metric", ["roc_auc", "log_loss"])
def test_any_primary_metric_of_the_blueprint(metric):
    blueprint = get_blueprint("tabular", target="y", task="classification", metric=metric)
    train, val = table(300, 1, classes=True), table(300, 2, classes=True)
    fit = lambda columns: reading(columns, LogisticRegression()).fit(  # noqa: E731
        blueprint.features(train), blueprint.targets(train)
    )
    options = {"seed": 0, "resamples": 50, "level": 0.05}
    verdict = paired_bootstrap(blueprint, [fit("a")], [fit("ab")], [val], **options)
    assert verdict.metric == metric
    assert verdict.challenger_wins, verdict.summary()
    noise = paired_bootstrap(blueprint, [fit("a")], [fit("az")], [val], **options)
    assert not noise.challenger_wins, noise.summary()


def test_mismatched_folds_are_refused(regression):
    blueprint, models = regression
    with pytest.raises(ValueError, match="one incumbent model and one challenger model"):
        paired_bootstrap(blueprint, [models["a"]], [], [table(10, 1)])


def test_the_search_records_who_challenged_the_incumbent_and_the_outcome(tmp_path, monkeypatch):
    """Through ``train_candidates``: LightGBM at its defaults (scored first) is the
    incumbent; the logistic regression scores a slightly lower validation log-loss
    (0.1425 vs 0.1469 on 250 rows), well within the noise, so LightGBM stays; the rule
    and the outcome are on the run."""
    import mlflow

    from driftloop.blueprints.tabular.blueprint import TabularBlueprint
    from driftloop.lineage import tag_key
    from driftloop.settings import Settings
    from driftloop.training.candidates import train_candidates
    from driftloop.training.presets import SearchSettings

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("DRIFTLOOP_TRACKING_URI", raising=False)
    monkeypatch.delenv("DRIFTLOOP_OPTUNA_STORAGE", raising=False)
    frame = table(400, 8, classes=True)
    frame["y"] = np.where(frame.a + frame.b > 0, "up", "down")  # linear, noiseless
    blueprint = TabularBlueprint(target="y", task="classification", n_jobs=1, metric="log_loss")
    search = SearchSettings(
        trials=0, candidates=("lightgbm", "logistic_regression"), validation="holdout"
    )
    result = train_candidates(
        blueprint, frame.iloc[:150], frame.iloc[150:], search=search,
        settings=Settings(home=tmp_path), seed=0,
    )  # fmt: skip
    scores = {c.name: c.metrics["log_loss"] for c in result.candidates}
    assert scores["logistic_regression"] < scores["lightgbm"]  # it did score better...
    assert result.best_candidate == "lightgbm"  # ...but not by more than the noise
    run = mlflow.get_run(result.run_id)
    outcome = run.data.tags[tag_key("selection")]
    assert outcome.startswith(
        "kept lightgbm (defaults): challenger logistic_regression log_loss"
    ), outcome
    # family-wise 0.05, Bonferroni over the one other configuration scored (no trials)
    assert run.data.params["selection_level"] == "0.05"
    assert run.data.params["selection_comparisons"] == "1"
    assert run.data.metrics["selection_p_value_0"] > 0.05


def test_the_level_is_divided_by_the_configurations_the_challenger_was_picked_from(regression):
    """Bonferroni: the challenger is the best of ``comparisons`` configurations scored on the
    same rows, so it wins only at p <= 0.05 / comparisons, with enough resamples for that
    p-value to be reachable."""
    blueprint, models = regression
    rows = table(40, 5)  # reading b helps, but 40 rows show it only at p ~ 0.02
    alone = paired_bootstrap(blueprint, [models["a"]], [models["ab"]], [rows], seed=0)
    assert alone.challenger_wins and 0.01 < alone.p_value <= 0.05, alone.summary()
    picked = paired_bootstrap(
        blueprint, [models["a"]], [models["ab"]], [rows], seed=0, comparisons=20
    )
    assert picked.level == pytest.approx(0.05 / 20) and not picked.challenger_wins
    assert "level 0.0025 = 0.05/20 comparisons" in picked.summary(), picked.summary()
    # as many resamples as the corrected level needs; stopped once it is out of reach
    assert resamples_for(0.05, 20) == 800 and picked.resamples < 800
    clear = paired_bootstrap(
        blueprint, [models["a"]], [models["ab"]], [table(300, 3)], seed=0, comparisons=20
    )
    assert clear.challenger_wins and clear.resamples == 800, clear.summary()


@pytest.mark.parametrize(
    ("task", "metric"),
    [
        ("classification", "roc_auc"),
        ("classification", "log_loss"),
        ("regression", "rmse"),
        ("regression", "mae"),
    ],
)
def test_the_tabular_row_scorer_is_the_primary_metric_of_score_on_any_rows(task, metric):
    """What the bootstrap resamples for a table: one prediction, then the primary metric on
    row positions, equal to ``score`` on those rows (four classes for the log-loss)."""
    blueprint = get_blueprint("tabular", target="y", task=task, metric=metric)
    train, val = table(300, 1, classes=task == "classification"), table(120, 2)
    if metric == "log_loss":
        for frame in (train, val):
            frame["y"] = np.digitize(frame.a + frame.b, [-1, 0, 1]).astype(str)
    elif task == "classification":
        val["y"] = np.where(val.a + 0.5 * val.b > 0, "up", "down")
    estimator = LogisticRegression() if task == "classification" else LinearRegression()
    model = reading("ab", estimator).fit(blueprint.features(train), blueprint.targets(train))
    scorer = blueprint.row_scorer(model, val)
    rng = np.random.default_rng(0)
    for rows in [None] + [rng.integers(0, len(val), len(val)) for _ in range(5)]:
        part = val if rows is None else val.iloc[rows]
        assert scorer(rows) == pytest.approx(blueprint.score(model, part)[metric], rel=1e-12)
    if task == "classification":  # rows of one class have no ROC-AUC or log-loss
        with pytest.raises(ValueError):
            scorer(np.flatnonzero(val["y"] == val["y"].iloc[0]))


def test_a_metric_without_a_row_scorer_is_resampled_through_score():
    blueprint = get_blueprint("tabular", target="y", task="classification", metric="macro_f1")
    train, val = table(300, 1, classes=True), table(120, 2, classes=True)
    fit = lambda columns: reading(columns, LogisticRegression()).fit(  # noqa: E731
        blueprint.features(train), blueprint.targets(train)
    )
    assert blueprint.row_scorer(fit("a"), val) is None
    verdict = paired_bootstrap(blueprint, [fit("a")], [fit("ab")], [val], seed=0, resamples=20)
    assert verdict.incumbent_score == pytest.approx(blueprint.score(fit("a"), val)["macro_f1"])
    assert verdict.resamples >= 1


def test_features_given_as_a_list_of_texts_are_scored_by_the_model_itself():
    from sklearn.feature_extraction.text import TfidfVectorizer

    blueprint = get_blueprint("sentiment")
    rng = np.random.default_rng(3)
    words = {"positive": ["great", "good", "love"], "negative": ["bad", "awful", "hate"]}

    def reviews(rows: int) -> pd.DataFrame:
        labels = rng.choice(["positive", "negative"], rows)
        texts = [f"{rng.choice(words[label])} {rng.choice(['film', 'day'])}" for label in labels]
        texts = [t if rng.random() > 0.2 else f"{rng.choice(words['positive'])} day" for t in texts]
        return pd.DataFrame({"text": texts, "label": labels})

    train, val = reviews(200), reviews(120)
    assert isinstance(blueprint.features(val), list)
    fit = lambda c: Pipeline(  # noqa: E731
        [("tfidf", TfidfVectorizer()), ("model", LogisticRegression(C=c))]
    ).fit(blueprint.features(train), blueprint.targets(train))
    verdict = paired_bootstrap(blueprint, [fit(0.01)], [fit(10.0)], [val], seed=0, resamples=20)
    primary = blueprint.primary_metric
    assert verdict.incumbent_score == pytest.approx(blueprint.score(fit(0.01), val)[primary])
    assert verdict.challenger_score == pytest.approx(blueprint.score(fit(10.0), val)[primary])
