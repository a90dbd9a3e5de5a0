"""How stable a registered version's score is: across resampled splits, seeds, one hyperparameter.

For one model version the analysis rebuilds the rows it was trained on (its
``driftloop.blueprint`` and ``driftloop.data.*`` tags, then the same id-hash
split as training, ``driftloop.split.scheme``) and refits the version's own
configuration (an unfitted clone of the registered model, tuned parameters
included) again and again, scoring each fit with the blueprint's primary metric:

* ``splits``: repeated random train/validation splits of the train and
  validation rows (stratified when the blueprint has classes), sized like the
  original validation split; forward-chaining windows when the blueprint's
  rows are ordered in time (``time_column``);
* ``seeds``: the original split, every ``random_state`` in the model set to
  another seed;
* ``sweep``: the original split, one hyperparameter of the version's candidate
  (the first numeric ``ParamRange`` of its tuning space, or one named) set to
  points across its range.

The test split is never touched: it stays the gate's. Results come back as a
:class:`StabilityReport` (table rows, JSON, CSV); :func:`plot` draws them and
:func:`log_to_run` stores all three under ``stability/`` on the version's run.
"""

from __future__ import annotations

import io
import math
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftloop.blueprints import ParamChoice, ParamRange

if TYPE_CHECKING:
    from driftloop.blueprints import Blueprint
    from driftloop.registry import ModelRegistry, VersionInfo

ARTIFACT_DIR = "stability"
DEFAULT_ALIAS = "champion"
SPLITS = "splits"
SEEDS = "seeds"
SWEEP = "sweep"


class StabilityError(ValueError):
    """Something the user named cannot be analysed; the message starts with what was named."""


# --- which version -------------------------------------------------------------------
@dataclass(frozen=True)
class VersionReference:
    """``NAME``, ``NAME@ALIAS`` or ``NAME/VERSION`` (a bare name means ``@champion``)."""

    name: str
    alias: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> VersionReference:
        text = text.strip()
        if "@" in text:
            name, _, alias = text.partition("@")
            if not name or not alias:
                raise StabilityError(f"NAME: {text!r} is not NAME@ALIAS")
            return cls(name, alias=alias)
        if "/" in text:
            name, _, version = text.rpartition("/")
            if not name or not version.isdigit():
                raise StabilityError(f"NAME: {text!r} is not NAME/VERSION (a version number)")
            return cls(name, version=version)
        if not text:
            raise StabilityError("NAME: give a registered model name")
        return cls(text, alias=DEFAULT_ALIAS)

    def __str__(self) -> str:
        return f"{self.name}@{self.alias}" if self.alias else f"{self.name}/{self.version}"


def find_version(registry: ModelRegistry, reference: VersionReference) -> VersionInfo:
    from driftloop.registry import ALIASES, RegistryError

    try:
        if reference.version is not None:
            return registry.get_version(reference.name, reference.version)
        if reference.alias not in ALIASES:
            raise StabilityError(
                f"NAME: unknown alias {reference.alias!r} (aliases: {', '.join(ALIASES)})"
            )
        found = registry.version_by_alias(reference.name, reference.alias)
    except RegistryError as exc:
        raise StabilityError(f"NAME: {exc}") from None
    if found is None:
        held = registry.aliases(reference.name)
        listing = ", ".join(f"@{a} = {v}" for a, v in sorted(held.items())) or "none"
        raise StabilityError(
            f"NAME: model {reference.name!r} has no version with alias {reference.alias!r} "
            f"(aliases: {listing})"
        )
    return found


