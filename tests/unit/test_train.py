"""Training: a recipe and a table in, a plain-data model that predicts like scikit-learn."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from retrain.errors import DataError
from retrain.features import fit_preprocessor, label_vector
from retrain.model import Model
from retrain.recipe import TrainingRecipe
from retrain.serialize import model_from_bytes, model_to_bytes
from retrain.split import holdout_mask
from retrain.train import train_model
from tests.unit.support import LINEAGE

ESTIMATORS = ["hgb", "lr"]


@pytest.fixture(params=ESTIMATORS)
def trained(request: pytest.FixtureRequest) -> tuple[TrainingRecipe, Model]:
    """(recipe, model) for each estimator kind, trained once per session."""
    kind = request.param
    return request.getfixturevalue(f"{kind}_recipe"), request.getfixturevalue(f"{kind}_model")


def _sklearn_estimator(recipe: TrainingRecipe) -> Any:
    if recipe.estimator == "hist_gradient_boosting":
        return HistGradientBoostingClassifier(
            **dict(recipe.params), early_stopping=False, random_state=recipe.seed
        )
    return LogisticRegression(**dict(recipe.params), solver="lbfgs", random_state=recipe.seed)


def _with_label(table: pa.Table, values: pa.Array) -> pa.Table:
    index = table.schema.get_field_index("default_90d")
    return table.set_column(index, "default_90d", values)


def test_train_model_fits_hist_gradient_boosting(
    hgb_recipe: TrainingRecipe, small_table: pa.Table
) -> None:
    model, report = train_model(hgb_recipe, small_table, lineage=LINEAGE)

    assert model.estimator == "hist_gradient_boosting"
    assert model.n_trees == 10
    assert report.iterations == 10
    assert report.input_columns == len(model.preprocessor.output_columns())


def test_train_model_fits_logistic_regression(
    lr_recipe: TrainingRecipe, small_table: pa.Table
) -> None:
    model, report = train_model(lr_recipe, small_table, lineage=LINEAGE)

    assert model.estimator == "logistic_regression"
    assert model.arrays["coef"].shape == (1, report.input_columns)
    assert model.preprocessor.mode == "standardized"


def test_train_report_counts_rows_on_each_side_of_the_split(
    hgb_recipe: TrainingRecipe, small_table: pa.Table
) -> None:
    _, report = train_model(hgb_recipe, small_table, lineage=LINEAGE)

    mask = holdout_mask(small_table, hgb_recipe.split)
    assert report.rows_total == small_table.num_rows
    assert report.rows_holdout == int(mask.sum())
    assert report.rows_train == small_table.num_rows - int(mask.sum())


def test_model_to_bytes_is_deterministic_across_two_trainings(
    trained: tuple[TrainingRecipe, Model], small_table: pa.Table
) -> None:
    recipe, model = trained

    again, _ = train_model(recipe, small_table, lineage=LINEAGE)

    assert model_to_bytes(again) == model_to_bytes(model)


def test_model_from_bytes_round_trips_to_identical_bytes(
    trained: tuple[TrainingRecipe, Model],
) -> None:
    _, model = trained
    data = model_to_bytes(model)

    assert model_to_bytes(model_from_bytes(data)) == data


def test_loaded_model_predicts_identically(
    trained: tuple[TrainingRecipe, Model], small_table: pa.Table
) -> None:
    _, model = trained

    loaded = model_from_bytes(model_to_bytes(model))

    assert np.array_equal(loaded.predict_proba(small_table), model.predict_proba(small_table))


def test_predict_proba_equals_independently_refit_sklearn_estimator_bit_for_bit(
    trained: tuple[TrainingRecipe, Model], small_table: pa.Table
) -> None:
    recipe, model = trained
    mask = holdout_mask(small_table, recipe.split)
    train = small_table.filter(pa.array(~mask))
    holdout = small_table.filter(pa.array(mask))
    mode = "raw" if recipe.estimator == "hist_gradient_boosting" else "standardized"
    pre = fit_preprocessor(train, recipe.features, mode=mode)
    estimator = _sklearn_estimator(recipe).fit(
        pre.transform(train), label_vector(train, recipe.label)
    )

    theirs = estimator.predict_proba(pre.transform(holdout))[:, 1]
    ours = model.predict_proba(holdout)

    assert pre == model.preprocessor
    assert ours.dtype == np.float64
    assert np.array_equal(ours, theirs)


def test_predictions_are_probabilities(
    trained: tuple[TrainingRecipe, Model], small_table: pa.Table
) -> None:
    _, model = trained

    p = model.predict_proba(small_table)

    assert p.shape == (small_table.num_rows,)
    assert np.all((p > 0.0) & (p < 1.0))


def test_lineage_is_stored_in_the_model_and_survives_serialization(
    trained: tuple[TrainingRecipe, Model],
) -> None:
    _, model = trained

    loaded = model_from_bytes(model_to_bytes(model))

    assert dict(model.lineage) == LINEAGE
    assert dict(loaded.lineage) == LINEAGE
    assert model.metadata()["lineage"] == LINEAGE


def test_model_arrays_are_read_only(lr_model: Model) -> None:
    with pytest.raises(ValueError):
        lr_model.arrays["coef"][0, 0] = 1.0


def test_training_refuses_single_class_labels(
    hgb_recipe: TrainingRecipe, small_table: pa.Table
) -> None:
    zeros = pa.array(np.zeros(small_table.num_rows, dtype=np.int64))

    with pytest.raises(DataError) as info:
        train_model(hgb_recipe, _with_label(small_table, zeros), lineage=LINEAGE, where="d.json")

    assert info.value.diagnostics() == (
        "d.json: training rows have a single class: expected both label values, found only 0"
    )


def test_training_refuses_nan_label_on_a_holdout_row(
    hgb_recipe: TrainingRecipe, small_table: pa.Table
) -> None:
    mask = holdout_mask(small_table, hgb_recipe.split)
    labels = small_table.column("default_90d").to_numpy().astype(np.float64)
    labels[int(np.flatnonzero(mask)[0])] = math.nan

    with pytest.raises(DataError, match=r"has an unknown value at row .*found NaN"):
        train_model(hgb_recipe, _with_label(small_table, pa.array(labels)), lineage=LINEAGE)


def test_training_refuses_missing_feature_column(
    hgb_recipe: TrainingRecipe, small_table: pa.Table
) -> None:
    with pytest.raises(DataError, match="feature 'income' not in dataset"):
        train_model(hgb_recipe, small_table.drop_columns(["income"]), lineage=LINEAGE)
