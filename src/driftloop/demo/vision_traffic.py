"""The vision demo's traffic: Fashion-MNIST photos, then the same photos inverted.

v1 trains on a few Fashion-MNIST classes written as an image folder
(``ROOT/CLASS/*.png``, what ``--data`` reads); in-domain traffic replays
held-out photos of those classes. Then a camera upstream starts sending
negatives (every pixel ``255 - p``: light garments on a dark background turn
into dark garments on a light one). Brightness and the CNN's embedding move at
once, so the monitor sees drift; v1's answers degrade to little better than
chance; the ground truth is unchanged, so the labelled feedback teaches the
retrained model what a negative of each garment looks like.

The retraining reads v1's photos as its base data plus the feedback (stored as
the pixels the model saw), so the negatives are a real share of its rows and of
the test split the gate judges both versions on.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from driftloop.blueprints import BlueprintSpec
from driftloop.demo.sources import DemoData, DemoPlan, TrafficSource
from driftloop.demo.traffic import Example
from driftloop.training.presets import SearchSettings

# four classes a tiny CNN tells apart from a few hundred photos (names without '/':
# they become folder names)
CLASSES = ("Trouser", "Bag", "Sneaker", "Pullover")


@dataclass(frozen=True)
class DemoSizes:
    train_per_class: int  # photos of each class v1 trains on
    baseline_requests: int  # held-out photos replayed as in-domain traffic
    shifted_requests: int  # inverted photos replayed after the shift
    monitor_window: int  # events per drift window
    epochs: int  # CNN epochs (v1 and the retraining)


QUICK = DemoSizes(
    train_per_class=100,
    baseline_requests=100,
    shifted_requests=600,
    monitor_window=100,
    epochs=3,
)
FULL = DemoSizes(
    train_per_class=400,
    baseline_requests=300,
    shifted_requests=2000,
    monitor_window=300,
    epochs=5,
)


def invert(pixels: np.ndarray) -> np.ndarray:
    """The photographic negative of uint8 pixels."""
    return (255 - np.asarray(pixels, dtype=np.uint8)).astype(np.uint8)


def write_folder(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """``root/CLASS/NNNNN.png`` for every image."""
    from driftloop.datasets.images import png_bytes

    for index, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index:05d}.png").write_bytes(png_bytes(pixels))
    return root


def examples(images: np.ndarray, labels: np.ndarray) -> list[Example]:
    """v1 instances ``{"b64": PNG}`` and their true class."""
    from driftloop.datasets.images import png_bytes

    return [
        Example({"b64": base64.b64encode(png_bytes(pixels)).decode("ascii")}, str(label))
        for pixels, label in zip(images, labels, strict=True)
    ]


def select(
    sizes: DemoSizes, seed: int, directory: Path | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(v1's photos, held-out in-domain photos, photos for the shift) as (images, labels):
    disjoint slices of Fashion-MNIST's test part, ``CLASSES`` only, shuffled by ``seed``."""
    from driftloop.datasets.images import fashion_mnist_arrays

    images, labels = fashion_mnist_arrays("test", directory)
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.flatnonzero(np.isin(labels, CLASSES)))
    train = np.concatenate(
        [order[labels[order] == name][: sizes.train_per_class] for name in CLASSES]
    )
    rest = np.setdiff1d(order, train, assume_unique=True)
    rest = rest[rng.permutation(len(rest))]
    held_out = rest[: sizes.baseline_requests]
    later = rest[sizes.baseline_requests : sizes.baseline_requests + sizes.shifted_requests]
    if len(later) < sizes.shifted_requests:
        raise ValueError(
            f"Fashion-MNIST's test part has {len(rest)} photos of {', '.join(CLASSES)} "
            f"after v1's; the demo needs {sizes.baseline_requests + sizes.shifted_requests}"
        )
    return tuple((images[rows], labels[rows]) for rows in (train, held_out, later))


class VisionTraffic(TrafficSource):
    model = "vision"

    def __init__(self, fashion_mnist_dir: str | None = None) -> None:
        self.fashion_mnist_dir = fashion_mnist_dir

    def plan(self, quick: bool) -> DemoPlan:
        sizes = QUICK if quick else FULL
        # every row of the demo's folder; a short CNN fit with a hard cap on 2 shared cores
        spec = BlueprintSpec(
            "vision",
            {"max_rows": 0, "epochs": sizes.epochs, "max_seconds": 60.0, "width": 8},
        )
        # quick: the CNN alone (the pixel baselines are what `driftloop train vision` and the
        # bench compare it with; the loop needs one model that can learn the negatives)
        search = SearchSettings(candidates=("cnn",)).to_json() if quick else ""
        return DemoPlan(
            blueprint=spec.to_text(),
            dataset="images",
            monitor_window=sizes.monitor_window,
            shifted_feedback=0.9,
            pipeline_arguments={"search": search} if search else {},
        )

    def prepare(self, directory: Path, quick: bool, seed: int) -> DemoData:
        sizes = QUICK if quick else FULL
        (train, train_labels), held_out, later = select(sizes, seed, self.fashion_mnist_dir)
        root = write_folder(directory / "photos-v1", train, train_labels)
        shifted = (invert(later[0]), later[1])
        return DemoData(
            train_source=root,
            # the retraining's base: v1's photos; what is new is the labelled feedback
            retrain_source=root,
            train_rows=len(train),
            retrain_rows=len(train),
            baseline=examples(*held_out),
            shifted=examples(*shifted),
            describe_data=(
                f"data: Fashion-MNIST {', '.join(CLASSES)}: {len(train)} photos for v1 "
                f"(also the retraining's base), {len(held_out[0])} held out as live traffic, "
                f"{len(later[0])} for the shift"
            ),
            describe_shift="the camera now sends negatives (every pixel 255 - p)",
        )
