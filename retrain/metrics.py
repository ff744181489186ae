"""Evaluation metrics with seeded bootstrap confidence intervals, vectorised.

Every metric here is computed for many bootstrap resamples at once. A
resample is a vector of counts (how often each holdout row was drawn); all
metrics are then weighted sums, so a batch of B resamples is a (B x n) count
matrix, and the element-wise work, gathers, cumulative and segmented sums
run on the whole matrix. Only the final per-resample totals are taken row by
row (one pairwise sum each), so a resample's bits never depend on which
batch it was in. Resample b is drawn from ``numpy.random.default_rng([seed,
b])`` alone, so the same seed gives the same intervals bit for bit.

Metrics: AUC (ties averaged, as the rank-sum identity), accuracy (p > 0.5,
scikit-learn's predict rule), log loss (clipped at machine epsilon), Brier
score and expected calibration error (ECE over equal-width probability
bins). Paired bootstrap: the same count matrix applied to two models'
predictions gives the distribution of their difference.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrain.errors import DataError

__all__ = [
    "HIGHER_IS_BETTER",
    "METRIC_NAMES",
    "CalibrationBin",
    "Estimate",
    "bootstrap_counts",
    "bootstrap_samples",
    "calibration_curve",
    "estimate_metrics",
    "paired_differences",
    "point_metrics",
    "resampled_metrics",
    "summarize",
]

METRIC_NAMES = ("auc", "accuracy", "log_loss", "brier", "ece")
HIGHER_IS_BETTER: Mapping[str, bool] = {
    "auc": True,
    "accuracy": True,
    "log_loss": False,
    "brier": False,
    "ece": False,
}
ECE_BINS = 10
_EPS = float(np.finfo(np.float64).eps)
# Bound the (resamples x rows) matrices a batch holds: 8M cells is 64 MB per
# float64 copy, a few hundred MB at peak.
_BATCH_CELLS = 8_000_000


@dataclass(frozen=True)
class Estimate:
    """A metric's value on the holdout and its bootstrap confidence interval."""

    value: float
    low: float
    high: float
    confidence: float
    resamples: int
    undefined: int = 0  # resamples where the metric was undefined (e.g. one class)

    def to_dict(self) -> dict[str, Any]:
        # Undefined (e.g. AUC of a one-class slice) is null, never NaN, in JSON.
        def finite(x: float) -> float | None:
            return x if np.isfinite(x) else None

        return {
            "value": finite(self.value),
            "ci_low": finite(self.low),
            "ci_high": finite(self.high),
            "confidence": self.confidence,
            "resamples": self.resamples,
            "undefined_resamples": self.undefined,
        }


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    count: int
    mean_predicted: float | None
    fraction_positive: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "count": self.count,
            "mean_predicted": self.mean_predicted,
            "fraction_positive": self.fraction_positive,
        }


def _row_sums(m: np.ndarray) -> np.ndarray:
    return np.fromiter((row.sum() for row in m), dtype=np.float64, count=m.shape[0])


def _check(y: np.ndarray, p: np.ndarray) -> None:
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError("labels and probabilities must be 1-d arrays of one length")
    if y.size == 0:
        raise DataError("no rows to evaluate on", expected="at least one row")


def _bins(p: np.ndarray) -> np.ndarray:
    return np.minimum((p * ECE_BINS).astype(np.int64), ECE_BINS - 1)


