"""The KServe model class for text classifiers (one class per input type; text for now).

Transport (REST v1/v2, gRPC) is KServe's; what this class adds is: load the
MLflow model, turn a checked request into labels/probabilities/low-confidence
flags in the contract's v1 or v2 shape, stamp the request id, and hand the
prediction to the process's serving runtime (store + payload logger) without
waiting for either. ``reload`` swaps in a new version atomically: a request
reads ``self._loaded`` once, so it is answered wholly by one version.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

import kserve
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from driftloop.serving import loader, metrics, runtime, wire
from driftloop.serving.classifier import Predictions, classify
from driftloop.serving.loader import LoadedModel
from driftloop.serving.validation import TEXT_INPUT, texts_from_v1, texts_from_v2
from driftloop.settings import Settings
from driftloop.store import PredictionRecord

log = logging.getLogger(__name__)

MAX_REQUEST_ID_CHARS = 128


def new_request_id() -> str:
    return uuid.uuid4().hex


def _request_id(explicit: Any, headers: dict[str, str]) -> str:
    request_id = explicit or headers.get("x-request-id") or new_request_id()
    request_id = str(request_id)
    if len(request_id) > MAX_REQUEST_ID_CHARS:
        raise InvalidInput(f"request id has {len(request_id)} characters; at most 128")
    return request_id


class TextClassifierModel(kserve.Model):
    """Serves an MLflow sklearn text classifier under ``name``."""

    def __init__(self, name: str, model_uri: str, settings: Settings) -> None:
        super().__init__(name, return_response_headers=True)
        self.model_uri = model_uri
        self.settings = settings
        self.tracking_uri = settings.resolved_tracking_uri
        self._loaded: LoadedModel | None = None
        self._reload_lock = threading.Lock()

    # KServe pickles registered models into its worker processes (--workers > 1).
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_reload_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reload_lock = threading.Lock()

    # --- loading and hot reload ---------------------------------------------------
    @property
    def served(self) -> LoadedModel | None:
        return self._loaded

    @property
    def served_version(self) -> str | None:
        loaded = self._loaded
        return None if loaded is None else loaded.version

    @property
    def watches_alias(self) -> bool:
        return loader.is_alias_uri(self.model_uri)

    def load(self) -> bool:
        self.swap(loader.load(self.model_uri, self.tracking_uri))
        return self.ready

    def swap(self, loaded: LoadedModel) -> None:
        previous = self._loaded
        self._loaded = loaded  # one reference assignment: atomic for readers
        self.ready = True
        metrics.set_served_version(self.name, loaded.version, previous and previous.version)
        if previous is None or previous.version != loaded.version:
            log.info("%s now serves version %s (%s)", self.name, loaded.version, loaded.uri)

    def reload(self, force: bool = False) -> bool:
        """Load the version ``model_uri`` points at now, if it differs; True when swapped."""
        with self._reload_lock:
            version = loader.current_version(self.model_uri, self.tracking_uri)
            if not force and self._loaded is not None and version == self._loaded.version:
                return False
            started = time.perf_counter()
            try:
                loaded = loader.load(self.model_uri, self.tracking_uri)
            except loader.ModelLoadError:
                metrics.MODEL_RELOADS.labels(model=self.name, outcome="failed").inc()
                raise
            metrics.MODEL_RELOAD_SECONDS.labels(model=self.name).observe(
                time.perf_counter() - started
            )
            metrics.MODEL_RELOADS.labels(model=self.name, outcome="swapped").inc()
            self.swap(loaded)
            return True

    # --- metadata -----------------------------------------------------------------
    def get_input_types(self) -> list[dict]:
        return [{"name": TEXT_INPUT, "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict]:
        return [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, -1]},
            {"name": "low_confidence", "datatype": "BOOL", "shape": [-1]},
        ]

    # --- inference ----------------------------------------------------------------
    def predict(
        self,
        payload: dict | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict | InferResponse:
        started = time.perf_counter()
        loaded = self._loaded
        if loaded is None:
            raise ModelNotReady(self.name)
        headers = headers or {}
        limits = {
            "max_instances": self.settings.max_instances,
            "max_chars": self.settings.max_text_chars,
        }
        v2 = isinstance(payload, InferRequest)
        if v2:
            texts = texts_from_v2(payload, **limits)
            request_id = _request_id(payload.id, headers)
        else:
            texts = texts_from_v1(payload, **limits)
            request_id = _request_id(None, headers)

        predictions = classify(loaded, texts, self.settings.low_confidence_threshold)
        if v2:
            response = self._v2_response(request_id, predictions, payload)
            request_body = {
                "id": request_id,
                "inputs": [
                    {"name": TEXT_INPUT, "datatype": "BYTES", "shape": [len(texts)], "data": texts}
                ],
            }
            response_body = self._v2_response_body(request_id, predictions)
        else:
            response = {
                "predictions": predictions.as_v1(),
                "request_id": request_id,
                "model_version": predictions.version,
            }
            request_body, response_body = payload, response
        if response_headers is not None:
            response_headers["x-request-id"] = request_id

        for label in predictions.labels:
            metrics.PREDICTIONS.labels(model=self.name, version=loaded.version, label=label).inc()
        self._record(request_id, texts, predictions, started, request_body, response_body)
        return response

    def _v2_outputs(
        self, predictions: Predictions, request: InferRequest | None = None
    ) -> list[InferOutput]:
        # binary data where the request asked for it (binary_data_output / binary_data, gRPC raw)
        return [
            wire.output_tensor("label", list(predictions.labels), "BYTES", request),
            wire.output_tensor("probabilities", predictions.probabilities, "FP32", request),
            wire.output_tensor("low_confidence", list(predictions.low_confidence), "BOOL", request),
        ]

    def _v2_response(
        self, request_id: str, predictions: Predictions, request: InferRequest
    ) -> InferResponse:
        labels = list(predictions.classes)
        # gRPC parameters hold scalars only, so there the label list travels as JSON text.
        parameters = {"labels": json.dumps(labels) if request.from_grpc else labels}
        return wire.infer_response(
            request,
            response_id=request_id,
            model_name=self.name,
            model_version=predictions.version,
            outputs=self._v2_outputs(predictions, request),
            parameters=parameters,
        )

    def _v2_response_body(self, request_id: str, predictions: Predictions) -> dict:
        n, k = predictions.probabilities.shape
        return {
            "model_name": self.name,
            "model_version": predictions.version,
            "id": request_id,
            "outputs": [
                {"name": "label", "datatype": "BYTES", "shape": [n], "data": predictions.labels},
                {
                    "name": "probabilities",
                    "datatype": "FP32",
                    "shape": [n, k],
                    "data": predictions.probabilities.reshape(-1).astype(float).tolist(),
                },
                {
                    "name": "low_confidence",
                    "datatype": "BOOL",
                    "shape": [n],
                    "data": predictions.low_confidence,
                },
            ],
            "parameters": {"labels": list(predictions.classes)},
        }

    def _record(
        self,
        request_id: str,
        texts: list[str],
        predictions: Predictions,
        started: float,
        request_body: Any,
        response_body: Any,
    ) -> None:
        serving = runtime.current()
        if serving is None:
            return
        record = PredictionRecord(
            request_id=request_id,
            model_name=self.name,
            model_version=predictions.version,
            inputs=texts,
            outputs=predictions.as_v1(),
            label=predictions.labels[0],
            confidence=predictions.confidences[0],
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )
        serving.record(record, request_body, response_body)
