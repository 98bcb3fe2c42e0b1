"""Incidents unlike the fraud scenarios: other column names, text labels, 3–10 classes, 300 rows,
heavy missingness. Built from a generic label-shift world (classes first, inputs given the class),
so the truth is known exactly and no check may rely on the fraud world's shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlinvestigate import checks
from tests.helpers import incident_from_frames

MODEL_FREE = ("measurement", "segments", "drift", "labels", "prior_shift")


def loans(rng, n: int, shares, *, first_id: int = 0, missing: float = 0.0, names=None) -> pd.DataFrame:
    """A loan-grading world with ``len(shares)`` grades: each grade has its own centre in four
    numeric inputs plus a region; the logged grade is the Bayes decision at the reference shares."""
    k = len(shares)
    names = names or [f"grade_{chr(65 + i)}" for i in range(k)]
    y = rng.choice(k, n, p=shares)
    centres = np.stack([2.2 * np.cos(2 * np.pi * np.arange(k) / k), 2.2 * np.sin(2 * np.pi * np.arange(k) / k),
                        np.linspace(-1, 1, k), np.zeros(k)], axis=1)
    X = centres[y] + rng.normal(size=(n, 4))
    logp = -0.5 * ((X[:, None, :] - centres[None]) ** 2).sum(axis=2) + np.log(np.full(k, 1.0 / k))
    pred = logp.argmax(axis=1)
    df = pd.DataFrame({"loan_id": np.arange(first_id, first_id + n), "income_k": 50 + 10 * X[:, 0],
                       "debt_ratio": 0.3 + 0.05 * X[:, 1], "tenure_m": 36 + 6 * X[:, 2], "inquiries": X[:, 3],
                       "region": rng.choice(["north", "south", "east", "west"], n),
                       "grade": np.asarray(names, dtype=object)[y], "grade_pred": np.asarray(names, dtype=object)[pred]})
    if missing:
        for c in ("income_k", "debt_ratio", "tenure_m"):
            df.loc[rng.random(n) < missing, c] = np.nan
    return df


COLUMNS = {"target": "grade", "prediction": "grade_pred", "id": "loan_id", "segments": ["region"]}


def run_all(incident) -> dict:
    return {cid: checks.get(cid).run(incident).finding for cid in MODEL_FREE}


@pytest.mark.parametrize("k", [3, 10])
def test_control_with_many_classes_is_clear_everywhere(tmp_path, k):
    rng = np.random.default_rng(k)
    shares = np.full(k, 1.0 / k)
    inc = incident_from_frames(tmp_path, loans(rng, 3000, shares), loans(rng, 3000, shares, first_id=10**6),
                               COLUMNS, task="classification")
    found = run_all(inc)
    for cid, f in found.items():
        assert f.verdict in ("clear", "skipped", "inconclusive"), (cid, f.summary)
        assert f.verdict != "detected", (cid, f.summary)


def test_tiny_control_with_heavy_missingness_raises_no_alarm(tmp_path):
    """300 rows a side, a third of three inputs missing: no check errors or alarms."""
    rng = np.random.default_rng(30)
    shares = [0.5, 0.3, 0.2]
    inc = incident_from_frames(tmp_path, loans(rng, 300, shares, missing=0.35),
                               loans(rng, 300, shares, first_id=10**6, missing=0.35), COLUMNS)
    for cid, f in run_all(inc).items():
        assert f.verdict != "detected", (cid, f.summary)


@pytest.mark.parametrize("k", [4, 8])
def test_unlabelled_prior_shift_is_estimated_within_seven_points(tmp_path, k):
    """Grade shares move from uniform to a skewed mix; production has no labels: BBSE estimates every
    share within 0.07 of the truth and the check detects the move."""
    rng = np.random.default_rng(40 + k)
    new = np.linspace(1, 3, k)
    new = new / new.sum()
    prod = loans(rng, 6000, new, first_id=10**6, missing=0.2).drop(columns="grade")
    inc = incident_from_frames(tmp_path, loans(rng, 6000, np.full(k, 1.0 / k), missing=0.2), prod, COLUMNS)
    f = checks.get("prior_shift").run(inc).finding
    assert f.verdict == "detected", f.summary
    assert f.evidence["estimated"] is True
    names = [f"grade_{chr(65 + i)}" for i in range(k)]
    est = f.evidence["production_class_rates"]
    assert max(abs(est[n] - s) for n, s in zip(names, new, strict=True)) < 0.07


def test_five_class_relabelling_is_a_label_definition(tmp_path):
    """Most grade_B loans now graded grade_C at the same inputs: labels names the definition; the
    class-share move is marked as following from it, not a prior shift."""
    rng = np.random.default_rng(50)
    shares = [0.3, 0.25, 0.2, 0.15, 0.1]
    prod = loans(rng, 5000, shares, first_id=10**6)
    moved = (prod["grade"] == "grade_B") & (rng.random(len(prod)) < 0.6)
    prod.loc[moved, "grade"] = "grade_C"
    inc = incident_from_frames(tmp_path, loans(rng, 5000, shares), prod, COLUMNS)
    found = run_all(inc)
    assert found["labels"].verdict == "detected", found["labels"].summary
    assert found["labels"].culprits[0] == "definition"
    assert found["prior_shift"].verdict != "detected", found["prior_shift"].summary
    assert found["prior_shift"].evidence["follows_from_labels"] is True
    assert found["drift"].verdict == "clear", found["drift"].summary


def test_segment_column_that_drifts_is_a_drift_culprit(tmp_path):
    """The region segment (a model input by default) shifts to one region: drift names it."""
    rng = np.random.default_rng(60)
    shares = [0.5, 0.3, 0.2]
    prod = loans(rng, 4000, shares, first_id=10**6)
    prod.loc[rng.random(len(prod)) < 0.35, "region"] = "west"
    inc = incident_from_frames(tmp_path, loans(rng, 4000, shares), prod, COLUMNS)
    assert "region" in inc.features
    f = checks.get("drift").run(inc).finding
    assert f.verdict == "detected", f.summary
    assert f.culprits[0] == "region"
