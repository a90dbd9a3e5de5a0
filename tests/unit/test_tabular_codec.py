"""The tabular codec: v1/v2 decoding against the model's schema, and errors that name the field."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from driftloop.blueprints.codec import InputError, InputTensor, Limits
from driftloop.blueprints.tabular.blueprint import TabularBlueprint
from driftloop.blueprints.tabular.codec import TableCodec, check_value, table_schema


def frame(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    colour = rng.choice(["red", "green"], n)
    flag = rng.random(n) < 0.5
    score = x + (colour == "red") + flag
    return pd.DataFrame(
        {
            "x": x,
            "z": rng.uniform(0, 10, n),
            "colour": colour,
            "flag": flag,
            "day": (pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="D")).strftime(
                "%Y-%m-%d"
            ),
            "y": np.where(score > np.median(score), "high", "low"),
            "amount": score * 3,
        }
    )


def fitted(blueprint: TabularBlueprint, train: pd.DataFrame):
    candidate = "logistic_regression" if blueprint.classifier else "ridge"
    model = blueprint.candidates(0)[candidate]
    return model.fit(blueprint.features(train), blueprint.targets(train))


@pytest.fixture(scope="module")
def mixed() -> TableCodec:
    blueprint = TabularBlueprint(target="y", task="classification")
    model = fitted(blueprint, frame().drop(columns=["amount"]))
    return blueprint.codec(model, Limits(max_instances=4))


@pytest.fixture(scope="module")
def numeric() -> TableCodec:
    blueprint = TabularBlueprint(target="amount", task="regression")
    model = fitted(blueprint, frame()[["x", "z", "amount"]])
    return blueprint.codec(model)


ROW = {"x": 0.5, "z": 3, "colour": "red", "flag": True, "day": "2024-02-01"}


def tensor(name: str, datatype: str, data, dtype=None) -> InputTensor:
    return InputTensor(name, datatype, np.asarray(data, dtype=dtype))


def mixed_tensors(**override) -> dict[str, InputTensor]:
    tensors = {
        "x": tensor("x", "FP32", [0.5, np.nan], np.float32),
        "z": tensor("z", "INT64", [[3], [4]], np.int64),
        "colour": tensor("colour", "BYTES", [b"red", b"green"], object),
        "flag": tensor("flag", "BOOL", [True, False], bool),
        "day": tensor("day", "BYTES", ["2024-02-01", "2024-03-01"], object),
    }
    return tensors | override


# --- the model's inputs --------------------------------------------------------------
def test_inputs_follow_the_schema(mixed, numeric):
    assert [(s.name, s.datatype) for s in mixed.inputs] == [
        ("x", "FP32"),
        ("z", "FP32"),
        ("colour", "BYTES"),
        ("flag", "BOOL"),
        ("day", "BYTES"),
    ]
    assert [s.name for s in mixed.outputs] == ["label", "probabilities", "low_confidence"]
    assert [s.name for s in numeric.outputs] == ["prediction"]
    assert not mixed.all_numeric and numeric.all_numeric
    with pytest.raises(TypeError, match="fitted TableSchema"):
        table_schema(object())


# --- v1 ------------------------------------------------------------------------------
def test_decode_v1_and_predict(mixed):
    batch = mixed.decode_v1([ROW, ROW | {"x": None, "colour": None, "flag": "false"}])
    assert len(batch) == 2
    assert batch.summaries[1] == {
        "x": None,
        "z": 3,
        "colour": None,
        "flag": False,
        "day": "2024-02-01",
    }
    assert math.isnan(batch.model_input["x"].iloc[1])
    answer = mixed.predict(batch)
    assert len(answer) == 2 and answer.labels[0] in {"high", "low"}
    assert set(answer.instances[0]["probabilities"]) == {"high", "low"}


def test_decode_v1_regression(numeric):
    answer = numeric.predict(numeric.decode_v1([{"x": 1, "z": 2.5}]))
    assert isinstance(answer.instances[0]["prediction"], float) and answer.labels == [None]


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        ([], "instances is empty"),
        ([ROW] * 5, "instances has 5 items; at most 4"),
        (["x=1"], r"instances\[0\] must be an object of column: value"),
        (
            [ROW | {"extra": 1}],
            r"instances\[0\]: unknown column\(s\) 'extra'; the model takes x, z",
        ),
        ([{k: v for k, v in ROW.items() if k != "colour"}], r"instances\[0\]: missing .*'colour'"),
        ([ROW | {"x": "1.5"}], r"instances\[0\]\.x must be a number or null, got '1.5'"),
        ([ROW | {"x": True}], r"instances\[0\]\.x must be a number or null"),
        ([ROW | {"x": float("inf")}], r"instances\[0\]\.x must be a finite number"),
        ([ROW | {"flag": "yes"}], r"instances\[0\]\.flag must be true, false or null"),
        ([ROW | {"day": "not a day"}], r"instances\[0\]\.day must be a date or time as text"),
        ([ROW | {"day": 20240101}], r"instances\[0\]\.day must be a date or time"),
        ([ROW | {"colour": ["red"]}], r"instances\[0\]\.colour must be a single value, got list"),
        ([ROW, ROW | {"colour": b"\xff\xfe"}], r"instances\[1\]\.colour is not valid UTF-8"),
    ],
)
def test_decode_v1_errors_name_the_field(mixed, instances, message):
    with pytest.raises(InputError, match=message):
        mixed.decode_v1(instances)


# --- v2 ------------------------------------------------------------------------------
def test_decode_v2_named_columns(mixed):
    batch = mixed.decode_v2(mixed_tensors())
    assert batch.summaries[0] == {
        "x": 0.5,
        "z": 3,
        "colour": "red",
        "flag": True,
        "day": "2024-02-01",
    }
    assert batch.summaries[1]["x"] is None
    # booleans as BYTES "true"/"false" too; any numeric datatype for a numeric column
    again = mixed.decode_v2(
        mixed_tensors(
            flag=tensor("flag", "BYTES", [b"TRUE", b"false"], object),
            x=tensor("x", "FP64", [[1.0], [2.0]], np.float64),
        )
    )
    assert [row["flag"] for row in again.summaries] == [True, False]
    assert len(mixed.predict(again)) == 2


def test_v2_inputs_round_trip(mixed):
    batch = mixed.decode_v1([ROW, ROW | {"x": None}])
    inputs = mixed.v2_inputs(batch.summaries)
    assert [(i["name"], i["datatype"]) for i in inputs] == [
        ("x", "FP32"),
        ("z", "FP32"),
        ("colour", "BYTES"),
        ("flag", "BYTES"),
        ("day", "BYTES"),
    ]
    tensors = {
        i["name"]: tensor(i["name"], i["datatype"], i["data"], object if i["datatype"] == "BYTES"
                          else np.float64)
        for i in inputs
    }  # fmt: skip
    tensors["x"] = tensor("x", "FP32", [np.nan if v is None else v for v in inputs[0]["data"]])
    assert mixed.decode_v2(tensors).summaries == batch.summaries


def test_decode_v2_one_matrix_for_an_all_numeric_table(numeric):
    batch = numeric.decode_v2(
        {"input-0": tensor("input-0", "FP32", [[1.0, 2.0], [np.nan, 4.0]], np.float32)}
    )
    assert batch.summaries == [{"x": 1.0, "z": 2.0}, {"x": None, "z": 4.0}]
    assert len(numeric.predict(batch)) == 2
    # named per column works too
    named = numeric.decode_v2(
        {"x": tensor("x", "FP32", [1.0], np.float32), "z": tensor("z", "INT32", [2], np.int32)}
    )
    assert named.summaries == [{"x": 1.0, "z": 2}]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"x": tensor("x", "BYTES", [b"1", b"2"], object)},
            r'inputs\[x\]\.datatype must be one of \[.*\] for a numeric column, got "BYTES"',
        ),
        (
            {"colour": tensor("colour", "FP32", [1.0, 2.0], np.float32)},
            r"inputs\[colour\]\.datatype must be one of \['BYTES'\] for a categorical column",
        ),
        (
            {"flag": tensor("flag", "INT8", [1, 0], np.int8)},
            r"inputs\[flag\]\.datatype must be one of \['BOOL', 'BYTES'\]",
        ),
        (
            {"z": tensor("z", "INT64", [[1, 2], [3, 4]], np.int64)},
            r"inputs\[z\]\.shape must be \[n\] or \[n, 1\], got \[2, 2\]",
        ),
        (
            {"day": tensor("day", "BYTES", ["2024-01-01"], object)},
            r"inputs\[day\] has 1 rows; other inputs have 2",
        ),
        (
            {"extra": tensor("extra", "FP32", [1.0, 2.0], np.float32)},
            r"inputs: unknown column\(s\) 'extra'",
        ),
        (
            {"colour": tensor("colour", "BYTES", [b"red", b"\xc3\x28"], object)},
            r"inputs\[colour\]\[1\] is not valid UTF-8",
        ),
        (
            {"x": tensor("x", "FP32", [np.inf, 1.0], np.float32)},
            r"inputs\[x\]\[0\] must be a finite number",
        ),
        (
            {"flag": tensor("flag", "BYTES", [b"maybe", b"true"], object)},
            r"inputs\[flag\]\[0\] must be true, false or null, got 'maybe'",
        ),
    ],
)
def test_decode_v2_errors_name_the_field(mixed, override, message):
    with pytest.raises(InputError, match=message):
        mixed.decode_v2(mixed_tensors(**override))


def test_decode_v2_missing_and_empty_inputs(mixed):
    tensors = mixed_tensors()
    del tensors["day"]
    with pytest.raises(InputError, match=r"inputs: missing column\(s\) 'day'"):
        mixed.decode_v2(tensors)
    empty = {
        name: InputTensor(name, t.datatype, t.array[:0]) for name, t in mixed_tensors().items()
    }
    with pytest.raises(InputError, match="inputs is empty: send at least one row"):
        mixed.decode_v2(empty)
    too_many = {
        name: InputTensor(name, t.datatype, np.concatenate([t.array] * 3))
        for name, t in mixed_tensors().items()
    }
    with pytest.raises(InputError, match="inputs has 6 items; at most 4"):
        mixed.decode_v2(too_many)


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        (
            {"m": tensor("m", "BYTES", [[b"1", b"2"]], object)},
            r'inputs\[m\]\.datatype must be numeric \(e.g. "FP32"\), got "BYTES"',
        ),
        (
            {"m": tensor("m", "FP32", [[1.0, 2.0, 3.0]], np.float32)},
            r"inputs\[m\]\.shape must be \[n, 2\] \(columns x, z\), got \[1, 3\]",
        ),
        (
            {"m": tensor("m", "FP32", [1.0, 2.0], np.float32)},
            r"inputs\[m\]\.shape must be \[n, 2\]",
        ),
        (
            {"m": tensor("m", "FP64", [[1.0, np.inf]], np.float64)},
            r"inputs\[m\]\[0\]\[1\] must be a finite number",
        ),
        ({"m": tensor("m", "FP32", np.zeros((0, 2)), np.float32)}, r"inputs\[m\] is empty"),
    ],
)
def test_decode_matrix_errors_name_the_field(numeric, tensors, message):
    with pytest.raises(InputError, match=message):
        numeric.decode_v2(tensors)


def test_check_value():
    assert check_value(np.float32(1.5), "numeric", "f") == 1.5
    assert check_value(float("nan"), "numeric", "f") is None
    assert check_value(None, "categorical", "f") is None
    assert check_value(3, "categorical", "f") == "3"
    assert check_value(b"abc", "categorical", "f") == "abc"
    assert check_value(" True ", "boolean", "f") is True
    assert check_value(pd.Timestamp("2024-01-02"), "datetime", "f").startswith("2024-01-02")


def test_a_text_cell_longer_than_the_limit_is_refused_by_name():
    from driftloop.blueprints.tabular.codec import check_value

    assert check_value("Dream", "categorical", "f", max_chars=5) == "Dream"
    with pytest.raises(InputError, match=r"instances\[0\]\.island has 6 characters; at most 5"):
        check_value("Dreams", "categorical", "instances[0].island", max_chars=5)
    assert Limits().max_chars == 10_000
