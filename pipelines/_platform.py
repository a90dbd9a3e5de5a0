"""Kubernetes settings for pipeline tasks, applied in one place.

Credentials reach the component pods as environment variables from Secrets
(never as pipeline parameters, which KFP stores and shows in its UI), and every
task declares requests/limits so it fits the namespace's quota. ``kfp.local``
ignores all of this, so the same pipeline definition runs on a laptop.
"""

from __future__ import annotations

from kfp import dsl, kubernetes

MLFLOW_SECRET = "driftloop-mlflow"
MINIO_SECRET = "driftloop-minio"
STORE_SECRET = "driftloop-store"
CONFIG_MAP = "driftloop-config"
IMAGE_PULL_POLICY = "IfNotPresent"

MLFLOW_ENV = {"tracking-uri": "MLFLOW_TRACKING_URI"}
MINIO_ENV = {
    "access-key": "AWS_ACCESS_KEY_ID",
    "secret-key": "AWS_SECRET_ACCESS_KEY",
    "endpoint-url": "MLFLOW_S3_ENDPOINT_URL",
}
STORE_ENV = {"url": "DRIFTLOOP_STORE_URL"}
# Non-secret knobs (which deployer, which namespace) come from a ConfigMap so the
# compiled pipeline carries no environment-specific values.
CONFIG_ENV = {"target": "DRIFTLOOP_TARGET", "namespace": "DRIFTLOOP_NAMESPACE"}


# (cpu request, cpu limit, memory request, memory limit)
LIGHT = ("250m", "1", "512Mi", "1Gi")
HEAVY = ("1", "2", "2Gi", "4Gi")


def configure(
    task: dsl.PipelineTask,
    *,
    heavy: bool = False,
    needs_store: bool = False,
    cache: bool = False,
) -> dsl.PipelineTask:
    """Secrets, config, resources, pull policy and caching for one driftloop task.

    Caching is off by default: most steps write to the registry or read live
    feedback (or a data source whose content may change under the same name), so
    replaying a cached result would skip a side effect or serve stale rows. Only a
    step whose outputs are a pure function of its inputs (its input artifacts and
    parameters, which the cache key holds) sets ``cache=True``.
    """
    cpu_request, cpu_limit, memory_request, memory_limit = HEAVY if heavy else LIGHT
    task.set_cpu_request(cpu_request).set_cpu_limit(cpu_limit)
    task.set_memory_request(memory_request).set_memory_limit(memory_limit)
    task.set_caching_options(cache)
    kubernetes.set_image_pull_policy(task, IMAGE_PULL_POLICY)
    kubernetes.use_secret_as_env(task, secret_name=MLFLOW_SECRET, secret_key_to_env=MLFLOW_ENV)
    kubernetes.use_secret_as_env(task, secret_name=MINIO_SECRET, secret_key_to_env=MINIO_ENV)
    kubernetes.use_config_map_as_env(
        task, config_map_name=CONFIG_MAP, config_map_key_to_env=CONFIG_ENV, optional=True
    )
    if needs_store:
        kubernetes.use_secret_as_env(task, secret_name=STORE_SECRET, secret_key_to_env=STORE_ENV)
    return task
