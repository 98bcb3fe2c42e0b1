"""Loading an incident's data once, typing its columns and comparing the two schemas.

:func:`load_incident` turns a spec into an :class:`Incident`: typed reference, production and (if
given) offline-recomputed frames, the column roles resolved, every feature typed numeric,
categorical, boolean or datetime, and the warnings a reader should see. The runner writes a
columnar cache (:meth:`Incident.save_cache`) that every notebook of a run reads back instead of
parsing the source files again.
"""

from __future__ import annotations

import csv as _csv
import gzip
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import engine as _engines
from . import thresholds as _thresholds
from .display import listing, number, percent, scalar, text
from .errors import DataError
from .spec import IncidentSpec, load_spec, table_files
from .stats.triage_time import parse_datetime

FEATURE_TYPES = ("numeric", "categorical", "boolean", "datetime")
_CACHE_VERSION = 3


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file; of a folder or glob, the sha256 of its files' names and hashes, so it
    changes when any file is added, removed, renamed or edited."""
    files = table_files(path)
    if files != [path]:
        lines = "".join(f"{_relative(f, path)}\t{sha256_of(f)}\n" for f in files)
        return hashlib.sha256(lines.encode()).hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _relative(file: Path, base: Path) -> str:
    root = base if base.is_dir() else base.parent
    while any(ch in root.name for ch in "*?["):
        root = root.parent
    try:
        return file.relative_to(root).as_posix()
    except ValueError:
        return file.as_posix()


_SEPARATORS = {",": "','", ";": "';'", "\t": "a tab", "|": "'|'"}
_COMMA_NUMBER = re.compile(r"^\s*[+-]?\d*,\d+\s*$")
_DOT_NUMBER = re.compile(r"^\s*[+-]?\d*\.\d+(?:[eE][+-]?\d+)?\s*$")


def csv_dialect(path: Path, *, sample_bytes: int = 1 << 16) -> tuple[str, str]:
    """The separator and decimal point of a CSV file, read from its first lines.

    The separator is the candidate (``,``, ``;``, tab, ``|``) that splits every sampled line into
    the same number of fields, more than one, the most fields winning (quotes respected). A file
    separated by ``;`` or tabs whose numbers are written ``1,5`` (and none ``1.5``) uses the
    decimal comma, as spreadsheets in most of Europe save them.
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as fh:
        head = fh.read(sample_bytes)
        more = bool(fh.read(1))
    lines = head.splitlines()
    if more and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut in the middle
    lines = [line for line in lines[:200] if line.strip()]
    best, best_fields = ",", 0
    for sep in (",", "\t", ";", "|"):
        try:
            widths = {len(row) for row in _csv.reader(lines, delimiter=sep)}
        except _csv.Error:
            continue
        if len(widths) == 1 and (n := widths.pop()) > max(best_fields, 1):
            best, best_fields = sep, n
    decimal = "."
    if best in ("\t", ";") and len(lines) > 1:
        cells = [c for row in _csv.reader(lines[1:], delimiter=best) for c in row]
        if any(_COMMA_NUMBER.match(c) for c in cells) and not any(_DOT_NUMBER.match(c) for c in cells):
            decimal = ","
    return best, decimal


