"""A CloudEvents JSON batch into the monitor: every event as if it had come alone.

The batch is checked whole before any event is applied: one event that is not
a usable CloudEvent rejects the batch (400, naming each bad index and field)
and nothing of it is stored, so a sender can resend the good events without
creating duplicates or holes. Problems that only show when a request meets its
response (different declared counts of instances and predictions) can come from an
earlier message, so they are found while applying; they are listed in the
answer's ``rejected`` with their index, exactly where a lone event would have
had its 400, and the rest of the batch still counts. What only decoding finds
is counted later by the engine's worker (see ``monitor.app``).
"""

from __future__ import annotations

from driftloop.monitor.events import InvalidBatch, InvalidEvent, parse_batch
from driftloop.monitor.service import IntakeResult, MonitorService


def handle_batch(service: MonitorService, body: bytes) -> IntakeResult:
    try:
        events = parse_batch(body)
    except InvalidBatch as exc:
        service.metrics.event(
            service.model_name, service.engine.version, "invalid", len(exc.problems)
        )
        return IntakeResult(
            400,
            {
                "detail": f"invalid CloudEvent batch, no event applied: {exc}",
                "invalid": [{"index": p.index, "detail": p.detail} for p in exc.problems],
            },
        )
    except InvalidEvent as exc:
        service.metrics.event(service.model_name, service.engine.version, "invalid")
        return IntakeResult(400, {"detail": f"invalid CloudEvent batch: {exc}"})
    rejected = []
    paired = 0
    for index, event in enumerate(events):
        result = service.handle_event(event)
        if result.status >= 400:
            rejected.append({"index": index, "id": event.event_id, **result.detail})
        elif result.detail.get("paired"):
            paired += 1
    return IntakeResult(
        202,
        {
            "accepted": len(events) - len(rejected),
            "paired": paired,
            "rejected": rejected,
        },
    )
