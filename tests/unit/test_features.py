"""Labels and feature encoding: strict on the way in, plain data on the way out."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from retrain.errors import DataError
from retrain.features import MAX_CATEGORIES, OTHER, Preprocessor, fit_preprocessor, label_vector
from retrain.recipe import FeatureSpec, LabelSpec

LABEL = LabelSpec("y", positive=1, negative=0)
COLOR = FeatureSpec("color", "categorical")
SIZE = FeatureSpec("size", "numeric")


def _labels(values: list[object], typ: pa.DataType | None = None) -> pa.Table:
    return pa.table({"y": pa.array(values, type=typ or pa.int64())})


# ---------------------------------------------------------------------------
# label_vector


def test_label_vector_maps_positive_to_1_and_negative_to_0() -> None:
    y = label_vector(_labels([0, 1, 1, 0]), LABEL)

    assert y.dtype == np.int8
    assert y.tolist() == [0, 1, 1, 0]


def test_label_vector_honours_declared_positive_and_negative_values() -> None:
    y = label_vector(_labels([7, 3, 3]), LabelSpec("y", positive=3, negative=7))

    assert y.tolist() == [0, 1, 1]


def test_label_vector_accepts_bool_labels() -> None:
    assert label_vector(_labels([True, False], pa.bool_()), LABEL).tolist() == [1, 0]


def test_label_vector_refuses_nulls_naming_the_first_row() -> None:
    with pytest.raises(DataError) as info:
        label_vector(_labels([0, 1, None, 0, None]), LABEL, where="train.parquet")

    assert info.value.diagnostics().startswith(
        "train.parquet: label column 'y' has 2 null values (first at row 2): "
        "expected a label on every row"
    )


def test_label_vector_refuses_nan_in_a_float_label_column() -> None:
    with pytest.raises(DataError) as info:
        label_vector(_labels([0.0, 1.0, 1.0, math.nan], pa.float64()), LABEL)

    line = info.value.diagnostics()
    assert "label column 'y' has an unknown value at row 3" in line
    assert line.endswith("expected 0 or 1, found NaN")


def test_label_vector_refuses_unknown_value_naming_the_row() -> None:
    with pytest.raises(DataError) as info:
        label_vector(_labels([0, 1, 0, 2, 1]), LABEL)

    line = info.value.diagnostics()
    assert "label column 'y' has an unknown value at row 3" in line
    assert "expected 0 or 1, found 2" in line


def test_label_vector_refuses_infinite_values() -> None:
    with pytest.raises(DataError, match="found inf"):
        label_vector(_labels([0.0, math.inf], pa.float64()), LABEL)


def test_label_vector_refuses_string_label_column() -> None:
    with pytest.raises(DataError, match="expected an integer or bool column, found string"):
        label_vector(_labels(["0", "1"], pa.string()), LABEL)


def test_label_vector_refuses_missing_label_column() -> None:
    with pytest.raises(DataError, match="label column 'y' not in dataset"):
        label_vector(pa.table({"x": [0, 1]}), LABEL)


# ---------------------------------------------------------------------------
# fit_preprocessor


def _colors(values: list[str | None]) -> pa.Table:
    return pa.table({"color": pa.array(values, type=pa.string())})


def test_fit_preprocessor_vocabulary_is_sorted() -> None:
    table = _colors(["red"] * 5 + ["blue"] * 3 + ["green"] * 9 + [None])

    pre = fit_preprocessor(table, [COLOR], mode="raw")

    assert pre.categorical[0].vocabulary == ("blue", "green", "red")


def test_fit_preprocessor_vocabulary_keeps_the_most_frequent_values_up_to_max_categories() -> None:
    # c000 appears once, c001 twice, ...: the most frequent are the highest numbers.
    n = MAX_CATEGORIES + 36
    values = [f"c{i:03d}" for i in range(n) for _ in range(i + 1)]

    pre = fit_preprocessor(_colors(values), [COLOR], mode="raw")

    assert pre.categorical[0].vocabulary == tuple(f"c{i:03d}" for i in range(n - MAX_CATEGORIES, n))


def test_fit_preprocessor_vocabulary_breaks_frequency_ties_by_value() -> None:
    values = [f"v{i:03d}" for i in range(MAX_CATEGORIES + 10)]

    pre = fit_preprocessor(_colors(values), [COLOR], mode="raw")

    assert pre.categorical[0].vocabulary == tuple(values[:MAX_CATEGORIES])


def test_unseen_category_maps_to_other() -> None:
    pre = fit_preprocessor(_colors(["red", "blue"]), [COLOR], mode="raw")

    x = pre.transform(_colors(["purple", "red"]))

    assert pre.output_columns() == ["color=blue", "color=red", f"color={OTHER}"]
    assert x.tolist() == [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


def test_missing_category_maps_to_other() -> None:
    pre = fit_preprocessor(_colors(["red", "blue"]), [COLOR], mode="raw")

    assert pre.transform(_colors([None])).tolist() == [[0.0, 0.0, 1.0]]


def test_raw_mode_passes_numbers_through_with_missing_as_nan() -> None:
    table = pa.table({"size": pa.array([1, None, 3], type=pa.int64())})

    x = fit_preprocessor(table, [SIZE], mode="raw").transform(table)

    assert x.shape == (3, 1)
    assert x[0, 0] == 1.0 and math.isnan(x[1, 0]) and x[2, 0] == 3.0


def test_standardized_mode_imputes_median_and_adds_missing_indicator() -> None:
    table = pa.table({"size": pa.array([1.0, None, 3.0, 5.0])})

    pre = fit_preprocessor(table, [SIZE], mode="standardized")
    x = pre.transform(table)

    enc = pre.numeric[0]
    assert enc.median == 3.0
    assert pre.output_columns() == ["size", "size__missing"]
    assert x[:, 1].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert x[1, 0] == (3.0 - enc.mean) / enc.scale


def test_preprocessor_round_trips_through_to_dict() -> None:
    table = pa.table({"size": [1.0, 2.0], "color": ["a", "b"]})
    pre = fit_preprocessor(table, [SIZE, COLOR], mode="standardized")

    assert Preprocessor.from_dict(pre.to_dict()) == pre


def test_fit_preprocessor_refuses_missing_feature_column() -> None:
    with pytest.raises(DataError) as info:
        fit_preprocessor(_colors(["a"]), [SIZE], mode="raw", where="train.parquet")

    assert info.value.diagnostics() == (
        "train.parquet: feature 'size' not in dataset: "
        "expected a column named 'size', found columns color"
    )


def test_fit_preprocessor_refuses_numeric_feature_on_a_string_column() -> None:
    table = pa.table({"size": pa.array(["big", "small"])})

    with pytest.raises(DataError, match=r"feature 'size' is declared numeric.*found string"):
        fit_preprocessor(table, [SIZE], mode="raw")


def test_fit_preprocessor_refuses_categorical_feature_on_a_float_column() -> None:
    table = pa.table({"color": pa.array([1.5, 2.5])})

    with pytest.raises(DataError, match=r"feature 'color' is declared categorical.*found double"):
        fit_preprocessor(table, [COLOR], mode="raw")


def test_transform_refuses_table_lacking_a_fitted_feature() -> None:
    pre = fit_preprocessor(_colors(["a"]), [COLOR], mode="raw")

    with pytest.raises(DataError, match="feature 'color' not in dataset"):
        pre.transform(pa.table({"other": ["a"]}))


def test_fit_preprocessor_refuses_infinite_numbers() -> None:
    table = pa.table({"size": pa.array([1.0, math.inf])})

    with pytest.raises(DataError, match="feature 'size' has infinite values"):
        fit_preprocessor(table, [SIZE], mode="standardized")
