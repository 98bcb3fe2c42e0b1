"""Windows read through DuckDB: the production log is never loaded whole into pandas.

With ``engine: duckdb`` (or ``auto`` choosing it) :class:`EngineWindows` takes the place of
:func:`mlinvestigate.monitoring.windows.split`. What runs where:

- **in DuckDB, over every row of every window** (one ``GROUP BY`` window per query): the window plan
  (rows, first and last time), each window's fingerprints (order-free sums of row hashes, with and
  without the labels), the labelled rows, missing and infinite values per feature, counts per bin
  of every numeric feature on the shared grid of :mod:`mlinvestigate.engine.aggregates` (the
  reference's fine quantiles are grid points, so PSI's ten reference-decile bins are exactly the
  pandas engine's, KS is read at the grid with the same error bound), counts per category of every
  categorical feature, status and model-version counts (errors, timeouts, failed requests and the
  share served by another version) and the sums of ``monitoring.value_columns``;
- **on a seeded sample of at most ``monitoring.window_sample_rows`` rows of the window, drawn by
  DuckDB** (the whole window when it is smaller): latency percentiles, prediction and score
  distributions, low-confidence share, the headline metric and its estimate, the cost of errors
  (scaled from the sample to the window), the domain classifier (which samples
  ``monitoring.domain_rows`` of those) and the statistics of rules that measure their own.

The reference side comes from the incident's engine aggregates (every reference row) and its
in-memory sample. The queries are built here, in DuckDB's dialect, from the helpers of
:mod:`mlinvestigate.engine.aggregates`; Spark is refused with a clear message (its histogram is not
native), never run on a sample silently.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..checks.deployment import same_version, version_text
from ..checks.drift import column_drift
from ..engine import connect
from ..engine.aggregates import _array, _finite, _ident, category_label, value_sql
from ..errors import DataError
from ..stats import drift as sd
from ..stats.intervals import wilson
from ..stats.triage_serving import status_kinds
from ..stats.triage_time import parse_datetime
from .windows import PARTIAL_COVERAGE, Baseline, Window, feature_rows, window_stats

_US = pd.Timedelta(microseconds=1)


def bucket_sql(ts_column: str, window: Window, anchor_us: int) -> str:
    """Each row's window start in microseconds since the epoch: ``Window.start_of`` in SQL."""
    ts = f"epoch_us(CAST({_ident(ts_column)} AS TIMESTAMP))"
    length = int(window.length / _US)
    return f"(({ts} - {anchor_us}) // {length}) * {length} + {anchor_us}"


def _windowed(bucket: str, ts_column: str) -> str:
    return f"(SELECT {bucket} AS w__, * FROM production WHERE {_ident(ts_column)} IS NOT NULL) AS t"


def _missing_sql(column: str, kind: str) -> str:
    if kind in ("numeric", "datetime"):
        v = value_sql(column, kind)
        return f"{v} IS NULL OR isnan({v})"
    return f"{_ident(column)} IS NULL"


def window_counts_query(bucket: str, ts_column: str, *, target: str, prediction: str,
                        value_columns: list[str], kinds: dict[str, str],
                        grids: dict[str, np.ndarray]) -> str:
    """One row per window: rows, labelled rows, value sums, missing and infinite values per feature
    and (DuckDB's ``histogram``) counts per grid bin of every numeric feature's finite values."""
    parts = ["count(*) AS n_rows",
             f"count(*) FILTER (WHERE {_ident(target)} IS NOT NULL AND {_ident(prediction)} IS NOT NULL "
             f"AND NOT coalesce(isnan(TRY_CAST({_ident(target)} AS DOUBLE)), false)) AS labelled"]
    parts += [f"sum(TRY_CAST({_ident(c)} AS DOUBLE)) AS v{i}" for i, c in enumerate(value_columns)]
    for j, (name, kind) in enumerate(kinds.items()):
        parts.append(f"count(*) FILTER (WHERE {_missing_sql(name, kind)}) AS m{j}")
        if kind in ("numeric", "datetime"):
            v = value_sql(name, kind)
            parts.append(f"count(*) FILTER (WHERE abs({v}) = CAST('inf' AS DOUBLE)) AS i{j}")
            if name in grids:
                parts.append(f"histogram({v}, {_array(grids[name])}) FILTER (WHERE {_finite(v)}) AS h{j}")
    return f"SELECT w__ AS w, {', '.join(parts)} FROM {_windowed(bucket, ts_column)} GROUP BY w__ ORDER BY w__"


