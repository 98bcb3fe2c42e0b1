"""The incident spec: ``incident.yaml`` validated into a typed model.

The contract lives in DESIGN.md. Paths are resolved relative to the spec file, unknown keys are
rejected with the closest valid key suggested, and every error names the key and how to fix it.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import SpecError

Label = int | float | bool | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Columns(_Strict):
    target: str
    prediction: str
    score: str | None = None
    positive_label: Label | None = None
    timestamp: str | None = None
    id: str | None = None
    model_version: str | None = None
    latency_ms: str | None = None
    status: str | None = None
    label_source: str | None = None
    segments: list[str] = Field(default_factory=list)
    features: list[str] | None = None

    def roles(self) -> dict[str, str]:
        """Column name → role, for every single-column role that is set."""
        names = ("target", "prediction", "score", "timestamp", "id", "model_version",
                 "latency_ms", "status", "label_source")
        return {getattr(self, n): n for n in names if getattr(self, n) is not None}


class Serving(_Strict):
    offline: Path | None = None


class ModelRef(_Strict):
    path: Path | None = None
    sha256: str | None = None
    version: str | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, v: Any) -> Any:
        # YAML reads `version: 2.0` as a float; versions are compared as text.
        return None if v is None else str(v)

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", v):
            raise ValueError("must be the 64 hexadecimal characters printed by `sha256sum`")
        return v.lower() if v else v


class Expected(_Strict):
    daily_volume: float | None = Field(default=None, gt=0)
    latency_p95_ms: float | None = Field(default=None, gt=0)


class Leakage(_Strict):
    # feature → column holding the time that feature's value became known
    available_at: dict[str, str] = Field(default_factory=dict)


class AlertRule(_Strict):
    """One monitoring alert rule: its effect-size bar(s), persistence and whether it runs at all."""

    enabled: bool = True
    threshold: float | None = Field(default=None, ge=0)   # the bar that makes a window alert (critical)
    warning: float | None = Field(default=None, ge=0)     # a lower bar that only warns (where the rule has one)
    windows: int | None = Field(default=None, ge=1)       # persistence: fire when `firing` of the last
    firing: int | None = Field(default=None, ge=1)        # `windows` windows cross the bar


class Retraining(_Strict):
    """When to retrain: evaluated on every monitoring run and listed with their evidence."""

    trained_at: str | None = None                           # date the model was trained (ISO 8601)
    every_days: float | None = Field(default=None, gt=0)   # scheduled interval since trained_at
    min_metric: float | None = None                        # headline metric (or its estimate) below this
    drift: bool = True                                     # a feature's PSI alert is active
    new_labels: int | None = Field(default=None, ge=1)     # labelled production rows since trained_at

    @field_validator("trained_at", mode="before")
    @classmethod
    def _date_text(cls, v: Any) -> Any:
        # YAML reads 2026-08-31 as a date
        return None if v is None else str(v)


class Monitoring(_Strict):
    """``mlinvestigate monitor``: windows, business values, alert overrides and retraining triggers."""

    window: str = "1d"                                      # --window overrides it
    value_columns: list[str] = Field(default_factory=list)  # per-row values summed per window (revenue …)
    error_cost: float | str | None = None                   # cost of one error, or a column holding it per row
    low_confidence: float = Field(default=0.6, gt=0, le=1)  # top-class probability below this is low confidence
    min_labels: int = Field(default=30, ge=1)               # fewer labelled rows in a window: use the estimate
    # multiclass: class -> column holding the model's probability of it (the estimate and confidence use them)
    class_scores: dict[Label, str] = Field(default_factory=dict)
    domain_rows: int = Field(default=1000, ge=0)            # rows a side per window for the domain classifier (0: off)
    window_sample_rows: int = Field(default=20_000, ge=1_000)  # engine: rows of a window read into memory
    baseline_windows: int = Field(default=7, ge=1)          # trailing windows behind the volume and metric medians
    windows: int = Field(default=3, ge=1)                   # persistence of every rule: `firing` of the last
    firing: int = Field(default=2, ge=1)                    # `windows` windows (a rule may override both)
    # rule id -> override; the rules are those the checks' contracts declare (CheckContract.monitor),
    # checked by name after validation (an unknown rule is an error naming the closest one)
    alerts: dict[str, AlertRule] = Field(default_factory=dict)
    retraining: Retraining = Field(default_factory=Retraining)


ENGINES = ("auto", "pandas", "duckdb", "spark")


class TableSource(_Strict):
    """A ``reference`` or ``production`` that is a query or a table rather than files.

    ``{duckdb: warehouse.db, table: prod_log}`` reads a table of a DuckDB database file;
    ``{duckdb: warehouse.db, sql: "SELECT …"}`` (or ``{sql: …}`` alone, on an in-memory DuckDB
    whose queries may read files with ``read_parquet``) the result of a query; with
    ``engine: spark``, ``{table: db.prod_log}`` is a table of Spark's catalog and ``{sql: …}`` runs
    on the Spark session.
    """

    duckdb: Path | None = None
    table: str | None = None
    sql: str | None = None

    def describe(self) -> str:
        where = f"duckdb:{self.duckdb}" if self.duckdb else "query"
        return f"{where} table {self.table}" if self.table else f"{where} sql: {self.sql}"

    def __str__(self) -> str:
        return self.describe()


Source = Path | TableSource


class SparkOptions(_Strict):
    master: str = "local[*]"                               # a cluster's master URL, or local[N]
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)  # extra spark.* settings


class IncidentSpec(_Strict):
    name: str
    title: str | None = None
    task: Literal["classification", "regression"] = "classification"
    engine: Literal["auto", "pandas", "duckdb", "spark"] = "auto"
    sample_rows: int = Field(default=200_000, ge=1_000)     # rows a side kept in memory by duckdb/spark
    reference: Source
    production: Source
    spark: SparkOptions = Field(default_factory=SparkOptions)
    columns: Columns
    serving: Serving = Field(default_factory=Serving)
    model: ModelRef = Field(default_factory=ModelRef)
    expected: Expected = Field(default_factory=Expected)
    thresholds: dict[str, dict[str, float]] = Field(default_factory=dict)
    leakage: Leakage = Field(default_factory=Leakage)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    # Where the spec file lives; set by load_spec, not read from YAML.
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", v):
            raise ValueError(
                f"{v!r} is not a valid name: use lowercase letters, digits and '-' "
                "(it becomes the report folder <YYYY-MM-DD>-<name>)")
        return v

    @property
    def display_title(self) -> str:
        return self.title or self.name


def _nearest(key: str, options: list[str]) -> str:
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else f" Valid keys here: {', '.join(sorted(options))}."


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that holds the key at ``loc`` (for suggesting valid keys)."""
    model: type[BaseModel] | None = IncidentSpec
    for part in loc[:-1]:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        ann = model.model_fields[part].annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return model


