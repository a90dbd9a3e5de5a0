"""Feedback API, served by the predictor process next to KServe's routes.

``POST /v1/feedback/{request_id}`` with the ground truth as ``{"value": ...}``
(what a truth is comes from the blueprint of the version that answered: a
class label, a number, ...), ``{"label": "..."}`` for a classifier, or a
verdict ``{"correct": true|false}``; the batch form ``POST /v1/feedback`` with
``{"items": [{"request_id": ..., ...}]}``. Unknown request id → 404; a truth
that does not fit the model (a label it cannot predict, a non-number for a
regression) → 422 naming the field; a predictor running with
``DRIFTLOOP_PREDICTION_STORE=off`` → 503 naming that setting; sending feedback
again appends a row (history kept) and the latest one counts.

Bodies are read as strict JSON (orjson): a ``NaN``/``Infinity`` token, a number
too large for a double or a lone surrogate is a 422 ``json_invalid`` naming the
position, and a NUL character in any string is a 422 -- never a 500.
A batch looks its ids up in one query and waits at most once for queued writes.

Feedback by observation, ``POST /v1/feedback/observations`` with a list
``[{"series": ..., "date": "YYYY-MM-DD", "value": ...}]``: a truth that arrives as
what happened (a series' close on a day) rather than by request id. It resolves every
logged prediction whose instance named that series and date (the blueprint's
``Feedback.observation_key``), whichever version made it; an instance of a request of
several is resolved item by item (its truth is a list, ``null`` where not observed
yet). An observation no prediction named is accepted and resolves nothing. All or
nothing: every observation is checked before any feedback is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from driftloop.blueprints.feedback import Feedback
from driftloop.blueprints.feedback import FeedbackError as TruthError
from driftloop.serving import docs, loader, metrics, runtime
from driftloop.store import FeedbackRecord, ObservedPrediction, PredictionRecord

MAX_BATCH_ITEMS = 1000
BATCH_WAIT_S = 0.5  # one wait for queued writes per batch, not one per id


class _StrictJSONRequest(Request):
    """FastAPI reads bodies with ``request.json()``: here that is orjson, which refuses
    NaN/Infinity and lone surrogates (FastAPI answers its ``JSONDecodeError`` 422)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """Feedback bodies are JSON whatever the content type says: a body that is not
    strict JSON (bad UTF-8, NaN, a lone surrogate, ...) is a 422 naming the problem,
    before FastAPI would hand raw bytes to the model (and fail to echo them: a 500)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            body = await request.body()
            scope = request.scope
            document: Any = None
            if body:
                try:
                    document = orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    raise HTTPException(
                        status_code=422, detail=f"request body is not valid JSON: {exc}"
                    ) from None
                headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
            strict_request = _StrictJSONRequest(scope, request.receive)
            strict_request._body = body
            if body:
                strict_request._json = document
            return await handler(strict_request)

        return strict


def _without_nul(value: Any, field: str) -> Any:
    """``value`` when no string in it holds a NUL character (databases refuse them)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError(f"{field} must not contain NUL (\\u0000) characters")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


class FeedbackError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Any = Field(
        default=None,
        description="the ground truth, any JSON, as the model's blueprint says: a label "
        "for a classifier, a number for a regressor, ...",
    )
    label: str | None = Field(
        default=None, max_length=256, description="a classifier's true label (same as value)"
    )
    correct: bool | None = Field(
        default=None, description="a verdict on the prediction, with or without the truth"
    )
    source: str = Field(default="api", max_length=64, description="who or what sent it")

    @field_validator("value", "label", "source")
    @classmethod
    def _no_nul(cls, value: Any, info) -> Any:  # noqa: ANN001 - pydantic's ValidationInfo
        return _without_nul(value, info.field_name)


