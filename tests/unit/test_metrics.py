"""Metrics and the vectorised bootstrap: scikit-learn's values, seeded and batch-independent resamples.

Resample b is the bincount of ``default_rng([seed, b]).integers(0, n, n)``;
every metric of every resample is a weighted sum over those counts. Paired
differences and slices reuse the same resamples (docs/validation.md,
"Bootstrap intervals").
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

import retrain.metrics as metrics_module
from retrain.errors import DataError
from retrain.metrics import (
    HIGHER_IS_BETTER,
    METRIC_NAMES,
    Estimate,
    bootstrap_counts,
    bootstrap_samples,
    calibration_curve,
    estimate_metrics,
    paired_differences,
    point_metrics,
    resampled_metrics,
    summarize,
)


@pytest.fixture(scope="module")
def tied() -> tuple[np.ndarray, np.ndarray]:
    """Random labels, and probabilities on a grid of 21 values (0.5 among them) so that many tie."""
    rng = np.random.default_rng(2026)
    y = (rng.random(4000) < 0.3).astype(np.int8)
    p = rng.integers(0, 21, size=y.size) / 20.0
    return y, p


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray]:
    """A calibrated, informative model: y ~ Bernoulli(p)."""
    rng = np.random.default_rng(7)
    p = 1.0 / (1.0 + np.exp(-rng.normal(-1.2, 1.0, size=3000)))
    y = (rng.random(p.size) < p).astype(np.int8)
    return y, p


def _counts(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.concatenate(list(bootstrap_counts(n, resamples, seed)))


# ---------------------------------------------------------------------------
# Point metrics


def test_metric_names_and_directions() -> None:
    assert METRIC_NAMES == ("auc", "accuracy", "log_loss", "brier", "ece")
    assert [name for name in METRIC_NAMES if HIGHER_IS_BETTER[name]] == ["auc", "accuracy"]


def test_auc_equals_sklearn_roc_auc_score_with_ties(tied: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = tied

    assert point_metrics(y, p)["auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


def test_accuracy_equals_sklearn_accuracy_score_predicting_positive_above_one_half(
    tied: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = tied
    assert np.any(p == 0.5)

    assert point_metrics(y, p)["accuracy"] == pytest.approx(
        skm.accuracy_score(y, p > 0.5), abs=1e-12
    )


def test_log_loss_equals_sklearn_log_loss(tied: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = tied
    eps = np.finfo(np.float64).eps

    assert point_metrics(y, p)["log_loss"] == pytest.approx(
        skm.log_loss(y, np.clip(p, eps, 1 - eps), labels=[0, 1]), abs=1e-12
    )


def test_brier_equals_sklearn_brier_score_loss(tied: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = tied

    assert point_metrics(y, p)["brier"] == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)


def test_log_loss_clips_certain_wrong_predictions_at_machine_epsilon() -> None:
    eps = np.finfo(np.float64).eps

    loss = point_metrics(np.array([1, 0]), np.array([0.0, 1.0]))["log_loss"]

    assert loss == pytest.approx(-np.log(eps), rel=1e-12)


def test_ece_equals_a_hand_computed_value() -> None:
    y = np.array([1, 0, 0, 1, 1])
    p = np.array([0.12, 0.18, 0.3, 0.9, 1.0])
    # Bins [0.1, 0.2): |1 - 0.30| ; [0.3, 0.4): |0 - 0.3| ; [0.9, 1.0]: |2 - 1.9|.
    expected = (0.7 + 0.3 + 0.1) / 5

    assert point_metrics(y, p)["ece"] == pytest.approx(expected, abs=1e-12)


def test_ece_of_one_row_per_bin_is_the_mean_absolute_gap() -> None:
    y = np.array([1, 0, 1, 0])
    p = np.array([0.05, 0.15, 0.55, 0.95])

    assert point_metrics(y, p)["ece"] == pytest.approx((0.95 + 0.15 + 0.45 + 0.95) / 4, abs=1e-12)


def test_point_auc_of_a_single_class_is_nan() -> None:
    assert np.isnan(point_metrics(np.zeros(5, dtype=np.int8), np.linspace(0.1, 0.9, 5))["auc"])


def test_point_metrics_refuse_no_rows() -> None:
    with pytest.raises(DataError, match="no rows to evaluate on"):
        point_metrics(np.array([], dtype=np.int8), np.array([]))


def test_calibration_curve_has_ten_equal_width_bins_with_counts_and_means() -> None:
    y = np.array([1, 0, 0, 1, 1])
    p = np.array([0.12, 0.18, 0.3, 0.9, 1.0])

    curve = calibration_curve(y, p)

    assert [(b.low, b.high) for b in curve] == [(k / 10, (k + 1) / 10) for k in range(10)]
    assert [b.count for b in curve] == [0, 2, 0, 1, 0, 0, 0, 0, 0, 2]
    assert (curve[1].mean_predicted, curve[1].fraction_positive) == (pytest.approx(0.15), 0.5)
    assert (curve[9].mean_predicted, curve[9].fraction_positive) == (pytest.approx(0.95), 1.0)
    assert (curve[0].mean_predicted, curve[0].fraction_positive) == (None, None)


def test_calibration_curve_counts_every_row_once(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored

    assert sum(b.count for b in calibration_curve(y, p)) == y.size


# ---------------------------------------------------------------------------
# Resamples


def test_resample_b_is_the_bincount_of_its_own_generator() -> None:
    n, seed = 97, 20261126
    counts = _counts(n, 25, seed)

    for b in range(25):
        draws = np.random.default_rng([seed, b]).integers(0, n, n)
        assert np.array_equal(counts[b], np.bincount(draws, minlength=n))


def test_resample_counts_draw_n_rows(scored: tuple[np.ndarray, np.ndarray]) -> None:
    counts = _counts(scored[0].size, 20, 1)

    assert counts.shape == (20, scored[0].size)
    assert np.all(counts.sum(axis=1) == scored[0].size)


def test_resample_batches_hold_at_most_batch_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "_BATCH_CELLS", 1000)

    batches = list(bootstrap_counts(300, 10, 0))

    assert [b.shape[0] for b in batches] == [3, 3, 3, 1]


def test_each_resample_scores_the_rows_it_drew(tied: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = tied
    counts = _counts(y.size, 3, 11)

    samples = resampled_metrics(y, p, resamples=3, seed=11)

    for b in range(3):
        drawn_y, drawn_p = np.repeat(y, counts[b]), np.repeat(p, counts[b])
        expected = point_metrics(drawn_y, drawn_p)
        for name in METRIC_NAMES:
            assert samples[name][b] == pytest.approx(expected[name], abs=1e-12), name


def test_bootstrap_is_deterministic_for_a_seed(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored

    first = resampled_metrics(y, p, resamples=50, seed=3)
    second = resampled_metrics(y, p, resamples=50, seed=3)

    for name in METRIC_NAMES:
        assert np.array_equal(first[name], second[name]), name


def test_another_seed_gives_other_resamples(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored

    assert not np.array_equal(
        resampled_metrics(y, p, resamples=50, seed=3)["auc"],
        resampled_metrics(y, p, resamples=50, seed=4)["auc"],
    )


def _samples_in_batches_of(
    batch: int | None, y: np.ndarray, p: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    if batch is not None:
        monkeypatch.setattr(metrics_module, "_BATCH_CELLS", batch * y.size)
    mask = np.arange(y.size) % 3 == 0
    return bootstrap_samples(y, {"a": p, "b": p**2}, {"all": None, "s": mask}, resamples=40, seed=9)


def test_resample_counts_do_not_depend_on_batching(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _counts(500, 40, 9)

    monkeypatch.setattr(metrics_module, "_BATCH_CELLS", 3 * 500)

    assert np.array_equal(_counts(500, 40, 9), whole)


def test_bootstrap_does_not_depend_on_batching_beyond_rounding(
    scored: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    y, p = scored
    whole = _samples_in_batches_of(None, y, p, monkeypatch)

    batched = _samples_in_batches_of(3, y, p, monkeypatch)

    assert whole.keys() == batched.keys()
    for key in whole:
        for name in ("auc", "accuracy", "ece"):
            assert np.array_equal(whole[key][name], batched[key][name], equal_nan=True), (key, name)
        for name in ("log_loss", "brier"):
            assert np.allclose(
                whole[key][name], batched[key][name], rtol=1e-14, atol=0, equal_nan=True
            )


def test_bootstrap_does_not_depend_on_batching_bit_for_bit(
    scored: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    y, p = scored
    whole = _samples_in_batches_of(None, y, p, monkeypatch)

    batched = _samples_in_batches_of(3, y, p, monkeypatch)

    for key in whole:
        for name in METRIC_NAMES:
            assert np.array_equal(whole[key][name], batched[key][name], equal_nan=True), (key, name)


# ---------------------------------------------------------------------------
# Intervals


def test_percentile_interval_of_known_samples() -> None:
    estimate = summarize(50.0, np.arange(101.0), confidence=0.9)

    assert estimate == Estimate(50.0, pytest.approx(5.0), pytest.approx(95.0), 0.9, 101, 0)


def test_interval_leaves_out_and_counts_undefined_resamples() -> None:
    estimate = summarize(0.5, np.array([np.nan, 0.2, 0.4, np.nan, 0.6]), confidence=0.5)

    assert (estimate.low, estimate.high, estimate.resamples, estimate.undefined) == (
        pytest.approx(0.3),
        pytest.approx(0.5),
        5,
        2,
    )


def test_auc_interval_contains_the_point_value(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored

    auc = estimate_metrics(y, p, resamples=300, seed=1, confidence=0.95)["auc"]

    assert auc.low < auc.value < auc.high
    assert auc.high - auc.low < 0.1
    assert (auc.resamples, auc.undefined) == (300, 0)


def test_point_value_is_the_metric_on_the_holdout_itself(
    scored: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = scored

    estimates = estimate_metrics(y, p, resamples=20, seed=1, confidence=0.95)

    assert {name: e.value for name, e in estimates.items()} == point_metrics(y, p)


def test_resamples_without_both_classes_leave_auc_undefined_and_are_counted() -> None:
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1], dtype=np.int8)
    p = np.linspace(0.1, 0.8, 8)
    counts = _counts(8, 200, 5)

    auc = estimate_metrics(y, p, resamples=200, seed=5, confidence=0.95)["auc"]

    assert auc.undefined == int(np.sum(counts[:, 7] == 0)) > 0
    assert np.isfinite(auc.low) and np.isfinite(auc.high)


def test_ece_resamples_are_biased_above_the_point_value(
    scored: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = scored

    point = point_metrics(y, p)["ece"]
    samples = resampled_metrics(y, p, resamples=200, seed=2)["ece"]

    assert np.mean(samples > point) > 0.75


# ---------------------------------------------------------------------------
# Paired differences and slices


def test_paired_differences_of_a_model_with_itself_are_exactly_zero(
    scored: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = scored

    differences = paired_differences(y, p, p.copy(), resamples=50, seed=1)

    for name in METRIC_NAMES:
        assert np.all(differences[name] == 0.0), name


def test_paired_differences_score_both_models_on_the_same_resamples(
    scored: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = scored
    champion = np.clip(p + 0.05, 0.0, 1.0)

    differences = paired_differences(y, p, champion, resamples=30, seed=4)

    candidate_samples = resampled_metrics(y, p, resamples=30, seed=4)
    champion_samples = resampled_metrics(y, champion, resamples=30, seed=4)
    for name in METRIC_NAMES:
        assert np.array_equal(
            differences[name], candidate_samples[name] - champion_samples[name]
        ), name


def test_slice_samples_restrict_the_whole_holdout_resamples(
    scored: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = scored
    mask = np.zeros(y.size, dtype=bool)
    mask[[17, 2999]] = True  # two rows: about one resample in seven draws neither
    rows = np.flatnonzero(mask)
    counts = _counts(y.size, 100, 8)

    brier = resampled_metrics(y, p, resamples=100, seed=8, mask=mask)["brier"]

    drawn = counts[:, rows].sum(axis=1)
    assert np.array_equal(np.isnan(brier), drawn == 0)
    assert np.any(drawn == 0)
    with np.errstate(invalid="ignore"):
        expected = (counts[:, rows] @ (p[rows] - y[rows]) ** 2) / drawn
    assert np.allclose(brier, expected, equal_nan=True, rtol=1e-12, atol=0)


def test_slice_samples_are_the_same_whether_measured_alone_or_with_the_holdout(
    scored: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = scored
    mask = np.arange(y.size) < 500

    together = bootstrap_samples(y, {"m": p}, {"all": None, "s": mask}, resamples=30, seed=6)
    alone = resampled_metrics(y, p, resamples=30, seed=6, mask=mask)

    for name in METRIC_NAMES:
        assert np.array_equal(together[("m", "s")][name], alone[name], equal_nan=True), name


def test_slice_estimate_point_value_is_the_metric_on_the_slice_rows(
    scored: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = scored
    mask = p > 0.3

    estimates = estimate_metrics(y, p, resamples=20, seed=1, confidence=0.9, mask=mask)

    assert estimates["auc"].value == point_metrics(y[mask], p[mask])["auc"]


def test_estimate_of_an_empty_slice_is_refused(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored

    with pytest.raises(DataError, match="slice is empty"):
        estimate_metrics(
            y, p, resamples=20, seed=1, confidence=0.9, mask=np.zeros(y.size, dtype=bool)
        )


def test_estimate_writes_undefined_numbers_as_null() -> None:
    estimate = Estimate(float("nan"), float("nan"), float("nan"), 0.95, 100, 100)

    assert estimate.to_dict() == {
        "value": None,
        "ci_low": None,
        "ci_high": None,
        "confidence": 0.95,
        "resamples": 100,
        "undefined_resamples": 100,
    }
