"""Detection canvases made from an image-classification dataset, with known boxes.

The seed's detector was trained on images with labelled boxes; no such dataset ships
with the machine, so canvases are composed, as the seed's split generator did, from
the classification images: 1 to ``max_objects`` images of the dataset, each scaled
by a random factor in ``scale``, are pasted at random positions on a black
``size`` x ``size`` canvas (pixel-wise maximum, so touching objects do not hide
each other). Placements whose pasted squares overlap more than ``max_overlap``
(IoU) are redrawn. Everything is drawn from one seeded generator: the same source
images and seed give the same canvases.

An object's box is the tight bounding box of its pixels above ``OBJECT_LEVEL``
when the source image has a dark background (Fashion-MNIST), else the pasted
rectangle. Boxes are ``[x0, y0, x1, y1]`` in canvas pixels, x1/y1 exclusive (the
COCO convention: width = x1 - x0).

Each source image is used at most once (a permutation, not draws with
replacement), so a canvas split by content hash never shares an object with
another split.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

OBJECTS_COLUMN = "objects"
DETECTION_COLUMNS = ("id", OBJECTS_COLUMN, "pixels", "height", "width", "channels")
OBJECT_LEVEL = 16  # a pixel above this belongs to an object (0..255)
DARK_BORDER = 24  # a source whose border mean is below this has a black background
MAX_PLACEMENT_TRIES = 50


@dataclass(frozen=True)
class CanvasSpec:
    size: int = 64
    max_objects: int = 3
    scale: tuple[float, float] = (0.8, 1.2)
    max_overlap: float = 0.1

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError(f"canvas_size: at least 16 pixels, got {self.size}")
        if not 1 <= self.max_objects <= 10:
            raise ValueError(f"max_objects: 1 to 10, got {self.max_objects}")


def _box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _resized(image: np.ndarray, side_h: int, side_w: int) -> np.ndarray:
    from PIL import Image

    squeezed = image[:, :, 0] if image.shape[2] == 1 else image
    out = np.asarray(
        Image.fromarray(squeezed).resize((side_w, side_h), Image.Resampling.BILINEAR),
        dtype=np.uint8,
    )
    return out.reshape(side_h, side_w, image.shape[2])


def object_box(patch: np.ndarray, x: int, y: int) -> list[int] | None:
    """The box of a pasted ``patch`` [h, w, C] at (x, y): tight on a dark background."""
    h, w = patch.shape[:2]
    grey = patch.max(axis=2)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if border.mean() >= DARK_BORDER:
        return [x, y, x + w, y + h]
    rows = np.flatnonzero((grey > OBJECT_LEVEL).any(axis=1))
    cols = np.flatnonzero((grey > OBJECT_LEVEL).any(axis=0))
    if len(rows) == 0:
        return None  # an empty image: nothing to detect
    return [x + int(cols[0]), y + int(rows[0]), x + int(cols[-1]) + 1, y + int(rows[-1]) + 1]


def make_canvases(
    images: np.ndarray, labels: Sequence[str], count: int, spec: CanvasSpec, seed: int = 0
) -> tuple[np.ndarray, list[list[dict]]]:
    """``count`` canvases uint8 [count, S, S, C] and their objects ``{"box", "label"}``."""
    if images.ndim == 3:
        images = images[..., np.newaxis]
    labels = np.asarray(labels).astype(str)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise ValueError("no source images to compose canvases from")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    side = images.shape[1:3]
    longest = max(side)
    canvases = np.zeros((count, spec.size, spec.size, images.shape[3]), dtype=np.uint8)
    objects: list[list[dict]] = []
    used = 0
    for index in range(count):
        wanted = int(rng.integers(1, spec.max_objects + 1))
        placed: list[dict] = []
        squares: list[list[int]] = []
        for _ in range(wanted):
            if used >= len(order):  # every source used once: start the permutation again
                order, used = rng.permutation(len(images)), 0
            source = order[used]
            used += 1
            factor = float(rng.uniform(*spec.scale))
            fit = min(1.0, spec.size / (longest * factor))  # never larger than the canvas
            h = max(4, int(round(side[0] * factor * fit)))
            w = max(4, int(round(side[1] * factor * fit)))
            for _ in range(MAX_PLACEMENT_TRIES):
                x = int(rng.integers(0, spec.size - w + 1))
                y = int(rng.integers(0, spec.size - h + 1))
                square = [x, y, x + w, y + h]
                if all(_box_iou(square, other) <= spec.max_overlap for other in squares):
                    break
            else:
                continue  # no room left on this canvas
            patch = _resized(images[source], h, w)
            box = object_box(patch, x, y)
            if box is None:
                continue
            region = canvases[index, y : y + h, x : x + w]
            np.maximum(region, patch, out=region)
            squares.append(square)
            placed.append({"box": box, "label": str(labels[source])})
        objects.append(placed)
    return canvases, objects


def parse_objects(value: Any, field: str = "objects") -> list[dict]:
    """One canvas's objects from JSON text or a list: ``[{"box": [x0,y0,x1,y1], "label"}]``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{field}: not JSON ({exc.msg})") from None
    if not isinstance(value, list):
        raise ValueError(
            f"{field}: a list of {{'box', 'label'}} objects, got {type(value).__name__}"
        )
    parsed = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or "box" not in item or "label" not in item:
            raise ValueError(f"{field}[{index}]: needs 'box' [x0, y0, x1, y1] and 'label'")
        box = item["box"]
        if (
            not isinstance(box, list | tuple)
            or len(box) != 4
            or not all(isinstance(v, int | float) for v in box)
            or box[2] <= box[0]
            or box[3] <= box[1]
        ):
            raise ValueError(f"{field}[{index}].box: [x0, y0, x1, y1] with x1 > x0, y1 > y0")
        parsed.append({"box": [float(v) for v in box], "label": str(item["label"])})
    return parsed


def detection_frame(canvases: np.ndarray, objects: Sequence[Sequence[dict]]) -> pd.DataFrame:
    """The canonical image frame of canvases (ids from pixel content) with an ``objects``
    column of JSON text; a canvas drawn twice keeps one row."""
    from driftloop.datasets.images import image_frame, pixel_id

    ids = [pixel_id(canvas) for canvas in canvases]
    frame = image_frame(ids, [""] * len(ids), list(canvases)).drop(columns=["label"])
    frame.insert(1, OBJECTS_COLUMN, [json.dumps(list(o)) for o in objects])
    return frame.drop_duplicates("id").reset_index(drop=True)


def fashion_mnist_canvases(
    count: int, spec: CanvasSpec | None = None, seed: int = 0, part: str = "train"
) -> pd.DataFrame:
    """``count`` canvases of Fashion-MNIST objects (``part``: train, test or both)."""
    from driftloop.datasets.images import fashion_mnist_arrays

    parts = ("train", "test") if part == "both" else (part,)
    arrays = [fashion_mnist_arrays(p) for p in parts]
    images = np.concatenate([a for a, _ in arrays])
    labels = np.concatenate([b for _, b in arrays])
    canvases, objects = make_canvases(images, labels, count, spec or CanvasSpec(), seed)
    return detection_frame(canvases, objects)
