"""Column values as text codes: labels, versions and segment values compared as text, computed
once per distinct value rather than once per row (a million rows hold a few dozen values)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def as_text(value) -> str:
    """One value as comparable text: ``1``, ``1.0`` and ``np.int64(1)`` all read ``"1"``."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def text_codes(values) -> tuple[np.ndarray, list[str]]:
    """Integer code of each value's text (``-1`` where missing) and the distinct texts, sorted.

    Values whose texts coincide (``1`` and ``"1"``) share a code.
    """
    s = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes, uniques = s.cat.codes.to_numpy(), list(s.cat.categories)
    else:
        # numbers, booleans and strings factorize in their own dtype (as objects: 10x slower at 1M rows)
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
    texts = [as_text(u) for u in uniques]
    labels = sorted(set(texts))
    remap = np.asarray(pd.Index(labels).get_indexer(texts), dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    return np.where(codes >= 0, remap[np.maximum(codes, 0)] if len(remap) else -1, -1), labels


def recode(codes: np.ndarray, labels: list[str], target: list[str]) -> np.ndarray:
    """``codes`` into ``labels`` re-expressed as codes into ``target`` (``-1`` where absent)."""
    remap = np.asarray(pd.Index(target).get_indexer(labels), dtype=np.int64)
    return np.where(codes >= 0, remap[np.maximum(codes, 0)] if len(remap) else -1, -1)


def class_codes(values, classes: list) -> np.ndarray:
    """Codes ``0 .. len(classes) - 1`` of ``values`` in ``classes`` (compared as text, so ``1``,
    ``1.0`` and ``"1"`` are one class); ``-1`` for missing or unknown values.

    >>> class_codes(pd.Series([1.0, 0, None, 7]), [0, 1]).tolist()
    [1, 0, -1, -1]
    """
    codes, labels = text_codes(values)
    return recode(codes, labels, [as_text(c) for c in classes])
