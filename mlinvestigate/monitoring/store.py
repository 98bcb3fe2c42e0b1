"""The monitoring history: one Parquet file per window, written atomically, read back as tables.

Layout under ``<out>/<name>/history/<window length>/``: ``<YYYYmmddTHHMMSS>.parquet`` per window,
a long table (``metric``, ``feature``, ``value``, ``text``) plus the window's fingerprints
(``rows_hash``: every logged column but the labels; ``labels_hash``: the labels; ``context_hash``:
the reference, the settings and the statistics' version). A run recomputes a window only when a
fingerprint differs, so re-runs are idempotent; each window replaces its file in one
``os.replace``, so an interrupted run leaves whole windows behind and the next run resumes
without duplicates. Windows that have left the production file (a rolling log) stay in the history.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvestigationError

SCHEMA = 2  # bump when a statistic's definition changes: every window is recomputed


def _digest(parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def rows_digest(df: pd.DataFrame) -> str:
    """Order-free fingerprint of a frame's rows (a re-partitioned log is the same window)."""
    if df.shape[1] == 0 or len(df) == 0:
        return _digest([len(df), *df.columns])
    try:
        hashed = pd.util.hash_pandas_object(df, index=False).to_numpy()
    except TypeError:  # cells holding lists or dicts: hash their text
        hashed = pd.util.hash_pandas_object(df.astype(str), index=False).to_numpy()
    return _digest([len(df), *df.columns, np.sort(hashed).tobytes()])


def fingerprints(incident, rows: pd.DataFrame, context: str) -> dict[str, str]:
    labels = [c for c in (incident.target, incident.columns.label_source) if c and c in rows.columns]
    return {"rows_hash": rows_digest(rows.drop(columns=labels)), "labels_hash": rows_digest(rows[labels]),
            "context_hash": context}


def context_digest(incident, extra: dict) -> str:
    """Everything besides a window's own rows that its numbers depend on."""
    spec = incident.spec
    ref_hash = next((i["sha256"] for i in incident.inputs if i["role"] == "reference"), "")
    mon = spec.monitoring.model_dump(exclude={"alerts", "retraining", "windows", "firing", "baseline_windows"})
    return _digest([SCHEMA, ref_hash, json.dumps(mon, sort_keys=True, default=str),
                    json.dumps(spec.columns.model_dump(), sort_keys=True, default=str),
                    json.dumps(incident.feature_types, sort_keys=True), spec.model.version,
                    json.dumps(spec.thresholds, sort_keys=True), json.dumps(extra, sort_keys=True, default=str)])


class History:
    """The windows of one monitored model at one window length."""

    def __init__(self, folder: Path):
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.parquet"

    def keys(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.parquet"))

    def fingerprints(self) -> dict[str, dict[str, str]]:
        out = {}
        for key in self.keys():
            try:
                df = pd.read_parquet(self._path(key), columns=["rows_hash", "labels_hash", "context_hash"])
            except Exception:  # noqa: BLE001 - an unreadable file is recomputed
                continue
            if len(df):
                out[key] = df.iloc[0].to_dict()
        return out

    def write(self, key: str, start: pd.Timestamp, end: pd.Timestamp, partial: bool, record: dict,
              features: dict[str, dict], prints: dict[str, str]) -> None:
        rows = []
        for metric, value in record.items():
            if isinstance(value, str):
                rows.append((metric, "", math.nan, value))
            else:
                rows.append((metric, "", _float(value), None))
        for feature, stats in features.items():
            rows.extend((metric, feature, _float(value), None) for metric, value in stats.items())
        df = pd.DataFrame(rows, columns=["metric", "feature", "value", "text"])
        df["text"] = df["text"].astype(object)
        df.insert(0, "window_start", pd.Timestamp(start))
        df.insert(1, "window_end", pd.Timestamp(end))
        df.insert(2, "partial", bool(partial))
        for k, v in prints.items():
            df[k] = v
        df["computed_at"] = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{key}.", suffix=".tmp")
        os.close(fd)
        try:
            df.to_parquet(tmp, index=False)
            os.replace(tmp, self._path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(windows, features)``: one row per window (metrics as columns, ``text:<metric>`` for
        text values), and one row per window and feature."""
        keys = self.keys()
        if not keys:
            return pd.DataFrame(), pd.DataFrame()
        long = pd.concat([pd.read_parquet(self._path(k)) for k in keys], ignore_index=True)
        meta = (long.groupby("window_start", sort=True)[["window_end", "partial", "computed_at",
                                                           "rows_hash", "labels_hash"]].first())
        level = long[long["feature"] == ""]
        numbers = level[level["text"].isna()].pivot_table(index="window_start", columns="metric", values="value",
                                                          aggfunc="first", dropna=False)
        texts = level[level["text"].notna()].pivot_table(index="window_start", columns="metric", values="text",
                                                         aggfunc="first")
        texts.columns = [f"text:{c}" for c in texts.columns]
        windows = meta.join(numbers, how="left").join(texts, how="left")
        windows = windows.reset_index()
        feats = long[long["feature"] != ""].pivot_table(index=["window_start", "feature"], columns="metric",
                                                        values="value", aggfunc="first", dropna=False).reset_index()
        feats.columns.name = None
        windows.columns.name = None
        return windows, feats


def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


@contextmanager
def locked(folder: Path):
    """One monitoring run at a time per folder (a second one waits for the first)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; runs are still idempotent
            yield
            return
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError as exc:
            raise InvestigationError(f"could not lock {folder}: {exc}") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
