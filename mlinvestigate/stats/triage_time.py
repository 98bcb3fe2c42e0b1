"""Time buckets shared by the triage checks: the day or week of each row, and whether the first
and last days of a log are only partly covered."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd


def parse_datetime(s: pd.Series) -> pd.Series:
    """Times as naive UTC timestamps, however a log holds them: datetimes (time zones converted),
    epoch seconds or milliseconds (told apart by magnitude), or text in any common format. Values
    that are not times become missing; the caller decides whether that is an error.

    >>> parse_datetime(pd.Series([0, 86_400])).dt.day.tolist()
    [1, 2]
    >>> parse_datetime(pd.Series(["2026-11-30T10:00:00+01:00", "not a date"])).tolist()
    [Timestamp('2026-11-30 09:00:00'), NaT]
    """
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.tz_convert(None) if getattr(s.dt, "tz", None) is not None else s
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        unit = "ms" if s.dropna().abs().median() > 1e11 else "s"
        return pd.to_datetime(s, unit=unit, errors="coerce")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format": each value is parsed
        return pd.to_datetime(s, errors="coerce", utc=True, format="mixed").dt.tz_convert(None)


def period_codes(ts: pd.Series, freq: str = "D") -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Integer code of each row's day (``"D"``) or week starting Monday (``"W"``), and every period
    start from the first to the last (periods without rows included: an outage is a day with no
    rows). Rows without a time get ``-1``."""
    if freq not in ("D", "W"):
        raise ValueError(f"freq must be 'D' or 'W', got {freq!r}")
    day = ts.dt.floor("D")
    start = day - pd.to_timedelta(day.dt.day_of_week, unit="D") if freq == "W" else day
    if start.notna().sum() == 0:
        return np.full(len(ts), -1, dtype=np.int64), pd.DatetimeIndex([])
    step = pd.Timedelta(days=7 if freq == "W" else 1)
    first = start.min()
    codes = ((start - first) / step).to_numpy(dtype=float, na_value=np.nan)
    periods = pd.date_range(first, start.max(), freq=step)
    return np.where(np.isfinite(codes), codes, -1).astype(np.int64), periods


def grain(ts: pd.Series) -> str:
    """``"D"`` for logs up to ~3 months, ``"W"`` beyond (a readable number of points per chart)."""
    span = ts.max() - ts.min() if ts.notna().any() else pd.Timedelta(0)
    return "W" if span > pd.Timedelta(days=92) else "D"


def partial_days(ts: pd.Series, days: pd.DatetimeIndex, *, min_coverage: float = 0.9) -> np.ndarray:
    """Mask of ``days`` the log covers only in part: the first day when it starts late, the last
    when it ends early (a day's volume there is not comparable)."""
    out = np.zeros(len(days), dtype=bool)
    if len(days) == 0:
        return out
    one = pd.Timedelta(days=1)
    first, last = ts.min(), ts.max()
    out[0] |= (days[0] + one - first) / one < min_coverage
    out[-1] |= (last - days[-1]) / one < min_coverage - (1 / 24)  # a log ending at 23:00 is complete enough
    return out
