"""The closed loop as one scenario for every blueprint that ships demo traffic.

Train v1 with the training pipeline -> start the embedded stack -> replay
in-domain traffic with feedback -> shift the traffic -> the monitor sees drift,
an alert fires, the trigger launches the retraining pipeline, the gate promotes
a challenger -> the predictor answers with it. What is replayed, and how it
shifts, is the blueprint's traffic source (``demo.sources``).

Everything lives in its own state directory (its own MLflow database,
prediction store, trigger ledger and stack processes on free loopback ports),
so the demo never touches the user's registry, and the stack is stopped at
the end whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from driftloop.blueprints import get_blueprint
from driftloop.blueprints.base import LIGHT
from driftloop.demo.sources import DemoData, DemoPlan, TrafficSource
from driftloop.demo.state import HOME, DemoSetupError, prepare_state_dir
from driftloop.demo.timeline import Timeline
from driftloop.demo.traffic import LiveScore, TrafficReplayer, TrafficStats
from driftloop.demo.watch import monitor_gauges, prometheus_alerts, trigger_json
from driftloop.environ import patched_environ
from driftloop.lineage import (
    TAG_CHALLENGER_SCORE,
    TAG_CHAMPION_SCORE,
    TAG_DECISION,
    TAG_DECISION_REASON,
    TAG_METRIC_NAME,
    TAG_METRIC_VALUE,
)
from driftloop.ports import free_ports
from driftloop.settings import Settings
from driftloop.stack.services import StackError
from driftloop.stack.supervisor import Stack

# The quick demo replays the shifted traffic over this many connections at once until the
# retraining starts. What the monitor and the alerts need is a count of requests -- a
# full drift window, a window's worth of judged rows -- so their time after the onset
# is that count over the request rate; one blocking client left the predictor idle
# between its requests.
QUICK_REPLAY_CONNECTIONS = 4
# history kept for the console reaches this far before the demo began (the v1 baseline)
HISTORY_MARGIN_S = 60.0
PORT_FIELDS = (
    "mlflow_port",
    "predictor_port",
    "predictor_grpc_port",
    "monitor_port",
    "trigger_port",
    "prometheus_port",
    "alertmanager_port",
    "console_port",
)


class DemoError(RuntimeError):
    """The loop did not close (or could not start); the message says where it stopped."""


@dataclass
class DemoOptions:
    state_dir: Path
    quick: bool = False
    alerting: str = "auto"  # auto | prometheus | evaluator
    loop_timeout_s: float | None = None  # drift onset -> new champion served
    seed: int = 42

    @property
    def timeout_s(self) -> float:
        return self.loop_timeout_s or (420.0 if self.quick else 900.0)


@dataclass
class DemoReport:
    model: str = ""
    metric: str = ""
    closed: bool = False
    alerting: str = ""
    champion_before: str | None = None
    champion_after: str | None = None
    scores: dict[str, Any] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    baseline: TrafficStats = field(default_factory=TrafficStats)
    shifted: TrafficStats = field(default_factory=TrafficStats)
    after: TrafficStats = field(default_factory=TrafficStats)
    drift_onset: float | None = None
    alert_fired: float | None = None
    run_launched: float | None = None
    champion_promoted: float | None = None
    champion_served: float | None = None
    failure: str | None = None

    def to_json(self) -> dict[str, Any]:
        def stats(value: TrafficStats) -> dict[str, Any]:
            return {
                "predictions": value.predictions,
                "live_score": value.live_score,
                "feedback": value.feedback,
                "errors": value.errors,
                "versions": dict(value.versions),
            }

        def since_onset(at: float | None) -> float | None:
            return None if at is None or self.drift_onset is None else at - self.drift_onset

        return {
            "model": self.model,
            "metric": self.metric,
            "closed": self.closed,
            "failure": self.failure,
            "alerting": self.alerting,
            "champion_before": self.champion_before,
            "champion_after": self.champion_after,
            "scores": self.scores,
            "decisions": self.decisions,
            "runs": self.runs,
            "traffic": {
                "in_domain": stats(self.baseline),
                "shifted": stats(self.shifted),
                "after": stats(self.after),
            },
            "seconds_after_onset": {
                "alert_fired": since_onset(self.alert_fired),
                "run_launched": since_onset(self.run_launched),
                "champion_promoted": since_onset(self.champion_promoted),
                "champion_served": since_onset(self.champion_served),
            },
            "onset_to_new_champion_s": self.onset_to_new_champion_s,
        }

    @property
    def onset_to_new_champion_s(self) -> float | None:
        if self.drift_onset is None or self.champion_served is None:
            return None
        return self.champion_served - self.drift_onset


# --- state directory and settings -------------------------------------------------------
def retrain_search(plan: DemoPlan, options: DemoOptions) -> dict[str, str]:
    """The quick demo's retraining fits one candidate, the blueprint's first light one,
    once (no trials, so no challenger and no selection bootstrap): the loop is about
    drift -> new champion, and the retraining is most of its time. A plan that names
    its own search keeps it; the full demo searches as the champion was searched."""
    if not options.quick or "search" in plan.pipeline_arguments:
        return {}
    blueprint = get_blueprint(plan.blueprint)
    tiers = blueprint.candidate_tiers()
    names = list(blueprint.candidates(options.seed))
    light = [name for name in names if tiers.get(name, LIGHT) == LIGHT] or names
    return {"search": json.dumps({"candidates": light[:1], "trials": 0}, sort_keys=True)}


def demo_settings(home: Path, plan: DemoPlan, data: DemoData, options: DemoOptions) -> Settings:
    # quick: the predictor looks for a new champion, the monitor reads new feedback (the
    # live score LiveScoreDrop fires on) and the built-in evaluator checks the rules every
    # second (the embedded stack's own timings; Prometheus already scrapes and evaluates
    # every second)
    interval_s = 1.0 if options.quick else 2.0
    return Settings(
        home=home,
        tracking_uri=None,
        store_url=None,
        api_token=None,
        trigger_token=None,
        seed=options.seed,
        reload_interval_s=interval_s,
        monitor_window=plan.monitor_window,
        monitor_feedback_poll_s=interval_s,
        evaluator_interval_s=interval_s,
        feedback_backlog_threshold=max(600, 3 * plan.monitor_window)
        if options.quick
        else max(1500, 3 * plan.monitor_window),
        # The live score counts every judged row since v1 became champion, in-domain
        # ones included; with the default 30 samples a slightly unlucky in-domain
        # replay tripped LiveScoreDrop after a few dozen shifted rows, and a retraining
        # with that little feedback was (rightly) kept out by the gate. Asking for a
        # drift window's worth of judged rows means no alert can start the retraining
        # before a window of shifted traffic and its feedback is in the store.
        score_min_samples=plan.monitor_window,
        # one retraining per demo: later alerts are recorded as busy / cooling_down
        trigger_cooldown_s=3600.0,
        retrain_arguments={
            "blueprint": plan.blueprint,
            "dataset": plan.dataset,
            "data_source": str(data.retrain_source),
            **retrain_search(plan, options),
            **plan.pipeline_arguments,
        },
        stack_health_timeout_s=120.0,
        **plan.settings,
        **dict(zip(PORT_FIELDS, free_ports(len(PORT_FIELDS)), strict=True)),
    )


def pick_ports_again(settings: Settings, exclude: tuple[str, ...]) -> None:
    """Fresh free ports for the services not started yet.

    Ports picked before training v1 were only free then: a minute of kfp.local
    tasks, pip and HTTP clients later the kernel may have handed one out as an
    ephemeral port (seen with two test workers: "port ... for trigger is taken").
    """
    names = [name for name in PORT_FIELDS if name not in exclude]
    for name, port in zip(names, free_ports(len(names)), strict=True):
        setattr(settings, name, port)


@contextlib.contextmanager
def demo_environment(home: Path) -> Iterator[None]:
    """Point this process at the demo's own registry and home; restore on exit."""
    with patched_environ(
        {
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
            "DRIFTLOOP_HOME": str(home),
            "DRIFTLOOP_TRACKING_URI": None,
            "DRIFTLOOP_STORE_URL": None,
            # as in the stack's processes (stack.services): offline, MLflow's telemetry
            # thread deletes a variable while a REST call iterates os.environ (KeyError)
            "MLFLOW_DISABLE_TELEMETRY": os.environ.get("MLFLOW_DISABLE_TELEMETRY", "true"),
        }
    ):
        yield


