"""Estimators that make third-party models speak sklearn with string labels."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_is_fitted


class StringLabelXGBClassifier(ClassifierMixin, BaseEstimator):
    """xgboost.XGBClassifier whose ``classes_`` are the original (string) labels.

    XGBoost only accepts labels 0..k-1; a model whose ``classes_`` were integers
    would leak that encoding into the predictor's responses.
    """

    def __init__(
        self,
        n_estimators: int = 100,
        max_depth: int = 6,
        learning_rate: float = 0.3,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        reg_lambda: float = 1.0,
        random_state: int | None = None,
        n_jobs: int = 2,
    ):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y, sample_weight=None):
        from xgboost import XGBClassifier  # import cost only for those who train it

        self._encoder = LabelEncoder().fit(np.asarray(y))
        self.classes_ = self._encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"need at least two classes to train, got {list(self.classes_)}")
        self.booster_ = XGBClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            tree_method="hist",
            eval_metric="logloss" if len(self.classes_) == 2 else "mlogloss",
        )
        self.booster_.fit(X, self._encoder.transform(np.asarray(y)), sample_weight=sample_weight)
        return self

    def fitted_rounds(self) -> int:
        """Boosting rounds of the fitted booster (``training.continuation``)."""
        check_is_fitted(self, "booster_")
        return int(self.booster_.get_booster().num_boosted_rounds())

    def continue_fit(self, X, y, rounds: int) -> StringLabelXGBClassifier:
        """``rounds`` more boosting rounds on ``X``/``y``, the fitted ones kept (a warm start
        from a registered version, ``training.continuation``). ``y`` must hold the fitted
        classes: their codes are the booster's outputs."""
        check_is_fitted(self, "booster_")
        labels = np.asarray(y)
        unknown = sorted(set(labels.astype(str)) - set(self.classes_.astype(str)))
        if unknown:
            raise ValueError(f"classes the fitted model does not know: {unknown[:10]}")
        booster = self.booster_.get_booster()
        grown = clone(self.booster_).set_params(n_estimators=rounds)
        grown.fit(X, self._encoder.transform(labels.astype(self.classes_.dtype)), xgb_model=booster)
        self.booster_ = grown
        return self

    def predict_proba(self, X, iteration_range: tuple[int, int] | None = None) -> np.ndarray:
        """``iteration_range`` (XGBoost's): predict with those boosting rounds only."""
        check_is_fitted(self, "booster_")
        return self.booster_.predict_proba(X, iteration_range=iteration_range)

    def predict(self, X, iteration_range: tuple[int, int] | None = None) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X, iteration_range), axis=1)]
