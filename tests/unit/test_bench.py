"""The benchmark harness itself: result schema, ratios, CLI arguments, parsers.

No timed code runs here; the figures are produced by ``make bench``.
"""

from __future__ import annotations

import json
import math

import pytest
from bench import loadgen
from bench.machine import cpu_model, describe_machine
from bench.results import REQUIRED_FIGURE_KEYS, Figure, Results, SectionOutcome, ratio, validate
from bench.run import SECTIONS, parse_args


# --- ratios and figures ----------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "baseline", "expected"),
    [(50.0, 100.0, 0.5), (3.0, 1.5, 2.0), (0.0, 4.0, 0.0)],
)
def test_ratio_is_value_over_baseline(value, baseline, expected):
    assert ratio(value, baseline) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "baseline"),
    [(None, 1.0), (1.0, None), (1.0, 0.0), (math.inf, 1.0), (1.0, math.nan)],
)
def test_ratio_is_none_when_undefined(value, baseline):
    assert ratio(value, baseline) is None


def test_figure_computes_its_ratio_and_rejects_a_bad_direction():
    figure = Figure("serving", "throughput", 120.0, "req/s", "kserve", 100.0, "higher")
    assert figure.ratio == pytest.approx(1.2)
    with pytest.raises(ValueError, match="better"):
        Figure("serving", "throughput", 1.0, "req/s", "kserve", 1.0, "faster")


def test_every_written_figure_carries_baseline_ratio_unit_machine_and_date(tmp_path):
    machine = {"cores": 2, "cpu_model": "Test CPU", "memory_gib": 1.0, "loadavg": [0, 0, 0]}
    results = Results(quick=True, machine=machine, date="2026-11-23T00:00:00+00:00")
    results.add(
        Figure(
            "serving", "p99 latency", 12.0, "ms", "kserve", 10.0, "lower", params={"concurrency": 8}
        )
    )
    results.add(Figure("drift", "false alarms", 0.0, "alarms/100k", "KSDrift", 0.0, "lower"))
    results.sections["serving"] = SectionOutcome("ok", 3.0)
    results.sections["drift"] = SectionOutcome("skipped", 0.1, "wrk missing")
    json_path, md_path = results.write(tmp_path)

    document = json.loads(json_path.read_text())
    assert validate(document) == []
    for figure in document["figures"]:
        assert set(REQUIRED_FIGURE_KEYS) <= set(figure)
        assert figure["machine"]["cpu_model"] == "Test CPU"
        assert figure["date"] == "2026-11-23T00:00:00+00:00"
    assert document["figures"][0]["ratio"] == pytest.approx(1.2)
    assert document["figures"][1]["ratio"] is None  # 0 / 0 has no ratio
    markdown = md_path.read_text()
    assert "| p99 latency | concurrency=8 | 12.0 | ms | kserve | 10.0 | 1.20 | lower |" in markdown
    assert "**skipped**" in markdown and "wrk missing" in markdown


def test_headline_figures_are_listed_first_as_key_figures(tmp_path):
    results = Results(quick=True, machine={"cores": 2, "cpu_model": "x"}, date="d")
    results.add(Figure("serving", "p50 latency", 5.0, "ms", "kserve", 5.0, "lower"))
    results.add(
        Figure("loop", "onset to served", 40.0, "s", "evaluator", 50.0, "lower", headline=True)
    )
    results.sections["serving"] = SectionOutcome("ok", 1.0)
    results.sections["loop"] = SectionOutcome("ok", 1.0)
    markdown = results.write(tmp_path)[1].read_text()

    key_section = markdown.split("## Key figures")[1].split("## serving")[0]
    assert "| loop | onset to served |  | 40.0 | s | evaluator | 50.0 | 0.80 |" in key_section
    assert "p50 latency" not in key_section
    assert markdown.index("## Key figures") < markdown.index("## serving")


def test_validate_finds_missing_keys_and_wrong_ratios():
    good = Results(quick=False, machine={"cores": 2, "cpu_model": "x"}, date="d")
    good.add(Figure("s", "f", 2.0, "u", "b", 1.0, "higher"))
    document = good.to_dict()
    document["figures"][0]["ratio"] = 5.0
    del document["figures"][0]["unit"]
    assert any("lacks unit" in problem for problem in validate(document))
    document = good.to_dict()
    document["figures"][0]["ratio"] = 5.0
    assert any("ratio disagrees" in problem for problem in validate(document))


