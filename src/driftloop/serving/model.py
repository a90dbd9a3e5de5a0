"""The one KServe model class for every blueprint.

Transport (REST v1/v2 with the binary extension, gRPC) is KServe's; this class
fills KServe's own template:

* ``preprocess`` decodes the request with the served version's codec (the
  blueprint tagged on that version) into a batch, and assigns the request id;
* ``predict`` runs the model on the batch -- with adaptive batching on
  (``max_batch_size`` > 1, ``serving.batching``) in one model call shared with the
  requests that arrive meanwhile; each request still gets its own answer, id,
  record and payload event from ``postprocess``;
* ``postprocess`` encodes the answer in the caller's protocol, stamps the
  request id, and hands the prediction to the process's serving runtime (store
  + payload logger) without waiting for either.

``explain`` (KServe's EXPLAIN verb: preprocess -> explain -> postprocess) answers
the prediction and the top-k contributions per instance (``serving.explain``); an
explanation is not stored, logged or counted as a prediction.

``reload`` swaps in a new version atomically: a request reads ``self._loaded``
once (in preprocess) and is answered wholly by that version and its codec.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import kserve
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.infer_type import InferRequest, InferResponse

from driftloop.blueprints.codec import Answer, Batch, InputError, InputTensor, Limits
from driftloop.blueprints.explain import Explainer, ExplainError
from driftloop.serving import explain as explaining
from driftloop.serving import loader, metrics, runtime, wire
from driftloop.serving.batching import BatchPolicy, MicroBatcher
from driftloop.serving.loader import LoadedModel
from driftloop.settings import Settings
from driftloop.store import PredictionRecord

log = logging.getLogger(__name__)

MAX_REQUEST_ID_CHARS = 128


def new_request_id() -> str:
    return uuid.uuid4().hex


def client_request_id(explicit: Any, headers: dict[str, str]) -> str | None:
    """The caller's own id for a request (the v2 ``id``, else the ``x-request-id`` header).

    It is a correlation value only: echoed back as ``client_request_id``, never the
    id the store, the feedback API or the payload logger use -- those get a
    server-assigned one (:func:`new_request_id`), so no caller can take, overwrite
    or relabel another caller's prediction by reusing its id.
    """
    client_id = explicit if explicit not in (None, "") else headers.get("x-request-id")
    if client_id in (None, ""):
        return None
    client_id = str(client_id)
    if len(client_id) > MAX_REQUEST_ID_CHARS:
        raise InvalidInput(
            f"request id has {len(client_id)} characters; at most {MAX_REQUEST_ID_CHARS}"
        )
    return client_id


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_instances=settings.max_instances,
        max_chars=settings.max_text_chars,
        low_confidence=settings.low_confidence_threshold,
    )


@dataclass
class _Call:
    """One request on its way through preprocess -> predict -> postprocess."""

    loaded: LoadedModel
    request_id: str
    payload: dict | InferRequest
    batch: Batch
    started: float
    client_id: str | None = None
    answer: Answer | None = None
    explanations: list[dict] | None = None  # set by explain: the answer is not a prediction
    method: str = ""


def decode(loaded: LoadedModel, payload: dict | InferRequest) -> Batch:
    """The request's instances, checked by the version's codec; ``InvalidInput`` names the field."""
    try:
        if isinstance(payload, InferRequest):
            tensors = {
                name: InputTensor(name, infer_input.datatype, wire.input_tensor(infer_input))
                for name, infer_input in wire.inputs_by_name(payload).items()
            }
            return loaded.codec.decode_v2(tensors)
        if not isinstance(payload, dict):
            raise InputError('request body must be a JSON object with "instances"')
        if "instances" not in payload:
            raise InputError('missing "instances": send {"instances": [...]}')
        if not isinstance(payload["instances"], list):
            raise InputError('"instances" must be a list')
        return loaded.codec.decode_v1(payload["instances"])
    except InputError as exc:
        raise InvalidInput(str(exc)) from None


class BlueprintModel(kserve.Model):
    """Serves the MLflow model at ``model_uri`` under ``name``, as its blueprint says."""

    def __init__(self, name: str, model_uri: str, settings: Settings) -> None:
        super().__init__(name, return_response_headers=True)
        self.model_uri = model_uri
        self.settings = settings
        self.tracking_uri = settings.resolved_tracking_uri
        self.limits = limits_from(settings)
        self._loaded: LoadedModel | None = None
        self._reload_lock = threading.Lock()
        # (the version it explains, its explainer): built on the first explain of a version
        self._explainer: tuple[LoadedModel, Explainer] | None = None
        self.batch_policy = BatchPolicy(settings.max_batch_size, settings.max_latency_ms)
        self._batcher: MicroBatcher | None = None  # per process, made on first use

    # KServe pickles registered models into its worker processes (--workers > 1).
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_reload_lock", None)
        state["_explainer"] = None
        state["_batcher"] = None  # a worker process gathers its own requests
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
        self.swap(loader.load(self.model_uri, self.tracking_uri, self.limits))
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
                loaded = loader.load(self.model_uri, self.tracking_uri, self.limits)
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
    def _codec(self):  # noqa: ANN202 - the served version's Codec
        loaded = self._loaded
        if loaded is None:
            raise ModelNotReady(self.name)
        return loaded.codec

    def get_input_types(self) -> list[dict]:
        return [spec.as_metadata() for spec in self._codec().inputs]

    def get_output_types(self) -> list[dict]:
        return [spec.as_metadata() for spec in self._codec().outputs]

    def version_metadata(self) -> dict:
        """The served version: hyperparameters, test metrics, tags (``loader.version_metadata``);
        the v2 model metadata's ``parameters``."""
        loaded = self._loaded
        if loaded is None:
            raise ModelNotReady(self.name)
        return dict(loaded.metadata)

    # --- inference: KServe's preprocess -> predict -> postprocess -------------------
    def preprocess(self, payload: dict | InferRequest, headers: dict[str, str] | None = None):
        started = time.perf_counter()
        loaded = self._loaded
        if loaded is None:
            raise ModelNotReady(self.name)
        explicit = payload.id if isinstance(payload, InferRequest) else None
        client_id = client_request_id(explicit, headers or {})
        batch = decode(loaded, payload)
        return _Call(loaded, new_request_id(), payload, batch, started, client_id)

    async def predict(
        self,
        call: _Call,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> _Call:
        if not self.batch_policy.enabled:
            return self._predict_alone(call)
        try:
            call.answer = await self._batcher_here().predict(call.loaded.codec, call.batch)
        except (ValueError, TypeError) as exc:
            raise _cannot_take(exc) from None
        return call

    def _predict_alone(self, call: _Call) -> _Call:
        try:
            call.answer = call.loaded.codec.predict(call.batch)
        except (ValueError, TypeError) as exc:
            raise _cannot_take(exc) from None
        return call

    def _batcher_here(self) -> MicroBatcher:
        if self._batcher is None:
            self._batcher = MicroBatcher(self.name, self.batch_policy)
        return self._batcher

    def explain(self, call: _Call, headers: dict[str, str] | None = None) -> _Call:
        """The prediction and the top-k contributions per instance (``serving.explain``)."""
        top_k = explaining.top_k_of(call.payload)
        explaining.check_instance_count(len(call.batch), call.payload)
        explainer = self._explainer_for(call.loaded)
        self._predict_alone(call)  # an explanation is not batched: the explainer runs here
        try:
            attributions = explainer.explain(call.batch.model_input, call.answer.labels)
        except ExplainError as exc:
            raise explaining.ExplainUnavailable(
                f"model {self.name} version {call.loaded.version} cannot be explained: {exc}"
            ) from None
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"the model cannot explain these inputs: {exc}") from None
        call.explanations = [attribution.top(top_k) for attribution in attributions]
        call.method = explainer.method
        return call

    def _explainer_for(self, loaded: LoadedModel) -> Explainer:
        cached = self._explainer
        if cached is not None and cached[0] is loaded:
            return cached[1]
        explainer = explaining.build_explainer(self.name, loaded, self.tracking_uri)
        self._explainer = (loaded, explainer)
        return explainer

    def postprocess(
        self,
        call: _Call,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict | InferResponse:
        answer = call.answer
        version = call.loaded.version
        if response_headers is not None:
            response_headers["x-request-id"] = call.request_id
        if call.explanations is not None:  # an explanation: answered, never recorded
            return explaining.explain_response(
                name=self.name,
                version=version,
                request_id=call.request_id,
                client_id=call.client_id,
                method=call.method,
                predictions=answer.instances,
                explanations=call.explanations,
            )
        if isinstance(call.payload, InferRequest):
            response_body = self._v2_response_body(call, answer)
            response = self._v2_response(call, answer, response_body)
            request_body = {
                "id": call.request_id,
                "inputs": call.loaded.codec.v2_inputs(call.batch.summaries),
            }
        else:
            response = {
                "predictions": answer.instances,
                "request_id": call.request_id,
                "model_version": version,
            }
            if call.client_id is not None:
                response["client_request_id"] = call.client_id
            request_body, response_body = call.payload, response
        for label in answer.labels:
            metrics.PREDICTIONS.labels(
                model=self.name, version=version, label=label if label is not None else "value"
            ).inc()
        self._record(call, request_body, response_body)
        return response

    def _v2_response(self, call: _Call, answer: Answer, body: dict) -> InferResponse:
        request = call.payload
        if wire.plain_json_answer(request):
            # the REST JSON answer is ``body`` itself (what the payload logger sends too):
            # KServe's to_rest would convert every output from numpy to a list twice more
            return wire.JsonInferResponse(body)
        # gRPC parameters hold scalars only, so there lists travel as JSON text.
        parameters = {
            key: json.dumps(value) if request.from_grpc and isinstance(value, list) else value
            for key, value in _parameters(call, answer).items()
        }
        return wire.infer_response(
            request,
            response_id=call.request_id,
            model_name=self.name,
            model_version=call.loaded.version,
            outputs=[
                wire.output_tensor(name, array, datatype, request)
                for name, datatype, array in answer.tensors
            ],
            parameters=parameters or None,
        )

    def _v2_response_body(self, call: _Call, answer: Answer) -> dict:
        """The answer as plain OIP JSON: what the payload logger sends, and the REST JSON
        answer itself (keys in the order of KServe's ``InferResponse.to_rest``)."""
        return {
            "id": call.request_id,
            "model_name": self.name,
            "model_version": call.loaded.version,
            "outputs": [
                wire.json_output(name, array, datatype) for name, datatype, array in answer.tensors
            ],
            "parameters": _parameters(call, answer),
        }

    def _record(self, call: _Call, request_body: Any, response_body: Any) -> None:
        serving = runtime.current()
        if serving is None:
            return
        answer = call.answer
        record = PredictionRecord(
            request_id=call.request_id,
            model_name=self.name,
            model_version=call.loaded.version,
            inputs=call.batch.summaries,
            outputs=answer.instances,
            label=answer.labels[0],
            confidence=answer.confidences[0],
            latency_ms=(time.perf_counter() - call.started) * 1000.0,
        )
        serving.record(record, request_body, response_body)


def _cannot_take(exc: Exception) -> InvalidInput:
    # the codec let through values the model cannot take: the caller's input
    return InvalidInput(f"the model cannot take these inputs: {exc}")


def _parameters(call: _Call, answer: Answer) -> dict:
    """The answer's v2 parameters, plus the caller's own id (``client_request_id``) if sent."""
    if call.client_id is None:
        return dict(answer.parameters)
    return {**answer.parameters, "client_request_id": call.client_id}
