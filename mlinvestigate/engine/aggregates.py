"""The full-data statistics as SQL aggregations, defined once.

Each query is written here once, in DuckDB's dialect; DuckDB runs it as written and Spark runs
sqlglot's transpilation of it (:meth:`backends.SparkEngine.query`). What comes back is small and
does not grow with rows:

1. **rows** of each side: ``count(*)``;
2. **quantiles** of every numeric column on each side at ``j / FINE`` (``j = 0 … FINE``) over its
   finite values: exact on DuckDB (``quantile_disc``, the same "lower" rule as the pandas engine,
   so PSI's 10 reference-decile edges are identical), ``percentile_approx`` on Spark (rank error at
   most 1/10,000); at most :data:`QUANTILE_BATCH_BYTES` of values are held at once;
3. **counts per bin** of every numeric column on each side over one grid: the union of both sides'
   quantiles (and the plots' histogram edges), a list literal in the query. A value's bin is found
   by a binary search, one subquery per power of two (11 steps for 2,000 edges), missing (NULL/NaN) and
   infinite values in bins ``-1`` and ``-2``; and **counts per category** of every categorical
   column, missing ones apart. One scan per side with ``GROUPING SETS``.

From these, :mod:`mlinvestigate.stats.drift` computes PSI (the 10 reference-decile bins are sums of
grid bins), KS (the largest gap between the two empirical CDFs at the grid's points) and
Wasserstein (from the quantile functions); chi-square and Jensen–Shannon from category counts.

KS error bound: between two neighbouring grid points each side holds at most ``1/FINE`` of its
values (plus twice the quantiles' rank error on Spark), so the KS statistic read at the grid is at
most ``1/FINE`` = 0.001 below the exact one, never above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

FINE = 1000                       # quantiles a side for the KS grid (KS error ≤ 1/FINE)
QUANTILE_BATCH_BYTES = 256 << 20  # values held at once by exact quantiles (8 bytes each)
EXACT_QUANTILE_MAX_ROWS = 30_000_000  # above this a side's quantiles are approximate (t-digest)
HIST_BINS = 40
PROFILE_STEP = FINE // 200        # the plots' 201 quantiles are every 5th fine one


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _finite(v: str) -> str:
    return f"NOT ({v} IS NULL OR isnan({v}) OR abs({v}) = CAST('inf' AS DOUBLE))"


def value_sql(column: str, kind: str) -> str:
    """A column as DOUBLE: datetimes as nanoseconds since the epoch (as the pandas engine)."""
    if kind == "datetime":
        return f"CAST(epoch_us({_ident(column)}) AS DOUBLE) * 1000"
    return f"CAST({_ident(column)} AS DOUBLE)"


def _literal(x: float) -> str:
    text = repr(float(x))
    return text if "inf" not in text and "nan" not in text else f"CAST('{text}' AS DOUBLE)"


def _array(grid: np.ndarray) -> str:
    return "[" + ", ".join(_literal(x) for x in grid) + "]"


def search_levels(columns: dict[str, int]) -> list[int]:
    """The steps of the binary search: powers of two, largest first, covering every grid."""
    top = max(columns.values(), default=0)
    steps = []
    step = 1
    while step <= top:
        steps.append(step)
        step *= 2
    return steps[::-1]


def search_sql(source: str, carried: list[str], grids: dict[str, tuple[str, int]]) -> str:
    """``np.searchsorted(grid, v, side="left")`` of every ``v`` as a binary search over subqueries.

    ``grids`` maps a value column to the name of its grid (a list column) and the grid's length;
    each level adds one power of two to ``p_<value>`` where the grid's element there is still
    below the value (lists are 1-based). Returns a query with ``carried`` columns and one
    ``p_<value>`` per value column.
    """
    names = list(carried) + [g for g, _ in grids.values()] + [f"0 AS p_{v}" for v in grids]
    query = f"SELECT {', '.join(names)} FROM {source}"
    keep = list(carried) + [g for g, _ in grids.values()]
    for level, step in enumerate(search_levels({v: n for v, (_, n) in grids.items()})):
        moves = [f"p_{v} + CASE WHEN p_{v} + {step} <= {n} AND {g}[p_{v} + {step}] < {v} THEN {step} "
                 f"ELSE 0 END AS p_{v}" for v, (g, n) in grids.items()]
        query = f"SELECT {', '.join(keep + moves)} FROM ({query}) AS l{level}"
    return query


@dataclass
class ColumnAggregate:
    """One column's full-data aggregates on both sides (index 0 reference, 1 production)."""

    kind: str                       # numeric | datetime | categorical
    missing: tuple[int, int] = (0, 0)
    infinite: tuple[int, int] = (0, 0)
    # numeric: fine quantiles at j / FINE, the grid and counts per grid bin (len(grid) + 1)
    quantiles: tuple[np.ndarray, np.ndarray] | None = None
    grid: np.ndarray | None = None
    counts: tuple[np.ndarray, np.ndarray] | None = None
    # categorical: category labels and counts on each side (missing apart)
    labels: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        out = {"kind": self.kind, "missing": list(self.missing), "infinite": list(self.infinite),
               "labels": self.labels}
        if self.quantiles is not None:
            out["quantiles"] = [q.tolist() for q in self.quantiles]
        if self.grid is not None:
            out["grid"] = self.grid.tolist()
        if self.counts is not None:
            out["counts"] = [c.tolist() for c in self.counts]
        return out

    @classmethod
    def from_json(cls, d: dict) -> ColumnAggregate:
        def arrays(key, dtype):
            v = d.get(key)
            return None if v is None else tuple(np.asarray(x, dtype=dtype) for x in v)

        return cls(kind=d["kind"], missing=tuple(d["missing"]), infinite=tuple(d["infinite"]),
                   quantiles=arrays("quantiles", float),
                   grid=None if d.get("grid") is None else np.asarray(d["grid"], float),
                   counts=arrays("counts", np.int64), labels=list(d.get("labels", [])))


