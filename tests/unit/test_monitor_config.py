import pytest

from driftloop.blueprints.drift import SuggestedDetector
from driftloop.cli import main
from driftloop.monitor.config import (
    DEFAULT_CONFIG,
    ConfigError,
    load_config,
    mmd_detector,
    parse_config,
)
from driftloop.settings import Settings


class Featurizer:
    """A stand-in for a blueprint's drift featurizer: groups and suggested detectors."""

    groups = {"numeric": "continuous", "prediction": "categorical"}

    def default_detectors(self):
        return [
            SuggestedDetector("ks-numeric", "ks", "numeric", correction="fdr"),
            SuggestedDetector("chi2-prediction", "chisquare", "prediction"),
        ]


def test_default_config_takes_the_featurizers_detectors():
    assert DEFAULT_CONFIG.detectors is None and DEFAULT_CONFIG.p_val == 0.01
    resolved = DEFAULT_CONFIG.resolve(Featurizer())
    assert [(d.name, d.kind, d.features, d.correction) for d in resolved.detectors] == [
        ("ks-numeric", "ks", "numeric", "fdr"),
        ("chi2-prediction", "chisquare", "prediction", "bonferroni"),
    ]
    assert resolved.detector_p_val(resolved.detectors[0]) == 0.005
    # the optional MMD detector brings its own p_val: its permutation test cannot go lower
    mmd = mmd_detector("numeric")
    with_mmd = parse_config({"detectors": [mmd.model_dump()]}).resolve(Featurizer())
    assert with_mmd.detector_p_val(mmd) == 0.01


@pytest.mark.parametrize(
    ("detector", "message"),
    [
        ({"name": "x", "kind": "ks", "features": "prediction"}, "chisquare"),
        ({"name": "x", "kind": "chisquare", "features": "numeric"}, "categorical"),
        ({"name": "x", "kind": "ks", "features": "projection"}, "not a feature group"),
    ],
)
def test_groups_are_checked_against_the_featurizer(detector, message):
    config = parse_config({"detectors": [detector]})  # any group name parses
    with pytest.raises(ConfigError, match=message):
        config.resolve(Featurizer())


def test_family_p_value_is_split_over_batch_detectors_only():
    config = parse_config(
        {
            "p_val": 0.06,
            "detectors": [
                {"name": "a", "kind": "ks", "features": "projection"},
                {"name": "b", "kind": "cvm", "features": "text_stats"},
                {"name": "c", "kind": "chisquare", "features": "prediction"},
                {"name": "d", "kind": "lsdd_online", "features": "projection"},
                {"name": "e", "kind": "ks", "features": "text_stats", "p_val": 0.2},
            ],
        }
    )
    by_name = {d.name: config.detector_p_val(d) for d in config.detectors}
    assert by_name["a"] == pytest.approx(0.06 / 4)
    assert by_name["e"] == 0.2


def test_yaml_file_is_loaded_and_window_falls_back_to_settings(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "p_val: 0.01\ndetectors:\n"
        "  - {name: cvm, kind: cvm, features: projection, correction: fdr}\n"
    )
    settings = Settings(home=tmp_path, monitor_config=path, monitor_window=123)
    config = load_config(settings=settings)
    assert config.detectors[0].correction == "fdr"
    assert config.window_size(settings) == 123
    assert load_config(settings=Settings(home=tmp_path)) is DEFAULT_CONFIG


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"detectors": []}, "detectors"),
        ({"detectors": [{"name": "x", "kind": "ks", "features": "a b"}]}, "features"),
        (
            {"detectors": [{"name": "x", "kind": "magic", "features": "projection"}]},
            r"detectors\.0\.kind",
        ),
        (
            {"p_val": 2, "detectors": [{"name": "x", "kind": "ks", "features": "projection"}]},
            "p_val",
        ),
        (
            {"detectors": [{"name": "x", "kind": "ks", "features": "projection"}] * 2},
            "unique",
        ),
        ({"detectors": [{"name": "x", "kind": "ks", "features": "projection", "typo": 1}]}, "typo"),
    ],
)
def test_invalid_config_names_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_missing_or_broken_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("detectors: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_cli_reports_a_bad_config_in_one_line(tmp_path, home, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("detectors: []\n")
    assert main(["monitor", "sentiment", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("driftloop: error: --config:") and "\n" not in err


def test_cli_fit_reference_needs_a_version(tmp_path, home, capsys):
    assert main(["monitor", "sentiment", "--fit-reference", str(tmp_path / "x.parquet")]) == 2
    assert "--version" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["soon", "2", "1m30", "-5s"])
def test_cli_alert_for_must_be_a_prometheus_duration(home, capsys, bad):
    args = ["monitor", "sentiment", "--evaluate-alerts", "--port", "1", "--alert-for", bad]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"driftloop: error: --alert-for: not a Prometheus duration: {bad!r}"
