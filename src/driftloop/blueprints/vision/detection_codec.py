"""Detections on the wire: images in (as ``ImageCodec`` takes them), boxes out.

Inputs are those of image classification (v2 ``image`` UINT8 pixels or BYTES
PNG/JPEG; v1 ``{"b64": ...}``), at the detector's canvas size. Outputs, for a
batch of n images whose largest detection count is k (at least 1):

* v2 ``boxes`` FP32 [n, k, 4] (``x0, y0, x1, y1`` in input pixels), ``labels``
  BYTES [n, k], ``scores`` FP32 [n, k], best first, padded with zeros and empty
  labels past each image's ``num_detections`` INT32 [n];
* v1 ``{"predictions": [{"boxes": [[x0, y0, x1, y1], ...], "labels": [...],
  "scores": [...], "num_detections": k_i}]}``, the same lists unpadded (also what is
  stored per instance). The v2 answer's ``parameters.lengths`` names
  ``num_detections``, so a generic client (``serving.client``) unpads the rows.

A detection scores at least the detector's ``score_threshold``; the stored label
and confidence of an instance are those of its best detection (None when it has
none).
"""

from __future__ import annotations

import numpy as np

from driftloop.blueprints.codec import Answer, Batch, TensorSpec
from driftloop.blueprints.vision.codec import ImageCodec

DETECTION_OUTPUTS = (
    TensorSpec("boxes", "FP32", (-1, -1, 4)),
    TensorSpec("labels", "BYTES", (-1, -1)),
    TensorSpec("scores", "FP32", (-1, -1)),
    TensorSpec("num_detections", "INT32", (-1,)),
)


def detection_answer(detections: list[dict]) -> Answer:
    n = len(detections)
    k = max([1, *(len(d["labels"]) for d in detections)])
    boxes = np.zeros((n, k, 4), dtype=np.float32)
    labels = np.full((n, k), "", dtype=object)
    scores = np.zeros((n, k), dtype=np.float32)
    counts = np.zeros(n, dtype=np.int32)
    instances = []
    for i, found in enumerate(detections):
        count = len(found["labels"])
        counts[i] = count
        boxes[i, :count] = np.asarray(found["boxes"], dtype=np.float32).reshape(-1, 4)
        labels[i, :count] = list(found["labels"])
        scores[i, :count] = np.asarray(found["scores"], dtype=np.float32)
        # the FP32 values themselves: v1 and v2 answers agree to the bit
        instances.append(
            {
                "boxes": boxes[i, :count].tolist(),
                "labels": [str(label) for label in found["labels"]],
                "scores": scores[i, :count].tolist(),
                "num_detections": count,
            }
        )
    return Answer(
        instances=instances,
        tensors=[
            ("boxes", "FP32", boxes),
            ("labels", "BYTES", labels),
            ("scores", "FP32", scores),
            ("num_detections", "INT32", counts),
        ],
        labels=[found["labels"][0] if found["labels"] else None for found in detections],
        confidences=[
            float(found["scores"][0]) if found["labels"] else None for found in detections
        ],
        # rows past num_detections[i] are padding (serving.client reads only the first ones)
        parameters={"lengths": "num_detections"},
    )


class DetectionCodec(ImageCodec):
    outputs = DETECTION_OUTPUTS

    def predict(self, batch: Batch) -> Answer:
        return detection_answer(self.model.detect(batch.model_input))
