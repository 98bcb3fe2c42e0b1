"""Documented defaults behind every verdict, overridable per incident under ``thresholds:``.

```yaml
thresholds:
  drift: {psi_critical: 0.3}
  health: {error_rate: 0.02}
```

Each value is explained in docs/thresholds.md; the defaults follow common practice in the field.
"""

from __future__ import annotations

import difflib

from .errors import SpecError

DEFAULTS: dict[str, dict[str, float]] = {
    "general": {
        "alpha": 0.05,               # false-discovery rate (Benjamini–Hochberg) across features/segments
        "sample_rows": 200_000,      # seeded sample size for statistics that allow sampling
        "seed": 0,
    },
    "measurement": {
        "metric_gap": 0.02,          # smallest metric difference that counts as material
        "coverage_bias_auc": 0.6,    # labelled-vs-unlabelled classifier AUC above which labels are a biased sample
        "relative_gap": 0.1,         # regression: relative metric (MAE) difference that counts as material
        "min_labels": 100,           # fewer labelled production rows than this: too few to judge the gap
        "class_balance_change": 0.05,  # absolute change of a class share that makes accuracy comparisons unfair
        "calibration_error": 0.05,   # expected calibration error on reference below which the score is trusted
    },
    "deployment": {
        "reproduce_rate": 0.99,      # share of logged predictions the model must reproduce
        "minor_version_share": 0.01,  # versions below this share of traffic are still reported
    },
    "health": {
        "error_rate": 0.01,
        "timeout_rate": 0.005,
        "missing_increase": 0.01,    # missing-rate increase over reference, absolute
        "volume_drop": 0.5,          # a day below this fraction of expected (or median) volume
        "out_of_range": 0.01,        # share of values outside the reference range
        "unseen_categories": 0.01,   # share of values in categories never seen in reference
        "no_prediction": 0.001,      # share of rows without a prediction
    },
    "segments": {
        "min_rows": 30,              # segments smaller than this are reported, never flagged
        "metric_gap": 0.05,          # segment worse than the rest by at least this much (accuracy, absolute)
        "relative_gap": 0.2,         # regression: segment error (MAE) at least this much above the rest, relative
        "share_growth": 1.5,         # a segment whose traffic share grew by this factor (and 1 point) since reference
    },
    "drift": {
        "psi_warning": 0.1,
        "psi_critical": 0.25,
        "js_warning": 0.13,          # Jensen–Shannon distance (base 2), categorical: ≈ PSI 0.1 (JS² ≈ PSI / 8 ln 2)
        "domain_auc_warning": 0.6,
        "domain_auc_critical": 0.75,
        "min_category_share": 0.01,  # rarer categories are pooled into "(other)"
        "domain_rows": 25_000,       # rows sampled per side for the domain classifier
    },
    "leakage": {
        "single_feature_auc": 0.95,  # a feature that alone reaches this ROC AUC on reference
        "single_feature_r2": 0.9,
        "share_of_full_model": 0.95,  # …or this share of the full model's skill
        "collapse": 0.15,            # drop in single-feature power from reference to production
        "shared_rows": 0.01,         # excess share of production rows also in reference (ids or identical rows)
        "target_function": 0.95,     # share of the target's uncertainty one feature removes: near-deterministic
        "identifier_skill": 0.2,     # an id-like column predicting the target this well (Gini, or R²) leaks order
        "sample_rows": 50_000,       # seeded sample for single-feature power and mutual information
    },
    "skew": {
        "match_tolerance": 1e-6,     # relative difference counted as a near-exact match
        "mismatch_rate": 0.01,       # share of joined rows that may differ before a feature is skewed
        "unjoined_rate": 0.05,
        "pattern_share": 0.9,        # share of mismatching rows a named pattern (scale, cap …) must explain
        "sample_rows": 20_000,       # seeded sample of joined rows scored by the model for prediction flips
    },
    "labels": {
        "issue_rate_gap": 0.03,      # label-issue rate difference (absolute) that matters
        "source_disagreement": 0.1,  # a label source's agreement with the model below the rest by this
        "definition_shift": 0.1,     # max reliability-curve gap at the same score
        "residual_bias": 0.5,        # regression: a source's median residual vs the rest, in robust SDs
    },
    "prior_shift": {
        "metric_impact": 0.01,       # expected accuracy change at the current decisions that makes a move material
        "precision_impact": 0.03,    # …or expected precision change (positive class; multiclass: the class moving most)
        "rate_change": 0.05,         # share difference that matters where no decisions judge impact; critical at 2x
        "relative_change": 0.25,     # …or relative difference
        "cost_ratio": 1.0,           # cost of a false negative / cost of a false positive
        "calibration_ece": 0.03,     # EM needs the score calibrated on reference (ECE after Platt scaling)
        "psi_critical": 0.25,        # regression: target PSI on 10 reference-quantile bins
        "ks_statistic": 0.1,         # regression: …or KS statistic (with p < alpha)
    },
}


def validate_overrides(overrides: dict[str, dict[str, float]], label: str) -> None:
    """Reject unknown sections or keys under ``thresholds:``, suggesting the nearest valid one."""
    for section, values in overrides.items():
        if section not in DEFAULTS:
            close = difflib.get_close_matches(section, list(DEFAULTS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else f" Valid: {', '.join(DEFAULTS)}."
            raise SpecError(f"{label}: unknown thresholds section {section!r}.{hint}")
        for key in values:
            if key not in DEFAULTS[section]:
                close = difflib.get_close_matches(key, list(DEFAULTS[section]), n=1)
                hint = (f" Did you mean {close[0]!r}?" if close
                        else f" Valid: {', '.join(DEFAULTS[section])}.")
                raise SpecError(f"{label}: unknown threshold 'thresholds.{section}.{key}'.{hint}")


def resolve(overrides: dict[str, dict[str, float]], section: str, key: str) -> float:
    """The threshold in force: the spec's override, else the documented default."""
    return overrides.get(section, {}).get(key, DEFAULTS[section][key])
