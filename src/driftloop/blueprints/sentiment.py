"""Review sentiment: PT-BR (Olist) first, English corpora as offline default.

Every candidate is ``TextNormalizer -> TF-IDF -> classifier``; the classifier's
``classes_`` are the string labels. Ranked by macro-F1 on the validation split
(the classes are imbalanced, so accuracy alone would flatter a majority vote).

Drift features: the monitor takes the champion's fitted featurisation,
``text_vectorizer(model)`` (texts -> TF-IDF), plus the model's predicted
probabilities; see :func:`driftloop.blueprints.text.text_vectorizer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from driftloop.blueprints.base import BOOSTING, LIGHT, Blueprint, Metric, ParamRange
from driftloop.blueprints.codec import Limits
from driftloop.blueprints.estimators import StringLabelXGBClassifier
from driftloop.blueprints.feedback import Feedback, LabelFeedback
from driftloop.blueprints.scoring import classification_scores
from driftloop.blueprints.text import LeanTfidfVectorizer, TextNormalizer, text_vectorizer
from driftloop.blueprints.text_codec import TextCodec

DEFAULT_FLOOR = 0.60

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
    task = "text-classification"
    default_dataset: ClassVar[str] = "sentiment-offline"
    labels: tuple[str, ...] = ("negative", "positive")

    def __init__(
        self, *, char_ngrams: bool = True, max_features: int = 20_000, n_jobs: int = 2, **options
    ):
        super().__init__(**options)
        self.char_ngrams = char_ngrams
        self.max_features = max_features
        self.n_jobs = n_jobs

    @property
    def default_metric(self) -> Metric:
        # the classes are imbalanced: accuracy alone would flatter a majority vote
        return Metric("macro_f1", True, floor=DEFAULT_FLOOR)

    # --- data ----------------------------------------------------------------------
    @property
    def target_column(self) -> str:
        return "label"

    def load(
        self, dataset: str | None, source: str | None, label_mapping: str | None = None
    ) -> pd.DataFrame:
        from driftloop.datasets import load_dataset

        options = {"label_mapping": label_mapping} if label_mapping else {}
        return load_dataset(dataset or self.default_dataset, source, **options)

    def prepare(self, dataset: str | None, source: str | None) -> tuple[Blueprint, str, str]:
        """The named dataset to read; ``--data`` alone means the one file connector."""
        from driftloop.datasets import dataset_info, list_datasets

        if dataset is not None:
            try:
                info = dataset_info(dataset)
            except ValueError:
                raise ValueError(
                    f"--dataset: unknown dataset {dataset!r} (known: {', '.join(list_datasets())})"
                ) from None
            if info.needs_source and not source:
                raise ValueError(
                    f"--dataset {dataset} reads a file: give it with --data PATH_OR_URL"
                )
            return self, dataset, ""
        if not source or dataset_info(self.default_dataset).needs_source:
            return self, self.default_dataset, ""
        connectors = [name for name in list_datasets() if dataset_info(name).needs_source]
        if len(connectors) != 1:
            raise ValueError(f"--data needs --dataset NAME (one of: {', '.join(connectors)})")
        return self, connectors[0], ""

    def validate(self, frame: pd.DataFrame, what: str = "dataset") -> dict:
        from driftloop.datasets import validate_labelled_text

        return validate_labelled_text(frame, self.labels, what=what)

    @property
    def class_column(self) -> str:
        return "label"

    def features(self, frame: pd.DataFrame) -> list[str]:
        return frame["text"].tolist()

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["label"].astype(str).to_numpy()

    def rows_from_feedback(self, inputs: Sequence[Any], truths: Sequence[Any]) -> pd.DataFrame:
        return pd.DataFrame({"text": [str(t) for t in inputs], "label": [str(t) for t in truths]})

    def input_example(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        return pd.DataFrame({"text": SAMPLE_INPUTS[:2]})

    # --- serving, drift, feedback --------------------------------------------------
    def codec(self, model: Any, limits: Limits | None = None) -> TextCodec:
        return TextCodec(model, limits or Limits())

    def drift_featurizer(self, model: Any, reference: pd.DataFrame):
        from driftloop.blueprints.text_drift import TextFeaturizer

        return TextFeaturizer.fit(model, self.features(reference))

    @property
    def feedback(self) -> Feedback:
        return LabelFeedback()

    def explainer(self, model: Any, background: Any = None):
        """Per-word permutation SHAP of the predicted class's probability (``text_explain``)."""
        from driftloop.blueprints.text_explain import TextExplainer

        return TextExplainer(model)

    # --- trainer -------------------------------------------------------------------
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

    def candidate_tiers(self) -> dict[str, str]:
        return {
            "logreg": LIGHT,
            "linear_svc": LIGHT,
            "complement_nb": LIGHT,
            "xgboost": BOOSTING,
        }

    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        if frame.empty:
            raise ValueError("cannot score a model on an empty frame")
        probabilities = model.predict_proba(self.features(frame))
        return classification_scores(self.targets(frame), model.classes_, probabilities)

    @staticmethod
    def text_vectorizer(model: Pipeline) -> Pipeline:
        return text_vectorizer(model)
