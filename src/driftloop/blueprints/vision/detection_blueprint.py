"""Object detection: the vision blueprint with ``task=detection`` (the seed's YOLO use case).

Rows are canvases composed from an image-classification dataset
(``detection_data``: Fashion-MNIST by default, or any image folder / manifest
given with ``--data``), each with its objects' boxes and classes in the
``objects`` column (JSON). Candidates: a small CenterNet (``detection``) and the
connected-components baseline, trained in the same run and ranked, as the
seed's gate was, by mAP50 (pycocotools).

Options beside the vision blueprint's (``max_rows`` is the number of canvases,
default 3000; ``epochs`` default 8): ``canvas_size`` (64; a multiple of 4),
``max_objects`` per canvas (3) and ``canvas_seed`` (0), the generator's seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from driftloop.blueprints.base import LIGHT, Metric, ParamChoice, ParamRange
from driftloop.blueprints.codec import Limits
from driftloop.blueprints.drift import DriftFeaturizer, GroupKind, SuggestedDetector
from driftloop.blueprints.feedback import Feedback, FeedbackError
from driftloop.blueprints.vision.blueprint import VisionBlueprint
from driftloop.blueprints.vision.codec import image_shape
from driftloop.blueprints.vision.detection import (
    CenterNetDetector,
    ComponentsDetector,
    detection_scores,
    score_detector,
)
from driftloop.blueprints.vision.detection_codec import DetectionCodec
from driftloop.blueprints.vision.detection_data import (
    DETECTION_COLUMNS,
    OBJECTS_COLUMN,
    CanvasSpec,
    detection_frame,
    make_canvases,
    parse_objects,
)
from driftloop.blueprints.vision.drift import image_statistics
from driftloop.blueprints.vision.pixels import IMAGE_COLUMN, as_images, encode_png_b64

DEFAULT_CANVASES = 3000
DEFAULT_FLOOR = 0.3  # mAP50 a first detector must reach


class ObjectsFeedback(Feedback):
    """The true objects of one image; the live score is mAP50 of the served detections."""

    kind = "objects"

    def parse(self, truth: Any, outputs: Sequence[dict]) -> tuple[Any, bool | None]:
        try:
            objects = parse_objects(truth, "objects")
        except ValueError as exc:
            raise FeedbackError(str(exc)) from None
        return objects, None

    def live_score(self, outputs: Sequence[dict], truths: Sequence[Any]) -> float:
        detections = [
            {
                "boxes": o.get("boxes", []),
                "labels": o.get("labels", []),
                "scores": o.get("scores", []),
            }
            for o in outputs
        ]
        return detection_scores([parse_objects(t) for t in truths], detections)["map50"]


class DetectionFeaturizer(DriftFeaturizer):
    """Image statistics, the detector's pooled backbone features (PCA), and what it found:
    the number of detections and the best score per image."""

    groups: dict[str, GroupKind] = {
        "image_stats": "continuous",
        "embedding": "continuous",
        "detections": "continuous",
    }

    def __init__(self, model: Any, pca: Any) -> None:
        self.model = model
        self.shape = image_shape(model)
        self.pca = pca

    @classmethod
    def fit(cls, model: Any, reference: Any, *, dims: int = 8, seed: int = 0):
        from sklearn.decomposition import PCA

        images = as_images(reference, image_shape(model), "reference")
        vectors = _embedding(model, images)
        dims = max(1, min(dims, vectors.shape[1], len(images) - 1))
        return cls(model, PCA(n_components=dims, random_state=seed).fit(vectors))

    def knows(self, output: dict) -> bool:
        return isinstance(output, dict) and isinstance(output.get("scores"), list)

    def transform(self, model_input: Any, outputs: Sequence[dict]) -> dict[str, np.ndarray]:
        images = as_images(model_input, self.shape, "inputs")
        if len(images) != len(outputs):
            raise ValueError(f"{len(images)} images but {len(outputs)} outputs")
        found = np.asarray(
            [[len(o["scores"]), max(o["scores"], default=0.0)] for o in outputs], dtype=np.float32
        )
        return {
            "image_stats": image_statistics(images),
            "embedding": self.pca.transform(_embedding(self.model, images)).astype(np.float32),
            "detections": found.reshape(len(images), 2),
        }

    def default_detectors(self) -> list[SuggestedDetector]:
        return [
            SuggestedDetector("ks-image-stats", "ks", "image_stats"),
            SuggestedDetector("ks-embedding", "ks", "embedding", correction="fdr"),
            SuggestedDetector("ks-detections", "ks", "detections"),
        ]


def _embedding(model: Any, images: np.ndarray) -> np.ndarray:
    if hasattr(model, "embed"):
        return np.asarray(model.embed(images), dtype=np.float32)
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


class DetectionBlueprint(VisionBlueprint):
    task = "object-detection"

    def __init__(
        self,
        *,
        max_rows: int = DEFAULT_CANVASES,
        epochs: int = 8,
        canvas_size: int = 64,
        max_objects: int = 3,
        canvas_seed: int = 0,
        **options: Any,
    ) -> None:
        options.pop("task", None)  # tagged on every version: the spec rebuilds this class
        super().__init__(max_rows=max_rows, epochs=epochs, task="detection", **options)
        self.canvas = CanvasSpec(size=int(canvas_size), max_objects=int(max_objects))
        if self.canvas.size % 4:
            raise ValueError(f"canvas_size: a multiple of 4, got {self.canvas.size}")
        self.canvas_seed = int(canvas_seed)
        if not self.max_rows:
            raise ValueError("max_rows: the number of canvases to compose, at least 1")

    @property
    def spec(self):
        spec = super().spec
        sized = {
            "canvas_size": self.canvas.size,
            "max_objects": self.canvas.max_objects,
            "canvas_seed": self.canvas_seed,
        }
        return type(spec)(spec.name, sized | dict(spec.options))

    @property
    def default_metric(self) -> Metric:
        return Metric("map50", True, floor=DEFAULT_FLOOR)

    # --- data ----------------------------------------------------------------------
    @property
    def target_column(self) -> str:
        return OBJECTS_COLUMN

    @property
    def class_column(self) -> str | None:
        return None  # a canvas holds several classes: splits are not stratified by one

    def prepare(self, dataset, source):
        instance, chosen, note = super().prepare(dataset, source)
        return (
            instance,
            chosen,
            (
                f"{self.max_rows} canvases {self.canvas.size}x{self.canvas.size} of 1-"
                f"{self.canvas.max_objects} objects, CenterNet {self.epochs} epoch(s), "
                f"cap {self.max_seconds:.0f} s"
            ),
        )

    def load(
        self, dataset: str | None, source: str | None, label_mapping: str | None = None
    ) -> pd.DataFrame:
        from driftloop.datasets.images import fashion_mnist_arrays, frame_pixels, load_images

        if label_mapping:
            raise ValueError("--label-mapping: the vision blueprint takes labels from the data")
        if source:
            objects = load_images(source)
            images, labels = frame_pixels(objects), objects["label"].to_numpy()
        else:
            parts = [fashion_mnist_arrays(part) for part in ("train", "test")]
            images = np.concatenate([a for a, _ in parts])
            labels = np.concatenate([b for _, b in parts])
        canvases, placed = make_canvases(
            images, labels, self.max_rows, self.canvas, seed=self.canvas_seed
        )
        frame = detection_frame(canvases, placed)
        frame.attrs["source_stats"] = {
            "source_images": int(len(images)),
            "canvases": int(len(frame)),
            "objects": int(sum(len(o) for o in placed)),
        }
        return frame

    def validate(self, frame: pd.DataFrame, what: str = "dataset") -> dict:
        from driftloop.datasets.errors import DatasetValidationError
        from driftloop.datasets.images import frame_pixels

        missing = [c for c in DETECTION_COLUMNS if c not in frame.columns]
        if missing:
            raise DatasetValidationError(
                f"{what}: lacks column(s) {', '.join(missing)}", {c: "missing" for c in missing}
            )
        images = frame_pixels(frame, what)
        counts: dict[str, int] = {}
        for index, value in enumerate(frame[OBJECTS_COLUMN]):
            try:
                objects = parse_objects(value, f"{what}: row {index} objects")
            except ValueError as exc:
                raise DatasetValidationError(str(exc), {OBJECTS_COLUMN: "unreadable"}) from None
            for obj in objects:
                counts[obj["label"]] = counts.get(obj["label"], 0) + 1
        if not counts:
            raise DatasetValidationError(
                f"{what}: no canvas holds an object", {OBJECTS_COLUMN: "no objects"}
            )
        return {
            "rows": int(len(frame)),
            "objects": dict(sorted(counts.items())),
            "image_shape": list(images.shape[1:]),
        }

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[OBJECTS_COLUMN].to_numpy(dtype=object)

    def rows_from_feedback(self, inputs: Sequence[Any], truths: Sequence[Any]) -> pd.DataFrame:
        """Stored summaries ``{"image": base64 PNG}`` and their true objects as canvases."""
        from driftloop.blueprints.vision.pixels import feedback_pixels

        pixels = feedback_pixels(inputs, IMAGE_COLUMN)
        objects = [parse_objects(t, f"feedback truth {i}") for i, t in enumerate(truths)]
        return detection_frame(np.stack(pixels), objects).drop(columns=["id"])

    def input_example(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        if frame is not None and len(frame):
            images = self.features(frame.head(2))
        else:
            images = np.zeros((2, self.canvas.size, self.canvas.size, 1), dtype=np.uint8)
        return pd.DataFrame({IMAGE_COLUMN: [encode_png_b64(image) for image in images]})

    # --- trainer -------------------------------------------------------------------
    def candidates(self, seed: int) -> dict[str, Any]:
        return {
            "centernet": CenterNetDetector(
                max_iter=self.epochs,
                max_seconds=self.max_seconds,
                width=self.width,
                random_state=seed,
            ),
            # the baseline in the same run: what a learned detector must beat
            "components": ComponentsDetector(random_state=seed),
        }

    def candidate_tiers(self) -> dict[str, str]:
        return {"centernet": LIGHT, "components": LIGHT}

    def tuning_space(self, candidate: str) -> dict[str, ParamRange | ParamChoice]:
        return {
            "centernet": {
                "learning_rate": ParamRange(5e-4, 5e-3, log=True),
                "width": ParamChoice((8, 16, 24)),
            },
            "components": {"threshold": ParamChoice((16, 40, 80))},
        }.get(candidate, {})

    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        if frame.empty:
            raise ValueError("cannot score a model on an empty frame")
        return score_detector(model, self.features(frame), self.targets(frame))

    # --- serving, drift, feedback --------------------------------------------------
    def codec(self, model: Any, limits: Limits | None = None) -> DetectionCodec:
        return DetectionCodec(model, limits or Limits())

    def drift_featurizer(self, model: Any, reference: pd.DataFrame) -> DetectionFeaturizer:
        return DetectionFeaturizer.fit(model, self.features(reference))

    @property
    def feedback(self) -> Feedback:
        return ObjectsFeedback()
