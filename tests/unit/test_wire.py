"""serving.wire: one Open Inference Protocol reader/writer for JSON, the REST binary tensor
extension, gRPC typed contents and gRPC raw contents (built with KServe's own classes)."""

from __future__ import annotations

import json
import struct

import numpy as np
import orjson
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import (
    InferInput,
    InferRequest,
    InferResponse,
    RequestedOutput,
    serialize_byte_tensor,
)

from driftloop.blueprints.codec import Limits
from driftloop.blueprints.sentiment import SentimentBlueprint
from driftloop.serving import wire
from driftloop.serving.loader import LoadedModel
from driftloop.serving.model import decode

LIMITS = Limits(max_instances=5, max_chars=50)


def texts_from_v2(request):
    """The texts a sentiment model's codec reads from ``request``."""
    blueprint = SentimentBlueprint()
    loaded = LoadedModel(None, blueprint, blueprint.codec(None, LIMITS), "1", "models:/m/1")
    return decode(loaded, request).model_input


HEADER = "Inference-Header-Content-Length"


def json_body(inputs, **extra) -> bytes:
    return orjson.dumps({"inputs": inputs, **extra})


def binary_body(*tensors: tuple[str, np.ndarray, str], **extra) -> tuple[bytes, dict]:
    """A binary-extension body made by KServe's own InferRequest.to_rest."""
    inputs = []
    for name, array, datatype in tensors:
        infer_input = InferInput(name, list(array.shape), datatype)
        infer_input.set_data_from_numpy(array, binary_data=True)
        inputs.append(infer_input)
    body, json_length = InferRequest("m", inputs, **extra).to_rest()
    assert json_length is not None
    return body, {HEADER: str(json_length)}


def raw_bytes(items: list[bytes]) -> bytes:
    return serialize_byte_tensor(np.array(items, dtype=np.object_)).item()


def grpc_request(*tensors, raw=None) -> InferRequest:
    message = pb.ModelInferRequest(model_name="m", inputs=list(tensors), raw_input_contents=raw)
    return InferRequest.from_grpc(message)


def grpc_tensor(name="text", shape=(2,), datatype="BYTES", **contents):
    return pb.ModelInferRequest.InferInputTensor(
        name=name,
        datatype=datatype,
        shape=list(shape),
        contents=pb.InferTensorContents(**contents) if contents else None,
    )


def message(excinfo) -> str:
    return str(excinfo.value)


# --- reading inputs -------------------------------------------------------------------
def test_json_body_flat_and_nested():
    request = wire.parse_rest_body(
        json_body([{"name": "text", "datatype": "BYTES", "shape": [2, 1], "data": [["a"], ["b"]]}]),
        {},
        "m",
    )
    array = wire.input_tensor(wire.inputs_by_name(request)["text"])
    assert array.shape == (2, 1) and array.dtype == np.object_
    assert array.reshape(-1).tolist() == ["a", "b"]

    numbers = wire.parse_rest_body(
        json_body([{"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [1, 2, 3, 4]}]),
        {"content-type": "application/json"},
        "m",
    )
    x = wire.input_tensor(numbers.inputs[0])
    assert x.dtype == np.float32 and x.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "request body is not valid JSON"),
        (b"\xff\xfe", "request body is not valid UTF-8"),
        (b"[]", 'must be a JSON object with "inputs"'),
        (b"{}", 'missing "inputs"'),
        (b'{"inputs": [{"name": "text"}]}', "invalid v2 inference request: inputs.0.shape"),
    ],
)
def test_bad_json_bodies_name_the_problem(body, expected):
    with pytest.raises(InvalidInput) as caught:
        wire.parse_rest_body(body, {}, "m")
    assert expected in message(caught)


def test_binary_extension_round_trip_bytes_and_numbers():
    texts = np.array([b"great product", "caf\u00e9".encode()], dtype=np.object_)
    scores = np.array([[0.5, 1.5], [2.5, 3.5]], dtype=np.float32)
    body, headers = binary_body(("text", texts, "BYTES"), ("scores", scores, "FP32"))
    request = wire.parse_rest_body(body, headers, "m")
    named = wire.inputs_by_name(request)
    assert wire.input_tensor(named["text"]).tolist() == ["great product", "caf\u00e9"]
    np.testing.assert_array_equal(wire.input_tensor(named["scores"]), scores)
    assert texts_from_v2(request) == ["great product", "caf\u00e9"]


