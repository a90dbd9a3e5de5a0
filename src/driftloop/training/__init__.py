"""Training: seeded splits, candidate search with MLflow tracking, held-out evaluation.

Submodules are imported on use (MLflow takes seconds to import):
``driftloop.training.splits``, ``.candidates``, ``.evaluate``; ``.gate`` is the
champion/challenger gate.
"""
