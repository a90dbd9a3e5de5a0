"""Plots as inline SVG, drawn on the server with matplotlib (no chart script in the page)."""

from __future__ import annotations

import io
from datetime import datetime

from driftloop.console.history import ModelHistory, Series

P_FLOOR = 1e-6  # p-values of 0 are drawn here on the log axis
# beyond this many points a marker per point is a wall of SVG elements that takes seconds
# to draw and to load (a recorded demo holds one sample a second): the line alone then
MARKED_POINTS = 200
EVENT_COLOURS = {"gate": "#7f7f7f", "promoted": "#2ca02c", "alert": "#d62728", "run": "#9467bd"}


def _figure(title: str):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(8.0, 3.0), dpi=100)
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    return figure, axes


def _svg(figure) -> str:
    from matplotlib import pyplot as plt

    buffer = io.StringIO()
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(buffer, format="svg")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # inline: no XML prolog or doctype


def _mark_events(axes, events: list[dict], start: datetime | None, end: datetime | None) -> None:
    """Vertical lines for alerts, retraining runs and gate decisions inside the plotted span."""
    labelled = set()
    for event in events:
        try:
            at = datetime.fromisoformat(event["at"])
        except (KeyError, ValueError):
            continue
        if start is not None and end is not None and not start <= at <= end:
            continue
        kind = event.get("kind", "gate")
        axes.axvline(
            at,
            color=EVENT_COLOURS.get(kind, "#7f7f7f"),
            linestyle=":",
            linewidth=1.2,
            label=kind if kind not in labelled else None,
        )
        labelled.add(kind)


def _span(series: list[Series]) -> tuple[datetime | None, datetime | None]:
    times = [t for s in series for t in s.times]
    return (min(times), max(times)) if times else (None, None)


def _marker(values: list[float]) -> str | None:
    return "." if len(values) <= MARKED_POINTS else None


def drift_plot(history: ModelHistory, events: list[dict], model: str) -> str:
    figure, axes = _figure(f"{model}: drift p-value per detector (log scale) vs threshold")
    for series in history.drift:
        values = [max(v, P_FLOOR) for v in series.values]
        (line,) = axes.plot(
            series.times, values, marker=_marker(values), linewidth=1.2, label=series.name
        )
        threshold = history.thresholds.get(series.name)
        if threshold is not None:
            axes.axhline(
                threshold,
                color=line.get_color(),
                linestyle="--",
                linewidth=1.0,
                alpha=0.8,
                label=f"{series.name} threshold {threshold:.3g}",
            )
    if not history.drift:
        axes.text(
            0.5, 0.5, "no drift windows yet", ha="center", va="center", transform=axes.transAxes
        )
    else:
        axes.set_yscale("log")
        axes.set_ylim(P_FLOOR / 2, 1.5)
        _mark_events(axes, events, *_span(history.drift))
    axes.set_ylabel("p-value")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, loc="lower left")
    return _svg(figure)


def score_plot(history: ModelHistory, events: list[dict], model: str, metric: str | None) -> str:
    name = metric or "score"
    figure, axes = _figure(f"{model}: live {name} vs the champion's test {name}")
    drawn = [s for s in (history.live, history.test) if s is not None and s.values]
    if history.live is not None and history.live.values:
        axes.plot(
            history.live.times,
            history.live.values,
            marker=_marker(history.live.values),
            label="live",
        )
    if history.test is not None and history.test.values:
        axes.plot(
            history.test.times,
            history.test.values,
            linestyle="--",
            marker=_marker(history.test.values),
            label="champion test",
        )
    if not drawn:
        axes.text(
            0.5,
            0.5,
            "no live score yet (needs feedback)",
            ha="center",
            va="center",
            transform=axes.transAxes,
        )
    else:
        _mark_events(axes, events, *_span(drawn))
    axes.set_ylabel(name)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, loc="lower left")
    return _svg(figure)


def candidates_plot(candidates: dict[str, float], metric: str, chosen: str | None = None) -> str:
    """The AutoML run's candidates as horizontal bars, in the order given, the chosen one
    marked: the figure the training run logs as a PNG with the version."""
    from driftloop.training.candidate_plot import candidates_figure

    return _svg(candidates_figure(candidates, metric, chosen=chosen))
