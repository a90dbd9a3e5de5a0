"""The sentiment blueprint: normalisation, candidate pipelines, scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from driftloop.blueprints import (
    UnknownBlueprintError,
    get_blueprint,
    list_blueprints,
    text_vectorizer,
)
from driftloop.blueprints.estimators import StringLabelXGBClassifier
from driftloop.blueprints.text import TextNormalizer, normalize_text, stop_words


def _normalize(text):
    return TextNormalizer().fit([]).transform([text])[0]


def test_normaliser_strips_accents_and_keeps_negations():
    assert (
        _normalize("Não recomendo, PÉSSIMO atendimento!!!") == "nao recomendo pessimo atendimento"
    )
    assert (
        _normalize("Nunca mais compro nada sem garantia") == "nunca mais compro nada sem garantia"
    )
    assert "nem" in _normalize("nem chegou").split()


def test_normaliser_drops_urls_digits_punctuation_stop_words_and_repeats():
    out = _normalize("O produto é MUUUUITO bom!!! 10/10 veja https://loja.com.br/x?id=3 @olist")
    assert out == "produto muuito bom veja olist"
    # English: contractions keep their negation, stop words go, negations stay
    assert _normalize("I don't like it, it is not good") == "not like not good"


def test_stop_word_lists_never_contain_negations():
    words = stop_words(("pt", "en"))
    assert {"nao", "nem", "nunca", "jamais", "nada", "sem", "not", "no", "never"}.isdisjoint(words)
    assert {"de", "para", "com", "the", "and"} <= words
    with pytest.raises(ValueError, match="no stop-word list for language 'xx'"):
        stop_words(("xx",))
    assert normalize_text(None) == "" and normalize_text(float("nan")) == ""


def test_normaliser_accepts_frames_and_series():
    frame = pd.DataFrame({"text": ["Ótimo"]})
    assert TextNormalizer().transform(frame) == ["otimo"]
    assert TextNormalizer().transform(pd.Series(["Ótimo"])) == ["otimo"]
    with pytest.raises(TypeError, match="single string"):
        TextNormalizer().transform("Ótimo")


def test_registry_of_blueprints():
    assert "sentiment" in list_blueprints()
    blueprint = get_blueprint("sentiment")
    assert (blueprint.primary_metric, blueprint.greater_is_better) == ("macro_f1", True)
    assert blueprint.default_dataset == "sentiment-offline"
    assert blueprint.labels == ("negative", "positive")
    assert len(blueprint.input_example()) >= 2
    assert (
        blueprint.better(0.9, 0.8)
        and not blueprint.better(0.8, 0.9)
        and blueprint.better(0.1, None)
    )
    with pytest.raises(UnknownBlueprintError, match="known blueprints: .*sentiment"):
        get_blueprint("astrology")


@pytest.fixture(scope="module")
def small_olist(olist_sample):
    from driftloop.datasets import load_dataset

    frame = load_dataset("olist-reviews", olist_sample).sort_values("id")
    return frame.iloc[:600], frame.iloc[600:900]


@pytest.mark.slow
def test_every_candidate_has_string_classes_and_probabilities(small_olist):
    train, val = small_olist
    blueprint = get_blueprint("sentiment")
    candidates = blueprint.candidates(seed=0)
    assert set(candidates) == {"logreg", "linear_svc", "xgboost", "complement_nb"}
    for name, model in candidates.items():
        model.fit(train["text"].tolist(), train["label"].to_numpy())
        assert list(model.classes_) == ["negative", "positive"], name
        proba = model.predict_proba(["produto ótimo", "não chegou"])
        assert proba.shape == (2, 2) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
        scores = blueprint.score(model, val)
        assert {"macro_f1", "accuracy", "f1_negative", "f1_positive", "log_loss", "roc_auc"} <= set(
            scores
        )
        assert scores["macro_f1"] > 0.75, (
            name,
            scores,
        )  # 600 rows are plenty to beat chance by far
        assert blueprint.tuning_space(name), name

    features = text_vectorizer(candidates["logreg"]).transform(["produto ótimo", "não chegou"])
    assert sparse.issparse(features) and features.shape[0] == 2
    assert features.shape[1] == candidates["logreg"].named_steps["classifier"].coef_.shape[1]


def test_score_handles_a_label_the_model_never_saw(small_olist):
    train, val = small_olist
    blueprint = get_blueprint("sentiment")
    model = blueprint.candidates(seed=0)["complement_nb"].fit(
        train["text"].tolist(), train["label"]
    )
    odd = val.iloc[:20].assign(label=["neutral"] * 5 + val["label"].iloc[5:20].tolist())
    scores = blueprint.score(model, odd)
    assert "f1_neutral" in scores and scores["f1_neutral"] == 0.0
    assert "log_loss" not in scores  # undefined for a class without a probability
    with pytest.raises(ValueError, match="empty frame"):
        blueprint.score(model, val.iloc[:0])


def test_xgboost_wrapper_maps_labels_back():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = np.where(X[:, 0] > 0, "up", "down")
    model = StringLabelXGBClassifier(n_estimators=20, max_depth=2, random_state=0, n_jobs=1).fit(
        X, y
    )
    assert list(model.classes_) == ["down", "up"]
    assert (model.predict(X) == y).mean() > 0.95
    with pytest.raises(ValueError, match="at least two classes"):
        StringLabelXGBClassifier().fit(X, np.array(["up"] * 200))