def _describe(err: dict) -> str:
    loc = err["loc"]
    where = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        holder = _model_at(loc)
        options = [k for k in holder.model_fields if k != "source"] if holder else []
        return f"unknown key {where!r}.{_nearest(str(loc[-1]), options)}"
    if err["type"] == "missing":
        return f"missing required key {where!r}."
    return f"{where}: {err['msg']} (got {err.get('input')!r})."


def parse_spec(data: Any, *, source: Path | None = None, registry: bool = True) -> IncidentSpec:
    """Validate a mapping (already read from YAML) into an :class:`IncidentSpec`.

    Paths are resolved relative to ``source``'s folder and must exist. ``registry=False`` leaves
    out what needs the checks imported (threshold and alert-rule keys, seconds of imports): the
    command line's quick look before it starts any kernel.
    """
    label = str(source) if source else "incident spec"
    if not isinstance(data, dict):
        raise SpecError(f"{label}: expected a mapping of keys (name, reference, production, columns, …), "
                        f"got {type(data).__name__}.")
    _check_source_keys(data, label)
    try:
        spec = IncidentSpec.model_validate({**data, "source": source})
    except ValidationError as exc:
        problems = "\n".join(f"  - {_describe(e)}" for e in exc.errors())
        raise SpecError(f"{label} is not a valid incident spec:\n{problems}") from None
    base = source.parent if source else Path.cwd()
    _check_engine(spec, label)
    spec = _resolve_paths(spec, base)
    _check_files(spec, label)
    if not registry:
        return spec
    from .thresholds import validate_overrides  # late: thresholds imports check modules

    validate_overrides(spec.thresholds, label)
    _check_alert_rules(spec, label)
    return spec


def _check_alert_rules(spec: IncidentSpec, label: str) -> None:
    """Every key under ``monitoring.alerts`` names a rule some check's contract declares."""
    from .contract import monitor_rules  # late: the registry imports the check modules

    known = list(monitor_rules())
    for key in spec.monitoring.alerts:
        if key not in known:
            raise SpecError(f"{label} is not a valid incident spec:\n  - unknown key "
                            f"'monitoring.alerts.{key}'.{_nearest(key, known)} The rules are those the checks "
                            f"declare: {', '.join(known)}.")


def _check_source_keys(data: dict, label: str) -> None:
    """A ``reference``/``production`` mapping names only TableSource keys, and one of table/sql."""
    for role in ("reference", "production"):
        value = data.get(role)
        if not isinstance(value, dict):
            continue
        options = list(TableSource.model_fields)
        for key in value:
            if key not in options:
                raise SpecError(f"{label} is not a valid incident spec:\n  - unknown key {f'{role}.{key}'!r}."
                                f"{_nearest(str(key), options)} A table source is "
                                "{duckdb: file.db, table: name} or {duckdb: file.db, sql: 'SELECT …'}.")
        if ("table" in value) == ("sql" in value):
            raise SpecError(f"{label}: {role} must name exactly one of 'table' or 'sql' "
                            f"(got {', '.join(map(repr, value)) or 'neither'}).")


