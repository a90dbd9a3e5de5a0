"""The drift reference of one model version: featurizer + fitted detectors.

``fit_reference`` resolves the version's blueprint from its tag, featurises
held-out rows with the blueprint's drift featurizer and the version's own
predictions, fits the configured alibi-detect detectors on them (by default
the featurizer's suggestions), saves everything into one directory
(``save_detector`` per detector, the featurizer and the codec with joblib),
logs it as the ``drift_reference`` artifact of the version's run and tags the
version with ``driftloop.drift_reference``. The monitor loads the reference of
whichever version it watches, so a new champion brings its own.

Use rows the model did not train on (the validation or test split): on its
own training rows a model is over-confident (and a text model's vocabulary
covers every token), so live traffic would look drifted from day one.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import yaml

from driftloop.blueprints.codec import Batch
from driftloop.lineage import (
    TAG_DRIFT_REFERENCE,
    TAG_TRAIN_FINGERPRINT,
    TAG_VALIDATION,
    split_fingerprint_tag,
)
from driftloop.monitor.config import DEFAULT_CONFIG, MonitorConfig, load_config, parse_config
from driftloop.monitor.detectors import DetectorSet
from driftloop.settings import Settings, get_settings

log = logging.getLogger(__name__)

ARTIFACT_PATH = "drift_reference"
FEATURIZER_FILE = "featurizer.joblib"
CODEC_FILE = "codec.joblib"
CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
DETECTORS_DIR = "detectors"
MIN_ROWS = 40
# The monitor reads what the predictor already accepted: its request limits don't apply.
_LOGGED_MAX_INSTANCES = 1_000_000
_LOGGED_MAX_CHARS = 100_000_000


class ReferenceError(ValueError):
    """The reference data or model cannot make a drift reference; says why."""


@dataclass
class ReferenceBundle:
    """A version's drift featurizer, fitted detectors, and the codec that decodes its traffic."""

    featurizer: Any  # a blueprints.drift.DriftFeaturizer
    detectors: DetectorSet
    config: MonitorConfig
    codec: Any = None  # a blueprints.codec.Codec
    meta: dict = field(default_factory=dict)

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.featurizer, directory / FEATURIZER_FILE)
        joblib.dump(self.codec, directory / CODEC_FILE)
        (directory / CONFIG_FILE).write_text(yaml.safe_dump(self.config.model_dump(mode="json")))
        (directory / META_FILE).write_text(json.dumps(self.meta, indent=2, sort_keys=True))
        self.detectors.save(directory / DETECTORS_DIR)
        return directory

    @classmethod
    def load(cls, directory: Path) -> ReferenceBundle:
        directory = Path(directory)
        for name in (FEATURIZER_FILE, CODEC_FILE, CONFIG_FILE, META_FILE, DETECTORS_DIR):
            if not (directory / name).exists():
                raise FileNotFoundError(f"drift reference {directory} has no {name}")
        config = parse_config(yaml.safe_load((directory / CONFIG_FILE).read_text()))
        return cls(
            featurizer=joblib.load(directory / FEATURIZER_FILE),
            detectors=DetectorSet.load(config, directory / DETECTORS_DIR),
            config=config,
            codec=joblib.load(directory / CODEC_FILE),
            meta=json.loads((directory / META_FILE).read_text()),
        )


def build_reference(
    blueprint,
    model,
    frame: pd.DataFrame,
    *,
    config: MonitorConfig | None = None,
    seed: int = 0,
    meta: dict | None = None,
) -> ReferenceBundle:
    """Featurise held-out rows of ``blueprint``'s ``model`` and fit the detectors on them.

    ``config`` without detectors (the default) takes the featurizer's
    ``default_detectors()``; given detectors are checked against its groups.
    """
    if len(frame) < MIN_ROWS:
        raise ReferenceError(f"the reference needs at least {MIN_ROWS} rows, got {len(frame)}")
    # The featurizer is fitted on one half and x_ref is the other half: whatever
    # it learns from rows (an SVD projection, category codes) describes its own
    # rows more closely than unseen ones, which the detectors would report as
    # drift on every unshifted window.
    order = np.random.default_rng(seed).permutation(len(frame))
    half = len(frame) // 2
    fit_rows = frame.iloc[order[:half]].reset_index(drop=True)
    reference_rows = frame.iloc[order[half:]].reset_index(drop=True)
    featurizer = blueprint.drift_featurizer(model, fit_rows)
    try:
        config = (config or DEFAULT_CONFIG).resolve(featurizer)
    except ValueError as exc:
        raise ReferenceError(str(exc)) from None
    codec = blueprint.codec(model)
    codec.limits = replace(
        codec.limits, max_instances=_LOGGED_MAX_INSTANCES, max_chars=_LOGGED_MAX_CHARS
    )
    # live windows carry the model's answers, so the reference must too (not true labels)
    batch = Batch(model_input=blueprint.features(reference_rows), summaries=[])
    answer = codec.predict(batch)
    features = featurizer.transform(batch.model_input, answer.instances)
    detectors = DetectorSet.build(
        config,
        features,
        categories={group: featurizer.categories(group) for group in featurizer.groups},
        seed=seed,
    )
    info: dict = {
        "blueprint": str(blueprint.spec),
        "groups": dict(featurizer.groups),
        "n_rows": len(frame),
        "n_reference": len(reference_rows),
        "created_at": datetime.now(UTC).isoformat(),
        "seed": seed,
    }
    labels = [label for label in answer.labels if label is not None]
    if labels:
        shares = pd.Series(labels).value_counts(normalize=True).sort_index()
        info["predicted_share"] = {str(k): float(v) for k, v in shares.items()}
    info.update(meta or {})
    return ReferenceBundle(
        featurizer=featurizer, detectors=detectors, config=config, codec=codec, meta=info
    )