class FeedbackItem(FeedbackBody):
    request_id: str = Field(min_length=1, max_length=128)

    @field_validator("request_id")
    @classmethod
    def _id_no_nul(cls, value: str) -> str:
        return _without_nul(value, "request_id")


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[FeedbackItem] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class Observation(BaseModel):
    """What was observed: ``series``'s value on ``date``."""

    model_config = ConfigDict(extra="forbid")
    series: str = Field(min_length=1, max_length=128, description="the series' name")
    date: str = Field(description="the day observed, ISO YYYY-MM-DD")
    value: Any = Field(description="the observed value (a forecaster's realised close)")
    source: str = Field(default="observation", max_length=64, description="who sent it")

    @field_validator("series", "source")
    @classmethod
    def _text_no_nul(cls, value: str, info) -> str:  # noqa: ANN001 - pydantic's ValidationInfo
        return _without_nul(value, info.field_name)

    @field_validator("date")
    @classmethod
    def _iso_date(cls, value: str) -> str:
        try:
            if len(value) != 10:
                raise ValueError
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueError(f"date must be an ISO date YYYY-MM-DD, got {value!r}") from None

    @field_validator("value")
    @classmethod
    def _value_given(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("value is required: the observed value")
        return _without_nul(value, "value")


def allowed_labels(prediction: PredictionRecord) -> list[str]:
    first = prediction.outputs[0] if prediction.outputs else {}
    return list(first.get("probabilities", {})) if isinstance(first, dict) else []


def _verdict_only(prediction: PredictionRecord, correct: bool) -> str | None:
    """The label a bare right/wrong verdict implies, where it implies one."""
    allowed = allowed_labels(prediction)
    predicted = set(prediction.labels) - {None}
    if len(predicted) != 1:
        return None
    (only,) = predicted
    if correct:
        return only
    if len(allowed) == 2:  # "wrong" on a binary model names the other label
        return next(candidate for candidate in allowed if candidate != only)
    return None


def resolve_feedback(
    prediction: PredictionRecord, kind: Feedback, body: FeedbackBody
) -> tuple[Any, bool | None]:
    """(the ground truth to store, the verdict) from what the user sent and what was predicted."""
    truth = body.value if body.value is not None else body.label
    if truth is None:
        if body.correct is None:
            raise FeedbackError(422, 'send "value" (the ground truth) and/or "correct"')
        return _verdict_only(prediction, body.correct), body.correct
    try:
        value, correct = kind.parse(truth, prediction.outputs)
    except TruthError as exc:
        field = "value" if body.value is not None else "label"
        raise FeedbackError(422, f"{field}: {exc}") from None
    return value, correct if body.correct is None else body.correct


STORE_OFF = (
    "feedback needs the prediction store, and this predictor runs with "
    "DRIFTLOOP_PREDICTION_STORE=off; turn it on to accept feedback"
)


def _serving() -> runtime.ServingRuntime:
    serving = runtime.current()
    if serving is not None and not serving.settings.prediction_store:
        raise HTTPException(status_code=503, detail=STORE_OFF)
    if serving is None or serving.store is None:
        raise HTTPException(status_code=503, detail="prediction store is not open yet")
    return serving


def _kind(serving: runtime.ServingRuntime, prediction: PredictionRecord) -> Feedback:
    """What a ground truth is for the version that answered (its blueprint's feedback)."""
    try:
        return serving.blueprint_for(prediction.model_name, str(prediction.model_version)).feedback
    except loader.ModelLoadError as exc:
        raise FeedbackError(409, f"cannot judge feedback for this prediction: {exc}") from None


def submit_feedback(
    serving: runtime.ServingRuntime, request_id: str, body: FeedbackBody
) -> FeedbackRecord:
    prediction = serving.find_prediction(request_id)
    if prediction is None:
        raise FeedbackError(404, f"no prediction with request id {request_id!r}")
    value, correct = resolve_feedback(prediction, _kind(serving, prediction), body)
    record = serving.store.add_feedback(
        request_id, value=value, correct=correct, source=body.source
    )
    metrics.FEEDBACK.labels(model=prediction.model_name).inc()
    return record


def _as_json(record: FeedbackRecord) -> dict:
    return {
        "request_id": record.request_id,
        "label": record.label,
        "correct": record.correct,
        "value": record.value,
        "source": record.source,
        "created_at": record.created_at.isoformat(),
    }


def submit_batch(serving: runtime.ServingRuntime, batch: FeedbackBatch) -> list[FeedbackRecord]:
    """All or nothing: every item is checked before any is written."""
    resolved = []
    unknown = []
    found = serving.find_predictions([item.request_id for item in batch.items], BATCH_WAIT_S)
    for item in batch.items:
        prediction = found.get(item.request_id)
        if prediction is None:
            unknown.append(item.request_id)
            continue
        try:
            resolved.append(
                (item, prediction, *resolve_feedback(prediction, _kind(serving, prediction), item))
            )
        except FeedbackError as exc:
            message = f"items[request_id={item.request_id!r}]: {exc.message}"
            raise FeedbackError(exc.status, message) from exc
    if unknown:
        raise FeedbackError(404, f"no prediction with request ids {unknown}")
    records = []
    for item, prediction, value, correct in resolved:
        records.append(
            serving.store.add_feedback(
                item.request_id, value=value, correct=correct, source=item.source
            )
        )
        metrics.FEEDBACK.labels(model=prediction.model_name).inc()
    return records


def _observation_truth(prediction: PredictionRecord, current: Any, observed: dict[int, Any]) -> Any:
    """The request's truth after ``observed`` (instance -> value): a single instance's
    value, or the request's list with these instances set (others as they were, or null)."""
    if len(prediction.outputs) == 1:
        return observed[0]
    size = len(prediction.outputs)
    merged = list(current) if isinstance(current, list) and len(current) == size else [None] * size
    for instance, value in observed.items():
        merged[instance] = value
    return merged


def submit_observations(
    serving: runtime.ServingRuntime, observations: list[Observation]
) -> tuple[list[dict], int]:
    """(per observation: its key and how many predictions it resolved, feedback rows
    written). All or nothing: every resolved prediction is checked before any is written."""
    if serving.writer is not None:  # predictions still queued in this process count too
        serving.writer.flush()
    by_key: dict[tuple[str, str], Observation] = {}
    for index, observation in enumerate(observations):
        key = (observation.series, observation.date)
        if key in by_key and by_key[key].value != observation.value:
            raise FeedbackError(
                422,
                f"[{index}]: {observation.series} on {observation.date} is observed twice "
                "with different values",
            )
        by_key[key] = observation
    found: list[ObservedPrediction] = serving.store.predictions_observing(by_key)
    per_request: dict[str, tuple[PredictionRecord, dict[int, Any], Observation]] = {}
    for hit in found:
        observation = by_key[(hit.series, hit.date)]
        entry = per_request.setdefault(hit.prediction.request_id, (hit.prediction, {}, observation))
        entry[1][hit.instance] = observation.value
    current = serving.store.current_feedback_values(
        [rid for rid, (p, _, _) in per_request.items() if len(p.outputs) > 1]
    )
    resolved = []
    for request_id, (prediction, observed, observation) in per_request.items():
        truth = _observation_truth(prediction, current.get(request_id), observed)
        kind = _kind(serving, prediction)
        try:
            value, correct = kind.parse(truth, prediction.outputs)
        except TruthError as exc:
            position = observations.index(observation)
            raise FeedbackError(422, f"[{position}].value: {exc}") from None
        resolved.append((prediction, value, correct, observation.source))
    for prediction, value, correct, source in resolved:
        serving.store.add_feedback(
            prediction.request_id, value=value, correct=correct, source=source
        )
        metrics.FEEDBACK.labels(model=prediction.model_name).inc()
    counts: dict[tuple[str, str], set[str]] = {key: set() for key in by_key}
    for hit in found:
        counts[(hit.series, hit.date)].add(hit.prediction.request_id)
    items = [
        {"series": o.series, "date": o.date, "value": o.value,
         "predictions": len(counts[(o.series, o.date)])}
        for o in observations
    ]  # fmt: skip
    return items, len(resolved)


router = APIRouter(tags=["feedback"], route_class=StrictJSONRoute)


# before /v1/feedback/{request_id}, which would otherwise take "observations" as an id
@router.post(
    "/v1/feedback/observations",
    summary="Observed values that resolve every prediction made for them",
)
async def post_observations(
    observations: Annotated[
        list[Observation],
        Body(
            min_length=1,
            max_length=MAX_BATCH_ITEMS,
            openapi_examples={
                "close": {
                    "summary": "a realised close",
                    "value": [{"series": "msft", "date": "2017-03-02", "value": 64.01}],
                }
            },
        ),
    ],
) -> dict:
    serving = _serving()
    try:
        items, written = await run_in_threadpool(submit_observations, serving, observations)
    except FeedbackError as exc:
        raise HTTPException(status_code=exc.status, detail=exc.message) from exc
    return {
        "accepted": len(items),
        "resolved": sum(item["predictions"] for item in items),
        "feedback_rows": written,
        "items": items,
    }


@router.post(
    "/v1/feedback/{request_id}",
    summary="Ground truth for one prediction",
    responses=docs.FEEDBACK_RESPONSES,
)
async def post_feedback(
    request_id: str,
    body: Annotated[FeedbackBody, Body(openapi_examples=docs.FEEDBACK_EXAMPLES)],
) -> dict:
    serving = _serving()
    try:
        record = await run_in_threadpool(submit_feedback, serving, request_id, body)
    except FeedbackError as exc:
        raise HTTPException(status_code=exc.status, detail=exc.message) from exc
    return _as_json(record)


@router.post(
    "/v1/feedback",
    summary="Ground truth for several predictions (all or nothing)",
    responses=docs.FEEDBACK_BATCH_RESPONSES,
)
async def post_feedback_batch(
    batch: Annotated[FeedbackBatch, Body(openapi_examples=docs.FEEDBACK_BATCH_EXAMPLES)],
) -> dict:
    serving = _serving()
    try:
        records = await run_in_threadpool(submit_batch, serving, batch)
    except FeedbackError as exc:
        raise HTTPException(status_code=exc.status, detail=exc.message) from exc
    return {"accepted": len(records), "items": [_as_json(r) for r in records]}
