"""validate_candidate end to end: a small trained model on a generated, disjoint holdout.

Unusable input (bad labels, one class, an empty or unknown slice, leakage, a
broken contract) raises one clear line and returns nothing; everything
measurable, passed or failed, is returned for metrics.json
(docs/validation.md, schema docs/schemas/metrics.v2.schema.json).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from jsonschema import Draft202012Validator

from retrain.contracts import ContractViolation
from retrain.datagen import GeneratorSpec, generate_table
from retrain.errors import DataError, InputError, RetrainError
from retrain.gates import GateSpec, SliceSpec, parse_gate_spec
from retrain.metrics import METRIC_NAMES, point_metrics
from retrain.model import Model
from retrain.recipe import FeatureSpec, LabelSpec, TrainingRecipe, load_recipe
from retrain.train import train_model
from retrain.validation import ValidationResult, validate_candidate

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "docs" / "schemas" / "metrics.v2.schema.json"
LINEAGE = {"dataset_digest": "sha256:" + "ab" * 32, "recipe": "candidate.recipe.json"}
LABEL = "default_90d"

# The checked-in gates' kinds and slices, with floors a 20-iteration model clears.
GATES: dict[str, Any] = {
    "spec_version": 1,
    "evaluation": {"confidence": 0.95, "resamples": 200, "seed": 7, "min_slice_rows": 300},
    "slices": [{"feature": "region"}, {"feature": "employment"}],
    "gates": [
        {"name": "sane-predictions", "kind": "sanity"},
        {"name": "data-quality", "kind": "data_quality"},
        {"name": "auc-floor", "kind": "value", "metric": "auc", "lower": 0.62},
        {"name": "log-loss-ceiling", "kind": "value", "metric": "log_loss", "upper": 0.55},
        {"name": "calibration", "kind": "value", "metric": "ece", "upper": 0.08},
        {
            "name": "auc-floor-per-region",
            "kind": "value",
            "metric": "auc",
            "slice": "region",
            "lower": 0.55,
            "statistic": "value",
        },
        {"name": "auc-not-worse", "kind": "change", "metric": "auc", "absolute": -0.05},
        {
            "name": "log-loss-not-worse",
            "kind": "non_inferiority",
            "metric": "log_loss",
            "tolerance": 0.05,
        },
        {
            "name": "no-region-worse",
            "kind": "non_inferiority",
            "metric": "auc",
            "slice": "region",
            "tolerance": 0.1,
        },
    ],
}


@pytest.fixture(scope="module")
def recipe() -> TrainingRecipe:
    return dataclasses.replace(
        load_recipe(REPO / "models" / "candidate.recipe.json"), params={"max_iter": 20}
    )


@pytest.fixture(scope="module")
def training() -> pa.Table:
    return generate_table(GeneratorSpec(rows=5000, seed=1))


@pytest.fixture(scope="module")
def holdout() -> pa.Table:
    return generate_table(GeneratorSpec(rows=3000, seed=2, id_offset=10_000_000))


@pytest.fixture(scope="module")
def model(recipe: TrainingRecipe, training: pa.Table) -> Model:
    return train_model(recipe, training, lineage=LINEAGE)[0]


@pytest.fixture(scope="module")
def champion(recipe: TrainingRecipe, training: pa.Table) -> Model:
    return train_model(
        dataclasses.replace(recipe, params={"max_iter": 5}), training, lineage=LINEAGE
    )[0]


@pytest.fixture(scope="module")
def spec() -> GateSpec:
    return parse_gate_spec(GATES, where="test.gates.toml")


@pytest.fixture(scope="module")
def result(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, training: pa.Table, spec: GateSpec
) -> ValidationResult:
    return validate_candidate(
        model,
        recipe,
        holdout,
        spec,
        training=training,
        training_name="default",
        leakage_key="customer_id",
    )


@pytest.fixture(scope="module")
def result_with_champion(
    model: Model, champion: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> ValidationResult:
    return validate_candidate(model, recipe, holdout, spec, champion=("cd" * 32, champion))


def _with_labels(table: pa.Table, labels: np.ndarray) -> pa.Table:
    i = table.schema.get_field_index(LABEL)
    array = pa.array(labels)
    return table.set_column(i, table.schema.field(i).with_type(array.type), array)


def _float_labels(table: pa.Table, **changes: float) -> pa.Table:
    labels = table.column(LABEL).to_numpy().astype(np.float64)
    for row, value in changes.items():
        labels[int(row.removeprefix("row"))] = value
    return _with_labels(table, labels)


def _refusal(error: type[RetrainError], *args: Any, **kwargs: Any) -> str:
    """The one line validate_candidate raises for unusable input."""
    with pytest.raises(error) as info:
        validate_candidate(*args, **kwargs)
    line = str(info.value)
    assert "\n" not in line
    return line


def _metrics_document(result: ValidationResult) -> dict[str, Any]:
    """metrics.json as cmd_evaluate writes it around the result."""
    return {
        "schema": "https://retrain.dev/metrics/v2",
        "model": {"name": "model.rtm", "sha256": "ab" * 32},
        "dataset": {"name": "holdout", "digest": "sha256:" + "cd" * 32},
        "training_dataset": {"name": "default", "digest": "sha256:" + "ef" * 32},
        "gate_spec": {"path": "models/candidate.gates.toml", "sha256": "12" * 32},
    } | result.to_dict()


def _schema_errors(document: dict[str, Any]) -> list[str]:
    validator = Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


# ---------------------------------------------------------------------------
# A usable holdout


def test_candidate_on_a_disjoint_holdout_passes(result: ValidationResult) -> None:
    assert result.passed
    assert [v.name for v in result.verdicts if v.status == "failed"] == []


def test_result_counts_the_holdout_rows_and_positives(
    result: ValidationResult, holdout: pa.Table
) -> None:
    assert (result.rows, result.positives) == (3000, int(pc.sum(holdout.column(LABEL)).as_py()))


def test_disjoint_holdout_is_recorded_with_the_row_hash_version(result: ValidationResult) -> None:
    assert result.leakage is not None
    assert result.leakage.to_dict() == {
        "training_dataset": "default",
        "training_rows": 5000,
        "holdout_rows": 3000,
        "row_hash": "retrain.row-hash.v1",
        "shared_rows": 0,
        "key": "customer_id",
        "shared_keys": 0,
        "disjoint": True,
    }


def test_every_contract_check_is_recorded(result: ValidationResult) -> None:
    assert [(c.name, c.passed) for c in result.contracts] == [
        ("input-features", True),
        ("output-classes", True),
        ("input-columns", True),
        ("output-shape", True),
        ("output-range", True),
    ]


def test_overall_estimates_are_the_holdout_metrics_with_intervals(
    result: ValidationResult, model: Model, holdout: pa.Table
) -> None:
    y = holdout.column(LABEL).to_numpy()
    points = point_metrics(y, model.predict_proba(holdout))

    for name in METRIC_NAMES:
        estimate = result.estimates[name]
        assert estimate.value == points[name], name
        assert (estimate.resamples, estimate.confidence) == (200, 0.95)
    assert (
        result.estimates["auc"].low < result.estimates["auc"].value < result.estimates["auc"].high
    )


def test_every_slice_value_is_measured_on_its_own_rows(
    result: ValidationResult, model: Model, holdout: pa.Table
) -> None:
    regions = sorted(v for v in pc.unique(holdout.column("region")).to_pylist() if v is not None)
    north = pc.fill_null(pc.equal(holdout.column("region"), "north"), False).to_numpy(
        zero_copy_only=False
    )
    y, p = holdout.column(LABEL).to_numpy(), model.predict_proba(holdout)

    measured = {(s.feature, s.value): s for s in result.slices}

    assert [v for f, v in measured if f == "region"] == regions
    assert measured[("region", "north")].rows == int(north.sum())
    assert (
        measured[("region", "north")].estimates["auc"].value
        == point_metrics(y[north], p[north])["auc"]
    )
    assert all(s.differences is None for s in result.slices)


def test_without_a_champion_comparative_gates_are_skipped_and_value_gates_decide(
    result: ValidationResult,
) -> None:
    skipped = [v for v in result.verdicts if v.kind in ("change", "non_inferiority")]

    assert {v.status for v in skipped} == {"skipped"}
    assert all(v.message.startswith("no champion yet") for v in skipped)
    assert {v.status for v in result.verdicts if v.kind != "value" and v not in skipped} == {
        "passed"
    }
    assert result.to_dict()["gates"]["champion"] is False


def test_small_slices_are_measured_but_not_gated(result: ValidationResult) -> None:
    small = [s for s in result.slices if s.feature == "region" and s.rows < 300]
    verdicts = {v.slice: v for v in result.verdicts if v.name == "auc-floor-per-region"}

    for s in small:
        assert verdicts[f"region={s.value}"].status == "skipped"


def test_validation_is_deterministic(
    result: ValidationResult,
    model: Model,
    recipe: TrainingRecipe,
    holdout: pa.Table,
    training: pa.Table,
    spec: GateSpec,
) -> None:
    again = validate_candidate(
        model,
        recipe,
        holdout,
        spec,
        training=training,
        training_name="default",
        leakage_key="customer_id",
    )

    assert json.dumps(again.to_dict(), sort_keys=True) == json.dumps(
        result.to_dict(), sort_keys=True
    )


def test_result_matches_the_metrics_v2_schema(result: ValidationResult) -> None:
    document = _metrics_document(result)

    assert _schema_errors(document) == []
    json.dumps(document, allow_nan=False)


def test_failed_quality_checks_fail_the_data_quality_gate(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    failure = "holdout: drift-psi(utilization) measured 0.24, expected <= 0.1"

    result = validate_candidate(model, recipe, holdout, spec, quality_failures=[failure])

    (verdict,) = [v for v in result.verdicts if v.kind == "data_quality"]
    assert (verdict.status, verdict.message) == ("failed", f"1 quality check(s) failed: {failure}")
    assert not result.passed


def test_slice_with_a_single_class_is_reported_with_a_null_auc(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    coastal = pc.fill_null(pc.equal(holdout.column("region"), "coastal"), False).to_numpy(
        zero_copy_only=False
    )
    labels = np.where(coastal, 0, holdout.column(LABEL).to_numpy())

    result = validate_candidate(model, recipe, _with_labels(holdout, labels), spec)

    (coastal_slice,) = [s for s in result.to_dict()["slices"] if s["value"] == "coastal"]
    assert coastal_slice["metrics"]["auc"]["value"] is None
    assert _schema_errors(_metrics_document(result)) == []


# ---------------------------------------------------------------------------
# With a champion


def test_champion_gives_paired_differences_of_every_metric(
    result_with_champion: ValidationResult,
) -> None:
    result = result_with_champion
    assert result.differences is not None and result.champion_estimates is not None

    for name in METRIC_NAMES:
        assert result.differences[name].value == pytest.approx(
            result.estimates[name].value - result.champion_estimates[name].value, abs=1e-15
        )
    assert result.champion_sha256 == "cd" * 32
    assert all(s.differences is not None for s in result.slices)


def test_with_a_champion_the_comparative_gates_decide(
    result_with_champion: ValidationResult,
) -> None:
    comparative = [
        v for v in result_with_champion.verdicts if v.kind in ("change", "non_inferiority")
    ]

    assert [(v.name, v.status) for v in comparative if v.slice is None] == [
        ("auc-not-worse", "passed"),
        ("log-loss-not-worse", "passed"),
    ]
    skipped = [v for v in comparative if v.status == "skipped"]
    assert [v.slice for v in skipped] == ["region=coastal"]
    assert skipped[0].message == "274 rows, fewer than min_slice_rows 300"
    assert all(
        v.message.startswith("candidate - champion auc")
        for v in comparative
        if v.name == "auc-not-worse"
    )


def test_candidate_worse_than_its_champion_fails_the_change_gate_without_raising(
    model: Model, champion: Model, recipe: TrainingRecipe, holdout: pa.Table
) -> None:
    must_improve = parse_gate_spec(
        GATES
        | {"gates": [{"name": "must-improve", "kind": "change", "metric": "auc", "absolute": 0.0}]},
        where="test.gates.toml",
    )

    result = validate_candidate(
        champion, recipe, holdout, must_improve, champion=("ab" * 32, model)
    )

    (verdict,) = result.verdicts
    assert verdict.status == "failed"
    assert verdict.statistic == "ci_low"
    assert verdict.measured is not None and verdict.measured < 0.0
    assert not result.passed


def test_result_with_a_champion_matches_the_metrics_v2_schema(
    result_with_champion: ValidationResult,
) -> None:
    document = _metrics_document(result_with_champion)

    assert document["champion"]["sha256"] == "cd" * 32
    assert _schema_errors(document) == []


def test_candidate_compared_with_itself_differs_by_exactly_zero(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    result = validate_candidate(model, recipe, holdout, spec, champion=("ab" * 32, model))

    assert result.differences is not None
    for name in METRIC_NAMES:
        diff = result.differences[name]
        assert (diff.value, diff.low, diff.high) == (0.0, 0.0, 0.0), name
    assert result.passed


# ---------------------------------------------------------------------------
# Unusable input: one line, nothing returned


def test_nan_label_is_refused_naming_its_row(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    line = _refusal(DataError, model, recipe, _float_labels(holdout, row5=np.nan), spec)

    assert (
        line
        == "holdout: label column 'default_90d' has an unknown value at row 5: expected 0 or 1, found NaN"
    )


def test_infinite_label_is_refused_naming_its_row(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    line = _refusal(DataError, model, recipe, _float_labels(holdout, row9=np.inf), spec)

    assert (
        line
        == "holdout: label column 'default_90d' has an unknown value at row 9: expected 0 or 1, found inf"
    )


def test_unknown_label_value_is_refused(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    labels = holdout.column(LABEL).to_numpy().copy()
    labels[7] = 2

    line = _refusal(DataError, model, recipe, _with_labels(holdout, labels), spec)

    assert (
        line
        == "holdout: label column 'default_90d' has an unknown value at row 7: expected 0 or 1, found 2"
    )


def test_null_label_is_refused(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    labels = pa.array([None, *holdout.column(LABEL).to_pylist()[1:]], pa.int64())

    line = _refusal(DataError, model, recipe, _with_labels(holdout, labels), spec)

    assert line.startswith("holdout: label column 'default_90d' has 1 null values (first at row 0)")


def test_holdout_with_one_class_is_refused(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    line = _refusal(
        DataError, model, recipe, _with_labels(holdout, np.zeros(holdout.num_rows, np.int64)), spec
    )

    assert line == (
        "holdout: the holdout has a single class: expected both label values, found 0 positives, 3000 negatives"
    )


def test_empty_holdout_is_refused(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    line = _refusal(DataError, model, recipe, holdout.slice(0, 0), spec)

    assert line == "holdout: the holdout is empty: expected at least one row"


def test_declared_slice_value_without_rows_is_refused(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    atlantis = dataclasses.replace(spec, slices=(SliceSpec("region", ("north", "atlantis")),))

    line = _refusal(DataError, model, recipe, holdout, atlantis)

    assert (
        line
        == "holdout: slice region=atlantis is empty: expected at least one holdout row, found 0 rows"
    )


def test_slice_feature_the_holdout_lacks_is_refused(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    planet = dataclasses.replace(spec, slices=(SliceSpec("planet"),))

    line = _refusal(InputError, model, recipe, holdout, planet)

    assert line.startswith(
        "holdout: the gate spec slices by 'planet', which the holdout does not have: expected one of"
    )
    assert line.endswith("found 'planet'")


def test_holdout_sharing_rows_with_training_is_refused_naming_the_count_and_first_key(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, training: pa.Table, spec: GateSpec
) -> None:
    leaky = pa.concat_tables([holdout, training.slice(100, 3)])

    line = _refusal(
        DataError,
        model,
        recipe,
        leaky,
        spec,
        training=training,
        training_name="default",
        leakage_key="customer_id",
    )

    assert line == (
        "holdout: holdout leaks into training dataset default: expected no shared row and no shared key, "
        "found 3 identical rows, 3 shared customer_id values (first customer_id 100)"
    )


def test_holdout_sharing_rows_is_refused_without_a_leakage_key(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, training: pa.Table, spec: GateSpec
) -> None:
    leaky = pa.concat_tables([holdout, training.slice(100, 3)])

    line = _refusal(
        DataError, model, recipe, leaky, spec, training=training, training_name="default"
    )

    assert line.endswith("found 3 identical rows, 0 shared key values")


def test_holdout_sharing_only_keys_with_training_is_refused(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, training: pa.Table, spec: GateSpec
) -> None:
    shared = training.slice(0, 2)
    i = shared.schema.get_field_index("age")
    shared = shared.set_column(i, shared.schema.field(i), pc.add(shared.column("age"), 1))

    line = _refusal(
        DataError,
        model,
        recipe,
        pa.concat_tables([holdout, shared]),
        spec,
        training=training,
        training_name="default",
        leakage_key="customer_id",
    )

    assert line.endswith(
        "found 0 identical rows, 2 shared customer_id values (first customer_id 0)"
    )


def test_leakage_key_that_is_not_a_column_is_refused(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, training: pa.Table, spec: GateSpec
) -> None:
    line = _refusal(
        InputError, model, recipe, holdout, spec, training=training, leakage_key="account_id"
    )

    assert line == "holdout: leakage key 'account_id' is not a column of holdout"


# ---------------------------------------------------------------------------
# Contracts


def test_recipe_whose_features_differ_from_the_model_is_a_contract_violation(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    fewer = dataclasses.replace(recipe, features=recipe.features[:-1])

    line = _refusal(ContractViolation, model, fewer, holdout, spec)

    assert line.startswith(
        "holdout: model input schema differs from the recipe's feature spec: expected feature 10"
    )


def test_recipe_with_a_feature_of_another_kind_is_a_contract_violation(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    features = (FeatureSpec("age", "categorical"), *recipe.features[1:])

    line = _refusal(
        ContractViolation, model, dataclasses.replace(recipe, features=features), holdout, spec
    )

    assert "expected feature 0: ('age', 'categorical'), found ('age', 'numeric')" in line


def test_recipe_with_other_label_values_is_a_contract_violation(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    swapped = dataclasses.replace(recipe, label=LabelSpec(LABEL, positive=0, negative=1))

    line = _refusal(ContractViolation, model, swapped, holdout, spec)

    assert line.startswith("holdout: model classes differ from the recipe's label")


def test_holdout_without_a_feature_column_is_a_contract_violation(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    line = _refusal(ContractViolation, model, recipe, holdout.drop_columns(["channel"]), spec)

    assert "channel" in line


def test_champion_breaking_its_contract_is_refused_naming_the_champion(
    model: Model, recipe: TrainingRecipe, training: pa.Table, holdout: pa.Table, spec: GateSpec
) -> None:
    other = dataclasses.replace(recipe, features=recipe.features[:-1])
    other_model = train_model(
        dataclasses.replace(other, params={"max_iter": 2}), training, lineage=LINEAGE
    )[0]

    line = _refusal(
        ContractViolation, model, recipe, holdout, spec, champion=("ef" * 32, other_model)
    )

    assert line.startswith("holdout (champion): model input schema differs")


class _NaNPredictions(Model):
    """The wrapped model's predictions, with NaN in every 100th row."""

    def predict_proba(self, table: pa.Table, *, where: str = "dataset") -> np.ndarray:
        p = super().predict_proba(table, where=where)
        p[::100] = np.nan
        return p


