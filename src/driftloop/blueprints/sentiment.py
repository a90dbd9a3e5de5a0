"""Review sentiment: PT-BR (Olist) first, English corpora as offline default.

Every candidate is ``TextNormalizer -> TF-IDF -> classifier``; the classifier's
``classes_`` are the string labels. Ranked by macro-F1 on the validation split
(the classes are imbalanced, so accuracy alone would flatter a majority vote).

Drift features: the monitor takes the champion's fitted featurisation,
``text_vectorizer(model)`` (texts -> TF-IDF), plus the model's predicted
probabilities; see :func:`driftloop.blueprints.text.text_vectorizer`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from driftloop.blueprints.base import Blueprint, ParamRange
from driftloop.blueprints.estimators import StringLabelXGBClassifier
from driftloop.blueprints.text import LeanTfidfVectorizer, TextNormalizer, text_vectorizer

SAMPLE_INPUTS = [
    "produto ótimo, chegou rápido",
    "não recomendo, péssimo",
    "Chegou antes do prazo e bem embalado. Recomendo!",
    "o produto não chegou e ninguém responde",
    "a great film, funny and moving",
    "a dull, lifeless movie",
]


def tfidf_features(
    *, char_ngrams: bool = True, max_features: int = 20_000
) -> FeatureUnion | LeanTfidfVectorizer:
    words = LeanTfidfVectorizer(
        ngram_range=(1, 2), min_df=2, max_features=max_features, sublinear_tf=True
    )
    if not char_ngrams:
        return words
    # character n-grams within words survive typos and inflections ("recomendo"/"recomendei")
    chars = LeanTfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(2, 5),
        min_df=2,
        max_features=max_features,
        sublinear_tf=True,
    )
    return FeatureUnion([("words", words), ("chars", chars)])


def text_pipeline(
    classifier: Any, *, char_ngrams: bool = True, max_features: int = 20_000
) -> Pipeline:
    return Pipeline(
        [
            ("normalize", TextNormalizer()),
            ("tfidf", tfidf_features(char_ngrams=char_ngrams, max_features=max_features)),
            ("classifier", classifier),
        ]
    )


class SentimentBlueprint(Blueprint):
    name: ClassVar[str] = "sentiment"
    task: ClassVar[str] = "text-classification"
    primary_metric: ClassVar[str] = "macro_f1"
    greater_is_better: ClassVar[bool] = True
    default_dataset: ClassVar[str] = "sentiment-offline"
    labels: ClassVar[tuple[str, ...]] = ("negative", "positive")
    drift_features: ClassVar[str] = (
        "text_vectorizer(model) TF-IDF of request texts + predicted probabilities"
    )

    def __init__(self, *, char_ngrams: bool = True, max_features: int = 20_000, n_jobs: int = 2):
        self.char_ngrams = char_ngrams
        self.max_features = max_features
        self.n_jobs = n_jobs

    def candidates(self, seed: int) -> dict[str, Pipeline]:
        def pipe(classifier, **overrides):
            options = {
                "char_ngrams": self.char_ngrams,
                "max_features": self.max_features,
            } | overrides
            return text_pipeline(classifier, **options)

        return {
            "logreg": pipe(
                LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced", random_state=seed)
            ),
            "linear_svc": pipe(
                CalibratedClassifierCV(
                    LinearSVC(C=0.5, class_weight="balanced", random_state=seed),
                    cv=3,
                    method="sigmoid",
                )
            ),
            # trees on 40k sparse columns are slow and gain nothing: words only, fewer columns
            "xgboost": pipe(
                StringLabelXGBClassifier(
                    n_estimators=100,
                    max_depth=4,
                    learning_rate=0.2,
                    random_state=seed,
                    n_jobs=self.n_jobs,
                ),
                char_ngrams=False,
                max_features=min(self.max_features, 3_000),
            ),
            "complement_nb": pipe(ComplementNB(alpha=0.3)),
        }

    def tuning_space(self, candidate: str) -> dict[str, ParamRange]:
        return {
            "logreg": {"classifier__C": ParamRange(0.05, 50.0, log=True)},
            "linear_svc": {"classifier__estimator__C": ParamRange(0.01, 10.0, log=True)},
            "complement_nb": {"classifier__alpha": ParamRange(0.01, 3.0, log=True)},
            "xgboost": {
                "classifier__learning_rate": ParamRange(0.03, 0.5, log=True),
                "classifier__max_depth": ParamRange(2, 8, integer=True),
            },
        }.get(candidate, {})

    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        if frame.empty:
            raise ValueError("cannot score a model on an empty frame")
        y_true = self.targets(frame)
        classes = np.asarray(model.classes_).astype(str)
        probabilities = np.asarray(model.predict_proba(self.features(frame)))
        y_pred = classes[np.argmax(probabilities, axis=1)]
        labels = sorted(set(classes) | set(y_true))
        metrics = {
            "macro_f1": float(
                f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
            ),
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "n_rows": float(len(frame)),
        }
        per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
        metrics |= {
            f"f1_{label}": float(value) for label, value in zip(labels, per_class, strict=True)
        }
        if set(y_true) <= set(classes) and len(set(y_true)) > 1:
            metrics["log_loss"] = float(log_loss(y_true, probabilities, labels=list(classes)))
            if len(classes) == 2:
                metrics["roc_auc"] = float(roc_auc_score(y_true == classes[1], probabilities[:, 1]))
        return metrics

    def sample_inputs(self) -> list[str]:
        return list(SAMPLE_INPUTS)

    @staticmethod
    def text_vectorizer(model: Pipeline) -> Pipeline:
        return text_vectorizer(model)
