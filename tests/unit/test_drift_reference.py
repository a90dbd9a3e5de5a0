"""Reference bundles and the windowed engine, with real alibi-detect detectors."""

import math

import numpy as np
import pandas as pd
import pytest

from driftloop.blueprints.sentiment import SentimentBlueprint
from driftloop.monitor.config import MonitorConfig, mmd_detector, parse_config
from driftloop.monitor.engine import DriftEngine
from driftloop.monitor.events import Sample
from driftloop.monitor.metrics import MonitorMetrics
from driftloop.monitor.reference import (
    ReferenceBundle,
    ReferenceError,
    build_reference,
    read_reference_frame,
)
from tests.unit.conftest_monitor import corpus, small_text_model, tweets

pytestmark = pytest.mark.slow  # importing alibi-detect alone takes ~8 s

BLUEPRINT = SentimentBlueprint()
# the text defaults plus the optional MMD one, so its torch save/load is covered too
CONFIG = parse_config(
    {
        "detectors": [
            {"name": "ks-projection", "kind": "ks", "features": "projection", "correction": "fdr"},
            {"name": "ks-text-stats", "kind": "ks", "features": "text_stats"},
            {"name": "chi2-prediction", "kind": "chisquare", "features": "prediction"},
            mmd_detector("projection").model_dump(),
        ]
    }
)


def texts_frame(texts):
    return pd.DataFrame({"text": list(texts), "label": "positive"})


def answers(labels):
    return [{"label": str(label)} for label in labels]


@pytest.fixture(scope="module")
def model():
    return small_text_model(n_train=1500)


@pytest.fixture(scope="module")
def bundle(model):
    texts = corpus().iloc[2000:2600]["text"].tolist()
    return build_reference(
        BLUEPRINT, model, texts_frame(texts), config=CONFIG, seed=0, meta={"version": "1"}
    )


def window_samples(model, texts):
    return [
        Sample([t], {"label": str(label)})
        for t, label in zip(texts, model.predict(texts), strict=True)
    ]


def test_bundle_records_what_it_was_fitted_on(bundle):
    assert bundle.meta["n_rows"] == 600 and bundle.meta["n_reference"] == 300
    assert bundle.meta["blueprint"] == "sentiment"
    assert set(bundle.meta["groups"]) == {"projection", "text_stats", "prediction"}
    assert set(bundle.meta["predicted_share"]) == {"negative", "positive"}
    assert sum(bundle.meta["predicted_share"].values()) == pytest.approx(1.0)
    assert set(bundle.detectors.detectors) == {d.name for d in CONFIG.detectors}


def test_saved_bundle_loads_and_gives_the_same_answers(model, bundle, tmp_path):
    bundle.save(tmp_path / "ref")
    assert (tmp_path / "ref" / "detectors" / "mmd-projection" / "config.toml").is_file()
    loaded = ReferenceBundle.load(tmp_path / "ref")
    texts = corpus().iloc[3000:3100]["text"].tolist()
    labels = answers(model.predict(texts))
    ks_before = {
        r.name: r.p_value for r in bundle.detectors.run(bundle.featurizer.transform(texts, labels))
    }
    ks_after = {
        r.name: r.p_value for r in loaded.detectors.run(loaded.featurizer.transform(texts, labels))
    }
    for name in ("ks-projection", "ks-text-stats", "chi2-prediction"):
        assert ks_after[name] == pytest.approx(ks_before[name])
    assert 0 <= ks_after["mmd-projection"] <= 1  # a permutation test: equal only up to sampling


def test_broken_bundle_directory_is_reported(tmp_path):
    (tmp_path / "ref").mkdir()
    with pytest.raises(FileNotFoundError, match="featurizer.joblib"):
        ReferenceBundle.load(tmp_path / "ref")


def test_reference_needs_enough_rows(model):
    with pytest.raises(ReferenceError, match="at least 40"):
        build_reference(BLUEPRINT, model, texts_frame(["good"] * 10))


