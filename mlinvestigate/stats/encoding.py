"""How model-based statistics see the features: one numeric matrix per frame, categories as codes.

Numbers as they are, datetimes as seconds, booleans as 0/1, and each categorical feature's most
frequent categories (at most :data:`MAX_CATEGORIES`, the one category cap of every model-based
statistic, counted over every frame compared) as codes, with one code for all the rest and NaN for
missing. The domain classifier encodes this way (:class:`Encoding`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .drift import numeric_values

MAX_CATEGORIES = 250  # HistGradientBoosting handles at most 255 bins per categorical feature


@dataclass
class Encoding:
    """How a frame's columns become the classifier's numeric matrix."""

    features: list[str]
    categories: dict[str, list[str]]  # categorical feature → kept categories (code = position)

    def matrix(self, frame: pd.DataFrame, out: np.ndarray | None = None) -> np.ndarray:
        X = np.empty((len(frame), len(self.features)), dtype=np.float64) if out is None else out
        for j, f in enumerate(self.features):
            X[:, j] = (category_codes(frame[f], self.categories[f]) if f in self.categories
                       else numeric_values(frame[f]))
        return X

    @property
    def categorical_mask(self) -> np.ndarray:
        return np.array([f in self.categories for f in self.features], dtype=bool)


def category_codes(s: pd.Series, kept: list[str]) -> np.ndarray:
    """Codes into ``kept`` as floats: ``len(kept)`` for any other category, NaN for missing."""
    other = float(len(kept))
    index = pd.Index(kept, dtype=object)
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        if len(s.cat.categories) == 0:  # no category at all: every value is missing
            return np.full(len(s), np.nan)
        table = index.get_indexer(s.cat.categories.astype(str)).astype(np.float64)
        table[table < 0] = other
        return np.where(codes >= 0, table[np.maximum(codes, 0)], np.nan)
    text = s.astype("string")
    out = index.get_indexer(text.fillna("")).astype(np.float64)
    out[out < 0] = other
    out[text.isna().to_numpy()] = np.nan
    return out


def kept_categories(*sides: pd.Series) -> list[str]:
    """The most frequent categories of every side together (as text), at most :data:`MAX_CATEGORIES`."""
    counts = pd.concat([s.astype("string") for s in sides], ignore_index=True).value_counts()
    return [str(c) for c in counts.index[:MAX_CATEGORIES]]


def encoding_for(frames: list[pd.DataFrame], types: dict[str, str]) -> Encoding:
    """The encoding of the features in ``types`` (name → numeric, datetime, boolean or categorical)
    that every model-based statistic uses: categorical features keep their most frequent categories
    over all ``frames`` together, so a code means the same category in each of them.

    Examples
    --------
    >>> ref = pd.DataFrame({"x": [1.0, None], "c": ["a", "b"]})
    >>> prod = pd.DataFrame({"x": [3.0, 4.0], "c": ["b", None]})
    >>> enc = encoding_for([ref, prod], {"x": "numeric", "c": "categorical"})
    >>> enc.matrix(prod).tolist(), enc.categorical_mask.tolist()
    ([[3.0, 0.0], [4.0, nan]], [False, True])
    """
    cats = {f: kept_categories(*(df[f] for df in frames)) for f, t in types.items() if t == "categorical"}
    return Encoding(list(types), cats)


def encode(frames: list[pd.DataFrame], types: dict[str, str]) -> tuple[list[np.ndarray], np.ndarray]:
    """Each frame as the shared numeric matrix (:func:`encoding_for`), and the categorical mask."""
    enc = encoding_for(frames, types)
    return [enc.matrix(df) for df in frames], enc.categorical_mask
