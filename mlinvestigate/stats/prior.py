"""Class-balance (prior) shift: estimating production class shares without labels, and what they imply.

Two estimators of the production prior from the model's outputs, both assuming label shift
(``P(x | y)`` unchanged, only ``P(y)`` moved):

- **BBSE**, black-box shift estimation (Lipton, Wang & Smola 2018): the reference confusion matrix
  ``C[pred, true] = P(pred | y)`` maps class shares to prediction shares, ``μ = C π'``; invert it
  against production's prediction shares, with ``π' ≥ 0`` and ``Σ π' = 1``. Needs only hard
  predictions, and an invertible (well-conditioned) ``C``.
- **EM** (Saerens, Latinne & Decaestecker 2002): re-weight each row's probabilities by
  ``π'(y) / π(y)`` and re-estimate ``π'`` as their mean until it settles. Needs probabilities
  calibrated on reference; scores are re-calibrated there first (Platt scaling), the bias-corrected
  variant Alexandari et al. (2020) found hard to beat.

Scores enter EM binned on a fine logit grid with counts, so million-row inputs and bootstrap
resamples (multinomial on the counts) stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from scipy.special import expit, logit

from . import drift

# Smallest / largest score used on the logit scale (scores of exactly 0 or 1 are clipped).
_EPS = 1e-6
# Logit bin width for EM and Platt inputs: 2% relative error in the odds at most.
_LOGIT_STEP = 0.02
# Above this condition number BBSE's inverse amplifies noise too much to be trusted.
MAX_CONDITION = 1e3


@dataclass
class PriorEstimate:
    """One estimate of the production class shares.

    ``prior`` is indexed like the classes; ``usable`` is False when the method could not be applied
    (then ``message`` says why and ``prior`` is NaN or a fallback named in ``method``).
    """

    method: str
    prior: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    usable: bool = True
    message: str = ""
    diagnostics: dict = field(default_factory=dict)


# --- BBSE ----------------------------------------------------------------------------------------
def joint_counts(true_codes: np.ndarray, pred_codes: np.ndarray, k: int) -> np.ndarray:
    """``N[pred, true]``: rows predicted ``pred`` whose label is ``true`` (codes ``0 .. k-1``)."""
    ok = (true_codes >= 0) & (pred_codes >= 0)
    return np.bincount(pred_codes[ok] * k + true_codes[ok], minlength=k * k).reshape(k, k).astype(float)


def conditional_confusion(joint: np.ndarray) -> np.ndarray:
    """``C[pred, true] = P(pred | true)`` from joint counts (columns of absent classes stay 0)."""
    col = joint.sum(axis=0, keepdims=True)
    return np.divide(joint, col, out=np.zeros_like(joint), where=col > 0)


def bbse(confusion: np.ndarray, pred_shares: np.ndarray) -> np.ndarray:
    """Class shares ``π'`` with ``confusion @ π' ≈ pred_shares``, ``π' ≥ 0``, ``Σ π' = 1``.

    Solved as non-negative least squares with the sum-to-one constraint as a heavily weighted
    extra equation (exact inversion when ``confusion`` is invertible and the solution is feasible).

    Examples
    --------
    >>> C = np.array([[0.9, 0.2], [0.1, 0.8]])
    >>> np.round(bbse(C, C @ np.array([0.7, 0.3])), 3).tolist()
    [0.7, 0.3]
    """
    k = confusion.shape[1]
    weight = 1e3
    a = np.vstack([confusion, weight * np.ones((1, k))])
    b = np.concatenate([np.asarray(pred_shares, dtype=float), [weight]])
    prior, _ = optimize.nnls(a, b)
    total = prior.sum()
    return prior / total if total > 0 else np.full(k, 1.0 / k)


def bbse_estimate(ref_joint: np.ndarray, prod_pred_counts: np.ndarray, *, n_resamples: int = 200,
                  seed: int = 0) -> PriorEstimate:
    """BBSE with a bootstrap interval (reference confusion and production predictions resampled).

    Unusable (``usable=False``, prior NaN) when the confusion matrix is singular — one class always
    predicted, or two classes predicted alike — since then no inversion can tell the classes apart.
    """
    k = ref_joint.shape[0]
    present = ref_joint.sum(axis=0) > 0
    confusion = conditional_confusion(ref_joint)[:, present]
    singular = np.linalg.matrix_rank(confusion) < present.sum()
    cond = float(np.linalg.cond(confusion)) if not singular else float("inf")
    nan = np.full(k, np.nan)
    if singular or not np.isfinite(cond) or cond > MAX_CONDITION:
        predicted = int((ref_joint.sum(axis=1) > 0).sum())
        why = (f"only {predicted} class{'es' if predicted != 1 else ''} ever predicted on reference"
               if predicted < present.sum() else f"condition number {cond:.3g} > {MAX_CONDITION:g}")
        return PriorEstimate("bbse", nan, nan, nan, usable=False,
                             message=f"the reference confusion matrix cannot be inverted ({why})",
                             diagnostics={"condition_number": cond})
    prod_counts = np.asarray(prod_pred_counts, dtype=float)
    shares = prod_counts / prod_counts.sum()

    def solve(joint, counts):
        c = conditional_confusion(joint)[:, present]
        out = np.zeros(k)
        out[present] = bbse(c, counts / counts.sum())
        return out

    point = solve(ref_joint, prod_counts)
    rng = np.random.default_rng(seed)
    n_ref, n_prod = int(ref_joint.sum()), int(prod_counts.sum())
    draws = np.empty((n_resamples, k))
    flat = ref_joint.ravel() / ref_joint.sum()
    for i in range(n_resamples):
        joint = rng.multinomial(n_ref, flat).reshape(k, k).astype(float)
        draws[i] = solve(joint, rng.multinomial(n_prod, shares).astype(float))
    lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)
    return PriorEstimate("bbse", point, lo, hi, diagnostics={"condition_number": cond})


# --- EM --------------------------------------------------------------------------------------------
def em_prior(probs: np.ndarray, train_prior: np.ndarray, *, counts: np.ndarray | None = None,
             tol: float = 1e-7, max_iter: int = 2000) -> tuple[np.ndarray, int, bool]:
    """Saerens–Latinne–Decaestecker EM: the prior under which re-weighted probabilities are self-consistent.

    Parameters
    ----------
    probs : ndarray of shape (n, k)
        Probabilities calibrated for ``train_prior``.
    counts : ndarray of shape (n,), optional
        Row multiplicities (binned inputs).

    Returns
    -------
    prior, iterations, converged
    """
    train_prior = np.asarray(train_prior, dtype=float)
    counts = np.ones(len(probs)) if counts is None else np.asarray(counts, dtype=float)
    total = counts.sum()
    prior = train_prior.copy()
    ratio_base = np.where(train_prior > 0, 1.0 / np.maximum(train_prior, 1e-12), 0.0)
    for i in range(1, max_iter + 1):
        adjusted = probs * (prior * ratio_base)
        adjusted /= np.maximum(adjusted.sum(axis=1, keepdims=True), 1e-300)
        new = counts @ adjusted / total
        if np.max(np.abs(new - prior)) < tol:
            return new, i, True
        prior = new
    return prior, max_iter, False


def logit_bins(scores: np.ndarray, labels: np.ndarray | None = None):
    """Scores binned on a fine logit grid: bin centres (logit), counts, and positives per bin."""
    z = np.round(logit(np.clip(np.asarray(scores, dtype=float), _EPS, 1 - _EPS)) / _LOGIT_STEP)
    centres, inverse, counts = np.unique(z, return_inverse=True, return_counts=True)
    positives = (np.bincount(inverse, weights=np.asarray(labels, dtype=float), minlength=len(centres))
                 if labels is not None else None)
    return centres * _LOGIT_STEP, counts.astype(float), positives


def platt(z: np.ndarray, positives: np.ndarray, counts: np.ndarray, *, iterations: int = 50) -> tuple[float, float]:
    """Platt scaling on the logit scale, ``P(y=1) = expit(a + b·z)``, fitted to binned counts.

    Newton's method on the two parameters (a few steps; far cheaper than a general optimiser,
    which matters inside the bootstrap).
    """
    theta = np.array([0.0, 1.0])
    design = np.column_stack([np.ones_like(z), z])
    for _ in range(iterations):
        q = expit(design @ theta)
        grad = design.T @ (positives - counts * q)
        hess = (design * (counts * q * (1 - q))[:, None]).T @ design + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        theta = theta + step
        if np.max(np.abs(step)) < 1e-9:
            break
    return float(theta[0]), float(theta[1])


def expected_calibration_error(scores: np.ndarray, labels: np.ndarray, *, bins: int = 10) -> float:
    """ECE on equal-count score bins: mean |observed rate − mean score|, weighted by bin size."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    if len(s) == 0:
        return float("nan")
    order = np.argsort(s, kind="stable")
    parts = np.array_split(order, min(bins, len(s)))
    return float(sum(len(p) * abs(y[p].mean() - s[p].mean()) for p in parts if len(p)) / len(s))


