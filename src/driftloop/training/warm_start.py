"""Retrain from a registered version: its winner's tuned hyperparameters start the search.

``--warm-start NAME[@ALIAS|/VERSION]`` (a bare name: ``@champion``) reads the
version's training run: the candidate that won (``driftloop.best_candidate``)
and the hyperparameters its search settled on (``tuned.*`` params). The new
search enqueues those as the first trial of that candidate's study
(``training.search.StudySettings.first_params``), so a retraining on fresher
rows begins where the last one ended instead of from the sampler's first
guesses; the candidate's defaults are scored as always, so the warm start can
only add a configuration, never remove one.

The resolved version, its candidate and the params go on the training run as
``driftloop.search.warm_start`` (carried onto the registered version with the
other ``driftloop.search`` tags), which is the new version's lineage to the
one it started from.

A version whose winner was an ensemble, or whose candidate is not one of this
blueprint's, warm-starts nothing; that is said in the tag, not failed on.

Where the version's learner allows it, its fitted model itself is continued on
the new training rows as one more candidate, ``<candidate>+continued``
(``training.continuation``); the tag then says what was continued
(``continued``: the learner, its old rounds or trees, the added ones), or why
nothing was (``not_continued``).
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from driftloop.lineage import TAG_BEST_CANDIDATE, TAG_BLUEPRINT, tag_key
from driftloop.settings import Settings, get_settings

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.blueprints.base import Blueprint
    from driftloop.training.presets import SearchPlan

log = logging.getLogger(__name__)

TAG_WARM_START = tag_key("search.warm_start")
OPTION = "--warm-start"
TUNED_PREFIX = "tuned."  # how train_candidates logs the winner's tuned params


@dataclass(frozen=True)
class WarmStart:
    version: str  # NAME/VERSION it was resolved to
    candidate: str
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # why nothing is warm-started, when nothing is
    model_uri: str = ""  # models:/NAME/VERSION, the fitted model a continuation starts from
    continued: dict[str, Any] = field(default_factory=dict)  # what was continued, if any
    not_continued: str = ""  # why the version's model was not continued

    def first_params(self, pool: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """{candidate: params} to enqueue; empty when the candidate is not in ``pool``."""
        if self.candidate in pool and self.params:
            return {self.candidate: dict(self.params)}
        return {}

    def tag(self) -> str:
        what = {"version": self.version, "candidate": self.candidate, "params": self.params}
        if self.note:
            what["note"] = self.note
        if self.continued:
            what["continued"] = self.continued
        if self.not_continued:
            what["not_continued"] = self.not_continued
        return json.dumps(what, sort_keys=True, default=str)[:5000]


@contextlib.contextmanager
def _quiet_store_setup():
    """MLflow's INFO lines while it creates a fresh store: the command's answer (an error
    included) stays one line."""
    loggers = [logging.getLogger(name) for name in ("mlflow.store.db.utils", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def resolve(reference: str, blueprint_name: str, settings: Settings | None = None) -> WarmStart:
    """The version ``reference`` names, read for a warm start of ``blueprint_name``.

    Errors are one line starting with ``--warm-start:`` (unknown model, version or alias,
    a version trained as another blueprint).
    """
    import mlflow

    from driftloop.blueprints import BlueprintSpec
    from driftloop.registry import ModelRegistry
    from driftloop.training.stability import StabilityError, VersionReference, find_version

    settings = settings or get_settings()
    try:
        wanted = VersionReference.parse(reference)
        with _quiet_store_setup():
            registry = ModelRegistry(settings.resolved_tracking_uri)
            version = find_version(registry, wanted)
    except StabilityError as exc:
        raise ValueError(f"{OPTION}: {str(exc).removeprefix('NAME: ')}") from None
    label = f"{version.name}/{version.version}"
    trained_as = version.tags.get(TAG_BLUEPRINT, "")
    if trained_as and BlueprintSpec.parse(trained_as).name != blueprint_name:
        raise ValueError(
            f"{OPTION}: {label} was trained as blueprint {BlueprintSpec.parse(trained_as).name!r},"
            f" not {blueprint_name!r}"
        )
    model_uri = f"models:/{version.name}/{version.version}"
    if not version.run_id:
        return WarmStart(
            label, "", note="the version has no training run to read", model_uri=model_uri
        )
    run = mlflow.MlflowClient(settings.resolved_tracking_uri).get_run(version.run_id)
    candidate = run.data.tags.get(TAG_BEST_CANDIDATE, "")
    params = {
        key[len(TUNED_PREFIX) :]: value
        for key, value in run.data.params.items()
        if key.startswith(TUNED_PREFIX)
    }
    note = "" if params else "its winner ran with its defaults (nothing tuned to start from)"
    log.info("warm start from %s: %s %s", label, candidate, params)
    return WarmStart(label, candidate, params, note, model_uri=model_uri)


def continue_version(
    blueprint: Blueprint,
    plan: SearchPlan,
    pool: dict[str, Any],
    train: pd.DataFrame,
    settings: Settings | None = None,
) -> SearchPlan:
    """``plan`` with the warm-start version's model continued as one more candidate (added
    to ``pool`` and last in ``plan.candidates``) where the blueprint can continue it on
    ``train``'s rows; otherwise ``plan`` as it is, its warm-start tag saying why not.

    Never raises for the version's sake: a model that does not load, a learner that
    cannot be continued, other columns or classes are a ``not_continued`` note.
    """
    from driftloop.training.continuation import CannotContinue, continued_name
    from driftloop.training.model_logging import load_native

    warm: WarmStart | None = plan.warm_start
    if warm is None or not warm.model_uri:
        return plan
    settings = settings or get_settings()
    name = continued_name(warm.candidate or "model")
    candidate, reason = None, ""
    try:
        with _quiet_store_setup():
            model = load_native(warm.model_uri, settings.resolved_tracking_uri)
    except Exception as exc:  # a version whose artifacts are gone or unreadable here
        reason = f"its model did not load ({type(exc).__name__}: {str(exc)[:300]})"
    else:
        try:
            candidate = blueprint.continuation(model, train, source=warm.version)
        except CannotContinue as exc:
            reason = str(exc)
        except Exception as exc:  # a check the blueprint could not make on these rows
            reason = f"could not check the model against the new rows ({type(exc).__name__}: "
            reason += f"{str(exc)[:300]})"
    if candidate is None:
        log.info("warm start from %s: its model is not continued: %s", warm.version, reason)
        warm = replace(warm, not_continued=reason)
        return replace(plan, warm_start=warm, tags={**plan.tags, TAG_WARM_START: warm.tag()})
    pool[name] = candidate
    warm = replace(warm, continued={"candidate": name, **candidate.record()})
    log.info("warm start from %s: %s continues it (%s)", warm.version, name, warm.continued)
    return replace(
        plan,
        candidates=[*plan.candidates, name],
        continued=(*plan.continued, name),
        warm_start=warm,
        tags={**plan.tags, TAG_WARM_START: warm.tag()},
    )
