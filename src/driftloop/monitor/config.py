"""Which detectors watch which feature groups: a small, validated config.

Feature groups are the blueprint's (``blueprints.drift.DriftFeaturizer.groups``:
e.g. ``projection``/``text_stats``/``prediction`` for texts, ``numeric``/
``categorical``/``prediction`` for tables). Without ``detectors`` the config
uses the featurizer's ``default_detectors()``; a YAML file
(``DRIFTLOOP_MONITOR_CONFIG`` or ``driftloop monitor --config``) may name
its own, and they are checked against the featurizer's groups when a drift
reference is built (:meth:`MonitorConfig.resolve`)::

    p_val: 0.01            # family-wise: split evenly over the batch detectors
    window: 200            # events per evaluation; omitted -> settings.monitor_window
    alarm_flagged: 2       # DriftDetected: this many flagged windows ...
    alarm_of_last: 3       # ... among the last this many
    detectors:             # omitted -> the blueprint's defaults
      - {name: ks-numeric, kind: ks, features: numeric, correction: fdr}
      - {name: mmd-numeric, kind: mmd, features: numeric, n_permutations: 100, p_val: 0.01}
      - {name: chi2-prediction, kind: chisquare, features: prediction}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from driftloop.settings import Settings

if TYPE_CHECKING:
    from driftloop.blueprints.drift import DriftFeaturizer

DetectorKind = Literal["ks", "cvm", "mmd", "chisquare", "lsdd_online", "mmd_online"]
# a feature group of the blueprint's featurizer; checked when the reference is built
FeatureGroup = str

BATCH_KINDS = {"ks", "cvm", "mmd", "chisquare"}
ONLINE_KINDS = {"lsdd_online", "mmd_online"}


class ConfigError(ValueError):
    """The monitor config is invalid; the message names the field."""


class DetectorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: DetectorKind
    features: FeatureGroup = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    p_val: float | None = Field(default=None, gt=0, lt=1)  # None: share of the family p_val
    correction: Literal["bonferroni", "fdr"] = "bonferroni"
    n_permutations: int = Field(default=100, ge=10)
    max_reference: int | None = Field(default=None, ge=20)  # subsample x_ref (kernel tests)
    ert: float = Field(default=500.0, gt=1)  # online: expected run time without drift
    online_window: int = Field(default=20, ge=2)
    n_bootstraps: int = Field(default=1000, ge=100)

    def check_group(self, groups: Mapping[str, str]) -> None:
        """Raise :class:`ConfigError` unless ``features`` is one of ``groups`` and fits its kind."""
        where = f"monitor config detector {self.name!r}"
        if self.features not in groups:
            raise ConfigError(
                f"{where}: features {self.features!r} is not a feature group of this model; "
                f"its groups: {', '.join(groups)}"
            )
        categorical = groups[self.features] == "categorical"
        if categorical and self.kind != "chisquare":
            raise ConfigError(
                f"{where}: features {self.features!r} are categorical: use kind chisquare"
            )
        if not categorical and self.kind == "chisquare":
            raise ConfigError(
                f"{where}: kind chisquare needs categorical features, not {self.features!r}"
            )

    @property
    def online(self) -> bool:
        return self.kind in ONLINE_KINDS


class MonitorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p_val: float = Field(default=0.01, gt=0, lt=1)  # family-wise false-alarm rate per window
    window: int | None = Field(default=None, ge=10)
    # The monitor calls drift sustained (driftloop_drift_sustained, what DriftDetected
    # fires on) once alarm_flagged of the last alarm_of_last windows were flagged by some
    # detector. A calibrated test flags ~p_val of in-domain windows by design (one in 100
    # at 0.01: a false alarm every few hours of steady traffic, one window's flag held
    # past the rule's "for" under slow traffic); independent in-domain windows reach 2 of
    # 3 about 3 * p_val**2 of the time. A strong shift flags every window (the alarm
    # comes one window later); a weak one, flagged in only some windows, still gathers
    # 2 of 3 where it would rarely flag two in a row. 1 of 1: alarm on any flagged window.
    alarm_flagged: int = Field(default=2, ge=1)
    alarm_of_last: int = Field(default=3, ge=1)
    # None: the blueprint's featurizer suggests them (``resolve``)
    detectors: list[DetectorSpec] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _alarm_fits(self) -> MonitorConfig:
        if self.alarm_flagged > self.alarm_of_last:
            raise ValueError(
                f"alarm_flagged ({self.alarm_flagged}) cannot exceed alarm_of_last "
                f"({self.alarm_of_last})"
            )
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> MonitorConfig:
        names = [d.name for d in self.detectors or []]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"detector names must be unique: {', '.join(duplicates)}")
        return self

    def resolve(self, featurizer: DriftFeaturizer) -> MonitorConfig:
        """This config with concrete detectors for ``featurizer``'s groups, each checked."""
        detectors = self.detectors
        if detectors is None:
            detectors = [
                DetectorSpec(name=d.name, kind=d.kind, features=d.features, correction=d.correction)
                for d in featurizer.default_detectors()
            ]
            if not detectors:
                raise ConfigError("the model's drift featurizer suggests no detectors")
        for spec in detectors:
            spec.check_group(featurizer.groups)
        return self.model_copy(update={"detectors": list(detectors)})

    def detector_p_val(self, spec: DetectorSpec) -> float:
        """Bonferroni across batch detectors keeps the per-window false-alarm rate near p_val."""
        if spec.p_val is not None:
            return spec.p_val
        batch = sum(1 for d in self.detectors or [] if not d.online)
        return self.p_val / max(batch, 1)

    def window_size(self, settings: Settings) -> int:
        return self.window or settings.monitor_window


# the family p_val; detectors are the blueprint's defaults
DEFAULT_CONFIG = MonitorConfig()


def mmd_detector(group: str) -> DetectorSpec:
    """A joint (multivariate) MMD test on a continuous group, with its own p_val.

    Not in any default: with 100 permutations its p-value cannot go below ~1/100,
    so it cannot honour a Bonferroni share of the 0.01 family p_val, and at ~0.5 s
    per window it costs ten times the others together. Add it where that is worth it.
    """
    return DetectorSpec(
        name=f"mmd-{group}", kind="mmd", features=group, max_reference=500, p_val=0.01
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
