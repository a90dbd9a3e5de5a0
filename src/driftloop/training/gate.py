"""The gate: challenger versus champion, on the challenger's test split.

Stored scores are only comparable when both versions were scored on the same
test split (same fingerprint). When the splits differ -- retraining on new
data always changes them -- the champion is re-scored on the challenger's
test split before the policy (``driftloop.promotion.decide``) is applied.

Re-scoring is only fair on rows the champion never trained on. Splits are by
row id or by time (``split_scheme``), so with the same seed and fractions the new
test split holds none of the champion's training rows; when the champion's
recorded scheme differs, every test row that scheme puts in train or val is
left out (a superset of the rows it saw: the scheme is recorded, the rows are
not; for a time split, every row before the champion's first test time), and both
versions are scored on what remains. The decision, both scores and
how many rows they rest on are written onto the challenger version.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from driftloop.blueprints.base import Metric
from driftloop.lineage import (
    TAG_CHALLENGER_SCORE,
    TAG_CHAMPION_SCORE,
    TAG_CHAMPION_VERSION,
    TAG_DECISION,
    TAG_DECISION_AT,
    TAG_DECISION_EXCLUDED_ROWS,
    TAG_DECISION_METRIC,
    TAG_DECISION_REASON,
    TAG_DECISION_REQUIRED,
    TAG_DECISION_TEST_ROWS,
    TAG_METRIC_NAME,
    TAG_METRIC_SPLIT,
    TAG_METRIC_VALUE,
    TAG_RESCORED,
    TAG_SPLIT_SCHEME,
    TAG_TEST_FINGERPRINT,
    format_value,
    tag_key,
)
from driftloop.promotion import (
    KEEP,
    MCNEMAR,
    SIGNIFICANCE_TESTS,
    Decision,
    PairedTest,
    decide,
    mcnemar,
    require_significance,
)
from driftloop.settings import Settings, get_settings
from driftloop.training.split_scheme import SplitSchemeError, parse_scheme

if TYPE_CHECKING:
    # the registry (MLflow) and the test-set reader (pandera via driftloop.datasets) are
    # imported by the functions that use them: seconds a caller that only needs the
    # gate's types or its floor check need not pay
    import pandas as pd

    from driftloop.registry import ModelRegistry, VersionInfo

log = logging.getLogger(__name__)

TAG_DECISION_SIGNIFICANCE = tag_key("decision.significance")


class ScoringBlueprint(Protocol):
    """The part of a blueprint the gate needs."""

    primary_metric: str
    greater_is_better: bool
    metric: Metric
    options: dict[str, Any]

    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]: ...


class GateError(RuntimeError):
    """The gate cannot reach a decision (missing data, a score that is not a number)."""


def stored_score(version: VersionInfo, metric: str, test_fingerprint: str) -> float | None:
    """The version's recorded test score, if it was measured on this very split."""
    tags = version.tags
    if tags.get(TAG_METRIC_NAME) != metric or tags.get(TAG_TEST_FINGERPRINT) != test_fingerprint:
        return None
    if tags.get(TAG_METRIC_SPLIT, "test") != "test":
        return None
    try:
        value = float(tags[TAG_METRIC_VALUE])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _correct(
    registry: ModelRegistry, blueprint: ScoringBlueprint, version: VersionInfo, frame: pd.DataFrame
):
    """Per row of ``frame``: did ``version`` predict its class?"""
    import numpy as np

    model = registry.load_sklearn(version.name, version.version)
    predicted = np.asarray(model.predict(blueprint.features(frame))).astype(str)
    return predicted == np.asarray(blueprint.targets(frame)).astype(str)


def paired_test(
    registry: ModelRegistry,
    blueprint: ScoringBlueprint,
    challenger: VersionInfo,
    champion: VersionInfo,
    frame: pd.DataFrame,
    significance: str,
) -> PairedTest:
    """The significance test ``significance`` of challenger vs champion on ``frame``'s rows."""
    if significance != MCNEMAR:
        raise GateError(
            f"significance: unknown test {significance!r} (known: {', '.join(SIGNIFICANCE_TESTS)})"
        )
    if getattr(blueprint, "class_column", None) is None:
        raise GateError(
            "significance: McNemar's test compares per-row correct/wrong answers of "
            "classifiers; this blueprint does not classify"
        )
    return mcnemar(
        _correct(registry, blueprint, challenger, frame),
        _correct(registry, blueprint, champion, frame),
    )


def _score(
    registry: ModelRegistry,
    blueprint: ScoringBlueprint,
    version: VersionInfo,
    frame: pd.DataFrame,
) -> float:
    model = registry.load_sklearn(version.name, version.version)
    metrics = blueprint.score(model, frame)
    try:
        value = float(metrics[blueprint.primary_metric])
    except KeyError:
        raise GateError(
            f"blueprint score() returned no {blueprint.primary_metric!r} (got {sorted(metrics)})"
        ) from None
    if not math.isfinite(value):
        raise GateError(f"{version.name} v{version.version} scored {value!r} on the test split")
    return value


