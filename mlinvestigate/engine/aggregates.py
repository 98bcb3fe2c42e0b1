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
EXACT_QUANTILE_MAX_ROWS = 200_000_000  # above this a side's quantiles are approximate (t-digest)
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
def values_query(role: str, numeric: dict[str, str]) -> str:
    """Finite, missing (NULL or NaN) and infinite values of every numeric column on one side."""
    parts = []
    for i, (name, kind) in enumerate(numeric.items()):
        v = value_sql(name, kind)
        parts += [f"count(*) FILTER (WHERE {_finite(v)}) AS n{i}",
                  f"count(*) FILTER (WHERE {v} IS NULL OR isnan({v})) AS m{i}",
                  f"count(*) FILTER (WHERE abs({v}) = CAST('inf' AS DOUBLE)) AS i{i}"]
    return f"SELECT count(*) AS n_rows{', ' if parts else ''}{', '.join(parts)} FROM {role}"


def positions(n: int) -> list[int]:
    """0-based ranks of the fine quantiles of ``n`` sorted values (``np.quantile``'s lower rule)."""
    probs = np.arange(FINE + 1) / FINE
    return sorted(set(np.floor(probs * (n - 1)).astype(np.int64).tolist())) if n else []


def quantiles_query(role: str, columns: list[tuple[str, str, int]], *, exact: bool) -> str:
    """Fine quantiles of numeric columns' finite values; ``columns`` holds (name, kind, finite rows).

    Exact: each column's values sorted by the engine (which spills to disk past its memory limit),
    the rows at the quantiles' ranks kept, one ``UNION ALL`` branch per column (``c`` = its
    position, ``r`` = rank, ``v`` = value). Approximate (Spark, or past EXACT_QUANTILE_MAX_ROWS):
    ``approx_quantile`` (``percentile_approx`` on Spark), one list ``q<c>`` per column.
    """
    if not exact:
        probs = "[" + ", ".join(_literal(j / FINE) for j in range(FINE + 1)) + "]"
        parts = [f"approx_quantile({value_sql(name, kind)}, {probs}) FILTER (WHERE "
                 f"{_finite(value_sql(name, kind))}) AS q{c}" for c, (name, kind, _) in enumerate(columns)]
        return f"SELECT {', '.join(parts)} FROM {role}"
    branches = []
    for c, (name, kind, n) in enumerate(columns):
        ranks = ", ".join(map(str, positions(n)))
        branches.append(f"SELECT {c} AS c, r, v FROM (SELECT v, row_number() OVER (ORDER BY v) - 1 AS r FROM "
                        f"(SELECT {value_sql(name, kind)} AS v FROM {role}) AS s WHERE {_finite('v')}) AS t "
                        f"WHERE r IN ({ranks})")
    return " UNION ALL ".join(branches)


def bins_query(role: str, numeric: dict[str, tuple[str, np.ndarray]], *, native: bool) -> str:
    """Counts of every numeric column's finite values per grid bin ``(grid[i-1], grid[i]]``.

    ``native``: DuckDB's ``histogram(v, boundaries)`` aggregate, which bins exactly so (one scan,
    a binary search per value). Otherwise a portable binary search in plain SQL
    (:func:`search_sql`) grouped by bin, one grouping set per column: what Spark runs.
    """
    if native:
        parts = [f"histogram({value_sql(name, kind)}, {_array(grid)}) FILTER (WHERE "
                 f"{_finite(value_sql(name, kind))}) AS h{i}" for i, (name, (kind, grid)) in enumerate(numeric.items())]
        return f"SELECT {', '.join(parts)} FROM {role}"
    values, grids, keys = [], {}, []
    for i, (name, (kind, grid)) in enumerate(numeric.items()):
        values += [f"{value_sql(name, kind)} AS v{i}", f"{_array(grid)} AS g{i}"]
        grids[f"v{i}"] = (f"g{i}", len(grid))
        keys.append(f"CASE WHEN {_finite(f'v{i}')} THEN p_v{i} ELSE -1 END AS b{i}")
    carried = [f"v{i}" for i in range(len(numeric))]
    searched = search_sql(f"(SELECT {', '.join(values)} FROM {role}) AS s", carried, grids)
    names = [f"b{i}" for i in range(len(numeric))]
    sets = ", ".join(f"({b})" for b in names)
    return (f"SELECT {', '.join(names)}, count(*) AS n FROM (SELECT {', '.join(keys)} FROM ({searched}) AS found) "
            f"AS t GROUP BY GROUPING SETS ({sets})")


def categories_query(role: str, categorical: list[str]) -> str:
    """Rows per value of every categorical column (missing ones as NULL), one grouping set each."""
    keys = [f"{_ident(name)} AS c{j}" for j, name in enumerate(categorical)]
    flags = [f"grouping(c{j}) AS g{j}" for j in range(len(categorical))]
    sets = ", ".join(f"(c{j})" for j in range(len(categorical)))
    inner = f"SELECT {', '.join(keys)} FROM {role}"
    return (f"SELECT {', '.join(f'c{j}' for j in range(len(categorical)))}, {', '.join(flags)}, count(*) AS n "
            f"FROM ({inner}) AS t GROUP BY GROUPING SETS ({sets})")


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


QUANTILE_BATCH = 10  # columns sorted per query


