"""Fashion-MNIST on the official split: the CNN beside its logistic-regression baseline.

    python -m driftloop.blueprints.vision.benchmark [--train-rows 60000] [--epochs 6]
        [--threads 1]

Trains ``CNNClassifier`` epoch by epoch (warm start) on the first ``--train-rows``
of the 60,000 training images and scores the 10,000 test images after each
epoch; then fits the ``logreg`` baseline on the same rows. Prints one JSON
object: per-epoch cumulative seconds (fit and test prediction) and test
accuracy, and the baseline's seconds and accuracy. For ``make bench`` to call.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def run(train_rows: int, epochs: int, threads: int, report=print) -> dict:
    from driftloop.blueprints import get_blueprint
    from driftloop.blueprints.vision.cnn import CNNClassifier
    from driftloop.datasets.images import fashion_mnist_arrays

    images, labels = fashion_mnist_arrays("train")
    test_images, test_labels = fashion_mnist_arrays("test")
    images, labels = images[:train_rows, ..., None], labels[:train_rows].astype(str)
    test_images, test_labels = test_images[..., None], test_labels.astype(str)
    result: dict = {"train_rows": len(labels), "test_rows": len(test_labels), "threads": threads}
    cnn = CNNClassifier(max_iter=1, warm_start=True, max_seconds=None, n_threads=threads)
    started, per_epoch = time.perf_counter(), []
    for epoch in range(1, epochs + 1):
        cnn.set_params(max_iter=epoch).fit(images, labels)
        accuracy = float((cnn.predict(test_images) == test_labels).mean())
        per_epoch.append(
            {
                "epoch": epoch,
                "seconds": round(time.perf_counter() - started, 1),
                "test_accuracy": round(accuracy, 4),
            }
        )
        report(per_epoch[-1])
    result["cnn"] = per_epoch
    baseline = get_blueprint("vision").candidates(seed=0)["logreg"]
    started = time.perf_counter()
    baseline.fit(images, labels)
    accuracy = float((baseline.predict(test_images) == test_labels).mean())
    result["logreg"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "test_accuracy": round(accuracy, 4),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    # progress per epoch on stderr, the result alone on stdout
    progress = lambda line: print(json.dumps(line), file=sys.stderr, flush=True)  # noqa: E731
    print(json.dumps(run(args.train_rows, args.epochs, args.threads, report=progress)))


if __name__ == "__main__":
    main()
