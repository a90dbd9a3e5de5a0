"""The KServe baseline: a bare ``kserve.Model`` around the raw model, nothing else.

What a user writes in twenty lines before adding anything driftloop adds
(request ids kept, low-confidence flags, payload logging, the prediction
store, metrics, reload): decode the v2 input, call ``predict_proba``, encode
the outputs. Every serving figure is divided by this server's figure.

    python -m bench.kserve_baseline --model_uri PATH --flavor sklearn \
        --model_name sentiment --http_port 8080 --grpc_port 8081
"""

from __future__ import annotations

import argparse
import sys
import uuid

import numpy as np


def load_raw_model(model_uri: str, flavor: str):
    """The estimator itself (no pyfunc wrapper): a sklearn Pipeline or an XGBClassifier."""
    if flavor == "sklearn":
        import mlflow.sklearn

        return mlflow.sklearn.load_model(model_uri)
    if flavor == "xgboost":
        import mlflow.xgboost

        return mlflow.xgboost.load_model(model_uri)
    raise ValueError(f"unknown flavor {flavor!r}: expected sklearn or xgboost")


def build_model(name: str, estimator):
    import kserve
    from kserve import InferOutput, InferRequest, InferResponse

    class BaselineModel(kserve.Model):
        def __init__(self) -> None:
            super().__init__(name)
            self.estimator = estimator
            self.ready = True

        def predict(self, payload: InferRequest, headers=None, response_headers=None):
            features = payload.inputs[0].as_numpy()
            if features.dtype == object:  # BYTES: str over REST, bytes over gRPC
                features = [
                    x.decode() if isinstance(x, bytes) else str(x) for x in features.ravel()
                ]
            probabilities = np.asarray(self.estimator.predict_proba(features), dtype=np.float32)
            classes = np.asarray(self.estimator.classes_)
            labels = classes[probabilities.argmax(axis=1)].astype(str).astype(object)
            outputs = [
                InferOutput("label", [len(labels)], "BYTES"),
                InferOutput("probabilities", list(probabilities.shape), "FP32"),
            ]
            outputs[0].set_data_from_numpy(labels, binary_data=False)
            outputs[1].set_data_from_numpy(probabilities, binary_data=False)
            return InferResponse(
                response_id=payload.id or str(uuid.uuid4()),
                model_name=self.name,
                infer_outputs=outputs,
            )

    return BaselineModel()


def main(argv: list[str] | None = None) -> int:
    import kserve
    from kserve.model_server import parser as kserve_parser

    parser = argparse.ArgumentParser(parents=[kserve_parser], description=__doc__.splitlines()[0])
    parser.add_argument("--model_uri", required=True, help="MLflow model URI or local model dir")
    parser.add_argument("--flavor", choices=["sklearn", "xgboost"], default="sklearn")
    args, _ = parser.parse_known_args(argv)
    model = build_model(args.model_name, load_raw_model(args.model_uri, args.flavor))
    kserve.ModelServer(
        http_port=args.http_port, grpc_port=args.grpc_port, workers=args.workers
    ).start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
