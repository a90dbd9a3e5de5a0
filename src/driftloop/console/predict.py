"""The prediction form: one field per input the served model declares, answered by the predictor.

Nothing here knows a blueprint: the fields come from the model's OIP metadata
(``GET /v2/models/NAME``), a field's text is read as JSON where it parses as the
tensor's kind (numbers, lists) and as a string otherwise, and the answer is the
predictor's own (through :class:`driftloop.serving.client.PredictorClient`).

A ``BYTES`` input of one value per instance also takes a file, sent as OIP REST
carries ``BYTES`` in JSON: a text file as its text, any other file as the base64
text of its bytes (an image model reads a PNG or JPEG that way, v1 ``{"b64": ...}``
and v2 alike).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from driftloop.console.config import ConsoleConfig
from driftloop.serving.client import PredictorClient, PredictorError


class FormError(ValueError):
    """A field the user filled in that the model cannot take; names the field."""


# The console reads no bigger upload (the predictor's own body limit may be lower).
MAX_FILE_BYTES = 8 * 1024 * 1024
# A field's file input is named after the field with this suffix.
FILE_SUFFIX = "__file"


@dataclass(frozen=True)
class Upload:
    """A file chosen for a field: its bytes and what the browser said they are."""

    filename: str
    content_type: str
    content: bytes

    @property
    def data_url(self) -> str | None:
        """The file as a data: URL when it is an image the page can show back."""
        if not self.content_type.startswith("image/"):
            return None
        return f"data:{self.content_type};base64,{base64.b64encode(self.content).decode()}"


@dataclass(frozen=True)
class Field:
    name: str
    datatype: str
    shape: list[int]

    @property
    def is_text(self) -> bool:
        return self.datatype == "BYTES"

    @property
    def takes_file(self) -> bool:
        """One BYTES value per instance: a file's base64 text can be that value."""
        return self.is_text and len(self.shape) <= 1

    @property
    def file_input(self) -> str:
        return f"{self.name}{FILE_SUFFIX}"


def client(config: ConsoleConfig) -> PredictorClient:
    return PredictorClient(config.predictor_url, token=config.predictor_token, timeout_s=15.0)


def served_models(config: ConsoleConfig) -> list[str]:
    """What the predictor serves (KServe's ``GET /v1/models``)."""
    import httpx

    headers = (
        {"Authorization": f"Bearer {config.predictor_token}"} if config.predictor_token else {}
    )
    try:
        response = httpx.get(
            f"{config.predictor_url.rstrip('/')}/v1/models", headers=headers, timeout=5
        )
        response.raise_for_status()
        return [str(name) for name in response.json().get("models", [])]
    except (httpx.HTTPError, ValueError) as exc:
        raise PredictorError(
            f"cannot list the predictor's models at {config.predictor_url}: {exc}"
        ) from exc


def form_fields(config: ConsoleConfig, model: str) -> list[Field]:
    with client(config) as predictor:
        metadata = predictor.metadata(model)
    return [
        Field(spec["name"], spec.get("datatype", "BYTES"), list(spec.get("shape", [])))
        for spec in metadata.get("inputs") or []
    ]


def field_value(field: Field, text: str) -> Any:
    """A text box's content as the value the model's input takes."""
    text = text.strip()
    if not text:
        raise FormError(f"{field.name}: empty")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        if field.is_text:
            return text
        raise FormError(f"{field.name}: not a number or a JSON list: {text[:40]!r}") from None
    if field.is_text and not isinstance(parsed, list):
        return text  # "42" typed into a text input is the string "42"
    return parsed


def file_value(field: Field, upload: Upload) -> str:
    """A chosen file as the value of ``field``: a text file's text, else its bytes' base64."""
    if not field.takes_file:
        raise FormError(f"{field.name}: takes no file ({field.datatype} {field.shape})")
    if not upload.content:
        raise FormError(f"{field.name}: the file {upload.filename!r} is empty")
    if len(upload.content) > MAX_FILE_BYTES:
        raise FormError(f"{field.name}: the file is over {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    if upload.content_type.startswith("text/"):
        try:
            return upload.content.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise FormError(
                f"{field.name}: the text file {upload.filename!r} is not UTF-8"
            ) from None
    return base64.b64encode(upload.content).decode("ascii")


def instance_from_form(
    fields: list[Field], form: dict[str, str], uploads: dict[str, Upload] | None = None
) -> Any:
    """One instance from the form: a field's file, when one was chosen, wins over its text."""
    uploads = uploads or {}
    values = {
        f.name: (
            file_value(f, uploads[f.name])
            if f.name in uploads
            else field_value(f, form.get(f.name, ""))
        )
        for f in fields
    }
    return next(iter(values.values())) if len(values) == 1 else values


def predict(config: ConsoleConfig, model: str, instance: Any) -> dict[str, Any]:
    with client(config) as predictor:
        prediction = predictor.predict(model, [instance])[0]
    return {
        "request_id": prediction.request_id,
        "model_version": prediction.model_version,
        "output": prediction.output,
        "labels": list((prediction.output or {}).get("probabilities", {}) or {}),
    }


def send_feedback(config: ConsoleConfig, request_id: str, body: dict[str, Any]) -> dict:
    allowed = {key: body[key] for key in ("label", "value", "correct") if key in body}
    if not allowed:
        raise FormError("feedback needs one of label, value or correct")
    with client(config) as predictor:
        return predictor.feedback(request_id, source="console", **allowed)


__all__ = ["FormError", "PredictorError", "form_fields", "predict", "send_feedback"]