# --- machine ----------------------------------------------------------------------
def test_cpu_model_reads_the_first_model_name():
    cpuinfo = "processor\t: 0\nvendor_id\t: X\nmodel name\t: AMD EPYC 7B13\n\nmodel name\t: other\n"
    assert cpu_model(cpuinfo) == "AMD EPYC 7B13"


def test_describe_machine_has_cores_and_cpu_model():
    machine = describe_machine()
    assert machine["cores"] >= 1 and machine["cpu_model"]


# --- CLI arguments ------------------------------------------------------------------
def test_default_is_every_section_in_order():
    args = parse_args([])
    assert args.sections == list(SECTIONS) and not args.quick


def test_one_section_quick_with_out_dir(tmp_path):
    args = parse_args(["--section", "serving", "--quick", "--out", str(tmp_path)])
    assert args.sections == ["serving"] and args.quick and args.out == tmp_path


def test_repeated_sections_keep_order_without_duplicates():
    args = parse_args(["--section", "drift", "--section", "serving", "--section", "drift"])
    assert args.sections == ["drift", "serving"]


def test_unknown_section_is_a_usage_error_naming_the_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--section", "gpu"])
    assert exit_info.value.code == 2
    assert "--section" in capsys.readouterr().err


# --- load generator parsing -----------------------------------------------------------
def test_wrk_result_line_is_parsed():
    stdout = (
        "Running 5s test @ http://127.0.0.1:1/\n  2 threads and 8 connections\n"
        'BENCH_JSON {"requests": 4000, "duration_us": 5000000, "bytes": 1, '
        '"errors": {"connect": 0, "read": 0, "write": 0, "status": 3, "timeout": 0}, '
        '"p50_us": 1500, "p95_us": 4000, "p99_us": 9000, "max_us": 20000, "mean_us": 1800.0}\n'
    )
    parsed = loadgen.parse_wrk_output(stdout)
    assert parsed["requests"] == 4000 and parsed["errors"]["status"] == 3
    assert parsed["p95_us"] == 4000


def test_wrk_output_without_result_line_is_an_error():
    with pytest.raises(RuntimeError, match="no result line"):
        loadgen.parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_cpu_share_is_a_fraction_of_all_cores():
    assert loadgen.cpu_share(2.0, 2.0, cores=2) == pytest.approx(0.5)
    assert loadgen.cpu_share(1.0, 0.0, cores=2) == 0.0


def test_wrk_scripts_report_percentiles_including_p95():
    assert "latency:percentile(95)" in loadgen.WRK_DONE
    assert "BENCH_BODY_FILE" in loadgen.WRK_POST_BODY


