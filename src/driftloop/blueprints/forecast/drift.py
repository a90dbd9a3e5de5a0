"""What the monitor compares for a price forecaster: the request windows' return statistics
(volatility, mean log return, largest move) and the predicted log return (KS)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from driftloop.blueprints.drift import DriftFeaturizer, SuggestedDetector
from driftloop.blueprints.forecast.windows import window_statistics


class PriceFeaturizer(DriftFeaturizer):
    groups = {"returns": "continuous", "prediction": "continuous"}

    def knows(self, output: dict) -> bool:
        return isinstance(output, dict) and isinstance(output.get("predicted_price"), int | float)

    def transform(self, model_input: Any, outputs: Sequence[dict]) -> dict[str, np.ndarray]:
        windows = np.asarray(model_input, dtype=float)
        stats = window_statistics(windows)
        returns = np.column_stack([stats["volatility"], stats["mean_return"],
                                   stats["max_abs_return"]])  # fmt: skip
        predicted = np.array([o["predicted_price"] for o in outputs], dtype=float)
        prediction = np.log(predicted / windows[:, -1]).reshape(-1, 1)
        return {"returns": returns.astype(np.float32), "prediction": prediction.astype(np.float32)}

    def default_detectors(self) -> list[SuggestedDetector]:
        return [
            SuggestedDetector("ks-returns", "ks", "returns", correction="fdr"),
            SuggestedDetector("ks-prediction", "ks", "prediction"),
        ]
