"""The per-blueprint KServe baseline: a bare ``kserve.Model`` around one blueprint's fitted model.

What a user writes for each use case before adding anything driftloop adds
(validation with named 400s, request ids kept, low-confidence flags, drift
warnings, payload logging, the prediction store, metrics, reload, batching):
read the v2 inputs the blueprint's clients send, call the estimator's own
``predict_proba`` / ``predict`` / ``recommend``, encode the outputs. The model
folder is the registered MLflow model itself (``mlflow.sklearn``, the flavour
every blueprint logs with), so both servers hold the same fitted object.

    python -m bench.blueprint_baseline --model_uri DIR --blueprint vision \
        --model_name NAME --http_port 8080 --grpc_port 8081
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

BLUEPRINTS = ("sentiment", "tabular", "vision", "forecast", "recsys")


def _texts(values: np.ndarray) -> list[str]:
    """BYTES items as text: str over REST, bytes over gRPC."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values.ravel()]


def _classification(estimator: Any, features: Any) -> list[tuple[str, str, np.ndarray]]:
    probabilities = np.asarray(estimator.predict_proba(features), dtype=np.float32)
    classes = np.asarray(estimator.classes_).astype(str)
    labels = classes[probabilities.argmax(axis=1)].astype(object)
    return [("label", "BYTES", labels), ("probabilities", "FP32", probabilities)]


def predict_text(estimator: Any, inputs: dict[str, np.ndarray]) -> list:
    (texts,) = inputs.values()
    return _classification(estimator, _texts(texts))


def predict_table(estimator: Any, inputs: dict[str, np.ndarray]) -> list:
    import pandas as pd

    # one tensor per column, as the table's clients send it; None (JSON null) is a missing cell
    frame = pd.DataFrame({name: values.ravel() for name, values in inputs.items()})
    frame = frame.fillna(value=np.nan).infer_objects()
    return _classification(estimator, frame)


def predict_images(estimator: Any, inputs: dict[str, np.ndarray]) -> list:
    from PIL import Image

    (encoded,) = inputs.values()
    # the CNN holds its input shape; a pixel pipeline holds it in its first step
    parts = [estimator, *(step for _, step in getattr(estimator, "steps", []))]
    height, width, channels = next(p.image_shape_ for p in parts if hasattr(p, "image_shape_"))
    mode = "L" if channels == 1 else "RGB"
    images = []
    for value in _texts(encoded):
        with Image.open(io.BytesIO(base64.b64decode(value))) as image:
            pixels = np.asarray(image.convert(mode).resize((width, height)), dtype=np.uint8)
        images.append(pixels.reshape(height, width, channels))
    return _classification(estimator, np.stack(images))


def predict_windows(estimator: Any, inputs: dict[str, np.ndarray]) -> list:
    prices = np.asarray(inputs["last_prices"], dtype=np.float32)
    windows = prices.reshape(-1, prices.shape[-1])  # [n, w]; [w] is one window
    predicted = np.asarray(estimator.predict(windows), dtype=np.float64).reshape(-1)
    return [("predicted_price", "FP64", predicted)]


def predict_recommendations(estimator: Any, inputs: dict[str, np.ndarray]) -> list:
    users = _texts(inputs["user_id"])
    recent = inputs.get("recent_items")
    sessions = (
        [_texts(row) for row in recent.reshape(len(users), -1)]
        if recent is not None
        else [[] for _ in users]
    )
    k = int(inputs["k"].ravel()[0]) if "k" in inputs else 10
    from driftloop.blueprints.recsys.codec import padded_lists

    ids, scores = padded_lists(estimator.recommend(users, sessions, k))
    return [("item_ids", "BYTES", ids), ("scores", "FP32", scores)]


PREDICTORS: dict[str, Callable[[Any, dict[str, np.ndarray]], list]] = {
    "sentiment": predict_text,
    "tabular": predict_table,
    "vision": predict_images,
    "forecast": predict_windows,
    "recsys": predict_recommendations,
}


def build_model(name: str, blueprint: str, estimator: Any):
    import kserve
    from kserve import InferOutput, InferRequest, InferResponse

    predict_outputs = PREDICTORS[blueprint]

    class BareBlueprintModel(kserve.Model):
        def __init__(self) -> None:
            super().__init__(name)
            self.ready = True

        def predict(self, payload: InferRequest, headers=None, response_headers=None):
            inputs = {tensor.name: tensor.as_numpy() for tensor in payload.inputs}
            outputs = []
            for output_name, datatype, array in predict_outputs(estimator, inputs):
                output = InferOutput(output_name, list(array.shape), datatype)
                output.set_data_from_numpy(array, binary_data=False)
                outputs.append(output)
            return InferResponse(
                response_id=payload.id or str(uuid.uuid4()),
                model_name=self.name,
                infer_outputs=outputs,
            )

    return BareBlueprintModel()


def main(argv: list[str] | None = None) -> int:
    import kserve
    import mlflow.sklearn
    from kserve.model_server import parser as kserve_parser

    parser = argparse.ArgumentParser(parents=[kserve_parser], description=__doc__.splitlines()[0])
    parser.add_argument("--model_uri", required=True, help="MLflow model folder or URI")
    parser.add_argument("--blueprint", required=True, choices=BLUEPRINTS)
    args, _ = parser.parse_known_args(argv)
    estimator = mlflow.sklearn.load_model(args.model_uri)
    model = build_model(args.model_name, args.blueprint, estimator)
    kserve.ModelServer(
        http_port=args.http_port, grpc_port=args.grpc_port, workers=args.workers
    ).start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
