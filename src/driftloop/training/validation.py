"""How a search scores a candidate: one holdout split, k folds, or forward-chaining folds.

``auto`` decides from the data: rows ordered in time (the blueprint names a
``time_column``) get ``TimeSeriesSplit`` (a model is never scored on rows
older than the ones it learnt from); fewer than ``KFOLD_BELOW_ROWS`` rows get
(stratified) k-fold, where one validation split would be too small to rank on;
more rows get the holdout, where k fits would cost k times as much for little.

With folds, the search scores over train + validation rows together and the
winner is refit on all of them. A preset that asks for it (``best``: the
final model should learn from every row it may) refits a holdout's winner on
train + validation too: strategy ``holdout-refit``, ranked on the validation
split as a holdout is, but with the validation rows no longer held out
afterwards (the drift reference leaves them out, as after folds). The test
split is never read here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from driftloop.blueprints.base import Blueprint

KFOLD_BELOW_ROWS = 1_000
HOLDOUT = "holdout"
HOLDOUT_REFIT = "holdout-refit"  # ranked on the validation split, winner refit on train + val
KFOLD = "kfold"
STRATIFIED_KFOLD = "stratified-kfold"
TIMESERIES = "timeseries"


@dataclass(frozen=True)
class ValidationChoice:
    strategy: str  # holdout | holdout-refit | kfold | stratified-kfold | timeseries
    reason: str
    folds: int = 1

    @property
    def uses_folds(self) -> bool:
        return self.strategy not in (HOLDOUT, HOLDOUT_REFIT)

    @property
    def refits_on_all(self) -> bool:
        """Whether the winner is refit on train + validation (folds, or holdout-refit)."""
        return self.strategy != HOLDOUT

    def with_refit(self) -> ValidationChoice:
        """A holdout whose winner is refit on train + validation (other strategies refit
        already)."""
        if self.strategy != HOLDOUT:
            return self
        return ValidationChoice(
            HOLDOUT_REFIT, f"{self.reason}; the winner refit on train + validation", self.folds
        )


def choose_validation(
    requested: str, blueprint: Blueprint, rows: int, *, folds: int = 5, preset: str | None = None
) -> ValidationChoice:
    """The strategy for ``rows`` train + validation rows, and why (recorded on the run).

    A holdout chosen under a preset that refits (``Preset.refit``) becomes ``holdout-refit``.
    """
    choice = _chosen(requested, blueprint, rows, folds=folds, preset=preset)
    from driftloop.training.presets import PRESETS

    if preset in PRESETS and PRESETS[preset].refit:
        return choice.with_refit()
    return choice


def _chosen(
    requested: str, blueprint: Blueprint, rows: int, *, folds: int, preset: str | None
) -> ValidationChoice:
    time_column = blueprint.time_column
    if requested == "auto":
        if time_column:
            return ValidationChoice(
                TIMESERIES,
                f"auto: rows are ordered in time by {time_column!r}, so forward-chaining folds",
                folds,
            )
        if rows < KFOLD_BELOW_ROWS:
            strategy = _kfold_kind(blueprint)
            return ValidationChoice(
                strategy,
                f"auto: {rows} train+validation rows < {KFOLD_BELOW_ROWS}, so {folds}-fold CV",
                folds,
            )
        return ValidationChoice(
            HOLDOUT, f"auto: {rows} train+validation rows >= {KFOLD_BELOW_ROWS}, so holdout"
        )
    source = f"preset {preset}" if preset else "--validation"
    if requested == HOLDOUT:
        return ValidationChoice(HOLDOUT, f"{source}: holdout (the validation split)")
    if requested == "kfold":
        return ValidationChoice(_kfold_kind(blueprint), f"{source}: {folds}-fold CV", folds)
    if requested == TIMESERIES:
        if not time_column:
            raise ValueError(
                "--validation timeseries: the rows have no time column (give --time-column)"
            )
        return ValidationChoice(
            TIMESERIES, f"{source}: forward-chaining folds by {time_column!r}", folds
        )
    raise ValueError(f"--validation: unknown strategy {requested!r}")


def _kfold_kind(blueprint: Blueprint) -> str:
    return STRATIFIED_KFOLD if blueprint.class_column is not None else KFOLD


def folds_of(
    choice: ValidationChoice,
    blueprint: Blueprint,
    train: pd.DataFrame,
    val: pd.DataFrame,
    *,
    seed: int,
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(fit rows, score rows) pairs: the holdout once, or k folds over train + validation."""
    if not choice.uses_folds:
        return [(train, val)]
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    pool = pd.concat([train, val], ignore_index=True)
    if choice.strategy == TIMESERIES:
        column = blueprint.time_column
        if column in pool.columns:  # else the rows carry their time order already (windows)
            order = pd.to_datetime(pool[column], errors="coerce", format="mixed")
            pool = pool.iloc[order.argsort(kind="stable")].reset_index(drop=True)
        splitter = TimeSeriesSplit(n_splits=choice.folds)
        indices = splitter.split(pool)
    elif choice.strategy == STRATIFIED_KFOLD:
        labels = pool[blueprint.class_column].astype(str)
        smallest = int(labels.value_counts().min())
        if smallest < choice.folds:
            raise ValueError(
                f"--validation kfold: class {labels.value_counts().idxmin()!r} has {smallest} "
                f"train+validation rows, fewer than the {choice.folds} folds"
            )
        splitter = StratifiedKFold(n_splits=choice.folds, shuffle=True, random_state=seed)
        indices = splitter.split(pool, labels)
    else:
        splitter = KFold(n_splits=choice.folds, shuffle=True, random_state=seed)
        indices = splitter.split(pool)
    return [(pool.iloc[fit], pool.iloc[score]) for fit, score in indices]


def refit_rows(choice: ValidationChoice, train: pd.DataFrame, val: pd.DataFrame) -> pd.DataFrame:
    """The rows the winner is refit on: train alone (holdout) or train + validation (folds,
    holdout-refit)."""
    if not choice.refits_on_all:
        return train
    return pd.concat([train, val], ignore_index=True)