@dataclass
class Aggregates:
    """Exact full-data aggregates an engine computed, attached to an Incident."""

    engine: str
    rows: dict[str, int]
    sample_rows: dict[str, int]
    columns: dict[str, ColumnAggregate]
    quantiles_exact: bool = True
    note: str = ""
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ks_error(self) -> float:
        """How far below the exact KS statistic the grid's value can be."""
        return 1.0 / FINE + (0.0 if self.quantiles_exact else 2e-4)

    def to_json(self) -> dict:
        return {"engine": self.engine, "rows": self.rows, "sample_rows": self.sample_rows,
                "columns": {k: v.to_json() for k, v in self.columns.items()},
                "quantiles_exact": self.quantiles_exact, "note": self.note, "failed": self.failed}

    @classmethod
    def from_json(cls, d: dict) -> Aggregates:
        return cls(engine=d["engine"], rows=d["rows"], sample_rows=d["sample_rows"],
                   columns={k: ColumnAggregate.from_json(v) for k, v in d["columns"].items()},
                   quantiles_exact=d.get("quantiles_exact", True), note=d.get("note", ""),
                   failed=d.get("failed", {}))


# --- the queries ----------------------------------------------------------------------------------
def quantiles_query(role: str, columns: dict[str, str], *, exact: bool) -> str:
    """Fine quantiles of each numeric column's finite values on one side."""
    probs = "[" + ", ".join(_literal(j / FINE) for j in range(FINE + 1)) + "]"
    fn = "quantile_disc" if exact else "approx_quantile"
    parts = []
    for i, (name, kind) in enumerate(columns.items()):
        v = value_sql(name, kind)
        parts.append(f"{fn}({v}, {probs}) FILTER (WHERE {_finite(v)}) AS q{i}")
    return f"SELECT {', '.join(parts)} FROM {role}"


def counts_query(role: str, numeric: dict[str, tuple[str, np.ndarray]], categorical: list[str]) -> str:
    """Counts per grid bin of every numeric column and per category of every categorical one."""
    values, grids, keys, flags, final = [], {}, [], [], []
    for i, (name, (kind, grid)) in enumerate(numeric.items()):
        values += [f"{value_sql(name, kind)} AS v{i}", f"{_array(grid)} AS g{i}"]
        grids[f"v{i}"] = (f"g{i}", len(grid))
        v = f"v{i}"
        final.append(f"CASE WHEN {v} IS NULL OR isnan({v}) THEN -1 WHEN abs({v}) = CAST('inf' AS DOUBLE) "
                     f"THEN -2 ELSE p_{v} END AS b{i}")
        keys.append(f"b{i}")
    for j, name in enumerate(categorical):
        values.append(f"{_ident(name)} AS c{j}")
        final.append(f"c{j}")
        keys.append(f"c{j}")
        flags.append(f"grouping(c{j}) AS g{j}")
    carried = [f"v{i}" for i in range(len(numeric))] + [f"c{j}" for j in range(len(categorical))]
    searched = search_sql(f"(SELECT {', '.join(values)} FROM {role}) AS s", carried, grids)
    sets = ", ".join(f"({k})" for k in keys)
    return (f"SELECT {', '.join(keys + flags)}, count(*) AS n FROM (SELECT {', '.join(final)} FROM "
            f"({searched}) AS found) AS t GROUP BY GROUPING SETS ({sets})")


def group_rates_query(role: str, group: str, conditions: dict[str, str]) -> str:
    """Rows per value of ``group`` and, per condition (a SQL predicate), the rows that meet it."""
    parts = [f"count(*) FILTER (WHERE {cond}) AS {_ident(name)}" for name, cond in conditions.items()]
    return (f"SELECT {_ident(group)} AS value, count(*) AS n_rows{', ' if parts else ''}{', '.join(parts)} "
            f"FROM {role} GROUP BY {_ident(group)}")


