import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from driftloop.blueprints.text_drift import FeaturizerError, TextFeaturizer
from tests.unit.conftest_monitor import corpus, small_text_model


def answers(labels):
    return [{"label": label} for label in labels]


@pytest.fixture(scope="module")
def model():
    return small_text_model(n_train=1200)


@pytest.fixture(scope="module")
def featurizer(model):
    held_out = corpus().iloc[2000:2400]["text"].tolist()
    return TextFeaturizer.fit(model, held_out, dims=10, seed=0)


def test_feature_groups_have_the_declared_shapes(featurizer):
    texts = corpus().iloc[3000:3050]["text"].tolist()
    features = featurizer.transform(texts, answers(["positive"] * 25 + ["negative"] * 25))
    assert features["projection"].shape == (50, 10)
    assert features["projection"].dtype == np.float32
    assert features["text_stats"].shape == (50, 2)
    assert features["prediction"].shape == (50, 1)
    assert set(features["prediction"].ravel()) == {0, 1}
    assert featurizer.classes == ["negative", "positive"]


def test_unknown_token_rate_sees_new_vocabulary(featurizer):
    in_domain = corpus().iloc[3000:3100]["text"].tolist()
    gibberish = ["zqxv wkjh plmq brrzt", "xxqj vvkw zzpt"]
    known = featurizer.unknown_token_rate(in_domain)
    unknown = featurizer.unknown_token_rate(gibberish)
    assert known.shape == (100,)
    assert 0 <= known.mean() < 0.5
    assert unknown.min() > known.mean() + 0.3


def test_text_length_feature_is_log_length(featurizer):
    features = featurizer.transform(
        ["a" * 9, "a good film " * 10], answers(["positive", "negative"])
    )
    assert features["text_stats"][0, 0] == pytest.approx(np.log1p(9))
    assert features["text_stats"][1, 0] > features["text_stats"][0, 0]


def test_projection_is_deterministic(model):
    texts = corpus().iloc[2000:2200]["text"].tolist()
    a = TextFeaturizer.fit(model, texts, dims=6, seed=3).transform(
        texts[:5], answers(["positive"] * 5)
    )
    b = TextFeaturizer.fit(model, texts, dims=6, seed=3).transform(
        texts[:5], answers(["positive"] * 5)
    )
    np.testing.assert_allclose(a["projection"], b["projection"])


def test_unknown_label_names_the_classes(featurizer):
    assert featurizer.knows({"label": "positive"}) and not featurizer.knows({"label": "neutral"})
    with pytest.raises(ValueError, match="neutral.*negative"):
        featurizer.transform(["ok"], answers(["neutral"]))


def test_the_sentiment_blueprint_fits_it_and_suggests_the_text_detectors(model):
    import pandas as pd

    from driftloop.blueprints.sentiment import SentimentBlueprint

    frame = pd.DataFrame({"text": corpus().iloc[2000:2100]["text"].tolist(), "label": "positive"})
    featurizer = SentimentBlueprint().drift_featurizer(model, frame)
    assert isinstance(featurizer, TextFeaturizer)
    assert set(featurizer.groups) == {"projection", "text_stats", "prediction"}
    suggested = {(d.name, d.kind, d.features) for d in featurizer.default_detectors()}
    assert suggested == {
        ("ks-projection", "ks", "projection"),
        ("ks-text-stats", "ks", "text_stats"),
        ("chi2-prediction", "chisquare", "prediction"),
    }
    assert featurizer.categories("prediction") == {0: [0, 1]}


def test_plain_vectorizer_pipeline_works_and_tiny_vocab_caps_dims():
    texts = ["good film", "bad film", "great movie", "awful movie"] * 5
    labels = ["positive", "negative", "positive", "negative"] * 5
    model = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())]).fit(
        texts, labels
    )
    featurizer = TextFeaturizer.fit(model, texts, dims=12, seed=0)
    assert featurizer.svd.n_components == 5  # 6 words in the vocabulary
    assert featurizer.unknown_token_rate(["good zebra"])[0] == pytest.approx(0.5)


def test_models_without_a_vocabulary_are_refused():
    from sklearn.preprocessing import FunctionTransformer

    model = Pipeline(
        [
            ("f", FunctionTransformer(lambda x: np.array([[len(t)] for t in x]))),
            ("clf", LogisticRegression()),
        ]
    ).fit(["a", "bb", "ccc", "dddd"], ["x", "y", "x", "y"])
    with pytest.raises(FeaturizerError, match="vocabulary"):
        TextFeaturizer.fit(model, ["a", "bb"], dims=2)
