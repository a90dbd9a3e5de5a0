"""Text normalisation for sentiment models (Portuguese first, English too).

The normaliser is an sklearn transformer so it travels inside the pickled
model: the predictor and the drift monitor apply exactly what training did.
Stop words that carry no sentiment are removed; negations and intensifiers
stay, because "não recomendo" and "recomendo" must not look alike.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.pipeline import Pipeline


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# Words that flip or scale sentiment; never treated as stop words (accent-free).
NEGATIONS = frozenset(
    """
    nao nem nunca jamais nada sem ninguem nenhum nenhuma tampouco
    not no nor never nothing without none cannot neither nobody
    """.split()
)
INTENSIFIERS = frozenset(
    """
    muito muita muitos muitas pouco pouca mais menos bem mal demais
    very too more most less least much few only well
    """.split()
)

# Portuguese function words (accent-stripped): articles, prepositions, pronouns,
# auxiliary verb forms. Written here so nothing is downloaded at run time.
PORTUGUESE_STOP_WORDS = frozenset(
    strip_accents(word)
    for word in """
    a o as os um uma uns umas ao aos à às da das do dos de dum duma na nas nos num numa
    em para pra pro pras pros por pela pelas pelo pelos com como entre ate apos desde sob sobre
    e ou que se ja so tambem ainda entao porque pois quando onde quem qual quais cujo cuja
    eu tu ele ela nos vos eles elas me te lhe lhes mim ti si comigo contigo conosco
    meu minha meus minhas teu tua teus tuas seu sua seus suas nosso nossa nossos nossas
    dele dela deles delas este esta estes estas esse essa esses essas aquele aquela aqueles aquelas
    isto isso aquilo aqui ali la ca voce voces senhor senhora
    ser sou es e somos sao era eram fui foi fomos foram fosse fossem seja sejam sera serao seria
    estar estou esta estamos estao estava estavam estive esteve estivemos estiveram estivesse
    ter tenho tem temos tinha tinham tive teve tivemos tiveram tivesse tenha tenham tera teria
    haver ha havia houve hei havemos
    fazer faz fiz fez fizeram vai vou vamos ir
    dia dias vez vezes ai ne pq q vc vcs tb tbm
    """.split()
)
ENGLISH_STOP_WORDS_KEPT = frozenset(ENGLISH_STOP_WORDS)

STOP_WORDS = {
    "pt": PORTUGUESE_STOP_WORDS - NEGATIONS - INTENSIFIERS,
    "en": ENGLISH_STOP_WORDS_KEPT - NEGATIONS - INTENSIFIERS,
}

_URL = re.compile(r"(?:https?://|www\.)\S+")
_MENTION = re.compile(r"[@#](\w+)")
_CONTRACTION_NOT = re.compile(r"n['’]t\b")
_NON_LETTER = re.compile(r"[^a-z\s]+")
_REPEATS = re.compile(r"(\w)\1{2,}")  # "muuuuito" / "goooood": 3+ of a letter -> 2
_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=16)
def _stop_words(languages: tuple[str, ...]) -> frozenset[str]:
    words: set[str] = set()
    for language in languages:
        if language not in STOP_WORDS:
            raise ValueError(
                f"no stop-word list for language {language!r}; known: {sorted(STOP_WORDS)}"
            )
        words |= STOP_WORDS[language]
    return frozenset(words)


def stop_words(languages: Iterable[str]) -> frozenset[str]:
    """The union of the stop-word lists of ``languages`` ("pt", "en")."""
    if isinstance(languages, str):
        languages = (languages,)
    return _stop_words(tuple(languages))


def normalize_text(text: object, stop: frozenset[str] = frozenset()) -> str:
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    value = str(text).lower()
    value = _URL.sub(" ", value)
    value = _MENTION.sub(r" \1 ", value)
    value = _CONTRACTION_NOT.sub(" not", value)  # English "don't" keeps its negation
    value = strip_accents(value)
    value = _NON_LETTER.sub(" ", value)  # punctuation, digits, emoji
    value = _REPEATS.sub(r"\1\1", value)
    tokens = [token for token in _SPACES.split(value) if token and token not in stop]
    return " ".join(tokens)


def as_text_list(X) -> list:
    """Texts from whatever a caller passes: list, array, Series, or a one-column/"text" frame."""
    if isinstance(X, pd.DataFrame):
        column = "text" if "text" in X.columns else X.columns[0]
        return X[column].tolist()
    if isinstance(X, str):
        raise TypeError("expected a list of texts, got a single string; wrap it in a list")
    if isinstance(X, np.ndarray) and X.ndim == 2:
        return X[:, 0].tolist()
    return list(X)


class TextNormalizer(TransformerMixin, BaseEstimator):
    """Lowercase; drop URLs, accents, punctuation, digits and stop words; squeeze repeats."""

    def __init__(self, languages: tuple[str, ...] = ("pt", "en"), remove_stop_words: bool = True):
        self.languages = languages
        self.remove_stop_words = remove_stop_words

    def fit(self, X, y=None):
        stop_words(self.languages)  # fail at fit time on an unknown language
        return self

    def transform(self, X) -> list[str]:
        stop = stop_words(self.languages) if self.remove_stop_words else frozenset()
        return [normalize_text(text, stop) for text in as_text_list(X)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags


class LeanTfidfVectorizer(TfidfVectorizer):
    """TfidfVectorizer without ``stop_words_`` after fitting.

    sklearn keeps every term cut by ``max_features``/``min_df`` in
    ``stop_words_`` (only for introspection; its docs say it can be removed);
    on review text that is most of the saved model's size and load time.
    """

    def fit_transform(self, raw_documents, y=None):
        matrix = super().fit_transform(raw_documents, y)
        if hasattr(self, "stop_words_"):
            del self.stop_words_
        return matrix

    def fit(self, raw_documents, y=None):
        self.fit_transform(raw_documents, y)
        return self


def text_vectorizer(model: Pipeline) -> Pipeline:
    """The fitted featurisation of a sentiment model: texts -> TF-IDF matrix.

    Every step of the model's Pipeline except the final classifier, sharing the
    fitted objects (no copy). The drift monitor uses it to turn logged request
    texts into the same feature space the model was trained in:

        features = text_vectorizer(model).transform(["texto", ...])  # scipy sparse
    """
    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        raise TypeError(
            "text_vectorizer expects a fitted sklearn Pipeline (normaliser -> TF-IDF -> classifier)"
        )
    return Pipeline(model.steps[:-1])
