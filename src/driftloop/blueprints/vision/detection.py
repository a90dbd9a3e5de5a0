"""Single-stage object detection on CPU, its baseline, and mAP50.

* ``CenterNetDetector`` -- a small CenterNet (Zhou et al., "Objects as Points"):
  a convolutional backbone to a stride-4 grid, a per-class centre heatmap
  (penalty-reduced focal loss on Gaussian targets) and a box head (width,
  height and the centre's sub-cell offset, L1 at object centres). Decoding
  keeps local maxima of the heatmap (a 3x3 max-pool instead of NMS) and the
  ``max_detections`` highest. Same estimator protocol as ``CNNClassifier``
  (``max_iter`` epochs, ``warm_start``, ``max_seconds``, ``n_threads``; pickled
  as parameters + ``state_dict``).
* ``ComponentsDetector`` -- the baseline in the same run: threshold the canvas,
  one box per connected component (after a 3x3 dilation that joins an object's
  fragments), each crop classified by a logistic regression on its pixels,
  trained on the ground-truth crops; the score is the class probability.
* ``detection_scores`` -- COCO mAP at IoU 0.5 (``map50``, the seed's gate
  metric) and 0.5:0.95 (``map``), computed by pycocotools' ``COCOeval``.

Both detectors take canvases (anything ``pixels.as_images`` takes) and, to fit,
one list of objects per canvas (``[{"box": [x0, y0, x1, y1], "label"}]`` or its
JSON text). ``detect`` returns per canvas ``{"boxes": float32 [k, 4], "labels":
[k], "scores": float32 [k]}``, best first; ``predict`` the same as JSON text (the
MLflow pyfunc output: one string per canvas).
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from sklearn.base import BaseEstimator

from driftloop.blueprints.vision.cnn import TorchNetworkState, torch_threads
from driftloop.blueprints.vision.detection_data import parse_objects
from driftloop.blueprints.vision.pixels import as_images

STRIDE = 4
CROP_SIDE = 28  # the baseline classifies crops at Fashion-MNIST's size
PREDICT_BATCH = 256


# --- shared -----------------------------------------------------------------------------
def _objects_of(y: Any, n: int) -> list[list[dict]]:
    values = list(y)
    if len(values) != n:
        raise ValueError(f"X has {n} canvases but y has {len(values)} object lists")
    return [parse_objects(v, f"y[{i}]") for i, v in enumerate(values)]


def _classes_of(objects: list[list[dict]]) -> np.ndarray:
    classes = sorted({o["label"] for canvas in objects for o in canvas})
    if not classes:
        raise ValueError("y holds no objects: nothing to learn to detect")
    return np.asarray(classes, dtype=object)


def as_json(detections: Sequence[dict]) -> np.ndarray:
    """``detect``'s output as one JSON string per canvas (``predict``)."""
    return np.asarray(
        [
            json.dumps(
                [
                    {"box": [round(float(v), 2) for v in box], "label": label, "score": float(s)}
                    for box, label, s in zip(d["boxes"], d["labels"], d["scores"], strict=True)
                ]
            )
            for d in detections
        ],
        dtype=object,
    )