@dataclass(frozen=True)
class UnseenRows:
    """The test rows a champion never trained on, and how sure we are of that."""

    frame: pd.DataFrame
    excluded: int  # rows the champion's split scheme would train (or select) on
    known: bool  # False: the champion recorded no split scheme, nothing could be checked


def rows_unseen_by(champion: VersionInfo, frame: pd.DataFrame) -> UnseenRows:
    """``frame`` without the rows the champion's split scheme puts in train or val.

    The scheme is a function of the id alone (or of the time), so every row the
    champion saw is among them; new rows that merely hash there are left out too.
    """
    recorded = champion.tags.get(TAG_SPLIT_SCHEME)
    if not recorded:
        return UnseenRows(frame, 0, known=False)
    try:
        seen = parse_scheme(recorded).seen_rows(frame, id_column="id")
    except SplitSchemeError as exc:
        raise GateError(f"champion v{champion.version}: {exc}") from None
    unseen = frame.loc[~seen].reset_index(drop=True)
    if unseen.empty:
        raise GateError(
            f"champion v{champion.version} trained on every row of the test split "
            f"({len(frame)} rows, its split: {recorded}); no fair comparison is possible"
        )
    return UnseenRows(unseen, int(seen.sum()), known=True)


def _rescore_note(rows: UnseenRows) -> str:
    if not rows.known:
        return (
            " (champion re-scored on this test split; it recorded no split scheme, "
            "so some of these rows may be ones it trained on)"
        )
    if rows.excluded:
        return (
            f" (champion re-scored on this test split's {len(rows.frame)} rows it never "
            f"trained on; {rows.excluded} rows its split would train on were left out)"
        )
    return " (champion re-scored on this test split, none of which it trained on)"


def gate_floor(blueprint: ScoringBlueprint, settings: Settings) -> float | None:
    """The run's blueprint option ``floor``, else the deployment's setting, else the blueprint's."""
    if "floor" in blueprint.options or settings.promotion_floor is None:
        return blueprint.metric.floor
    return settings.promotion_floor


CHALLENGER_OUTCOME = "challenger"
BELOW_FLOOR = "below-floor"