def _quantiles(engine, role: str, columns: list[tuple[str, str, int]], exact: bool) -> dict[str, np.ndarray]:
    """The fine quantiles at ``j / FINE`` of each column on one side (NaN when it has no values)."""
    out = {name: np.full(FINE + 1, np.nan) for name, _, n in columns if n == 0}
    todo = [col for col in columns if col[2] > 0]
    for start in range(0, len(todo), QUANTILE_BATCH):
        batch = todo[start:start + QUANTILE_BATCH]
        table = engine.query(quantiles_query(role, batch, exact=exact))
        for c, (name, _, n) in enumerate(batch):
            if not exact:
                out[name] = np.asarray(list(table[f"q{c}"].iloc[0]), dtype=float)
                continue
            part = table[table["c"].astype(int) == c]
            by_rank = dict(zip(part["r"].astype(np.int64), part["v"].astype(float), strict=True))
            ranks = np.floor(np.arange(FINE + 1) / FINE * (n - 1)).astype(np.int64)
            out[name] = np.array([by_rank[r] for r in ranks], dtype=float)
    return out


def _bin_counts(engine, role: str, grids: dict[str, tuple[str, np.ndarray]]) -> dict[str, np.ndarray]:
    native = getattr(engine, "native_histogram", False)
    table = engine.query(bins_query(role, grids, native=native))
    out = {}
    for i, (name, (_, grid)) in enumerate(grids.items()):
        counts = np.zeros(len(grid) + 1, np.int64)
        if native:
            found = table[f"h{i}"].iloc[0]
            if isinstance(found, dict) and set(found) == {"key", "value"}:
                found = dict(zip(found["key"], found["value"], strict=True))
            for edge, k in (found or {}).items():
                counts[np.searchsorted(grid, edge) if np.isfinite(edge) else len(grid)] += int(k)
        else:
            part = table[table[f"b{i}"].notna()]
            b, k = part[f"b{i}"].to_numpy(np.int64), part["n"].to_numpy(np.int64)
            ok = b >= 0
            np.add.at(counts, b[ok], k[ok])
        out[name] = counts
    return out


def compute(engine, columns: dict[str, str], *, sample_rows: dict[str, int]) -> Aggregates:
    """Every full-data aggregate of ``columns`` (name → numeric, datetime or categorical)."""
    roles = ("reference", "production")
    numeric = {n: k for n, k in columns.items() if k in ("numeric", "datetime")}
    categorical = [n for n, k in columns.items() if k not in ("numeric", "datetime")]
    counted = {role: engine.query(values_query(role, numeric)).iloc[0] for role in roles}
    rows = {role: int(counted[role]["n_rows"]) for role in roles}
    exact = bool(engine.exact_quantiles and max(rows.values()) <= EXACT_QUANTILE_MAX_ROWS)
    result: dict[str, ColumnAggregate] = {}
    grids: dict[str, tuple[str, np.ndarray]] = {}
    quantiles = {role: _quantiles(engine, role, [(name, kind, int(counted[role][f"n{i}"]))
                                                 for i, (name, kind) in enumerate(numeric.items())], exact)
                 for role in roles}
    for i, (name, kind) in enumerate(numeric.items()):
        qa, qb = quantiles["reference"][name], quantiles["production"][name]
        parts = [qa[np.isfinite(qa)], qb[np.isfinite(qb)], _hist_edges(qa, qb, kind == "datetime")]
        grid = np.unique(np.concatenate(parts))
        grids[name] = (kind, grid)
        result[name] = ColumnAggregate(
            kind=kind, quantiles=(qa, qb), grid=grid,
            missing=tuple(int(counted[role][f"m{i}"]) for role in roles),
            infinite=tuple(int(counted[role][f"i{i}"]) for role in roles))
    if grids:
        binned = {role: _bin_counts(engine, role, grids) for role in roles}
        for name in grids:
            result[name].counts = (binned["reference"][name], binned["production"][name])
    if categorical:
        tables = {role: engine.query(categories_query(role, categorical)) for role in roles}
        for j, name in enumerate(categorical):
            sides, missing = [{}, {}], [0, 0]
            for s, role in enumerate(roles):
                table = tables[role]
                part = table[table[f"g{j}"].astype(int) == 0]
                present = part[f"c{j}"].notna()
                missing[s] = int(part.loc[~present, "n"].sum())
                for value, k in zip(part.loc[present, f"c{j}"], part.loc[present, "n"], strict=True):
                    label = category_label(value)
                    sides[s][label] = sides[s].get(label, 0) + int(k)
            labels = sorted(set(sides[0]) | set(sides[1]))
            result[name] = ColumnAggregate(
                kind="categorical", labels=labels, missing=tuple(missing),
                counts=tuple(np.array([side.get(c, 0) for c in labels], np.int64) for side in sides))
    return Aggregates(engine=engine.name, rows=rows, sample_rows=sample_rows, columns=result,
                      quantiles_exact=exact)


def _set(pair: tuple[int, int], side: int, value: int) -> tuple[int, int]:
    return (value, pair[1]) if side == 0 else (pair[0], value)


def group_rates(engine, role: str, group: str, conditions: dict[str, str]):
    """:func:`group_rates_query` run on ``engine``: one row per group value with its counts."""
    return engine.query(group_rates_query(role, group, conditions))
