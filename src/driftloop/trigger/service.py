"""Retraining policy: which alert launches a run, and what happened to each.

Decisions, in order, for every alert of a webhook:
resolved -> ``resolved_ignored``; no ``model`` label -> ``rejected``;
fingerprint + startsAt already acted on -> ``deduplicated``; a run for the
model still in flight -> ``busy``; last launch for the model younger than the
cooldown -> ``cooling_down``; ``trigger_max_concurrent_runs`` runs in flight
over all models -> ``busy`` (the global cap); a model the MLflow registry does
not know (or a registry that cannot answer) -> ``rejected``; otherwise ->
``launched``. Every decision is recorded with the alert's labels.

Alertmanager forwards whatever alert anyone posts to its API, with the
trigger's token attached, so the labels are not trusted: only registered models
launch, and never more than the cap at once.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

from driftloop.settings import Settings
from driftloop.trigger.launchers import (
    Launcher,
    LaunchError,
    RetrainRequest,
    make_launcher,
    model_is_registered,
)
from driftloop.trigger.ledger import Decision, Ledger, RunRecord, utcnow
from driftloop.trigger.metrics import TriggerMetrics
from driftloop.trigger.payload import Alert, WebhookPayload

log = logging.getLogger(__name__)


def check_params(model: str, params: dict, settings: Settings) -> None:
    """Raise ``ValueError`` naming the option when the champion's blueprint refuses ``params``
    (an unknown option, a value of the wrong kind): refused before anything is launched."""
    from driftloop.blueprints import get_blueprint
    from driftloop.trigger.launchers import champion_training_inputs, with_params

    blueprint = champion_training_inputs(model, settings).get("blueprint")
    if not blueprint:
        raise ValueError(f"params: model {model!r} has no champion blueprint to apply them to")
    get_blueprint(with_params(blueprint, params))


def new_run_id(model: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in model)[:60]
    return f"retrain-{safe}-{utcnow():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


class TriggerService:
    def __init__(
        self,
        settings: Settings,
        launcher: Launcher | None = None,
        ledger: Ledger | None = None,
        metrics: TriggerMetrics | None = None,
        model_exists: Callable[[str], bool] | None = None,
    ) -> None:
        self.settings = settings
        # model name -> registered? (raises LaunchError when the registry cannot answer)
        self.model_exists = model_exists or (lambda name: model_is_registered(name, settings))
        self.max_concurrent_runs = settings.trigger_max_concurrent_runs
        self.launcher = launcher or make_launcher(settings)
        self.ledger = ledger or Ledger.at_home(settings.home)
        self.metrics = metrics or TriggerMetrics()
        self.cooldown = timedelta(seconds=settings.trigger_cooldown_s)
        # one decision at a time: dedupe, busy and cooldown are check-then-act
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.refresh()
        self._count_active()

    # --- webhook ----------------------------------------------------------------
    def handle(self, payload: WebhookPayload) -> list[Decision]:
        with self._lock:
            self.refresh()
            return [self._decide(alert) for alert in payload.alerts]

    def reject(self, reason: str, labels: dict[str, str] | None = None) -> Decision:
        labels = labels or {}
        return self._record(
            Decision(
                outcome="rejected",
                reason=reason,
                model=labels.get("model"),
                alertname=labels.get("alertname"),
                labels=labels,
            )
        )

    def _decide(self, alert: Alert) -> Decision:
        decision = Decision(
            outcome="",
            reason="",
            model=alert.model,
            alertname=alert.alertname,
            alert_status=alert.status,
            fingerprint=alert.fingerprint,
            starts_at=alert.starts_at,
            labels=dict(alert.labels),
        )
        if alert.status != "firing":
            return self._record(decision, "resolved_ignored", "alert resolved; nothing to launch")
        if not alert.model:
            return self._record(decision, "rejected", "alert has no 'model' label")
        previous = self.ledger.seen_run(alert.fingerprint, alert.starts_at)
        if previous is not None:
            decision.run_id = previous or None
            return self._record(
                decision,
                "deduplicated",
                f"alert {alert.fingerprint} starting {alert.starts_at} already launched {previous}",
            )
        running = self.ledger.runs(model=alert.model, state="running", limit=1)
        if running:
            decision.run_id = running[0].run_id
            return self._record(
                decision, "busy", f"run {running[0].run_id} for {alert.model} is still in flight"
            )
        last = self.ledger.last_launch(alert.model)
        if last is not None and utcnow() - last < self.cooldown:
            left = (self.cooldown - (utcnow() - last)).total_seconds()
            return self._record(
                decision,
                "cooling_down",
                f"last run for {alert.model} started {last.isoformat()}; "
                f"cooldown has {left:.0f}s left",
            )
        in_flight = self.ledger.runs(state="running", limit=self.max_concurrent_runs)
        if len(in_flight) >= self.max_concurrent_runs:
            return self._record(
                decision,
                "busy",
                f"{len(in_flight)} retraining runs in flight, the most at once "
                f"(trigger_max_concurrent_runs={self.max_concurrent_runs})",
            )
        try:
            known = self.model_exists(alert.model)
        except LaunchError as exc:
            log.warning("cannot ask the registry about %s: %s", alert.model, exc)
            return self._record(
                decision,
                "rejected",
                f"registry could not confirm model {alert.model!r}: {exc}",
                metric_model="(unconfirmed)",
            )
        if not known:
            return self._record(
                decision,
                "rejected",
                f"model {alert.model!r} is not registered in the MLflow registry",
                metric_model="(unregistered)",  # arbitrary labels must not grow the metrics
            )
        return self._launch(alert, decision)

    # --- asked for by a person (driftloop retrain, POST /retrain) ---------------------------
    def retrain(self, model: str, params: dict | None = None, reason: str = "manual") -> Decision:
        """Launch a retraining run of ``model`` now, its blueprint options overridden by
        ``params``: no alert, so no dedupe or cooldown, but the same registry check and the
        same caps. Raises ``ValueError`` naming a ``params`` entry the blueprint refuses."""
        params = dict(params or {})
        decision = Decision(outcome="", reason="", model=model, alertname=reason,
                            labels={"model": model, "alertname": reason})  # fmt: skip
        with self._lock:
            self.refresh()
            try:
                known = self.model_exists(model)
            except LaunchError as exc:
                return self._record(decision, "rejected", f"registry could not confirm {model!r}: "
                                    f"{exc}", metric_model="(unconfirmed)")  # fmt: skip
            if not known:
                return self._record(
                    decision, "rejected", f"model {model!r} is not registered in the MLflow "
                    "registry", metric_model="(unregistered)",
                )  # fmt: skip
            # what was asked is checked first: a refused param is refused even while busy
            if params:
                check_params(model, params, self.settings)
            running = self.ledger.runs(model=model, state="running", limit=1)
            if running:
                decision.run_id = running[0].run_id
                return self._record(
                    decision, "busy", f"run {running[0].run_id} for {model} is still in flight"
                )
            in_flight = self.ledger.runs(state="running", limit=self.max_concurrent_runs)
            if len(in_flight) >= self.max_concurrent_runs:
                return self._record(
                    decision,
                    "busy",
                    f"{len(in_flight)} retraining runs in flight, the most at once",
                )
            request = RetrainRequest(run_id=new_run_id(model), model=model, reason=reason,
                                     labels=dict(decision.labels), params=params)  # fmt: skip
            return self._start(request, decision)

    def _launch(self, alert: Alert, decision: Decision) -> Decision:
        request = RetrainRequest(
            run_id=new_run_id(alert.model),
            model=alert.model,
            reason=alert.alertname or "unknown",
            labels=dict(alert.labels),
            fingerprint=alert.fingerprint,
            starts_at=alert.starts_at,
        )
        return self._start(request, decision, alert)

    def _start(
        self, request: RetrainRequest, decision: Decision, alert: Alert | None = None
    ) -> Decision:
        reason = request.reason
        try:
            launched = self.launcher.launch(request)
        except LaunchError as exc:
            log.error("launch failed for %s: %s", request.model, exc)
            return self._record(decision, "rejected", f"launch failed: {exc}")
        self.ledger.add_run(
            RunRecord(
                run_id=request.run_id,
                model=request.model,
                reason=reason,
                launcher=self.launcher.name,
                state="running",
                started_at=utcnow(),
                pid=launched.pid,
                external_id=launched.external_id,
            )
        )
        if alert is not None:
            self.ledger.claim_alert(alert.fingerprint, alert.starts_at, request.run_id)
        self._count_active()
        decision.run_id = request.run_id
        log.info("launched %s for %s (%s)", request.run_id, request.model, reason)
        if alert is None:
            asked = ", ".join(f"{k}={v}" for k, v in request.params.items()) or "champion's options"
            return self._record(
                decision, "launched", f"{reason} retrain of {request.model} ({asked})"
            )
        return self._record(decision, "launched", f"{reason} fired for {alert.model}")

    def _record(
        self,
        decision: Decision,
        outcome: str | None = None,
        reason: str | None = None,
        *,
        metric_model: str | None = None,
    ):
        if outcome:
            decision.outcome = outcome
        if reason:
            decision.reason = reason
        self.ledger.record_decision(decision)
        self.metrics.runs_total.labels(
            model=metric_model or decision.model or "",
            reason=decision.alertname or "",
            outcome=decision.outcome,
        ).inc()
        return decision

    # --- runs ---------------------------------------------------------------------
    def refresh(self) -> list[RunRecord]:
        """Poll runs in flight; record the ones that finished. Returns those."""
        finished = []
        with self._lock:
            for run in self.ledger.runs(state="running", limit=1000):
                status = self.launcher.poll(run)
                if status.state == "running":
                    continue
                ended = utcnow()
                duration = (ended - run.started_at).total_seconds()
                self.ledger.update_run(
                    run.run_id,
                    state=status.state,
                    finished_at=ended,
                    duration_s=duration,
                    outputs=status.outputs,
                    error=status.error,
                )
                self.metrics.runs_total.labels(
                    model=run.model, reason=run.reason, outcome=status.state
                ).inc()
                self.metrics.run_duration.labels(model=run.model, outcome=status.state).observe(
                    duration
                )
                log.info("run %s %s after %.1fs", run.run_id, status.state, duration)
                finished.append(run)
            if finished:
                self._count_active()
        return finished

    def _count_active(self) -> None:
        in_flight: dict[str, int] = {}
        for run in self.ledger.runs(state="running", limit=1000):
            in_flight[run.model] = in_flight.get(run.model, 0) + 1
        for run in self.ledger.runs(limit=1000):
            self.metrics.runs_active.labels(model=run.model).set(in_flight.get(run.model, 0))

    def start_watcher(self, interval_s: float = 1.0) -> None:
        def watch() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.refresh()
                except Exception:  # keep watching; a bad poll must not kill the thread
                    log.exception("polling retraining runs failed")

        self._watcher = threading.Thread(target=watch, name="trigger-run-watcher", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        self.launcher.close()
        self.refresh()
        self.ledger.dispose()
