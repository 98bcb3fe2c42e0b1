"""Gap attribution: split the offline-vs-production metric gap into parts a reader can act on.

The headline metric is a mean of a per-row outcome (1/0 correct, or absolute error). Reweighting
the *reference* rows changes which population that mean describes:

1. ``covariate_shift`` — reference rows reweighted by density ratios w(x) = p_prod(x) / p_ref(x)
   from a domain classifier: what the model would score on production's feature mix if the
   relation between features and target had not changed (covariate shift assumption).
2. ``prior_shift`` — on top of that, reweighted per class so the class balance matches production
   (observed, or estimated by the prior-shift check when labels are missing): what the model
   would score under production's class balance with P(x | y) unchanged (label shift assumption).
3. ``out_of_support`` — production rows in regions the reference never covered (the domain
   classifier's density ratio at its cap): reweighting reference rows cannot see them, so their
   loss is measured on the labelled production rows there: their share times how much worse the
   model does there than the level of step 2 (as in Cai, Namkoong & Yadlowsky, "Diagnosing model
   performance under distribution shift", 2023, which separates shift within the reference's
   support from shift out of it).
4. ``measurement`` — the observed production metric on labelled rows minus the fair estimate for
   all production rows (when the measurement check found the labelled rows to be a biased sample).
5. ``unexplained`` — the rest: what neither population change explains (concept drift, skew,
   label problems, leakage, a different model).

The parts are sequential (each conditional on the ones before), so they add up to the gap
exactly. Their intervals come from a bootstrap over reference rows with the weights held fixed.

Where the assumptions break, and the result says so (``reliability``):
- density ratios are unreliable without overlap — when production holds values reference never
  saw (a unit change, a new category) the weights explode; weights are clipped at the 99.9th
  percentile and the effective sample size is reported; below 5% of the reference rows the
  covariate part is flagged unreliable;
- covariate and prior shift are not separable when both happen: the order chosen (covariate
  first) gives the prior part only what the feature mix does not already explain.
"""

from __future__ import annotations

import numpy as np

PARTS = ("covariate_shift", "out_of_support", "prior_shift", "measurement", "unexplained")


def class_weights(y: np.ndarray, base_weights: np.ndarray, target_rates: dict) -> np.ndarray:
    """Rescale ``base_weights`` per class so the weighted class shares equal ``target_rates``."""
    y = np.asarray(y).astype(str)  # class keys come back from JSON as text
    w = np.asarray(base_weights, dtype=float).copy()
    total = w.sum()
    for cls, rate in target_rates.items():
        mask = y == str(cls)
        current = w[mask].sum() / total if total > 0 else 0.0
        if current > 0 and rate is not None:
            w[mask] *= rate / current
    return w


def effective_sample_size(w: np.ndarray) -> float:
    """Kish's effective sample size of weights ``w``."""
    w = np.asarray(w, dtype=float)
    return float(w.sum() ** 2 / np.sum(w**2)) if np.any(w > 0) else 0.0


def clip_weights(w: np.ndarray, quantile: float = 0.999) -> np.ndarray:
    w = np.asarray(w, dtype=float)
    return np.minimum(w, np.quantile(w, quantile)) if len(w) else w


def _weighted_mean(x, w):
    return float(np.sum(x * w) / np.sum(w))


