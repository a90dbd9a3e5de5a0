"""Search settings: what a training run searches, how long, and how it validates.

One ``SearchSettings`` travels as a single JSON pipeline parameter (``search``)
from ``driftloop train`` through the train component; ``""`` means the
blueprint's default behaviour (every candidate fitted once, ranked on the
validation split, no trials). A preset fills what the user left out:

========  =======  ==========================  ===========  =================
preset    trials   candidates (by cost tier)   validation   extra
========  =======  ==========================  ===========  =================
fast      15       light                       holdout
medium    40       light + boosting            5-fold CV
best      120      every candidate             auto         time budget 600 s,
                                                            ensembles, winner
                                                            refit on train +
                                                            validation
========  =======  ==========================  ===========  =================

Every value here is checked with an error naming the ``driftloop train``
option it came from, so a bad value reads as one line on the command line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from driftloop.blueprints.base import BOOSTING, LIGHT, TIERS, Blueprint

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("hyperband", "none")
VALIDATIONS = ("auto", "holdout", "kfold", "timeseries")


@dataclass(frozen=True)
class Preset:
    name: str
    trials: int
    tiers: tuple[str, ...]
    validation: str
    time_budget_s: float | None = None
    ensembles: bool = False
    description: str = ""
    # a holdout's winner refit on train + validation (folds refit on them anyway)
    refit: bool = False


PRESETS: dict[str, Preset] = {
    "fast": Preset("fast", 15, (LIGHT,), "holdout", description="light candidates, holdout"),
    "medium": Preset(
        "medium", 40, (LIGHT, BOOSTING), "kfold", description="boosting included, 5-fold CV"
    ),
    "best": Preset(
        "best",
        120,
        TIERS,
        "auto",
        time_budget_s=600.0,
        ensembles=True,
        description="every candidate, time-budgeted, ensembles, winner refit on all rows",
        refit=True,
    ),
}


@dataclass(frozen=True)
class SearchSettings:
    """What the user asked for (``None``: the preset's value, else the default)."""

    preset: str | None = None
    sampler: str = "tpe"
    pruner: str = "hyperband"
    trials: int | None = None
    time_budget_s: float | None = None
    candidates: tuple[str, ...] = ()
    validation: str | None = None
    folds: int = 5
    # NAME[@ALIAS|/VERSION]: that version's tuned hyperparameters start the search
    # (training.warm_start); "" for none
    warm_start: str = ""

    def __post_init__(self) -> None:
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(
                f"--preset: unknown preset {self.preset!r}; known: {', '.join(PRESETS)}"
            )
        if self.sampler not in SAMPLERS:
            raise ValueError(
                f"--sampler: must be one of {', '.join(SAMPLERS)}; got {self.sampler!r}"
            )
        if self.pruner not in PRUNERS:
            raise ValueError(f"--pruner: must be one of {', '.join(PRUNERS)}; got {self.pruner!r}")
        if self.validation is not None and self.validation not in VALIDATIONS:
            raise ValueError(
                f"--validation: must be one of {', '.join(VALIDATIONS)}; got {self.validation!r}"
            )
        if self.trials is not None and (not isinstance(self.trials, int) or self.trials < 0):
            raise ValueError(f"--trials: must be a whole number >= 0; got {self.trials!r}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError(
                f"--time-budget: must be a number of seconds > 0; got {self.time_budget_s!r}"
            )
        if not isinstance(self.folds, int) or self.folds < 2:
            raise ValueError(
                f"folds: need at least 2 folds for cross-validation; got {self.folds!r}"
            )

    # --- the JSON pipeline parameter ------------------------------------------------
    @classmethod
    def parse(cls, text: str | dict | None) -> SearchSettings | None:
        """The settings a ``search`` parameter holds; ``None`` for ``""`` (blueprint default)."""
        if text is None or (isinstance(text, str) and not text.strip()):
            return None
        try:
            data = json.loads(text) if isinstance(text, str) else dict(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"search: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError("search: must be a JSON object of search settings")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"search: unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        if "candidates" in data:
            data["candidates"] = tuple(_names(data["candidates"]))
        if data.get("time_budget_s") is not None:
            data["time_budget_s"] = _number("--time-budget", data["time_budget_s"])
        return cls(**data)

    def to_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if v not in (None, (), [], "")}
        data["candidates"] = list(self.candidates) if self.candidates else None
        return json.dumps({k: v for k, v in data.items() if v is not None}, sort_keys=True)

    # --- what a run does ------------------------------------------------------------
    def plan(self, blueprint: Blueprint, pool: dict[str, Any]) -> SearchPlan:
        """The candidates, budget and validation for ``blueprint``, whose candidates are
        ``pool``."""
        preset = PRESETS.get(self.preset or "")
        if self.candidates:
            unknown = [name for name in self.candidates if name not in pool]
            if unknown:
                raise ValueError(
                    f"--candidates: unknown candidate(s) {', '.join(unknown)} for blueprint "
                    f"{blueprint.name!r}; known: {', '.join(pool)}"
                )
            names = list(dict.fromkeys(self.candidates))
        elif preset is not None:
            tiers = blueprint.candidate_tiers()
            names = [name for name in pool if tiers.get(name, LIGHT) in preset.tiers]
            if not names:  # a blueprint whose every candidate is heavier than the preset allows
                names = list(pool)
        else:
            names = list(pool)
        trials = self.trials if self.trials is not None else (preset.trials if preset else 0)
        budget = (
            self.time_budget_s
            if self.time_budget_s is not None
            else (preset.time_budget_s if preset else None)
        )
        validation = self.validation or (preset.validation if preset else "auto")
        first_params: dict[str, dict[str, Any]] = {}
        tags: dict[str, str] = {}
        if self.warm_start:
            from driftloop.training.warm_start import TAG_WARM_START, resolve

            warm = resolve(self.warm_start, blueprint.name)
            first_params = {
                name: params
                for name, params in warm.first_params(pool).items()
                if name in names and blueprint.tuning_space(name)
            }
            tags[TAG_WARM_START] = warm.tag()
            # the version's model itself is continued as one more candidate where its learner
            # allows (training.warm_start.continue_version, in train_candidates: it loads the
            # model, which a plan made to check the options does not need)
            # the warm-started candidate gets a trial even where the preset has none
            trials = max(trials, len(first_params))
        return SearchPlan(
            settings=self,
            candidates=names,
            trials=trials,
            time_budget_s=budget,
            validation=validation,
            folds=self.folds,
            ensembles=bool(preset and preset.ensembles),
            first_params=first_params,
            tags=tags,
            warm_start=warm if self.warm_start else None,
        )


@dataclass(frozen=True)
class SearchPlan:
    settings: SearchSettings
    candidates: list[str]
    trials: int
    time_budget_s: float | None
    validation: str
    folds: int = 5
    ensembles: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # a warm start: {candidate: params} enqueued as that candidate's first trial
    first_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # run tags the plan adds
    # --warm-start: the version read (training.warm_start.WarmStart)
    warm_start: Any = None
    # candidates that continue the warm-start version's fitted model: scored once (after
    # every other candidate's defaults), never searched, so they take no trial share
    continued: tuple[str, ...] = ()

    @property
    def sampler(self) -> str:
        return self.settings.sampler

    @property
    def pruner(self) -> str:
        return self.settings.pruner

    def trials_per_candidate(self) -> dict[str, int]:
        """The trial budget spread over the candidates (earlier-declared ones get the remainder)."""
        searched = [name for name in self.candidates if name not in self.continued]
        count = len(searched)
        if count == 0:
            return {}
        share, rest = divmod(self.trials, count)
        shares = {name: share + (1 if i < rest else 0) for i, name in enumerate(searched)}
        for name in self.first_params:  # a warm start's first trial is always run
            if name in shares:
                shares[name] = max(shares[name], 1)
        return shares

    def with_validation(self, validation: str) -> SearchPlan:
        return replace(self, validation=validation)


def default_plan(pool: dict[str, Any], candidates: list[str] | None = None) -> SearchPlan:
    """Today's behaviour when no search is asked for: every candidate once, on the holdout."""
    return SearchPlan(
        settings=SearchSettings(),
        candidates=list(candidates or pool),
        trials=0,
        time_budget_s=None,
        validation="holdout",
    )


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    names = [str(name).strip() for name in value if str(name).strip()]
    if not names:
        raise ValueError("--candidates: give at least one candidate name (comma-separated)")
    return names


def _number(option: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{option}: not a number: {value!r}") from None
