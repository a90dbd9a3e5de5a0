"""The console's parts that need no running loop: tag parsing, form values, job checks, pages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from driftloop import lineage
from driftloop.console import automl
from driftloop.console.history import label_matcher, thresholds_for
from driftloop.console.predict import Field, FormError, field_value, instance_from_form
from driftloop.console.registry_view import decision_events, split_fingerprints, version_row
from driftloop.console.runs import local_pipeline_runs
from driftloop.promotion import Decision
from driftloop.registry import VersionInfo
from driftloop.training.gate import decision_tags


def test_a_version_row_reads_the_tags_the_gate_writes():
    decision = Decision(
        "keep",
        "challenger 0.80 is not 1% better than 0.81",
        0.80,
        0.81,
        0.8181,
        champion_version="3",
    )
    tags = {
        **decision_tags(decision, "macro_f1"),
        lineage.split_fingerprint_tag("train"): "aaa111",
        lineage.split_fingerprint_tag("test"): "bbb222",
        lineage.TAG_METRIC_NAME: "macro_f1",
        lineage.TAG_METRIC_VALUE: "0.8",
    }
    info = VersionInfo(
        "m", "4", ["challenger"], tags, "run", "src", "READY", datetime(2026, 1, 1, tzinfo=UTC)
    )
    row = version_row(info)
    assert (row.decision, row.challenger_score, row.champion_score) == ("keep", 0.80, 0.81)
    assert row.champion_version == "3" and row.required == pytest.approx(0.8181)
    assert row.reason.startswith("challenger 0.80")
    assert row.splits == {"test": "bbb222", "train": "aaa111"}
    assert [e["kind"] for e in decision_events([row])] == ["gate"]


def test_split_fingerprints_ignore_other_split_tags():
    tags = {lineage.TAG_SPLIT_SCHEME: "id-hash", lineage.split_fingerprint_tag("val"): "v"}
    assert split_fingerprints(tags) == {"val": "v"}


def test_form_values_follow_the_input_datatype():
    text, numbers = Field("text", "BYTES", [-1]), Field("x", "FP32", [-1, 3])
    assert field_value(text, "great product") == "great product"
    assert field_value(text, "42") == "42"
    assert field_value(text, '["a", "b"]') == ["a", "b"]
    assert field_value(numbers, "[1, 2.5, 3]") == [1, 2.5, 3]
    with pytest.raises(FormError, match="^x: not a number"):
        field_value(numbers, "one")
    with pytest.raises(FormError, match="^text: empty"):
        field_value(text, "  ")
    assert instance_from_form([text], {"text": "hi"}) == "hi"
    assert instance_from_form([text, numbers], {"text": "hi", "x": "2"}) == {"text": "hi", "x": 2}


def test_a_file_is_the_base64_text_of_its_bytes_for_one_bytes_value_per_instance():
    import base64

    from driftloop.console.predict import MAX_FILE_BYTES, Upload, file_value

    image, ids = Field("image", "BYTES", [-1]), Field("recent_items", "BYTES", [-1, -1])
    number = Field("x", "FP32", [-1])
    assert image.takes_file and image.file_input == "image__file"
    assert not ids.takes_file and not number.takes_file
    png = Upload("a.png", "image/png", b"\x89PNG...")
    assert base64.b64decode(file_value(image, png)) == b"\x89PNG..."
    assert png.data_url.startswith("data:image/png;base64,")
    assert Upload("a.txt", "text/plain", b"x").data_url is None
    # a chosen file wins over the field's text; other fields keep theirs
    both = instance_from_form(
        [image, Field("k", "INT32", [-1])], {"image": "typed", "k": "3"}, {"image": png}
    )
    assert both == {"image": base64.b64encode(b"\x89PNG...").decode(), "k": 3}
    with pytest.raises(FormError, match="^image: the file 'e.png' is empty"):
        file_value(image, Upload("e.png", "image/png", b""))
    with pytest.raises(FormError, match="^image: the file is over 8 MiB"):
        file_value(image, Upload("big.png", "image/png", b"0" * (MAX_FILE_BYTES + 1)))
    with pytest.raises(FormError, match="^x: takes no file"):
        file_value(number, png)
    # a text file is its text, as a text model reads it
    assert file_value(image, Upload("r.txt", "text/plain", "ótimo\n".encode())) == "ótimo"
    with pytest.raises(FormError, match="^image: the text file 'l.txt' is not UTF-8"):
        file_value(image, Upload("l.txt", "text/plain", b"\xff\xfe"))


def test_promql_label_values_are_escaped():
    assert label_matcher('a"b\\c') == '{model="a\\"b\\\\c"}'


def test_thresholds_split_the_family_p_value_over_the_detectors(tmp_path):
    from driftloop.console.config import ConsoleConfig
    from driftloop.settings import Settings

    config = ConsoleConfig.from_settings(Settings(home=tmp_path))
    assert thresholds_for(config, ["ks", "chi2"]) == {"ks": 0.005, "chi2": 0.005}


def test_the_studio_refuses_bad_launches_naming_the_field(tmp_path):
    studio = automl.Studio(tmp_path)
    with pytest.raises(automl.JobError, match="^file: the upload is empty"):
        studio.save_upload("x.csv", b"")
    upload, columns = studio.save_upload("t.csv", b"a,b,y\n1,2,x\n3,4,z\n")
    assert columns == ["a", "b", "y"]
    with pytest.raises(automl.JobError, match="^target: 'nope'"):
        studio.launch(upload, {"target": "nope"})
    with pytest.raises(automl.JobError, match="^preset: 'huge'"):
        studio.launch(upload, {"target": "y", "preset": "huge"})
    with pytest.raises(automl.JobError, match="^model_name"):
        studio.launch(upload, {"target": "y", "model_name": "../x"})
    with pytest.raises(automl.JobError, match="^upload: unknown"):
        studio.launch("../../etc", {"target": "y"})
    assert studio.list() == []


def test_candidate_scores_read_the_training_summary():
    summary = {
        "primary_metric": "macro_f1",
        "candidates": [
            {"name": "logreg", "metrics": {"val_macro_f1": 0.9}},
            {"name": "knn", "metrics": {"macro_f1": 0.7}},
            {"name": "broken", "metrics": {}},
        ],
    }
    assert automl.candidate_scores(summary) == {"logreg": 0.9, "knn": 0.7}


def test_local_pipeline_runs_are_read_from_run_folders(tmp_path):
    run = tmp_path / "training-pipeline-20261130-120000-abc123"
    (run / "training-pipeline-2026" / "train").mkdir(parents=True)
    (tmp_path / "not-a-run").mkdir()
    (found,) = local_pipeline_runs(tmp_path)
    assert found["pipeline"] == "training-pipeline" and found["tasks"] == 1
    assert found["started_at"].startswith("2026-11-30T12:00:00")


@pytest.mark.slow  # creates an MLflow database: ~5 s idle, more under load
def test_pages_render_with_every_source_down(tmp_path):
    from fastapi.testclient import TestClient

    from driftloop.console.app import create_app
    from driftloop.console.config import ConsoleConfig
    from driftloop.ports import free_ports
    from driftloop.settings import Settings

    closed = [f"http://127.0.0.1:{p}" for p in free_ports(3)]
    config = ConsoleConfig.from_settings(
        Settings(home=tmp_path),
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        predictor_url=closed[0],
        monitor_url=closed[1],
        trigger_url=closed[2],
    )
    with TestClient(create_app(config)) as client:
        assert "No registered model yet" in client.get("/models").text
        missing = client.get("/models/nosuch")
        assert missing.status_code == 404 and "no registered model named" in missing.text
        assert "cannot list the predictor" in client.get("/predict").text
        assert "not reachable" in client.get("/runs").text
        assert client.get("/automl").status_code == 200
        bad = client.post("/automl/upload", files={"file": ("x.csv", b"")})
        assert bad.status_code == 422 and "the upload is empty" in bad.text
        refused = client.post("/api/feedback/abc", json={"nothing": 1})
        assert refused.status_code == 422 and "label, value or correct" in refused.text


def test_cli_errors_are_one_line_naming_the_option(home, capsys, tmp_path):
    from driftloop.cli import main

    assert main(["report", "drift", "nosuch", "--out", str(tmp_path / "d.html")]) == 2
    assert capsys.readouterr().err.strip() == (
        "driftloop: error: NAME: no registered model named 'nosuch' (known: none)"
    )
    assert main(["ui", "--host", "0.0.0.0"]) == 2
    assert capsys.readouterr().err.startswith("driftloop: error: --host 0.0.0.0: the console")
    assert main(["ui", "--predictor-url", "ftp://x"]) == 2
    assert "--predictor-url: not an http(s) URL" in capsys.readouterr().err


def test_the_stack_runs_the_console_and_names_every_ui(home):
    from driftloop.settings import Settings
    from driftloop.stack.services import ServiceCatalogue

    catalogue = ServiceCatalogue(Settings(home=home, console_port=8123), alerting="evaluator")
    (console,) = [s for s in catalogue.services() if s.name == "console"]
    assert console.argv[-4:] == ["--host", "127.0.0.1", "--port", "8123"]
    assert console.health_url == "http://127.0.0.1:8123/healthz"
    urls = catalogue.ui_urls()
    assert urls["console"] == "http://127.0.0.1:8123/" and "mlflow" in urls
    assert "prometheus" not in urls  # the built-in evaluator has no UI


def test_moved_features_follow_the_detectors_correction():
    import numpy as np

    from driftloop.console.drift_report import moved_mask

    p = np.array([0.001, 0.004, 0.03, 0.5])
    flags, cut = moved_mask(p, 0.01, "bonferroni")
    assert flags.tolist() == [True, False, False, False] and cut == 0.0025
    # Benjamini-Hochberg: 0.004 <= 2/4 * 0.01 passes, so both smallest move
    flags, cut = moved_mask(p, 0.01, "fdr")
    assert flags.tolist() == [True, True, False, False] and cut == 0.004
    flags, _ = moved_mask(np.array([0.2, 0.9]), 0.01, "fdr")
    assert not flags.any()