def attribute_gap(outcome_ref: np.ndarray, *, covariate_weights: np.ndarray | None,
                  y_ref: np.ndarray | None, production_rates: dict | None,
                  observed_production: float, fair_production: float | None = None,
                  outside: dict | None = None, n_resamples: int = 200, seed: int = 0) -> dict:
    """Split ``mean(outcome_ref) - observed_production`` into :data:`PARTS`.

    Parameters
    ----------
    outcome_ref : array
        Per reference row: 1/0 correct (classification) or absolute error (regression).
    covariate_weights : array or None
        Density ratios p_prod(x) / p_ref(x) per reference row; None skips the covariate part.
    y_ref : array or None
        Reference labels, for the prior part (classification only).
    production_rates : dict or None
        Production class shares (class → share); None skips the prior part.
    observed_production : float
        The production metric as measured on labelled rows.
    fair_production : float, optional
        The metric estimated for all production rows when labelled rows are a biased sample.
    outside : dict, optional
        Labelled production rows out of the reference's support: ``share`` of them and ``metric``
        measured there (with ``rows``). None or a share of 0 leaves the part at zero.

    Returns
    -------
    dict
        ``reference``, ``production``, ``gap`` and, per part, ``value`` (metric lost: positive
        means this part makes production worse for an accuracy-like metric) with ``ci``;
        ``reliability`` notes and ``effective_sample_size``.
    """
    x = np.asarray(outcome_ref, dtype=float)
    ok = np.isfinite(x)
    x = x[ok]
    n = len(x)
    notes: list[str] = []
    w_cov = np.ones(n)
    if covariate_weights is not None:
        w_cov = clip_weights(np.asarray(covariate_weights, dtype=float)[ok])
    ess = effective_sample_size(w_cov)
    if covariate_weights is not None and ess < 0.05 * n:
        notes.append(f"covariate part unreliable: the density ratios leave an effective sample of {ess:.0f} "
                     f"of {n} reference rows (production holds inputs reference barely covers)")
    w_prior = w_cov
    if production_rates and y_ref is not None:
        w_prior = class_weights(np.asarray(y_ref, dtype=object)[ok], w_cov, production_rates)
    fair = observed_production if fair_production is None else fair_production

    def levels(idx):
        xs = x[idx]
        return (float(xs.mean()), _weighted_mean(xs, w_cov[idx]), _weighted_mean(xs, w_prior[idx]))

    share = float(outside["share"]) if outside and outside.get("share") else 0.0
    metric_out = float(outside["metric"]) if share else 0.0

    def split(r, c, pr):
        # rows out of support do `metric_out` where, within support, the model would do `pr`
        oos = share * (pr - metric_out)
        return {"covariate_shift": r - c, "prior_shift": c - pr, "out_of_support": oos,
                "unexplained": pr - fair - oos, "measurement": fair - observed_production}

    ref, cov, prior = levels(slice(None))
    point = split(ref, cov, prior)
    rng = np.random.default_rng(seed)
    draws = {p: [] for p in PARTS}
    resamples = n_resamples if n > 1 else 0
    x_cov, x_prior = x * w_cov, x * w_prior
    for start in range(0, resamples, 50):  # 50 resamples per array operation
        idx = rng.integers(0, n, (min(50, resamples - start), n))
        for level in zip(x[idx].mean(axis=1), x_cov[idx].sum(axis=1) / w_cov[idx].sum(axis=1),
                         x_prior[idx].sum(axis=1) / w_prior[idx].sum(axis=1), strict=True):
            for p, v in split(*map(float, level)).items():
                draws[p].append(v)
    parts = {}
    for p in PARTS:
        d = np.asarray(draws[p])
        ci = [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))] if len(d) else [None, None]
        parts[p] = {"value": float(point[p]), "ci": ci}
    if covariate_weights is None:
        notes.append("covariate part not estimated (no density ratios)")
    if not production_rates:
        notes.append("prior part not estimated (no production class balance)")
    if fair_production is None:
        notes.append("measurement part is zero: the labelled production rows were not found to be biased")
    if outside and outside.get("share"):
        notes.append(f"{share:.0%} of labelled production rows lie where reference has no rows; the model scores "
                     f"{metric_out:.3f} there ({outside.get('rows', 0):,} rows"
                     + (f" in a seeded sample of {outside['sample']:,} labelled rows" if outside.get("sample") else "")
                     + "): that loss is the out-of-support part")
    return {"reference": ref, "production": observed_production, "gap": ref - observed_production,
            "parts": parts, "effective_sample_size": ess, "reference_rows": n, "reliability": notes}
