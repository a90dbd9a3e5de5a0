"""Per-request explanations for the served version (KServe's EXPLAIN verb).

``POST /v1/models/NAME:explain`` (KServe's route, replaced by driftloop's like
``:predict``) and ``POST /v2/models/NAME/explain`` (driftloop's: KServe 0.21 has no v2
explain route) take exactly the bodies predict takes, decoded by the same codec, plus
``top_k`` (v1: a body field; v2: ``parameters.top_k``; default 5). The answer has, per
instance, the prediction predict would give and the ``top_k`` largest contributions
(feature, the instance's value, contribution) to the output explained, with its base
value and the sum of the contributions not shown (``rest``). Explanations are not
stored as predictions, not logged to the monitor, and not counted as predictions.

The explainer is the served version's blueprint's (``Blueprint.explainer``), built on
first use for each version; one that explains against a background sample reads it
from the version's training run (``training.explain.load_background``).
"""

from __future__ import annotations

import re
from typing import Any

from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest, to_http_parameters

from driftloop.blueprints.explain import DEFAULT_TOP_K, Explainer, ExplainError
from driftloop.serving.loader import LoadedModel

MAX_TOP_K = 100
# explaining costs many model evaluations per instance: fewer instances than predict
MAX_EXPLAIN_INSTANCES = 32

_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
_RUN_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/")


class ExplainUnavailable(Exception):
    """The served version cannot be explained (no explainer, or none it can build)."""


def top_k_of(payload: dict | InferRequest) -> int:
    """The request's ``top_k`` (v1 body field, v2 ``parameters.top_k``), checked."""
    if isinstance(payload, InferRequest):
        parameters = to_http_parameters(payload.parameters) if payload.parameters else {}
        field, value = "parameters.top_k", parameters.get("top_k", DEFAULT_TOP_K)
    else:
        field, value = "top_k", payload.get("top_k", DEFAULT_TOP_K)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP_K:
        raise InvalidInput(f"{field} must be an integer from 1 to {MAX_TOP_K}, got {value!r}")
    return value


def check_instance_count(count: int, payload: dict | InferRequest) -> None:
    if count > MAX_EXPLAIN_INSTANCES:
        field = "inputs" if isinstance(payload, InferRequest) else "instances"
        raise InvalidInput(
            f"{field} has {count} items; explain takes at most {MAX_EXPLAIN_INSTANCES} per request"
        )


def run_id_of(uri: str, tracking_uri: str | None) -> str | None:
    """The training run of a loaded model URI (None when it has none we can tell)."""
    run = _RUN_URI.match(uri)
    if run:
        return run["run_id"]
    fixed = _VERSION_URI.match(uri)
    if not fixed:
        return None
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    return client.get_model_version(fixed["name"], fixed["version"]).run_id


def build_explainer(name: str, loaded: LoadedModel, tracking_uri: str | None) -> Explainer:
    """The served version's explainer; ``ExplainUnavailable`` says why there is none."""
    blueprint = loaded.blueprint
    try:
        explainer = blueprint.explainer(loaded.model)
        if explainer is not None and explainer.uses_background:
            from driftloop.training.explain import load_background

            run_id = run_id_of(loaded.uri, tracking_uri)
            background = None if run_id is None else load_background(run_id, tracking_uri)
            if background is None:  # not cached: a later request looks again
                raise ExplainError(
                    f"its {explainer.method} explains against a background sample of held-out "
                    "rows, and its training run has none logged (explanations/background.json, "
                    "logged by the evaluate step)"
                )
            explainer = blueprint.explainer(loaded.model, background)
    except ExplainError as exc:
        raise ExplainUnavailable(
            f"model {name} version {loaded.version} cannot be explained: {exc}"
        ) from None
    if explainer is None:
        raise ExplainUnavailable(
            f"model {name} ({blueprint.spec}) has no explainer: "
            f"the {blueprint.name} blueprint does not explain its predictions"
        )
    return explainer


def explain_response(
    *,
    name: str,
    version: str,
    request_id: str,
    client_id: str | None,
    method: str,
    predictions: list[dict],
    explanations: list[dict],
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "model_name": name,
        "model_version": version,
        "request_id": request_id,
        "method": method,
        "explanations": [
            {"prediction": prediction, **explanation}
            for prediction, explanation in zip(predictions, explanations, strict=True)
        ],
    }
    if client_id is not None:
        response["client_request_id"] = client_id
    return response