@dataclass
class Calibration:
    """How well the score is calibrated on reference, before and after Platt scaling."""

    a: float
    b: float
    ece_raw: float
    ece_calibrated: float
    mean_score: float
    positive_rate: float

    def apply(self, scores: np.ndarray) -> np.ndarray:
        return expit(self.a + self.b * logit(np.clip(np.asarray(scores, dtype=float), _EPS, 1 - _EPS)))


def calibrate(scores: np.ndarray, labels: np.ndarray) -> Calibration:
    """Fit Platt scaling of ``scores`` to binary ``labels`` (reference) and report both ECEs."""
    z, counts, positives = logit_bins(scores, labels)
    a, b = platt(z, positives, counts)
    cal = Calibration(a, b, expected_calibration_error(scores, labels), float("nan"),
                      float(np.mean(scores)), float(np.mean(labels)))
    cal.ece_calibrated = expected_calibration_error(cal.apply(scores), labels)
    return cal


def em_estimate(ref_scores: np.ndarray, ref_labels: np.ndarray, prod_scores: np.ndarray, *,
                n_resamples: int = 200, seed: int = 0) -> tuple[PriorEstimate, Calibration]:
    """Binary EM on Platt-recalibrated scores, with a bootstrap interval over both periods.

    Returns the estimate (``prior`` = [negative share, positive share]) and the reference
    calibration it relied on.
    """
    ref_labels = np.asarray(ref_labels, dtype=float)
    cal = calibrate(ref_scores, ref_labels)
    z_ref, n_ref_bins, pos_ref_bins = logit_bins(ref_scores, ref_labels)
    z_prod, n_prod_bins, _ = logit_bins(prod_scores)

    def run(a, b, counts, train_rate):
        q = expit(a + b * z_prod)
        prior, iterations, converged = em_prior(np.column_stack([1 - q, q]),
                                                np.array([1 - train_rate, train_rate]), counts=counts)
        return prior, iterations, converged

    # EM's training prior is the mean calibrated probability, which Platt makes equal the
    # reference positive rate: identity when nothing shifted.
    train_rate = float(np.sum(n_ref_bins * expit(cal.a + cal.b * z_ref)) / n_ref_bins.sum())
    point, iterations, converged = run(cal.a, cal.b, n_prod_bins, train_rate)
    rng = np.random.default_rng(seed)
    n_ref, n_prod = int(n_ref_bins.sum()), int(n_prod_bins.sum())
    cells = np.concatenate([pos_ref_bins, n_ref_bins - pos_ref_bins])
    m = len(z_ref)
    draws = np.empty((n_resamples, 2))
    for i in range(n_resamples):
        resampled = rng.multinomial(n_ref, cells / cells.sum()).astype(float)
        pos, counts = resampled[:m], resampled[:m] + resampled[m:]
        a, b = platt(z_ref, pos, counts)
        rate = float(np.sum(counts * expit(a + b * z_ref)) / counts.sum())
        draws[i] = run(a, b, rng.multinomial(n_prod, n_prod_bins / n_prod).astype(float), rate)[0]
    lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)
    message = "" if converged else f"EM did not converge in {iterations} iterations"
    estimate = PriorEstimate("em", point, lo, hi, usable=converged, message=message,
                             diagnostics={"iterations": iterations, "converged": converged,
                                          "ece_raw": cal.ece_raw, "ece_calibrated": cal.ece_calibrated})
    return estimate, cal