def admit_challenger(
    model_name: str,
    version: str,
    blueprint: ScoringBlueprint,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The floor check before the gate: ``version`` becomes ``challenger`` iff its test score
    (recorded at registration) reaches the floor (``gate_floor``; no floor: any finite score).

    Returns {"outcome": "challenger" | "below-floor", "score", "floor", "reason"}; a
    version below the floor gets no alias and is not judged against the champion.
    """
    from driftloop.registry import ModelRegistry

    settings = settings or get_settings()
    registry = ModelRegistry(settings.resolved_tracking_uri)
    tags = registry.get_version(model_name, version).tags
    metric = blueprint.primary_metric
    if tags.get(TAG_METRIC_NAME) != metric:
        raise GateError(
            f"{model_name} v{version} records {tags.get(TAG_METRIC_NAME)!r} as its test metric, "
            f"not the gate's {metric!r}"
        )
    try:
        score = float(tags[TAG_METRIC_VALUE])
    except (KeyError, ValueError):
        raise GateError(f"{model_name} v{version} has no numeric test score") from None
    if not math.isfinite(score):
        raise GateError(f"{model_name} v{version} scored {score!r} on its test split")
    floor = gate_floor(blueprint, settings)
    if floor is None:
        passes, reason = True, f"{metric} {score:.4f} (no floor for this metric)"
    else:
        passes = score >= floor if blueprint.greater_is_better else score <= floor
        relation = (">=" if blueprint.greater_is_better else "<=") if passes else "misses"
        reason = f"{metric} {score:.4f} {relation} floor {floor:.4f}"
    if passes:
        registry.mark_challenger(model_name, version)
    log.info("challenger %s v%s: %s", model_name, version, reason)
    outcome = CHALLENGER_OUTCOME if passes else BELOW_FLOOR
    return {"outcome": outcome, "score": score, "floor": floor, "reason": reason}


def gate(
    model_name: str,
    challenger_version: str,
    blueprint: ScoringBlueprint,
    test_path: str | Path,
    test_fingerprint: str,
    settings: Settings | None = None,
    significance: str = "",
    alpha: float = 0.05,
) -> Decision:
    """Decide promote/keep for ``challenger_version`` and record it on the version.

    ``significance`` (``"mcnemar"``; ``""``: none) also requires a challenger that
    clears the margin to be significantly better on the rows both were judged on
    (p < ``alpha``); otherwise the champion stays.

    A kept challenger gets the ``challenger`` alias; promotion itself is a
    separate step (``promote_if`` / ``driftloop.registry.promote_version``) so
    a pipeline can smoke-test before it switches traffic.
    """
    settings = settings or get_settings()
    if significance and significance not in SIGNIFICANCE_TESTS:
        raise GateError(
            f"significance: unknown test {significance!r} (known: {', '.join(SIGNIFICANCE_TESTS)})"
        )
    from driftloop.datasets.files import read_frame
    from driftloop.registry import CHAMPION, ModelRegistry

    registry = ModelRegistry(settings.resolved_tracking_uri)
    challenger = registry.get_version(model_name, challenger_version)
    champion = registry.version_by_alias(model_name, CHAMPION)
    metric = blueprint.primary_metric

    frame: pd.DataFrame | None = None

    def test_frame() -> pd.DataFrame:
        nonlocal frame
        if frame is None:
            if not Path(test_path).is_file():
                raise GateError(f"test split not found: {Path(test_path)}")
            # only ids are strings: a test split's label may be a number
            frame = read_frame(test_path, dtype={"id": str})
            if frame.empty:
                raise GateError(f"test split {test_path} has no rows")
        return frame

    challenger_score = stored_score(challenger, metric, test_fingerprint)
    if champion is not None and champion.version == challenger.version:
        # a re-run of a pipeline that already promoted this version: nothing to decide
        if challenger_score is None:
            challenger_score = _score(registry, blueprint, challenger, test_frame())
        reason = f"version {challenger.version} is already the champion"
        return Decision(
            KEEP, reason, challenger_score, challenger_score, challenger_score, champion.version
        )

    champion_score: float | None = None
    rescored: UnseenRows | None = None
    if champion is not None:
        champion_score = stored_score(champion, metric, test_fingerprint)
        if champion_score is None:
            # different (or unknown) test split: the stored scores are not comparable
            rescored = rows_unseen_by(champion, test_frame())
            champion_score = _score(registry, blueprint, champion, rescored.frame)
            if rescored.excluded:
                # the stored challenger score counted rows the champion is not judged on
                challenger_score = None
    if challenger_score is None:
        frame_scored = rescored.frame if rescored is not None else test_frame()
        challenger_score = _score(registry, blueprint, challenger, frame_scored)

    policy = decide(
        challenger_score,
        champion_score,
        floor=gate_floor(blueprint, settings),
        min_improvement=settings.min_improvement,
        greater_is_better=blueprint.greater_is_better,
    )
    tested: PairedTest | None = None
    if significance and champion is not None and policy.promote:
        judged = rescored.frame if rescored is not None else test_frame()
        tested = paired_test(registry, blueprint, challenger, champion, judged, significance)
        policy = require_significance(policy, tested, alpha)
    decision = Decision(
        outcome=policy.outcome,
        reason=policy.reason + (_rescore_note(rescored) if rescored is not None else ""),
        challenger_score=policy.challenger_score,
        champion_score=policy.champion_score,
        required=policy.required,
        champion_version=champion.version if champion is not None else None,
        rescored=rescored is not None,
    )
    tags = decision_tags(decision, metric)
    if tested is not None:
        tags[TAG_DECISION_SIGNIFICANCE] = tested.describe()
    if rescored is not None:
        tags[TAG_DECISION_TEST_ROWS] = str(len(rescored.frame))
        tags[TAG_DECISION_EXCLUDED_ROWS] = str(rescored.excluded)
    registry.set_tags(model_name, challenger.version, tags)
    if decision.outcome == KEEP:
        registry.mark_challenger(model_name, challenger.version)
    log.info(
        "gate %s v%s: %s -- %s", model_name, challenger.version, decision.outcome, decision.reason
    )
    return decision


def decision_tags(decision: Decision, metric: str) -> dict[str, str]:
    none = "none"
    return {
        TAG_DECISION: decision.outcome,
        TAG_DECISION_REASON: decision.reason,
        TAG_DECISION_METRIC: metric,
        TAG_DECISION_REQUIRED: format_value(decision.required),
        TAG_DECISION_AT: datetime.now(UTC).isoformat(),
        TAG_CHALLENGER_SCORE: format_value(decision.challenger_score),
        TAG_CHAMPION_SCORE: (
            format_value(decision.champion_score) if decision.champion_score is not None else none
        ),
        TAG_CHAMPION_VERSION: decision.champion_version or none,
        TAG_RESCORED: "true" if decision.rescored else "false",
    }


def promote_if(
    decision: Decision,
    model_name: str,
    version: str,
    settings: Settings | None = None,
) -> bool:
    """Promote ``version`` when the decision says so; True iff it is now champion."""
    if not decision.promote:
        return False
    from driftloop.registry import ModelRegistry

    settings = settings or get_settings()
    ModelRegistry(settings.resolved_tracking_uri).promote(model_name, version)
    return True
