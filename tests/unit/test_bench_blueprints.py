"""The blueprints section's pure parts: request bodies, RSS growth, chunk sizes, medians."""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from bench.blueprints import (
    BUILDERS,
    ORDER,
    MemoryRun,
    chunk_seconds,
    disagreements,
    image_body,
    median_point,
    recsys_body,
    rss_growth,
    rss_verdict,
    table_body,
    text_body,
    window_body,
)
from bench.loadgen import LoadResult
from bench.run import SECTIONS


def inputs_of(body: bytes) -> dict[str, dict]:
    """The v2 inputs by name, each checked: its data fills its shape exactly."""
    inputs = {tensor["name"]: tensor for tensor in json.loads(body)["inputs"]}
    for tensor in inputs.values():
        assert len(tensor["data"]) == math.prod(tensor["shape"]), tensor["name"]
    return inputs


def test_the_section_runs_in_make_bench_and_alone():
    assert SECTIONS["blueprints"] == "bench.blueprints"  # make bench / bench-quick run them all
    mk = (Path(__file__).resolve().parents[2] / "mk" / "bench.mk").read_text().splitlines()
    sections = next(line for line in mk if line.startswith("BENCH_SECTIONS"))
    assert "blueprints" in sections.split()  # make bench-blueprints


def test_every_blueprint_has_a_builder_in_run_order():
    assert set(ORDER) == set(BUILDERS) == {"sentiment", "tabular", "vision", "forecast", "recsys"}


def test_text_body_is_one_bytes_text():
    assert inputs_of(text_body("ótimo produto")) == {
        "text": {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["ótimo produto"]}
    }


def test_table_body_has_one_tensor_per_column_typed_by_value():
    row = {"island": "Biscoe", "bill_length_mm": np.float64(39.5), "year": np.int64(2008),
           "sex": None, "body_mass_g": float("nan")}  # fmt: skip
    inputs = inputs_of(table_body(row))
    assert list(inputs) == list(row)
    assert inputs["island"]["datatype"] == "BYTES" and inputs["island"]["data"] == ["Biscoe"]
    assert inputs["bill_length_mm"] == {
        "name": "bill_length_mm", "datatype": "FP32", "shape": [1], "data": [39.5]
    }  # fmt: skip
    assert inputs["year"]["datatype"] == "FP32" and inputs["year"]["data"] == [2008.0]
    # a missing cell travels as JSON null (NaN is not JSON)
    assert inputs["sex"]["data"] == [None] and inputs["body_mass_g"]["data"] == [None]


def test_image_body_is_the_base64_text_of_the_encoded_image():
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
    (tensor,) = inputs_of(image_body(png)).values()
    assert tensor["name"] == "image" and tensor["datatype"] == "BYTES"
    assert base64.b64decode(tensor["data"][0]) == png


def test_window_body_carries_prices_series_and_date():
    prices = [float(p) for p in np.linspace(20.0, 21.0, 60)]
    inputs = inputs_of(window_body(prices, "msft", "2016-05-02"))
    assert inputs["last_prices"]["shape"] == [1, 60] and inputs["last_prices"]["datatype"] == "FP32"
    assert inputs["last_prices"]["data"] == prices
    assert inputs["series"]["data"] == ["msft"] and inputs["date"]["data"] == ["2016-05-02"]


def test_recsys_body_sends_a_session_only_when_there_is_one():
    inputs = inputs_of(recsys_body("42", ["318", 296], 10))
    assert inputs["user_id"]["data"] == ["42"]
    assert inputs["recent_items"]["shape"] == [1, 2]
    assert inputs["recent_items"]["data"] == ["318", "296"]
    assert inputs["k"] == {"name": "k", "datatype": "INT32", "shape": [1], "data": [10]}
    assert "recent_items" not in inputs_of(recsys_body("7", [], 5))


def test_rss_growth_is_relative_to_the_baseline():
    assert rss_growth(400.0, 410.0) == pytest.approx(0.025)
    assert rss_growth(400.0, 380.0) == pytest.approx(-0.05)
    assert rss_verdict(0.0499) == "PASS" and rss_verdict(0.05) == "FAIL"
    with pytest.raises(ValueError, match="baseline RSS"):
        rss_growth(0.0, 10.0)


