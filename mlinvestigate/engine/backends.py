"""DuckDB and Spark: register the two sources as views, run SQL, draw seeded samples.

Both take SQL in DuckDB's dialect (what :mod:`.aggregates` builds); Spark's is transpiled with
sqlglot. Results come back as small pandas frames.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..spec import IncidentSpec, TableSource, table_files

ROLES = ("reference", "production")


def _short(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _label(role: str) -> str:
    """A view's name as the spec's key that filled it."""
    return "serving.offline" if role == "offline" else role


def _quote_path(p: Path) -> str:
    return "'" + str(p).replace("'", "''") + "'"


class DuckDBEngine:
    """An embedded DuckDB over the spec's files, database tables or queries.

    Memory is capped (``memory_limit``, 2 GB by default or ``MLINVESTIGATE_DUCKDB_MEMORY``) and
    DuckDB spills to a temporary folder beyond it.
    """

    name = "duckdb"
    dialect = "duckdb"
    native_histogram = True  # histogram(v, boundaries): counts per bin in one scan

    def __init__(self, spec: IncidentSpec):
        import duckdb

        dbs = {s.duckdb for s in (spec.reference, spec.production)
               if isinstance(s, TableSource) and s.duckdb is not None}
        if len(dbs) > 1:
            raise DataError("reference and production name different DuckDB databases "
                            f"({', '.join(sorted(map(str, dbs)))}); put both tables in one database, or "
                            "read one side from files.")
        database = str(next(iter(dbs))) if dbs else ":memory:"
        try:
            self.con = duckdb.connect(database, read_only=bool(dbs))
        except Exception as exc:  # noqa: BLE001 - every reader error becomes one clear message
            raise DataError(f"DuckDB database {database!r} could not be opened: {_short(exc)}") from None
        self.con.execute(f"SET memory_limit = '{os.environ.get('MLINVESTIGATE_DUCKDB_MEMORY', '2GB')}'")
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute("SET enable_progress_bar = false")  # the load draws its own, per phase
        # With union_by_name, DuckDB 2.0's statistics propagation takes parquet columns holding NaN
        # for columns without any: isnan() is then always false and max() returns NaN.
        self.con.execute("SET disabled_optimizers = 'statistics_propagation'")
        try:  # days are UTC days, as on Spark (spark.sql.session.timeZone) and in pandas
            self.con.execute("SET TimeZone = 'UTC'")
        except Exception:  # noqa: BLE001 - without the ICU extension DuckDB has no time zones at all
            pass
        self.threads = int(self.con.execute("SELECT current_setting('threads')").fetchall()[0][0])
        # read as text from CSV: a model version "2.10" must not become 2.1
        cols = spec.columns
        self.text_columns = [c for c in (cols.model_version, cols.label_source, cols.status) if c]
        self.located: dict[str, tuple[str, int]] = {}
        for role in ROLES:
            self._register(role, getattr(spec, role))
        if spec.serving.offline is not None:  # joined to production by id (aggregates.offline_join_query)
            self._register("offline", spec.serving.offline)

    def _register(self, role: str, source) -> None:
        if isinstance(source, TableSource):
            body = source.sql if source.sql else f"SELECT * FROM {source.table}"
        else:
            files = table_files(Path(source))
            if not files:
                raise DataError(f"{_label(role)} {str(source)!r} holds no .csv or .parquet file.")
            listed = "[" + ", ".join(_quote_path(f) for f in files) + "]"
            if files[0].name.lower().endswith((".parquet", ".pq")):
                body = f"SELECT * FROM read_parquet({listed}, hive_partitioning = true, union_by_name = true)"
                # the same files with each row's file and position, for the seeded sample
                base = Path(source) if Path(source).is_dir() else Path(os.path.commonpath([str(f) for f in files]))
                self.located[role] = (f"read_parquet({listed}, hive_partitioning = true, union_by_name = true, "
                                      f"filename = true, file_row_number = true)", len(str(base)) + 1)
            else:
                header = self.con.execute(f"SELECT * FROM read_csv({listed}, union_by_name = true) LIMIT 0")
                text = [c for c in self.text_columns if c in [d[0] for d in header.description]]
                types = ("{" + ", ".join(f"'{c}': 'VARCHAR'" for c in text) + "}") if text else "{}"
                body = f"SELECT * FROM read_csv({listed}, union_by_name = true, types = {types})"
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {role} AS {body}")
            self.con.execute(f"SELECT * FROM {role} LIMIT 0")
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{_label(role)} {str(source)!r} could not be read by DuckDB: {_short(exc)}") from None

    def query(self, sql: str) -> pd.DataFrame:
        return self.con.execute(sql).fetch_df()

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        """A small driver-side frame (the sample's ids) as a view queries can join."""
        self.con.register(name, frame)

    def rows_of(self, sql: str) -> pd.DataFrame:
        """A query's rows as a frame, typed as the samples are (rows, not an aggregate)."""
        return self.con.sql(sql).to_arrow_table().to_pandas()

    def rows(self, role: str) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {role}").fetchall()[0][0])

    def columns(self, role: str) -> list[str]:
        return [d[0] for d in self.con.execute(f"SELECT * FROM {role} LIMIT 0").description]

    def sample(self, role: str, n: int, seed: int) -> pd.DataFrame:
        """At most ``n`` rows drawn uniformly with ``seed``; the same rows on every run.

        Parquet files: the ``n`` rows with the smallest hash of (file name below the source folder,
        row number in the file, seed), a uniform sample without replacement (a bottom-k sample)
        that every thread computes alike, so DuckDB draws it in parallel; a filter on the hash
        keeps about 1.2 n rows before the top-n (redone without it in the rare case it keeps fewer
        than n). At 1M rows × 54 columns: 1.5 CPU seconds against 3.7 for the single-threaded
        reservoir sample, which tables, queries and CSV files still use.
        """
        total = self.rows(role)
        if role in self.located and total > n:
            source, cut = self.located[role]
            key = f"hash(substr(filename, {cut}), file_row_number, {int(seed)})"
            limit = min(2**64 - 1, int(1.2 * n / total * 2**64) + 1)
            for where in (f"WHERE h < CAST({limit} AS UBIGINT)", ""):
                table = self.con.sql(
                    f"SELECT * EXCLUDE (filename, file_row_number, h) FROM (SELECT *, {key} AS h FROM {source}) "
                    f"AS t {where} ORDER BY h LIMIT {int(n)}").to_arrow_table()
                if table.num_rows == n:
                    break
            return table.to_pandas()
        self.con.execute("SET threads = 1")
        try:
            table = self.con.sql(
                f"SELECT * FROM {role} USING SAMPLE reservoir({int(n)} ROWS) REPEATABLE ({int(seed)})").to_arrow_table()
        finally:
            self.con.execute(f"SET threads = {self.threads}")
        return table.to_pandas()

    def close(self) -> None:
        self.con.close()


_SPARK = None


def spark_session(spec: IncidentSpec):
    """One Spark session per process, built from ``spark.master`` and ``spark.conf``."""
    global _SPARK
    if _SPARK is not None:
        return _SPARK
    import importlib

    try:  # an optional dependency: pip install 'mlinvestigate[spark]'
        SparkSession = importlib.import_module("pyspark.sql").SparkSession  # noqa: N806
    except ImportError:
        raise DataError("engine: spark needs pyspark: pip install 'mlinvestigate[spark]' "
                        "(and a Java runtime).") from None
    builder = (SparkSession.builder.master(spec.spark.master).appName("mlinvestigate")
               .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "8").config("spark.sql.ansi.enabled", "false"))
    for key, value in spec.spark.conf.items():
        builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
    _SPARK = builder.getOrCreate()
    _SPARK.sparkContext.setLogLevel("ERROR")
    return _SPARK