def test_binary_extension_header_is_case_insensitive_and_may_mix_json_inputs():
    header = {
        "inputs": [
            {
                "name": "text",
                "datatype": "BYTES",
                "shape": [1],
                "parameters": {"binary_data_size": 6},
            },
            {"name": "flag", "datatype": "BOOL", "shape": [1], "data": [True]},
        ]
    }
    head = orjson.dumps(header)
    body = head + raw_bytes([b"hi"])
    request = wire.parse_rest_body(body, {HEADER.lower(): str(len(head))}, "m")
    named = wire.inputs_by_name(request)
    assert wire.input_tensor(named["text"]).tolist() == ["hi"]
    assert wire.input_tensor(named["flag"]).tolist() == [True]


def test_tritonclient_http_request_body_is_read():
    httpclient = pytest.importorskip("tritonclient.http")
    tensor = httpclient.InferInput("text", [2], "BYTES")
    tensor.set_data_from_numpy(np.array([b"good", b"bad"], dtype=np.object_))  # binary default
    body, json_size = httpclient.InferenceServerClient.generate_request_body(
        [tensor], outputs=[httpclient.InferRequestedOutput("label", binary_data=True)]
    )
    assert json_size is not None
    request = wire.parse_rest_body(body, {HEADER: str(json_size)}, "m")
    assert texts_from_v2(request) == ["good", "bad"]
    assert wire.wants_binary_output(request, "label")
    assert not wire.wants_binary_output(request, "probabilities")


def binary_with(header_inputs: list[dict], tail: bytes) -> tuple[bytes, dict]:
    head = orjson.dumps({"inputs": header_inputs})
    return head + tail, {HEADER: str(len(head))}


def text_header(shape, size) -> dict:
    return {
        "name": "text",
        "datatype": "BYTES",
        "shape": shape,
        "parameters": {"binary_data_size": size},
    }


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda: binary_with([text_header([3], 12)], raw_bytes([b"ab", b"cd"])),
            "inputs[text].shape [3] does not match its 2 data items",
        ),
        (
            lambda: binary_with([text_header([2], 20)], raw_bytes([b"ab", b"cd"])),
            "binary part after the JSON header is 12 bytes but the inputs' binary_data_size "
            "add up to 20",
        ),
        (
            lambda: binary_with([text_header([1], 5)], struct.pack("<I", 9) + b"a"),
            "inputs[text] has unreadable data",
        ),
        (
            lambda: binary_with([text_header([1], 6)], raw_bytes([b"\xff\xfe"])),
            "inputs[text][0] is not valid UTF-8",
        ),
        (
            lambda: binary_with([text_header([-1], 6)], raw_bytes([b"ab"])),
            "inputs[text].shape must be a list of non-negative ints, got [-1]",
        ),
        (
            lambda: binary_with(
                [
                    {
                        "name": "x",
                        "datatype": "FP32",
                        "shape": [2],
                        "parameters": {"binary_data_size": 6},
                    }
                ],
                b"\x00" * 6,
            ),
            "inputs[x] has unreadable data: 6 bytes is not a whole number of FP32 items",
        ),
        (
            lambda: binary_with([text_header([1], "six")], raw_bytes([b"ab"])),
            "binary_data_size must be a non-negative int",
        ),
        (
            lambda: binary_with([{"name": "text", "datatype": "BYTES", "shape": [1]}], b""),
            "inputs.0.data: Field required",
        ),
        (lambda: (b"{}", {HEADER: "99"}), "is 99 but the request body has 2 bytes"),
        (lambda: (b"{}", {HEADER: "two"}), "must be a byte count"),
        (lambda: (b"{}xx", {HEADER: "2"}), 'missing "inputs"'),
        (lambda: (b"{nope}", {HEADER: "6"}), "request JSON header is not valid JSON"),
    ],
)
def test_bad_binary_bodies_are_invalid_input_naming_the_field(make, expected):
    body, headers = make()
    with pytest.raises(InvalidInput) as caught:
        wire.parse_rest_body(body, headers, "m")
    assert expected in message(caught)


