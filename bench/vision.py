"""Vision: Fashion-MNIST accuracy of the CNN and detection mAP50 of the CenterNet, each
beside its baseline trained in the same run (``driftloop.blueprints.vision.benchmark``).

- classification: the CNN trained epoch by epoch on the official training images,
  test accuracy on the official test images after each epoch; baseline: logistic
  regression on the pixels of the same rows. The acceptance bound is test
  accuracy >= 0.91 within 600 s of training on 2 cores.
- detection: 64x64 canvases of 1-3 objects composed from the training images
  (train) and from the test images (test); CenterNet mAP50 (pycocotools) on the
  test canvases after each epoch; baseline: connected components + logistic
  regression on the crops, fitted on the same canvases.

Full: all 60,000 images, 6 CNN epochs; 4,000 / 1,000 canvases, 8 detector epochs
(~10-15 min on a loaded 2-core machine). Quick: 6,000 / 2,000 images, 3 epochs;
600 / 300 canvases, 3 epochs (~1-2 min). One torch thread (see ``cnn``). The load
average before and after goes into the notes: a loaded machine inflates seconds.
"""

from __future__ import annotations

import os

from bench.context import Context, SectionSkipped, require

ACCURACY_BOUND = 0.91
SECONDS_BOUND = 600.0


def _sizes(quick: bool) -> tuple[dict, dict]:
    if quick:
        return (
            {"train_rows": 6000, "test_rows": 2000, "epochs": 3},
            {"train_rows": 600, "test_rows": 300, "epochs": 3},
        )
    return (
        {"train_rows": 60_000, "test_rows": None, "epochs": 6},
        {"train_rows": 4000, "test_rows": 1000, "epochs": 8},
    )


def _load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def run(ctx: Context) -> None:
    require("torch", "torch")
    require("pycocotools", "pycocotools (detection mAP)")
    from driftloop.blueprints.vision import benchmark
    from driftloop.datasets.errors import DatasetSourceError
    from driftloop.datasets.images import fashion_mnist_arrays

    try:
        fashion_mnist_arrays("test")
    except DatasetSourceError as exc:
        raise SectionSkipped(str(exc)) from None
    classification, detection = _sizes(ctx.budget.quick)
    ctx.note(f"load average (1/5/15 min) before: {_load()}; one torch thread")
    report = lambda line: ctx.log(str(line))  # noqa: E731

    result = benchmark.run_classification(threads=1, report=report, **classification)
    final, baseline = result["cnn"][-1], result["logreg"]
    sized = {"train_rows": result["train_rows"], "test_rows": result["test_rows"]}
    ctx.add(
        "Fashion-MNIST test accuracy, CNN",
        final["test_accuracy"],
        "accuracy",
        baseline="logistic regression on pixels, same rows and run",
        baseline_value=baseline["test_accuracy"],
        better="higher",
        headline=True,
        epochs=final["epoch"],
        **sized,
    )
    ctx.add(
        "CNN training + per-epoch test scoring",
        final["seconds"],
        "s",
        baseline=f"acceptance bound ({SECONDS_BOUND:.0f} s for >= {ACCURACY_BOUND})",
        baseline_value=SECONDS_BOUND,
        better="lower",
        note=f"baseline fit {baseline['seconds']} s",
        epochs=final["epoch"],
        **sized,
    )
    reached = [e for e in result["cnn"] if e["test_accuracy"] >= ACCURACY_BOUND]
    ctx.note(
        "CNN per epoch (s, test accuracy): "
        + ", ".join(f"{e['epoch']}: {e['seconds']} s {e['test_accuracy']}" for e in result["cnn"])
        + (
            f"; >= {ACCURACY_BOUND} first after {reached[0]['seconds']} s"
            if reached
            else f"; {ACCURACY_BOUND} not reached at this size"
        )
    )

    result = benchmark.run_detection(threads=1, report=report, **detection)
    final, baseline = result["centernet"][-1], result["components"]
    sized = {
        "train_canvases": result["train_canvases"],
        "test_canvases": result["test_canvases"],
        "test_objects": result["test_objects"],
    }
    ctx.add(
        "detection mAP50 (IoU 0.5), CenterNet",
        final["test_map50"],
        "mAP",
        baseline="connected components + logistic regression, same canvases and run",
        baseline_value=baseline["test_map50"],
        better="higher",
        headline=True,
        epochs=final["epoch"],
        **sized,
    )
    ctx.add(
        "detection mAP50:95, CenterNet",
        final["test_map"],
        "mAP",
        baseline="connected components + logistic regression, same canvases and run",
        baseline_value=baseline["test_map"],
        better="higher",
        epochs=final["epoch"],
        **sized,
    )
    ctx.add(
        "CenterNet training + per-epoch test scoring",
        final["seconds"],
        "s",
        baseline="connected components + logistic regression fit",
        baseline_value=baseline["seconds"],
        better="lower",
        epochs=final["epoch"],
        **sized,
    )
    ctx.note(
        "CenterNet per epoch (s, test mAP50): "
        + ", ".join(
            f"{e['epoch']}: {e['seconds']} s {e['test_map50']}" for e in result["centernet"]
        )
        + f"; canvases {result['canvas']}"
    )
    ctx.note(f"load average after: {_load()}")
