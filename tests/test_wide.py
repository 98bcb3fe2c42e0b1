"""Wide tables: thousands of features stay within a memory bound a small multiple of the data.

The investigation of the ``wide`` scenario (2,008 columns) runs in a child process whose address
space is capped with ``resource.setrlimit``: a statistic that copies the matrix once per feature
(2,000 copies of a 2,000-column sample is tens of GB) dies there with a MemoryError.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mlinvestigate.stats import domain

ROWS = 2000
CAP_BYTES = 4 * 1024**3   # the run needs ~2.6 GB of address space, mostly libraries and thread stacks
MODEL_BASED = ("drift", "labels", "leakage", "measurement", "prior_shift", "deployment", "segments")

CHILD = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
    from mlinvestigate import checks, load_incident
    inc = load_incident(sys.argv[1], trust_model=True)
    out = {{"features": len(inc.features)}}
    for cid in {checks!r}:
        f = checks.get(cid).run(inc).finding
        out[cid] = {{"verdict": f.verdict, "culprits": [str(c) for c in f.culprits]}}
    print(json.dumps(out))
""")


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS caps the address space on Linux")
def test_wide_investigation_under_a_memory_cap(scenario):
    from mlinvestigate.scenarios import EXPECTED

    spec = scenario("wide", rows=ROWS)
    proc = subprocess.run([sys.executable, "-c", CHILD.format(cap=CAP_BYTES, checks=MODEL_BASED), str(spec)],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["features"] >= 2000
    drift = out["drift"]
    assert drift["verdict"] == "detected"
    assert set(drift["culprits"][:5]) == set(EXPECTED["wide"]["culprits"])
    for cid in MODEL_BASED:
        assert out[cid]["verdict"] != "error", cid


def test_permutation_importance_memory_does_not_grow_with_width():
    """The permutation importance never holds more than a couple of copies of its rows: measured
    with tracemalloc on 1,000 columns, the peak is far below the 1,000 copies a stacked version needs."""
    import tracemalloc

    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    n, k = 600, 1000
    X = rng.normal(size=(n, k))
    y = (X[:, 3] + X[:, 700] + rng.normal(size=n) > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    tracemalloc.start()
    drops = domain._permutation_drops(model, X, y, n, np.random.default_rng(1))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * X.nbytes
    assert set(np.argsort(drops)[-2:]) == {3, 700}
    unused = np.setdiff1d(np.arange(k), domain._split_features(model, k))
    assert len(unused) and (drops[unused] == 0).all()


def test_permutation_drops_match_the_public_prediction_path():
    """Scoring the preprocessed matrix directly gives the drops predict_proba gives, categorical
    columns (which the model reorders internally) included."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(2)
    n = 3000
    X = rng.random((n, 6))
    X[:, 1], X[:, 3] = rng.integers(0, 3, n), rng.integers(0, 4, n)
    X[rng.random(n) < 0.1, 4] = np.nan
    y = ((X[:, 4] > 0.5) ^ (X[:, 3] == 2)).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, categorical_features=np.array([0, 1, 0, 1, 0, 0], bool),
                                           random_state=0).fit(X, y)
    assert domain._raw_scorer(model, X) is not None
    fast = domain._permutation_drops(model, X, y, n, np.random.default_rng(3))
    public = domain._stacked_drops(model, X, y, domain._split_features(model, 6), np.random.default_rng(3),
                                   np.zeros(6))
    np.testing.assert_allclose(fast, public, atol=0.03)
    assert set(np.argsort(fast)[-2:]) == {3, 4}
    json.dumps(fast.tolist())
