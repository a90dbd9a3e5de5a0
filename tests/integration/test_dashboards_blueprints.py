"""The blueprints dashboard's rows against a real Prometheus.

Recommender row: the series come from the code that exports them in the loop: the monitor's
``MonitorMetrics.set_live_score`` with what ``ClickFeedback.live_metrics`` computes
from served lists and their clicks, and the predictor's ``driftloop_predictions_total``
counted per segment as ``ServedModel`` counts a recommendation (its label is the
user's segment). Prometheus scrapes both every second; each panel's query (Grafana's
variables filled as for "All") must answer with the exported values: hit rate and
CTR per segment, and each segment's share of the recommendations.

Forecast and classifier rows the same way: a forecaster's live MAE/MASE as
``PriceFeedback.live_metrics`` computes them, its residual test as ``ResidualWatch``
decides it, a classifier's live accuracy (``MonitorMetrics.set_feedback``) and its
predictions counted per label.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest
import yaml

from tests.conftest import free_ports
from tests.unit.test_dashboards import dashboards, queries

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed"),
]
MODEL = "films-dashboard"
FORECASTER, CLASSIFIER = "prices-dashboard", "reviews-dashboard"
ROW = (
    "Live hit rate per segment",
    "Live CTR per segment",
    "Segment mix (share of recommendations)",
)
# recommendations answered per segment between the two counts Prometheus sees
ANSWERED = {"anonymous": 30, "semi": 10, "warm": 60}
LABELS = {"positive": 40, "negative": 20}  # the classifier's answers per label
OTHER_ROWS = (
    "Live forecast error (MAE, MASE)",
    "Residual drift p-value",
    "Predictions by label",
    "Live accuracy (verdict feedback)",
)


def query(url: str, expr: str) -> list[dict]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


@pytest.fixture
def exporters():
    """The monitor's and the predictor's metrics, each on its own port as in the loop."""
    from prometheus_client import REGISTRY, start_http_server

    from driftloop.blueprints.forecast.feedback import PriceFeedback
    from driftloop.blueprints.recsys.codec import ClickFeedback
    from driftloop.blueprints.recsys.segments import SEGMENTS
    from driftloop.monitor.metrics import MonitorMetrics
    from driftloop.monitor.residuals import ResidualWatch
    from driftloop.serving import metrics as predictor_metrics

    outputs = [{"item_ids": ["1", "2", "3", "4"], "segment": s} for s in SEGMENTS for _ in (0, 1)]
    clicks = [["1"], [], [], [], ["2", "3"], ["9"]]  # anonymous: 1 of 2 lists; semi: 0; warm: 1
    live = ClickFeedback().live_metrics(outputs, clicks)
    monitor = MonitorMetrics()
    monitor.set_live_score(MODEL, "1", value=0.2, samples=len(outputs), metrics=live)

    forecasts = [{"predicted_price": 100.0 + i, "last_price": 100.0 + i} for i in range(8)]
    closes = [101.0 + i * 1.5 for i in range(8)]
    forecast_live = PriceFeedback().live_metrics(forecasts, closes)
    monitor.set_live_score(
        FORECASTER, "1", value=forecast_live["mase"], samples=8, metrics=forecast_live
    )
    watch = ResidualWatch(reference_size=20, window=20)
    for residual in [0.01] * 20 + [0.05] * 19:
        watch.add(residual)
    residual_test = watch.add(0.05)  # the window of larger errors is complete
    monitor.set_residual_test(
        FORECASTER,
        "1",
        detected=residual_test.detected,
        p_value=residual_test.p_value,
        windows=watch.windows,
    )
    monitor.set_feedback(CLASSIFIER, "1", total=50, since_champion=50, judged=40, accuracy=0.75)
    monitor_port, predictor_port = free_ports(2)
    servers = [
        start_http_server(monitor_port, addr="127.0.0.1", registry=monitor.registry),
        start_http_server(predictor_port, addr="127.0.0.1", registry=REGISTRY),
    ]

    def answer(times: int = 1) -> None:
        for segment, count in ANSWERED.items():
            predictor_metrics.PREDICTIONS.labels(model=MODEL, version="1", label=segment).inc(
                count * times
            )
        for label, count in LABELS.items():
            predictor_metrics.PREDICTIONS.labels(model=CLASSIFIER, version="1", label=label).inc(
                count * times
            )

    try:
        yield {
            "targets": [monitor_port, predictor_port],
            "live": live,
            "forecast": forecast_live,
            "residual": residual_test,
            "answer": answer,
        }
    finally:
        for server, _thread in servers:
            server.shutdown()


@pytest.fixture
def prometheus(tmp_path, exporters):
    (port,) = free_ports(1)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "driftloop",
                "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in exporters["targets"]]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: ready(url), 60, "Prometheus ready")
        yield url
    finally:
        process.terminate()
        process.wait(15)


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what} not seen in {timeout_s:.0f} s"
        time.sleep(0.5)
    return value


def test_the_recommender_row_shows_what_the_loop_exports(exporters, prometheus):
    board = dashboards()["driftloop-blueprints.json"]
    row = {title: expr for title, expr in queries(board) if title in ROW}
    assert set(row) == set(ROW)
    live = exporters["live"]

    # counters need two scrapes apart for a rate: count, let Prometheus see it, count again
    exporters["answer"]()
    up = 'up{job="driftloop"} == 1'
    wait_for(lambda: len(query(prometheus, up)) == 2, 60, "both targets scraped")
    time.sleep(2.5)
    exporters["answer"](2)

    hit = wait_for(lambda: query(prometheus, row["Live hit rate per segment"]), 60, "hit rate")
    by_segment = {r["metric"]["segment"]: float(r["value"][1]) for r in hit}
    k = 4  # every served list had 4 items
    assert by_segment == {
        s: pytest.approx(live[f"hit_rate_at_{k}_{s}"]) for s in ("anonymous", "semi", "warm")
    }
    assert by_segment["anonymous"] == pytest.approx(0.5) and by_segment["semi"] == 0.0

    ctr = wait_for(lambda: query(prometheus, row["Live CTR per segment"]), 60, "CTR")
    assert {r["metric"]["segment"]: float(r["value"][1]) for r in ctr} == {
        s: pytest.approx(live[f"ctr_{s}"]) for s in ("anonymous", "semi", "warm")
    }

    def counted_mix() -> list[dict]:
        # until Prometheus has seen the counters grow, every share is 0 / 0
        result = query(prometheus, row["Segment mix (share of recommendations)"])
        return result if result and all(r["value"][1] != "NaN" for r in result) else []

    mix = wait_for(counted_mix, 60, "the mix")
    shares = {
        r["metric"]["label"]: float(r["value"][1]) for r in mix if r["metric"]["model"] == MODEL
    }
    total = sum(ANSWERED.values())
    assert shares == {s: pytest.approx(n / total, rel=0.05) for s, n in ANSWERED.items()}


def test_the_forecast_and_classifier_rows_show_what_the_loop_exports(exporters, prometheus):
    board = dashboards()["driftloop-blueprints.json"]
    rows: dict[str, list[str]] = {}
    for title, expr in queries(board):
        if title in OTHER_ROWS:
            rows.setdefault(title, []).append(expr)
    assert set(rows) == set(OTHER_ROWS)
    exporters["answer"]()
    wait_for(lambda: len(query(prometheus, 'up{job="driftloop"} == 1')) == 2, 60, "scrapes")
    time.sleep(2.5)
    exporters["answer"](2)

    def of(model: str, title: str, positive: bool = False) -> list[dict]:
        """Every target of the panel answers for ``model`` (``positive``: above 0, as a rate
        is once Prometheus has seen the counters grow); their series together."""

        def answered() -> list[dict]:
            found = []
            for expr in rows[title]:
                result = [r for r in query(prometheus, expr) if r["metric"]["model"] == model]
                values = [float(r["value"][1]) for r in result]
                if not values or any(v != v or (positive and v <= 0) for v in values):
                    return []
                found += result
            return found

        return wait_for(answered, 60, title)

    error = of(FORECASTER, "Live forecast error (MAE, MASE)")
    assert {r["metric"]["metric"]: float(r["value"][1]) for r in error} == {
        name: pytest.approx(value) for name, value in exporters["forecast"].items()
    }
    # the p-value and the drift flag, one series each
    p_value, flag = (float(r["value"][1]) for r in of(FORECASTER, "Residual drift p-value"))
    assert exporters["residual"].detected
    assert p_value == pytest.approx(exporters["residual"].p_value) and flag == 1.0

    by_label = of(CLASSIFIER, "Predictions by label", positive=True)
    rates = {r["metric"]["label"]: float(r["value"][1]) for r in by_label}
    assert set(rates) == set(LABELS)
    assert rates["positive"] == pytest.approx(2 * rates["negative"], rel=0.05)
    (accuracy,) = of(CLASSIFIER, "Live accuracy (verdict feedback)")
    assert float(accuracy["value"][1]) == pytest.approx(0.75)
