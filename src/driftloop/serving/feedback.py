"""Feedback API, served by the predictor process next to KServe's routes.

``POST /v1/feedback/{request_id}`` with ``{"label": "..."}`` or
``{"correct": true|false, "label"?: "..."}``, and the batch form
``POST /v1/feedback`` with ``{"items": [{"request_id": ..., ...}]}``.
Unknown request id → 404; a label the model cannot predict → 422 naming the
allowed labels; a predictor running with ``DRIFTLOOP_PREDICTION_STORE=off``
→ 503 naming that setting; sending feedback again appends a row (history kept) and the
latest one counts.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from driftloop.serving import metrics, runtime
from driftloop.store import FeedbackRecord, PredictionRecord

MAX_BATCH_ITEMS = 1000


class FeedbackError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str | None = Field(default=None, max_length=256)
    correct: bool | None = None
    source: str = Field(default="api", max_length=64)


class FeedbackItem(FeedbackBody):
    request_id: str = Field(min_length=1, max_length=128)


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[FeedbackItem] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


def allowed_labels(prediction: PredictionRecord) -> list[str]:
    return list(prediction.outputs[0]["probabilities"]) if prediction.outputs else []


def resolve_feedback(
    prediction: PredictionRecord, label: str | None, correct: bool | None
) -> tuple[str | None, bool | None]:
    """Complete (label, correct) from what the user sent and what was predicted."""
    allowed = allowed_labels(prediction)
    if label is None and correct is None:
        raise FeedbackError(422, f'send "label" (one of {allowed}) and/or "correct"')
    if label is not None and label not in allowed:
        raise FeedbackError(422, f"label {label!r} is not one of the model's labels {allowed}")
    predicted = set(prediction.labels)
    if label is not None and correct is None:
        correct = predicted == {label}
    if label is None and len(predicted) == 1:
        (only,) = predicted
        if correct:
            label = only
        elif len(allowed) == 2:  # "wrong" on a binary model names the other label
            label = next(candidate for candidate in allowed if candidate != only)
    return label, correct


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


def submit_feedback(
    serving: runtime.ServingRuntime, request_id: str, body: FeedbackBody
) -> FeedbackRecord:
    prediction = serving.find_prediction(request_id)
    if prediction is None:
        raise FeedbackError(404, f"no prediction with request id {request_id!r}")
    label, correct = resolve_feedback(prediction, body.label, body.correct)
    record = serving.store.add_feedback(
        request_id, label=label, correct=correct, source=body.source
    )
    metrics.FEEDBACK.labels(model=prediction.model_name).inc()
    return record


def _as_json(record: FeedbackRecord) -> dict:
    return {
        "request_id": record.request_id,
        "label": record.label,
        "correct": record.correct,
        "value": record.value,  # the stored ground truth (the label, for this classifier API)
        "source": record.source,
        "created_at": record.created_at.isoformat(),
    }


def submit_batch(serving: runtime.ServingRuntime, batch: FeedbackBatch) -> list[FeedbackRecord]:
    """All or nothing: every item is checked before any is written."""
    resolved = []
    unknown = []
    for item in batch.items:
        prediction = serving.find_prediction(item.request_id, wait_s=0.2)
        if prediction is None:
            unknown.append(item.request_id)
            continue
        try:
            resolved.append(
                (item, prediction, *resolve_feedback(prediction, item.label, item.correct))
            )
        except FeedbackError as exc:
            message = f"items[request_id={item.request_id!r}]: {exc.message}"
            raise FeedbackError(exc.status, message) from exc
    if unknown:
        raise FeedbackError(404, f"no prediction with request ids {unknown}")
    records = []
    for item, prediction, label, correct in resolved:
        records.append(
            serving.store.add_feedback(
                item.request_id, label=label, correct=correct, source=item.source
            )
        )
        metrics.FEEDBACK.labels(model=prediction.model_name).inc()
    return records


router = APIRouter(tags=["feedback"])


@router.post("/v1/feedback/{request_id}")
async def post_feedback(request_id: str, body: FeedbackBody) -> dict:
    serving = _serving()
    try:
        record = await run_in_threadpool(submit_feedback, serving, request_id, body)
    except FeedbackError as exc:
        raise HTTPException(status_code=exc.status, detail=exc.message) from exc
    return _as_json(record)


@router.post("/v1/feedback")
async def post_feedback_batch(batch: FeedbackBatch) -> dict:
    serving = _serving()
    try:
        records = await run_in_threadpool(submit_batch, serving, batch)
    except FeedbackError as exc:
        raise HTTPException(status_code=exc.status, detail=exc.message) from exc
    return {"accepted": len(records), "items": [_as_json(r) for r in records]}
