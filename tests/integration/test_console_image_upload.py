"""An image uploaded through the console's prediction form is answered by the served model.

A small vision model (logistic regression on 240 Fashion-MNIST images, seconds of
CPU) is registered as champion and served by ``driftloop serve`` on loopback, behind
a token; the console (its ASGI app in process) posts the form to it over a real
socket. The form's file goes out as its base64 text, the form's answer must be the
predictor's own answer to the same PNG sent as v1 ``{"b64": ...}``, and the stored
prediction is the image the model saw.
"""

from __future__ import annotations

import base64
import html
import io
import re
import time

import numpy as np
import pytest
from PIL import Image

from driftloop.blueprints import BlueprintSpec
from driftloop.datasets.images import frame_pixels, png_bytes
from tests.integration.conftest_serving import register_blueprint_model, running_predictor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "fashion-upload"
TOKEN = "upl0ad-token"
SPEC = BlueprintSpec("vision", {"max_rows": 240})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from driftloop.blueprints import get_blueprint

    home = tmp_path_factory.mktemp("console-upload")
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    store_url = f"sqlite:///{home / 'store.db'}"
    frame = get_blueprint(SPEC).load(None, None)
    registered = register_blueprint_model(
        tracking, NAME, SPEC, frame, candidates=["logreg"], home=home
    )
    env = {
        "DRIFTLOOP_HOME": str(home),
        "MLFLOW_TRACKING_URI": tracking,
        "DRIFTLOOP_STORE_URL": store_url,
        "DRIFTLOOP_API_TOKEN": TOKEN,
        "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
    }
    with running_predictor(NAME, home, env=env) as predictor:
        yield registered, predictor, home, store_url


@pytest.fixture(scope="module")
def console(served):
    from fastapi.testclient import TestClient

    from driftloop.console.app import create_app
    from driftloop.console.config import ConsoleConfig
    from driftloop.settings import Settings

    _, predictor, home, _ = served
    config = ConsoleConfig.from_settings(
        Settings(home=home, api_token=TOKEN),
        tracking_uri="http://127.0.0.1:9",  # not asked by the form
        predictor_url=predictor.url,
    )
    with TestClient(create_app(config), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


def test_the_form_offers_a_file_input_for_the_image(console):
    page = console.get(f"/predict?model={NAME}")
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text
    assert 'type="file" name="image__file"' in page.text


def test_an_uploaded_image_is_answered_by_the_served_model(served, console):
    from driftloop.serving.client import PredictorClient
    from driftloop.store import PredictionStore

    registered, predictor, _, store_url = served
    pixels = frame_pixels(registered.val.head(1))[0]
    png = png_bytes(pixels)
    with PredictorClient(predictor.url, token=TOKEN) as client:
        (direct,) = client.predict_v1(NAME, [{"b64": base64.b64encode(png).decode()}])
    assert direct.output["label"] == str(registered.model.predict(pixels[None])[0])

    answer = console.post(
        "/predict",
        data={"model": NAME, "image": ""},
        files={"image__file": ("item.png", png, "image/png")},
    )
    assert answer.status_code == 200, answer.text
    label = re.search(r'id="answer-label">([^<]*)<', answer.text).group(1)
    assert label == direct.output["label"]
    assert 'id="answer-image-image" class="preview" src="data:image/png;base64,' in answer.text
    request_id = re.search(r'id="request-id">([^<]*)<', answer.text).group(1)

    store = PredictionStore(store_url, run_migrations=False)
    try:
        deadline = time.monotonic() + 30  # the predictor's store writer works in the background
        while (record := store.get_prediction(request_id)) is None:
            assert time.monotonic() < deadline, "the prediction was not stored in 30 s"
            time.sleep(0.2)
    finally:
        store.close()
    assert record.model_name == NAME and record.label == label
    (stored,) = record.inputs
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(stored["image"]))))
    assert np.array_equal(seen.reshape(pixels.shape), pixels)  # the model saw the file's pixels


def test_a_bad_upload_is_a_422_naming_the_field(console):
    empty = console.post(
        "/predict", data={"model": NAME}, files={"image__file": ("x.png", b"", "image/png")}
    )
    assert empty.status_code == 422
    assert "image: the file 'x.png' is empty" in html.unescape(empty.text)
    garbage = console.post(
        "/predict",
        data={"model": NAME},
        files={"image__file": ("notes.bin", b"not an image", "application/octet-stream")},
    )
    # the predictor refuses what it cannot decode (400); the console shows its reason
    assert garbage.status_code == 502
    error = re.search(r'id="predict-error">([^<]*)<', garbage.text).group(1)
    assert "inputs[image]" in error and "is not a PNG or JPEG image" in error, error