class _Prepared:
    """Per-row quantities every resample reuses, computed once."""

    def __init__(self, y: np.ndarray, p: np.ndarray) -> None:
        _check(y, p)
        self.n = y.size
        y = y.astype(np.float64)
        q = np.clip(p, _EPS, 1.0 - _EPS)
        self.correct = ((p > 0.5) == (y == 1.0)).astype(np.float64)
        self.logloss = -np.where(y == 1.0, np.log(q), np.log1p(-q))
        self.sqerr = (p - y) ** 2
        self.y = y
        self.p = p
        # AUC: rows in score order, grouped by equal scores (ties share a group).
        self.order = np.argsort(p, kind="stable")
        sorted_p = p[self.order]
        self.group_starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])
        self.ties = self.group_starts.size < self.n
        self.y_sorted = y[self.order]
        # ECE: the rows of each probability bin, and their (label - probability).
        bins = _bins(p)
        self.bin_rows = [np.flatnonzero(bins == k) for k in range(ECE_BINS)]
        self.bin_residual = [(y - p)[rows] for rows in self.bin_rows]

    def metrics(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Each metric for each row of ``counts`` (resamples x rows of row weights).

        Element-wise work runs on the whole batch at once; every per-resample
        total is a 1-d pairwise sum of that resample's own row (``_row_sums``)
        and every running total a per-row cumsum or reduceat, so the bits of
        a resample's metrics never depend on which batch it was in.
        """
        w = counts.astype(np.float64)
        total = _row_sums(w)
        out = {
            "accuracy": _row_sums(w * self.correct) / total,
            "log_loss": _row_sums(w * self.logloss) / total,
            "brier": _row_sums(w * self.sqerr) / total,
        }
        ws = counts[:, self.order].astype(np.float64)
        pos = ws * self.y_sorted
        neg = ws - pos
        if self.ties:
            pos = np.add.reduceat(pos, self.group_starts, axis=1)
            neg = np.add.reduceat(neg, self.group_starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg
        n_pos, n_neg = _row_sums(pos), _row_sums(neg)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["auc"] = np.where(
                (n_pos > 0) & (n_neg > 0),
                _row_sums(pos * (below + 0.5 * neg)) / (n_pos * n_neg),
                np.nan,
            )
        gaps = np.empty((w.shape[0], ECE_BINS))
        for k, rows in enumerate(self.bin_rows):
            gaps[:, k] = _row_sums(w[:, rows] * self.bin_residual[k])
        out["ece"] = _row_sums(np.abs(gaps)) / total
        return out


def point_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Every metric on the holdout itself (all row weights 1)."""
    prepared = _Prepared(y, p)
    values = prepared.metrics(np.ones((1, prepared.n), dtype=np.int32))
    return {name: float(values[name][0]) for name in METRIC_NAMES}


def bootstrap_counts(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Batches of bootstrap row counts; resample b depends only on (seed, b)."""
    batch = max(1, min(resamples, _BATCH_CELLS // max(n, 1)))
    for start in range(0, resamples, batch):
        stop = min(resamples, start + batch)
        counts = np.empty((stop - start, n), dtype=np.int32)
        for i, b in enumerate(range(start, stop)):
            draws = np.random.default_rng([seed, b]).integers(0, n, n)
            counts[i] = np.bincount(draws, minlength=n)
        yield counts


def bootstrap_samples(
    y: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray | None],
    *,
    resamples: int,
    seed: int,
) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Every metric over ``resamples`` resamples, for every (model, row subset) pair.

    The resamples are drawn once, over the whole holdout, and shared by every
    model and every subset (slice): the comparisons are paired, and slices
    see the rows each resample drew of them. A subset with no rows in a
    resample gets NaN for it.
    """
    subsets = {
        label: (np.arange(y.size) if mask is None else np.flatnonzero(mask))
        for label, mask in masks.items()
    }
    prepared = {
        (model, label): _Prepared(y[rows], p[rows])
        for model, p in predictions.items()
        for label, rows in subsets.items()
        if rows.size
    }
    parts: dict[tuple[str, str], dict[str, list[np.ndarray]]] = {
        key: {name: [] for name in METRIC_NAMES} for key in prepared
    }
    for counts in bootstrap_counts(y.size, resamples, seed):
        for label, rows in subsets.items():
            if not rows.size:
                continue
            sub = counts if rows.size == y.size else counts[:, rows]
            empty = np.logical_not(np.any(sub, axis=1))  # drew none of this slice: undefined
            safe = np.where(empty[:, None], 1, sub) if empty.any() else sub
            for model in predictions:
                values = prepared[(model, label)].metrics(safe)
                for name in METRIC_NAMES:
                    parts[(model, label)][name].append(np.where(empty, np.nan, values[name]))
    return {
        key: {name: np.concatenate(v) for name, v in metrics.items()}
        for key, metrics in parts.items()
    }


def resampled_metrics(
    y: np.ndarray, p: np.ndarray, *, resamples: int, seed: int, mask: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Each metric over ``resamples`` bootstrap resamples of the holdout (or of a slice)."""
    return bootstrap_samples(y, {"m": p}, {"s": mask}, resamples=resamples, seed=seed)[("m", "s")]


def paired_differences(
    y: np.ndarray,
    p_candidate: np.ndarray,
    p_champion: np.ndarray,
    *,
    resamples: int,
    seed: int,
    mask: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """candidate - champion for each metric, both scored on the same resamples."""
    s = bootstrap_samples(
        y, {"a": p_candidate, "b": p_champion}, {"s": mask}, resamples=resamples, seed=seed
    )
    return {name: s[("a", "s")][name] - s[("b", "s")][name] for name in METRIC_NAMES}


def interval(samples: np.ndarray, confidence: float) -> tuple[float, float, int]:
    """Percentile interval over the defined resamples; (low, high, undefined count)."""
    defined = samples[np.isfinite(samples)]
    undefined = int(samples.size - defined.size)
    if defined.size == 0:
        return float("nan"), float("nan"), undefined
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(defined, [tail, 100.0 - tail])
    return float(low), float(high), undefined


def summarize(point: float, samples: np.ndarray, *, confidence: float) -> Estimate:
    low, high, undefined = interval(samples, confidence)
    return Estimate(point, low, high, confidence, int(samples.size), undefined)


def estimate_metrics(
    y: np.ndarray,
    p: np.ndarray,
    *,
    resamples: int,
    seed: int,
    confidence: float,
    mask: np.ndarray | None = None,
) -> dict[str, Estimate]:
    """Point value and bootstrap interval of every metric (on a slice with ``mask``)."""
    rows = np.arange(y.size) if mask is None else np.flatnonzero(mask)
    if rows.size == 0:
        raise DataError("slice is empty", expected="at least one row")
    points = point_metrics(y[rows], p[rows])
    samples = resampled_metrics(y, p, resamples=resamples, seed=seed, mask=mask)
    return {
        name: summarize(points[name], samples[name], confidence=confidence) for name in METRIC_NAMES
    }


def calibration_curve(y: np.ndarray, p: np.ndarray) -> list[CalibrationBin]:
    _check(y, p)
    bins = _bins(p)
    out = []
    for k in range(ECE_BINS):
        in_bin = bins == k
        count = int(in_bin.sum())
        out.append(
            CalibrationBin(
                low=k / ECE_BINS,
                high=(k + 1) / ECE_BINS,
                count=count,
                mean_predicted=float(p[in_bin].mean()) if count else None,
                fraction_positive=float(y[in_bin].mean()) if count else None,
            )
        )
    return out
