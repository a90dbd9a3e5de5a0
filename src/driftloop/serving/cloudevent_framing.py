"""How a logged inference is framed as CloudEvents 1.0 over HTTP.

One event alone goes in *binary* mode, byte for byte what KServe's agent
sends: the attributes as ``ce-*`` headers, the inference JSON as the body.
Several events go as one CloudEvents JSON *batch*
(``application/cloudevents-batch+json``): a JSON array of structured-mode
events, each ``{"specversion", "id", "type", "source", "datacontenttype",
"inferenceservicename", "namespace", "component", "endpoint", "data"}`` --
``data_base64`` instead of ``data`` when the body is bytes this process did
not serialise itself and so may not be JSON.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
BATCH_HEADERS = {"content-type": BATCH_CONTENT_TYPE}


@dataclass(frozen=True)
class LoggedEvent:
    headers: dict[str, str]
    body: bytes
    body_is_json: bool = False  # serialised here, so it can be embedded as ``data`` verbatim


def cloudevent(
    *,
    event_type: str,
    request_id: str,
    body: dict | list | bytes,
    model_name: str,
    namespace: str,
    source: str,
    endpoint: str = "default",
    component: str = "predictor",
) -> LoggedEvent:
    """One binary-mode CloudEvent exactly as KServe's agent logger frames it."""
    serialised = not isinstance(body, bytes)
    # orjson: this runs on the request path, and it is several times faster than json
    data = orjson.dumps(body) if serialised else body
    headers = {
        "ce-specversion": "1.0",
        "ce-id": request_id,
        "ce-type": event_type,
        "ce-source": source,
        "ce-inferenceservicename": model_name,
        "ce-namespace": namespace,
        "ce-component": component,
        "ce-endpoint": endpoint,
        "content-type": "application/json",
    }
    return LoggedEvent(headers=headers, body=data, body_is_json=serialised)


def structured(event: LoggedEvent) -> bytes:
    """The event as one structured-mode JSON object (an element of a batch)."""
    attributes = {name[3:]: value for name, value in event.headers.items() if name[:3] == "ce-"}
    attributes["datacontenttype"] = event.headers.get("content-type", "application/json")
    if event.body_is_json:
        # splice the already-serialised body in: decoding and re-encoding it
        # would cost the serving process as much as the POST batching saves
        head = orjson.dumps(attributes)
        return head[:-1] + b',"data":' + event.body + b"}"
    attributes["data_base64"] = base64.b64encode(event.body).decode("ascii")
    return orjson.dumps(attributes)


def batch_body(events: Sequence[LoggedEvent]) -> bytes:
    """A CloudEvents JSON batch: the array of the events in structured mode."""
    return b"[" + b",".join(structured(event) for event in events) + b"]"
