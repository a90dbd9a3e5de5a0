"""Drift monitor: payload-logger CloudEvents in, drift and feedback metrics out.

Pieces, one job each:

* ``events`` -- CloudEvents (KServe logger format) to model inputs and answers,
  decoded by the served version's codec;
* ``pairing`` -- request/response pairing on ``ce-id`` with a TTL;
* feature groups come from the version's blueprint (``blueprints.drift``);
* ``config`` / ``detectors`` -- which alibi-detect detectors run on which group;
* ``reference`` -- fit/save/load a version's drift reference (``fit_reference``);
* ``engine`` -- paired inferences decoded in batches and windows tested off the
  intake path; ``detection_process`` -- featurise + detect in a child process;
* ``champion`` -- the watched version (registry), its feedback and live score (store);
* ``metrics`` -- every Prometheus series; ``service`` -- intake, pairing, polling;
  ``app`` -- the intake front (and an ASGI app); ``http_server`` / ``server`` -- the process;
* ``rules`` -- the alert rules (``alert_rules.yaml``); ``evaluator`` -- the same
  alerts without Prometheus, posting Alertmanager webhooks.

Nothing here imports alibi_detect at module import time.
"""