def test_grpc_raw_input_contents_as_tritonclient_sends_them():
    request = grpc_request(grpc_tensor(shape=[2]), raw=[raw_bytes([b"good", b"bad"])])
    array = wire.input_tensor(request.inputs[0])
    assert array.tolist() == [b"good", b"bad"] and array.dtype == np.object_
    assert texts_from_v2(request) == ["good", "bad"]
    assert wire.wants_binary_output(request, "label")  # raw in -> raw out (all outputs)


def test_grpc_typed_and_raw_numbers():
    typed = grpc_request(grpc_tensor("x", [2], "FP32", fp32_contents=[1.0, 2.0]))
    assert wire.input_tensor(typed.inputs[0]).tolist() == [1.0, 2.0]
    assert not wire.wants_binary_output(typed, "label")
    raw = grpc_request(
        grpc_tensor("x", [1, 2], "INT64"), raw=[np.array([7, 8], dtype=np.int64).tobytes()]
    )
    assert wire.input_tensor(raw.inputs[0]).tolist() == [[7, 8]]
    words = grpc_request(grpc_tensor(bytes_contents=[b"a", b"b"]))
    assert wire.input_tensor(words.inputs[0]).tolist() == [b"a", b"b"]


def test_grpc_shape_mismatch_and_garbage_are_invalid_input():
    short = grpc_request(grpc_tensor(shape=[3]), raw=[raw_bytes([b"a"])])
    with pytest.raises(InvalidInput, match=r"inputs\[text\]\.shape \[3\] does not match its 1"):
        wire.input_tensor(short.inputs[0])
    with pytest.raises(InvalidInput, match=r"inputs\[text\]\.shape \[3\] does not match its 1"):
        texts_from_v2(short)
    garbage = grpc_request(grpc_tensor(shape=[1]), raw=[b"\x05\x00"])
    with pytest.raises(InvalidInput, match=r"inputs\[text\] has unreadable data"):
        wire.input_tensor(garbage.inputs[0])


def test_json_shape_and_data_problems():
    with pytest.raises(InvalidInput, match=r"inputs\[t\]\.shape \[3\] does not match its 2"):
        wire.input_tensor(InferInput("t", [3], "BYTES", data=["a", "b"]))
    with pytest.raises(InvalidInput, match=r"non-negative ints, got \[2, -1\]"):
        wire.input_tensor(InferInput("t", [2, -1], "BYTES", data=["a", "b"]))
    with pytest.raises(InvalidInput, match=r"inputs\[x\] has unreadable FP32 data"):
        wire.input_tensor(InferInput("x", [1], "FP32", data=["nope"]))
    with pytest.raises(InvalidInput, match=r"inputs\[x\]\.data must be a list"):
        wire.input_tensor(InferInput("x", [1], "FP32", data="1.0"))
    with pytest.raises(InvalidInput, match='"COMPLEX" is not an Open Inference Protocol type'):
        wire.input_tensor(InferInput("x", [1], "COMPLEX", data=[1]))


def test_inputs_by_name():
    with pytest.raises(InvalidInput, match='missing "inputs"'):
        wire.inputs_by_name(InferRequest("m", []))
    twice = InferRequest(
        "m", [InferInput("a", [1], "BYTES", ["x"]), InferInput("a", [1], "BYTES", ["y"])]
    )
    with pytest.raises(InvalidInput, match=r"inputs\[a\] appears more than once"):
        wire.inputs_by_name(twice)
    with pytest.raises(InvalidInput, match=r"inputs\[a\] appears more than once"):
        texts_from_v2(twice)


def test_json_tensor_reads_logged_bodies_leniently_but_checks_a_given_shape():
    assert wire.json_tensor(
        {"name": "text", "datatype": "BYTES", "data": [["a"], ["b"]]}
    ).tolist() == [
        "a",
        "b",
    ]
    with pytest.raises(InvalidInput, match=r"outputs\[label\]\.shape \[3\] does not match its 1"):
        wire.json_tensor(
            {"name": "label", "datatype": "BYTES", "shape": [3], "data": ["p"]}, "outputs"
        )