# --- CenterNet ---------------------------------------------------------------------------
def _network(channels: int, width: int, n_classes: int):
    import torch.nn as nn

    def conv(inputs: int, outputs: int, dilation: int = 1) -> list:
        return [
            nn.Conv2d(inputs, outputs, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(outputs),
            nn.ReLU(inplace=True),
        ]

    backbone = nn.Sequential(
        *conv(channels, width),
        nn.MaxPool2d(2),
        *conv(width, 2 * width),
        nn.MaxPool2d(2),  # stride 4
        *conv(2 * width, 4 * width),
        *conv(4 * width, 4 * width, dilation=2),  # receptive field ~ one 28-pixel object
        *conv(4 * width, 4 * width, dilation=2),
    )
    heatmap = nn.Sequential(
        nn.Conv2d(4 * width, 4 * width, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(4 * width, n_classes, 1),
    )
    # start at a prior of ~0.1 per cell: the focal loss is stable from the first batch
    nn.init.constant_(heatmap[-1].bias, -2.19)
    box = nn.Sequential(
        nn.Conv2d(4 * width, 4 * width, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(4 * width, 4, 1),  # width, height (in cells), x and y offsets
    )
    return nn.ModuleDict({"backbone": backbone, "heatmap": heatmap, "box": box})


def _focal_loss(logits, target):
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4), per object."""
    import torch
    import torch.nn.functional as F

    prob = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1).float()
    pos_loss = -F.logsigmoid(logits) * (1 - prob) ** 2 * positive
    neg_loss = -F.logsigmoid(-logits) * prob**2 * (1 - target) ** 4 * (1 - positive)
    objects = positive.sum().clamp(min=1.0)
    return (pos_loss.sum() + neg_loss.sum()) / objects


class CenterNetDetector(TorchNetworkState, BaseEstimator):
    def __init__(
        self,
        max_iter: int = 8,
        learning_rate: float = 2e-3,
        width: int = 16,
        batch_size: int = 32,
        weight_decay: float = 1e-4,
        lr_decay: float = 0.8,
        max_seconds: float | None = None,
        warm_start: bool = False,
        max_detections: int = 20,
        score_threshold: float = 0.02,
        random_state: int = 0,
        n_threads: int | None = 1,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.width = width
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.lr_decay = lr_decay
        self.max_seconds = max_seconds
        self.warm_start = warm_start
        self.max_detections = max_detections
        self.score_threshold = score_threshold
        self.random_state = random_state
        self.n_threads = n_threads

    def _build_network(self):
        return _network(self.image_shape_[2], int(self.width), len(self.classes_))

    # --- fitting -------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> CenterNetDetector:
        images = as_images(X, None, "X")
        objects = _objects_of(y, len(images))
        classes = _classes_of(objects)
        height, width = images.shape[1:3]
        if height % STRIDE or width % STRIDE:
            raise ValueError(f"canvas sides must be multiples of {STRIDE}, got {height}x{width}")
        resume = (
            self.warm_start
            and hasattr(self, "net_")
            and list(classes) == list(self.classes_)
            and tuple(images.shape[1:]) == self.image_shape_
        )
        with torch_threads(self.n_threads):
            if not resume:
                self._initialise(images, classes)
            self._train(images, objects)
        return self

    def _initialise(self, images: np.ndarray, classes: np.ndarray) -> None:
        import torch

        torch.manual_seed(self.random_state)
        self.classes_ = classes
        self.image_shape_ = tuple(int(d) for d in images.shape[1:])
        self.resample_ = Image.Resampling.BILINEAR  # Pillow: resizing encoded inputs
        scaled = images.astype(np.float32) / 255.0
        self.pixel_mean_ = float(scaled.mean())
        self.pixel_std_ = float(scaled.std()) or 1.0
        self.net_ = self._build_network()
        self.epochs_done_ = 0
        self.loss_curve_: list[float] = []
        self.stopped_by_time_ = False
        self._optimizer = None

    def _targets(self, objects: list[list[dict]]):
        """Heatmaps [n, K, h, w], box targets [n, 4, h, w] and their mask [n, 1, h, w]."""
        import torch

        grid_h, grid_w = self.image_shape_[0] // STRIDE, self.image_shape_[1] // STRIDE
        n, k = len(objects), len(self.classes_)
        heat = np.zeros((n, k, grid_h, grid_w), dtype=np.float32)
        boxes = np.zeros((n, 4, grid_h, grid_w), dtype=np.float32)
        mask = np.zeros((n, 1, grid_h, grid_w), dtype=np.float32)
        code = {label: i for i, label in enumerate(self.classes_)}
        ys, xs = np.mgrid[0:grid_h, 0:grid_w]
        for i, canvas in enumerate(objects):
            for obj in canvas:
                if obj["label"] not in code:
                    continue
                x0, y0, x1, y1 = (v / STRIDE for v in obj["box"])
                cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                col, row = min(int(cx), grid_w - 1), min(int(cy), grid_h - 1)
                # Gaussian spread ~ a sixth of the object's smaller side (CenterNet's radius)
                sigma = max(0.5, min(x1 - x0, y1 - y0) / 6)
                peak = np.exp(-((xs - col) ** 2 + (ys - row) ** 2) / (2 * sigma**2))
                channel = heat[i, code[obj["label"]]]
                np.maximum(channel, peak, out=channel)
                channel[row, col] = 1.0
                boxes[i, :, row, col] = (x1 - x0, y1 - y0, cx - col, cy - row)
                mask[i, 0, row, col] = 1.0
        return torch.from_numpy(heat), torch.from_numpy(boxes), torch.from_numpy(mask)

    def _tensor(self, images: np.ndarray):
        import torch

        batch = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True)).permute(0, 3, 1, 2)
        return (batch.float() / 255.0 - self.pixel_mean_) / self.pixel_std_

    def _train(self, images: np.ndarray, objects: list[list[dict]]) -> None:
        import torch

        if self._optimizer is None:
            self._optimizer = torch.optim.AdamW(
                self.net_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
            )
        heat, boxes, mask = self._targets(objects)
        rng = np.random.default_rng(self.random_state + self.epochs_done_)
        batch_size = int(max(4, min(int(self.batch_size), len(images) // 10)))
        started = time.monotonic()
        self.stopped_by_time_ = False
        while self.epochs_done_ < int(self.max_iter):
            for group in self._optimizer.param_groups:
                group["lr"] = self.learning_rate * self.lr_decay**self.epochs_done_
            self.net_.train()
            total, seen = 0.0, 0
            shuffled = rng.permutation(len(images))
            for start in range(0, len(images), batch_size):
                rows = shuffled[start : start + batch_size]
                features = self.net_["backbone"](self._tensor(images[rows]))
                heat_loss = _focal_loss(self.net_["heatmap"](features), heat[rows])
                box_mask = mask[rows]
                box_error = (self.net_["box"](features) - boxes[rows]).abs() * box_mask
                box_error = box_error.sum(dim=(0, 2, 3)) / box_mask.sum().clamp(min=1.0)
                # sizes in cells (~7 for a 28-pixel object) weigh 0.1, offsets (< 1) fully
                loss = heat_loss + 0.1 * box_error[:2].sum() + box_error[2:].sum()
                self._optimizer.zero_grad()
                loss.backward()
                self._optimizer.step()
                total += float(loss.detach()) * len(rows)
                seen += len(rows)
                if self.max_seconds is not None and time.monotonic() - started > self.max_seconds:
                    self.stopped_by_time_ = True
                    break
            self.epochs_done_ += 1
            self.loss_curve_.append(total / max(seen, 1))
            if self.stopped_by_time_:
                break

    # --- predicting ----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("CenterNetDetector is not fitted yet: call fit first")

    def detect(self, X: Any) -> list[dict]:
        import torch
        import torch.nn.functional as F

        self._check_fitted()
        images = as_images(X, self.image_shape_, "X")
        height, width = self.image_shape_[:2]
        results: list[dict] = []
        self.net_.eval()
        with torch.no_grad(), torch_threads(self.n_threads):
            for start in range(0, len(images), PREDICT_BATCH):
                features = self.net_["backbone"](
                    self._tensor(images[start : start + PREDICT_BATCH])
                )
                heat = torch.sigmoid(self.net_["heatmap"](features))
                peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
                geometry = self.net_["box"](features)
                n, k, grid_h, grid_w = heat.shape
                top = min(int(self.max_detections), k * grid_h * grid_w)
                scores, flat = peaks.reshape(n, -1).topk(top, dim=1)
                for i in range(n):
                    keep = scores[i] >= self.score_threshold
                    index = flat[i][keep]
                    klass = index // (grid_h * grid_w)
                    row = (index % (grid_h * grid_w)) // grid_w
                    col = index % grid_w
                    w, h, dx, dy = geometry[i][:, row, col]
                    cx, cy = (col + dx) * STRIDE, (row + dy) * STRIDE
                    half_w, half_h = w.clamp(min=0) * STRIDE / 2, h.clamp(min=0) * STRIDE / 2
                    box = torch.stack(
                        [
                            (cx - half_w).clamp(0, width),
                            (cy - half_h).clamp(0, height),
                            (cx + half_w).clamp(0, width),
                            (cy + half_h).clamp(0, height),
                        ],
                        dim=1,
                    )
                    results.append(
                        {
                            "boxes": box.numpy().astype(np.float32).reshape(-1, 4),
                            "labels": [str(self.classes_[c]) for c in klass.tolist()],
                            "scores": scores[i][keep].numpy().astype(np.float32),
                        }
                    )
        return results

    def predict(self, X: Any) -> np.ndarray:
        return as_json(self.detect(X))

    def embed(self, X: Any) -> np.ndarray:
        """The backbone's features averaged over the grid (4 x width values per canvas)."""
        import torch

        self._check_fitted()
        images = as_images(X, self.image_shape_, "X")
        self.net_.eval()
        chunks = []
        with torch.no_grad(), torch_threads(self.n_threads):
            for start in range(0, len(images), PREDICT_BATCH):
                features = self.net_["backbone"](
                    self._tensor(images[start : start + PREDICT_BATCH])
                )
                chunks.append(features.mean(dim=(2, 3)).numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 4 * int(self.width)), np.float32)


# --- the baseline: connected components + a pixel classifier ---------------------------------
def square_crop(canvas: np.ndarray, box: Sequence[float], side: int = CROP_SIDE) -> np.ndarray:
    """The box's pixels centred on a black square, resized to ``side`` (float 0..1, flat)."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    patch = canvas[max(y0, 0) : max(y1, y0 + 1), max(x0, 0) : max(x1, x0 + 1)]
    h, w, c = patch.shape
    length = max(h, w, 1)
    square = np.zeros((length, length, c), dtype=np.uint8)
    top, left = (length - h) // 2, (length - w) // 2
    square[top : top + h, left : left + w] = patch
    image = Image.fromarray(square[:, :, 0] if c == 1 else square)
    resized = np.asarray(image.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)
    return resized.reshape(-1) / 255.0


class ComponentsDetector(BaseEstimator):
    def __init__(
        self,
        threshold: int = 40,
        join: int = 1,
        min_pixels: int = 30,
        C: float = 0.05,
        random_state: int = 0,
    ) -> None:
        self.threshold = threshold
        self.join = join
        self.min_pixels = min_pixels
        self.C = C
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> ComponentsDetector:
        from sklearn.linear_model import LogisticRegression

        images = as_images(X, None, "X")
        objects = _objects_of(y, len(images))
        self.classes_ = _classes_of(objects)
        self.image_shape_ = tuple(int(d) for d in images.shape[1:])
        self.resample_ = Image.Resampling.BILINEAR
        crops = [square_crop(images[i], o["box"]) for i, c in enumerate(objects) for o in c]
        labels = [o["label"] for canvas in objects for o in canvas]
        self.classifier_ = LogisticRegression(
            C=self.C, max_iter=300, random_state=self.random_state
        ).fit(np.stack(crops), labels)
        return self

    def _components(self, canvas: np.ndarray) -> list[list[int]]:
        from scipy import ndimage

        foreground = canvas.max(axis=2) > self.threshold
        joined = (
            ndimage.binary_dilation(foreground, np.ones((3, 3), bool), iterations=int(self.join))
            if self.join
            else foreground
        )
        labelled, _ = ndimage.label(joined)
        boxes = []
        for index, found in enumerate(ndimage.find_objects(labelled), start=1):
            if found is None:
                continue
            inside = foreground[found] & (labelled[found] == index)
            if inside.sum() < self.min_pixels:
                continue
            rows = np.flatnonzero(inside.any(axis=1)) + found[0].start
            cols = np.flatnonzero(inside.any(axis=0)) + found[1].start
            boxes.append([int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1])
        return boxes

    def detect(self, X: Any) -> list[dict]:
        if not hasattr(self, "classifier_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("ComponentsDetector is not fitted yet: call fit first")
        images = as_images(X, self.image_shape_, "X")
        results = []
        for canvas in images:
            boxes = self._components(canvas)
            if not boxes:
                results.append(
                    {"boxes": np.zeros((0, 4), np.float32), "labels": [], "scores": np.zeros(0)}
                )
                continue
            proba = self.classifier_.predict_proba(
                np.stack([square_crop(canvas, b) for b in boxes])
            )
            best = proba.argmax(axis=1)
            scores = proba.max(axis=1).astype(np.float32)
            order = np.argsort(-scores, kind="stable")
            results.append(
                {
                    "boxes": np.asarray(boxes, dtype=np.float32)[order],
                    "labels": [str(self.classifier_.classes_[best[i]]) for i in order],
                    "scores": scores[order],
                }
            )
        return results

    def predict(self, X: Any) -> np.ndarray:
        return as_json(self.detect(X))


# --- mAP ------------------------------------------------------------------------------------
def detection_scores(
    truths: Sequence[Sequence[dict]], detections: Sequence[dict]
) -> dict[str, float]:
    """COCO mAP50 and mAP50:95 of ``detections`` against ``truths`` (pycocotools)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(truths) != len(detections):
        raise ValueError(f"{len(truths)} canvases of truths but {len(detections)} of detections")
    classes = sorted(
        {o["label"] for canvas in truths for o in canvas}
        | {label for d in detections for label in d["labels"]}
    )
    category = {label: i + 1 for i, label in enumerate(classes)}
    annotations, results = [], []
    for image_id, canvas in enumerate(truths, start=1):
        for obj in canvas:
            x0, y0, x1, y1 = obj["box"]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category[obj["label"]],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    for image_id, found in enumerate(detections, start=1):
        for box, label, score in zip(found["boxes"], found["labels"], found["scores"], strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            results.append(
                {
                    "image_id": image_id,
                    "category_id": category[label],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": float(score),
                }
            )
    if not annotations:
        raise ValueError("the truths hold no objects: mAP is undefined")
    if not results:
        return {"map50": 0.0, "map": 0.0, "detections_per_image": 0.0}
    ground = COCO()
    ground.dataset = {
        "images": [{"id": i} for i in range(1, len(truths) + 1)],
        "categories": [{"id": i, "name": label} for label, i in category.items()],
        "annotations": annotations,
    }
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        ground.createIndex()
        found = ground.loadRes(results)
        evaluation = COCOeval(ground, found, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    mean_ap, ap50 = (max(0.0, float(v)) for v in evaluation.stats[:2])  # -1: no such objects
    return {
        "map50": round(ap50, 6),
        "map": round(mean_ap, 6),
        "detections_per_image": round(len(results) / len(truths), 3),
    }


def score_detector(model: Any, images: Any, truths: Sequence[Any]) -> dict[str, float]:
    """``detection_scores`` of a fitted detector on canvases and their objects."""
    parsed = [parse_objects(t, f"truths[{i}]") for i, t in enumerate(truths)]
    return detection_scores(parsed, model.detect(images))
