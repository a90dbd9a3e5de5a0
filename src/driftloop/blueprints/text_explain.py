"""Explanations of a text classifier, per word of the text.

The features are the text's words (``\\w+`` runs, as written); a coalition of them is
the text with the other words left out, and the empty text is the base. Shapley
values are estimated by antithetic permutation sampling (each sampled order of the
words, and its reverse): every order's marginal contributions add up to
``f(text) - f("")`` exactly, so additivity holds whatever the number of orders. All
the masked texts of a batch go to the model in one ``predict_proba`` call.

This works for any model that takes raw texts (TF-IDF + linear, naive Bayes,
boosting alike) and explains the predicted class's probability. A text with more
than ``MAX_FEATURES`` words is explained by that many runs of consecutive words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from driftloop.blueprints.explain import Attribution, Explainer

WORD = re.compile(r"\w+")
MAX_FEATURES = 64
ORDERS = 4  # sampled word orders per text (two antithetic pairs)


def word_spans(text: str, limit: int = MAX_FEATURES) -> list[tuple[int, int]]:
    """(start, end) of each feature: a word, or a run of words when there are too many."""
    spans = [match.span() for match in WORD.finditer(text)]
    if len(spans) <= limit:
        return spans
    groups = np.array_split(np.arange(len(spans)), limit)
    return [(spans[g[0]][0], spans[g[-1]][1]) for g in groups]


def masked_text(text: str, spans: Sequence[tuple[int, int]], keep: np.ndarray) -> str:
    """``text`` without the spans not kept (what lies between spans stays)."""
    pieces, cursor = [], 0
    for (start, end), kept in zip(spans, keep, strict=True):
        pieces.append(text[cursor:start])
        if kept:
            pieces.append(text[start:end])
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


class TextExplainer(Explainer):
    method = "permutation SHAP over words"

    def __init__(self, model: Any, *, orders: int = ORDERS, seed: int = 0) -> None:
        self.model = model
        self.classes = [str(c) for c in model.classes_]
        self.orders = max(2, orders + orders % 2)  # whole antithetic pairs
        self.seed = seed

    def explain(
        self, model_input: Sequence[str], labels: Sequence[str | None]
    ) -> list[Attribution]:
        texts = [str(t) for t in model_input]
        rng = np.random.default_rng(self.seed)
        plans, batch = [], [""]  # the empty text: every instance's base
        for text in texts:
            spans = word_spans(text)
            orders = []
            for _ in range(self.orders // 2):
                order = rng.permutation(len(spans))
                orders.extend([order, order[::-1]])
            start = len(batch)
            for order in orders:
                keep = np.zeros(len(spans), dtype=bool)
                for position in order:  # the text growing one word at a time
                    keep[position] = True
                    batch.append(masked_text(text, spans, keep))
            plans.append((text, spans, orders, start))
        probabilities = np.asarray(self.model.predict_proba(batch), dtype=np.float64)
        base = probabilities[0]
        attributions = []
        for (text, spans, orders, start), label in zip(plans, labels, strict=True):
            index = self.classes.index(label) if label in self.classes else 0
            values = np.zeros(len(spans))
            cursor = start
            for order in orders:
                previous = base[index]
                for position in order:
                    current = probabilities[cursor, index]
                    values[position] += current - previous
                    previous = current
                    cursor += 1
            words = [text[s:e] for s, e in spans]
            attributions.append(
                Attribution(
                    output=f"probability of {self.classes[index]}",
                    base_value=float(base[index]),
                    features=words,
                    values=words,
                    contributions=values / max(len(orders), 1),
                )
            )
        return attributions
