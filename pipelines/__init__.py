"""KFP pipelines: ``pipelines.training`` and ``pipelines.retraining``.

``python -m pipelines.compile`` writes their IR YAML for a cluster;
``pipelines.local_run.run_pipeline_locally`` runs them through ``kfp.local``.
"""