def mixture_distance(ref_scores: np.ndarray, ref_positive: np.ndarray, prod_scores: np.ndarray,
                     positive_rate: float) -> float:
    """KS distance between production scores and reference's class-conditional scores mixed at ``positive_rate``.

    Under label shift production scores are exactly that mixture, so a large distance means the
    outputs moved in a way no change of class balance explains (inputs drifted, a different model
    served, …) and prior estimates from those outputs are not to be trusted.
    """
    s = np.asarray(ref_scores, dtype=float)
    y = np.asarray(ref_positive, dtype=bool)
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    prod = np.sort(np.asarray(prod_scores, dtype=float))
    if len(pos) == 0 or len(neg) == 0 or len(prod) == 0:
        return float("nan")
    gaps = []
    for side in ("right", "left"):  # both one-sided limits of the step functions
        mix = (positive_rate * np.searchsorted(pos, prod, side=side) / len(pos)
               + (1 - positive_rate) * np.searchsorted(neg, prod, side=side) / len(neg))
        ecdf = np.searchsorted(prod, prod, side=side) / len(prod)
        gaps.append(np.max(np.abs(ecdf - mix)))
    return float(max(gaps))


# --- consequences at a threshold ---------------------------------------------------------------------
def infer_threshold(scores: np.ndarray, predicted_positive: np.ndarray, *,
                    min_agreement: float = 0.99) -> tuple[float, float]:
    """The score threshold the logged predictions follow (``score >= t`` ⇒ positive), and the agreement.

    Returns 0.5 when it separates the predictions as well as any threshold, or when no threshold
    reproduces ``min_agreement`` of them (then the agreement is that of 0.5).
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(predicted_positive, dtype=bool)
    ok = np.isfinite(s)
    s, y = s[ok], y[ok]
    if len(s) == 0:
        return 0.5, float("nan")
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    # split before index i: rows < i negative, rows >= i positive; only between distinct scores
    neg_before = np.concatenate([[0], np.cumsum(~y)])
    pos_after = y.sum() - np.concatenate([[0], np.cumsum(y)])
    agreement = (neg_before + pos_after) / len(s)
    valid = np.concatenate([[True], s[1:] > s[:-1], [True]])
    agreement = np.where(valid, agreement, -1)
    i = int(np.argmax(agreement))
    best = float(agreement[i])
    lo_s = s[i - 1] if i > 0 else -np.inf
    hi_s = s[i] if i < len(s) else np.inf
    if best < min_agreement or not np.isfinite(hi_s):
        return 0.5, float(np.mean((s >= 0.5) == y))
    if lo_s < 0.5 <= hi_s:
        return 0.5, best
    return float(hi_s), best


def roc_points(scores: np.ndarray, positive: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True- and false-positive rates of ``score >= t`` for each threshold (reference rows)."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(positive, dtype=bool)
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    t = np.asarray(thresholds, dtype=float)
    tpr = 1 - np.searchsorted(pos, t, side="left") / max(len(pos), 1)
    fpr = 1 - np.searchsorted(neg, t, side="left") / max(len(neg), 1)
    return tpr, fpr


def operating_metrics(tpr, fpr, positive_rate: float, *, cost_ratio: float = 1.0) -> dict[str, np.ndarray]:
    """Expected accuracy, precision, recall, share flagged positive and cost at a class balance.

    With ``P(score | y)`` unchanged (label shift), a threshold's TPR and FPR carry over from
    reference and only the mix of classes changes. ``cost`` is per row in units of one false
    positive, a false negative costing ``cost_ratio``.
    """
    tpr, fpr = np.asarray(tpr, dtype=float), np.asarray(fpr, dtype=float)
    pi = float(positive_rate)
    flagged = pi * tpr + (1 - pi) * fpr
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(flagged > 0, pi * tpr / flagged, np.nan)
    return {"accuracy": pi * tpr + (1 - pi) * (1 - fpr), "precision": precision, "recall": tpr,
            "positive_share": flagged, "cost": pi * (1 - tpr) * cost_ratio + (1 - pi) * fpr}


def threshold_grid(scores: np.ndarray, *, extra=(), size: int = 201) -> np.ndarray:
    """Candidate thresholds: reference score quantiles plus ``extra`` (e.g. the current threshold)."""
    s = np.asarray(scores, dtype=float)
    s = s[np.isfinite(s)]
    q = np.quantile(s, np.linspace(0, 1, size)) if len(s) else np.array([])
    return np.unique(np.concatenate([q, np.linspace(0.01, 0.99, 99), np.asarray(extra, dtype=float)]))


def expected_at_prior(confusion: np.ndarray, prior: np.ndarray) -> dict[str, np.ndarray | float]:
    """Accuracy, per-class precision and recall of fixed decisions at class shares ``prior``.

    ``confusion[pred, true] = P(pred | true)`` (reference). Under a change of class balance alone
    the decisions' recall per class (``P(pred = k | y = k)``) stays what it was; accuracy and
    precision move with the mix: ``accuracy = Σ_k C[k, k] π_k`` and
    ``precision_k = C[k, k] π_k / Σ_j C[k, j] π_j``.

    Examples
    --------
    >>> C = np.array([[0.95, 0.4], [0.05, 0.6]])    # TNR 0.95, TPR 0.6
    >>> out = expected_at_prior(C, np.array([0.9, 0.1]))
    >>> round(out["accuracy"], 3), round(float(out["precision"][1]), 3)
    (0.915, 0.571)
    """
    c = np.asarray(confusion, dtype=float)
    pi = np.asarray(prior, dtype=float)
    predicted = c @ pi
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, np.diag(c) * pi / predicted, np.nan)
    return {"accuracy": float(np.diag(c) @ pi), "precision": precision, "recall": np.diag(c).copy(),
            "predicted_share": predicted}


def prior_shift_impact(confusion: np.ndarray, reference_prior: np.ndarray, new_prior: np.ndarray, *,
                       positive: int | None = None) -> dict:
    """What moving the class shares from ``reference_prior`` to ``new_prior`` does to fixed decisions.

    Returns the expected accuracy at both balances and its change, and the change of precision
    (of ``positive`` for a binary problem, else of the class whose precision moves most, index
    ``precision_class``) and of its recall (zero: a class-balance change alone does not move it). NaN when no decision was made on
    reference.
    """
    before = expected_at_prior(confusion, reference_prior)
    after = expected_at_prior(confusion, new_prior)
    if positive is not None:
        p0, p1 = before["precision"][positive], after["precision"][positive]
        r0, r1 = before["recall"][positive], after["recall"][positive]
    else:
        # the class whose precision moves most: an average over classes hides one class collapsing
        delta = np.abs(after["precision"] - before["precision"])
        delta[~(np.asarray(reference_prior) > 0) | ~np.isfinite(delta)] = -1.0
        positive = int(np.argmax(delta))
        p0, p1 = before["precision"][positive], after["precision"][positive]
        r0, r1 = before["recall"][positive], after["recall"][positive]
    return {"precision_class": positive,"accuracy_reference": before["accuracy"], "accuracy_production": after["accuracy"],
            "accuracy_change": after["accuracy"] - before["accuracy"],
            "precision_reference": float(p0), "precision_production": float(p1),
            "precision_change": float(p1 - p0), "recall_reference": float(r0), "recall_production": float(r1),
            "recall_change": float(r1 - r0),
            "precision_by_class": {"reference": before["precision"], "production": after["precision"]}}


def prior_adjusted(scores: np.ndarray, old_rate: float, new_rate: float) -> np.ndarray:
    """Binary ``p'(y=1|x) ∝ p(y=1|x) · π'(1)/π(1)`` against ``(1 - p) · π'(0)/π(0)``."""
    p = np.asarray(scores, dtype=float)
    w1 = new_rate / old_rate if old_rate > 0 else 1.0
    w0 = (1 - new_rate) / (1 - old_rate) if old_rate < 1 else 1.0
    num = p * w1
    den = num + (1 - p) * w0
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


# --- regression targets -------------------------------------------------------------------------------
def psi(reference: np.ndarray, production: np.ndarray, *, bins: int = drift.BINS, eps: float = drift.EPS) -> float:
    """Population stability index on reference-quantile bins (< 0.1 stable, > 0.25 critical).

    The same statistic the drift check reports for a numeric column (:func:`drift.psi` on
    :func:`drift.quantile_edges` bins: right-closed, edges at reference deciles, shares below
    ``eps`` raised to it). Missing and infinite values are left out; NaN when a side has none left.
    """
    r, p = drift.sorted_finite(reference)[0], drift.sorted_finite(production)[0]
    if len(r) == 0 or len(p) == 0:
        return float("nan")
    edges = drift.quantile_edges(r, bins)
    return drift.psi(drift.bin_counts(r, edges), drift.bin_counts(p, edges), eps=eps)


def ks(reference: np.ndarray, production: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov statistic and p-value (:func:`drift.ks_sorted`, as the drift
    check computes it); missing and infinite values are left out."""
    return drift.ks_sorted(drift.sorted_finite(reference)[0], drift.sorted_finite(production)[0])