def send_concurrently(
    pool: ThreadPoolExecutor,
    replayers: list[TrafficReplayer],
    examples: list[Any],
    stats: TrafficStats,
) -> None:
    """``examples[i]`` through ``replayers[i]`` (its own connection), all at once; their
    counts, outputs and first sightings added to ``stats``."""
    if len(examples) == 1:
        replayers[0].send(examples[0], stats)
        return
    each = [TrafficStats() for _ in examples]
    list(pool.map(TrafficReplayer.send, replayers, examples, each))
    for part in each:
        stats.add(part)
        for version, seen in part.first_seen.items():
            stats.first_seen[version] = min(seen, stats.first_seen.get(version, seen))
        stats.last_version = part.last_version or stats.last_version


def describe_drift(gauges: dict[str, float]) -> str:
    score = gauges.get("driftloop_drift_score")
    if score is None or math.isnan(score):
        return "monitor: no full drift window yet"
    detected = "drift" if gauges.get("driftloop_drift_detected", 0) >= 1 else "no drift"
    return f"monitor: {detected} (score {score:.3f})"


# --- the demo -------------------------------------------------------------------------
class LoopDemo:
    def __init__(
        self, options: DemoOptions, source: TrafficSource, console: Console | None = None
    ) -> None:
        self.options = options
        self.source = source
        self.model = source.model
        self.plan = source.plan(options.quick)
        blueprint = get_blueprint(self.plan.blueprint)
        self.live_score: LiveScore = blueprint.feedback.live_score
        # bound to the real stdout now: kfp.local redirects sys.stdout while a pipeline runs
        self.console = console or Console(file=sys.stdout)
        self.timeline = Timeline(self.console)
        self.report = DemoReport(model=self.model, metric=blueprint.primary_metric)
        self.stack: Stack | None = None

    def note(self, kind: str, message: str) -> float:
        return self.timeline.note(kind, message).at

    def run(self) -> DemoReport:
        options = self.options
        started = time.monotonic()
        state = prepare_state_dir(options.state_dir)
        home = state / HOME
        home.mkdir()
        self.note("setup", f"state directory {state} (quick={options.quick})")
        try:
            data = self.source.prepare(state / "data", options.quick, options.seed)
        except (ValueError, OSError) as exc:
            raise DemoSetupError(str(exc)) from exc
        self.note("setup", data.describe_data)
        with demo_environment(home):
            settings = demo_settings(home, self.plan, data, options)
            self.stack = Stack(
                settings,
                self.model,
                alerting=options.alerting,
                say=lambda message: self.note("setup", message),
                repeat_interval="10s",
            )
            self.report.alerting = self.stack.alerting
            try:
                self.stack.up(only=["mlflow"])
                os.environ["MLFLOW_TRACKING_URI"] = self.stack.tracking_uri
                self.train_v1(settings, data)
                self.note(
                    "setup",
                    "starting monitor, predictor, trigger and "
                    + (
                        "Prometheus + Alertmanager"
                        if self.stack.alerting == "prometheus"
                        else "the built-in alert evaluator"
                    ),
                )
                pick_ports_again(settings, exclude=("mlflow_port",))
                self.stack.up()
                self.replay_baseline(data)
                self.shift_and_watch(data)
            except (DemoError, StackError) as exc:
                self.report.failure = str(exc)
                self.note("error", str(exc))
            finally:
                self.collect_trigger_view()
                self.keep_history(time.monotonic() - started)
                stopped = self.stack.down(timeout_s=15)
                self.note("setup", f"stack stopped ({', '.join(stopped) or 'nothing running'})")
        return self.report

    # --- steps ------------------------------------------------------------------------
    def registry(self):
        from driftloop.registry import ModelRegistry

        return ModelRegistry(tracking_uri=self.stack.tracking_uri)

    def champion(self):
        return self.registry().version_by_alias(self.model, "champion")

    def train_v1(self, settings: Settings, data: DemoData) -> None:
        from pipelines.local_run import run_pipeline_locally
        from pipelines.training import training_pipeline

        from driftloop.trigger.launchers import accepted_inputs

        wanted = {
            "blueprint": self.plan.blueprint,
            "model_name": self.model,
            "dataset": self.plan.dataset,
            "data_source": str(data.train_source),
            "seed": self.options.seed,
            **self.plan.pipeline_arguments,
        }
        inputs = accepted_inputs(training_pipeline)
        arguments = {k: v for k, v in wanted.items() if k in inputs}
        self.note("setup", "training v1 with the training pipeline (kfp.local)")

        def progress(event) -> None:
            if event.kind == "finished":
                self.note("run", f"  training task {event.task}: {event.status} ({event.seconds}s)")

        result = run_pipeline_locally(training_pipeline, arguments, settings, progress)
        if not result.succeeded:
            raise DemoError(
                f"training pipeline failed at task {result.failed_task}: {result.error} "
                f"(log: {result.log_path})"
            )
        champion = self.champion()
        if champion is None:
            raise DemoError(
                "training finished but v1 was not promoted to champion (see its gate tags)"
            )
        self.report.champion_before = str(champion.version)
        self.report.scores["v1"] = self.version_scores(champion)
        self.note(
            "registry",
            f"v{champion.version} is champion: {self.report.scores['v1'].get('metric')} = "
            f"{self.report.scores['v1'].get('value')} on its test split",
        )

    @staticmethod
    def version_scores(version) -> dict[str, Any]:
        tags = dict(getattr(version, "tags", {}) or {})
        return {
            "metric": tags.get(TAG_METRIC_NAME),
            "value": tags.get(TAG_METRIC_VALUE),
            "decision": tags.get(TAG_DECISION),
            "reason": tags.get(TAG_DECISION_REASON),
            "champion_score": tags.get(TAG_CHAMPION_SCORE),
            "challenger_score": tags.get(TAG_CHALLENGER_SCORE),
        }

    def replayer(self, feedback_fraction: float, seed: int = 42) -> TrafficReplayer:
        return TrafficReplayer(
            self.stack.url("predictor"), self.model, feedback_fraction=feedback_fraction, seed=seed
        )

    def describe_traffic(self, stats: TrafficStats) -> str:
        score = stats.live_score = stats.score(self.live_score)
        shown = "-" if score is None else f"{score:.2f}"
        return (
            f"{stats.predictions} predictions, live {self.report.metric} {shown}, "
            f"{stats.feedback} feedback, {stats.errors} errors"
        )

    def replay_baseline(self, data: DemoData) -> None:
        share = self.plan.baseline_feedback
        self.note(
            "traffic", f"replaying {len(data.baseline)} held-out rows, feedback for {share:.0%}"
        )
        stats = self.report.baseline
        with self.replayer(share) as replayer:
            for example in data.baseline:
                replayer.send(example, stats)
        gauges = monitor_gauges(self.stack, self.model)
        self.note(
            "traffic", f"in-domain: {self.describe_traffic(stats)}; " + describe_drift(gauges)
        )
        if stats.predictions == 0:
            raise DemoError("the predictor answered no request; see " + str(self.stack.dir))

    def shift_and_watch(self, data: DemoData) -> None:
        report = self.report
        share = self.plan.shifted_feedback
        report.drift_onset = self.note("drift", f"{data.describe_shift}; feedback for {share:.0%}")
        deadline = report.drift_onset + self.options.timeout_s
        seen_decisions: set[int] = set()
        said: set[tuple] = set()
        run_states: dict[str, str] = {}
        alert_states: dict[str, str] = {}
        drift_seen = False
        residuals_seen = False
        next_poll = 0.0
        connections = QUICK_REPLAY_CONNECTIONS if self.options.quick else 1
        with contextlib.ExitStack() as resources:
            replayers = [
                resources.enter_context(self.replayer(share, seed=7 + index))
                for index in range(connections)
            ]
            replayer = replayers[0]
            pool = resources.enter_context(ThreadPoolExecutor(connections))
            examples = iter(data.shifted)
            while time.time() < deadline:
                # keep the traffic flowing: it is what the monitor sees and what answers
                # show; once the retraining runs, one request at a time (a trickle)
                burst = []
                for _ in range(1 if report.run_launched is not None else connections):
                    example = next(examples, None)
                    if example is None:
                        # replay again to keep the traffic up, but label each row once:
                        # repeated feedback would put the same row in train and test
                        for each in replayers:
                            each.feedback_fraction = 0.0
                        examples = iter(data.shifted)
                        example = next(examples)
                    burst.append(example)
                stats = report.after if report.champion_promoted else report.shifted
                send_concurrently(pool, replayers, burst, stats)
                new_version = report.champion_after
                if new_version and new_version in report.shifted.first_seen | stats.first_seen:
                    # the predictor may have reloaded before we saw the alias move
                    served_at = min(
                        s.first_seen[new_version]
                        for s in (report.shifted, report.after)
                        if new_version in s.first_seen
                    )
                    self.note(
                        "serving",
                        f"predictor answers with v{new_version} "
                        f"(first at +{served_at - report.drift_onset:.1f}s after the drift began)",
                    )
                    report.champion_served = served_at
                    self.describe_traffic(report.shifted)
                    self.confirm_serving(replayer, data, new_version)
                    report.closed = True
                    return
                if report.run_launched is not None:
                    # the retraining shares these cores: a trickle of traffic is enough now
                    time.sleep(0.2)
                if time.time() < next_poll:
                    continue
                next_poll = time.time() + 1.0
                if not (drift_seen and residuals_seen):
                    gauges = monitor_gauges(self.stack, self.model)
                    if not residuals_seen and gauges.get("driftloop_residual_drift", 0) >= 1:
                        # a blueprint with residuals (Feedback.residual): the errors grew
                        residuals_seen = True
                        self.note(
                            "drift",
                            "monitor: the champion's errors grew (residual test p "
                            f"{gauges.get('driftloop_residual_p_value', float('nan')):.2g}) "
                            f"after {report.shifted.feedback} shifted truths",
                        )
                    if not drift_seen and gauges.get("driftloop_drift_detected", 0) >= 1:
                        drift_seen = True
                        self.note(
                            "drift",
                            "monitor: drift detected (score "
                            f"{gauges.get('driftloop_drift_score', 0):.3f}, p "
                            f"{gauges.get('driftloop_drift_p_value', float('nan')):.2g}) after "
                            f"{report.shifted.predictions} shifted requests",
                        )
                for alert in prometheus_alerts(self.stack):
                    name = alert["labels"].get("alertname", "?")
                    if alert_states.get(name) != alert["state"]:
                        alert_states[name] = alert["state"]
                        self.note("alert", f"Prometheus: {name} {alert['state']}")
                        if alert["state"] == "firing" and report.alert_fired is None:
                            report.alert_fired = time.time()
                for decision in reversed(trigger_json(self.stack, "/decisions")):
                    if decision["id"] in seen_decisions:
                        continue
                    seen_decisions.add(decision["id"])
                    if report.alert_fired is None and decision.get("alert_status") == "firing":
                        report.alert_fired = time.time()
                    # Alertmanager re-sends firing alerts; say once what the trigger does with them
                    repeat = (decision.get("alertname"), decision["outcome"])
                    if decision["outcome"] != "launched" and repeat in said:
                        continue
                    said.add(repeat)
                    self.note(
                        "trigger",
                        f"webhook {decision.get('alertname')}: {decision['outcome']}"
                        + (f" -> {decision['run_id']}" if decision["outcome"] == "launched" else "")
                        + f" ({decision['reason']})"
                        + ("" if decision["outcome"] == "launched" else "; repeats not shown"),
                    )
                    if decision["outcome"] == "launched" and report.run_launched is None:
                        report.run_launched = time.time()
                for run in trigger_json(self.stack, "/runs"):
                    if run_states.get(run["run_id"]) == run["state"]:
                        continue
                    run_states[run["run_id"]] = run["state"]
                    self.note("run", f"retraining {run['run_id']}: {run['state']}")
                    if run["state"] in ("failed", "lost"):
                        raise DemoError(
                            f"retraining run {run['run_id']} {run['state']}: {run['error']}"
                        )
                    if run["state"] == "succeeded" and self.after_run(run):
                        return
        raise DemoError(
            f"the loop did not close within {self.options.timeout_s:.0f}s of the drift onset"
        )

    def confirm_serving(self, replayer: TrafficReplayer, data: DemoData, version: str) -> None:
        """Every answer from now on comes from the new champion."""
        confirmation = TrafficStats()
        replayer.feedback_fraction = 0.0
        for example in data.shifted[-10:]:
            replayer.send(example, confirmation)
        after = self.report.after
        after.add(confirmation)
        self.describe_traffic(after)
        served = dict(confirmation.versions)
        if set(served) != {version}:
            raise DemoError(f"after the reload the predictor answered with versions {served}")
        self.note(
            "serving", f"confirmed: the next {served[version]} answers all came from v{version}"
        )

    def after_run(self, run: dict[str, Any]) -> bool:
        """Record the retraining's outcome; True when that closes the loop with the champion
        kept (a plan that does not expect a promotion), False when the new one must be served."""
        champion = self.champion()
        version = str(champion.version) if champion is not None else None
        if version == self.report.champion_before:
            latest = self.latest_version()
            scores = self.version_scores(latest) if latest is not None else {}
            if not self.plan.expects_promotion and latest is not None:
                self.report.scores[f"v{latest.version}"] = scores
                self.report.champion_after = version
                self.report.closed = True
                self.note(
                    "registry",
                    f"v{latest.version} gated and kept out: {scores.get('reason')}; "
                    f"v{version} still serves (the gate's honest answer for this blueprint)",
                )
                self.note(
                    "traffic", f"after the shift: {self.describe_traffic(self.report.shifted)}"
                )
                return True
            raise DemoError(
                f"the gate kept v{version}: {scores.get('reason') or 'no decision recorded'} "
                f"(challenger {scores.get('challenger_score')}, "
                f"champion {scores.get('champion_score')})"
            )
        self.report.champion_after = version
        self.report.scores[f"v{version}"] = self.version_scores(champion)
        self.report.champion_promoted = self.note(
            "registry",
            f"v{version} promoted to champion ({self.report.scores[f'v{version}'].get('reason')}); "
            f"v{self.report.champion_before} is previous-champion",
        )
        return False

    def latest_version(self):
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.stack.tracking_uri)
        versions = client.search_model_versions(f"name='{self.model}'")
        if not versions:
            return None
        newest = max(versions, key=lambda v: int(v.version))
        return client.get_model_version(self.model, newest.version)

    def keep_history(self, seconds: float) -> None:
        """What the console shows of the loop (drift p-values, live and test scores) stays
        readable after the stack stops: ``driftloop ui`` on this home shows the whole run."""
        from driftloop.console.config import ConsoleConfig
        from driftloop.console.history import record_stack_history

        if self.stack is None:
            return
        kept = record_stack_history(
            ConsoleConfig.for_stack(self.stack), [self.model], seconds + HISTORY_MARGIN_S
        )
        if kept:
            self.note("setup", f"drift and score history kept for the console: {kept[0]}")

    def collect_trigger_view(self) -> None:
        if self.stack is None or self.stack.running_pid("trigger") is None:
            return
        self.report.decisions = trigger_json(self.stack, "/decisions")
        self.report.runs = trigger_json(self.stack, "/runs")


