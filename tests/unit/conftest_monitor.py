"""Helpers for the monitor tests (imported explicitly, not a pytest conftest)."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pandas as pd

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"


def ce_headers(kind: str, event_id: str, model: str = "sentiment") -> dict[str, str]:
    """The headers KServe's payload logger sends (binary mode)."""
    return {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": REQUEST if kind == "request" else RESPONSE,
        "ce-source": f"http://localhost:9081/{model}",
        "ce-inferenceservicename": model,
        "ce-namespace": "driftloop",
        "ce-component": "predictor",
        "ce-endpoint": "default",
        "content-type": "application/json",
    }


def v2_request(texts: list[str], request_id: str | None = None) -> bytes:
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}
    if request_id:
        body["id"] = request_id
    return json.dumps(body).encode()


def v2_response(
    labels: list[str], classes=("negative", "positive"), request_id: str = "r"
) -> bytes:
    probabilities = []
    for label in labels:
        probabilities += [0.9 if c == label else 0.1 for c in classes]
    return json.dumps(
        {
            "model_name": "sentiment",
            "model_version": "1",
            "id": request_id,
            "outputs": [
                {"name": "label", "datatype": "BYTES", "shape": [len(labels)], "data": labels},
                {
                    "name": "probabilities",
                    "datatype": "FP32",
                    "shape": [len(labels), len(classes)],
                    "data": probabilities,
                },
                {
                    "name": "low_confidence",
                    "datatype": "BOOL",
                    "shape": [len(labels)],
                    "data": [False] * len(labels),
                },
            ],
            "parameters": {"labels": list(classes)},
        }
    ).encode()


def v1_request(texts: list[str]) -> bytes:
    return json.dumps({"instances": texts}).encode()


def v1_response(labels: list[str], classes=("negative", "positive")) -> bytes:
    return json.dumps(
        {
            "predictions": [
                {
                    "label": label,
                    "probabilities": {c: 0.9 if c == label else 0.1 for c in classes},
                    "low_confidence": False,
                }
                for label in labels
            ],
            "request_id": "r",
            "model_version": "1",
        }
    ).encode()


@lru_cache(maxsize=1)
def corpus() -> pd.DataFrame:
    from driftloop.datasets import load_dataset

    frame = load_dataset("sentiment-offline", full=True)
    order = np.random.default_rng(7).permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)


@lru_cache(maxsize=1)
def tweets() -> pd.DataFrame:
    from driftloop.datasets import load_dataset

    frame = load_dataset("sentiment-tweets")
    order = np.random.default_rng(11).permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)


def small_text_model(n_train: int = 1500, seed: int = 0):
    """The sentiment blueprint's TF-IDF + logistic-regression pipeline on a slice of the corpus."""
    from sklearn.linear_model import LogisticRegression

    from driftloop.blueprints.sentiment import text_pipeline

    train = corpus().iloc[:n_train]
    model = text_pipeline(
        LogisticRegression(C=4.0, max_iter=1000, random_state=seed), max_features=5000
    )
    return model.fit(train["text"].tolist(), train["label"].tolist())
