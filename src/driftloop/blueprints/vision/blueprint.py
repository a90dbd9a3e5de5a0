"""Image classification: Fashion-MNIST by default, any image folder or manifest CSV.

Rows are the canonical image frame of ``driftloop.datasets.images`` (ids from
pixel content, raw pixels in Parquet). Candidates: a small CNN in torch
(``cnn.CNNClassifier``) and two pixel baselines trained in the same run
(logistic regression, an MLP). Ranked and gated by accuracy (``--metric
macro_f1`` for imbalanced folders).

Options (``BlueprintSpec`` options; defaults sized for a loaded 2-core CPU):

* ``max_rows`` -- rows kept by id order, a fixed pseudo-random subset
  (default 6000; 0 keeps every row: 70,000 for Fashion-MNIST);
* ``epochs`` -- CNN epochs (default 5); ``max_seconds`` -- wall-clock cap of one
  CNN fit (default 300); ``width`` -- CNN channels of the first block (default 16);
* ``task`` -- ``classification`` (default) or ``detection``: objects placed on
  canvases, a CenterNet detector ranked by mAP50 (``detection_blueprint``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline

from driftloop.blueprints.base import LIGHT, Blueprint, Metric, ParamChoice, ParamRange
from driftloop.blueprints.codec import Limits
from driftloop.blueprints.feedback import Feedback, LabelFeedback
from driftloop.blueprints.scoring import classification_scores
from driftloop.blueprints.vision.baselines import PixelFeatures
from driftloop.blueprints.vision.cnn import CNNClassifier
from driftloop.blueprints.vision.codec import ImageCodec
from driftloop.blueprints.vision.pixels import IMAGE_COLUMN, encode_png_b64

FASHION_MNIST = "fashion-mnist"
IMAGES = "images"  # an image folder or manifest CSV given with --data
DATASETS = (FASHION_MNIST, IMAGES)
DEFAULT_MAX_ROWS = 6000
DEFAULT_FLOOR = 0.5
TASKS = ("classification", "detection")


class VisionBlueprint(Blueprint):
    name: ClassVar[str] = "vision"
    task = "image-classification"
    default_dataset: ClassVar[str] = FASHION_MNIST

    def __new__(cls, *args: Any, task: str | None = None, **options: Any):
        """``task=detection`` makes a ``DetectionBlueprint``: the same option, tagged on
        every version, rebuilds the same task from the spec."""
        if task not in (None, *TASKS):
            raise ValueError(
                f"--task: the vision blueprint does {' or '.join(TASKS)}, not {task!r}"
            )
        if cls is VisionBlueprint and task == "detection":
            from driftloop.blueprints.vision.detection_blueprint import DetectionBlueprint

            return super().__new__(DetectionBlueprint)
        return super().__new__(cls)

    def __init__(
        self,
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        epochs: int = 5,
        max_seconds: float = 300.0,
        width: int = 16,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.max_rows = int(max_rows)
        self.epochs = int(epochs)
        self.max_seconds = float(max_seconds)
        self.width = int(width)
        for option, value in (("max_rows", self.max_rows), ("epochs", self.epochs)):
            if value < (0 if option == "max_rows" else 1):
                raise ValueError(f"{option}: must be a positive number, got {value}")

    @property
    def spec(self):
        from driftloop.blueprints.spec import BlueprintSpec

        sized = {
            "max_rows": self.max_rows,
            "epochs": self.epochs,
            "max_seconds": self.max_seconds,
            "width": self.width,
        }
        return BlueprintSpec(self.name, sized | dict(self.options))

    @property
    def default_metric(self) -> Metric:
        return Metric("accuracy", True, floor=DEFAULT_FLOOR)

    # --- data ----------------------------------------------------------------------
    @property
    def target_column(self) -> str:
        return "label"

    @property
    def class_column(self) -> str:
        return "label"

    def prepare(self, dataset: str | None, source: str | None) -> tuple[Blueprint, str, str]:
        if dataset is not None and dataset not in DATASETS:
            raise ValueError(
                f"--dataset: unknown dataset {dataset!r} (known: {', '.join(DATASETS)})"
            )
        if dataset == IMAGES and not source:
            raise ValueError("--dataset images reads an image folder or manifest: give --data PATH")
        if dataset == FASHION_MNIST and source:
            raise ValueError("--dataset fashion-mnist reads the installed package: drop --data")
        if source and not (
            source.startswith(("http://", "https://"))
            or source.lower().endswith(".csv")
            or Path(source).is_dir()
        ):
            raise ValueError(
                f"--data: {source} is neither an image folder (ROOT/CLASS/*.png|jpg|jpeg) "
                "nor a manifest .csv (id,image,label)"
            )
        chosen = IMAGES if source else FASHION_MNIST
        if chosen == FASHION_MNIST:
            from driftloop.datasets.images import FASHION_MNIST_DIR, FASHION_MNIST_FILES

            missing = [
                name
                for pair in FASHION_MNIST_FILES.values()
                for name in pair
                if not (FASHION_MNIST_DIR / name).is_file()
                and not (FASHION_MNIST_DIR / name).with_suffix("").is_file()
            ]
            if missing:
                raise ValueError(
                    f"--dataset {FASHION_MNIST}: {FASHION_MNIST_DIR} lacks {', '.join(missing)}: "
                    "install the Debian package dataset-fashion-mnist (make install), or give "
                    "--data FOLDER|manifest.csv"
                )
        rows = "every row" if not self.max_rows else f"at most {self.max_rows} rows"
        return self, chosen, f"{rows}, CNN {self.epochs} epoch(s), cap {self.max_seconds:.0f} s"

    def load(
        self, dataset: str | None, source: str | None, label_mapping: str | None = None
    ) -> pd.DataFrame:
        from driftloop.datasets.images import load_images

        if label_mapping:
            raise ValueError("--label-mapping: the vision blueprint takes labels from the data")
        return load_images(source or None, limit=self.max_rows or None)

    def validate(self, frame: pd.DataFrame, what: str = "dataset") -> dict:
        from driftloop.datasets.errors import DatasetValidationError
        from driftloop.datasets.images import IMAGE_COLUMNS, frame_pixels

        missing = [c for c in IMAGE_COLUMNS if c not in frame.columns]
        if missing:
            raise DatasetValidationError(
                f"{what}: lacks column(s) {', '.join(missing)}", {c: "missing" for c in missing}
            )
        blank = frame["label"].isna() | (frame["label"].astype(str).str.strip() == "")
        if blank.any():
            raise DatasetValidationError(
                f"{what}: column 'label' is empty in {int(blank.sum())} row(s)",
                {"label": f"{int(blank.sum())} empty"},
            )
        images = frame_pixels(frame, what)
        counts = frame["label"].astype(str).value_counts().sort_index()
        if len(counts) < 2:
            raise DatasetValidationError(
                f"{what}: need at least two classes in 'label', got {list(counts.index)}",
                {"label": "one class"},
            )
        return {
            "rows": int(len(frame)),
            "labels": {str(k): int(v) for k, v in counts.items()},
            "image_shape": list(images.shape[1:]),
        }

    def features(self, frame: pd.DataFrame) -> np.ndarray:
        from driftloop.datasets.images import frame_pixels

        return frame_pixels(frame)

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["label"].astype(str).to_numpy()

    def rows_from_feedback(self, inputs: Sequence[Any], truths: Sequence[Any]) -> pd.DataFrame:
        """Stored summaries ``{"image": base64 PNG}`` (the pixels the model saw) as rows."""
        from driftloop.blueprints.vision.pixels import feedback_pixels
        from driftloop.datasets.images import image_frame

        pixels = feedback_pixels(inputs, IMAGE_COLUMN)
        frame = image_frame([""] * len(pixels), [str(t) for t in truths], pixels)
        return frame.drop(columns=["id"])

    def input_example(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        if frame is not None and len(frame):
            images = self.features(frame.head(2))
        else:
            images = np.zeros((2, 28, 28, 1), dtype=np.uint8)
        return pd.DataFrame({IMAGE_COLUMN: [encode_png_b64(image) for image in images]})

    # --- trainer -------------------------------------------------------------------
    def candidates(self, seed: int) -> dict[str, Any]:
        return {
            "cnn": CNNClassifier(
                max_iter=self.epochs,
                max_seconds=self.max_seconds,
                width=self.width,
                random_state=seed,
            ),
            # baselines in the same run: what the CNN must beat
            "logreg": Pipeline(
                [
                    ("pixels", PixelFeatures()),
                    ("classifier", LogisticRegression(C=0.05, max_iter=200, random_state=seed)),
                ]
            ),
            "mlp": Pipeline(
                [
                    ("pixels", PixelFeatures()),
                    (
                        "classifier",
                        MLPClassifier(
                            hidden_layer_sizes=(128,),
                            max_iter=30,
                            early_stopping=True,
                            random_state=seed,
                        ),
                    ),
                ]
            ),
        }

    def candidate_tiers(self) -> dict[str, str]:
        # the CNN is this blueprint's model: every preset keeps it (and its baselines)
        return {"cnn": LIGHT, "logreg": LIGHT, "mlp": LIGHT}

    def tuning_space(self, candidate: str) -> dict[str, ParamRange | ParamChoice]:
        return {
            "cnn": {
                "learning_rate": ParamRange(5e-4, 5e-3, log=True),
                "width": ParamChoice((8, 16, 32)),
            },
            "logreg": {"classifier__C": ParamRange(1e-3, 10.0, log=True)},
            "mlp": {"classifier__alpha": ParamRange(1e-5, 1e-2, log=True)},
        }.get(candidate, {})

    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        if frame.empty:
            raise ValueError("cannot score a model on an empty frame")
        probabilities = model.predict_proba(self.features(frame))
        return classification_scores(self.targets(frame), model.classes_, probabilities)

    # --- serving, drift, feedback --------------------------------------------------
    def codec(self, model: Any, limits: Limits | None = None) -> ImageCodec:
        return ImageCodec(model, limits or Limits())

    def drift_featurizer(self, model: Any, reference: pd.DataFrame):
        from driftloop.blueprints.vision.drift import ImageFeaturizer

        return ImageFeaturizer.fit(model, self.features(reference))

    @property
    def feedback(self) -> Feedback:
        return LabelFeedback()
