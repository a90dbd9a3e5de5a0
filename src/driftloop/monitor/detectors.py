"""alibi-detect detectors built from the monitor config, run on one window.

alibi_detect is imported inside the functions: importing it costs ~8 s
(it pulls in transformers), which neither ``driftloop --help`` nor the
monitor's HTTP intake should pay.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from driftloop.monitor.config import DetectorSpec, MonitorConfig

# online kind -> alibi_detect.cd class (named, not imported: importing costs seconds)
ONLINE_DETECTORS = {"mmd_online": "MMDDriftOnline", "lsdd_online": "LSDDDriftOnline"}


@dataclass(frozen=True)
class DetectorResult:
    name: str
    kind: str
    features: str
    detected: bool
    score: float  # distance / test statistic (max over features for univariate tests)
    p_value: float  # min over features after correction; NaN for online detectors
    seconds: float


class DetectorSet:
    """The configured detectors, each bound to the feature group it watches."""

    def __init__(self, config: MonitorConfig, detectors: dict[str, object]):
        self.config = config
        self.detectors = detectors
        self.specs = {spec.name: spec for spec in config.detectors}

    @classmethod
    def build(
        cls,
        config: MonitorConfig,
        reference: dict[str, np.ndarray],
        *,
        categories: Mapping[str, dict[int, list[int]] | None] | None = None,
        seed: int = 0,
    ) -> DetectorSet:
        """Fit ``config``'s (resolved) detectors on the reference features.

        ``categories``: the featurizer's possible codes per column of each
        categorical group (None or absent: the codes the reference holds).
        """
        if config.detectors is None:
            raise ValueError("resolve the monitor config against the featurizer first")
        detectors = {}
        for spec in config.detectors:
            x_ref = reference[spec.features]
            if spec.max_reference and len(x_ref) > spec.max_reference:
                rows = np.random.default_rng(seed).choice(
                    len(x_ref), spec.max_reference, replace=False
                )
                x_ref = x_ref[np.sort(rows)]
            codes = (categories or {}).get(spec.features)
            detectors[spec.name] = _build_one(spec, config, x_ref, categories=codes, seed=seed)
        return cls(config, detectors)

    def run(self, features: dict[str, np.ndarray]) -> list[DetectorResult]:
        results = []
        for name, detector in self.detectors.items():
            spec = self.specs[name]
            started = time.perf_counter()
            x = features[spec.features]
            if spec.online:
                detected, score = _run_online(detector, x)
                p_value = math.nan
            else:
                data = detector.predict(x)["data"]
                detected = bool(data["is_drift"])
                score = float(np.max(np.atleast_1d(data["distance"])))
                p_value = float(np.min(np.atleast_1d(data["p_val"])))
            results.append(
                DetectorResult(
                    name=name,
                    kind=spec.kind,
                    features=spec.features,
                    detected=detected,
                    score=score,
                    p_value=p_value,
                    seconds=time.perf_counter() - started,
                )
            )
        return results

    def save(self, directory: Path) -> None:
        from alibi_detect.saving import save_detector

        directory.mkdir(parents=True, exist_ok=True)
        for name, detector in self.detectors.items():
            save_detector(detector, directory / name)

    @classmethod
    def load(cls, config: MonitorConfig, directory: Path) -> DetectorSet:
        from alibi_detect.saving import load_detector

        if config.detectors is None:
            raise ValueError("a saved drift reference lists its detectors")
        missing = [s.name for s in config.detectors if not (directory / s.name).is_dir()]
        if missing:
            raise FileNotFoundError(f"saved detectors missing in {directory}: {', '.join(missing)}")
        return cls(config, {s.name: load_detector(directory / s.name) for s in config.detectors})


def _chisquare_categories(
    x_ref: np.ndarray, categories: dict[int, list[int]] | None
) -> dict[int, list[int]]:
    """Codes per column that the reference holds (of ``categories``, where given).

    A code absent from the reference *and* a window would be an all-zero column of
    the contingency table, which scipy's chi-square rejects; alibi-detect adds the
    codes a window brings (an unseen category, a missing value) by itself.
    """
    columns = x_ref.reshape(len(x_ref), -1)
    found = {}
    for column in range(columns.shape[1]):
        present = {int(v) for v in np.unique(columns[:, column])}
        allowed = (categories or {}).get(column)
        codes = sorted(present if allowed is None else present & {int(c) for c in allowed})
        found[column] = codes or sorted(present)
    return found


def _build_one(
    spec: DetectorSpec,
    config: MonitorConfig,
    x_ref: np.ndarray,
    *,
    categories: dict[int, list[int]] | None,
    seed: int,
):
    p_val = config.detector_p_val(spec)
    if spec.kind == "ks":
        from alibi_detect.cd import KSDrift

        return KSDrift(x_ref, p_val=p_val, correction=spec.correction)
    if spec.kind == "cvm":
        from alibi_detect.cd import CVMDrift

        return CVMDrift(x_ref, p_val=p_val, correction=spec.correction)
    if spec.kind == "chisquare":
        from alibi_detect.cd import ChiSquareDrift

        return ChiSquareDrift(
            x_ref,
            p_val=p_val,
            categories_per_feature=_chisquare_categories(x_ref, categories),
            correction=spec.correction,
        )
    import torch

    torch.manual_seed(seed)
    x_ref = x_ref.astype(np.float32)
    if spec.kind == "mmd":
        from alibi_detect.cd import MMDDrift

        return MMDDrift(
            x_ref, backend="pytorch", p_val=p_val, n_permutations=spec.n_permutations, device="cpu"
        )
    if spec.kind in ONLINE_DETECTORS:
        from alibi_detect import cd

        # both online detectors take the same arguments; only the class differs
        detector_class = getattr(cd, ONLINE_DETECTORS[spec.kind])
        return detector_class(
            x_ref,
            ert=spec.ert,
            window_size=spec.online_window,
            backend="pytorch",
            n_bootstraps=spec.n_bootstraps,
            device="cpu",
            verbose=False,
        )
    raise ValueError(f"unknown detector kind {spec.kind!r}")


def _run_online(detector, x: np.ndarray) -> tuple[bool, float]:
    """Feed a window row by row; drift if the statistic crossed its threshold anywhere."""
    detected = False
    score = math.nan
    for row in x.astype(np.float32):
        data = detector.predict(row)["data"]
        score = float(data["test_stat"])
        if data["is_drift"]:
            detected = True
    if detected:
        # start the next window fresh, so a cleared drift can clear the alert
        detector.reset_state()
    return detected, score
