"""Which detectors watch which feature groups: a small, validated config.

The default suits the sentiment blueprint; a YAML file
(``DRIFTLOOP_MONITOR_CONFIG`` or ``driftloop monitor --config``) replaces it::

    p_val: 0.01            # family-wise: split evenly over the batch detectors
    window: 200            # events per evaluation; omitted -> settings.monitor_window
    projection_dims: 12
    detectors:
      - {name: ks-projection, kind: ks, features: projection, correction: fdr}
      - {name: mmd-projection, kind: mmd, features: projection, n_permutations: 100}
      - {name: chi2-prediction, kind: chisquare, features: prediction}
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from driftloop.settings import Settings

DetectorKind = Literal["ks", "cvm", "mmd", "chisquare", "lsdd_online", "mmd_online"]
FeatureGroup = Literal["projection", "text_stats", "prediction"]

BATCH_KINDS = {"ks", "cvm", "mmd", "chisquare"}
ONLINE_KINDS = {"lsdd_online", "mmd_online"}
# which detector kinds make sense on which kind of data
CATEGORICAL_GROUPS = {"prediction"}


class ConfigError(ValueError):
    """The monitor config is invalid; the message names the field."""


class DetectorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: DetectorKind
    features: FeatureGroup
    p_val: float | None = Field(default=None, gt=0, lt=1)  # None: share of the family p_val
    correction: Literal["bonferroni", "fdr"] = "bonferroni"
    n_permutations: int = Field(default=100, ge=10)
    max_reference: int | None = Field(default=None, ge=20)  # subsample x_ref (kernel tests)
    ert: float = Field(default=500.0, gt=1)  # online: expected run time without drift
    online_window: int = Field(default=20, ge=2)
    n_bootstraps: int = Field(default=1000, ge=100)

    @model_validator(mode="after")
    def _kind_fits_features(self) -> DetectorSpec:
        categorical = self.features in CATEGORICAL_GROUPS
        if categorical and self.kind != "chisquare":
            raise ValueError(f"features {self.features!r} are categorical: use kind chisquare")
        if not categorical and self.kind == "chisquare":
            raise ValueError(f"kind chisquare needs categorical features, not {self.features!r}")
        return self

    @property
    def online(self) -> bool:
        return self.kind in ONLINE_KINDS


class MonitorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p_val: float = Field(default=0.01, gt=0, lt=1)  # family-wise false-alarm rate per window
    window: int | None = Field(default=None, ge=10)
    projection_dims: int = Field(default=12, ge=2, le=64)
    detectors: list[DetectorSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> MonitorConfig:
        names = [d.name for d in self.detectors]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"detector names must be unique: {', '.join(duplicates)}")
        return self

    def detector_p_val(self, spec: DetectorSpec) -> float:
        """Bonferroni across batch detectors keeps the per-window false-alarm rate near p_val."""
        if spec.p_val is not None:
            return spec.p_val
        batch = sum(1 for d in self.detectors if not d.online)
        return self.p_val / max(batch, 1)

    def window_size(self, settings: Settings) -> int:
        return self.window or settings.monitor_window


DEFAULT_CONFIG = MonitorConfig(
    detectors=[
        DetectorSpec(name="ks-projection", kind="ks", features="projection", correction="fdr"),
        DetectorSpec(name="ks-text-stats", kind="ks", features="text_stats"),
        DetectorSpec(name="chi2-prediction", kind="chisquare", features="prediction"),
    ]
)

# MMD is not in the default: with 100 permutations its p-value cannot go below
# ~1/100, so it cannot honour a Bonferroni share of the 0.01 family p_val, and
# at ~0.5 s per window it costs ten times the others together. Add it where a
# joint (multivariate) test is worth that, with its own p_val:
MMD_PROJECTION = DetectorSpec(
    name="mmd-projection", kind="mmd", features="projection", max_reference=500, p_val=0.01
)


def parse_config(data: object) -> MonitorConfig:
    try:
        return MonitorConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(p) for p in first["loc"]) or "config"
        raise ConfigError(f"monitor config {location}: {first['msg']}") from None


def load_config(path: Path | str | None = None, settings: Settings | None = None) -> MonitorConfig:
    """The YAML at ``path`` (or settings.monitor_config), else the default."""
    if path is None and settings is not None:
        path = settings.monitor_config
    if path is None:
        return DEFAULT_CONFIG
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"monitor config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"monitor config {path} is not valid YAML: {exc}") from None
    return parse_config(data)