# --- what the version trained on -------------------------------------------------------
@dataclass
class TrainingRows:
    blueprint: Blueprint
    train: pd.DataFrame
    val: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def training_rows(version: VersionInfo) -> TrainingRows:
    """The version's train and validation rows, rebuilt from its tags as training built them."""
    from driftloop.blueprints import get_blueprint
    from driftloop.lineage import (
        TAG_BLUEPRINT,
        TAG_DATA_SOURCE,
        TAG_DATASET,
        TAG_LABEL_MAPPING,
        TAG_SPLIT_SCHEME,
        split_fingerprint_tag,
    )
    from driftloop.training.split_scheme import parse_scheme
    from driftloop.training.splits import split_with_scheme

    what = f"model {version.name!r} version {version.version}"
    spec = version.tags.get(TAG_BLUEPRINT)
    if not spec:
        raise StabilityError(f"NAME: {what} has no {TAG_BLUEPRINT} tag: which blueprint is it?")
    dataset = version.tags.get(TAG_DATASET) or None
    source = version.tags.get(TAG_DATA_SOURCE) or None
    if dataset is None and source is None:
        raise StabilityError(
            f"NAME: {what} has no {TAG_DATASET} or {TAG_DATA_SOURCE} tag: "
            "the rows it trained on cannot be rebuilt"
        )
    notes: list[str] = []
    try:
        blueprint = get_blueprint(spec)
        try:
            blueprint.primary_metric  # noqa: B018 - options that depend on the data resolved?
        except ValueError:
            blueprint, dataset, _ = blueprint.prepare(None if source else dataset, source)
        frame = blueprint.load(dataset, source, version.tags.get(TAG_LABEL_MAPPING) or None)
        scheme_text = version.tags.get(TAG_SPLIT_SCHEME)
        scheme = parse_scheme(scheme_text) if scheme_text else blueprint.split_scheme(42)
        if not scheme_text:
            notes.append(f"no {TAG_SPLIT_SCHEME} tag: split as {scheme}")
        splits = split_with_scheme(
            frame, scheme, label_column=blueprint.class_column, id_column=blueprint.id_column
        )
    except (ValueError, OSError) as exc:  # DatasetError, a moved file, a bad spec
        where = source or dataset
        raise StabilityError(
            f"NAME: cannot rebuild the rows of {what} from {where}: {exc}"
        ) from None
    recorded = version.tags.get(split_fingerprint_tag("train"))
    if recorded and recorded != splits.fingerprints["train"]:
        notes.append(
            "the rebuilt train split differs from the one the version trained on "
            "(rows merged from feedback, or the source changed)"
        )
    return TrainingRows(blueprint, splits.train, splits.val, notes)


