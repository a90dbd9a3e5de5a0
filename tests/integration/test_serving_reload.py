"""Hot reload under continuous load with two workers; then the prediction log is complete."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from driftloop.store import PredictionStore
from tests.integration.conftest_serving import (
    register_text_model,
    running_predictor,
    set_alias,
    v2_body,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_alias_move_is_served_without_failures_then_every_prediction_is_logged(home):
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    first = register_text_model(tracking, "sentiment", c=10.0)
    second = register_text_model(tracking, "sentiment", c=0.3, alias=None)
    env = {"DRIFTLOOP_RELOAD_INTERVAL_S": "0.5"}
    results: list[tuple[float, int, str | None]] = []
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while not stop.is_set():
                try:
                    response = http.post("/v2/models/sentiment/infer", json=v2_body(["good stuff"]))
                    version = (
                        response.json().get("model_version")
                        if response.status_code == 200
                        else None
                    )
                    results.append((time.monotonic(), response.status_code, version))
                except httpx.HTTPError as exc:
                    results.append((time.monotonic(), 0, repr(exc)))

    with running_predictor("sentiment", home, env=env, workers=2) as predictor:
        client = threading.Thread(target=load, args=(predictor.url,))
        client.start()
        try:
            time.sleep(1.5)
            moved_at = time.monotonic()
            set_alias(tracking, "sentiment", "champion", second)
            alias_call_s = time.monotonic() - moved_at
            deadline = moved_at + 30
            while time.monotonic() < deadline:
                recent = [v for _, _, v in results[-30:]]
                if len(recent) == 30 and set(recent) == {second}:
                    break
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            stop.set()
            client.join(15)

        # each of the 2 workers has its own repository: a load would reach one of them
        loaded = httpx.post(f"{predictor.url}/v2/repository/models/sentiment/load", timeout=30)
        assert loaded.status_code == 409 and "--workers 2" in loaded.text, loaded.text
        metrics_text = httpx.get(f"{predictor.url}/metrics", timeout=10).text
        returncode = predictor.stop()

    failures = [r for r in results if r[1] != 200]
    assert not failures, failures[:5]
    versions = [v for _, _, v in results]
    assert versions[0] == first and versions[-1] == second
    last_old = max(i for i, v in enumerate(versions) if v == first)
    assert set(versions[last_old + 1 :]) == {second}
    first_new = next(t for t, _, v in results if v == second)
    all_new = results[last_old + 1][0]
    print(
        f"set_alias took {alias_call_s:.2f}s; gaps: "
        f"{max(b[0] - a[0] for a, b in zip(results, results[1:], strict=False)):.2f}s max"
    )
    print(
        f"{len(results)} requests; first answer from v{second} {first_new - moved_at:.2f}s "
        f"after the alias moved, all workers on it after {all_new - moved_at:.2f}s"
    )
    assert "driftloop_model_reloads_total" in metrics_text
    assert returncode == 0

    store = PredictionStore(f"sqlite:///{home / 'store.db'}")
    try:
        # every answered prediction is in the log after a graceful shutdown
        assert store.count_predictions("sentiment") == len(results)
    finally:
        store.close()