def test_reference_file_errors_name_the_problem(tmp_path):
    with pytest.raises(ReferenceError, match="not found"):
        read_reference_frame(tmp_path / "none.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ReferenceError, match="cannot read"):
        read_reference_frame(tmp_path / "bad.parquet")
    pd.DataFrame({"text": ["ok", "fine"]}).to_parquet(tmp_path / "t.parquet")
    assert read_reference_frame(tmp_path / "t.parquet")["text"].tolist() == ["ok", "fine"]


def test_a_config_naming_groups_the_model_lacks_is_refused(model):
    config = parse_config({"detectors": [{"name": "x", "kind": "ks", "features": "numeric"}]})
    with pytest.raises(ReferenceError, match="'numeric' is not a feature group.*projection"):
        build_reference(BLUEPRINT, model, texts_frame(corpus().iloc[:60]["text"]), config=config)
    config = parse_config({"detectors": [{"name": "x", "kind": "ks", "features": "prediction"}]})
    with pytest.raises(ReferenceError, match="categorical: use kind chisquare"):
        build_reference(BLUEPRINT, model, texts_frame(corpus().iloc[:60]["text"]), config=config)


def test_without_detectors_the_blueprint_defaults_are_used(model):
    bundle = build_reference(
        BLUEPRINT, model, texts_frame(corpus().iloc[2000:2100]["text"]), config=MonitorConfig()
    )
    assert [d.name for d in bundle.config.detectors] == [
        "ks-projection",
        "ks-text-stats",
        "chi2-prediction",
    ]


def series(metrics: MonitorMetrics, name: str) -> dict[tuple, float]:
    found = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_engine_tests_full_windows_off_thread_and_exports_results(model, bundle):
    metrics = MonitorMetrics()
    engine = DriftEngine("sentiment", metrics, window=100)
    engine.set_reference("1", bundle)
    engine.start()
    try:
        in_domain = corpus().iloc[3000:3150]["text"].tolist()
        shifted = tweets().iloc[:100]["text"].tolist()
        assert engine.add(window_samples(model, in_domain)) == 0  # 1 window + 50 buffered
        assert (
            engine.add([Sample(["text"], {"label": "neutral"})]) == 1
        )  # not one of the model's classes
        assert engine.add(window_samples(model, shifted[:50])) == 0  # completes a mixed window
        assert engine.wait_idle(60)
        assert len(engine.reports) == 2
        assert all(r.size == 100 for r in engine.reports)
        assert engine.add(window_samples(model, tweets().iloc[100:200]["text"].tolist())) == 0
        assert engine.wait_idle(60)
        assert engine.reports[-1].drift  # a full window of tweets
    finally:
        engine.close()
    detected = series(metrics, "driftloop_drift_detected")
    assert len(detected) == len(CONFIG.detectors)
    key = (
        ("detector", "ks-text-stats"),
        ("features", "text_stats"),
        ("model", "sentiment"),
        ("version", "1"),
    )
    assert detected[key] == 1
    assert (
        series(metrics, "driftloop_monitor_windows_total")[
            (("model", "sentiment"), ("version", "1"))
        ]
        == 3
    )
    p_values = series(metrics, "driftloop_drift_p_value")
    assert all(0 <= v <= 1 for v in p_values.values() if not math.isnan(v))


def test_engine_switches_reference_and_forgets_the_old_version(model, bundle):
    metrics = MonitorMetrics()
    engine = DriftEngine("sentiment", metrics, window=50)
    engine.set_reference("1", bundle)
    engine.start()
    try:
        engine.add(window_samples(model, corpus().iloc[3000:3050]["text"].tolist()))
        assert engine.wait_idle(60)
        engine.add(window_samples(model, corpus().iloc[3050:3080]["text"].tolist()))  # partial
        engine.set_reference("2", None)
        assert engine.add(window_samples(model, corpus().iloc[3080:3200]["text"].tolist())) == 0
        assert engine.wait_idle(10)
    finally:
        engine.close()
    assert len(engine.reports) == 1
    assert series(metrics, "driftloop_drift_detected") == {}
    loaded = series(metrics, "driftloop_monitor_reference_loaded")
    assert loaded == {(("model", "sentiment"), ("version", "2")): 0.0}


def test_engine_rejects_a_silly_window():
    with pytest.raises(ValueError):
        DriftEngine("m", MonitorMetrics(), window=1)


@pytest.mark.parametrize("kind", ["lsdd_online", "mmd_online"])
def test_online_detector_can_be_configured(model, kind):
    from driftloop.monitor.config import parse_config

    config = parse_config(
        {
            "detectors": [
                {
                    "name": "online",
                    "kind": kind,
                    "features": "projection",
                    "ert": 50,
                    "online_window": 10,
                    "n_bootstraps": 200,
                },
            ]
        }
    )
    bundle = build_reference(
        BLUEPRINT, model, texts_frame(corpus().iloc[2000:2300]["text"]), config=config, seed=0
    )
    texts = tweets().iloc[:100]["text"].tolist()
    features = bundle.featurizer.transform(texts, answers(model.predict(texts)))
    (result,) = bundle.detectors.run(features)
    assert result.kind == kind
    assert result.detected and math.isnan(result.p_value) and np.isfinite(result.score)


def _split_frame(start: int, rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"id": [f"r{i}" for i in range(start, start + rows)], "x": range(start, start + rows)}
    )


def test_a_reference_leaves_out_the_validation_rows_a_fold_search_refit_on():
    from driftloop.lineage import TAG_VALIDATION, split_fingerprint_tag
    from driftloop.monitor.reference import MIN_ROWS, _unseen_parts
    from driftloop.training.splits import fingerprint

    val, test = _split_frame(0, 30), _split_frame(100, MIN_ROWS)
    tags = {split_fingerprint_tag("val"): fingerprint(val), TAG_VALIDATION: "stratified-kfold"}

    frames, paths = _unseen_parts([val, test], ["val", "test"], tags)
    assert paths == ["test"] and frames[0] is test

    # a holdout search never trained on validation rows: both parts stay
    holdout = tags | {TAG_VALIDATION: "holdout"}
    assert _unseen_parts([val, test], ["val", "test"], holdout)[1] == ["val", "test"]
    # too few unseen rows for a reference: kept (with a warning) rather than failing
    small = _split_frame(100, MIN_ROWS - 1)
    assert _unseen_parts([val, small], ["val", "test"], tags)[1] == ["val", "test"]
