"""The data steps of the pipelines for any blueprint: ingest, validate, split.

Each takes the blueprint instance (``BlueprintSpec`` text, as the pipelines
pass it) and file paths, and returns a JSON-ready summary.
"""

from __future__ import annotations

import logging
from pathlib import Path

from driftloop.blueprints import Blueprint, get_blueprint
from driftloop.blueprints.base import FEEDBACK_SOURCE
from driftloop.datasets.files import read_frame, write_frame
from driftloop.datasets.fingerprint import frame_fingerprint
from driftloop.training.splits import split_file

logger = logging.getLogger(__name__)


def ingest(
    path: str | Path,
    blueprint: Blueprint | str,
    dataset: str | None = None,
    source: str | None = None,
    label_mapping: str | None = None,
) -> dict:
    """Load the blueprint's rows (a named dataset or a file/URL) and write them as parquet."""
    blueprint = get_blueprint(blueprint)
    frame = blueprint.load(dataset or None, source or None, label_mapping or None)
    write_frame(frame, path)
    summary = {
        "blueprint": blueprint.spec.to_text(),
        "dataset": dataset or blueprint.default_dataset,
        "source": source or None,
        "path": str(path),
        "rows": int(len(frame)),
        "columns": list(map(str, frame.columns)),
        "fingerprint": frame_fingerprint(frame),
        "source_stats": dict(frame.attrs.get("source_stats", {})),
    }
    if blueprint.class_column is not None:
        counts = frame[blueprint.class_column].astype(str).value_counts().sort_index()
        summary["labels"] = {str(k): int(v) for k, v in counts.items()}
    return summary


def validate(path: str | Path, blueprint: Blueprint | str) -> dict:
    """The blueprint's checks on a file; raises ``DatasetValidationError`` naming the problem."""
    blueprint = get_blueprint(blueprint)
    frame = read_frame(path)
    return {"path": str(path), "valid": True} | blueprint.validate(frame, f"dataset file {path}")


def split(
    path: str | Path,
    out: str | Path | dict[str, str],
    blueprint: Blueprint | str,
    *,
    seed: int = 42,
) -> dict:
    """Split into train/val/test by the blueprint's ``split_scheme`` (id hash, or time for
    rows ordered in time), every class in every split where there are classes.

    Validation and test together must hold the rows the drift reference needs
    (it is fitted on both): a table too small for it fails here, not after training.
    """
    from driftloop.monitor.reference import MIN_ROWS

    blueprint = get_blueprint(blueprint)
    return split_file(
        path,
        out,
        scheme=blueprint.split_scheme(seed),
        label_column=blueprint.class_column,
        id_column=blueprint.id_column,
        min_held_out=MIN_ROWS,
    )


