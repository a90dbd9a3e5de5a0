"""Fashion-MNIST on the official split: each model beside its baseline from the same run.

    python -m driftloop.blueprints.vision.benchmark [--task classification|detection]
        [--train-rows N] [--test-rows N] [--epochs N] [--threads 1]

classification: trains ``CNNClassifier`` epoch by epoch (warm start) on the first
``--train-rows`` of the 60,000 training images (default all) and scores the
10,000 test images after each epoch; then fits the ``logreg`` baseline on the
same rows.

detection: composes ``--train-rows`` canvases (default 4,000) from the training
images and ``--test-rows`` (default 1,000) from the test images (``detection_data``:
64x64, 1-3 objects), trains ``CenterNetDetector`` epoch by epoch and scores mAP50
(pycocotools) on the test canvases after each epoch; then fits the
connected-components baseline on the same canvases.

Prints one JSON object: per-epoch cumulative seconds (fit and test scoring) and
the test figure, and the baseline's seconds and figure. ``make bench`` calls
``run_classification`` and ``run_detection`` (bench/vision.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

DEFAULT_EPOCHS = {"classification": 6, "detection": 8}


def _epochs(model, X, y, epochs: int, score: Callable[[], dict], report) -> list[dict]:
    """Fits a warm-started ``model`` to 1..epochs epochs, scoring after each (cumulative s)."""
    started, per_epoch = time.perf_counter(), []
    for epoch in range(1, epochs + 1):
        model.set_params(max_iter=epoch).fit(X, y)
        per_epoch.append(
            {"epoch": epoch, "seconds": round(time.perf_counter() - started, 1), **score()}
        )
        report(per_epoch[-1])
    return per_epoch


def run_classification(
    train_rows: int = 60_000, epochs: int = 6, threads: int = 1, report=print, test_rows=None
) -> dict:
    from driftloop.blueprints import get_blueprint
    from driftloop.blueprints.vision.cnn import CNNClassifier
    from driftloop.datasets.images import fashion_mnist_arrays

    images, labels = fashion_mnist_arrays("train")
    test_images, test_labels = fashion_mnist_arrays("test")
    images, labels = images[:train_rows, ..., None], labels[:train_rows].astype(str)
    test_images, test_labels = test_images[:test_rows, ..., None], test_labels[:test_rows]
    test_labels = test_labels.astype(str)
    result: dict = {
        "task": "classification",
        "train_rows": len(labels),
        "test_rows": len(test_labels),
        "threads": threads,
    }
    cnn = CNNClassifier(max_iter=1, warm_start=True, max_seconds=None, n_threads=threads)

    def accuracy() -> dict:
        return {"test_accuracy": round(float((cnn.predict(test_images) == test_labels).mean()), 4)}

    result["cnn"] = _epochs(cnn, images, labels, epochs, accuracy, report)
    baseline = get_blueprint("vision").candidates(seed=0)["logreg"]
    started = time.perf_counter()
    baseline.fit(images, labels)
    result["logreg"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "test_accuracy": round(float((baseline.predict(test_images) == test_labels).mean()), 4),
    }
    return result


def run_detection(
    train_rows: int = 4000, epochs: int = 8, threads: int = 1, report=print, test_rows=1000
) -> dict:
    from driftloop.blueprints.vision.detection import (
        CenterNetDetector,
        ComponentsDetector,
        score_detector,
    )
    from driftloop.blueprints.vision.detection_data import OBJECTS_COLUMN, fashion_mnist_canvases
    from driftloop.datasets.images import frame_pixels

    started = time.perf_counter()
    train = fashion_mnist_canvases(train_rows, seed=0, part="train")
    test = fashion_mnist_canvases(test_rows or 1000, seed=1, part="test")
    X, y = frame_pixels(train), train[OBJECTS_COLUMN].tolist()
    X_test, y_test = frame_pixels(test), test[OBJECTS_COLUMN].tolist()
    result: dict = {
        "task": "detection",
        "train_canvases": len(train),
        "test_canvases": len(test),
        "test_objects": int(sum(len(json.loads(v)) for v in y_test)),
        "canvas": "64x64, 1-3 objects scaled 0.8-1.2",
        "compose_seconds": round(time.perf_counter() - started, 1),
        "threads": threads,
    }
    detector = CenterNetDetector(max_iter=1, warm_start=True, n_threads=threads)

    def mean_ap() -> dict:
        scores = score_detector(detector, X_test, y_test)
        return {"test_map50": scores["map50"], "test_map": scores["map"]}

    result["centernet"] = _epochs(detector, X, y, epochs, mean_ap, report)
    started = time.perf_counter()
    baseline = ComponentsDetector().fit(X, y)
    scores = score_detector(baseline, X_test, y_test)
    result["components"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "test_map50": scores["map50"],
        "test_map": scores["map"],
    }
    return result


RUNS = {"classification": run_classification, "detection": run_detection}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=list(RUNS), default="classification")
    parser.add_argument("--train-rows", type=int, help="default: 60,000 images / 4,000 canvases")
    parser.add_argument("--test-rows", type=int, help="default: 10,000 images / 1,000 canvases")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    sized = {"threads": args.threads, "epochs": args.epochs or DEFAULT_EPOCHS[args.task]}
    if args.train_rows:
        sized["train_rows"] = args.train_rows
    if args.test_rows:
        sized["test_rows"] = args.test_rows
    # progress per epoch on stderr, the result alone on stdout
    progress = lambda line: print(json.dumps(line), file=sys.stderr, flush=True)  # noqa: E731
    print(json.dumps(RUNS[args.task](report=progress, **sized)))


if __name__ == "__main__":
    main()
