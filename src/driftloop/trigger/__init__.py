"""Retraining trigger: Alertmanager webhook in, retraining runs out.

The receiver (:mod:`.app`) accepts Alertmanager webhook payloads (version 4),
the policy (:mod:`.service`) dedupes on alert fingerprint + ``startsAt``,
enforces a cooldown and one run at a time per model, and records every
decision in the ledger (:mod:`.ledger`). Runs are started by a launcher
(:mod:`.launchers`): a ``kfp.local`` worker process on the embedded stack or a
KFP run on Kubernetes, chosen in one place from ``settings.target``.
"""
