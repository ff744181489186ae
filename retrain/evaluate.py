"""Evaluation of a model on its holdout: pure, vectorised metric functions.

Each metric is a function of (labels, probabilities) only, computed in one
fixed order of floating-point operations, so the same inputs give the same
bits; tests compare each against scikit-learn's implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.stats import rankdata

from retrain.errors import DataError
from retrain.features import label_vector
from retrain.model import Model
from retrain.recipe import TrainingRecipe
from retrain.split import holdout_mask

__all__ = ["METRICS", "Evaluation", "accuracy", "brier", "evaluate_model", "log_loss", "roc_auc"]

_EPS = float(np.finfo(np.float64).eps)


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum (Mann-Whitney U) identity; ties averaged."""
    pos = y == 1
    n_pos = int(pos.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError(
            "AUC needs both classes in the holdout", found=f"{n_pos} positives, {n_neg} negatives"
        )
    ranks = rankdata(p, method="average")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def accuracy(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    """Share of rows where (p > threshold) equals the label: scikit-learn's predict rule."""
    return float(np.mean((p > threshold) == (y == 1)))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    q = np.clip(p, _EPS, 1.0 - _EPS)
    return float(-np.mean(np.where(y == 1, np.log(q), np.log1p(-q))))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


METRICS = {"auc": roc_auc, "accuracy": accuracy, "log_loss": log_loss, "brier": brier}


@dataclass(frozen=True)
class Evaluation:
    """Metrics of one model on one holdout."""

    rows: int
    positives: int
    metrics: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "positives": self.positives,
            "metrics": dict(sorted(self.metrics.items())),
        }


def evaluate_model(
    model: Model, recipe: TrainingRecipe, table: pa.Table, *, where: str = "dataset"
) -> Evaluation:
    if recipe.split is None:
        raise DataError(
            "the recipe declares no split, so this dataset has no holdout rows", where=where
        )
    mask = holdout_mask(table, recipe.split, where=where)
    holdout = table.filter(pa.array(mask))
    if holdout.num_rows == 0:
        raise DataError("the holdout split is empty", where=where, expected="at least one row")
    y = label_vector(holdout, recipe.label, where=where)
    positives = int(y.sum())
    if positives in (0, y.size):
        raise DataError(
            "the holdout has a single class, so AUC is undefined",
            where=where,
            expected="both label values",
            found=f"{positives} positives, {y.size - positives} negatives",
        )
    p = model.predict_proba(holdout, where=where)
    if not np.all(np.isfinite(p)):
        raise DataError("model predicted NaN or infinite probabilities", where=where)
    metrics = {name: fn(y, p) for name, fn in METRICS.items()}
    return Evaluation(rows=holdout.num_rows, positives=int(y.sum()), metrics=metrics)
