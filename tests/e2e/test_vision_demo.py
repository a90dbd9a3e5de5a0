"""``driftloop demo vision --quick``: Fashion-MNIST photos, then negatives, and the loop closes.

The demo run is a real subprocess (training pipeline through kfp.local, MLflow
server, predictor, monitor, trigger, Prometheus + Alertmanager when installed,
retraining pipeline, gate, promotion, predictor reload); the assertions read
its JSON report, its registry and its trigger ledger (``demo_runs``' helpers).
The quick variant trains a width-8 CNN alone for 3 epochs on 400 photos of 4
classes (measured 2026-11-30 at load ~19 on 2 cores: 870 s in all, v1 at 0.943,
0.12 live on the negatives, v2 promoted at 0.988 vs the re-scored champion 0.643,
275 s from drift onset to v2 served).
"""

from __future__ import annotations

import numpy as np

from driftloop.stack.services import alerting_binaries
from tests.e2e.demo_runs import DEMO_MARKS, assert_loop_closed, run_demo


def test_vision_traffic_inverts_the_photos_and_keeps_the_truth(tmp_path):
    from driftloop.datasets.images import load_image_folder
    from driftloop.demo.sources import traffic_source
    from driftloop.demo.vision_traffic import CLASSES, QUICK, invert, select

    source = traffic_source("vision")
    data = source.prepare(tmp_path, quick=True, seed=42)
    photos = load_image_folder(data.train_source)
    assert len(photos) == data.train_rows == 4 * QUICK.train_per_class
    assert set(photos["label"]) == set(CLASSES)
    assert len(data.baseline) == QUICK.baseline_requests
    assert len(data.shifted) == QUICK.shifted_requests
    (train, _), (held_out, _), (later, later_labels) = select(QUICK, 42)
    # disjoint slices: no photo v1 trained on comes back as traffic
    seen = {image.tobytes() for image in train}
    assert not seen & {image.tobytes() for image in np.concatenate([held_out, later])}
    # the shift is the negative of each photo; its label is the photo's own
    np.testing.assert_array_equal(invert(invert(later)), later)
    assert [example.truth for example in data.shifted] == [str(label) for label in later_labels]
    assert data.shifted[0].instance.keys() == {"b64"}
    plan = source.plan(quick=True)
    assert plan.dataset == "images" and plan.monitor_window == QUICK.monitor_window


def demo_test(test):
    """``test`` with the marks of a demo run (e2e, slow, integration, a longer timeout)."""
    for mark in DEMO_MARKS:
        test = mark(test)
    return test


@demo_test
def test_vision_demo_closes_the_loop_on_inverted_photos(tmp_path):
    alerting = "prometheus" if alerting_binaries() is not None else "evaluator"
    extra = () if alerting == "prometheus" else ("--no-prometheus",)
    # under the pytest timeout (1200 s): on 2 loaded cores the whole run took 870 s
    run = run_demo(tmp_path / "vision", *extra, blueprint="vision", timeout_s=1150)
    print(f"vision demo: {run.seconds:.0f} s wall (machine load affects this a lot)")
    assert_loop_closed(run, alerting, model="vision")
    report = run.report
    assert report["metric"] == "accuracy"
    traffic = report["traffic"]
    # v1 answers the negatives worse than the photos it was trained for; v2 does better
    assert traffic["shifted"]["live_score"] < traffic["in_domain"]["live_score"]
    assert "monitor: drift detected" in run.stdout
