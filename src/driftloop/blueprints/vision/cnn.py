"""A small convolutional classifier in torch behind the scikit-learn estimator API.

``CNNClassifier`` takes what every vision model takes (``pixels.as_images``) and
string labels, so the shared training, search, gate, predictor and MLflow
logging treat it like any sklearn classifier:

* ``max_iter`` is the number of epochs; with ``warm_start=True`` another
  ``fit`` trains on up to ``max_iter`` epochs in all instead of starting over.
  That is the protocol ``training.staged`` reads to score a trial after each
  epoch for Optuna's Hyperband pruner (as for HistGradientBoosting, whose
  ``early_stopping`` parameter it shares);
* ``max_seconds`` bounds the wall-clock time of one ``fit`` (checked after each
  batch; ``stopped_by_time_`` says when it bound);
* ``embed`` returns the penultimate layer (the drift monitor projects it);
* ``n_threads`` (default 1) is torch's thread count while fitting: on a shared
  CPU its thread pool contends with everyone else (one 28x28 epoch of 1,024
  images took 2.6 s on one thread and 15 s on two at load 18 here); raise it on
  a dedicated machine.

Pickled (MLflow, the drift reference) as its parameters plus the network's
``state_dict``, so unpickling needs only torch, not this process's objects.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any

import numpy as np
from PIL import Image
from sklearn.base import BaseEstimator, ClassifierMixin

from driftloop.blueprints.vision.pixels import as_images

PREDICT_BATCH = 512


@contextmanager
def torch_threads(n_threads: int | None):
    """torch's intra-op thread count set to ``n_threads`` (None: unchanged) for a block."""
    import torch

    previous = torch.get_num_threads()
    if n_threads:
        torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class TorchNetworkState:
    """Pickles an estimator as its attributes plus its network's ``state_dict`` (``net_``),
    so unpickling needs torch and this module, not the process that trained it.
    Subclasses rebuild the untrained network from their fitted attributes."""

    def _build_network(self):
        raise NotImplementedError

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_optimizer", None)
        net = state.pop("net_", None)
        if net is not None:
            state["net_state_"] = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        return state

    def __setstate__(self, state: dict) -> None:
        weights = state.pop("net_state_", None)
        self.__dict__.update(state)
        self._optimizer = None
        if weights is not None:
            self.net_ = self._build_network()
            self.net_.load_state_dict(weights)
            self.net_.eval()


def _network(channels: int, width: int, n_classes: int):
    import torch.nn as nn

    def block(inputs: int, outputs: int, pool: bool) -> list:
        layers = [
            nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
            nn.BatchNorm2d(outputs),
            nn.ReLU(inplace=True),
        ]
        return [*layers, nn.MaxPool2d(2)] if pool else layers

    features = nn.Sequential(
        *block(channels, width, True),
        *block(width, 2 * width, True),
        *block(2 * width, 4 * width, False),
        nn.AdaptiveAvgPool2d(3),  # any input size -> 3x3 maps
        nn.Flatten(),
        nn.Linear(4 * width * 9, 128),
        nn.ReLU(inplace=True),
    )
    return nn.ModuleDict(
        {"features": features, "head": nn.Sequential(nn.Dropout(0.25), nn.Linear(128, n_classes))}
    )