class SparkEngine:
    """A Spark session (``local[*]`` by default) with temp views over files, catalog tables or SQL."""

    name = "spark"
    dialect = "spark"
    native_histogram = False  # no histogram aggregate: Spark ML's Bucketizer finds the bins (searched_bins)

    def __init__(self, spec: IncidentSpec):
        self.spark = spark_session(spec)
        self.frames = {}
        for role in ROLES:
            self._register(role, getattr(spec, role))
        if spec.serving.offline is not None:  # joined to production by id (aggregates.offline_join_query)
            self._register("offline", spec.serving.offline)

    def _register(self, role: str, source) -> None:
        try:
            if isinstance(source, TableSource):
                df = self.spark.sql(source.sql) if source.sql else self.spark.table(source.table)
            else:
                path = Path(source)
                files = table_files(path)
                if not files:
                    raise DataError(f"{_label(role)} {str(source)!r} holds no .csv or .parquet file.")
                parquet = files[0].name.lower().endswith((".parquet", ".pq"))
                reader = self.spark.read
                if path.is_dir():
                    reader = reader.option("basePath", str(path))  # hive partitions become columns
                names = [str(f) for f in files]
                df = (reader.parquet(*names) if parquet
                      else reader.option("header", True).option("inferSchema", True).csv(names))
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{_label(role)} {str(source)!r} could not be read by Spark: {_short(exc)}") from None
        df.createOrReplaceTempView(role)
        self.frames[role] = df

    def query(self, sql: str) -> pd.DataFrame:
        rows = self.spark.sql(self._dialect(sql)).collect()
        return pd.DataFrame([r.asDict() for r in rows])

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        """A small driver-side frame (the sample's ids) as a temp view queries can join."""
        self.spark.createDataFrame(frame).createOrReplaceTempView(name)

    def rows_of(self, sql: str) -> pd.DataFrame:
        """A query's rows as a frame, typed as the samples are (rows, not an aggregate)."""
        return self.spark.sql(self._dialect(sql)).toPandas()

    def searched_bins(self, role: str, grids: dict) -> pd.DataFrame:
        """Rows per grid bin ``(grid[i-1], grid[i]]`` of each numeric column (the table of
        :func:`.aggregates.searched_bins_query`).

        Bucketizer's buckets are ``[s[j], s[j+1])``; with the split points one double above the
        grid's, ``s[j] <= v`` holds exactly when ``grid[j] < v``, so the bucket is the number of grid
        points below ``v``: ``np.searchsorted(grid, v, side="left")``, the bin of the other engines.
        """
        from pyspark.ml.feature import Bucketizer

        from .aggregates import searched_bins_query, values_only_query

        df = self.spark.sql(self._dialect(values_only_query(role, grids)))
        splits = {}
        for i, (_, grid) in enumerate(grids.values()):
            if len(grid):
                splits[i] = [-np.inf, *np.nextafter(np.asarray(grid, dtype=float), np.inf).tolist(), np.inf]
            else:  # no grid point: every finite value is in the one bin
                df = df.withColumn(f"p{i}", df[f"v{i}"] * 0)
        if splits:
            df = Bucketizer(splitsArray=list(splits.values()), inputCols=[f"v{i}" for i in splits],
                            outputCols=[f"p{i}" for i in splits], handleInvalid="keep").transform(df)
        view = f"mli_bins_{role}"
        df.createOrReplaceTempView(view)
        return self.query(searched_bins_query(view, len(grids)))

    def _dialect(self, sql: str) -> str:
        """A query written in DuckDB's dialect, as Spark SQL."""
        import sqlglot
        from sqlglot import exp

        def fix(node):
            # DuckDB's epoch_us is Spark's unix_micros
            if isinstance(node, exp.Anonymous) and str(node.this).lower() == "epoch_us":
                node.set("this", "UNIX_MICROS")
            return node

        return sqlglot.parse_one(sql, read="duckdb").transform(fix, copy=False).sql(dialect="spark")

    def rows(self, role: str) -> int:
        return int(self.frames[role].count())

    def columns(self, role: str) -> list[str]:
        return list(self.frames[role].columns)

    def sample(self, role: str, n: int, seed: int) -> pd.DataFrame:
        df = self.frames[role]
        total = self.rows(role)
        if total > n:
            # Bernoulli with a margin, then the first n: deterministic for a fixed seed and input
            df = df.sample(withReplacement=False, fraction=min(1.0, 1.1 * n / total + 1e-3), seed=seed).limit(n)
        return df.toPandas()

    def close(self) -> None:
        pass