def _check_engine(spec: IncidentSpec, label: str) -> None:
    """Table sources need an engine that can read them."""
    for role in ("reference", "production"):
        src = getattr(spec, role)
        if not isinstance(src, TableSource):
            continue
        if spec.engine == "pandas":
            raise SpecError(f"{label}: {role} is a table or query, which the pandas engine cannot read; "
                            "set engine: duckdb (or spark, or auto).")
        if src.duckdb is not None and spec.engine == "spark":
            raise SpecError(f"{label}: {role} names a DuckDB database, which the spark engine cannot read; "
                            "set engine: duckdb or auto.")
        if src.duckdb is None and src.table is not None and spec.engine != "spark":
            raise SpecError(f"{label}: {role} names table {src.table!r} without a database: add "
                            f"'duckdb: FILE.db' under {role!r}, or set engine: spark for a table of "
                            "Spark's catalog.")


def _resolve_paths(spec: IncidentSpec, base: Path) -> IncidentSpec:
    def res(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else (base / p).resolve())

    def res_source(src: Source) -> Source:
        if isinstance(src, TableSource):
            return src.model_copy(update={"duckdb": res(src.duckdb)})
        return res(src)

    return spec.model_copy(update={
        "reference": res_source(spec.reference),
        "production": res_source(spec.production),
        "serving": spec.serving.model_copy(update={"offline": res(spec.serving.offline)}),
        "model": spec.model.model_copy(update={"path": res(spec.model.path)}),
    })


TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".parquet", ".pq")
_GLOB = re.compile(r"[*?\[]")


def _is_table(path: Path) -> bool:
    return path.name.lower().endswith(TABLE_SUFFIXES)


def table_files(path: Path) -> list[Path]:
    """The data files behind a ``reference``, ``production`` or ``serving.offline`` path, sorted.

    The path may be one file, a folder (every table file under it, hidden and ``_``-prefixed
    files such as ``_SUCCESS`` left out, as Spark and pyarrow write them) or a glob such as
    ``logs/day=*/part-*.parquet``. An empty list means nothing usable is there.
    """
    if _GLOB.search(str(path)):
        anchor = Path(path.anchor) if path.is_absolute() else Path(".")
        pattern = str(path.relative_to(anchor)) if path.is_absolute() else str(path)
        return sorted(p for p in anchor.glob(pattern) if p.is_file() and _is_table(p))
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and _is_table(p)
                      and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))
    return [path] if path.exists() else []


def _check_files(spec: IncidentSpec, label: str) -> None:
    files = {"reference": spec.reference, "production": spec.production,
             "serving.offline": spec.serving.offline, "model.path": spec.model.path}
    for key, path in files.items():
        if path is None:
            continue
        if isinstance(path, TableSource):
            if path.duckdb is not None and not path.duckdb.is_file():
                raise SpecError(f"{label}: {key}.duckdb database {str(path.duckdb)!r} does not exist. "
                                f"Paths are relative to the spec file's folder; fix {key}.duckdb.")
            continue
        if key == "model.path":
            if not path.is_file():
                raise SpecError(f"{label}: {key} file {str(path)!r} does not exist. "
                                f"Paths are relative to the spec file's folder; fix the path under {key!r}.")
            continue
        globbed = bool(_GLOB.search(str(path)))
        if not globbed and not path.exists():
            raise SpecError(f"{label}: {key} file {str(path)!r} does not exist. "
                            f"Paths are relative to the spec file's folder; fix the path under {key!r}.")
        if path.is_file() and not _is_table(path):
            raise SpecError(f"{label}: {key} file {str(path)!r} has an unsupported format; "
                            "use .csv (optionally .csv.gz), .tsv or .parquet, a folder of them or a glob.")
        found = table_files(path)
        if not found:
            where = "matches no file" if globbed else "is a folder with no .csv or .parquet file in it"
            raise SpecError(f"{label}: {key} {str(path)!r} {where}; point {key!r} at a .csv or .parquet "
                            "file, a folder of them or a glob such as 'logs/*.parquet'.")
        kinds = {"parquet" if p.name.lower().endswith((".parquet", ".pq")) else "csv" for p in found}
        if len(kinds) > 1:
            raise SpecError(f"{label}: {key} {str(path)!r} mixes .csv and .parquet files; "
                            "point it at one format only (a glob such as '*.parquet' picks one).")


def load_spec(path: str | Path, *, registry: bool = True) -> IncidentSpec:
    """Read and validate ``incident.yaml`` (``registry``: see :func:`parse_spec`).

    Raises
    ------
    SpecError
        With a message naming the file, the key and how to fix it.
    """
    path = Path(path).resolve()
    if path.is_dir():
        path = path / "incident.yaml"
    if not path.exists():
        raise SpecError(f"spec file {str(path)!r} does not exist; "
                        "create one with `mlinvestigate new NAME`.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(f"{path} is not valid YAML: {exc}") from None
    return parse_spec(data, source=path, registry=registry)
