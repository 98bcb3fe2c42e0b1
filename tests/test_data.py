"""Loading: column roles, feature typing, label handling and schema problems."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlinvestigate import DataError, load_incident
from tests.helpers import tiny_incident


def test_roles_and_types(tmp_path):
    """Features default to every column without a role, each typed."""
    inc = load_incident(tiny_incident(tmp_path))
    assert inc.features == ["x1", "x2", "device"]
    assert inc.feature_types == {"x1": "numeric", "x2": "numeric", "device": "categorical"}
    assert inc.kind == "binary" and inc.classes == [0, 1] and inc.positive_label == 1
    assert {i["role"] for i in inc.inputs} == {"reference", "production"}
    assert all(len(i["sha256"]) == 64 for i in inc.inputs)


def test_csv_and_categories_share_codes(tmp_path):
    """CSV loads too, and a category's code means the same value in both files."""
    inc = load_incident(tiny_incident(tmp_path, fmt="csv"))
    assert inc.reference["device"].dtype == inc.production["device"].dtype


def test_missing_target_in_production_means_unlabelled(tmp_path):
    """No target column in production: every row is 'not labelled yet', with a warning."""
    inc = load_incident(tiny_incident(tmp_path, prod_edit=lambda d: d.drop(columns="label")))
    assert not inc.labelled.any()
    assert any("not labelled yet" in w for w in inc.warnings)


def test_empty_cells_are_unlabelled_and_labels_stay_integers(tmp_path):
    """Empty target cells are unlabelled rows; the rest keep their integer labels."""
    def edit(d):
        d["label"] = d["label"].astype(float)
        d.loc[d.index[:100], "label"] = np.nan
        return d
    inc = load_incident(tiny_incident(tmp_path, prod_edit=edit))
    assert int(inc.labelled.sum()) == 300
    assert set(inc.production["label"].dropna().unique()) <= {0, 1}


def test_string_labels(tmp_path):
    """String labels work; positive_label picks the class."""
    def edit(d):
        d["label"] = np.where(d["label"] == 1, "declined", "approved")
        d["pred"] = np.where(d["pred"] == 1, "declined", "approved")
        return d
    inc = load_incident(tiny_incident(tmp_path, prod_edit=edit, ref_edit=edit,
                                      columns_extra={"positive_label": "declined"}))
    assert inc.classes == ["approved", "declined"] and inc.positive_label == "declined"


def test_positive_label_not_in_data(tmp_path):
    with pytest.raises(DataError, match="positive_label"):
        load_incident(tiny_incident(tmp_path, columns_extra={"positive_label": "yes"}))


@pytest.mark.parametrize("kwargs, message", [
    ({"columns_extra": {"prediction": "prediction"}}, "no column 'prediction'.*Did you mean 'pred'"),
    ({"prod_edit": lambda d: d.iloc[:0]}, "production file .* has no rows"),
    ({"ref_edit": lambda d: d.assign(label=0)}, "single class"),
    ({"columns_extra": {"timestamp": "device"}}, "timestamp column 'device'"),
])
def test_bad_data_is_named(tmp_path, kwargs, message):
    """Unusable data raises DataError naming the file or column."""
    with pytest.raises(DataError, match=message):
        load_incident(tiny_incident(tmp_path, **kwargs))


def test_feature_missing_from_production_and_type_change(tmp_path):
    """A dropped feature and a changed type are warnings, and the feature is left out/coerced."""
    def edit(d):
        d = d.drop(columns="x2")
        d["x1"] = d["x1"].astype(str)
        return d
    inc = load_incident(tiny_incident(tmp_path, prod_edit=edit))
    assert inc.missing_in_production == ["x2"] and "x2" not in inc.features
    assert pd.api.types.is_numeric_dtype(inc.production["x1"])
    assert any("numeric in reference" in w for w in inc.warnings)


def test_all_nan_feature_is_kept_with_warning(tmp_path):
    inc = load_incident(tiny_incident(tmp_path, ref_edit=lambda d: d.assign(x2=np.nan)))
    assert "x2" in inc.features and any("'x2' is empty" in w for w in inc.warnings)


def test_cache_round_trip(tmp_path):
    """The run's columnar cache reloads the same incident without the source files."""
    inc = load_incident(tiny_incident(tmp_path / "a"))
    inc.save_cache(tmp_path / "cache")
    again = load_incident(inc.spec, cache=tmp_path / "cache")
    pd.testing.assert_frame_equal(inc.production, again.production)
    assert again.features == inc.features and again.positive_label == inc.positive_label


def test_the_cache_is_one_batch_that_kernels_view_without_copying(tmp_path):
    """Text columns read from parquet in several row groups arrive chunked; the cache must still be
    one record batch, or every kernel copies every column on reading it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def note(d):
        return d.assign(note=np.where(np.arange(len(d)) % 2, "ok", "error"))

    path = tiny_incident(tmp_path / "a", columns_extra={"status": "note"}, ref_edit=note, prod_edit=note)
    for side in ("reference", "production"):
        file = path.parent / f"{side}.parquet"
        pq.write_table(pq.read_table(file), file, row_group_size=100)  # four row groups
    inc = load_incident(path)
    inc.save_cache(tmp_path / "cache")
    with pa.memory_map(str(tmp_path / "cache" / "production.arrow")) as source:
        assert pa.ipc.open_file(source).num_record_batches == 1
    before = pa.total_allocated_bytes()
    again = load_incident(inc.spec, cache=tmp_path / "cache")
    assert pa.total_allocated_bytes() - before < 10_000  # numbers viewed in the mapped file
    pd.testing.assert_frame_equal(inc.production, again.production)


def test_regression_target_must_be_numeric(tmp_path):
    path = tiny_incident(tmp_path, spec_extra={"task": "regression"},
                         prod_edit=lambda d: d.assign(label=d["label"].map({0: "a", 1: "b"})))
    with pytest.raises(DataError, match="regression"):
        load_incident(path)


def test_versions_in_csv_stay_text(tmp_path):
    """A model version like 2.10 in a CSV is text, not the number 2.1."""
    path = tiny_incident(tmp_path, fmt="csv", columns_extra={"model_version": "version"},
                         prod_edit=lambda d: d.assign(version="2.10"), ref_edit=lambda d: d.assign(version="2.10"))
    inc = load_incident(path)
    assert set(inc.production["version"]) == {"2.10"}


def test_empty_text_cells_in_csv_are_missing(tmp_path):
    """An empty cell in a text column of a CSV is missing (not an empty string): unlabelled."""
    def edit(d):
        d["label"] = np.where(d["label"] == 1, "declined", "approved").astype(object)
        d["pred"] = np.where(d["pred"] == 1, "declined", "approved").astype(object)
        return d

    def prod_edit(d):
        d = edit(d)
        d.loc[d.index[:50], "label"] = None
        return d
    inc = load_incident(tiny_incident(tmp_path, fmt="csv", ref_edit=edit, prod_edit=prod_edit))
    assert int((~inc.labelled).sum()) == 50 and "" not in set(inc.production["label"].dropna())


def test_small_files_load_on_pandas_and_say_so(tmp_path):
    """engine: auto keeps small incidents in memory, as before, and the note says which engine ran."""
    inc = load_incident(tiny_incident(tmp_path))
    assert inc.engine == "pandas" and inc.aggregates is None
    assert inc.engine_note.startswith("Engine: pandas (auto")
    assert inc.rows == {"reference": len(inc.reference), "production": len(inc.production)}
