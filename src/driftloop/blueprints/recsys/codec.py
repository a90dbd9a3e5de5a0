"""Recommendation requests on the wire and clicked items as feedback.

v1: ``{"instances": [{"user_id": "42", "k": 10, "recent_items": ["318", "296"],
"category": ["Comedy", "Drama"]}]}`` (``k``, ``recent_items`` and ``category`` -- one
name or a list -- optional); v2: ``user_id`` BYTES [n], optional ``recent_items`` BYTES
[n, m] (or [m] for one user; "" pads shorter lists), ``k`` INT32 [n] or [1] and
``category`` BYTES [m] (every user of the request) or [n, m] (per user, "" pads).
Answers: ``item_ids`` BYTES [n, k], ``scores`` FP32 [n, k] ("" and 0 pad a list shorter
than the widest ``k``), ``segment`` BYTES [n]. Unknown users are served as anonymous;
seen and recent items are never recommended; with categories, only items of at least one
of them (fewer than k, or none, when fewer match); an unknown category is an input error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from driftloop.blueprints.codec import (
    Answer,
    Batch,
    Codec,
    InputError,
    InputTensor,
    Limits,
    TensorSpec,
)
from driftloop.blueprints.feedback import Feedback, FeedbackError
from driftloop.blueprints.recsys.metrics import ndcg_at_k
from driftloop.blueprints.recsys.segments import SEGMENTS

INTEGER_DATATYPES = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
MAX_RECENT = 1000
MAX_CATEGORIES = 100
# category names listed in the error for an unknown one (a news catalogue has hundreds)
NAMED_IN_ERRORS = 20


def padded_lists(answers: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """``recommend``'s (items, scores, segment) per user as two [n, widest k] tensors: item ids
    (BYTES, "" past a shorter list's end) and scores (FP32, 0 there)."""
    width = max((len(items) for items, _, _ in answers), default=0)
    ids = np.full((len(answers), width), "", dtype=object)
    scores = np.zeros((len(answers), width), dtype=np.float32)
    for row, (items, values, _) in enumerate(answers):
        ids[row, : len(items)] = items
        scores[row, : len(values)] = values
    return ids, scores


def as_requests(frame: Any, default_k: int = 10, model: Any = None) -> Any:
    """Requests from a frame: itself when it holds ``user_id``; from interaction rows (the
    drift reference's held-out rows), the given-N views the offline metrics ask
    (``metrics.evaluation_views``: a new user with nothing known, then after their first
    items as a session; a known user with their history), so the reference sees the mix of
    segments and sessions that live traffic brings. Without ``model`` (no histories to
    know users by): one request per user, in order of first appearance."""
    import pandas as pd

    if "user_id" in frame:
        return frame
    if model is not None:
        from driftloop.blueprints.recsys.metrics import evaluation_views

        views = evaluation_views(model.history_of, frame, int(model.warm_min), model.item_index_)
        if views:
            return pd.DataFrame(
                {
                    "user_id": [v.user for v in views],
                    "recent_items": [list(v.session) for v in views],
                    "k": default_k,
                }
            )
    users = pd.unique(frame["user"].astype(str))
    return pd.DataFrame({"user_id": users, "recent_items": [[] for _ in users], "k": default_k})


def _text(value: Any, field: str) -> str:
    if isinstance(value, bytes | bytearray | np.bytes_):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{field} is not valid UTF-8: {exc.reason}") from exc
    if isinstance(value, bool) or not isinstance(value, str | int | np.integer):
        raise InputError(f"{field} must be a string id, got {type(value).__name__}")
    return str(value)


class RecsysCodec(Codec):
    def __init__(self, model: Any, limits: Limits, default_k: int = 10, max_k: int = 100):
        super().__init__(model, limits)
        self.default_k, self.max_k = int(default_k), int(max_k)
        self.inputs = (
            TensorSpec("user_id", "BYTES", (-1,)),
            TensorSpec("recent_items", "BYTES", (-1, -1)),
            TensorSpec("k", "INT32", (-1,)),
            # ``category`` (BYTES [m] or [n, m]) is taken but not declared: a generic OIP
            # client (driftloop's own, the smoke serve) sends every declared input, and the
            # metadata has no way to call one optional
        )
        self.outputs = (
            TensorSpec("item_ids", "BYTES", (-1, -1)),
            TensorSpec("scores", "FP32", (-1, -1)),
            TensorSpec("segment", "BYTES", (-1,)),
        )

    def _k(self, value: Any, field: str) -> int:
        if value is None:
            return self.default_k
        value = value.item() if isinstance(value, np.generic) else value
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= self.max_k:
            raise InputError(f"{field} must be an integer from 1 to {self.max_k}, got {value!r}")
        return value

    def _recent(self, values: Any, field: str) -> list[str]:
        if values is None:
            return []
        if not isinstance(values, list | tuple | np.ndarray):
            raise InputError(f"{field} must be a list of item ids")
        items = [_text(v, f"{field}[{i}]") for i, v in enumerate(values)]
        if len(items) > MAX_RECENT:
            raise InputError(f"{field} has {len(items)} items; at most {MAX_RECENT}")
        return [i for i in items if i]

    def _categories(self, values: Any, field: str) -> list[str] | None:
        """Category names to filter by (None: no filter), each known to the model."""
        if values is None:
            return None
        if isinstance(values, str | bytes | np.bytes_):
            values = [values]
        if not isinstance(values, list | tuple | np.ndarray):
            raise InputError(f'{field} must be a category name or a list of them, e.g. ["Comedy"]')
        names = [_text(v, f"{field}[{i}]") for i, v in enumerate(values)]
        names = list(dict.fromkeys(n for n in names if n))
        if len(names) > MAX_CATEGORIES:
            raise InputError(f"{field} has {len(names)} categories; at most {MAX_CATEGORIES}")
        if not names:
            return None
        known = list(getattr(self.model, "categories_", ()))
        if not known:
            raise InputError(f"{field}: this model version has no item categories to filter by")
        unknown = self.model.unknown_categories(names)
        if unknown:
            shown = ", ".join(known[:NAMED_IN_ERRORS]) + (
                ", ..." if len(known) > NAMED_IN_ERRORS else ""
            )
            raise InputError(
                f"{field}: unknown category {', '.join(map(repr, unknown))}; known: {shown}"
            )
        return names

    def _batch(self, rows: list[dict]) -> Batch:
        import pandas as pd

        return Batch(model_input=pd.DataFrame(rows), summaries=rows)

    def decode_v1(self, instances: list[Any]) -> Batch:
        self.check_count(len(instances), "instances")
        rows = []
        for index, item in enumerate(instances):
            field = f"instances[{index}]"
            if not isinstance(item, dict):
                raise InputError(f'{field} must be an object like {{"user_id": "42", "k": 10}}')
            row = {
                "user_id": _text(item.get("user_id", ""), f"{field}.user_id"),
                "recent_items": self._recent(item.get("recent_items"), f"{field}.recent_items"),
                "k": self._k(item.get("k"), f"{field}.k"),
            }
            categories = self._categories(item.get("category"), f"{field}.category")
            if categories:
                row["category"] = categories
            rows.append(row)
        return self._batch(rows)

    def decode_v2(self, tensors: Mapping[str, InputTensor]) -> Batch:
        if "user_id" not in tensors:
            raise InputError('inputs: missing "user_id" (BYTES [n])')
        users = tensors["user_id"]
        if users.datatype != "BYTES":
            raise InputError('inputs[user_id].datatype must be "BYTES"')
        ids = users.array.reshape(-1)
        n = len(ids)
        self.check_count(n, "inputs[user_id]", "user id")
        ks = [self.default_k] * n
        if "k" in tensors:
            tensor = tensors["k"]
            if tensor.datatype not in INTEGER_DATATYPES:
                raise InputError('inputs[k].datatype must be an integer type ("INT32")')
            values = tensor.array.reshape(-1).tolist()
            if len(values) not in (1, n):
                raise InputError(
                    f"inputs[k] has {len(values)} values; send 1 or one per user ({n})"
                )
            ks = [self._k(v, "inputs[k]") for v in (values * n if len(values) == 1 else values)]
        recent: list[list[str]] = [[] for _ in range(n)]
        if "recent_items" in tensors:
            tensor = tensors["recent_items"]
            if tensor.datatype != "BYTES":
                raise InputError('inputs[recent_items].datatype must be "BYTES"')
            matrix = tensor.array
            if matrix.ndim == 1 and n == 1:
                matrix = matrix.reshape(1, -1)
            if matrix.ndim != 2 or matrix.shape[0] != n:
                raise InputError(
                    f"inputs[recent_items].shape must be [n, m] with one row per user ({n}), "
                    f"got {list(tensor.array.shape)}"
                )
            recent = [self._recent(list(row), f"inputs[recent_items][{i}]") for i, row in
                      enumerate(matrix)]  # fmt: skip
        rows = [
            {"user_id": _text(u, f"inputs[user_id][{i}]"), "recent_items": r, "k": k}
            for i, (u, r, k) in enumerate(zip(ids.tolist(), recent, ks, strict=True))
        ]
        if "category" in tensors:
            for row, categories in zip(
                rows, self._v2_categories(tensors["category"], n), strict=True
            ):
                if categories:
                    row["category"] = categories
        return self._batch(rows)

    def _v2_categories(self, tensor: InputTensor, n: int) -> list[list[str] | None]:
        """[m]: the same categories for every user; [n, m]: one row per user ("" pads)."""
        if tensor.datatype != "BYTES":
            raise InputError('inputs[category].datatype must be "BYTES"')
        matrix = tensor.array
        if matrix.ndim == 1:
            return [self._categories(list(matrix), "inputs[category]")] * n
        if matrix.ndim != 2 or matrix.shape[0] != n:
            raise InputError(
                f"inputs[category].shape must be [m] (every user) or [n, m] (one row per user, "
                f"{n}), got {list(matrix.shape)}"
            )
        return [self._categories(list(row), f"inputs[category][{i}]") for i, row in
                enumerate(matrix)]  # fmt: skip

    def predict(self, batch: Batch) -> Answer:
        frame = as_requests(batch.model_input, self.default_k, self.model)
        categories = frame["category"].tolist() if "category" in frame else None
        answers = self.model.recommend(
            frame["user_id"].tolist(),
            frame["recent_items"].tolist(),
            frame["k"].tolist(),
            [c if isinstance(c, list) and c else None for c in categories] if categories else None,
        )
        ids, scores = padded_lists(answers)
        segments = [segment for _, _, segment in answers]
        return Answer(
            # v1 scores are the FP32 values of the v2 tensor, so both protocols answer alike
            instances=[
                {"item_ids": items, "scores": row_scores[: len(items)], "segment": segment}
                for (items, _, segment), row_scores in zip(answers, scores.tolist(), strict=True)
            ],
            tensors=[
                ("item_ids", "BYTES", ids),
                ("scores", "FP32", scores),
                ("segment", "BYTES", np.array(segments, dtype=object)),
            ],
            labels=segments,
            confidences=[None] * len(answers),
        )

    def split(self, answer: Answer, sizes: Sequence[int]) -> list[Answer]:
        # a joined batch pads every list to its widest k: each request gets its own width back
        parts = super().split(answer, sizes)
        for part in parts:
            width = max((len(instance["item_ids"]) for instance in part.instances), default=0)
            part.tensors = [
                (name, datatype, array[:, :width] if array.ndim == 2 else array)
                for name, datatype, array in part.tensors
            ]
        return parts

    def v2_inputs(self, summaries: Sequence[Any]) -> list[dict]:
        width = max((len(s.get("recent_items", [])) for s in summaries), default=0)
        inputs = [
            {
                "name": "user_id",
                "datatype": "BYTES",
                "shape": [len(summaries)],
                "data": [str(s["user_id"]) for s in summaries],
            },
            {
                "name": "k",
                "datatype": "INT32",
                "shape": [len(summaries)],
                "data": [int(s.get("k", self.default_k)) for s in summaries],
            },
        ]
        if width:
            rows = [list(s.get("recent_items", [])) for s in summaries]
            data = [row + [""] * (width - len(row)) for row in rows]
            inputs.append(
                {
                    "name": "recent_items",
                    "datatype": "BYTES",
                    "shape": [len(summaries), width],
                    "data": data,
                }  # fmt: skip
            )
        categories = [list(s.get("category") or []) for s in summaries]
        widest = max((len(c) for c in categories), default=0)
        if widest:
            inputs.append(
                {
                    "name": "category",
                    "datatype": "BYTES",
                    "shape": [len(summaries), widest],
                    "data": [c + [""] * (widest - len(c)) for c in categories],
                }
            )
        return inputs


def _clicks_per_instance(truth: Any, outputs: Sequence[dict]) -> list[Any]:
    """One click list per instance: a list of lists as long as the request, item by item;
    anything else is the one instance's (or every instance's) clicks."""
    if (
        len(outputs) > 1
        and isinstance(truth, list)
        and len(truth) == len(outputs)
        and all(isinstance(t, list) for t in truth)
    ):
        return list(truth)
    return [truth] * len(outputs)


class ClickFeedback(Feedback):
    """The item ids the user clicked among (or beyond) those served, by request id.

    Live score: NDCG@k of each served list against its clicks (a list nobody clicked
    scores 0, so a drop in the hit rate lowers it and ``LiveScoreDrop`` fires). Live
    metrics beside it, overall and per segment: ``hit_rate_at_k`` (share of served lists
    with at least one click among them), ``ctr`` (clicked served items / served items) and
    ``feedback_lists`` (lists behind them); ``LiveHitRateDrop`` (``monitor.rules``) fires
    on a segment's ``hit_rate_at_<k>_<segment>`` falling below its own recent average.
    """

    kind = "items"

    def parse(self, truth: Any, outputs: Sequence[dict]) -> tuple[Any, bool | None]:
        per_instance = _clicks_per_instance(truth, outputs) if outputs else [truth]
        for clicks in per_instance:
            if not isinstance(clicks, list) or not all(isinstance(c, str) for c in clicks):
                raise FeedbackError('value must be the clicked item ids, e.g. ["318", "296"]')
        hit = any(
            set(clicks) & set(output.get("item_ids", []))
            for clicks, output in zip(per_instance, outputs, strict=False)
        )
        return truth, hit

    @staticmethod
    def _served_pairs(outputs: Sequence[dict], truths: Sequence[Any]):
        for output, clicks in zip(outputs, truths, strict=True):
            served = list(output.get("item_ids", []))
            if served and isinstance(clicks, list):
                yield output.get("segment", ""), served, {str(c) for c in clicks}

    def live_score(self, outputs: Sequence[dict], truths: Sequence[Any]) -> float:
        values = [
            ndcg_at_k(served, clicked, len(served)) if clicked else 0.0
            for _, served, clicked in self._served_pairs(outputs, truths)
        ]
        return float(np.mean(values)) if values else float("nan")

    def live_metrics(self, outputs: Sequence[dict], truths: Sequence[Any]) -> dict[str, float]:
        """``hit_rate_at_k`` and ``ctr`` overall and ``..._<segment>`` for each segment
        served (k: the longest list served)."""
        rows = [
            (segment, bool(clicked & set(served)), len(clicked & set(served)), len(served))
            for segment, served, clicked in self._served_pairs(outputs, truths)
        ]
        if not rows:
            return {}
        k = max(n for *_, n in rows)
        metrics: dict[str, float] = {}
        for segment in (None, *SEGMENTS):
            part = [r for r in rows if segment is None or r[0] == segment]
            if not part:
                continue
            suffix = f"_{segment}" if segment else ""
            metrics[f"hit_rate_at_{k}{suffix}"] = float(np.mean([r[1] for r in part]))
            metrics[f"ctr{suffix}"] = sum(r[2] for r in part) / sum(r[3] for r in part)
            metrics[f"feedback_lists{suffix}"] = float(len(part))
        return metrics