# --- writing outputs -------------------------------------------------------------------
def rest_request(parameters=None, outputs=None) -> InferRequest:
    return InferRequest(
        "m",
        [InferInput("text", [1], "BYTES", ["x"])],
        parameters=parameters,
        request_outputs=outputs,
    )


def answer(request: InferRequest) -> InferResponse:
    labels = np.array(["positive", "negative"], dtype=np.object_)
    probabilities = np.array([[0.1, 0.9], [0.8, 0.2]], dtype=np.float32)
    outputs = [
        wire.output_tensor("label", labels, "BYTES", request),
        wire.output_tensor("probabilities", probabilities, "FP32", request),
        wire.output_tensor("low_confidence", [False, True], "BOOL", request),
    ]
    return wire.infer_response(
        request,
        response_id="r1",
        model_name="m",
        model_version="3",
        outputs=outputs,
        # gRPC parameters hold scalars only (the model sends the list as JSON text there)
        parameters={
            "labels": '["negative", "positive"]' if request.from_grpc else ["negative", "positive"]
        },
    )


def test_json_outputs_by_default():
    body, headers = wire.encode_rest_response(answer(rest_request()))
    assert headers == {"content-type": "application/json"}
    document = json.loads(body)
    outputs = {o["name"]: o for o in document["outputs"]}
    assert outputs["label"]["data"] == ["positive", "negative"]
    assert outputs["low_confidence"]["data"] == [False, True]
    assert document["parameters"]["labels"] == ["negative", "positive"]


def test_binary_data_output_makes_every_output_binary_and_round_trips():
    body, headers = wire.encode_rest_response(answer(rest_request({"binary_data_output": True})))
    json_length = int(headers[wire.INFERENCE_CONTENT_LENGTH_HEADER])
    assert headers["content-type"] == "application/octet-stream" and json_length < len(body)
    head = json.loads(body[:json_length])
    assert all("data" not in o and o["parameters"]["binary_data_size"] > 0 for o in head["outputs"])
    assert head["parameters"]["labels"] == ["negative", "positive"]

    decoded = wire.parse_rest_response(body, headers)
    outputs = {o.name: o for o in decoded.outputs}
    assert wire.output_tensor_array(outputs["label"]).tolist() == ["positive", "negative"]
    np.testing.assert_allclose(
        wire.output_tensor_array(outputs["probabilities"]), [[0.1, 0.9], [0.8, 0.2]], rtol=1e-6
    )
    assert wire.output_tensor_array(outputs["low_confidence"]).tolist() == [False, True]


def test_per_output_binary_data_overrides_the_request_default_and_selects_outputs():
    request = rest_request(
        {"binary_data_output": True},
        [
            RequestedOutput("probabilities", {}),  # inherits binary_data_output
            RequestedOutput("label", {"binary_data": False}),
        ],
    )
    assert wire.wants_binary_output(request, "probabilities")
    assert not wire.wants_binary_output(request, "label")
    body, headers = wire.encode_rest_response(answer(request))
    head = json.loads(body[: int(headers[wire.INFERENCE_CONTENT_LENGTH_HEADER])])
    outputs = {o["name"]: o for o in head["outputs"]}
    assert set(outputs) == {"probabilities", "label"}  # only the requested outputs
    assert outputs["label"]["data"] == ["positive", "negative"]
    assert "data" not in outputs["probabilities"]


def test_grpc_raw_inputs_give_raw_outputs_for_every_output():
    request = grpc_request(grpc_tensor(shape=[1]), raw=[raw_bytes([b"x"])])
    message_ = answer(request).to_grpc()
    assert len(message_.raw_output_contents) == 3
    assert np.frombuffer(
        message_.raw_output_contents[1], dtype=np.float32
    ).tolist() == pytest.approx([0.1, 0.9, 0.8, 0.2])
    plain = answer(grpc_request(grpc_tensor(shape=[1], bytes_contents=[b"x"]))).to_grpc()
    assert len(plain.raw_output_contents) == 0
    assert list(plain.outputs[0].contents.bytes_contents) == [b"positive", b"negative"]


