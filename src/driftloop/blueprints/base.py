"""The blueprint contract: the questions shared code asks a use case.

A blueprint instance is a name plus options (``BlueprintSpec``); every model
version is tagged with it, and the pipelines, gate, predictor, monitor and
trigger rebuild the instance from that tag. Shared code reaches a use case
only through these parts and never branches on its name or input type:

* data     -- rows from a source, their checks, the split scheme (``split_scheme``),
              rows from feedback
* trainer  -- candidates (whole unfitted pipelines), tuning space, MLflow flavour
* metric   -- primary metric, direction, floor, tie tolerance (``Metric``)
* codec    -- OIP tensors, v1/v2 decoding, prediction, encoding (``blueprints.codec``)
* drift    -- the feature groups the monitor compares (``blueprints.drift``)
* feedback -- what a ground truth is, and the live score from prediction/truth pairs
* explain  -- optional: per-instance contributions of the inputs (``blueprints.explain``)
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from driftloop.blueprints.scoring import GREATER_IS_BETTER
from driftloop.blueprints.spec import BlueprintSpec

if TYPE_CHECKING:
    from driftloop.blueprints.codec import Codec
    from driftloop.blueprints.drift import DriftFeaturizer
    from driftloop.blueprints.explain import Explainer
    from driftloop.blueprints.feedback import Feedback
    from driftloop.training.split_scheme import AnyScheme


@dataclass(frozen=True)
class ParamRange:
    """One tunable numeric hyperparameter (``set_params`` name) and its search range."""

    low: float
    high: float
    log: bool = False
    integer: bool = False


@dataclass(frozen=True)
class ParamChoice:
    """One tunable categorical hyperparameter and its choices."""

    choices: tuple[Any, ...]


# rows_from_feedback's optional column: the index of the truth a row was made from
FEEDBACK_SOURCE = "feedback_source"

# Cost tiers of candidates (``Blueprint.candidate_tiers``): presets pick candidates by tier.
LIGHT = "light"  # linear models, naive Bayes, small forests: seconds on thousands of rows
BOOSTING = "boosting"  # gradient boosting: better on tables, several times the cost
TIERS = (LIGHT, BOOSTING)


@dataclass(frozen=True)
class Metric:
    """How models of a blueprint are ranked and gated.

    ``floor`` is what a first model must reach (a ceiling when lower is
    better; ``None``: no absolute bound, e.g. an error whose scale is the
    data's). ``tie_tolerance`` ``None`` means one validation row's worth.
    """

    name: str
    greater_is_better: bool = True
    floor: float | None = None
    tie_tolerance: float | None = None

    @property
    def direction(self) -> str:
        return "maximize" if self.greater_is_better else "minimize"

    def better(self, score: float, than: float | None) -> bool:
        if than is None:
            return True
        return score > than if self.greater_is_better else score < than

    @property
    def worst(self) -> float:
        return -math.inf if self.greater_is_better else math.inf


@dataclass(frozen=True)
class Fallback:
    """What the evaluate step registers instead of the chosen model (``Blueprint.fallback``).

    ``model`` is fitted; ``reason`` is recorded on the run and the version (the served
    model's metadata says why it is not the candidate the search chose).
    """

    candidate: str
    model: Any
    reason: str


class Blueprint(ABC):
    name: ClassVar[str]
    task: str
    default_dataset: ClassVar[str]
    id_column: ClassVar[str] = "id"
    flavour: ClassVar[str] = "sklearn"
    # Classes a dataset must use (empty: whatever the data holds).
    labels: tuple[str, ...] = ()

    def __init__(self, **options: Any) -> None:
        self.options = {k: v for k, v in options.items() if v is not None}

    # --- identity ------------------------------------------------------------------
    @property
    def spec(self) -> BlueprintSpec:
        return BlueprintSpec(self.name, dict(self.options))

    # --- metric --------------------------------------------------------------------
    @property
    @abstractmethod
    def default_metric(self) -> Metric:
        """The metric models of this blueprint are ranked and gated by."""

    @property
    def metric(self) -> Metric:
        """``default_metric`` with the instance's ``metric`` / ``floor`` options applied."""
        base = self.default_metric
        name = self.options.get("metric", base.name)
        if name == base.name:
            floor = self.options.get("floor", base.floor)
            return replace(base, floor=None if floor is None else float(floor))
        if name not in GREATER_IS_BETTER:
            raise ValueError(
                f"metric {name!r} has no known direction; known: {', '.join(GREATER_IS_BETTER)}"
            )
        floor = self.options.get("floor")
        return Metric(name, GREATER_IS_BETTER[name], None if floor is None else float(floor))

    @property
    def primary_metric(self) -> str:
        return self.metric.name

    @property
    def greater_is_better(self) -> bool:
        return self.metric.greater_is_better

    def better(self, score: float, than: float | None) -> bool:
        return self.metric.better(score, than)

    # --- data ----------------------------------------------------------------------
    @property
    @abstractmethod
    def target_column(self) -> str:
        """The column of a training frame that holds the ground truth."""

    @abstractmethod
    def load(
        self, dataset: str | None, source: str | None, label_mapping: str | None = None
    ) -> pd.DataFrame:
        """Rows of a named dataset or a file/URL, with a unique ``id`` column."""

    def prepare(self, dataset: str | None, source: str | None) -> tuple[Blueprint, str, str]:
        """Before a run: (the instance to train, the dataset name to pass, a note for the user).

        Raise ``ValueError`` naming the option that is wrong. A blueprint whose
        options depend on the data (a table's task) resolves them here.
        """
        return self, dataset or self.default_dataset, ""

    @abstractmethod
    def validate(self, frame: pd.DataFrame, what: str = "dataset") -> dict:
        """Check a frame; raise ``DatasetValidationError`` naming columns and row counts."""

    @property
    def class_column(self) -> str | None:
        """The column of classes every split must hold (None: not a classification)."""
        return None

    def features(self, frame: pd.DataFrame) -> Any:
        """Model inputs from a training frame."""
        return frame.drop(columns=[self.id_column, self.target_column], errors="ignore")

    def targets(self, frame: pd.DataFrame) -> Any:
        return frame[self.target_column].to_numpy()

    @abstractmethod
    def rows_from_feedback(self, inputs: Sequence[Any], truths: Sequence[Any]) -> pd.DataFrame:
        """Training rows (no id) from stored input summaries and their ground truths.

        One row per truth, in order; a truth that gives several rows (a recommender's
        clicked items) says which truth each row came from in a ``FEEDBACK_SOURCE``
        column (its index in ``truths``), and the rows get ids ``<truth id>/<n>``.
        Rows with a natural key (a forecast's date) may carry it in ``id_column``
        (empty where unknown): feedback on a row the training data holds then
        replaces that row rather than adding a second one; others get request ids.
        """

    # --- trainer -------------------------------------------------------------------
    @abstractmethod
    def candidates(self, seed: int) -> dict[str, Any]:
        """name -> unfitted sklearn-compatible estimator (whole pipeline)."""

    @abstractmethod
    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        """Metrics of a fitted model on a labelled frame; includes the primary metric."""

    def tuning_space(self, candidate: str) -> dict[str, ParamRange | ParamChoice]:
        """Hyperparameters worth searching for ``candidate`` (empty: nothing to tune)."""
        return {}

    def continuation(self, model: Any, frame: pd.DataFrame, source: str = "") -> Any:
        """An unfitted candidate that continues ``model`` -- a registered version's fitted
        model (``--warm-start``) -- on the rows it is fitted on, its fitted preprocessing
        kept (``training.continuation.ContinuedModel``); ``source`` names the version.

        Raise ``training.continuation.CannotContinue`` saying why when it cannot: a learner
        that cannot be continued, rows with other columns or other classes than the model
        was fitted on. Default: read from the learner's capabilities, the model's
        ``feature_names_in_`` and ``classes_`` against ``frame``'s features and targets; a
        blueprint whose models record their inputs otherwise checks those first.
        """
        from driftloop.training.continuation import CannotContinue, continuation_of

        classes = getattr(model, "classes_", None)
        if (self.class_column is not None) != (classes is not None):
            what = "a classifier" if classes is not None else "not a classifier"
            raise CannotContinue(f"the version's model is {what}, this task's is not")
        targets = self.targets(frame)
        return continuation_of(model, self.features(frame), targets, source=source)

    def candidate_tiers(self) -> dict[str, str]:
        """Candidate name -> cost tier (``LIGHT`` or ``BOOSTING``); presets choose by tier.

        Default: every candidate is light (a blueprint that declares nothing keeps
        all its candidates in every preset).
        """
        return {}

    @property
    def time_column(self) -> str | None:
        """The column that orders rows in time (None: rows are exchangeable).

        A blueprint whose rows form a time series names it; validation then
        uses forward-chaining splits (``TimeSeriesSplit``), never shuffled folds.
        """
        return self.options.get("time_column")

    def split_scheme(self, seed: int) -> AnyScheme:
        """How the split step cuts rows into train/val/test (recorded on the version).

        Rows ordered in time (a ``time_column``) are cut by time -- train before val
        before test (``TimeSplitScheme``, 20 % / 10 %, no gap) -- so no model is scored
        on a period before one it trained on; other rows by a hash of their id. A
        blueprint whose rows reach back in time (a forecast's window) sets a gap.
        """
        from driftloop.training.split_scheme import SplitScheme, TimeSplitScheme

        if self.time_column:
            return TimeSplitScheme(column=self.time_column)
        return SplitScheme(seed=seed)

    @abstractmethod
    def input_example(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """A small model input (MLflow's input example and signature; smoke tests)."""

    # --- serving, drift, feedback --------------------------------------------------
    @abstractmethod
    def codec(self, model: Any) -> Codec:
        """Wire format of a fitted model: OIP tensors, decoding, prediction, encoding."""

    @abstractmethod
    def drift_featurizer(self, model: Any, reference: pd.DataFrame) -> DriftFeaturizer:
        """Feature groups the monitor compares, fitted on held-out rows of the champion."""

    @property
    @abstractmethod
    def feedback(self) -> Feedback:
        """What a ground truth is and how the live score is computed."""

    def fallback(
        self, model: Any, test: pd.DataFrame, metrics: dict[str, float]
    ) -> Fallback | None:
        """A model to serve instead of the chosen ``model`` when its test ``metrics`` (on
        ``test``) do not justify it -- e.g. a forecast that does not beat persistence.

        Default: None (the chosen model is registered as it is; the gate's floor decides).
        """
        return None

    def explainer(self, model: Any, background: Any = None) -> Explainer | None:
        """Per-instance explanations of a fitted model (None: this blueprint has none).

        ``background``: model inputs of held-out rows (``features`` of a frame) for an
        explainer that explains against a sample (``Explainer.uses_background``).
        """
        return None

    def __repr__(self) -> str:
        return f"<Blueprint {self.spec}: {self.task}, ranked by {self.primary_metric}>"