def merge_feedback(
    path: str | Path,
    out: str | Path,
    blueprint: Blueprint | str,
    model_name: str,
    store_url: str,
) -> dict:
    """The rows at ``path`` plus training rows made from the model's labelled feedback.

    Rows are deduplicated on ``id`` with the feedback winning: a user's ground
    truth is newer evidence than the row it corrects. A request with several
    instances gives one row each, ids ``<request id>:<i>``, unless the blueprint
    gave the row its natural key (a forecast's date) in ``id_column``: then an
    observation of a row already in the data replaces it instead of repeating it.
    Only the columns the blueprint builds from feedback are kept, so a half-empty
    optional column (a timestamp, say) cannot fail validation downstream.
    """
    import pandas as pd

    from driftloop.store import PredictionStore

    blueprint = get_blueprint(blueprint)
    ids, inputs, truths = [], [], []
    store = PredictionStore(store_url)
    try:
        pairs = store.feedback_pairs(model_name)
    finally:
        store.close()
    for pair in pairs:
        if pair.value is None:  # "wrong" without the right answer teaches nothing
            continue
        # a list as long as the request is one truth per instance (as the monitor reads it)
        per_instance = isinstance(pair.value, list) and len(pair.value) == len(pair.inputs)
        for index, instance in enumerate(pair.inputs):
            truth = pair.value[index] if per_instance else pair.value
            if truth is None:  # an instance whose truth is not observed yet
                continue
            ids.append(pair.request_id if len(pair.inputs) == 1 else f"{pair.request_id}:{index}")
            inputs.append(instance)
            truths.append(truth)
    feedback = blueprint.rows_from_feedback(inputs, truths)
    if FEEDBACK_SOURCE in feedback:  # several rows from one truth: <truth id>/<n>
        source = feedback.pop(FEEDBACK_SOURCE).astype(int)
        nth = source.groupby(source).cumcount()
        ids = [f"{ids[s]}/{n}" for s, n in zip(source, nth, strict=True)]
    if blueprint.id_column in feedback:  # the blueprint's own keys, where it has one
        own = feedback.pop(blueprint.id_column)
        ids = [i if _is_missing(key) or key == "" else key for i, key in zip(ids, own, strict=True)]
    feedback.insert(0, blueprint.id_column, ids)
    base = read_frame(path)
    columns = [blueprint.id_column, *(c for c in feedback.columns if c != blueprint.id_column)]
    missing = [c for c in columns if c not in base.columns]
    if missing:
        raise ValueError(f"the training rows lack column(s) {', '.join(missing)} that feedback has")
    combined = _one_type_per_column(
        pd.concat([base[columns], feedback[columns]], ignore_index=True)
    )
    merged = combined.drop_duplicates(subset=blueprint.id_column, keep="last")
    merged = merged.reset_index(drop=True)
    # the base rows as typed in ``combined``, so an id made text there still matches
    replaced = _rows_changed(
        combined.iloc[: len(base)], combined.iloc[len(base) :], blueprint.id_column
    )
    if replaced:
        # same id, other values: the feedback (an observed close, a corrected label) is
        # newer evidence than the row it corrects, so it wins; an equal copy is just dropped
        shown = ", ".join(map(str, replaced[:5])) + (" ..." if len(replaced) > 5 else "")
        logger.warning("feedback replaced %d training row(s) with other values (ids %s)",
                       len(replaced), shown)  # fmt: skip
    write_frame(merged, out)
    return {
        "rows": len(merged),
        "feedback_rows": len(feedback),
        "duplicates_dropped": len(combined) - len(merged),
        "rows_replaced": len(replaced),
        "fingerprint": frame_fingerprint(merged),
    }


def _rows_changed(base, feedback, id_column: str) -> list:
    """Ids of ``base`` rows that a ``feedback`` row (the last of its id) gives other values."""
    newest = feedback.drop_duplicates(subset=id_column, keep="last").set_index(id_column)
    before = base[base[id_column].isin(set(newest.index))]
    before = before.drop_duplicates(subset=id_column, keep="last").set_index(id_column)
    after = newest.loc[before.index, before.columns]
    return [
        key for key, old, new in zip(before.index, before.itertuples(index=False),
                                     after.itertuples(index=False), strict=True)
        if any(not _same(a, b) for a, b in zip(old, new, strict=True))
    ]  # fmt: skip


def _same(a, b) -> bool:
    if _is_missing(a) and _is_missing(b):
        return True
    try:
        return bool(a == b) or str(a) == str(b)
    except (TypeError, ValueError):  # arrays, lists
        return str(a) == str(b)


def _one_type_per_column(frame):
    """``frame`` with every column of mixed value types as text (missing kept).

    Feedback carries a row's values as the wire had them -- a date as ISO text,
    say -- where the training rows may hold a typed column; Parquet takes one
    type per column, and the blueprint's own reading parses the text again.
    """
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in (
            "mixed",
            "mixed-integer",
        ):
            out[column] = values.map(lambda v: v if _is_missing(v) else str(v))
    return out


def _is_missing(value) -> bool:
    import pandas as pd

    return value is None or (not isinstance(value, list | tuple | dict) and bool(pd.isna(value)))
