"""The drift reference of one model version: featurizer + fitted detectors.

``fit_reference`` featurises held-out rows with the version's own model,
fits the configured alibi-detect detectors on them, saves everything into one
directory (``save_detector`` per detector, the featurizer with joblib),
logs it as the ``drift_reference`` artifact of the version's run and tags the
version with ``driftloop.drift_reference``. The monitor loads the reference of
whichever version it watches, so a new champion brings its own.

Use rows the model did not train on (the validation or test split): on its
own training rows the model's vocabulary covers every token and its
predictions are over-confident, so live traffic would look drifted from day one.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import yaml

from driftloop.lineage import TAG_DRIFT_REFERENCE, TAG_TRAIN_FINGERPRINT
from driftloop.monitor.config import DEFAULT_CONFIG, MonitorConfig, load_config, parse_config
from driftloop.monitor.detectors import DetectorSet
from driftloop.monitor.features import fit_featurizer
from driftloop.settings import Settings, get_settings

log = logging.getLogger(__name__)

ARTIFACT_PATH = "drift_reference"
FEATURIZER_FILE = "featurizer.joblib"
CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
DETECTORS_DIR = "detectors"


class ReferenceError(ValueError):
    """The reference data or model cannot make a drift reference; says why."""


@dataclass
class ReferenceBundle:
    featurizer: object
    detectors: DetectorSet
    config: MonitorConfig
    meta: dict = field(default_factory=dict)

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.featurizer, directory / FEATURIZER_FILE)
        (directory / CONFIG_FILE).write_text(yaml.safe_dump(self.config.model_dump(mode="json")))
        (directory / META_FILE).write_text(json.dumps(self.meta, indent=2, sort_keys=True))
        self.detectors.save(directory / DETECTORS_DIR)
        return directory

    @classmethod
    def load(cls, directory: Path) -> ReferenceBundle:
        directory = Path(directory)
        for name in (FEATURIZER_FILE, CONFIG_FILE, META_FILE, DETECTORS_DIR):
            if not (directory / name).exists():
                raise FileNotFoundError(f"drift reference {directory} has no {name}")
        config = parse_config(yaml.safe_load((directory / CONFIG_FILE).read_text()))
        return cls(
            featurizer=joblib.load(directory / FEATURIZER_FILE),
            detectors=DetectorSet.load(config, directory / DETECTORS_DIR),
            config=config,
            meta=json.loads((directory / META_FILE).read_text()),
        )


def build_reference(
    model,
    texts: list[str],
    *,
    config: MonitorConfig = DEFAULT_CONFIG,
    seed: int = 0,
    feature_kind: str = "text",
    meta: dict | None = None,
) -> ReferenceBundle:
    """Featurise ``texts`` with ``model`` and fit the configured detectors on them."""
    if len(texts) < 40:
        raise ReferenceError(f"the reference needs at least 40 rows, got {len(texts)}")
    # The projection is fitted on one half and x_ref is the other half: an SVD
    # projects its own training rows with more variance than unseen ones, which
    # the detectors would report as drift on every unshifted window.
    order = np.random.default_rng(seed).permutation(len(texts))
    half = len(texts) // 2
    projection_texts = [texts[i] for i in order[:half]]
    reference_texts = [texts[i] for i in order[half:]]
    featurizer = fit_featurizer(
        feature_kind, model, projection_texts, dims=config.projection_dims, seed=seed
    )
    # live windows carry the model's predictions, so the reference must too (not true labels)
    predicted = [str(label) for label in model.predict(reference_texts)]
    features = featurizer.transform(reference_texts, predicted)
    detectors = DetectorSet.build(config, features, n_classes=featurizer.n_classes, seed=seed)
    info = {
        "feature_kind": feature_kind,
        "n_rows": len(texts),
        "n_reference": len(reference_texts),
        "classes": featurizer.classes,
        "predicted_share": {
            label: float(np.mean([p == label for p in predicted])) for label in featurizer.classes
        },
        "created_at": datetime.now(UTC).isoformat(),
        "seed": seed,
    }
    info.update(meta or {})
    return ReferenceBundle(featurizer=featurizer, detectors=detectors, config=config, meta=info)


def read_reference_texts(reference_path: Path | str, text_column: str = "text") -> list[str]:
    path = Path(reference_path)
    if not path.is_file():
        raise ReferenceError(f"reference file not found: {path}")
    from driftloop.datasets.files import read_frame

    try:
        frame = read_frame(path, dtype={})
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise ReferenceError(f"cannot read reference file {path}: {exc}") from None
    if text_column not in frame.columns:
        raise ReferenceError(
            f"reference file {path} has no column {text_column!r} (has {list(frame.columns)})"
        )
    texts = frame[text_column].dropna().astype(str)
    return [t for t in texts if t.strip()]


def fit_reference(
    model_name: str,
    version: str,
    reference_path: Path | str,
    settings: Settings | None = None,
    *,
    config: MonitorConfig | None = None,
    text_column: str = "text",
) -> str:
    """Fit, save and register the drift reference of one version; returns its artifact URI."""
    from driftloop.registry import ModelRegistry

    settings = settings or get_settings()
    config = config or load_config(settings=settings)
    registry = ModelRegistry(settings.resolved_tracking_uri)
    info = registry.get_version(model_name, version)
    if not info.run_id:
        raise ReferenceError(
            f"{model_name} version {version} has no run to attach the reference to"
        )
    texts = read_reference_texts(reference_path, text_column)
    _warn_if_training_rows(reference_path, info.tags.get(TAG_TRAIN_FINGERPRINT))
    model = registry.load_sklearn(model_name, version)
    bundle = build_reference(
        model,
        texts,
        config=config,
        seed=settings.seed,
        meta={"model_name": model_name, "version": str(version), "source": str(reference_path)},
    )
    with tempfile.TemporaryDirectory(prefix="driftloop-reference-") as scratch:
        local = bundle.save(Path(scratch) / ARTIFACT_PATH)
        registry.client.log_artifacts(info.run_id, str(local), artifact_path=ARTIFACT_PATH)
    run = registry.client.get_run(info.run_id)
    uri = f"{run.info.artifact_uri.rstrip('/')}/{ARTIFACT_PATH}"
    registry.set_tags(model_name, version, {TAG_DRIFT_REFERENCE: uri})
    log.info("%s v%s: drift reference (%d rows) at %s", model_name, version, len(texts), uri)
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


def _warn_if_training_rows(reference_path: Path | str, train_fingerprint: str | None) -> None:
    if not train_fingerprint:
        return
    try:
        from driftloop.training.splits import fingerprint
    except ImportError:
        return
    from driftloop.datasets.files import read_frame

    frame = read_frame(reference_path) if str(reference_path).endswith(".parquet") else None
    if frame is not None and fingerprint(frame) == train_fingerprint:
        log.warning(
            "drift reference %s is the training split: expect false drift alarms; "
            "use the validation or test split",
            reference_path,
        )