def read_table(path: Path, role: str, *, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV or Parquet file, a folder of them or a glob, naming the file and role in any error.

    CSV separators and decimal commas are detected (:func:`csv_dialect`); a UTF-8 byte-order mark
    and gzip compression (``.csv.gz``) are handled. ``text_columns`` are read from CSV as text: a
    model version "2.10" must not become 2.1.
    """
    files = table_files(path)
    if not files:
        raise DataError(f"{role} {str(path)!r} holds no .csv or .parquet file.")
    parquet = files[0].name.lower().endswith((".parquet", ".pq"))
    try:
        if parquet:
            if files == [path]:
                return pd.read_parquet(path)
            import pyarrow.dataset as ds

            source = str(path) if path.is_dir() else [str(f) for f in files]
            return ds.dataset(source, format="parquet", partitioning="hive").to_table().to_pandas()
    except Exception as exc:  # noqa: BLE001 - every reader error becomes one clear message
        raise DataError(f"{role} {str(path)!r} could not be read as Parquet: {_short(exc)}") from None
    frames = [_read_csv(f, role, text_columns) for f in files]
    if len(frames) == 1:
        return frames[0]
    columns = [list(f.columns) for f in frames]
    if any(c != columns[0] for c in columns):
        odd = next(f for f, c in zip(files, columns, strict=True) if c != columns[0])
        raise DataError(f"{role} {str(path)!r}: file {odd.name!r} does not have the same columns as "
                        f"{files[0].name!r}; every file of a folder or glob must share one header.")
    return pd.concat(frames, ignore_index=True)


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _read_csv(path: Path, role: str, text_columns: tuple[str, ...]) -> pd.DataFrame:
    import pyarrow as pa
    from pyarrow import csv, string

    try:
        sep, decimal = csv_dialect(path)
    except (OSError, UnicodeError) as exc:
        raise DataError(f"{role} file {str(path)!r} could not be read: {_short(exc)}") from None
    seen = _SEPARATORS[sep] + (" with decimal commas" if decimal == "," else "")
    # empty cells are missing values (an unlabelled row), as pandas reads them
    options = csv.ConvertOptions(column_types={c: string() for c in text_columns},
                                 strings_can_be_null=True, decimal_point=decimal)
    try:
        arrow = csv.read_csv(path, parse_options=csv.ParseOptions(delimiter=sep), convert_options=options)
        # pyarrow keeps text that is not valid UTF-8 as raw bytes; decoding it with a guessed
        # encoding could garble it silently, so such a file is refused with the column named.
        raw = [f.name for f in arrow.schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
        if raw:
            raise DataError(f"{role} file {str(path)!r}: column {raw[0]!r} is not UTF-8 text (an export in "
                            "a local encoding such as Windows-1252?). Save the file as UTF-8 "
                            "(spreadsheets call it 'CSV UTF-8').")
        table = arrow.to_pandas()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - every reader error becomes one clear message
        hint = (" Save it as UTF-8 (spreadsheets call it 'CSV UTF-8')." if "UTF8" in str(exc).upper() else "")
        raise DataError(f"{role} file {str(path)!r} could not be read as a CSV separated by {seen}: "
                        f"{_short(exc)}.{hint}") from None
    if table.shape[1] == 1:
        name = str(table.columns[0])
        other = next((s for s in (";", "\t", "|", ",") if s != sep and s in name), None)
        if other is not None:
            raise DataError(f"{role} file {str(path)!r} reads as one column {name!r}: its lines do not split "
                            f"evenly on {_SEPARATORS[other]} (the separator seen in its header). Check "
                            "that every line has as many fields as the header, with quotes around values "
                            "that contain the separator.")
    return table


def sample_rows(df: pd.DataFrame, n: int, *, seed: int = 0) -> pd.DataFrame:
    """At most ``n`` rows of ``df``, drawn without replacement with a fixed seed (order kept)."""
    if len(df) <= n:
        return df
    idx = np.sort(np.random.default_rng(seed).choice(len(df), n, replace=False))
    return df.iloc[idx]


def feature_type(s: pd.Series) -> str:
    """numeric, categorical, boolean or datetime: the rule every check uses to pick its statistics."""
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "datetime"
    if pd.api.types.is_numeric_dtype(s):
        return "numeric"
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) == "boolean":
        return "boolean"  # Python or NumPy booleans with missing values (infer_dtype scans in C)
    return "categorical"


def _normalise_labels(s: pd.Series) -> pd.Series:
    """Integral floats (ints that picked up NaN) back to integers; everything else untouched."""
    if pd.api.types.is_float_dtype(s):
        vals = s.dropna()
        if len(vals) and np.all(np.isfinite(vals)) and np.all(vals == np.round(vals)):
            return s.astype("Int64")
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_integer_dtype(s):
        return s
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.astype(object).where(s.notna(), None)
    return s


def _same_label_space(*series: pd.Series) -> list[pd.Series]:
    """Make labels from different files comparable (e.g. 1 in one file and "1" in another)."""
    kinds = {("text" if (s.dtype == object or pd.api.types.is_string_dtype(s)) else "value")
             for s in series if s.notna().any()}
    if len(kinds) <= 1:
        return list(series)
    return [s.astype("string").astype(object).where(s.notna(), None) for s in series]


@dataclass
class Incident:
    """An incident's data, typed and ready for the checks.

    Attributes
    ----------
    spec : IncidentSpec
    reference, production : DataFrame
        Every source column, typed; production always has the target column (NA = not labelled yet).
    offline : DataFrame or None
        Production rows recomputed offline (``serving.offline``), when given.
    features : list of str
        The features both files share, in spec order.
    feature_types : dict
        Feature → one of :data:`FEATURE_TYPES`.
    kind : str
        ``binary``, ``multiclass`` or ``regression``.
    classes : list
        Sorted class labels (classification), empty for regression.
    positive_label
        The positive class for binary tasks.
    warnings : list of str
        Problems a reader should know about that do not stop the investigation.
    inputs : list of dict
        ``role``, ``path``, ``sha256``, ``rows`` of every file read.
    identifier_like : list of str
        Categorical columns with about as many distinct values as rows (ids, free text): left out
        of ``features`` because distribution statistics mean nothing on them (:func:`identifier_like`).
    duplicate_ids : dict
        ``production`` / ``serving.offline`` → rows whose ``columns.id`` repeats an earlier row.
    """

    spec: IncidentSpec
    reference: pd.DataFrame
    production: pd.DataFrame
    offline: pd.DataFrame | None
    features: list[str]
    feature_types: dict[str, str]
    kind: str
    classes: list = field(default_factory=list)
    positive_label: Any = None
    warnings: list[str] = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)
    missing_in_production: list[str] = field(default_factory=list)
    trust_model: bool = False
    identifier_like: list[str] = field(default_factory=list)
    duplicate_ids: dict[str, int] = field(default_factory=dict)
    # the engine that read the sources (mlinvestigate.engine) and, for duckdb/spark, the exact
    # full-data aggregates; the frames above are then seeded samples of each side
    engine: str = "pandas"
    engine_note: str = ""
    aggregates: Any = None

    @property
    def rows(self) -> dict[str, int]:
        """Rows of each side in the source data (more than the frames hold when they are samples)."""
        if self.aggregates is not None:
            return dict(self.aggregates.rows)
        return {"reference": len(self.reference), "production": len(self.production)}

    # --- column roles -------------------------------------------------------------------------
    @property
    def columns(self):
        return self.spec.columns

    @property
    def target(self) -> str:
        return self.spec.columns.target

    @property
    def prediction(self) -> str:
        return self.spec.columns.prediction

    @property
    def score(self) -> str | None:
        return self.spec.columns.score

    @property
    def is_classification(self) -> bool:
        return self.kind in ("binary", "multiclass")

    @property
    def labelled(self) -> pd.Series:
        """Boolean mask of production rows that have a label."""
        return self.production[self.target].notna()

    @property
    def labelled_production(self) -> pd.DataFrame:
        return self.production[self.labelled.to_numpy()]

    @property
    def numeric_features(self) -> list[str]:
        return [f for f in self.features if self.feature_types[f] in ("numeric", "datetime")]

    @property
    def categorical_features(self) -> list[str]:
        return [f for f in self.features if self.feature_types[f] in ("categorical", "boolean")]

    def threshold(self, section: str, key: str) -> float:
        """The threshold in force for ``section.key`` (spec override or documented default)."""
        return _thresholds.resolve(self.spec.thresholds, section, key)

    def to_positive(self, labels: pd.Series) -> np.ndarray:
        """Binary tasks: 1.0 where ``labels`` is the positive class, 0.0 otherwise, NaN where missing."""
        out = np.where(labels.eq(self.positive_label).fillna(False).to_numpy(bool), 1.0, 0.0)
        out[labels.isna().to_numpy()] = np.nan
        return out

    # --- cache --------------------------------------------------------------------------------
    def save_cache(self, folder: Path) -> Path:
        """Write the typed frames and metadata so notebooks of this run skip parsing."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in (("reference", self.reference), ("production", self.production),
                            ("offline", self.offline)):
            if frame is not None:
                _write_frame(frame, folder / f"{name}.arrow")
        meta = {
            "version": _CACHE_VERSION, "spec": str(self.spec.source), "features": self.features,
            "feature_types": self.feature_types, "kind": self.kind,
            "classes": [_jsonable(c) for c in self.classes],
            "positive_label": _jsonable(self.positive_label), "warnings": self.warnings,
            "inputs": self.inputs, "missing_in_production": self.missing_in_production,
            "identifier_like": self.identifier_like, "duplicate_ids": self.duplicate_ids,
            "engine": self.engine, "engine_note": self.engine_note,
        }
        (folder / "incident.json").write_text(json.dumps(meta, indent=1))
        if self.aggregates is not None:
            (folder / "aggregates.json").write_text(json.dumps(self.aggregates.to_json()))
        return folder


