"""Serving: the KServe predictor for driftloop models and everything around it.

- ``model.BlueprintModel`` -- the one kserve.Model for every blueprint: the served
  version's codec decodes and encodes, loaded from ``models:/NAME@champion``; hot
  reload by alias.
- ``server.serve`` / ``server.DriftloopModelServer`` -- kserve.ModelServer with REST
  v1/v2, gRPC v2, the feedback API (``feedback``), auth (``auth``) and metrics
  (``metrics``).
- the prediction log + feedback store is its own package, ``driftloop.store``.
- ``payload_logger.PayloadLogger`` -- KServe-agent-compatible CloudEvents.
- ``client.PredictorClient`` and ``smoke.smoke_serve`` -- calling a running predictor.

Imports are per module (``from driftloop.serving.client import PredictorClient``):
this package does not import KServe or MLflow until a module that needs them is used.
"""
