"""Where the rows are read and aggregated: pandas in memory, DuckDB on one machine, Spark on a cluster.

``engine: auto | pandas | duckdb | spark`` in the spec picks one (:func:`choose`). The pandas engine
is the in-memory path of :mod:`mlinvestigate.data`. The other two never hold more than a seeded
sample of each side in memory (``sample_rows``, 200,000 a side by default, drawn by the engine):
every statistic that needs all the rows is one SQL aggregation defined once in
:mod:`.aggregates` (DuckDB's dialect, built with sqlglot and transpiled for Spark) and executed
where the data lives; only its small result (counts per bin, quantiles, counts per category) comes
back (:class:`.aggregates.Aggregates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..spec import IncidentSpec, TableSource, table_files

ENGINES = ("pandas", "duckdb", "spark")
# auto: above this many rows in both files together, DuckDB (2.5 GB per million rows × 50 features
# in pandas); a table or query source always needs DuckDB.
AUTO_ROWS = 3_000_000


@dataclass(frozen=True)
class Choice:
    engine: str
    reason: str

    def describe(self, sample_rows: int) -> str:
        """One sentence for the pages: which engine ran and what it kept in memory."""
        if self.engine == "pandas":
            return f"Engine: pandas ({self.reason}): every statistic reads every row in memory."
        return (f"Engine: {self.engine} ({self.reason}): row counts, missing and infinite values, drift "
                f"statistics (PSI, KS, chi-square, Jensen–Shannon) are aggregated over every row by "
                f"{self.engine}; everything else (model-based statistics, rates by day or segment, figures) "
                f"uses a seeded sample of at most {sample_rows:,} rows a side drawn by {self.engine}.")


def estimated_rows(source) -> int | None:
    """Rows of a parquet source from its footers (no data read); None when unknown (CSV, tables)."""
    if isinstance(source, TableSource):
        return None
    files = table_files(Path(source))
    if not files or not all(f.name.lower().endswith((".parquet", ".pq")) for f in files):
        return None
    import pyarrow.parquet as pq

    try:
        return int(sum(pq.read_metadata(f).num_rows for f in files))
    except Exception:  # noqa: BLE001 - unreadable footers are reported by the reader later
        return None


def choose(spec: IncidentSpec) -> Choice:
    """The engine the spec asks for; for ``auto``, DuckDB for tables, queries and large files."""
    if spec.engine != "auto":
        return Choice(spec.engine, "set in the spec")
    sources = (spec.reference, spec.production)
    if any(isinstance(s, TableSource) for s in sources):
        return Choice("duckdb", "auto: a source is a DuckDB table or query")
    rows = [estimated_rows(s) for s in sources]
    if all(r is not None for r in rows) and sum(rows) > AUTO_ROWS:
        if _has_duckdb():
            return Choice("duckdb", f"auto: {sum(rows):,} rows in both files, above {AUTO_ROWS:,}")
        return Choice("pandas", f"auto: {sum(rows):,} rows, but duckdb is not installed")
    if any(r is None for r in rows):
        size = sum(f.stat().st_size for s in sources for f in table_files(Path(s)))
        if size > 1 << 30 and _has_duckdb():
            return Choice("duckdb", f"auto: {size / 2**30:.1f} GB of files")
    total = sum(r for r in rows if r is not None)
    return Choice("pandas", f"auto: {total:,} rows fit in memory" if total else "auto: small files")


def _has_duckdb() -> bool:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return False
    return True


def connect(spec: IncidentSpec, engine: str):
    """An engine with views ``reference`` and ``production`` over the spec's sources."""
    if engine == "duckdb":
        from .backends import DuckDBEngine

        return DuckDBEngine(spec)
    if engine == "spark":
        from .backends import SparkEngine

        return SparkEngine(spec)
    raise DataError(f"engine {engine!r} does not aggregate in place; use duckdb or spark.")