def test_nan_predictions_fail_the_sanity_gate_without_raising(
    model: Model, recipe: TrainingRecipe, holdout: pa.Table, spec: GateSpec
) -> None:
    nan_model = _NaNPredictions(
        **{f.name: getattr(model, f.name) for f in dataclasses.fields(model)}
    )

    result = validate_candidate(nan_model, recipe, holdout, spec)

    assert result.sanity == {"finite": False, "in_range": True, "not_constant": True}
    (sanity,) = [v for v in result.verdicts if v.kind == "sanity"]
    assert (sanity.status, sanity.message) == ("failed", "predictions fail: finite")
    assert not result.passed
    assert all(np.isfinite(e.value) for e in result.estimates.values())


# ---------------------------------------------------------------------------
# The schema refuses what retrain does not write


def test_metrics_schema_is_a_valid_draft_2020_12_schema_with_a_retrain_id() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))

    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == "https://retrain.dev/schemas/metrics.v2.schema.json"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param(("schema",), "https://retrain.dev/metrics/v1", id="old-schema"),
        pytest.param(("holdout", "leakage", "shared_rows"), 3, id="leaking-holdout"),
        pytest.param(("metrics", "auc", "p_value"), 0.01, id="unknown-estimate-key"),
        pytest.param(("gates", "verdicts", 0, "status"), "warned", id="unknown-status"),
        pytest.param(("calibration",), [], id="no-calibration-bins"),
        pytest.param(("contracts", "passed"), False, id="broken-contract"),
    ],
)
def test_metrics_schema_refuses_what_retrain_does_not_write(
    result: ValidationResult, path: tuple[Any, ...], value: Any
) -> None:
    document = copy.deepcopy(_metrics_document(result))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    assert _schema_errors(document) != []