class CNNClassifier(TorchNetworkState, ClassifierMixin, BaseEstimator):
    def __init__(
        self,
        max_iter: int = 3,
        learning_rate: float = 3e-3,
        width: int = 16,
        batch_size: int = 64,
        weight_decay: float = 1e-4,
        lr_decay: float = 0.7,
        max_seconds: float | None = None,
        warm_start: bool = False,
        early_stopping: bool = False,
        n_iter_no_change: int = 2,
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
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.n_threads = n_threads

    # --- fitting -------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> CNNClassifier:

        images = as_images(X, None, "X")
        labels = np.asarray(y).astype(str)
        if len(images) != len(labels):
            raise ValueError(f"X has {len(images)} images but y has {len(labels)} labels")
        classes = np.unique(labels).astype(object)
        resume = (
            self.warm_start
            and hasattr(self, "net_")
            and list(classes) == list(self.classes_)
            and tuple(images.shape[1:]) == self.image_shape_
        )
        with self._threads():
            if not resume:
                self._initialise(images, classes)
            self._train(images, np.searchsorted(self.classes_.astype(str), labels))
        return self

    def _threads(self):
        return torch_threads(getattr(self, "n_threads", None))

    def _initialise(self, images: np.ndarray, classes: np.ndarray) -> None:
        import torch

        torch.manual_seed(self.random_state)
        self.classes_ = classes
        self.image_shape_ = tuple(int(d) for d in images.shape[1:])
        # encoded images are resized bilinearly (pixels.decode_image); kept on the model so
        # its logged requirements name Pillow, which decoding them needs
        self.resample_ = Image.Resampling.BILINEAR
        scaled = images.astype(np.float32) / 255.0
        self.pixel_mean_ = float(scaled.mean())
        self.pixel_std_ = float(scaled.std()) or 1.0
        self.net_ = self._build_network()
        self.epochs_done_ = 0
        self.loss_curve_: list[float] = []
        self.stopped_by_time_ = False
        self._optimizer = None

    def _tensor(self, images: np.ndarray):
        import torch

        batch = (
            torch.from_numpy(np.array(images, dtype=np.uint8, copy=True))
            .permute(0, 3, 1, 2)
            .float()
        )
        return (batch / 255.0 - self.pixel_mean_) / self.pixel_std_

    def _train(self, images: np.ndarray, codes: np.ndarray) -> None:
        import torch
        import torch.nn.functional as F

        if self._optimizer is None:
            self._optimizer = torch.optim.AdamW(
                self.net_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
            )
        rng = np.random.default_rng(self.random_state + self.epochs_done_)
        fit_rows = np.arange(len(images))
        # at least ~10 optimiser steps per epoch, however few the images (a tiny folder)
        batch_size = int(max(8, min(int(self.batch_size), len(images) // 10)))
        held_out = None
        if self.early_stopping and len(images) >= 20:
            order = rng.permutation(len(images))
            cut = max(1, len(images) // 10)
            held_out, fit_rows = order[:cut], order[cut:]
        best, stale = np.inf, 0
        started = time.monotonic()
        self.stopped_by_time_ = False
        while self.epochs_done_ < int(self.max_iter):
            # the rate decays per epoch done, not over max_iter: a warm-started fit
            # continues the same schedule whatever max_iter the next stage sets
            for group in self._optimizer.param_groups:
                group["lr"] = self.learning_rate * self.lr_decay**self.epochs_done_
            self.net_.train()
            total, seen = 0.0, 0
            shuffled = rng.permutation(fit_rows)
            for start in range(0, len(shuffled), batch_size):
                rows = shuffled[start : start + batch_size]
                inputs = self._tensor(images[rows])
                targets = torch.from_numpy(codes[rows]).long()
                loss = F.cross_entropy(self._forward(inputs), targets)
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
            if held_out is not None:
                loss = float(
                    -np.log(
                        np.maximum(
                            self._proba(images[held_out])[
                                np.arange(len(held_out)), codes[held_out]
                            ],
                            1e-12,
                        )
                    ).mean()
                )
                best, stale = (loss, 0) if loss < best else (best, stale + 1)
                if stale >= self.n_iter_no_change:
                    break

    def _forward(self, inputs):
        return self.net_["head"](self.net_["features"](inputs))

    # --- predicting ----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("CNNClassifier is not fitted yet: call fit first")

    def _outputs(self, images: np.ndarray, part: str) -> np.ndarray:
        import torch

        self.net_.eval()
        chunks = []
        with torch.no_grad(), self._threads():
            for start in range(0, len(images), PREDICT_BATCH):
                inputs = self._tensor(images[start : start + PREDICT_BATCH])
                features = self.net_["features"](inputs)
                if part == "embedding":
                    chunks.append(features.numpy())
                else:
                    chunks.append(torch.softmax(self.net_["head"](features), dim=1).numpy())
        width = 128 if part == "embedding" else len(self.classes_)
        return np.concatenate(chunks) if chunks else np.zeros((0, width), dtype=np.float32)

    def _proba(self, images: np.ndarray) -> np.ndarray:
        probabilities = self._outputs(images, "probabilities").astype(np.float64)
        return probabilities / probabilities.sum(axis=1, keepdims=True)  # exact in float64

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        return self._proba(as_images(X, self.image_shape_, "X"))

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def embed(self, X: Any) -> np.ndarray:
        """The penultimate layer (128 values per image)."""
        self._check_fitted()
        return self._outputs(as_images(X, self.image_shape_, "X"), "embedding")

    def _build_network(self):
        return _network(self.image_shape_[2], int(self.width), len(self.classes_))
