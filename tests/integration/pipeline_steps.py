"""The training pipeline's steps called in-process, in the pipeline's order.

Each step is the component's own Python function (``component.python_func``),
given artifacts in a scratch folder, so a test exercises exactly the code a
KFP or kfp.local run executes, without kfp.local's ~seconds per task. The
failure-story tests use it to stop between steps and look at the registry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kfp import dsl


def artifact(kind, folder: Path, name: str):
    return kind(name=name, uri=str(folder / name))


@dataclass
class StepRun:
    folder: Path
    blueprint: str
    model_name: str
    outputs: dict = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.folder / name

    def dataset(self, name: str):
        return artifact(dsl.Dataset, self.folder, name)


def run_until_registered(
    folder: Path,
    *,
    blueprint: str,
    model_name: str,
    data_source: str,
    dataset: str = "",
    seed: int = 42,
    search: str = "",
) -> StepRun:
    """ingest -> validate -> split -> train -> evaluate -> register; returns what they made."""
    from components import evaluate, ingest, register, split, train, validate

    folder.mkdir(parents=True, exist_ok=True)
    run = StepRun(folder, blueprint, model_name)
    ingest.python_func(
        blueprint=blueprint,
        dataset=dataset,
        data_source=data_source,
        label_mapping="",
        data=run.dataset("data"),
    )
    validate.python_func(data=run.dataset("data"), blueprint=blueprint)
    fingerprints, test_fingerprint = split.python_func(
        data=run.dataset("data"),
        blueprint=blueprint,
        seed=seed,
        train=run.dataset("train"),
        val=run.dataset("val"),
        test=run.dataset("test"),
    )
    run_id, _uri, _summary = train.python_func(
        blueprint=blueprint,
        experiment=f"steps-{model_name}",
        seed=seed,
        fingerprints=fingerprints,
        train=run.dataset("train"),
        val=run.dataset("val"),
        model=artifact(dsl.Model, folder, "model"),
        search=search,
        dataset=dataset,
        data_source=data_source,
    )
    test_metrics = evaluate.python_func(
        blueprint=blueprint,
        run_id=run_id,
        test=run.dataset("test"),
        metrics=artifact(dsl.Metrics, folder, "metrics"),
    )
    version = register.python_func(
        model_name=model_name,
        blueprint=blueprint,
        run_id=run_id,
        fingerprints=fingerprints,
        test_metrics=test_metrics,
        dataset=dataset,
        data_source=data_source,
        label_mapping="",
    )
    run.outputs = {
        "fingerprints": json.loads(fingerprints),
        "test_fingerprint": test_fingerprint,
        "run_id": run_id,
        "test_metrics": json.loads(test_metrics),
        "version": version,
    }
    return run


def gate_step(run: StepRun, min_improvement: float = 0.01) -> tuple[str, dict]:
    """The gate component on ``run``'s version and test split: (outcome, its report)."""
    from components import gate

    report = artifact(dsl.Artifact, run.folder, "gate-report")
    outcome = gate.python_func(
        model_name=run.model_name,
        version=run.outputs["version"],
        blueprint=run.blueprint,
        test_fingerprint=run.outputs["test_fingerprint"],
        min_improvement=min_improvement,
        test=run.dataset("test"),
        report=report,
    )
    return outcome, json.loads(Path(report.path).read_text())