# --- running them ---------------------------------------------------------------------------------
def category_label(value) -> str:
    """A category's text as the pandas engine writes it: ``True``, ``1`` for 1.0, else ``str``."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, str) and value in ("true", "false"):
        return value.capitalize()
    return str(value)


def _hist_edges(qa: np.ndarray, qb: np.ndarray, datetime: bool) -> np.ndarray:
    """The plots' histogram edges, as :func:`stats.drift._numeric_profile` draws them."""
    lows = [v for v in (qa[PROFILE_STEP], qb[PROFILE_STEP]) if np.isfinite(v)]
    highs = [v for v in (qa[-1 - PROFILE_STEP], qb[-1 - PROFILE_STEP]) if np.isfinite(v)]
    if not (lows and highs):
        return np.empty(0)
    lo, hi = min(lows), max(highs)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    if not datetime and lo > 0 and hi / lo >= 100:
        return np.geomspace(lo, hi, HIST_BINS + 1)
    return np.linspace(lo, hi, HIST_BINS + 1)


def _quantiles(engine, role: str, columns: dict[str, str], rows: int) -> dict[str, np.ndarray]:
    exact = engine.exact_quantiles and rows <= EXACT_QUANTILE_MAX_ROWS
    per_batch = max(1, int(QUANTILE_BATCH_BYTES // max(1, 8 * rows))) if exact else 64
    names = list(columns)
    out: dict[str, np.ndarray] = {}
    for start in range(0, len(names), per_batch):
        batch = {n: columns[n] for n in names[start:start + per_batch]}
        row = engine.query(quantiles_query(role, batch, exact=exact)).iloc[0]
        for i, n in enumerate(batch):
            v = row[f"q{i}"]
            out[n] = (np.full(FINE + 1, np.nan) if v is None or (np.ndim(v) == 0 and v != v)
                      else np.asarray(list(v), dtype=float))
    return out


def compute(engine, columns: dict[str, str], *, sample_rows: dict[str, int]) -> Aggregates:
    """Every full-data aggregate of ``columns`` (name → numeric, datetime or categorical)."""
    rows = {role: engine.rows(role) for role in ("reference", "production")}
    numeric = {n: k for n, k in columns.items() if k in ("numeric", "datetime")}
    categorical = [n for n, k in columns.items() if k not in ("numeric", "datetime")]
    result: dict[str, ColumnAggregate] = {}
    quant = {role: _quantiles(engine, role, numeric, rows[role]) for role in ("reference", "production")}
    grids: dict[str, tuple[str, np.ndarray]] = {}
    for n, kind in numeric.items():
        qa, qb = quant["reference"][n], quant["production"][n]
        parts = [qa[np.isfinite(qa)], qb[np.isfinite(qb)], _hist_edges(qa, qb, kind == "datetime")]
        grids[n] = (kind, np.unique(np.concatenate(parts)))
        result[n] = ColumnAggregate(kind=kind, quantiles=(qa, qb), grid=grids[n][1])
    for n in categorical:
        result[n] = ColumnAggregate(kind="categorical")
    counted = {role: engine.query(counts_query(role, grids, categorical))
               for role in ("reference", "production")} if (grids or categorical) else {}
    cat_counts: dict[str, list[dict]] = {n: [{}, {}] for n in categorical}
    for side, role in enumerate(("reference", "production")):
        table = counted[role]
        for i, n in enumerate(grids):
            part = table[table[f"b{i}"].notna()]
            b = part[f"b{i}"].to_numpy(np.int64)
            k = part["n"].to_numpy(np.int64)
            counts = np.zeros(len(grids[n][1]) + 1, np.int64)
            ok = b >= 0
            np.add.at(counts, b[ok], k[ok])
            agg = result[n]
            agg.counts = (counts,) if side == 0 else (agg.counts[0], counts)
            agg.missing = _set(agg.missing, side, int(k[b == -1].sum()))
            agg.infinite = _set(agg.infinite, side, int(k[b == -2].sum()))
        for j, n in enumerate(categorical):
            part = table[table[f"g{j}"].astype(int) == 0]
            present = part[f"c{j}"].notna()
            result[n].missing = _set(result[n].missing, side, int(part.loc[~present, "n"].sum()))
            for value, k in zip(part.loc[present, f"c{j}"], part.loc[present, "n"], strict=True):
                label = category_label(value)
                cat_counts[n][side][label] = cat_counts[n][side].get(label, 0) + int(k)
    for n in categorical:
        ref, prod = cat_counts[n]
        labels = sorted(set(ref) | set(prod))
        result[n].labels = labels
        result[n].counts = (np.array([ref.get(c, 0) for c in labels], np.int64),
                            np.array([prod.get(c, 0) for c in labels], np.int64))
    return Aggregates(engine=engine.name, rows=rows, sample_rows=sample_rows, columns=result,
                      quantiles_exact=bool(engine.exact_quantiles
                                           and max(rows.values()) <= EXACT_QUANTILE_MAX_ROWS))


def _set(pair: tuple[int, int], side: int, value: int) -> tuple[int, int]:
    return (value, pair[1]) if side == 0 else (pair[0], value)


def group_rates(engine, role: str, group: str, conditions: dict[str, str]):
    """:func:`group_rates_query` run on ``engine``: one row per group value with its counts."""
    return engine.query(group_rates_query(role, group, conditions))