@pytest.mark.parametrize(
    ("datatype", "data", "problem"),
    [
        ("INT64", [2008, 2008.5], r"item 1 is 2008\.5, not an integer"),
        ("UINT8", [300], r"item 0 is 300, outside UINT8's range 0\.\.255"),
        ("UINT8", [-5], r"item 0 is -5, outside UINT8's range"),
        ("INT32", [1, None], r"item 1 is null: an INT32 tensor has no missing value"),
        ("FP32", [1.0, "1.5"], r"item 1 is '1\.5', not a number"),
        ("FP64", [True], r"item 0 is True, not a number"),
        ("BOOL", [True, None], r"item 1 is null: a BOOL tensor has no missing value"),
        ("BOOL", [1], r"item 0 is 1, not true or false"),
    ],
)
def test_json_items_that_numpy_would_cast_silently_are_invalid_input(datatype, data, problem):
    with pytest.raises(
        InvalidInput, match=rf"inputs\[x\] has unreadable {datatype} data: {problem}"
    ):
        wire.input_tensor(InferInput("x", [len(data)], datatype, data=data))


def test_json_items_that_fit_their_datatype():
    assert wire.input_tensor(
        InferInput("x", [3], "INT64", data=[1, 2.0, np.int64(3)])
    ).tolist() == [
        1,
        2,
        3,
    ]
    floats = wire.input_tensor(InferInput("x", [3], "FP32", data=[1, None, np.float32(2.5)]))
    assert floats[0] == 1.0 and np.isnan(floats[1]) and floats[2] == 2.5
    assert wire.input_tensor(
        InferInput("x", [2], "BOOL", data=[True, np.bool_(False)])
    ).tolist() == [
        True,
        False,
    ]


def test_a_plain_json_answer_is_what_kserves_to_rest_writes():
    """The predictor hands REST JSON answers over prebuilt (``JsonInferResponse``): the body
    must be what KServe's own ``InferResponse.to_rest`` writes for the same outputs."""
    tensors = [
        ("label", "BYTES", np.array(["positive", b"negative"], dtype=object)),
        ("probabilities", "FP32", np.array([[0.25, 0.75], [0.9, 0.1]], dtype=np.float64)),
        ("low_confidence", "BOOL", np.array([False, True])),
        ("count", "INT64", np.array([3, 4], dtype=np.int32)),
    ]
    parameters = {"labels": ["negative", "positive"]}
    request = InferRequest("m", [InferInput("text", [2], "BYTES", ["a", "b"])])
    assert wire.plain_json_answer(request)
    kserve_body, json_length = wire.infer_response(
        request,
        response_id="r1",
        model_name="m",
        model_version="3",
        outputs=[wire.output_tensor(name, array, dtype, request) for name, dtype, array in tensors],
        parameters=parameters,
    ).to_rest()
    assert json_length is None
    ours = wire.JsonInferResponse(
        {
            "id": "r1",
            "model_name": "m",
            "model_version": "3",
            "outputs": [wire.json_output(name, array, dtype) for name, dtype, array in tensors],
            "parameters": parameters,
        }
    )
    assert orjson.loads(wire.encode_rest_response(ours)[0]) == orjson.loads(
        wire.encode_rest_response(kserve_body)[0]
    )
    assert ours.id == "r1" and [o.name for o in ours.outputs] == [t[0] for t in tensors]
    # no parameters: left out, as KServe leaves them out
    bare = {"id": "r2", "model_name": "m", "model_version": None, "outputs": [], "parameters": {}}
    assert "parameters" not in wire.JsonInferResponse(bare).to_rest()[0]


@pytest.mark.parametrize(
    "request_for",
    [
        lambda r: setattr(r, "from_grpc", True),
        lambda r: r.parameters.update(binary_data_output=True),
        lambda r: setattr(r, "request_outputs", [RequestedOutput("label", {})]),
    ],
    ids=["grpc", "binary outputs", "requested outputs"],
)
def test_answers_that_are_not_plain_json_go_through_kserve(request_for):
    request = InferRequest("m", [InferInput("text", [1], "BYTES", ["a"])], parameters={})
    request_for(request)
    assert not wire.plain_json_answer(request)
