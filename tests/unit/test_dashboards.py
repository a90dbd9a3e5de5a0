"""Grafana dashboards as code: the JSON loads, every query parses (promtool) and names real
metrics, and the chart and kustomize ship it in a ConfigMap Grafana's sidecar loads.

Whether each overview query returns data against a real Prometheus after traffic is
tests/integration/test_dashboards_prometheus.py (the per-blueprint rows need a forecaster's
traffic there: they are checked here, offline).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_chart import HELM, needs_helm, template
from tests.unit.test_manifests import REPO
from tests.unit.test_manifests import rendered as rendered  # noqa: F401 - fixture

CHART_DASHBOARDS = REPO / "charts" / "driftloop" / "dashboards"
KUSTOMIZE_DASHBOARDS = REPO / "manifests" / "base" / "dashboards"
SIDECAR_LABEL = {"grafana_dashboard": "1"}
# Grafana's variables, as a query runs them for "All" models
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$model": ".+"}
PROMQL_METRIC = re.compile(r"\b(driftloop_[a-z0-9_]+)")


def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(CHART_DASHBOARDS.glob("*.json"))}


def queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every panel target and annotation, Grafana variables filled."""
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], expand(target["expr"])))
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            found.append((annotation["name"], expand(annotation["expr"])))
    return found


def expand(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    # "$1" is label_replace's capture group: Grafana leaves a name no variable has alone
    assert not re.search(r"\$(?!\d)", expr), f"unknown Grafana variable in {expr}"
    return expr


def known_metric_names() -> set[str]:
    """Every sample name the predictor, monitor and trigger expose (``_bucket`` etc. included)."""
    from prometheus_client import REGISTRY

    import driftloop.serving.metrics  # noqa: F401 - registers the predictor's metrics
    from driftloop.monitor.metrics import MonitorMetrics
    from driftloop.trigger.metrics import TriggerMetrics

    names = set()
    for registry in (REGISTRY, MonitorMetrics().registry, TriggerMetrics().registry):
        for family in registry.collect():
            names.add(family.name)
            names |= {
                f"{family.name}{suffix}"
                for suffix in ("_total", "_bucket", "_count", "_sum", "_created")
            }
    return names


def test_dashboards_load_with_a_panel_per_concern():
    boards = dashboards()
    assert list(boards) == ["driftloop-blueprints.json", "driftloop-overview.json"]
    overview = boards["driftloop-overview.json"]
    assert overview["uid"] == "driftloop-overview" and overview["schemaVersion"] >= 36
    titles = " | ".join(p["title"] for p in overview["panels"])
    for concern in (
        "Requests per second",
        "Error",
        "p50 / p99",
        "Drift p-value",
        "Live score",
        "Feedback backlog",
        "Retraining",
        "version",
    ):
        assert concern in titles, concern
    ids = [p["id"] for p in overview["panels"]]
    assert len(ids) == len(set(ids))
    assert {v["name"] for v in overview["templating"]["list"]} == {"datasource", "model"}


def test_every_query_names_metrics_the_services_expose():
    known = known_metric_names()
    for board in dashboards().values():
        for title, expr in queries(board):
            used = set(PROMQL_METRIC.findall(expr))
            # ALERTS is Prometheus's own series of firing alerts (the annotation query)
            assert (used or expr.startswith("ALERTS{")) and used <= known, (
                f"{title}: {sorted(used - known)}"
            )


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_every_query_parses_with_promtool(tmp_path: Path):
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr}
        for i, (_title, expr) in enumerate(q for b in dashboards().values() for q in queries(b))
    ]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_the_kustomize_copy_is_the_charts():
    assert sorted(p.name for p in KUSTOMIZE_DASHBOARDS.glob("*.json")) == list(dashboards())
    for name in dashboards():
        assert (KUSTOMIZE_DASHBOARDS / name).read_text() == (CHART_DASHBOARDS / name).read_text()


def sidecar_config_map(docs: list[dict]) -> dict:
    (config_map,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "driftloop-dashboards"
    ]
    return config_map


def test_kustomize_provisions_the_dashboards(rendered):  # noqa: F811
    for overlay, docs in rendered.items():
        config_map = sidecar_config_map(docs)
        assert SIDECAR_LABEL.items() <= config_map["metadata"]["labels"].items(), overlay
        assert {k: json.loads(v) for k, v in config_map["data"].items()} == dashboards()


@needs_helm
def test_the_chart_provisions_the_dashboards():
    assert HELM
    config_map = sidecar_config_map(template())
    assert SIDECAR_LABEL.items() <= config_map["metadata"]["labels"].items()
    assert {k: json.loads(v) for k, v in config_map["data"].items()} == dashboards()


def kube_prometheus_stack_settings() -> dict[str, str]:
    """The --set values `make kind-up` installs kube-prometheus-stack with (make -n: no cluster)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    printed = subprocess.run(
        ["make", "-n", "kind-up"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert printed.returncode == 0, printed.stderr
    command = printed.stdout.replace("\\\n", " ")
    (line,) = [c for c in command.splitlines() if "kube-prometheus-stack" in c and " --set " in c]
    return dict(re.findall(r"--set(?:-string)? (grafana\.[\w.]+)=(\S+)", line))


def test_kind_up_runs_grafana_whose_sidecar_loads_the_dashboards_config_map(rendered):  # noqa: F811
    settings = kube_prometheus_stack_settings()
    assert settings["grafana.enabled"] == "true"
    assert settings["grafana.sidecar.dashboards.enabled"] == "true"
    # the ConfigMap lives in the driftloop namespace, Grafana in monitoring
    assert settings["grafana.sidecar.dashboards.searchNamespace"] == "ALL"
    sidecar = {
        settings["grafana.sidecar.dashboards.label"]: settings[
            "grafana.sidecar.dashboards.labelValue"
        ]
    }
    assert sidecar == SIDECAR_LABEL
    labels = sidecar_config_map(rendered["kind"])["metadata"]["labels"]
    assert sidecar.items() <= labels.items()


def panel_expr(board: dict, title: str) -> str:
    (panel,) = [p for p in board["panels"] if p["title"] == title]
    (target,) = panel["targets"]
    return target["expr"]


def test_recsys_segment_panels_read_what_click_feedback_and_the_predictor_export():
    """The row's metric-label patterns match the names a recommender's feedback exports for
    every segment, and the segment mix counts exactly the segments the predictor labels."""
    from driftloop.blueprints.recsys.codec import ClickFeedback
    from driftloop.blueprints.recsys.segments import SEGMENTS

    outputs = [{"item_ids": ["1", "2"], "segment": segment} for segment in SEGMENTS]
    exported = ClickFeedback().live_metrics(outputs, [["1"], [], ["2", "9"]])
    board = dashboards()["driftloop-blueprints.json"]
    for title in ("Live hit rate per segment", "Live CTR per segment"):
        expr = panel_expr(board, title)
        selected = re.search(r'metric=~"([^"]+)"', expr).group(1)
        relabel = re.search(r'"segment", "\$1", "metric", "([^"]+)"', expr).group(1)
        assert selected == relabel, title
        segments = {m.group(1) for name in exported if (m := re.fullmatch(selected, name))}
        assert segments == set(SEGMENTS), (title, sorted(exported))
    mix = panel_expr(board, "Segment mix (share of recommendations)")
    labels = set(re.search(r'label=~"([^"]+)"', mix).group(1).split("|"))
    assert labels == set(SEGMENTS)
    # a forecaster's panel keeps to its own live metrics
    assert 'metric=~"mae|mase"' in panel_expr(board, "Live forecast error (MAE, MASE)")
