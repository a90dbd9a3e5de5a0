"""``driftloop report drift``: the champion's drift reference against recent traffic, as one page.

The recent traffic is what the predictor stored (the prediction store's input
summaries), turned back into model input through the blueprint contract
(``rows_from_feedback`` then ``features``), featurised and tested exactly as the
monitor does (the version's own drift reference: featurizer + fitted detectors),
window by window. The features that moved are the univariate detectors' own
per-feature p-values over all recent rows. The page is self-contained: inline CSS
and inline SVG plots, no script, no external file.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from driftloop.lineage import TAG_DRIFT_REFERENCE


class DriftReportError(ValueError):
    """Nothing to report on; the message names the argument or what is missing."""


@dataclass
class DriftReport:
    model: str
    version: str
    window: int
    rows: int
    thresholds: dict[str, float]
    windows: list[dict[str, Any]] = field(default_factory=list)  # per window: detector results
    moved: list[dict[str, Any]] = field(default_factory=list)  # per feature, most moved first
    generated_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds")
    )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def feature_names(featurizer: Any, group: str, width: int) -> list[str]:
    """Column names of a group where the featurizer knows them, else ``group[i]``."""
    names = getattr(featurizer, "feature_names", None)
    found = names(group) if callable(names) else None
    if found and len(found) == width:
        return list(found)
    return [f"{group}[{i}]" for i in range(width)]


def build_report(
    model: str,
    version_info: Any,
    predictions: list[dict[str, Any]],
    *,
    window: int,
    tracking_uri: str,
) -> DriftReport:
    from driftloop.monitor.reference import load_reference

    uri = version_info.tags.get(TAG_DRIFT_REFERENCE)
    if not uri:
        raise DriftReportError(
            f"NAME: {model} version {version_info.version} has no drift reference "
            f"({TAG_DRIFT_REFERENCE}); the training pipeline fits one after the gate"
        )
    if len(predictions) < window:
        raise DriftReportError(
            f"NAME: {len(predictions)} stored predictions of {model} version "
            f"{version_info.version}; a window needs {window} (--window)"
        )
    bundle = load_reference(uri, tracking_uri=tracking_uri)
    blueprint = version_info.blueprint()
    inputs = [item for p in predictions for item in p["inputs"]]
    outputs = [item for p in predictions for item in p["outputs"]]
    rows = blueprint.rows_from_feedback(inputs, [None] * len(inputs))
    features = bundle.featurizer.transform(blueprint.features(rows), outputs)
    count = len(inputs)
    specs = {spec.name: spec for spec in bundle.config.detectors or []}
    report = DriftReport(
        model,
        str(version_info.version),
        window,
        count,
        thresholds={name: bundle.config.detector_p_val(spec) for name, spec in specs.items()},
    )
    for start in range(0, count - window + 1, window):
        part = {group: values[start : start + window] for group, values in features.items()}
        results = bundle.detectors.run(part)
        report.windows.append(
            {
                "first_row": start,
                "rows": window,
                "drift": any(r.detected for r in results),
                "detectors": {
                    r.name: {
                        "detected": r.detected,
                        "p_value": None if math.isnan(r.p_value) else r.p_value,
                        "score": r.score,
                        "features": r.features,
                    }
                    for r in results
                },
            }
        )
    report.moved = moved_features(bundle, features)
    return report


def moved_features(bundle: Any, features: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per feature of each univariate detector: p-value and distance on all recent rows."""
    moved = []
    for name, detector in bundle.detectors.detectors.items():
        spec = bundle.detectors.specs[name]
        if spec.online:
            continue
        x = features[spec.features]
        data = detector.predict(x)["data"]
        p_values = np.atleast_1d(data["p_val"])
        distances = np.atleast_1d(data["distance"])
        if p_values.size <= 1:  # a multivariate test: one p-value for the whole group
            continue
        names = feature_names(bundle.featurizer, spec.features, p_values.size)
        flags, threshold = moved_mask(p_values, bundle.config.detector_p_val(spec), spec.correction)
        for column, p_value, distance, flag in zip(names, p_values, distances, flags, strict=True):
            moved.append(
                {
                    "detector": name,
                    "feature": column,
                    "p_value": float(p_value),
                    "distance": float(distance),
                    "moved": bool(flag),
                    "threshold": threshold,
                }
            )
    moved.sort(key=lambda item: (item["p_value"], -item["distance"]))
    return moved


def moved_mask(p_values: np.ndarray, q: float, correction: str) -> tuple[np.ndarray, float]:
    """Which features a univariate detector flags, and the p-value cut it used: Bonferroni
    (``q / n``) or Benjamini-Hochberg for ``fdr`` (as alibi-detect corrects them)."""
    n = p_values.size
    if correction == "fdr":
        ordered = np.sort(p_values)
        passed = ordered <= q * np.arange(1, n + 1) / n
        if passed.any():
            cut = float(ordered[passed].max())
            return p_values <= cut, cut
    return p_values < q / n, q / n


def windows_plot(report: DriftReport) -> str:
    from driftloop.console.history import ModelHistory, Series
    from driftloop.console.plots import drift_plot

    series: dict[str, Series] = {}
    for index, window in enumerate(report.windows):
        at = datetime.fromtimestamp(index * 60, UTC)  # windows are numbered, not timed
        for name, result in window["detectors"].items():
            if result["p_value"] is not None:
                series.setdefault(name, Series(name)).add(at, result["p_value"])
    history = ModelHistory("store", drift=list(series.values()), thresholds=report.thresholds)
    return drift_plot(history, [], f"{report.model} v{report.version} per window")


def moved_plot(report: DriftReport, top: int = 15) -> str | None:
    from driftloop.console.plots import _figure, _svg

    shown = report.moved[:top]
    if not shown:
        return None
    figure, axes = _figure("features by -log10 p-value (red: moved past its detector's cut)")
    labels = [f"{m['feature']} ({m['detector']})" for m in shown][::-1]
    values = [-math.log10(max(m["p_value"], 1e-12)) for m in shown][::-1]
    colours = ["#d62728" if m["moved"] else "#1f77b4" for m in shown][::-1]
    axes.barh(labels, values, color=colours)
    axes.set_xlabel("-log10 p-value")
    figure.set_size_inches(8.0, 1.2 + 0.3 * len(shown))
    return _svg(figure)


def render_html(report: DriftReport) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("driftloop.console", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    return env.get_template("drift_report.html").render(
        report=report,
        windows_svg=windows_plot(report),
        moved_svg=moved_plot(report),
        escape=html.escape,
    )