def _jsonable(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


_CACHED: dict[tuple, Incident] = {}


def load_incident(spec: IncidentSpec | str | Path, *, cache: str | Path | None = None,
                  trust_model: bool = False, progress: Callable[[str], None] | None = None) -> Incident:
    """Load an incident: read the files once, type the columns, compare the schemas.

    Parameters
    ----------
    spec : IncidentSpec or path
        The spec, or the path of ``incident.yaml``.
    cache : path, optional
        A folder written by :meth:`Incident.save_cache` in this run; read instead of the sources.
    trust_model : bool
        Allow unpickling the model file even when its checksum does not match the spec.
    progress : callable, optional
        The command line's progress callback: with it (or when stderr is a terminal) a load
        through DuckDB or Spark draws a progress bar per phase on stderr.

    Raises
    ------
    SpecError, DataError
        With a message naming the file, key or column and how to fix it.
    """
    if not isinstance(spec, IncidentSpec):
        spec = load_spec(spec)
    if cache and (Path(cache) / "incident.json").exists():
        # A run's kernels execute several notebooks each: the cache is read once per kernel.
        key = (str(Path(cache).resolve()), str(spec.source), trust_model)
        if key not in _CACHED:
            _CACHED.clear()  # one run's incident at a time
            _CACHED[key] = _from_cache(spec, Path(cache), trust_model)
            _CACHED[key].results = {}  # findings one page computes and another reads (the run's data is fixed)
        return _CACHED[key]

    choice = _engines.choose(spec)
    if choice.engine != "pandas":
        return _load_with_engine(spec, choice, trust_model, progress)
    from concurrent.futures import ThreadPoolExecutor

    sources = {role: path for role, path in (("reference", spec.reference), ("production", spec.production),
                                             ("serving.offline", spec.serving.offline), ("model", spec.model.path))
               if path is not None}
    # the checksums are read in a thread while the tables are parsed (hashlib releases the GIL)
    with ThreadPoolExecutor(max_workers=1) as pool:
        digests = {role: pool.submit(sha256_of, path) for role, path in sources.items()}
        frames = {}
        text_cols = tuple(c for c in (spec.columns.model_version, spec.columns.label_source, spec.columns.status)
                          if c is not None)
        for role, path in sources.items():
            if role != "model":
                frames[role] = read_table(path, role, text_columns=text_cols)
        inputs = [{"role": role, "path": str(path), "sha256": digests[role].result(),
                   "rows": int(len(frames[role])) if role in frames else None}
                  for role, path in sources.items()]
    incident = _build(spec, frames["reference"], frames["production"], frames.get("serving.offline"),
                      inputs, trust_model)
    incident.engine_note = choice.describe(spec.sample_rows)
    return incident


def aggregate_columns(incident: Incident) -> dict[str, str]:
    """The columns whose full-data aggregates an engine computes: every feature, the score and the
    prediction (numeric, datetime or categorical, as the drift check compares them)."""
    out = {f: ("categorical" if t in ("categorical", "boolean") else t)
           for f, t in incident.feature_types.items()}
    for col in (incident.score, incident.prediction):
        if col and col in incident.reference.columns and col in incident.production.columns:
            out[col] = "numeric" if (col == incident.score or not incident.is_classification) else "categorical"
    return out


def _load_with_engine(spec: IncidentSpec, choice, trust_model: bool,
                      progress: Callable[[str], None] | None = None) -> Incident:
    """Sample each side through DuckDB or Spark, type the sample, aggregate every row in place.

    A progress bar per phase (row counts, samples, each group of aggregates) on stderr when it
    is a terminal or ``progress`` is given (:class:`.engine.progress.Phases`).
    """
    from .engine.aggregates import compute, production_views, segment_counts
    from .engine.progress import Phases

    phases = Phases(progress)
    engine = _engines.connect(spec, choice.engine)
    try:
        seed = int(_thresholds.resolve(spec.thresholds, "general", "seed"))
        frames, inputs, rows = {}, [], {}
        roles = ("reference", "production")
        with phases.phase(f"rows ({choice.engine})", total=2, unit="side") as bar:
            for role in roles:
                rows[role] = engine.rows(role)
                bar.update()
        with phases.phase(f"seeded sample of {spec.sample_rows:,} rows a side", total=2, unit="side") as bar:
            for role in roles:
                frames[role] = engine.sample(role, spec.sample_rows, seed)
                bar.update()
        with phases.phase("sha256 of the sources", total=2, unit="side") as bar:
            for role in roles:
                source = getattr(spec, role)
                inputs.append({"role": role, "path": str(source), "sha256": _source_sha256(source),
                               "rows": rows[role]})
                bar.update()
        offline, joined = None, None
        if spec.serving.offline is not None:
            with phases.phase("serving.offline: the sample's twins and the join of every row", total=1) as bar:
                try:
                    offline, joined = _offline_twins(engine, spec.columns.id, frames["production"])
                except DataError:
                    raise
                except Exception as exc:  # noqa: BLE001 - an engine's error becomes one clear message
                    raise DataError(f"{choice.engine} could not join serving.offline to production on "
                                    f"{spec.columns.id!r} (columns.id): {_short(exc)}") from None
                bar.update()
            inputs.append({"role": "serving.offline", "path": str(spec.serving.offline),
                           "sha256": sha256_of(spec.serving.offline),
                           "rows": joined["offline_rows"] if joined else int(len(offline))})
        if spec.model.path is not None:
            inputs.append({"role": "model", "path": str(spec.model.path),
                           "sha256": sha256_of(spec.model.path), "rows": None})
        incident = _build(spec, frames["reference"], frames["production"], offline, inputs, trust_model)
        sampled = {role: int(len(frames[role])) for role in frames}
        try:
            aggregates = compute(engine, aggregate_columns(incident), sample_rows=sampled, phases=phases,
                                 samples={"reference": incident.reference, "production": incident.production})
            with phases.phase("production rows per day and status, repeated ids", total=1, unit="query") as bar:
                views = production_views(engine, timestamp=spec.columns.timestamp, id_column=spec.columns.id,
                                         status=spec.columns.status)
                bar.update()
            aggregates.daily_rows, aggregates.duplicate_ids = views.get("daily_rows"), views.get("duplicate_ids")
            aggregates.status_counts = views.get("status_counts")
            segments = [c for c in spec.columns.segments
                        if c in incident.reference.columns and c in incident.production.columns]
            if segments and incident.is_classification:
                with phases.phase("rows and correct predictions per segment", total=1, unit="query") as bar:
                    floats = tuple(pd.api.types.is_float_dtype(incident.production[c])
                                   for c in (incident.target, incident.prediction))
                    aggregates.segment_counts = segment_counts(engine, segments, target=incident.target,
                                                               prediction=incident.prediction, nan_aware=floats)
                    bar.update()
            aggregates.offline_join = joined
        except Exception as exc:  # noqa: BLE001 - an engine's error becomes one clear message
            raise DataError(f"{choice.engine} could not aggregate the incident's columns: {_short(exc)}") from None
    finally:
        engine.close()
    aggregates.timings = {k: round(v, 3) for k, v in phases.timings.items()}
    incident.engine, incident.aggregates = choice.engine, aggregates
    incident.engine_note = choice.describe(spec.sample_rows)
    if aggregates.duplicate_ids is not None:
        _exact_duplicates(incident, aggregates.duplicate_ids, choice.engine)
    if joined:
        _exact_duplicates(incident, joined["offline_duplicate_ids"], choice.engine, "serving.offline")
    if any(rows[r] > sampled[r] for r in rows):
        exact = ["drift statistics", "missing and infinite values"]
        exact += ["rows per day"] if aggregates.daily_rows is not None else []
        exact += ["repeated ids"] if aggregates.duplicate_ids is not None else []
        exact += ["error and timeout rates"] if aggregates.status_counts is not None else []
        exact += ["accuracy and traffic per segment"] if aggregates.segment_counts else []
        exact += ["the join to serving.offline"] if joined else []
        incident.warnings.append(
            f"{number(rows['reference'])} reference and {number(rows['production'])} production rows were read "
            f"by {choice.engine}; {', '.join(exact[:-1])} and {exact[-1]} cover every row, everything "
            f"else on the pages uses a seeded sample of {number(sampled['reference'])} and "
            f"{number(sampled['production'])} rows.")
    return incident


def _offline_twins(engine, column: str | None, sample: pd.DataFrame) -> tuple[pd.DataFrame, dict | None]:
    """``serving.offline`` on an engine: only the rows that are the production sample's twins (the
    skew check compares those) and the join counted over every row of both sides, never the file.

    Without ``columns.id`` (or with no such column in production) nothing can be joined: an empty
    frame with the file's columns, so the skew check says what is missing.
    """
    from .engine.aggregates import duplicate_ids_query, offline_join_query, twins_query

    if not column or column not in sample.columns:
        return engine.rows_of("SELECT * FROM offline LIMIT 0"), None
    if column not in engine.columns("offline"):
        raise DataError(f"serving.offline has no column {column!r} (columns.id), the key that joins it to "
                        "production; add it to the file or name the right column in columns.id.")
    engine.register_frame("mli_sample_ids", pd.DataFrame({column: sample[column].dropna().unique()}))
    for as_text in (False, True):  # the same type on both sides, else compared as text
        try:
            twins = engine.rows_of(twins_query("mli_sample_ids", column, as_text=as_text))
            counts = engine.query(offline_join_query(column, as_text=as_text)).iloc[0]
            break
        except Exception:  # noqa: BLE001 - an id stored as a number on one side and as text on the other
            if as_text:
                raise
    joined = {k: int(counts[k]) for k in ("offline_rows", "production_rows", "unjoined_offline",
                                           "unjoined_production")}
    joined["offline_duplicate_ids"] = int(engine.query(duplicate_ids_query("offline", column))["repeats"].iloc[0])
    return twins, joined


def _exact_duplicates(incident: Incident, repeats: int, engine: str, role: str = "production") -> None:
    """A side's repeated ids counted over every row, in place of the sample's count (a pair of
    repeated rows is seldom sampled whole) and of its warning."""
    column = incident.columns.id
    incident.warnings = [w for w in incident.warnings if not w.startswith(f"{role} has ")
                         or f"{column!r} (columns.id)" not in w]
    incident.duplicate_ids[role] = repeats
    if repeats:
        incident.warnings.append(
            f"{role} has {number(repeats)} row(s) whose {column!r} (columns.id) repeats an earlier row "
            f"(counted over every row by {engine}). Repeated rows count more than once in rates and volumes; "
            "the skew check compares each id once and leaves out ids whose rows disagree.")


def _source_sha256(source) -> str:
    """A file's (or folder's) sha256; for a table or query, the sha256 of its description."""
    from .spec import TableSource

    if isinstance(source, TableSource):
        return hashlib.sha256(source.describe().encode()).hexdigest()
    return sha256_of(source)


def _write_frame(frame: pd.DataFrame, path: Path) -> None:
    """The run's cache is uncompressed Arrow IPC: at a million rows a side it is written in a
    third of parquet's time and read back, memory-mapped, about ten times faster, once per kernel."""
    import pyarrow as pa
    import pyarrow.feather as feather

    # one record batch: a kernel can then use the memory-mapped numbers as they are (below). Text
    # columns read from a parquet file with several row groups arrive in as many chunks, and the
    # batches follow the chunks of every column: combined first, or each column is copied on read.
    table = pa.Table.from_pandas(frame, preserve_index=True).combine_chunks()
    feather.write_feather(table, path, compression="uncompressed", chunksize=max(len(frame), 1))


def _read_frame(path: Path) -> pd.DataFrame | None:
    """A cached frame, its numeric columns without nulls viewing the memory-mapped file instead of
    copies (``split_blocks``: one block per column), so each kernel holds only what it changes
    (at a million rows a side, 0.4 GB less per side and per kernel)."""
    import pyarrow.feather as feather

    return feather.read_table(path, memory_map=True).to_pandas(split_blocks=True) if path.exists() else None


def release_memory() -> None:
    """Give the memory of frames no longer referenced back to the system: Arrow's allocator (which
    backs string columns) keeps freed blocks for reuse until asked to return them."""
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()


def _from_cache(spec: IncidentSpec, folder: Path, trust_model: bool) -> Incident:
    meta = json.loads((folder / "incident.json").read_text())
    return Incident(
        spec=spec, reference=_read_frame(folder / "reference.arrow"),
        production=_read_frame(folder / "production.arrow"), offline=_read_frame(folder / "offline.arrow"),
        features=meta["features"], feature_types=meta["feature_types"], kind=meta["kind"],
        classes=meta["classes"], positive_label=meta["positive_label"], warnings=meta["warnings"],
        inputs=meta["inputs"], missing_in_production=meta["missing_in_production"],
        trust_model=trust_model, identifier_like=meta.get("identifier_like", []),
        duplicate_ids=meta.get("duplicate_ids", {}), engine=meta.get("engine", "pandas"),
        engine_note=meta.get("engine_note", ""), aggregates=_aggregates_from(folder / "aggregates.json"))


def _aggregates_from(path: Path):
    if not path.exists():
        return None
    from .engine.aggregates import Aggregates

    return Aggregates.from_json(json.loads(path.read_text()))


def _require(df: pd.DataFrame, column: str | None, key: str, role: str, path: Path) -> None:
    if column is not None and column not in df.columns:
        import difflib

        names = [str(c) for c in df.columns]
        close = difflib.get_close_matches(column, names, n=1, cutoff=0.5) or [
            c for c in names if c.lower() in column.lower() or column.lower() in c.lower()][:1]
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{role} file {str(path)!r} has no column {column!r} (named by "
                        f"columns.{key} in the spec).{hint} Fix columns.{key} or the file.")


def _build(spec: IncidentSpec, ref: pd.DataFrame, prod: pd.DataFrame, offline: pd.DataFrame | None,
           inputs: list[dict], trust_model: bool) -> Incident:
    cols = spec.columns
    warnings: list[str] = []
    for df, role, path in ((ref, "reference", spec.reference), (prod, "production", spec.production)):
        if len(df) == 0:
            raise DataError(f"{role} file {str(path)!r} has no rows; an investigation needs data on both sides.")
    _require(ref, cols.target, "target", "reference", spec.reference)
    for key in ("prediction",):
        _require(ref, getattr(cols, key), key, "reference", spec.reference)
        _require(prod, getattr(cols, key), key, "production", spec.production)
    for key in ("score", "timestamp", "id", "model_version"):
        column = getattr(cols, key)
        if column is not None and column not in ref.columns and column not in prod.columns:
            _require(prod, column, key, "production", spec.production)
    for key in ("latency_ms", "status"):
        _require(prod, getattr(cols, key), key, "production", spec.production)
    for seg in cols.segments:
        _require(prod, seg, "segments", "production", spec.production)
    if cols.label_source and cols.label_source not in ref.columns and cols.label_source not in prod.columns:
        _require(ref, cols.label_source, "label_source", "reference", spec.reference)
    if cols.target not in prod.columns:
        warnings.append(f"production has no {cols.target!r} column: every production row is treated "
                        "as not labelled yet.")
        prod = prod.assign(**{cols.target: pd.Series(pd.NA, index=prod.index, dtype=object)})
    for key in ("id",):
        if getattr(cols, key) and offline is not None:
            _require(offline, getattr(cols, key), key, "serving.offline", spec.serving.offline)

    # Features: explicit list, else every column not given another role. Segment columns are model
    # inputs too (a country or a channel usually is), so they stay features unless `features` says otherwise.
    roles = set(cols.roles()) | set(spec.leakage.available_at.values())
    # business values and error costs are monitoring's inputs, not the model's
    roles |= set(spec.monitoring.value_columns)
    if isinstance(spec.monitoring.error_cost, str):
        roles.add(spec.monitoring.error_cost)
    if cols.features is not None:
        for f in cols.features:
            _require(ref, f, "features", "reference", spec.reference)
        candidates = list(cols.features)
    else:
        candidates = [c for c in ref.columns if c not in roles]
    missing = [f for f in candidates if f not in prod.columns]
    if missing:
        warnings.append(f"feature(s) {', '.join(map(repr, missing))} are in reference but missing from "
                        "production; they are left out of the comparisons and reported by the health check.")
    features = [f for f in candidates if f in prod.columns]
    void = [f for f in features if ref[f].isna().all() and prod[f].isna().all()]
    if void:
        # Nothing to compare and nothing a model could learn from; categories with no values at
        # all also break the statistics that code them.
        warnings.append(f"feature(s) {listing(void, limit=10)} have no values in either file; they are left "
                        "out of every comparison.")
        features = [f for f in features if f not in void]

    # Time columns and typed features.
    for df in (ref, prod) + ((offline,) if offline is not None else ()):
        if cols.timestamp and cols.timestamp in df.columns:
            df[cols.timestamp] = _to_datetime(df[cols.timestamp], cols.timestamp)
    feature_types: dict[str, str] = {}
    for f in features:
        t_ref, t_prod = feature_type(ref[f]), feature_type(prod[f])
        if ref[f].isna().all():
            warnings.append(f"feature {f!r} is empty (all missing) in reference.")
        if t_ref != t_prod and prod[f].notna().any() and ref[f].notna().any():
            if t_ref == "numeric":
                coerced = pd.to_numeric(prod[f], errors="coerce")
                bad = int(coerced.isna().sum() - prod[f].isna().sum())
                warnings.append(f"feature {f!r} is numeric in reference but {t_prod} in production; "
                                f"production values were read as numbers ({bad} could not be and count as missing).")
                prod[f] = coerced
            else:
                warnings.append(f"feature {f!r} is {t_ref} in reference but {t_prod} in production; "
                                "both are compared as categories.")
                t_ref = "categorical"
        feature_types[f] = t_ref
    ids = [f for f, t in feature_types.items() if t == "categorical" and identifier_like(ref[f], prod[f])]
    for f in ids:
        warnings.append(f"column {f!r} looks like an identifier or free text "
                        f"({_distinct_text(ref[f], prod[f])}): it is left out of the drift and "
                        "model-based statistics, which mean nothing on values that hardly repeat.")
        del feature_types[f]
    features = [f for f in features if f not in ids]
    for f in features:
        if prod[f].isna().all() and ref[f].notna().any():
            warnings.append(f"feature {f!r} is empty (all missing) in production but has values in "
                            f"{percent(ref[f].notna().mean())} of reference rows: it stopped arriving; "
                            "the health check reports it.")
    warnings.extend(_infinite_warnings(ref, prod, [f for f in features if feature_types[f] == "numeric"]))
    _categorise(ref, prod, offline, [f for f, t in feature_types.items() if t == "categorical"]
                + [s for s in cols.segments if s not in feature_types and s not in ids])
    duplicates = _duplicate_ids(cols.id, {"production": prod, "serving.offline": offline}, warnings)

    kind, classes, positive = _labels(spec, ref, prod, offline, warnings)
    return Incident(spec=spec, reference=ref, production=prod, offline=offline, features=features,
                    feature_types=feature_types, kind=kind, classes=classes, positive_label=positive,
                    warnings=warnings, inputs=inputs, missing_in_production=missing,
                    trust_model=trust_model, identifier_like=ids, duplicate_ids=duplicates)


ID_MIN_ROWS = 50         # values a side needs before its distinct share says anything
ID_DISTINCT_SHARE = 0.5  # distinct values per value above which a category column is identifier-like
_ID_SAMPLE = 20_000


def identifier_like(reference: pd.Series, production: pd.Series) -> bool:
    """Is this categorical column an identifier or free text rather than a category?

    True when more than :data:`ID_DISTINCT_SHARE` of the values are distinct on every side that
    holds at least :data:`ID_MIN_ROWS` values (and at least one side does). A category has a few
    values that repeat, even one whose values were all renamed in production (a drift that must be
    seen); an id or a free-text field is new row after row, whether or not the two sides share
    values (user ids seen in both files are still ids). A seeded sample of each side decides
    first, so a million-row category column costs nothing.
    """
    sides = [s.dropna() for s in (reference, production)]
    sides = [s for s in sides if len(s) >= ID_MIN_ROWS]
    if not sides:
        return False

    def varied(values: pd.Series) -> bool:
        return int(values.astype(str).nunique()) > ID_DISTINCT_SHARE * len(values)

    return (all(varied(sample_rows(s, _ID_SAMPLE, seed=0)) for s in sides)
            and all(varied(s) for s in sides))


def _distinct_text(reference: pd.Series, production: pd.Series) -> str:
    n_ref, n_prod = int(reference.notna().sum()), int(production.notna().sum())
    return (f"{number(reference.dropna().astype(str).nunique())} distinct values in {number(n_ref)} reference "
            f"rows, {number(production.dropna().astype(str).nunique())} in {number(n_prod)} production rows")


def _infinite_warnings(ref: pd.DataFrame, prod: pd.DataFrame, numeric: list[str]) -> list[str]:
    """Infinite values are impossible measurements, not missing ones: say where they are."""
    out = []
    for f in numeric:
        counts = {}
        for role, df in (("reference", ref), ("production", prod)):
            if pd.api.types.is_float_dtype(df[f]):
                counts[role] = int(np.isinf(df[f].to_numpy(dtype=float, na_value=np.nan)).sum())
        found = {role: k for role, k in counts.items() if k}
        if found:
            rows = {"reference": len(ref), "production": len(prod)}
            where = " and ".join(f"{number(k)} in {role} ({percent(k / rows[role])})" for role, k in found.items())
            out.append(f"feature {f!r} holds infinite values: {where}. They are counted apart from "
                       "missing values, kept out of the distributions and reported by the health check.")
    return out


def duplicate_key_rows(keys: pd.Series) -> int:
    """Rows whose key repeats an earlier row's (missing keys are not duplicates)."""
    k = keys.dropna()
    return int(k.duplicated().sum())


def _duplicate_ids(column: str | None, frames: dict, warnings: list[str]) -> dict[str, int]:
    """Count rows that repeat an earlier row's ``columns.id``; warn with how many are exact copies."""
    out: dict[str, int] = {}
    if not column:
        return out
    for role, df in frames.items():
        if df is None or column not in df.columns:
            continue
        keys = df[column]
        repeats = duplicate_key_rows(keys)
        out[role] = repeats
        if not repeats:
            continue
        shared = keys.notna() & keys.duplicated(keep=False)
        n_ids = int(keys[shared].nunique())
        try:
            copies = int(pd.util.hash_pandas_object(df[shared.to_numpy()], index=False).duplicated().sum())
        except TypeError:  # cells holding lists or dicts cannot be hashed; compare their text
            copies = int(df[shared.to_numpy()].astype(str).duplicated().sum())
        copy_text = ("all of them exact copies of another row" if copies == repeats
                     else f"{number(copies)} of them exact copies of another row" if copies
                     else "none of them an exact copy of another row")
        warnings.append(f"{role} has {number(repeats)} row(s) whose {column!r} (columns.id) repeats an earlier "
                        f"row ({number(n_ids)} id(s) affected, {copy_text}). "
                        + ("Repeated rows count more than once in rates and volumes; " if role == "production" else "")
                        + "the skew check compares each id once and leaves out ids whose rows disagree.")
    return out


def _to_datetime(s: pd.Series, name: str) -> pd.Series:
    out = parse_datetime(s)
    if out.isna().sum() > s.isna().sum():
        raise DataError(f"timestamp column {name!r} has values that are not dates (for example "
                        f"{_quoted(s[out.isna() & s.notna()].iloc[0])}); fix the values or columns.timestamp.")
    return out


def _categorise(ref, prod, offline, names: list[str]) -> None:
    """Give categorical columns one shared category set (as text), so codes compare across files.

    Factorises each column once and remaps the codes: converting every value to text first took
    most of the loading time at a million rows.
    """
    for name in names:
        frames = [df for df in (ref, prod, offline) if df is not None and name in df.columns]
        parts = []
        for df in frames:
            codes, uniques = pd.factorize(df[name], use_na_sentinel=True)
            parts.append((codes, [str(u) for u in uniques]))
        cats = sorted(set().union(*(u for _, u in parts)))
        position = {c: i for i, c in enumerate(cats)}
        dtype = pd.CategoricalDtype(cats)
        for df, (codes, uniques) in zip(frames, parts, strict=True):
            remap = np.array([position[u] for u in uniques] + [-1], dtype=np.int64)  # code -1 stays -1
            df[name] = pd.Categorical.from_codes(remap[codes], dtype=dtype)


def _labels(spec, ref, prod, offline, warnings):
    cols = spec.columns
    t, p = cols.target, cols.prediction
    ref[t], prod[t] = _same_label_space(_normalise_labels(ref[t]), _normalise_labels(prod[t]))
    if spec.task == "regression":
        for df, role in ((ref, "reference"), (prod, "production")):
            for c in (t, p):
                if not pd.api.types.is_numeric_dtype(df[c]) and df[c].notna().any():
                    raise DataError(f"task is regression but {role} column {c!r} is not numeric; "
                                    "set task: classification or fix the column.")
        return "regression", [], None
    ref[p], prod[p] = _same_label_space(_normalise_labels(ref[p]), _normalise_labels(prod[p]))
    ref[t], ref[p] = _same_label_space(ref[t], ref[p])
    prod[t], prod[p] = _same_label_space(prod[t], prod[p])
    if ref[t].isna().all():
        raise DataError(f"reference column {t!r} (columns.target) has no labels; the reference rows must be labelled.")
    seen = set(ref[t].dropna().unique()) | set(prod[t].dropna().unique())
    classes = sorted(seen, key=lambda v: (str(type(v)), v))
    if len(set(ref[t].dropna().unique())) < 2:
        raise DataError(f"reference column {t!r} (columns.target) has a single class "
                        f"({_quoted(classes[0])}); a classification incident needs at least two.")
    if len(classes) > 50:
        warnings.append(f"target {t!r} has {len(classes)} distinct values; if it is a number to predict, "
                        "set task: regression.")
    kind = "binary" if len(classes) == 2 else "multiclass"
    positive = None
    if kind == "binary":
        positive = _positive_label(cols.positive_label, classes, t)
    elif cols.positive_label is not None:
        raise DataError(_not_binary(cols.positive_label, t, ref[t], prod[t], classes))
    return kind, [_jsonable(c) for c in classes], _jsonable(positive)


def _positive_label(given, classes, target):
    if given is None:
        # scikit-learn's convention: the greater label is the positive class
        return classes[-1]
    for c in classes:
        if c == given or str(c) == str(given):
            return c
    raise DataError(f"columns.positive_label is {_quoted(given)} but column {target!r} holds only "
                    f"{listing(classes)}; set positive_label to one of them.")


def _not_binary(given, target: str, ref: pd.Series, prod: pd.Series, classes: list) -> str:
    """Why a spec that names a positive label cannot run on a target with three or more classes."""
    in_ref = set(ref.dropna().unique())
    only_prod = [c for c in classes if c not in in_ref]
    where = (f"; {listing(only_prod)} only in production" if only_prod else "")
    return (f"columns.positive_label is {_quoted(given)}, which makes this a binary task, but column "
            f"{target!r} (columns.target) holds {len(classes)} classes: {listing(classes, limit=10)}{where}. "
            "Either remove positive_label to investigate a multiclass model, or fix the target column "
            "so it holds two classes" + (" (or set task: regression if it is a number to predict)."
                                         if len(classes) > 10 else "."))


def _quoted(value) -> str:
    """A data value in a message: texts quoted, numbers plain (never a numpy repr)."""
    value = scalar(value)
    return repr(value) if isinstance(value, str) else text(value)
