"""`driftloop pipelines` and `driftloop train` argument handling: one-line errors, no traceback."""

from __future__ import annotations

import pytest

from driftloop.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_without_a_kfp_endpoint_is_a_one_line_error(home, monkeypatch, capsys):
    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    monkeypatch.delenv("DRIFTLOOP_KFP_HOST", raising=False)
    code, _, err = _run(capsys, "pipelines", "run", "training", "--param", "seed=3")
    assert code == 2
    assert err.startswith("driftloop: error: no Kubeflow Pipelines endpoint configured")
    assert len(err.strip().splitlines()) == 1


def test_upload_without_a_kfp_endpoint_is_a_one_line_error(home, monkeypatch, capsys):
    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    monkeypatch.delenv("DRIFTLOOP_KFP_HOST", raising=False)
    code, _, err = _run(capsys, "pipelines", "upload", "retraining")
    assert code == 2
    assert "KF_PIPELINES_ENDPOINT" in err


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("seed", "--param: expected KEY=VALUE, got 'seed'"),
        ("=3", "--param: expected KEY=VALUE"),
        ("no_such=1", "--param: training pipeline has no parameter 'no_such'"),
    ],
)
def test_bad_params_name_the_option(home, capsys, param, message):
    code, _, err = _run(capsys, "pipelines", "run", "training", "--param", param)
    assert code == 2
    assert message in err


def test_params_keep_numbers_and_booleans():
    from driftloop.cli.pipelines import parse_params

    assert parse_params(("seed=7", "min_improvement=0.05", "x=true", "name=v2", "s=")) == {
        "seed": 7,
        "min_improvement": 0.05,
        "x": True,
        "name": "v2",
        "s": "",
    }


def test_compile_command_writes_both_pipelines(tmp_path, capsys):
    code, out, _ = _run(capsys, "pipelines", "compile", "--out", str(tmp_path))
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["retraining.yaml", "training.yaml"]
    assert str(tmp_path / "training.yaml") in out


def test_submit_run_refuses_a_missing_package(tmp_path):
    from driftloop.pipelines_client import PipelinesClientError, submit_run

    with pytest.raises(PipelinesClientError, match="pipeline package not found"):
        submit_run(tmp_path / "nope.yaml", {}, "r", "e", "http://127.0.0.1:9")


def test_checked_in_packages_are_found_through_the_installed_package():
    from driftloop.pipelines_client import compiled_package

    assert compiled_package("training").is_file()
    assert compiled_package("retraining").is_file()