def test_memory_run_grows_from_the_after_warm_up_sample_and_keeps_the_peak():
    run = MemoryRun(
        start_mib=300.0, warm_mib=400.0, end_mib=404.0, warm_up_requests=1000,
        requests=10_000, errors=0, seconds=50.0, samples=[(5000, 420.0), (10_000, 404.0)],
    )  # fmt: skip
    assert run.growth == pytest.approx(0.01)  # not against start: 404 / 300 would be +35 %
    assert run.peak_mib == 420.0


def test_chunk_seconds_are_whole_and_at_least_one():
    assert chunk_seconds(1000, 250.0) == 4
    assert chunk_seconds(10, 250.0) == 1
    assert chunk_seconds(0, 250.0) == 0
    with pytest.raises(ValueError, match="throughput"):
        chunk_seconds(100, 0.0)


def _load(rps: float, p50: float, p99: float) -> LoadResult:
    return LoadResult("wrk", 8, int(rps), 0, 1.0, rps, p50, p50, p99, 0.1, 0.05)


def test_median_point_takes_the_middle_round_and_median_latencies():
    point = median_point([_load(100, 5, 50), _load(300, 3, 10), _load(200, 4, 30)])
    assert point.rps == 200 and point.p50_ms == 4 and point.p99_ms == 30
    # two rounds: the slower one's throughput, the mean of the latencies
    point = median_point([_load(100, 5, 50), _load(300, 3, 10)])
    assert point.rps == 100 and point.p99_ms == 30


def _answer(**outputs) -> dict:
    return {"outputs": [{"name": name, "data": data} for name, data in outputs.items()]}


def test_answers_agree_on_every_output_the_bare_server_gives():
    bare = _answer(label=["positive"], probabilities=[0.25, 0.75])
    # driftloop answers more (low_confidence) and its float32 numbers may differ in the last bits
    ours = _answer(label=["positive"], probabilities=[0.2500001, 0.7499999], low_confidence=[0])
    assert disagreements(ours, bare) == []


def test_answers_that_differ_are_named():
    bare = _answer(label=["positive"], probabilities=[0.25, 0.75], item_ids=["1", "2"])
    ours = _answer(label=["negative"], probabilities=[0.3, 0.7])
    problems = disagreements(ours, bare)
    assert [p.split(":")[0] for p in problems] == ["label", "probabilities", "item_ids"]
    assert "missing" in problems[2]
    assert disagreements(_answer(scores=[1.0]), _answer(scores=[1.0, 2.0])) == [
        "scores: 1 vs 2 values"
    ]


def test_report_names_figures_by_the_nominal_count_and_gives_the_verdict(tmp_path):
    from bench.blueprints import BARE, DRIFTLOOP, BlueprintModel, report
    from bench.context import Budget, Context, make_progress
    from bench.results import Results
    from rich.console import Console

    console = Console(file=io.StringIO())
    ctx = Context(out=tmp_path, results=Results(quick=True, machine={"cores": 2}),
                  budget=Budget(quick=True), console=console,
                  progress=make_progress(console), work=tmp_path, section="blueprints")  # fmt: skip
    model = BlueprintModel("forecast", "bp-msft", tmp_path, b"{}", "trained", 1.0)
    points = {(DRIFTLOOP, 8): _load(400, 20, 48), (BARE, 8): _load(200, 25, 46),
              (DRIFTLOOP, 32): _load(500, 57, 90), (BARE, 32): _load(250, 78, 120)}  # fmt: skip
    memory = MemoryRun(300.0, 400.0, 421.0, 1000, 10_050, 0, 40.0, [(10_050, 421.0)])
    report(ctx, model, points, memory, 1, ["1.00/1.00/1.00"])
    figures = {(f.name, f.params.get("concurrency")): f for f in ctx.results.figures}
    rss = figures[("predictor RSS after 10k requests", 32)]
    assert rss.ratio == pytest.approx(421 / 400) and rss.params["requests"] == 10_050
    assert figures[("throughput vs bare kserve.Model", 32)].ratio == 2.0
    assert figures[("p99 latency vs bare kserve.Model", 8)].ratio == pytest.approx(48 / 46)
    notes = ctx.results.notes["blueprints"]
    assert "+5.25% -> FAIL (limit 5%)" in notes[0] and "2.00x" in notes[1]
