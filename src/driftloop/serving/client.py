"""HTTP client for a running predictor (``driftloop predict``, the smoke step).

It knows no blueprint: v1 sends the instances as they are; v2 builds one input
per name the served model's metadata declares (an instance that is an object
gives each input its own field; a single-input model takes the instance
itself) and reads the answer back into per-instance outputs shaped like v1's
(``{"label", "probabilities", "low_confidence"}``, ``{"prediction"}``, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx


class PredictorError(RuntimeError):
    """The predictor refused the call or answered something off-contract."""


@dataclass(frozen=True)
class Prediction:
    instance: Any
    output: dict  # what v1 answers for this instance
    request_id: str
    model_version: str | None


class PredictorClient:
    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def __enter__(self) -> PredictorClient:
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise PredictorError(f"cannot reach predictor at {self.url}: {exc}") from exc
        if response.status_code != 200:
            raise PredictorError(
                f"{path} answered HTTP {response.status_code}: {response.text[:300]}"
            )
        return response

    def _json(self, method: str, path: str, body: dict | None = None) -> tuple[dict, str]:
        response = self._send(method, path, body)
        try:
            return response.json(), response.headers.get("x-request-id", "")
        except ValueError as exc:
            raise PredictorError(f"{path} answered non-JSON: {response.text[:200]}") from exc

    def metadata(self, model: str) -> dict:
        return self._json("GET", f"/v2/models/{model}")[0]

    def predict_v1(self, model: str, instances: list[Any]) -> list[Prediction]:
        body, header_id = self._json(
            "POST", f"/v1/models/{model}:predict", {"instances": list(instances)}
        )
        return parse_v1(body, instances, header_id)

    def predict_v2(self, model: str, instances: list[Any]) -> list[Prediction]:
        from kserve.errors import InvalidInput

        from driftloop.serving import wire  # imports KServe: only v2 callers pay for it

        request = v2_request(self.metadata(model), instances)
        path = f"/v2/models/{model}/infer"
        response = self._send("POST", path, request)
        try:  # JSON, or binary outputs after a JSON header (OIP binary tensor extension)
            answer = wire.parse_rest_response(response.content, response.headers)
        except InvalidInput as exc:
            raise PredictorError(f"{path} answered no v2 answer: {exc}") from exc
        return parse_v2(answer, instances, response.headers.get("x-request-id", ""))

    def predict(self, model: str, instances: list[Any], protocol: str = "v2") -> list[Prediction]:
        if protocol == "v2":
            return self.predict_v2(model, instances)
        return self.predict_v1(model, instances)

    def feedback(self, request_id: str, **body) -> dict:  # noqa: ANN003
        return self._json("POST", f"/v1/feedback/{request_id}", body)[0]


def v2_request(metadata: dict, instances: list[Any]) -> dict:
    """One input per name the model declares, filled from the instances."""
    specs = metadata.get("inputs") or []
    if not specs:
        raise PredictorError("the model's metadata declares no inputs")
    inputs = []
    for spec in specs:
        if len(specs) == 1 and not isinstance(instances[0], dict):
            data = list(instances)
        else:
            try:
                data = [instance[spec["name"]] for instance in instances]
            except (KeyError, TypeError):
                raise PredictorError(
                    f"every instance must give input {spec['name']!r} "
                    f"(the model takes {', '.join(s['name'] for s in specs)})"
                ) from None
        # an input whose instances are lists (a series' values) is [n, k]
        rows = [item for item in data if isinstance(item, list)]
        widths = {len(item) for item in rows}
        shape = [len(data), *widths] if len(rows) == len(data) and len(widths) == 1 else [len(data)]
        inputs.append(
            {"name": spec["name"], "datatype": spec["datatype"], "shape": shape, "data": data}
        )
    return {"inputs": inputs}


def parse_v1(body: dict, instances: list[Any], header_id: str = "") -> list[Prediction]:
    try:
        request_id = body["request_id"]
        predictions = body["predictions"]
        if len(predictions) != len(instances):
            raise PredictorError(
                f"v1 answer has {len(predictions)} predictions for {len(instances)} instances"
            )
        if header_id and header_id != request_id:
            raise PredictorError(f"x-request-id {header_id!r} differs from body {request_id!r}")
        return [
            Prediction(instance, dict(output), request_id, body.get("model_version"))
            for instance, output in zip(instances, predictions, strict=True)
        ]
    except (KeyError, TypeError, AttributeError) as exc:
        raise PredictorError(f"malformed v1 answer ({exc!r}): {str(body)[:200]}") from exc


def parse_v2(body: Any, instances: list[Any], header_id: str = "") -> list[Prediction]:
    """Per-instance outputs from a v2 answer (a decoded JSON body or a KServe
    ``InferResponse``; tensors read by ``serving.wire``, so binary outputs work too).

    A [n] tensor gives each instance a value; a [n, k] tensor whose k columns the
    answer's ``parameters.labels`` names gives each instance a {label: value} mapping;
    any other [n, ...] tensor gives each instance its row as (nested) lists. When
    ``parameters.lengths`` names an [n] tensor (e.g. ``num_detections``), the rows of
    the other tensors are padded: each instance keeps only its first ``lengths[i]`` items.
    """
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferResponse

    from driftloop.serving import wire

    n = len(instances)
    try:
        answer = body if isinstance(body, InferResponse) else InferResponse.from_rest(body)
        labels = (answer.parameters or {}).get("labels")
        if isinstance(labels, str):  # gRPC-style parameters carry the list as JSON text
            labels = json.loads(labels)
        lengths_name = (answer.parameters or {}).get("lengths")
        arrays = {tensor.name: wire.output_tensor_array(tensor) for tensor in answer.outputs}
        lengths = arrays[lengths_name].astype(int).tolist() if lengths_name else [None] * n
        outputs: list[dict] = [{} for _ in range(n)]
        for name, array in arrays.items():
            if array.shape[0] != n:
                raise PredictorError(f"v2 output {name!r} has {array.shape[0]} rows for {n}")
            for output, row, length in zip(outputs, array, lengths, strict=True):
                if array.ndim == 1:
                    output[name] = _plain(row)
                elif labels is not None and array.shape[1] == len(labels):
                    output[name] = {str(c): float(v) for c, v in zip(labels, row, strict=True)}
                else:
                    output[name] = [_plain(v) for v in row[:length]]
        if header_id and header_id != answer.id:
            raise PredictorError(f"x-request-id {header_id!r} differs from body {answer.id!r}")
        return [
            Prediction(instance, output, answer.id, answer.model_version)
            for instance, output in zip(instances, outputs, strict=True)
        ]
    except (KeyError, TypeError, IndexError, ValueError, InvalidInput) as exc:
        raise PredictorError(f"malformed v2 answer ({exc!r}): {str(body)[:200]}") from exc


def _plain(value: Any) -> Any:
    """A tensor element as JSON: bytes as text, numpy scalars as Python ones."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if getattr(value, "ndim", 0):  # a row of a [n, k, ...] tensor
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value
