"""``driftloop up`` / ``down`` / ``status``: the embedded stack on this machine."""

from __future__ import annotations

import threading

import click

from driftloop.cli import UserError


def _console():
    from rich.console import Console

    return Console()


def _stack(model: str, alerting: str = "auto"):
    from driftloop.settings import get_settings
    from driftloop.stack.services import StackError
    from driftloop.stack.supervisor import Stack

    console = _console()
    try:
        return Stack(get_settings(), model, alerting=alerting, say=lambda m: console.print(m))
    except StackError as exc:
        raise UserError(str(exc)) from exc


@click.command()
@click.option("--model", default="sentiment", show_default=True, help="Model to serve and watch.")
@click.option(
    "--no-prometheus",
    is_flag=True,
    help="Use the built-in alert evaluator even if Prometheus/Alertmanager are installed.",
)
@click.option(
    "--foreground",
    is_flag=True,
    help="Stay attached: restart crashed processes, stop everything on Ctrl-C.",
)
def up(model: str, no_prometheus: bool, foreground: bool) -> None:
    """Start MLflow, monitor, predictor, trigger and alerting on 127.0.0.1."""
    from driftloop.stack.services import StackError

    stack = _stack(model, "evaluator" if no_prometheus else "auto")
    console = _console()
    if stack.alerting == "evaluator":
        console.print(
            "alerting: built-in evaluator"
            + (
                " (--no-prometheus)"
                if no_prometheus
                else " (prometheus/alertmanager not installed)"
            )
        )
    try:
        stack.up()
    except StackError as exc:
        raise UserError(str(exc).splitlines()[0] + f" (logs in {stack.dir})") from exc
    _print_processes(stack)
    for name, url in stack.ui_urls().items():
        if stack.running_pid(name) is not None or name == "mlflow":
            console.print(f"{name:>12}: {url}")
    if foreground:
        stop = threading.Event()
        console.print("supervising; Ctrl-C stops the stack")
        try:
            stack.supervise(stop)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            console.print(f"stopped: {', '.join(stack.down()) or 'nothing'}")


@click.command()
@click.option(
    "--timeout", "timeout_s", default=15.0, show_default=True, help="Seconds before SIGKILL."
)
def down(timeout_s: float) -> None:
    """Stop every process of the local stack (first keeping each model's drift and score
    history under the home, for `driftloop ui` to show once it is stopped)."""
    from driftloop.console.config import ConsoleConfig
    from driftloop.console.history import record_stack_history
    from driftloop.settings import get_settings
    from driftloop.stack.supervisor import Stack

    stack = Stack(get_settings(), alerting="none")
    kept = record_stack_history(ConsoleConfig.for_stack(stack), [], stack.uptime_s())
    stopped = stack.down(timeout_s)
    console = _console()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    for path in kept:
        console.print(f"history kept for driftloop ui: {path}")


@click.command()
@click.option("--model", default="sentiment", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def status(model: str, as_json: bool) -> None:
    """Processes, champion, recent alerts/decisions and retraining runs."""
    import json

    from driftloop.stack.status import collect_status

    stack = _stack(model)
    report = collect_status(stack)
    report["health"] = model_health(stack)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    _print_report(report)


def model_health(stack) -> list[dict]:
    """Drift p-values and live vs test score per model: from the stack's Prometheus when it
    runs (every model it has samples of), else from the monitor (the model it watches)."""
    from driftloop.console.config import ConsoleConfig
    from driftloop.console.history import model_history, models_seen

    config = ConsoleConfig.for_stack(stack)
    models = models_seen(config, [stack.model])
    health = []
    for name in models:
        history = model_history(config, name, seconds=900.0)
        health.append(
            {
                "model": name,
                "source": history.source,
                "p_values": history.latest_p_values,
                "thresholds": history.thresholds,
                "live_score": history.latest_live,
                "test_score": history.latest_test,
                "alerts": [a["name"] for a in history.alerts],
                "note": history.note,
            }
        )
    return health


def _print_processes(stack) -> None:
    from rich.table import Table

    table = Table(title="driftloop stack")
    for column in ("process", "pid", "port", "healthy", "log"):
        table.add_column(column)
    for state in stack.status():
        table.add_row(
            state.name,
            str(state.pid or "-"),
            str(state.port or "-"),
            "yes" if state.healthy else ("starting" if state.running else "no"),
            str(state.log),
        )
    _console().print(table)


def _print_report(report: dict) -> None:
    from rich.table import Table

    console = _console()
    processes = Table(title="processes")
    for column in ("process", "pid", "port", "running", "healthy"):
        processes.add_column(column)
    for state in report["processes"]:
        processes.add_row(
            state["name"],
            str(state["pid"] or "-"),
            str(state["port"] or "-"),
            "yes" if state["running"] else "no",
            "yes" if state["healthy"] else "no",
        )
    console.print(processes)
    champion = report.get("champion") or {}
    console.print(
        f"champion of {report['model']}: "
        + (f"version {champion['version']}" if champion.get("version") else "none")
        + (f" ({champion['error']})" if champion.get("error") else "")
    )
    decisions = Table(title="recent alert decisions")
    for column in ("at", "alert", "model", "outcome", "run", "reason"):
        decisions.add_column(column)
    for d in report.get("decisions", [])[:10]:
        decisions.add_row(
            d["at"][:19],
            d.get("alertname") or "-",
            d.get("model") or "-",
            d["outcome"],
            d.get("run_id") or "-",
            d["reason"][:60],
        )
    console.print(decisions)
    runs = Table(title="retraining runs")
    for column in ("run", "reason", "state", "started", "seconds"):
        runs.add_column(column)
    for r in report.get("runs", [])[:10]:
        runs.add_row(
            r["run_id"],
            r["reason"],
            r["state"],
            r["started_at"][:19],
            f"{r['duration_s']:.0f}" if r.get("duration_s") else "-",
        )
    console.print(runs)
    health = Table(title="drift and live score")
    for column in ("model", "drift p-value/threshold", "live score", "test score", "alerts"):
        health.add_column(column)
    for h in report.get("health", []):
        p_values = ", ".join(
            f"{name} {p:.3g}/{h['thresholds'].get(name, float('nan')):.3g}"
            + (" DRIFT" if p < h["thresholds"].get(name, 0.0) else "")
            for name, p in sorted(h["p_values"].items())
        )
        health.add_row(
            h["model"],
            p_values or (h["note"] or "-")[:60],
            "-" if h["live_score"] is None else f"{h['live_score']:.4f}",
            "-" if h["test_score"] is None else f"{h['test_score']:.4f}",
            ", ".join(h["alerts"]) or "-",
        )
    console.print(health)
    if report.get("trigger_error"):
        console.print(f"trigger: {report['trigger_error']}")
