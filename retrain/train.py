"""Training: a recipe and a verified table in, a ``Model`` and its report out.

Everything that could vary run to run is pinned here or by the action
environment: the holdout is a key hash (``retrain.split``), the estimator's
seed comes from the recipe, scikit-learn runs on one thread, and the fitted
estimator is converted to plain arrays whose predictions are checked to equal
the estimator's own, bit for bit, before the model is returned.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from retrain.errors import DataError, RetrainError
from retrain.features import fit_preprocessor, label_vector
from retrain.model import Model
from retrain.recipe import TrainingRecipe
from retrain.split import holdout_mask

__all__ = ["TrainReport", "train_model"]


@dataclass(frozen=True)
class TrainReport:
    """What training saw and did, for the provenance and for people."""

    rows_total: int
    rows_train: int
    rows_holdout: int
    positives_train: int
    input_columns: int
    iterations: int
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_total": self.rows_total,
            "rows_train": self.rows_train,
            "rows_holdout": self.rows_holdout,
            "positives_train": self.positives_train,
            "input_columns": self.input_columns,
            "iterations": self.iterations,
            "warnings": list(self.warnings),
        }


_FIDELITY_ROWS = 20_000


class _FidelityError(RetrainError):
    exit_code = 1


def _fit_hgb(
    recipe: TrainingRecipe, x: np.ndarray, y: np.ndarray
) -> tuple[dict[str, np.ndarray], Any, int]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    est = HistGradientBoostingClassifier(
        **dict(recipe.params),
        early_stopping=False,
        random_state=recipe.seed,
        categorical_features=None,
    )
    est.fit(x, y)
    trees = [p for iteration in est._predictors for p in iteration]
    nodes = [t.nodes for t in trees]
    if any(n["is_categorical"].any() for n in nodes):  # pragma: no cover - one-hot input has none
        raise _FidelityError("unexpected categorical split in a tree")
    offsets = np.cumsum([0] + [n.shape[0] for n in nodes]).astype(np.int64)
    cat = np.concatenate(nodes)
    arrays: dict[str, np.ndarray] = {
        "baseline": np.asarray(est._baseline_prediction, dtype=np.float64).ravel(),
        "tree_offsets": offsets,
        "node_feature": cat["feature_idx"].astype(np.int64),
        "node_threshold": cat["num_threshold"].astype(np.float64),
        "node_missing_left": cat["missing_go_to_left"].astype(np.uint8),
        "node_left": cat["left"].astype(np.uint32),
        "node_right": cat["right"].astype(np.uint32),
        "node_is_leaf": cat["is_leaf"].astype(np.uint8),
        "node_value": cat["value"].astype(np.float64),
    }
    return arrays, est, int(est.n_iter_)


def _fit_lr(
    recipe: TrainingRecipe, x: np.ndarray, y: np.ndarray
) -> tuple[dict[str, np.ndarray], Any, int]:
    from sklearn.linear_model import LogisticRegression

    est = LogisticRegression(**dict(recipe.params), solver="lbfgs", random_state=recipe.seed)
    est.fit(x, y)
    arrays: dict[str, np.ndarray] = {
        "coef": np.asarray(est.coef_, dtype=np.float64),
        "intercept": np.asarray(est.intercept_, dtype=np.float64),
    }
    return arrays, est, int(np.max(est.n_iter_))


_FITTERS = {
    "hist_gradient_boosting": (_fit_hgb, "raw"),
    "logistic_regression": (_fit_lr, "standardized"),
}


def train_model(
    recipe: TrainingRecipe,
    table: pa.Table,
    *,
    lineage: Mapping[str, Any],
    where: str = "dataset",
) -> tuple[Model, TrainReport]:
    # With a split, the recipe holds out part of this dataset; without one,
    # every row trains and the holdout is a dataset of its own.
    if recipe.split is not None:
        mask = holdout_mask(table, recipe.split, where=where)
    else:
        mask = np.zeros(table.num_rows, dtype=bool)
    train = table.filter(pa.array(~mask))
    if train.num_rows == 0:
        raise DataError("no training rows after the holdout split", where=where)
    y = label_vector(train, recipe.label, where=where)
    # Labels are checked on the holdout too, so a bad label fails training,
    # not a later evaluation.
    label_vector(table.filter(pa.array(mask)), recipe.label, where=where)
    positives = int(y.sum())
    if positives in (0, train.num_rows):
        raise DataError(
            "training rows have a single class",
            where=where,
            expected="both label values",
            found=f"only {recipe.label.positive if positives else recipe.label.negative}",
        )
    fitter, mode = _FITTERS[recipe.estimator]
    pre = fit_preprocessor(train, recipe.features, mode=mode, where=where)
    x = pre.transform(train, where=where)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arrays, est, iterations = fitter(recipe, x, y)
    model = Model(
        estimator=recipe.estimator,
        label=recipe.label,
        preprocessor=pre,
        arrays=arrays,
        lineage=lineage,
    )
    # Fidelity check on an evenly spaced, fixed sample of training rows: it
    # proves the arrays reproduce the estimator without predicting twice
    # over a large training set.
    sample = x[:: max(1, x.shape[0] // _FIDELITY_ROWS)]
    ours = model.predict_proba_matrix(sample)
    theirs = est.predict_proba(sample)[:, 1]
    if not np.array_equal(ours, theirs):
        worst = float(np.max(np.abs(ours - theirs)))
        raise _FidelityError(
            "model arrays do not reproduce the estimator's predictions",
            expected="bit-identical probabilities",
            found=f"max abs difference {worst!r}",
        )
    report = TrainReport(
        rows_total=table.num_rows,
        rows_train=train.num_rows,
        rows_holdout=int(mask.sum()),
        positives_train=positives,
        input_columns=x.shape[1],
        iterations=iterations,
        warnings=tuple(
            sorted({f"{w.category.__name__}: {w.message}".splitlines()[0] for w in caught})
        ),
    )
    return model, report