def value_counts_query(bucket: str, ts_column: str, column: str) -> str:
    """Rows per window and value of ``column`` (missing values as NULL)."""
    return (f"SELECT w__ AS w, {_ident(column)} AS value, count(*) AS n FROM {_windowed(bucket, ts_column)} "
            f"GROUP BY w__, {_ident(column)}")


def fingerprints_query(bucket: str, ts_column: str, columns: list[str], labels: list[str]) -> str:
    """Order-free fingerprints per window: sums of row hashes without the labels, and of the labels."""
    rows = f"CAST(sum(hash({', '.join(map(_ident, columns))})) AS VARCHAR)" if columns else "'none'"
    lab = f"CAST(sum(hash({', '.join(map(_ident, labels))})) AS VARCHAR)" if labels else "'none'"
    return (f"SELECT w__ AS w, count(*) AS n, {rows} AS rows_hash, {lab} AS labels_hash "
            f"FROM {_windowed(bucket, ts_column)} GROUP BY w__")


def _histogram(found, grid: np.ndarray) -> np.ndarray:
    """DuckDB's histogram map as counts per grid bin (as :mod:`engine.aggregates` reads it)."""
    counts = np.zeros(len(grid) + 1, np.int64)
    if isinstance(found, dict) and set(found) == {"key", "value"}:
        found = dict(zip(found["key"], found["value"], strict=True))
    for edge, k in (found or {}).items():
        counts[np.searchsorted(grid, edge) if np.isfinite(edge) else len(grid)] += int(k)
    return counts


def _approximate_quantiles(grid: np.ndarray, counts: np.ndarray, k: int) -> np.ndarray:
    """A side's quantiles at ``j / k`` read from its counts per grid bin (the upper edge of the bin
    holding each rank); they only feed the Wasserstein distance, which the monitor does not keep."""
    cum = np.cumsum(counts)
    if not len(grid) or cum[-1] == 0:
        return np.full(k + 1, np.nan)
    ranks = np.floor(np.arange(k + 1) / k * (cum[-1] - 1)) + 1
    return grid[np.clip(np.searchsorted(cum, ranks), 0, len(grid) - 1)]


