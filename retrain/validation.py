"""Validating a candidate: holdout, contracts, metrics with intervals, champion, gates.

``validate_candidate`` is the whole evaluation step of a build, as one pure
function of loaded inputs:

1. the holdout is checked: labels usable (no NaN, inf or unknown value),
   both classes present, and no row (row-level hash) or key shared with the
   training data: leakage stops the build;
2. the model's contracts are checked on real holdout rows;
3. the candidate (and the champion, when there is one) predict the holdout;
4. every metric gets a seeded bootstrap interval, overall and per declared
   slice, and, with a champion, so does the paired difference;
5. the gates decide.

Unusable input raises (one line, the build stops, nothing is written);
everything measurable is returned, passed or failed, for the attestation and
the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retrain.contracts import ContractCheck, check_contracts
from retrain.errors import DataError, InputError
from retrain.features import label_vector
from retrain.gates import GateSpec, GateVerdict, Measurements, SliceMeasurement, decide_gates
from retrain.metrics import (
    METRIC_NAMES,
    CalibrationBin,
    Estimate,
    bootstrap_samples,
    calibration_curve,
    point_metrics,
    summarize,
)
from retrain.model import Model
from retrain.recipe import TrainingRecipe
from retrain.rowhash import ROW_HASH_VERSION, row_hashes

__all__ = ["LeakageReport", "ValidationResult", "check_leakage", "validate_candidate"]


@dataclass(frozen=True)
class LeakageReport:
    training_dataset: str
    training_rows: int
    holdout_rows: int
    shared_rows: int
    key: str | None
    shared_keys: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "training_dataset": self.training_dataset,
            "training_rows": self.training_rows,
            "holdout_rows": self.holdout_rows,
            "row_hash": ROW_HASH_VERSION,
            "shared_rows": self.shared_rows,
            "key": self.key,
            "shared_keys": self.shared_keys,
            "disjoint": self.shared_rows == 0 and self.shared_keys == 0,
        }


def check_leakage(
    holdout: pa.Table, training: pa.Table, *, training_name: str, key: str | None, where: str
) -> LeakageReport:
    """Refuse a holdout that shares a row (or a key) with the training data."""
    shared = np.intersect1d(row_hashes(holdout), row_hashes(training), assume_unique=False)
    shared_keys = 0
    example = ""
    if key is not None:
        for table, name in ((holdout, "holdout"), (training, training_name)):
            if key not in table.column_names:
                raise InputError(f"leakage key {key!r} is not a column of {name}", where=where)
        common = pc.is_in(
            holdout.column(key), value_set=pa.array(training.column(key).combine_chunks().unique())
        )
        shared_keys = int(pc.sum(common).as_py() or 0)
        if shared_keys:
            example = f" (first {key} {pc.filter(holdout.column(key), common)[0].as_py()!r})"
    report = LeakageReport(
        training_name, training.num_rows, holdout.num_rows, int(shared.size), key, shared_keys
    )
    if shared.size or shared_keys:
        raise DataError(
            f"holdout leaks into training dataset {training_name}",
            where=where,
            expected="no shared row and no shared key",
            found=f"{shared.size} identical rows, {shared_keys} shared {key or 'key'} values{example}",
        )
    return report


@dataclass(frozen=True)
class ValidationResult:
    rows: int
    positives: int
    estimates: Mapping[str, Estimate]
    calibration: Sequence[CalibrationBin]
    slices: Sequence[SliceMeasurement]
    champion_sha256: str | None
    champion_estimates: Mapping[str, Estimate] | None
    differences: Mapping[str, Estimate] | None
    sanity: Mapping[str, bool]
    contracts: Sequence[ContractCheck]
    leakage: LeakageReport | None
    verdicts: Sequence[GateVerdict]
    spec: GateSpec

    @property
    def passed(self) -> bool:
        return all(v.status != "failed" for v in self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        def est(m: Mapping[str, Estimate] | None) -> dict[str, Any] | None:
            return None if m is None else {k: m[k].to_dict() for k in METRIC_NAMES}

        return {
            "holdout": {
                "rows": self.rows,
                "positives": self.positives,
                "leakage": self.leakage.to_dict() if self.leakage else None,
            },
            "bootstrap": {
                "resamples": self.spec.resamples,
                "seed": self.spec.seed,
                "confidence": self.spec.confidence,
            },
            "contracts": {"passed": True, "checks": [c.to_dict() for c in self.contracts]},
            "metrics": est(self.estimates),
            "calibration": [b.to_dict() for b in self.calibration],
            "slices": [
                {
                    "feature": s.feature,
                    "value": s.value,
                    "rows": s.rows,
                    "metrics": est(s.estimates),
                    "differences": est(s.differences),
                }
                for s in self.slices
            ],
            "champion": None
            if self.champion_sha256 is None
            else {
                "sha256": self.champion_sha256,
                "metrics": est(self.champion_estimates),
                "differences": est(self.differences),
            },
            "sanity": dict(self.sanity),
            "gates": {
                "passed": self.passed,
                "champion": self.champion_sha256 is not None,
                "verdicts": [v.to_dict() for v in self.verdicts],
            },
        }


def _slice_values(
    table: pa.Table, feature: str, declared: tuple[str, ...] | None, where: str
) -> list[tuple[str, np.ndarray]]:
    if feature not in table.column_names:
        raise InputError(
            f"the gate spec slices by {feature!r}, which the holdout does not have",
            where=where,
            expected=f"one of {', '.join(table.column_names)}",
            found=repr(feature),
        )
    col = table.column(feature)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    strings = col.cast(pa.string())
    values = declared or tuple(sorted(v for v in pc.unique(strings).to_pylist() if v is not None))
    out = []
    for value in values:
        mask = pc.fill_null(pc.equal(strings, value), False).to_numpy(zero_copy_only=False)
        if not mask.any():
            raise DataError(
                f"slice {feature}={value} is empty",
                where=where,
                expected="at least one holdout row",
                found="0 rows",
            )
        out.append((value, mask))
    return out


def _sanity(p: np.ndarray) -> dict[str, bool]:
    finite = np.isfinite(p)
    return {
        "finite": bool(finite.all()),
        "in_range": bool(np.all((p[finite] >= 0.0) & (p[finite] <= 1.0))),
        "not_constant": bool(np.unique(p[finite]).size > 1),
    }


def validate_candidate(
    model: Model,
    recipe: TrainingRecipe,
    holdout: pa.Table,
    spec: GateSpec,
    *,
    training: pa.Table | None = None,
    training_name: str = "training",
    leakage_key: str | None = None,
    champion: tuple[str, Model] | None = None,
    quality_failures: Sequence[str] = (),
    where: str = "holdout",
) -> ValidationResult:
    if holdout.num_rows == 0:
        raise DataError("the holdout is empty", where=where, expected="at least one row")
    y = label_vector(holdout, recipe.label, where=where)
    positives = int(y.sum())
    if positives in (0, y.size):
        raise DataError(
            "the holdout has a single class",
            where=where,
            expected="both label values",
            found=f"{positives} positives, {y.size - positives} negatives",
        )
    leakage = None
    if training is not None:
        leakage = check_leakage(
            holdout, training, training_name=training_name, key=leakage_key, where=where
        )
    contracts = check_contracts(model, recipe, holdout, where=where)
    slice_masks: dict[str, tuple[str, str, np.ndarray]] = {}
    for s in spec.slices:
        for value, mask in _slice_values(holdout, s.feature, s.values, where):
            slice_masks[f"{s.feature}={value}"] = (s.feature, value, mask)
    p = model.predict_proba(holdout, where=where)
    sanity = _sanity(p)
    # Metrics of non-finite predictions are meaningless; the sanity gate
    # fails and the numbers are computed on a neutral stand-in.
    p_eval = np.where(np.isfinite(p), p, 0.5)
    predictions = {"candidate": p_eval}
    champion_sha = None
    if champion is not None:
        champion_sha, champion_model = champion
        contracts_champion = check_contracts(
            champion_model, recipe, holdout, where=f"{where} (champion)"
        )
        del contracts_champion
        pc_ = champion_model.predict_proba(holdout, where=where)
        predictions["champion"] = np.where(np.isfinite(pc_), pc_, 0.5)
    masks: dict[str, np.ndarray | None] = {"all": None} | {
        label: m for label, (_, _, m) in slice_masks.items()
    }
    samples = bootstrap_samples(y, predictions, masks, resamples=spec.resamples, seed=spec.seed)
    points = {
        (model_name, label): point_metrics(
            y if mask is None else y[mask], p_m if mask is None else p_m[mask]
        )
        for model_name, p_m in predictions.items()
        for label, mask in masks.items()
    }

    def estimates(model_name: str, label: str) -> dict[str, Estimate]:
        return {
            name: summarize(
                points[(model_name, label)][name],
                samples[(model_name, label)][name],
                confidence=spec.confidence,
            )
            for name in METRIC_NAMES
        }

    def differences(label: str) -> dict[str, Estimate] | None:
        if champion is None:
            return None
        return {
            name: summarize(
                points[("candidate", label)][name] - points[("champion", label)][name],
                samples[("candidate", label)][name] - samples[("champion", label)][name],
                confidence=spec.confidence,
            )
            for name in METRIC_NAMES
        }

    overall = estimates("candidate", "all")
    slices = [
        SliceMeasurement(
            feature, value, int(mask.sum()), estimates("candidate", label), differences(label)
        )
        for label, (feature, value, mask) in slice_masks.items()
    ]
    champion_estimates = estimates("champion", "all") if champion is not None else None
    diffs = differences("all")
    verdicts = decide_gates(
        spec,
        Measurements(
            estimates=overall,
            slices=slices,
            differences=diffs,
            champion_estimates=champion_estimates,
            sanity=sanity,
            quality_failures=tuple(quality_failures),
        ),
    )
    assert all(math.isfinite(e.value) for e in overall.values()) or not sanity["finite"]
    return ValidationResult(
        rows=holdout.num_rows,
        positives=positives,
        estimates=overall,
        calibration=calibration_curve(y.astype(np.float64), p_eval),
        slices=slices,
        champion_sha256=champion_sha,
        champion_estimates=champion_estimates,
        differences=diffs,
        sanity=sanity,
        contracts=contracts,
        leakage=leakage,
        verdicts=verdicts,
        spec=spec,
    )