# --- the report --------------------------------------------------------------------
@dataclass
class StabilityReport:
    model: str
    version: str
    run_id: str | None
    blueprint: str
    candidate: str | None
    metric: str
    greater_is_better: bool
    split_scores: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    seed_scores: list[float] = field(default_factory=list)
    param: str | None = None
    param_log: bool = False
    param_current: Any = None
    param_values: list[Any] = field(default_factory=list)
    param_scores: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def scores(self) -> dict[str, list[float]]:
        analyses = {SPLITS: self.split_scores, SEEDS: self.seed_scores, SWEEP: self.param_scores}
        return {name: values for name, values in analyses.items() if values}

    def summary(self) -> list[dict[str, Any]]:
        """One row per analysis: how many fits, mean, std, min and max of the metric."""
        rows = []
        for name, values in self.scores().items():
            array = np.asarray(values, dtype=float)
            rows.append(
                {
                    "analysis": name,
                    "runs": int(array.size),
                    "mean": float(array.mean()),
                    "std": float(array.std(ddof=1)) if array.size > 1 else 0.0,
                    "min": float(array.min()),
                    "max": float(array.max()),
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["param_values"] = [_plain(v) for v in self.param_values]
        data["param_current"] = _plain(self.param_current)
        data["summary"] = self.summary()
        return data

    def to_csv(self) -> str:
        """Every fit: analysis, run, the value varied (seed or parameter value), score."""
        rows = [(SPLITS, i, i, s) for i, s in enumerate(self.split_scores)]
        rows += [
            (SEEDS, i, seed, s)
            for i, (seed, s) in enumerate(zip(self.seeds, self.seed_scores, strict=True))
        ]
        rows += [
            (SWEEP, i, _plain(v), s)
            for i, (v, s) in enumerate(zip(self.param_values, self.param_scores, strict=True))
        ]
        frame = pd.DataFrame(rows, columns=["analysis", "run", "value", self.metric])
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        return buffer.getvalue()


def _plain(value: Any) -> Any:
    """A JSON-safe parameter value."""
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# --- the sweep ---------------------------------------------------------------------
def sweep_values(space: ParamRange | ParamChoice, points: int, current: Any = None) -> list[Any]:
    """``points`` values across a range (geometric when it is log-scaled), or every choice.

    ``current`` (the version's own value) joins a numeric range it lies in, so
    the sweep shows where the version sits on its curve.
    """
    if isinstance(space, ParamChoice):
        return list(space.choices)
    if space.log:
        values = [float(v) for v in np.geomspace(space.low, space.high, points)]
    else:
        values = [float(v) for v in np.linspace(space.low, space.high, points)]
    own = isinstance(current, (int, float)) and not isinstance(current, bool)
    if own and space.low <= current <= space.high:
        if not any(math.isclose(current, v, rel_tol=1e-9) for v in values):
            values.append(float(current))
    if space.integer:
        return sorted({int(round(v)) for v in values})
    return sorted(values)


def choose_param(
    space: dict[str, ParamRange | ParamChoice], wanted: str | None, candidate: str | None
) -> tuple[str, ParamRange | ParamChoice] | None:
    """The hyperparameter to sweep: ``wanted`` (full name or its last ``__`` part), else the
    first numeric range; None when there is nothing to sweep and nothing was asked for."""
    if wanted is None:
        for key, entry in space.items():
            if isinstance(entry, ParamRange):
                return key, entry
        return None
    if wanted in space:
        return wanted, space[wanted]
    matches = [key for key in space if key.rsplit("__", 1)[-1] == wanted]
    if len(matches) == 1:
        return matches[0], space[matches[0]]
    known = ", ".join(space) or "none"
    what = f"candidate {candidate!r}" if candidate else "this version"
    if len(matches) > 1:
        raise StabilityError(f"--param: {wanted!r} is ambiguous in {what}; use one of {known}")
    raise StabilityError(f"--param: {wanted!r} is not tunable in {what} (tunable: {known})")


# --- refitting -----------------------------------------------------------------------
def _random_state_keys(estimator: Any) -> list[str]:
    return [
        key
        for key in estimator.get_params(deep=True)
        if key == "random_state" or key.endswith("__random_state")
    ]


def _fit_score(blueprint: Blueprint, estimator: Any, train: pd.DataFrame, val: pd.DataFrame):
    estimator.fit(blueprint.features(train), blueprint.targets(train))
    score = float(blueprint.score(estimator, val)[blueprint.primary_metric])
    if not math.isfinite(score):
        raise StabilityError(f"a refit scored {blueprint.primary_metric}={score}")
    return score


def _in_time_order(blueprint: Blueprint, pool: pd.DataFrame) -> pd.DataFrame:
    column = blueprint.time_column
    if column not in pool.columns:  # the rows carry their time order already
        return pool.reset_index(drop=True)
    order = pd.to_datetime(pool[column], errors="coerce", format="mixed")
    return pool.iloc[order.argsort(kind="stable")].reset_index(drop=True)


def resampled_splits(
    blueprint: Blueprint, pool: pd.DataFrame, val_rows: int, count: int, seed: int
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """``count`` random train/validation splits of ``pool``, stratified where there are classes.

    Rows ordered in time (the blueprint names a ``time_column``) are never
    shuffled: the splits are forward-chaining windows instead, each scored on
    the ``val_rows`` (or fewer) rows that follow its training rows.
    """
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit, TimeSeriesSplit

    if blueprint.time_column:
        pool = _in_time_order(blueprint, pool)
        window = max(1, min(val_rows, len(pool) // (count + 1)))
        indices = TimeSeriesSplit(n_splits=count, test_size=window).split(pool)
        return [(pool.iloc[tr], pool.iloc[te]) for tr, te in indices]
    arguments = {"n_splits": count, "test_size": val_rows, "random_state": seed}
    splitter: Any = ShuffleSplit(**arguments)
    labels = None
    if blueprint.class_column is not None:
        labels = blueprint.targets(pool)
        if pd.Series(labels).value_counts().min() >= 2:
            splitter = StratifiedShuffleSplit(**arguments)
    indices = splitter.split(np.zeros(len(pool)), labels)
    return [(pool.iloc[tr], pool.iloc[te]) for tr, te in indices]


def analyse(
    blueprint: Blueprint,
    template: Any,
    train: pd.DataFrame,
    val: pd.DataFrame,
    *,
    report: StabilityReport,
    splits: int = 5,
    seeds: int = 5,
    base_seed: int = 42,
    sweep: tuple[str, ParamRange | ParamChoice] | None = None,
    points: int = 5,
    progress: Callable[[str], None] | None = None,
) -> StabilityReport:
    """Refit ``template`` (an unfitted estimator) for each analysis; fill ``report``'s scores.

    ``progress`` is called after every fit with a short description of it.
    """
    from sklearn.base import clone

    advance = progress or (lambda _: None)
    pool = pd.concat([train, val], ignore_index=True)
    for index, (part, held_out) in enumerate(
        resampled_splits(blueprint, pool, len(val), splits, base_seed)
    ):
        report.split_scores.append(_fit_score(blueprint, clone(template), part, held_out))
        advance(f"resampled split {index + 1}/{splits}")

    seed_keys = _random_state_keys(template)
    if seeds and not seed_keys:
        report.notes.append("the model has no random_state: every seed fits the same model")
    for index in range(seeds):
        seed = base_seed + index
        model = clone(template).set_params(**{key: seed for key in seed_keys})
        report.seeds.append(seed)
        report.seed_scores.append(_fit_score(blueprint, model, train, val))
        advance(f"seed {seed}")
    if seed_keys and len(set(report.seed_scores)) == 1 and seeds > 1:
        report.notes.append("every seed scored the same: the fit does not depend on the seed")

    if sweep is not None:
        key, space = sweep
        report.param = key
        report.param_log = isinstance(space, ParamRange) and space.log
        report.param_current = template.get_params(deep=True).get(key)
        for value in sweep_values(space, points, report.param_current):
            model = clone(template).set_params(**{key: value})
            report.param_values.append(value)
            report.param_scores.append(_fit_score(blueprint, model, train, val))
            advance(f"{key}={_plain(value)}")
    return report


def planned_fits(splits: int, seeds: int, sweep, points: int, current: Any = None) -> int:
    if sweep is None:
        return splits + seeds
    return splits + seeds + len(sweep_values(sweep[1], points, current))


# --- the picture ---------------------------------------------------------------------
def plot(report: StabilityReport, path: str | Path) -> Path:
    """Boxplots of the split and seed scores; the sweep as a line. A PNG at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    panels = 2 if report.param_scores else 1
    figure = Figure(figsize=(5.5 * panels, 4.2), layout="constrained")
    FigureCanvasAgg(figure)  # no pyplot: no global backend, nothing left open
    axes = figure.subplots(1, panels, squeeze=False)[0]
    boxes = axes[0]
    groups = [(f"resampled splits\n(n={len(report.split_scores)})", report.split_scores)]
    groups.append((f"seeds\n(n={len(report.seed_scores)})", report.seed_scores))
    groups = [(label, values) for label, values in groups if values]
    boxes.boxplot([values for _, values in groups], tick_labels=[label for label, _ in groups])
    jitter = np.random.default_rng(0)
    for position, (_, values) in enumerate(groups, start=1):
        boxes.scatter(
            position + jitter.uniform(-0.08, 0.08, len(values)), values, s=14, alpha=0.7, zorder=3
        )
    boxes.set_ylabel(report.metric)
    boxes.set_title("score spread")
    boxes.grid(axis="y", alpha=0.3)
    if report.param_scores:
        line = axes[1]
        numeric = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in report.param_values
        )
        xs = report.param_values if numeric else [str(v) for v in report.param_values]
        line.plot(xs, report.param_scores, marker="o")
        if numeric and report.param_log:
            line.set_xscale("log")
        if numeric and isinstance(report.param_current, (int, float)):
            line.axvline(report.param_current, color="grey", linestyle="--", label="this version")
            line.legend()
        line.set_xlabel(report.param or "")
        line.set_ylabel(report.metric)
        line.set_title(f"sensitivity to {report.param}")
        line.grid(alpha=0.3)
    direction = "higher" if report.greater_is_better else "lower"
    figure.suptitle(
        f"{report.model} v{report.version} ({report.candidate or 'model'}): "
        f"{report.metric}, {direction} is better"
    )
    figure.savefig(path, dpi=110)
    return path


# --- on the version's run ------------------------------------------------------------
def log_to_run(report: StabilityReport, png: Path, tracking_uri: str) -> list[str]:
    """Store the JSON, the CSV and the PNG under ``stability/`` on the version's run."""
    from mlflow import MlflowClient

    if report.run_id is None:
        return []
    client = MlflowClient(tracking_uri=tracking_uri)
    client.log_dict(report.run_id, report.to_dict(), f"{ARTIFACT_DIR}/stability.json")
    client.log_text(report.run_id, report.to_csv(), f"{ARTIFACT_DIR}/stability.csv")
    with tempfile.TemporaryDirectory() as folder:
        # one name on the run whatever --out was
        copy = Path(folder) / "stability.png"
        copy.write_bytes(Path(png).read_bytes())
        client.log_artifact(report.run_id, str(copy), ARTIFACT_DIR)
    return [
        f"{ARTIFACT_DIR}/{name}" for name in ("stability.json", "stability.csv", "stability.png")
    ]


def run_tags(run_id: str | None, tracking_uri: str) -> dict[str, str]:
    """The training run's tags (its best candidate and seed); empty without a run."""
    if run_id is None:
        return {}
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return dict(MlflowClient(tracking_uri=tracking_uri).get_run(run_id).data.tags)
    except MlflowException:
        return {}
