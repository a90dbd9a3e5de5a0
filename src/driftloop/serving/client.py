"""HTTP client for a running predictor (used by ``driftloop predict`` and the smoke step)."""

from __future__ import annotations

from dataclasses import dataclass

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

    def _post(self, path: str, body: dict) -> tuple[dict, str]:
        try:
            response = self._http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise PredictorError(f"cannot reach predictor at {self.url}: {exc}") from exc
        if response.status_code != 200:
            raise PredictorError(
                f"{path} answered HTTP {response.status_code}: {response.text[:300]}"
            )
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
        body, header_id = self._post(f"/v2/models/{model}/infer", request)
        return parse_v2(body, texts, header_id)

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


def parse_v2(body: dict, texts: list[str], header_id: str = "") -> list[TextPrediction]:
    try:
        request_id = body["id"]
        outputs = {o["name"]: o for o in body["outputs"]}
        labels = outputs["label"]["data"]
        classes = body["parameters"]["labels"]
        flat = outputs["probabilities"]["data"]
        low = outputs["low_confidence"]["data"]
        n, k = len(texts), len(classes)
        if len(labels) != n or len(flat) != n * k or len(low) != n:
            raise PredictorError(f"v2 answer sizes do not match {n} texts x {k} labels")
        if outputs["probabilities"]["shape"] != [n, k]:
            raise PredictorError(f"v2 probabilities shape {outputs['probabilities']['shape']}")
        if header_id and header_id != request_id:
            raise PredictorError(f"x-request-id {header_id!r} differs from body {request_id!r}")
        return [
            TextPrediction(
                text=texts[i],
                label=str(labels[i]),
                probabilities={str(c): float(flat[i * k + j]) for j, c in enumerate(classes)},
                low_confidence=bool(low[i]),
                request_id=request_id,
                model_version=body.get("model_version"),
            )
            for i in range(n)
        ]
    except (KeyError, TypeError, IndexError) as exc:
        raise PredictorError(f"malformed v2 answer ({exc!r}): {str(body)[:200]}") from exc