def test_grpc_request_matches_the_v2_rest_body():
    from bench.grpc_load import build_request

    request = build_request(
        {
            "id": "r1",
            "inputs": [
                {"name": "text", "datatype": "BYTES", "shape": [2], "data": ["good", "bad"]}
            ],
        },
        "sentiment",
    )
    assert request.model_name == "sentiment" and request.id == "r1"
    assert list(request.inputs[0].contents.bytes_contents) == [b"good", b"bad"]
    tabular = build_request(
        {"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1, 2], "data": [0.5, 1.5]}]},
        "tabular",
    )
    assert list(tabular.inputs[0].shape) == [1, 2]
    assert list(tabular.inputs[0].contents.fp32_contents) == [0.5, 1.5]


def test_grpc_request_rejects_an_unknown_datatype():
    from bench.grpc_load import build_request

    with pytest.raises(ValueError, match="datatype"):
        build_request(
            {"inputs": [{"name": "x", "datatype": "COMPLEX", "shape": [1], "data": [1]}]}, "m"
        )


# --- section helpers ---------------------------------------------------------------------
def test_mlserver_repository_points_the_mlflow_runtime_at_the_model(tmp_path):
    from bench.mlserver import write_repository

    root = write_repository(
        tmp_path / "repo", "sentiment", tmp_path / "model", http_port=18080, grpc_port=18081
    )
    settings = json.loads((root / "settings.json").read_text())
    model = json.loads((root / "sentiment" / "model-settings.json").read_text())
    assert settings["host"] == "127.0.0.1" and settings["http_port"] == 18080
    assert model["implementation"] == "mlserver_mlflow.MLflowRuntime"
    assert model["parameters"]["uri"] == str(tmp_path / "model")


def test_lua_long_strings_survive_closing_brackets():
    from bench.drift import _lua_string

    text = 'he said "]]" and ]=] then'
    quoted = _lua_string(text)
    level = quoted.index("[", 1)
    opener, closer = quoted[: level + 1], "]" + quoted[1:level] + "]"
    assert quoted.startswith(opener) and quoted.endswith(closer)
    assert closer not in text and quoted[len(opener) : -len(closer)] == text


def test_undetected_runs_count_as_the_cap_in_the_median_delay():
    from bench.drift import _median

    assert _median([100, 300, None], cap=800) == 300
    assert _median([None, None], cap=800) == 800


def test_task_seconds_are_read_from_kfp_local_log_stamps(tmp_path):
    from bench.loop import task_seconds

    log = tmp_path / "run.log"
    log.write_text(
        "12:00:01.000 - INFO - Executing task \x1b[96m'train'\x1b[0m\n"
        "noise\n"
        "12:00:31.500 - INFO - Task \x1b[96m'train'\x1b[0m finished with status "
        "\x1b[92mSUCCESS\x1b[0m\n"
        "23:59:59.000 - INFO - Executing task 'gate'\n"
        "00:00:01.000 - INFO - Task 'gate' finished with status SUCCESS\n"
    )
    assert task_seconds(log) == {"train": pytest.approx(30.5), "gate": pytest.approx(2.0)}


def test_model_fixture_builds_v1_and_v2_bodies_of_the_requested_batch(tmp_path):
    from bench.fixtures import ModelFixture

    text = ModelFixture(
        "m", "text", "sklearn", "models:/m@champion", tmp_path, None, ["a", "b", "c"], "test"
    )
    v2 = json.loads(text.body("v2", 5))
    assert v2["inputs"][0]["shape"] == [5] and v2["inputs"][0]["data"][3] == "a"
    assert json.loads(text.body("v1", 2)) == {"instances": ["a", "b"]}
    table = ModelFixture(
        "t",
        "tabular",
        "xgboost",
        "models:/t@champion",
        tmp_path,
        None,
        [[float(i)] * 8 for i in range(3)],
        "test",
    )
    tensor = table.v2_request(4)["inputs"][0]
    assert tensor["shape"] == [4, 8] and len(tensor["data"]) == 32


def test_task_start_is_placed_on_the_day_of_a_nearby_time(tmp_path):
    from datetime import datetime

    from bench.loop import task_started_at

    log = tmp_path / "run.log"
    log.write_text("10:00:05.250 - INFO - Executing task 'promote'\n")
    near = datetime(2026, 11, 23, 10, 0, 0).timestamp()
    assert task_started_at(log, "promote", near) == pytest.approx(near + 5.25)
    assert task_started_at(log, "gate", near) is None


def test_loop_phases_split_the_pipeline_into_worker_start_and_steps(tmp_path):
    """Phases come from the demo's report and timeline and the retraining's run.log."""
    from datetime import datetime

    from bench.loop import phases
    from rich.console import Console

    from driftloop.demo.scenario import DemoReport
    from driftloop.demo.timeline import Event, Timeline

    onset = datetime(2026, 11, 23, 10, 0, 0).timestamp()
    report = DemoReport(
        drift_onset=onset,
        alert_fired=onset + 6.0,
        run_launched=onset + 6.5,
        champion_served=onset + 29.0,
    )
    timeline = Timeline(Console(file=None, quiet=True))
    timeline.events = [
        Event(onset + 5.0, "drift", "monitor: drift detected (score 0.2)"),
        Event(onset + 27.0, "run", "retraining r1: succeeded"),
    ]
    run_dir = tmp_path / "pipeline-runs" / "driftloop-retraining-r1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.log").write_text(
        "10:00:08.000 - INFO - Executing task 'rollback'\n"
        "10:00:09.000 - INFO - Task 'rollback' finished with status SUCCESS\n"
        "10:00:20.000 - INFO - Executing task 'gate'\n"
        "10:00:21.500 - INFO - Task 'gate' finished with status SUCCESS\n"
        "10:00:25.000 - INFO - Executing task 'promote'\n"
        "10:00:26.000 - INFO - Task 'promote' finished with status SUCCESS\n"
    )

    measured, steps = phases(report, timeline, tmp_path)

    assert steps == {
        "rollback": pytest.approx(1.0),
        "gate": pytest.approx(1.5),
        "promote": pytest.approx(1.0),
    }
    assert measured["detection"] == pytest.approx(5.0)
    assert measured["alert"] == pytest.approx(1.0)
    assert measured["trigger"] == pytest.approx(0.5)
    assert measured["pipeline"] == pytest.approx(20.5)
    assert measured["worker start (run launched → first task started)"] == pytest.approx(1.5)
    assert measured["gate step"] == pytest.approx(1.5)
    assert measured["reload (promote step start → first answer of new version)"] == (
        pytest.approx(4.0)
    )
    assert measured["total"] == pytest.approx(29.0)
