"""Evaluation metrics agree with scikit-learn; evaluation refuses a useless holdout."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn import metrics as skm

from retrain.errors import DataError
from retrain.evaluate import METRICS, accuracy, brier, evaluate_model, log_loss, roc_auc
from retrain.features import label_vector
from retrain.model import Model
from retrain.recipe import TrainingRecipe
from retrain.split import holdout_mask


@pytest.fixture
def labels_and_tied_scores() -> tuple[np.ndarray, np.ndarray]:
    """Random labels, and probabilities on a coarse grid so that many tie."""
    rng = np.random.default_rng(2026)
    y = (rng.random(5000) < 0.3).astype(np.int8)
    p = (rng.integers(0, 20, size=y.size) + 0.5) / 20.0
    return y, p


def test_roc_auc_equals_sklearn_roc_auc_score_with_ties(
    labels_and_tied_scores: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = labels_and_tied_scores

    assert roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


def test_accuracy_equals_sklearn_accuracy_score_at_threshold_one_half(
    labels_and_tied_scores: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = labels_and_tied_scores

    assert accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p >= 0.5), abs=1e-12)


def test_log_loss_equals_sklearn_log_loss(
    labels_and_tied_scores: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = labels_and_tied_scores

    assert log_loss(y, p) == pytest.approx(skm.log_loss(y, p, labels=[0, 1]), abs=1e-12)


def test_brier_equals_sklearn_brier_score_loss(
    labels_and_tied_scores: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = labels_and_tied_scores

    assert brier(y, p) == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)


def test_log_loss_stays_finite_for_confident_wrong_predictions() -> None:
    y = np.array([1, 0])
    p = np.array([0.0, 1.0])

    assert np.isfinite(log_loss(y, p))


def test_roc_auc_of_a_perfect_ranking_is_one() -> None:
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.9])) == 1.0


def test_roc_auc_refuses_a_single_class() -> None:
    with pytest.raises(DataError, match="AUC needs both classes in the holdout"):
        roc_auc(np.zeros(10, dtype=np.int8), np.linspace(0, 1, 10))


def test_evaluate_model_reports_every_metric_on_the_holdout_rows(
    lr_model: Model, lr_recipe: TrainingRecipe, small_table: pa.Table
) -> None:
    evaluation = evaluate_model(lr_model, lr_recipe, small_table)

    mask = holdout_mask(small_table, lr_recipe.split)
    holdout = small_table.filter(pa.array(mask))
    y = label_vector(holdout, lr_recipe.label)
    p = lr_model.predict_proba(holdout)
    assert evaluation.rows == int(mask.sum())
    assert evaluation.positives == int(y.sum())
    assert dict(evaluation.metrics) == {name: fn(y, p) for name, fn in METRICS.items()}


def test_evaluate_model_refuses_holdout_with_only_one_class(
    lr_model: Model, lr_recipe: TrainingRecipe, small_table: pa.Table
) -> None:
    index = small_table.schema.get_field_index("default_90d")
    ones = pa.array(np.ones(small_table.num_rows, dtype=np.int64))

    with pytest.raises(DataError) as info:
        evaluate_model(
            lr_model, lr_recipe, small_table.set_column(index, "default_90d", ones), where="d.json"
        )

    rows = int(holdout_mask(small_table, lr_recipe.split).sum())
    assert info.value.diagnostics() == (
        "d.json: the holdout has a single class, so AUC is undefined: "
        f"expected both label values, found {rows} positives, 0 negatives"
    )


def test_evaluate_model_refuses_empty_holdout(
    lr_model: Model, lr_recipe: TrainingRecipe, small_table: pa.Table
) -> None:
    mask = holdout_mask(small_table, lr_recipe.split)
    train_only = small_table.filter(pa.array(~mask))

    with pytest.raises(DataError, match="the holdout split is empty"):
        evaluate_model(lr_model, lr_recipe, train_only, where="d.json")