# --- summary --------------------------------------------------------------------------
def print_summary(report: DemoReport, console: Console) -> None:
    table = Table(title=f"driftloop demo: {report.model}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")

    def seconds(at: float | None) -> str:
        if at is None or report.drift_onset is None:
            return "-"
        return f"+{at - report.drift_onset:.1f}s after drift onset"

    table.add_row(
        "result", "[green]loop closed[/green]" if report.closed else f"[red]{report.failure}[/red]"
    )
    table.add_row("alerting", report.alerting)
    for name, scores in report.scores.items():
        table.add_row(
            f"{name} scores",
            f"{scores.get('metric')}={scores.get('value')}"
            + (
                f"; gate: champion {scores['champion_score']} "
                f"vs challenger {scores['challenger_score']}"
                if scores.get("champion_score") not in (None, "", "none")
                else ""
            ),
        )
    table.add_row("champion", f"v{report.champion_before} -> v{report.champion_after or '-'}")
    for label, stats in (
        ("in-domain", report.baseline),
        ("shifted", report.shifted),
        ("after", report.after),
    ):
        if stats.predictions:
            score = stats.live_score
            table.add_row(
                f"traffic {label}",
                f"{stats.predictions} predictions, live {report.metric} "
                f"{'-' if score is None else f'{score:.2f}'}, {stats.feedback} feedback",
            )
    alerts = sorted(
        {d.get("alertname") or "?" for d in report.decisions if d.get("alert_status") == "firing"}
    )
    table.add_row("alerts received", ", ".join(alerts) or "-")
    outcomes: dict[str, int] = {}
    for d in report.decisions:
        outcomes[d["outcome"]] = outcomes.get(d["outcome"], 0) + 1
    table.add_row(
        "trigger decisions", ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "-"
    )
    for run in report.runs:
        table.add_row(
            "retraining run",
            f"{run['run_id']} ({run['reason']}): {run['state']}"
            + (f" in {run['duration_s']:.0f}s" if run.get("duration_s") else ""),
        )
    table.add_row("alert fired", seconds(report.alert_fired))
    table.add_row("run launched", seconds(report.run_launched))
    table.add_row("new champion", seconds(report.champion_promoted))
    table.add_row("new champion served", seconds(report.champion_served))
    console.print(table)