def read_reference_frame(reference_path: Path | str) -> pd.DataFrame:
    """The held-out rows (Parquet, or CSV) a reference is fitted on."""
    path = Path(reference_path)
    if not path.is_file():
        raise ReferenceError(f"reference file not found: {path}")
    from driftloop.datasets.files import read_frame

    try:
        return read_frame(path, dtype={})
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise ReferenceError(f"cannot read reference file {path}: {exc}") from None


def fit_reference(
    model_name: str,
    version: str,
    reference_path: Path | str | Sequence[Path | str],
    settings: Settings | None = None,
    *,
    config: MonitorConfig | None = None,
) -> str:
    """Fit, save and register the drift reference of one version; returns its artifact URI.

    The version's blueprint (from its tag) says what to featurise and how.
    ``reference_path`` may name several held-out files (validation and test
    splits): a small table's validation split alone is too few rows.
    """
    from driftloop.registry import ModelRegistry

    settings = settings or get_settings()
    config = config or load_config(settings=settings)
    registry = ModelRegistry(settings.resolved_tracking_uri)
    info = registry.get_version(model_name, version)
    if not info.run_id:
        raise ReferenceError(
            f"{model_name} version {version} has no run to attach the reference to"
        )
    blueprint = info.blueprint()
    paths = [reference_path] if isinstance(reference_path, str | Path) else list(reference_path)
    frames = [read_reference_frame(path) for path in paths]
    for path, part in zip(paths, frames, strict=True):
        _warn_if_training_rows(part, path, info.tags.get(TAG_TRAIN_FINGERPRINT))
    frames, paths = _unseen_parts(frames, paths, info.tags)
    frame = pd.concat(frames, ignore_index=True)
    model = registry.load_sklearn(model_name, version)
    bundle = build_reference(
        blueprint,
        model,
        frame,
        config=config,
        seed=settings.seed,
        meta={
            "model_name": model_name,
            "version": str(version),
            "source": ", ".join(map(str, paths)),
        },
    )
    with tempfile.TemporaryDirectory(prefix="driftloop-reference-") as scratch:
        local = bundle.save(Path(scratch) / ARTIFACT_PATH)
        registry.client.log_artifacts(info.run_id, str(local), artifact_path=ARTIFACT_PATH)
    run = registry.client.get_run(info.run_id)
    uri = f"{run.info.artifact_uri.rstrip('/')}/{ARTIFACT_PATH}"
    registry.set_tags(model_name, version, {TAG_DRIFT_REFERENCE: uri})
    log.info("%s v%s: drift reference (%d rows) at %s", model_name, version, len(frame), uri)
    return uri


def load_reference(uri: str, tracking_uri: str | None = None) -> ReferenceBundle:
    """Download (if remote) and load the bundle an artifact URI points at."""
    local = Path(uri.removeprefix("file://")) if uri.startswith(("file://", "/")) else None
    if local is not None and local.is_dir():
        return ReferenceBundle.load(local)
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="driftloop-reference-") as scratch:
        downloaded = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=scratch, tracking_uri=tracking_uri
        )
        return ReferenceBundle.load(Path(downloaded))


def _unseen_parts(
    frames: list[pd.DataFrame], paths: list, tags: dict[str, str]
) -> tuple[list[pd.DataFrame], list]:
    """The parts the model never learnt from.

    A search validated by folds refits its winner on train + validation, so the
    validation split is no longer held out: a reference holding it would compare
    traffic with rows the model has seen (its confident outputs there make unseen
    in-domain traffic look drifted). It is dropped when the rest still has enough
    rows; otherwise kept, with a warning.
    """
    from driftloop.training.splits import fingerprint
    from driftloop.training.validation import HOLDOUT

    refit_fingerprint = tags.get(split_fingerprint_tag("val"))
    if tags.get(TAG_VALIDATION, HOLDOUT) == HOLDOUT or len(frames) < 2 or not refit_fingerprint:
        return frames, paths

    seen = [fingerprint(part) == refit_fingerprint for part in frames]
    kept = [
        (part, path)
        for part, path, was_seen in zip(frames, paths, seen, strict=True)
        if not was_seen
    ]
    if not any(seen):
        return frames, paths
    if sum(len(part) for part, _ in kept) < MIN_ROWS:
        log.warning(
            "drift reference keeps the validation split although the model was refit on it "
            "(%s): the test split alone has fewer than %d rows",
            tags.get(TAG_VALIDATION),
            MIN_ROWS,
        )
        return frames, paths
    log.info("drift reference leaves out the validation split: the model was refit on it")
    return [part for part, _ in kept], [path for _, path in kept]


def _warn_if_training_rows(
    frame: pd.DataFrame, reference_path: Path | str, train_fingerprint: str | None
) -> None:
    if not train_fingerprint:
        return
    try:
        from driftloop.training.splits import fingerprint
    except ImportError:
        return
    if fingerprint(frame) == train_fingerprint:
        log.warning(
            "drift reference %s is the training split: expect false drift alarms; "
            "use the validation or test split",
            reference_path,
        )
