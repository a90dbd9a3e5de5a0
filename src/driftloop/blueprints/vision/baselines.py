"""Pixel baselines trained in the same run as the CNN: flattened, scaled pixels -> a linear
model or an MLP. ``PixelFeatures`` takes every input form the CNN takes (``pixels.as_images``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from sklearn.base import BaseEstimator, TransformerMixin

from driftloop.blueprints.vision.pixels import as_images


class PixelFeatures(TransformerMixin, BaseEstimator):
    """Images -> float32 [n, H*W*C] in 0..1; remembers the image shape it was fitted on."""

    def fit(self, X: Any, y: Any = None) -> PixelFeatures:
        images = as_images(X, None, "X")
        self.image_shape_ = tuple(int(d) for d in images.shape[1:])
        # encoded images are resized bilinearly (pixels.decode_image); kept on the model so
        # its logged requirements name Pillow, which decoding them needs
        self.resample_ = Image.Resampling.BILINEAR
        return self

    def transform(self, X: Any) -> np.ndarray:
        images = as_images(X, self.image_shape_, "X")
        return images.reshape(len(images), -1).astype(np.float32) / 255.0

    def images(self, X: Any) -> np.ndarray:
        return as_images(X, self.image_shape_, "X")
