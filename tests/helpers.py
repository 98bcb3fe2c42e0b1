"""Tiny incidents built in a test's tmp_path, independent of the scenario generators."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mlinvestigate.data import load_incident
from mlinvestigate.spec import parse_spec


def tiny_incident(folder: Path, *, rows: int = 400, spec_extra: dict | None = None,
                  columns_extra: dict | None = None, prod_edit=None, ref_edit=None, seed: int = 0,
                  fmt: str = "parquet") -> Path:
    """Write a small binary incident (features x1, x2, device) and its incident.yaml; return the spec path."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def frame(n, offset):
        x1 = rng.normal(size=n)
        x2 = rng.normal(size=n)
        y = (x1 + 0.5 * rng.normal(size=n) > 0.8).astype(int)
        score = 1 / (1 + np.exp(-(3 * x1 - 2.4)))
        return pd.DataFrame({"request_id": np.arange(offset, offset + n), "x1": x1, "x2": x2,
                             "device": rng.choice(["ios", "android", "<script>alert(1)</script>"], n),
                             "label": y, "pred": (score > 0.5).astype(int), "score": score,
                             "ts": pd.Timestamp("2026-10-01") + pd.to_timedelta(rng.integers(0, 20 * 86400, n), "s")})

    ref, prod = frame(rows, 0), frame(rows, 10 * rows)
    if ref_edit:
        ref = ref_edit(ref)
    if prod_edit:
        prod = prod_edit(prod)
    for name, df in (("reference", ref), ("production", prod)):
        if fmt == "csv":
            df.to_csv(folder / f"{name}.csv", index=False)
        else:
            df.to_parquet(folder / f"{name}.parquet")
    spec = {"name": "tiny", "title": "Tiny test incident", "task": "classification",
            "reference": f"reference.{fmt}", "production": f"production.{fmt}",
            "columns": {"target": "label", "prediction": "pred", "score": "score", "id": "request_id",
                        "timestamp": "ts", **(columns_extra or {})},
            **(spec_extra or {})}
    path = folder / "incident.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def incident_from_frames(folder: Path, ref: pd.DataFrame, prod: pd.DataFrame, columns: dict, **spec):
    """Write two frames as ``reference.parquet`` and ``production.parquet`` in ``folder`` and load
    them as an incident with these ``columns`` and any further spec keys (``task=``, ``serving=`` …)."""
    folder.mkdir(parents=True, exist_ok=True)
    ref.to_parquet(folder / "reference.parquet")
    prod.to_parquet(folder / "production.parquet")
    data = {"name": "t", "reference": "reference.parquet", "production": "production.parquet",
            "columns": columns, **spec}
    return load_incident(parse_spec(data, source=folder / "incident.yaml"))
