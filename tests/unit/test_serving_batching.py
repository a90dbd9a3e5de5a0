"""Adaptive batching (serving.batching): concurrent requests share a model call, each keeps
its own answer; a request the model refuses fails alone; the codec joins and splits rows."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
from kserve.errors import InvalidInput
from sklearn.preprocessing import FunctionTransformer

from driftloop.blueprints.codec import Answer, Limits, join_rows, split_rows
from driftloop.blueprints.recsys.codec import RecsysCodec
from driftloop.serving.batching import BatchPolicy, MicroBatcher, run_together
from driftloop.serving.model import BlueprintModel
from driftloop.settings import Settings
from tests.unit.test_serving_model import loaded_version, pipeline, v2_request

TEXTS = [
    "good great fine",
    "hate it bad",
    "love it good",
    "awful bad bad",
    "meh ok so so",
    "great love",
    "bad",
    "fine good",
]
POISON = "poison pill"


class CountingModel:
    """A fitted pipeline that records the rows of every call it gets."""

    def __init__(self, model) -> None:  # noqa: ANN001
        self.model = model
        self.classes_ = model.classes_
        self.calls: list[int] = []

    def predict_proba(self, texts):  # noqa: ANN001, ANN201
        texts = list(texts)
        self.calls.append(len(texts))
        if POISON in texts:
            raise ValueError(f"cannot take {POISON!r}")
        return self.model.predict_proba(texts)


@pytest.fixture(scope="module")
def fitted():
    return pipeline()


def served(tmp_path, model, **batching) -> BlueprintModel:
    settings = Settings(home=tmp_path, **batching)
    served_model = BlueprintModel("m", "models:/m@champion", settings)
    served_model.swap(loaded_version(model, limits=Limits(max_instances=8)))
    return served_model


async def answer_all(model: BlueprintModel, requests: list) -> list:
    async def one(request):  # noqa: ANN001, ANN202
        call = model.preprocess(request, {})
        try:
            return model.postprocess(await model.predict(call), {}, {})
        except InvalidInput as exc:
            return exc

    return await asyncio.gather(*(one(request) for request in requests))


def labels_and_probabilities(response) -> tuple[list, np.ndarray]:  # noqa: ANN001
    outputs = {output.name: output for output in response.outputs}
    return list(outputs["label"].data), np.asarray(outputs["probabilities"].data)


def test_concurrent_requests_share_a_model_call_and_get_their_own_answers(tmp_path, fitted):
    counting = CountingModel(fitted)
    model = served(tmp_path, counting, max_batch_size=32, max_latency_ms=50)
    requests = [v2_request([text, TEXTS[-1 - i]]) for i, text in enumerate(TEXTS)]
    codec = model.served.codec
    alone = [codec.predict(codec.decode_v2(_tensors(request))) for request in requests]
    counting.calls.clear()

    responses = asyncio.run(answer_all(model, requests))

    assert sum(counting.calls) == 2 * len(requests)
    assert len(counting.calls) < len(requests)  # shared calls
    ids = [response.id for response in responses]
    assert len(set(ids)) == len(requests)
    for response, expected in zip(responses, alone, strict=True):
        labels, probabilities = labels_and_probabilities(response)
        assert labels == expected.labels
        np.testing.assert_allclose(probabilities, expected.tensors[1][2].reshape(-1), rtol=1e-6)


def _tensors(request):  # noqa: ANN001, ANN202
    from driftloop.blueprints.codec import InputTensor
    from driftloop.serving import wire

    return {
        name: InputTensor(name, tensor.datatype, wire.input_tensor(tensor))
        for name, tensor in wire.inputs_by_name(request).items()
    }


def test_a_request_the_model_refuses_fails_alone(tmp_path, fitted):
    counting = CountingModel(fitted)
    model = served(tmp_path, counting, max_batch_size=32, max_latency_ms=50)
    requests = [v2_request([text]) for text in TEXTS[:3]] + [v2_request([POISON])]
    requests += [v2_request([text]) for text in TEXTS[3:6]]

    responses = asyncio.run(answer_all(model, requests))

    refused = [r for r in responses if isinstance(r, InvalidInput)]
    assert len(refused) == 1 and POISON in str(refused[0])
    assert isinstance(responses[3], InvalidInput)
    answered = [r for i, r in enumerate(responses) if i != 3]
    for response, text in zip(answered, TEXTS[:6], strict=True):
        assert labels_and_probabilities(response)[0] == [fitted.predict([text])[0]]


def test_batches_hold_at_most_max_batch_size_instances(tmp_path, fitted):
    counting = CountingModel(fitted)
    model = served(tmp_path, counting, max_batch_size=3, max_latency_ms=50)
    requests = [v2_request([text]) for text in TEXTS] + [v2_request(TEXTS[:5])]

    responses = asyncio.run(answer_all(model, requests))

    assert not any(isinstance(r, InvalidInput) for r in responses)
    # a request above the limit is never cut: it runs alone
    assert all(size <= 3 or size == 5 for size in counting.calls)
    assert sum(counting.calls) == len(TEXTS) + 5


def test_batching_off_calls_the_model_once_per_request(tmp_path, fitted):
    counting = CountingModel(fitted)
    model = served(tmp_path, counting, max_batch_size=1)
    assert not model.batch_policy.enabled
    asyncio.run(answer_all(model, [v2_request([text]) for text in TEXTS]))
    assert counting.calls == [1] * len(TEXTS)


def test_a_lone_request_waits_a_loop_turn_not_the_latency_budget(tmp_path, fitted):
    model = served(tmp_path, fitted, max_batch_size=32, max_latency_ms=5_000)

    async def timed() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await model.predict(model.preprocess(v2_request(["good"]), {}))
        return loop.time() - started

    assert asyncio.run(timed()) < 2.0


def test_the_batcher_serves_a_new_event_loop(tmp_path, fitted):
    # a worker process, or a test, may run the same model on another loop
    model = served(tmp_path, fitted, max_batch_size=8, max_latency_ms=5)
    for _ in range(2):
        responses = asyncio.run(answer_all(model, [v2_request([t]) for t in TEXTS[:4]]))
        assert all(not isinstance(r, Exception) for r in responses)


def test_policy_bounds():
    with pytest.raises(ValueError, match="max_batch_size"):
        BatchPolicy(0, 5)
    with pytest.raises(ValueError, match="max_latency_ms"):
        BatchPolicy(8, 0)
    with pytest.raises(ValueError):
        Settings(max_batch_size=0)


def test_run_together_answers_each_batch_as_alone(fitted):
    codec = loaded_version(fitted, limits=Limits(max_instances=8)).codec
    batches = [codec.decode_v1(TEXTS[:3]), codec.decode_v1(TEXTS[3:4]), codec.decode_v1(TEXTS[4:])]
    together = run_together(codec, batches)
    for batch, answer in zip(batches, together, strict=True):
        alone = codec.predict(batch)
        assert answer.instances == alone.instances  # float32 rounding: equal, not close
        assert answer.labels == alone.labels and answer.parameters == alone.parameters


def test_join_rows_stacks_lists_arrays_and_frames():
    assert join_rows([["a"], ["b", "c"]]) == ["a", "b", "c"]
    stacked = join_rows([np.zeros((1, 3)), np.ones((2, 3))])
    assert stacked.shape == (3, 3) and stacked[1:].sum() == 6
    frame = join_rows([pd.DataFrame({"x": [1]}), pd.DataFrame({"x": [2, 3]})])
    assert frame["x"].tolist() == [1, 2, 3] and frame.index.tolist() == [0, 1, 2]
    with pytest.raises(TypeError, match="override join"):
        join_rows([object(), object()])


def test_split_rows_refuses_a_size_mismatch():
    answer = Answer(["a"], [("x", "FP64", np.zeros(1))], [None], [None])
    with pytest.raises(ValueError, match="1 rows"):
        split_rows(answer, [1, 1])


def test_recsys_split_gives_each_request_its_own_list_width():
    codec = RecsysCodec(model=None, limits=Limits())
    ids = np.array([["a", "b", "c"], ["d", "", ""]], dtype=object)
    scores = np.array([[0.3, 0.2, 0.1], [0.5, 0, 0]], dtype=np.float32)
    answer = Answer(
        instances=[
            {"item_ids": ["a", "b", "c"], "scores": [0.3, 0.2, 0.1], "segment": "s"},
            {"item_ids": ["d"], "scores": [0.5], "segment": "t"},
        ],
        tensors=[
            ("item_ids", "BYTES", ids),
            ("scores", "FP32", scores),
            ("segment", "BYTES", np.array(["s", "t"], dtype=object)),
        ],
        labels=["s", "t"],
        confidences=[None, None],
    )
    first, second = codec.split(answer, [1, 1])
    assert first.tensors[0][2].shape == (1, 3)
    assert second.tensors[0][2].tolist() == [["d"]] and second.tensors[1][2].shape == (1, 1)
    assert second.tensors[2][2].tolist() == ["t"]


def test_micro_batcher_answers_every_caller_in_order_of_rows(fitted):
    codec = loaded_version(fitted, limits=Limits(max_instances=8)).codec
    batcher = MicroBatcher("m", BatchPolicy(16, 20))

    async def all_of_them():  # noqa: ANN202
        return await asyncio.gather(
            *(batcher.predict(codec, codec.decode_v1([text])) for text in TEXTS)
        )

    answers = asyncio.run(all_of_them())
    batcher.close()
    assert [a.labels[0] for a in answers] == [str(x) for x in fitted.predict(TEXTS)]


def test_function_transformer_pipeline_failure_is_isolated(tmp_path, fitted):
    # a real sklearn pipeline whose first step refuses one input (ValueError), unwrapped
    from sklearn.pipeline import make_pipeline

    def refuse(texts):  # noqa: ANN001, ANN202
        if POISON in list(texts):
            raise ValueError("refused")
        return list(texts)

    model = make_pipeline(FunctionTransformer(refuse), *[step for _, step in fitted.steps])
    model.fit(TEXTS, ["positive", "negative"] * 4)
    server = served(tmp_path, model, max_batch_size=16, max_latency_ms=50)
    requests = [v2_request([POISON])] + [v2_request([text]) for text in TEXTS[:4]]
    responses = asyncio.run(answer_all(server, requests))
    assert isinstance(responses[0], InvalidInput)
    assert all(not isinstance(r, InvalidInput) for r in responses[1:])


def test_a_bad_batching_variable_is_one_cli_error_line(monkeypatch, capsys):
    from driftloop.cli import main
    from driftloop.settings import get_settings

    monkeypatch.setenv("DRIFTLOOP_MAX_BATCH_SIZE", "0")
    get_settings.cache_clear()
    try:
        assert main(["serve", "sentiment"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "driftloop: error: DRIFTLOOP_MAX_BATCH_SIZE='0': Input should be greater than or equal to 1"
    ]


@pytest.mark.parametrize("latency_logging", [False, True])
def test_kserve_timing_log_middleware_only_with_latency_logging(latency_logging):
    from fastapi import FastAPI
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from timing_asgi import TimingMiddleware

    from driftloop.serving.metrics import REQUEST_LATENCY
    from driftloop.serving.middleware import RequestMetricsMiddleware
    from driftloop.serving.server import DriftloopRESTServer

    app = FastAPI()
    repository = ModelRepository()
    server = DriftloopRESTServer(
        "unused:app",
        DataPlane(model_registry=repository),
        ModelRepositoryExtension(model_registry=repository),
        8080,
        settings=Settings(),
        latency_logging=latency_logging,
    )
    server._add_middlewares(app)
    classes = [middleware.cls for middleware in app.user_middleware]
    assert (TimingMiddleware in classes) is latency_logging
    # request latency is measured either way (driftloop_request_latency_seconds)
    assert RequestMetricsMiddleware in classes and REQUEST_LATENCY is not None


@pytest.mark.parametrize("access_log", [False, True])
def test_uvicorn_access_lines_only_when_asked_for(access_log):
    import logging

    from fastapi import FastAPI
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension

    from driftloop.serving.server import DriftloopRESTServer

    access = logging.getLogger("uvicorn.access")
    saved = access.level
    access.setLevel(logging.INFO)  # KServe's logging config: uvicorn logs one line a request
    repository = ModelRepository()
    server = DriftloopRESTServer(
        "unused:app",
        DataPlane(model_registry=repository),
        ModelRepositoryExtension(model_registry=repository),
        8080,
        settings=Settings(),
        access_log=access_log,
    )
    try:
        server._register_endpoints(FastAPI())
        assert access.isEnabledFor(logging.INFO) is access_log
    finally:
        access.setLevel(saved)
