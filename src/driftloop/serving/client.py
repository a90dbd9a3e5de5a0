"""HTTP client for a running predictor (used by ``driftloop predict`` and the smoke step)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx


class PredictorError(RuntimeError):
    """The predictor refused the call or answered something off-contract."""


@dataclass(frozen=True)
class TextPrediction:
    text: str
    label: str
    probabilities: dict[str, float]
    low_confidence: bool
    request_id: str
    model_version: str | None

    @property
    def confidence(self) -> float:
        return max(self.probabilities.values())


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

    def _send(self, path: str, body: dict) -> httpx.Response:
        try:
            response = self._http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise PredictorError(f"cannot reach predictor at {self.url}: {exc}") from exc
        if response.status_code != 200:
            raise PredictorError(
                f"{path} answered HTTP {response.status_code}: {response.text[:300]}"
            )
        return response

    def _post(self, path: str, body: dict) -> tuple[dict, str]:
        response = self._send(path, body)
        try:
            return response.json(), response.headers.get("x-request-id", "")
        except ValueError as exc:
            raise PredictorError(f"{path} answered non-JSON: {response.text[:200]}") from exc

    def predict_v1(self, model: str, texts: list[str]) -> list[TextPrediction]:
        body, header_id = self._post(f"/v1/models/{model}:predict", {"instances": list(texts)})
        return parse_v1(body, texts, header_id)

    def predict_v2(self, model: str, texts: list[str]) -> list[TextPrediction]:
        request = {
            "inputs": [
                {"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": list(texts)}
            ]
        }
        from kserve.errors import InvalidInput

        from driftloop.serving import wire  # imports KServe: only v2 callers pay for it

        path = f"/v2/models/{model}/infer"
        response = self._send(path, request)
        try:  # JSON, or binary outputs after a JSON header (OIP binary tensor extension)
            answer = wire.parse_rest_response(response.content, response.headers)
        except InvalidInput as exc:
            raise PredictorError(f"{path} answered no v2 answer: {exc}") from exc
        return parse_v2(answer, texts, response.headers.get("x-request-id", ""))

    def predict(self, model: str, texts: list[str], protocol: str = "v2") -> list[TextPrediction]:
        return self.predict_v2(model, texts) if protocol == "v2" else self.predict_v1(model, texts)

    def feedback(self, request_id: str, **body) -> dict:  # noqa: ANN003
        return self._post(f"/v1/feedback/{request_id}", body)[0]


def parse_v1(body: dict, texts: list[str], header_id: str = "") -> list[TextPrediction]:
    try:
        request_id = body["request_id"]
        predictions = body["predictions"]
        if len(predictions) != len(texts):
            raise PredictorError(
                f"v1 answer has {len(predictions)} predictions for {len(texts)} texts"
            )
        if header_id and header_id != request_id:
            raise PredictorError(f"x-request-id {header_id!r} differs from body {request_id!r}")
        return [
            TextPrediction(
                text=text,
                label=str(p["label"]),
                probabilities={str(k): float(v) for k, v in p["probabilities"].items()},
                low_confidence=bool(p["low_confidence"]),
                request_id=request_id,
                model_version=body.get("model_version"),
            )
            for text, p in zip(texts, predictions, strict=True)
        ]
    except (KeyError, TypeError, AttributeError) as exc:
        raise PredictorError(f"malformed v1 answer ({exc!r}): {str(body)[:200]}") from exc


def parse_v2(body: Any, texts: list[str], header_id: str = "") -> list[TextPrediction]:
    """Predictions from a v2 answer: a decoded JSON body or a KServe ``InferResponse``
    (tensors read by ``serving.wire``, so binary outputs and nested data work too)."""
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferResponse

    from driftloop.serving import wire

    try:
        answer = body if isinstance(body, InferResponse) else InferResponse.from_rest(body)
        request_id = answer.id
        outputs = {o.name: o for o in answer.outputs}
        labels = wire.output_tensor_array(outputs["label"]).reshape(-1).tolist()
        probabilities = wire.output_tensor_array(outputs["probabilities"])
        low = wire.output_tensor_array(outputs["low_confidence"]).reshape(-1).tolist()
        classes = answer.parameters["labels"]
        if isinstance(classes, str):  # gRPC-style parameters carry the list as JSON text
            classes = json.loads(classes)
        n, k = len(texts), len(classes)
        if len(labels) != n or probabilities.size != n * k or len(low) != n:
            raise PredictorError(f"v2 answer sizes do not match {n} texts x {k} labels")
        if list(probabilities.shape) != [n, k]:
            raise PredictorError(f"v2 probabilities shape {list(probabilities.shape)}")
        if header_id and header_id != request_id:
            raise PredictorError(f"x-request-id {header_id!r} differs from body {request_id!r}")
        return [
            TextPrediction(
                text=texts[i],
                label=_text(labels[i]),
                probabilities={str(c): float(probabilities[i, j]) for j, c in enumerate(classes)},
                low_confidence=bool(low[i]),
                request_id=request_id,
                model_version=answer.model_version,
            )
            for i in range(n)
        ]
    except (KeyError, TypeError, IndexError, ValueError, InvalidInput) as exc:
        raise PredictorError(f"malformed v2 answer ({exc!r}): {str(body)[:200]}") from exc


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
