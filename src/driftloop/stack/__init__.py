"""The embedded stack: every driftloop service as a supervised local process.

``driftloop up`` starts, in order, the MLflow server, the drift monitor, the
predictor (its payload logger pointed at the monitor), the retraining trigger,
and alerting: Prometheus + Alertmanager when their binaries are installed,
otherwise the monitor's built-in evaluator posting the same webhook. Each
process gets its own session (so stopping it stops its children), a log and a
pid file under ``settings.home/stack``, and is health-checked with a bounded
wait. ``driftloop down`` stops them (SIGTERM, then SIGKILL after a timeout);
``driftloop status`` reports them. All of it binds and calls 127.0.0.1 only.

One job per module:

* :mod:`.services` -- the service catalogue: which services run, their
  commands, ports, health URLs and shared environment;
* :mod:`.alerting_config` -- the Prometheus and Alertmanager configuration
  the catalogue writes for them;
* :mod:`.supervisor` -- :class:`~driftloop.stack.supervisor.Stack`: start,
  health-check, stop and restart the processes (pid files, logs);
* :mod:`.status` -- what ``driftloop status`` shows: processes, champion,
  the trigger's recent decisions and runs.
"""
