"""Next-day close of one price series: the seed's LSTM and its baselines, gated against
persistence.

Rows are windows (``windows.window_frame``): a day's ``window`` previous closes and its
close, id = its date. Candidates in one run: ``lstm`` (2 layers, hidden 64, scaler fitted
on training windows only), ``lstm_window_scaled`` (the same network on windows divided by
their last close; not the seed's), ``persistence``, ``random_walk_drift``, statsforecast's
``auto_ets`` and ``auto_arima`` (on log closes), ``lagged_returns_ridge`` and
``lagged_returns_boosted``. Ranked by MASE against persistence (lower is better) with a
ceiling of 1: persistence scores exactly 1, so a model that does not beat it cannot be
promoted over it. ``backtest`` is the honest temporal evaluation (``backtest.py``).

Options (``BlueprintSpec``; defaults sized for a loaded 2-core CPU): ``window`` (60),
``max_days`` (most recent days kept, 2000; 0: all), ``epochs`` (10), ``hidden_size``
(64), ``learning_rate`` (1e-3), ``max_seconds`` (120, cap of one LSTM fit),
``test_days`` / ``val_days`` (250 each: the time split, gaps of one window),
``date_column`` / ``value_column`` (a CSV's columns; found when not given), ``dm_alpha``
(unset: off; e.g. 0.05: the served model must also beat persistence by a one-sided
Diebold-Mariano test at that level on the test days).

Persistence serves when the chosen model does not beat it on the test period
(``fallback``): the evaluate step registers persistence in its place and the version's
``driftloop.fallback.reason`` tag says so, with the chosen model's MASE and DM p-value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from driftloop.blueprints.base import (
    LIGHT,
    Blueprint,
    Fallback,
    Metric,
    ParamChoice,
    ParamRange,
)
from driftloop.blueprints.codec import Limits
from driftloop.blueprints.forecast.backtest import (
    PERSISTENCE,
    BacktestReport,
    run_backtest,
    score_frame,
)
from driftloop.blueprints.forecast.codec import INPUT, PriceCodec
from driftloop.blueprints.forecast.drift import PriceFeaturizer
from driftloop.blueprints.forecast.feedback import PriceFeedback
from driftloop.blueprints.forecast.lstm import LSTMForecaster
from driftloop.blueprints.forecast.models import (
    LaggedReturnsBoostedForecaster,
    LaggedReturnsForecaster,
    PersistenceForecaster,
    RandomWalkDriftForecaster,
    StatsForecastForecaster,
)
from driftloop.blueprints.forecast.windows import price_columns, window_frame
from driftloop.datasets.errors import DatasetValidationError
from driftloop.datasets.prices import CLOSE, DATE, SHIPPED
from driftloop.training.split_scheme import TimeSplitScheme

PRICES = "prices"  # a CSV given with --data
HELD_OUT_DAYS = 250  # test days, and validation days, by default (the issue's >= 250 test days)
# a short series' test and validation periods are shortened, never below this many days each
MIN_HELD_OUT_DAYS = 30
NUMBER_OPTIONS = {"window", "max_days", "epochs", "hidden_size", "learning_rate", "max_seconds",
                  "test_days", "val_days"}  # fmt: skip
# options that are not sizes: a CSV's columns, the series' name, the shared metric options
OTHER_OPTIONS = {"date_column", "value_column", "series", "metric", "floor", "dm_alpha"}


def _number(option: str, value: Any, kind: type) -> Any:
    """An option as ``kind``; a value that is not one is an error naming the option."""
    try:
        number = kind(value)
        if kind is int and number != float(value):
            raise ValueError
        return number
    except (TypeError, ValueError):
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"--param {option}: expected {what}, got {value!r}") from None


class ForecastBlueprint(Blueprint):
    name: ClassVar[str] = "forecast"
    task = "price-forecasting"
    default_dataset: ClassVar[str] = "msft"

    def __init__(
        self,
        *,
        window: int = 60,
        max_days: int = 2000,
        epochs: int = 10,
        hidden_size: int = 64,
        learning_rate: float = 1e-3,
        max_seconds: float = 120.0,
        test_days: int | None = None,
        val_days: int | None = None,
        **options: Any,
    ) -> None:
        unknown = sorted(set(options) - OTHER_OPTIONS)
        if unknown:
            raise ValueError(
                f"--param {unknown[0]}: not a forecast option (options: "
                f"{', '.join(sorted(NUMBER_OPTIONS) + sorted(OTHER_OPTIONS))})"
            )
        super().__init__(**options)
        self.window = _number("window", window, int)
        self.max_days = _number("max_days", max_days, int)
        self.epochs = _number("epochs", epochs, int)
        self.hidden_size = _number("hidden_size", hidden_size, int)
        self.learning_rate = _number("learning_rate", learning_rate, float)
        self.max_seconds = _number("max_seconds", max_seconds, float)
        # 250 each unless given; a short CSV's are shortened in ``prepare`` when not given
        self.sizes_given = test_days is not None or val_days is not None
        self.test_days = _number(
            "test_days", HELD_OUT_DAYS if test_days is None else test_days, int
        )
        self.val_days = _number("val_days", HELD_OUT_DAYS if val_days is None else val_days, int)
        for option, value in (("window", self.window), ("epochs", self.epochs),
                              ("hidden_size", self.hidden_size), ("test_days", self.test_days),
                              ("val_days", self.val_days)):  # fmt: skip
            if value < 1:
                raise ValueError(f"{option}: must be a positive number, got {value}")
        if self.window < 3:
            raise ValueError(f"window: needs at least 3 closes, got {self.window}")
        self.dm_alpha: float | None = None
        if self.options.get("dm_alpha") is not None:
            self.dm_alpha = _number("dm_alpha", self.options["dm_alpha"], float)
            if not 0.0 < self.dm_alpha < 1.0:
                raise ValueError(f"--param dm_alpha: must be between 0 and 1, got {self.dm_alpha}")

    @property
    def spec(self):
        from driftloop.blueprints.spec import BlueprintSpec

        sized = {"window": self.window, "max_days": self.max_days, "epochs": self.epochs,
                 "hidden_size": self.hidden_size, "learning_rate": self.learning_rate,
                 "max_seconds": self.max_seconds, "test_days": self.test_days,
                 "val_days": self.val_days}  # fmt: skip
        return BlueprintSpec(self.name, sized | dict(self.options))

    @property
    def default_metric(self) -> Metric:
        # persistence scores exactly 1: the ceiling lets only a model that beats it (or it) pass
        return Metric("mase", greater_is_better=False, floor=1.0)

    # --- data ----------------------------------------------------------------------
    @property
    def target_column(self) -> str:
        return CLOSE

    @property
    def time_column(self) -> str | None:
        return DATE

    def split_scheme(self, seed: int) -> TimeSplitScheme:
        """The last ``test_days`` forecast days are test, the ``val_days`` before them
        validation, with a gap of one window between the splits: no validation or test
        window holds a day any model trained on as a target."""
        return TimeSplitScheme(DATE, test=self.test_days, val=self.val_days, gap=self.window)

    def prepare(self, dataset: str | None, source: str | None) -> tuple[Blueprint, str, str]:
        if source:
            if dataset not in (None, PRICES):
                raise ValueError("--dataset: drop it with --data (a CSV is its own series)")
            # checked here, before a run: bad dates or prices are one line naming the column
            days = len(self.series(None, source))
            needed = self.window + self.test_days + self.val_days + 2 * self.window + 1
            note = f"series from {source}: {days} days, window {self.window}"
            # a third of the forecast days left after the gaps each to train, val and test
            share = (days - 3 * self.window) // 3
            if days < needed and not self.sizes_given and share >= MIN_HELD_OUT_DAYS:
                shorter = type(self)(**(self.spec.options | {"test_days": share,
                                                              "val_days": share}))  # fmt: skip
                return (
                    shorter,
                    PRICES,
                    (
                        f"{note}; too short for {self.test_days} test + {self.val_days} validation "
                        f"days ({needed} days needed): {share} each"
                    ),
                )
            if days < needed:
                raise ValueError(
                    f"--data: {source} has {days} days; a window of {self.window}, "
                    f"{self.test_days} test and {self.val_days} validation days with gaps of one "
                    f"window need {needed} (fewer: --param test_days=N --param val_days=N)"
                )
            return self, PRICES, note
        if dataset is not None and dataset not in SHIPPED:
            raise ValueError(
                f"--dataset: unknown series {dataset!r} (shipped: {', '.join(SHIPPED)})"
            )
        return self, dataset or self.default_dataset, f"window {self.window}, {self.epochs} epochs"

    def series(self, dataset: str | None, source: str | None) -> pd.DataFrame:
        """The checked ``date``/``close`` series, its most recent ``max_days`` days."""
        from driftloop.datasets.prices import read_price_csv, shipped_series

        if source:
            series = read_price_csv(
                source, self.options.get("date_column"), self.options.get("value_column")
            )
        else:
            series = shipped_series(dataset or self.default_dataset)
        return series.tail(self.max_days).reset_index(drop=True) if self.max_days else series

    def load(
        self, dataset: str | None, source: str | None, label_mapping: str | None = None
    ) -> pd.DataFrame:
        if label_mapping:
            raise ValueError("--label-mapping: a price series has no labels")
        return window_frame(self.series(dataset, source), self.window)

    def validate(self, frame: pd.DataFrame, what: str = "dataset") -> dict:
        needed = [DATE, *price_columns(self.window), CLOSE]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DatasetValidationError(
                f"{what}: lacks column(s) {', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                + f" (window {self.window})"
            )
        values = frame[needed[1:]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            rows = int(bad.any(axis=1).sum())
            raise DatasetValidationError(
                f"{what}: {rows} of {len(frame)} rows have a missing or non-positive price",
                {CLOSE: f"{rows} rows"},
            )
        return {"rows": int(len(frame)), "window": self.window,
                "first": str(frame[DATE].min()), "last": str(frame[DATE].max())}  # fmt: skip

    def features(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[price_columns(self.window)].to_numpy(dtype=float)

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[CLOSE].to_numpy(dtype=float)

    def rows_from_feedback(self, inputs: Sequence[Any], truths: Sequence[Any]) -> pd.DataFrame:
        windows = np.array([list(map(float, s[INPUT])) for s in inputs], dtype=float)
        frame = pd.DataFrame(windows.reshape(len(inputs), self.window),
                             columns=price_columns(self.window))  # fmt: skip
        # the day the window forecast, when the request named it (feedback by observation);
        # a row without one cannot be placed in time and the time split leaves it out
        frame.insert(0, DATE, [str(s.get(DATE) or "") for s in inputs])
        # a dated row's id is its date, as in ``window_frame``: the observed close of a day
        # the training data already holds replaces that day's row instead of repeating it
        # (``merge_feedback``); an undated row ("") keeps its request id
        frame.insert(0, self.id_column, frame[DATE])
        frame[CLOSE] = [float(t) for t in truths]
        return frame

    def input_example(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """Two requests as the wire has them: a ``last_prices`` list per row."""
        if frame is not None and len(frame):
            windows = self.features(frame.tail(2))
        else:
            windows = np.tile(np.linspace(100.0, 101.0, self.window), (2, 1))
        return pd.DataFrame({INPUT: [list(map(float, row)) for row in windows]})

    # --- trainer -------------------------------------------------------------------
    def candidates(self, seed: int) -> dict[str, Any]:
        lstm = {
            "hidden_size": self.hidden_size,
            "learning_rate": self.learning_rate,
            "epochs": self.epochs,
            "max_seconds": self.max_seconds,
            "random_state": seed,
        }
        # persistence first: a candidate within the validation tie tolerance of the best loses
        # to the earliest declared (``pick_winner``), so a model must beat persistence by more
        # than the validation days can resolve to be chosen at all
        return {
            "persistence": PersistenceForecaster(),
            "random_walk_drift": RandomWalkDriftForecaster(),
            "auto_ets": StatsForecastForecaster("auto_ets"),
            "auto_arima": StatsForecastForecaster("auto_arima"),
            "lagged_returns_ridge": LaggedReturnsForecaster(),
            "lagged_returns_boosted": LaggedReturnsBoostedForecaster(random_state=seed),
            "lstm": LSTMForecaster(**lstm),  # the seed's: 2 layers, min-max scaler on train
            # not the seed's: relative windows, to show what its global scaler costs
            "lstm_window_scaled": LSTMForecaster(**lstm, scaling="window"),
        }  # fmt: skip

    def candidate_tiers(self) -> dict[str, str]:
        return dict.fromkeys(self.candidates(0), LIGHT)

    def tuning_space(self, candidate: str) -> dict[str, ParamRange | ParamChoice]:
        return {
            "lstm": {
                "learning_rate": ParamRange(1e-4, 1e-2, log=True),
                "hidden_size": ParamChoice((32, 64, 128)),
            },
            "lstm_window_scaled": {
                "learning_rate": ParamRange(1e-4, 1e-2, log=True),
                "hidden_size": ParamChoice((32, 64, 128)),
            },
            "lagged_returns_ridge": {
                "alpha": ParamRange(1e-3, 100.0, log=True),
                "lags": ParamRange(2, self.window - 1, integer=True),
            },
            "lagged_returns_boosted": {
                "learning_rate": ParamRange(0.01, 0.3, log=True),
                "max_depth": ParamRange(2, 6, integer=True),
                "lags": ParamRange(2, self.window - 1, integer=True),
            },
        }.get(candidate, {})

    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        if frame.empty:
            raise ValueError("cannot score a model on an empty frame")
        return score_frame(model, frame, self.window)

    def fallback(
        self, model: Any, test: pd.DataFrame, metrics: dict[str, float]
    ) -> Fallback | None:
        """Persistence, when ``model`` does not beat it on the test period: MASE against
        persistence not below 1, or (with ``dm_alpha``) a one-sided Diebold-Mariano
        p-value not below ``dm_alpha``. The acceptance's "MASE < 1, or is persistence"."""
        if isinstance(model, PersistenceForecaster):
            return None
        mase, pvalue = float(metrics["mase"]), float(metrics["dm_pvalue"])
        beats = mase < 1.0 and (self.dm_alpha is None or pvalue < self.dm_alpha)
        if beats:
            return None
        kind = getattr(model, "kind", type(model).__name__)
        needs = "MASE < 1" if mase >= 1.0 else f"DM p < {self.dm_alpha:g}"
        persistence = PersistenceForecaster()
        # the chosen model's training reference (drift) and window: persistence has no
        # parameters, so it stands for the same training period
        persistence.window_ = model.window_
        persistence.reference_ = model.reference_
        return Fallback(
            PERSISTENCE,
            persistence,
            f"no candidate beat persistence on the test period ({len(test)} days): "
            f"{kind} has MASE {mase:.4f}, DM p={pvalue:.3g} (needs {needs}); persistence serves",
        )

    def backtest(self, frame: pd.DataFrame, **kwargs: Any) -> BacktestReport:
        """Every candidate on a temporal split with gaps, gated (see ``backtest.py``)."""
        kwargs = {"test_days": self.test_days, "val_days": self.val_days} | kwargs
        return run_backtest(frame, self.candidates(0), self.window, **kwargs)

    # --- serving, drift, feedback --------------------------------------------------
    def codec(self, model: Any, limits: Limits | None = None) -> PriceCodec:
        return PriceCodec(model, limits or Limits(), self.window)

    def drift_featurizer(self, model: Any, reference: pd.DataFrame) -> PriceFeaturizer:
        return PriceFeaturizer()

    @property
    def feedback(self) -> PriceFeedback:
        return PriceFeedback()