class EngineWindows:
    """The windows of a production log that DuckDB reads; see the module docstring."""

    def __init__(self, incident, window: Window, *, since: pd.Timestamp | None = None):
        spec = incident.spec
        if incident.engine != "duckdb":
            raise DataError(f"mlinvestigate monitor aggregates windows in DuckDB; engine {incident.engine!r} is not "
                            "supported yet: set engine: duckdb (or pandas for a log that fits in memory).")
        self.incident, self.window = incident, window
        self.ts = incident.columns.timestamp
        if not self.ts:
            raise DataError("monitoring needs columns.timestamp in the spec: windows are cut by time.")
        self.engine = connect(spec, "duckdb")
        try:
            self._plan(since)
        except Exception:
            self.engine.close()
            raise

    def close(self) -> None:
        self.engine.close()

    def _query(self, sql: str) -> pd.DataFrame:
        try:
            return self.engine.query(sql)
        except Exception as exc:  # noqa: BLE001 - an engine's error becomes one clear message
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"duckdb could not aggregate the production windows: {text}") from None

    def _plan(self, since) -> None:
        ts = _ident(self.ts)
        if self.ts not in self.engine.columns("production"):
            raise DataError(f"production has no column {self.ts!r} (columns.timestamp): windows are cut by time.")
        span = self._query(f"SELECT min(CAST({ts} AS TIMESTAMP)) AS first, max(CAST({ts} AS TIMESTAMP)) AS last "
                           f"FROM production").iloc[0]
        if pd.isna(span["first"]):
            raise DataError(f"production column {self.ts!r} (columns.timestamp) holds no time: nothing to window.")
        first, last = pd.Timestamp(span["first"]), pd.Timestamp(span["last"])
        anchor = 0
        if self.window.weekly:
            day = first.floor("D")
            anchor = int((day - pd.Timedelta(days=day.day_of_week) - pd.Timestamp(0)) / _US)
        self.bucket = bucket_sql(self.ts, self.window, anchor)
        inc = self.incident
        mon = inc.spec.monitoring
        self.kinds = {f: ("categorical" if t in ("categorical", "boolean") else t)
                      for f, t in inc.feature_types.items()}
        agg = inc.aggregates.columns if inc.aggregates is not None else {}
        self.grids = {f: agg[f].grid for f, k in self.kinds.items()
                      if k in ("numeric", "datetime") and f in agg and agg[f].grid is not None}
        counts = self._query(window_counts_query(self.bucket, self.ts, target=inc.target, prediction=inc.prediction,
                                                 value_columns=list(mon.value_columns), kinds=self.kinds,
                                                 grids=self.grids))
        self.counts = {int(r["w"]): r for _, r in counts.iterrows()}
        self.categories = {f: self._by_value(f) for f, k in self.kinds.items() if k == "categorical"}
        cols = inc.columns
        self.statuses = self._by_value(cols.status) if cols.status else {}
        self.versions = self._by_value(cols.model_version) if cols.model_version else {}
        labels = [c for c in (inc.target, cols.label_source) if c]
        names = self.engine.columns("production")
        prints = self._query(fingerprints_query(self.bucket, self.ts, [c for c in names if c not in labels],
                                                [c for c in labels if c in names]))
        self.prints = {int(r["w"]): {"rows_hash": f"{int(r['n'])}:{r['rows_hash']}",
                                     "labels_hash": str(r["labels_hash"])} for _, r in prints.iterrows()}
        self.starts = []
        for w in sorted(self.counts):
            start = pd.Timestamp(0) + w * _US
            if since is not None and start < since:
                continue
            covered = (min(start + self.window.length, last) - max(start, first)) / self.window.length
            slack = pd.Timedelta(hours=1) / self.window.length if self.window.days >= 1 else 0.0
            self.starts.append((start, w, bool(covered + slack < PARTIAL_COVERAGE)))
        self.sample_rows = mon.window_sample_rows

    def _by_value(self, column: str) -> dict[int, pd.DataFrame]:
        table = self._query(value_counts_query(self.bucket, self.ts, column))
        return {int(w): g[["value", "n"]] for w, g in table.groupby("w", sort=False)}

    # --- per window -------------------------------------------------------------------------------
    def fingerprints(self, w: int, context: str) -> dict[str, str]:
        return {**self.prints[w], "context_hash": context}

    def rows(self, w: int, limit: int | None = None) -> pd.DataFrame:
        """The window's rows (a seeded sample of ``limit`` when it holds more), typed like the incident's."""
        where = f"SELECT * FROM production WHERE {_ident(self.ts)} IS NOT NULL AND {self.bucket} = {int(w)}"
        order = ", ".join(_ident(c) for c in (self.ts, self.incident.columns.id) if c)
        n = int(self.counts[w]["n_rows"])
        if limit is not None and n > limit:
            seed = int(self.incident.threshold("general", "seed"))
            con = self.engine.con
            con.execute("SET threads = 1").fetchall()  # a repeatable reservoir draw
            try:
                sql = (f"SELECT * FROM ({where}) AS s USING SAMPLE reservoir({int(limit)} ROWS) "
                       f"REPEATABLE ({seed})")
                frame = con.sql(f"SELECT * FROM ({sql}) AS d ORDER BY {order}").to_arrow_table().to_pandas()
            finally:
                con.execute(f"SET threads = {self.engine.threads}").fetchall()
        else:
            frame = self.engine.con.sql(f"{where} ORDER BY {order}").to_arrow_table().to_pandas()
        return conform(frame, self.incident)

    def stats(self, base: Baseline, w: int) -> tuple[dict, dict[str, dict], int]:
        """The window's record and features: exact aggregates, the rest from its sample; and the
        sample's size."""
        sample = self.rows(w, self.sample_rows)
        record, _ = window_stats(self.incident, base, sample, features=False)
        c = self.counts[w]
        n = int(c["n_rows"])
        record["rows"] = float(n)
        record["sampled_rows"] = float(len(sample))
        record["labelled_rows"] = float(c["labelled"])
        for i, col in enumerate(self.incident.spec.monitoring.value_columns):
            v = c[f"v{i}"]
            record[f"value:{col}"] = float(v) if v is not None and not pd.isna(v) else 0.0
        if "error_cost" in record and len(sample) and n > len(sample):
            record["error_cost"] *= n / len(sample)  # the sample's cost, scaled to the window
        record.update(self._serving(w, n))
        feats = self._features(base, w, sample)
        rates = [v["missing_rate"] for v in feats.values() if math.isfinite(v["missing_rate"])]
        record["missing_max"] = max(rates) if rates else math.nan
        return record, feats, len(sample)

    def _serving(self, w: int, n: int) -> dict:
        out: dict = {}
        if w in self.statuses:
            table = self.statuses[w]
            kinds = status_kinds(table["value"])
            k = table["n"].to_numpy(np.int64)
            errors, timeouts = int(k[kinds == "error"].sum()), int(k[kinds == "timeout"].sum())
            failed = errors + timeouts
            lo, hi = wilson(failed, n)
            out.update(error_rate=errors / n, timeout_rate=timeouts / n, failed_rate=failed / n,
                       failed_low=float(lo), failed_high=float(hi))
        if w in self.versions:
            table = self.versions[w]
            texts = version_text(table["value"])
            shares = table["n"].groupby(texts.to_numpy()).sum().sort_values(ascending=False, kind="stable") / n
            expected = self.incident.spec.model.version
            if expected is not None:
                other = int(sum(int(k) for v, k in zip(texts, table["n"], strict=True)
                                if not same_version(v, expected)))
                lo, _ = wilson(other, n)
                out.update(version_other_share=other / n, version_other_low=float(lo))
            out["versions"] = ", ".join(f"{v} {s:.1%}" for v, s in shares.head(5).items())
        return out

    def _features(self, base: Baseline, w: int, sample: pd.DataFrame) -> dict[str, dict]:
        inc = self.incident
        agg = inc.aggregates.columns
        c = self.counts[w]
        min_share = inc.threshold("drift", "min_category_share")
        stats: dict[str, sd.Drift] = {}
        for j, (f, kind) in enumerate(self.kinds.items()):
            if f not in base.features:
                continue
            missing = int(c[f"m{j}"])
            if kind in ("numeric", "datetime") and f in self.grids:
                a, grid = agg[f], self.grids[f]
                counts = _histogram(c[f"h{j}"], grid)
                d = sd.numeric_drift_binned(grid, a.counts[0], counts, a.quantiles[0],
                                            _approximate_quantiles(grid, counts, len(a.quantiles[0]) - 1),
                                            missing_reference=a.missing[0], missing_production=missing,
                                            datetime=kind == "datetime", ks_error=inc.aggregates.ks_error)
                d.infinite_reference, d.infinite_production = a.infinite[0], int(c[f"i{j}"])
            elif kind == "categorical" and f in agg:
                a = agg[f]
                table = self.categories[f].get(w, pd.DataFrame({"value": [], "n": []}))
                here: dict[str, int] = {}
                for value, k in zip(table["value"], table["n"], strict=True):
                    if value is None or (isinstance(value, float) and math.isnan(value)):
                        continue
                    label = category_label(value)
                    here[label] = here.get(label, 0) + int(k)
                labels = sorted(set(a.labels) | set(here))
                ref = dict(zip(a.labels, a.counts[0], strict=True))
                d = sd.categorical_drift_counts([int(ref.get(x, 0)) for x in labels], [here.get(x, 0) for x in labels],
                                                labels, missing_reference=a.missing[0], missing_production=missing,
                                                min_share=min_share)
            else:  # not aggregated by the engine: from the window's sample
                d = column_drift(inc.reference[f], sample[f], base.features[f], min_share=min_share)
            stats[f] = d
        return feature_rows(stats)


