"""Drift monitor: payload-logger CloudEvents in, drift and feedback metrics out.

Pieces, one job each:

* ``events`` -- CloudEvents (KServe logger format) to texts and labels;
* ``pairing`` -- request/response pairing on ``ce-id`` with a TTL;
* ``features`` -- texts + predicted labels to feature groups;
* ``config`` / ``detectors`` -- which alibi-detect detectors run on which group;
* ``reference`` -- fit/save/load a version's drift reference (``fit_reference``);
* ``engine`` -- windows tested on a background thread;
* ``champion`` -- the watched version (registry) and its feedback (store);
* ``metrics`` -- every Prometheus series; ``service`` / ``app`` / ``server`` -- the process;
* ``rules`` -- the alert rules (``alert_rules.yaml``); ``evaluator`` -- the same
  alerts without Prometheus, posting Alertmanager webhooks.

Nothing here imports alibi_detect at module import time.
"""