def conform(frame: pd.DataFrame, incident) -> pd.DataFrame:
    """Rows read by the engine typed as the incident's production rows: times parsed, categorical
    features with the incident's categories (their text, with any category the sample never held)."""
    ts = incident.columns.timestamp
    if ts and ts in frame.columns:
        frame[ts] = parse_datetime(frame[ts])
    like = incident.production
    for f, kind in incident.feature_types.items():
        if f not in frame.columns or f not in like.columns:
            continue
        if isinstance(like[f].dtype, pd.CategoricalDtype):
            codes, uniques = pd.factorize(frame[f], use_na_sentinel=True)
            texts = [str(u) for u in uniques]
            cats = list(like[f].cat.categories)
            if not set(texts) <= set(cats):
                cats = sorted(set(cats) | set(texts))
            dtype = pd.CategoricalDtype(cats)
            position = {c: i for i, c in enumerate(cats)}
            remap = np.array([position[t] for t in texts] + [-1], dtype=np.int64)
            frame[f] = pd.Categorical.from_codes(remap[codes], dtype=dtype)
        elif kind == "datetime":
            frame[f] = parse_datetime(frame[f])
        elif kind == "numeric" and not pd.api.types.is_numeric_dtype(frame[f]):
            frame[f] = pd.to_numeric(frame[f], errors="coerce")
    return frame
