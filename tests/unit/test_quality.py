"""Dataset quality specs: strict parsing, each check measured, PSI/KS drift, the profile.

The spec format and every check are documented in docs/validation.md. A spec
that cannot be applied raises InputError naming the key or column; a check
that measures a value beyond its threshold is a failed verdict, not an error.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from retrain.datagen import GeneratorSpec, generate_table
from retrain.errors import InputError
from retrain.quality import (
    QualitySpec,
    QualityVerdict,
    load_quality_spec,
    parse_quality_spec,
    population_stability_index,
    profile_table,
    run_quality_checks,
)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = REPO / "data_manifests" / "default.quality.toml"
HOLDOUT_SPEC = REPO / "data_manifests" / "holdout.quality.toml"
DOC = REPO / "docs" / "validation.md"


@pytest.fixture(scope="module")
def reference() -> pa.Table:
    return generate_table(GeneratorSpec(rows=6000, seed=1))


@pytest.fixture(scope="module")
def same_distribution() -> pa.Table:
    return generate_table(GeneratorSpec(rows=5000, seed=2, id_offset=10_000_000))


@pytest.fixture(scope="module")
def drifted() -> pa.Table:
    return generate_table(GeneratorSpec(rows=5000, seed=3, drift=1.5, id_offset=10_000_000))


def _spec(**sections: Any) -> QualitySpec:
    return parse_quality_spec({"spec_version": 1, "dataset": "d", **sections}, where="q.toml")


def _check(table: pa.Table, check: str, **sections: Any) -> QualityVerdict:
    """The one verdict named ``check`` that the spec made of ``sections`` gives."""
    verdicts = [v for v in run_quality_checks(table, _spec(**sections)) if v.check == check]
    assert len(verdicts) == 1, verdicts
    return verdicts[0]


def _replace_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, table.schema.field(i).with_type(values.type), values)


def _refusal(raw: dict[str, Any]) -> str:
    with pytest.raises(InputError) as info:
        parse_quality_spec({"spec_version": 1, "dataset": "d"} | raw, where="q.toml")
    return str(info.value)


# ---------------------------------------------------------------------------
# Parsing the spec


def test_checked_in_training_spec_declares_schema_duplicates_and_label_balance() -> None:
    spec = load_quality_spec(DEFAULT_SPEC)

    assert spec.dataset == "default"
    assert spec.exact_columns
    assert [c.name for c in spec.columns][:2] == ["customer_id", "age"]
    assert spec.unique_key == ("customer_id",)
    assert (spec.label, spec.min_positive_rate, spec.max_positive_rate) == (
        "default_90d",
        0.05,
        0.5,
    )
    assert spec.drift is None


def test_checked_in_holdout_spec_declares_drift_against_the_training_dataset() -> None:
    spec = load_quality_spec(HOLDOUT_SPEC)

    assert spec.dataset == "holdout"
    assert spec.drift is not None
    assert spec.drift.reference == "default"
    assert (spec.drift.psi_max, spec.drift.ks_statistic_max, spec.drift.bins) == (0.1, 0.05, 10)
    assert len(spec.drift.numeric) == 7
    assert spec.drift.categorical == ("region", "employment", "product", "channel")


def test_drift_defaults_are_psi_max_0_2_ten_bins_and_ks_reported_only() -> None:
    spec = _spec(drift={"reference": "r", "numeric": ["age"]})

    assert spec.drift is not None
    assert (spec.drift.psi_max, spec.drift.bins, spec.drift.ks_statistic_max) == (0.2, 10, None)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param({"colums": {}}, "unknown key 'colums' in the quality spec", id="top-level"),
        pytest.param({"rows": {"minimum": 1}}, "unknown key 'minimum' in [rows]", id="rows"),
        pytest.param({"schema": {"strict": True}}, "unknown key 'strict' in [schema]", id="schema"),
        pytest.param(
            {"columns": {"age": {"maximum": 3}}},
            "unknown key 'maximum' in [columns.age]",
            id="column",
        ),
        pytest.param(
            {"duplicates": {"key": ["a"]}}, "unknown key 'key' in [duplicates]", id="duplicates"
        ),
        pytest.param({"label": {"positive": 1}}, "unknown key 'positive' in [label]", id="label"),
        pytest.param(
            {"drift": {"reference": "r", "psi": 0.1}}, "unknown key 'psi' in [drift]", id="drift"
        ),
    ],
)
def test_spec_refuses_an_unknown_key_naming_it_and_its_table(
    raw: dict[str, Any], message: str
) -> None:
    assert message in _refusal(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(
            {"columns": {"income": {"max_missing_rate": 1.5}}},
            "columns.income.max_missing_rate: expected a number in [0, 1], found 1.5",
            id="missing-rate-above-1",
        ),
        pytest.param(
            {"columns": {"age": {"min": True}}},
            "columns.age.min: expected a number",
            id="bool-as-number",
        ),
        pytest.param(
            {"columns": {"age": {"max": "100"}}},
            "columns.age.max: expected a number",
            id="string-as-number",
        ),
        pytest.param(
            {"columns": {"region": {"allowed": ["north", 3]}}},
            "columns.region.allowed must be a list of strings",
            id="allowed-not-strings",
        ),
        pytest.param(
            {"columns": {"age": 18}}, "columns.age must be a table", id="column-not-a-table"
        ),
        pytest.param(
            {"rows": {"min": -1}}, "rows.min: expected an integer in [0,", id="negative-rows"
        ),
        pytest.param(
            {"duplicates": {"unique_key": "customer_id"}},
            "duplicates.unique_key must be a list of column names",
            id="unique-key-not-a-list",
        ),
        pytest.param(
            {"duplicates": {"max_duplicate_row_rate": 2}},
            "duplicates.max_duplicate_row_rate: expected a number in [0, 1]",
            id="duplicate-rate-above-1",
        ),
        pytest.param(
            {"label": {"min_positive_rate": 0.1}},
            "label.column must name the label column",
            id="label-without-column",
        ),
        pytest.param(
            {"label": {"column": "y", "max_positive_rate": -0.1}},
            "label.max_positive_rate: expected a number in [0, 1]",
            id="negative-positive-rate",
        ),
        pytest.param(
            {"drift": {"numeric": ["age"]}},
            "drift.reference must name the reference dataset",
            id="drift-without-reference",
        ),
        pytest.param(
            {"drift": {"reference": "r", "psi_max": -0.1}},
            "drift.psi_max: expected a number in [0, inf]",
            id="negative-psi-max",
        ),
        pytest.param(
            {"drift": {"reference": "r", "ks_statistic_max": 1.5}},
            "drift.ks_statistic_max: expected a number in [0, 1]",
            id="ks-max-above-1",
        ),
        pytest.param(
            {"drift": {"reference": "r", "bins": 1}},
            "drift.bins: expected an integer in [2, 100]",
            id="one-bin",
        ),
        pytest.param(
            {"drift": {"reference": "r", "numeric": "age"}},
            "drift.numeric must be a list of column names",
            id="drift-columns-not-a-list",
        ),
    ],
)
def test_spec_refuses_a_bad_value_naming_its_key(raw: dict[str, Any], message: str) -> None:
    assert message in _refusal(raw)


def test_spec_refuses_another_version() -> None:
    with pytest.raises(
        InputError, match=r"q.toml: unknown quality spec version: expected 1, found 2"
    ):
        parse_quality_spec({"spec_version": 2, "dataset": "d"}, where="q.toml")


def test_spec_refuses_a_missing_dataset_name() -> None:
    with pytest.raises(InputError, match="'dataset' must name the dataset"):
        parse_quality_spec({"spec_version": 1}, where="q.toml")


def test_loading_refuses_malformed_toml_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.quality.toml"
    path.write_text("spec_version = \n", encoding="utf-8")

    with pytest.raises(InputError, match=re.escape(f"{path}: malformed TOML")):
        load_quality_spec(path)


def test_loading_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="quality spec not found"):
        load_quality_spec(tmp_path / "absent.toml")


def test_spec_refuses_a_nullable_that_is_not_a_boolean() -> None:
    assert "columns.income.nullable" in _refusal({"columns": {"income": {"nullable": "false"}}})


def test_spec_refuses_an_exact_that_is_not_a_boolean() -> None:
    assert "schema.exact" in _refusal({"schema": {"exact": "no"}})


def test_spec_refuses_a_type_that_is_not_a_string() -> None:
    assert "columns.age.type" in _refusal({"columns": {"age": {"type": 64}}})


def test_spec_refuses_a_section_that_is_not_a_table() -> None:
    assert "rows" in _refusal({"rows": 5000})


# ---------------------------------------------------------------------------
# Each check on good and bad data


def test_every_check_of_the_training_spec_passes_on_generated_data(reference: pa.Table) -> None:
    spec = dataclasses.replace(load_quality_spec(DEFAULT_SPEC), min_rows=1000)

    verdicts = run_quality_checks(reference, spec)

    assert [v for v in verdicts if not v.passed] == []
    assert {v.check for v in verdicts} == {
        "rows",
        "schema-columns",
        "schema-type",
        "schema-nullable",
        "missing-rate",
        "range",
        "allowed-values",
        "duplicate-keys",
        "duplicate-rows",
        "label-balance",
    }


def test_every_check_of_the_holdout_spec_passes_on_a_same_distribution_sample(
    reference: pa.Table, same_distribution: pa.Table
) -> None:
    verdicts = run_quality_checks(
        same_distribution, load_quality_spec(HOLDOUT_SPEC), reference=reference
    )

    assert [v for v in verdicts if not v.passed] == []
    assert sum(v.check.startswith("drift-") for v in verdicts) == 7 * 2 + 4


def test_rows_check_fails_below_the_minimum_with_the_row_count(reference: pa.Table) -> None:
    verdict = _check(reference, "rows", rows={"min": 10_000})

    assert (verdict.passed, verdict.measured, verdict.threshold) == (False, 6000, ">= 10000")


def test_rows_check_fails_above_the_maximum(reference: pa.Table) -> None:
    verdict = _check(reference, "rows", rows={"max": 100})

    assert (verdict.passed, verdict.measured, verdict.threshold) == (False, 6000, "<= 100")


def test_exact_schema_fails_when_a_column_is_not_declared(reference: pa.Table) -> None:
    verdict = _check(reference, "schema-columns", schema={"exact": True}, columns={"age": {}})

    assert not verdict.passed
    assert verdict.measured == reference.column_names
    assert verdict.threshold == ["age"]


def test_exact_schema_fails_when_the_declared_order_differs(reference: pa.Table) -> None:
    columns = {name: {} for name in reversed(reference.column_names)}

    assert not _check(reference, "schema-columns", schema={"exact": True}, columns=columns).passed


def test_type_check_fails_on_a_column_of_another_type(reference: pa.Table) -> None:
    table = _replace_column(
        reference, "age", reference.column("age").cast(pa.float64()).combine_chunks()
    )

    verdict = _check(table, "schema-type", columns={"age": {"type": "int64"}})

    assert (verdict.passed, verdict.measured, verdict.threshold) == (False, "double", "int64")


def test_type_check_passes_on_the_declared_type(reference: pa.Table) -> None:
    assert _check(reference, "schema-type", columns={"region": {"type": "string"}}).passed


def test_non_nullable_column_fails_with_its_null_count(reference: pa.Table) -> None:
    verdict = _check(reference, "schema-nullable", columns={"income": {"nullable": False}})

    assert not verdict.passed
    assert verdict.measured == reference.column("income").null_count > 0
    assert verdict.threshold == "0 nulls"


def test_non_nullable_column_without_nulls_passes(reference: pa.Table) -> None:
    assert _check(reference, "schema-nullable", columns={"age": {"nullable": False}}).passed


def test_missing_rate_fails_above_the_maximum_with_the_measured_rate(reference: pa.Table) -> None:
    verdict = _check(reference, "missing-rate", columns={"income": {"max_missing_rate": 0.01}})

    assert not verdict.passed
    assert verdict.measured == reference.column("income").null_count / reference.num_rows
    assert verdict.threshold == "<= 0.01"


def test_missing_rate_counts_nan_as_missing(reference: pa.Table) -> None:
    debt = reference.column("debt_ratio").to_numpy().copy()
    debt[:30] = np.nan
    table = _replace_column(reference, "debt_ratio", pa.array(debt))

    verdict = _check(table, "missing-rate", columns={"debt_ratio": {"max_missing_rate": 0.001}})

    assert (verdict.passed, verdict.measured) == (False, 30 / reference.num_rows)


def test_range_check_fails_with_the_number_of_values_outside(reference: pa.Table) -> None:
    over = int(pc.sum(pc.greater(reference.column("age"), 60)).as_py())

    verdict = _check(reference, "range", columns={"age": {"min": 18, "max": 60}})

    assert (verdict.passed, verdict.measured) == (False, over)
    assert verdict.threshold == "0 values outside [18.0, 60.0]"


def test_range_check_counts_values_below_the_minimum(reference: pa.Table) -> None:
    ages = reference.column("age").to_numpy().copy()
    ages[[3, 7]] = [5, 17]
    table = _replace_column(reference, "age", pa.array(ages))

    verdict = _check(table, "range", columns={"age": {"min": 18}})

    assert (verdict.passed, verdict.measured) == (False, 2)


def test_range_check_passes_when_every_value_is_inside(reference: pa.Table) -> None:
    assert _check(reference, "range", columns={"age": {"min": 18, "max": 100}}).passed


def test_range_check_leaves_nulls_and_nan_to_the_missing_value_checks(reference: pa.Table) -> None:
    debt = reference.column("debt_ratio").to_numpy().copy()
    debt[0] = np.nan
    table = _replace_column(reference, "debt_ratio", pa.array(debt))

    assert _check(table, "range", columns={"debt_ratio": {"min": 0, "max": 2}}).passed
    assert _check(table, "range", columns={"income": {"min": 0}}).passed


def test_range_check_counts_an_infinite_value_as_outside(reference: pa.Table) -> None:
    utilization = reference.column("utilization").to_numpy(zero_copy_only=False).copy()
    utilization[0] = np.inf
    table = _replace_column(reference, "utilization", pa.array(utilization))

    verdict = _check(table, "range", columns={"utilization": {"min": 0, "max": 1}})

    assert (verdict.passed, verdict.measured) == (False, 1)


def test_range_detail_shows_plain_numbers(reference: pa.Table) -> None:
    verdict = _check(reference, "range", columns={"age": {"min": 18}})

    assert verdict.detail == f"min {float(pc.min(reference.column('age')).as_py())!r}, " + (
        f"max {float(pc.max(reference.column('age')).as_py())!r}"
    )


def test_range_on_a_string_column_is_refused_as_input_error(reference: pa.Table) -> None:
    with pytest.raises(InputError, match="region"):
        run_quality_checks(reference, _spec(columns={"region": {"min": 0}}))


def test_allowed_values_fail_on_an_unknown_category_naming_it(reference: pa.Table) -> None:
    coastal = int(pc.sum(pc.equal(reference.column("region"), "coastal")).as_py())
    allowed = ["north", "south", "east", "west", "central"]

    verdict = _check(reference, "allowed-values", columns={"region": {"allowed": allowed}})

    assert (verdict.passed, verdict.measured) == (False, coastal)
    assert verdict.detail == "unknown values such as ['coastal']"


def test_allowed_values_ignore_nulls(reference: pa.Table) -> None:
    allowed = ["north", "south", "east", "west", "central", "coastal"]

    assert reference.column("region").null_count > 0
    assert _check(reference, "allowed-values", columns={"region": {"allowed": allowed}}).passed


def test_allowed_values_compare_dictionary_columns_by_value(reference: pa.Table) -> None:
    table = _replace_column(
        reference, "product", reference.column("product").combine_chunks().dictionary_encode()
    )

    verdict = _check(
        table, "allowed-values", columns={"product": {"allowed": ["card", "mortgage"]}}
    )

    assert not verdict.passed
    assert verdict.detail == "unknown values such as ['auto_loan', 'personal_loan']"


def test_duplicate_keys_fail_with_the_number_of_repeated_keys(reference: pa.Table) -> None:
    repeated = reference.slice(10, 7)
    ages = pc.add(repeated.column("age"), 1)
    table = pa.concat_tables([reference, _replace_column(repeated, "age", ages.combine_chunks())])

    verdict = _check(table, "duplicate-keys", duplicates={"unique_key": ["customer_id"]})

    assert (verdict.passed, verdict.measured, verdict.column) == (False, 7, "customer_id")


def test_duplicate_keys_pass_on_unique_keys(reference: pa.Table) -> None:
    assert _check(reference, "duplicate-keys", duplicates={"unique_key": ["customer_id"]}).passed


def test_duplicate_keys_span_every_key_column(reference: pa.Table) -> None:
    verdict = _check(reference, "duplicate-keys", duplicates={"unique_key": ["region", "product"]})

    assert verdict.column == "region,product"
    assert verdict.measured == reference.num_rows - 7 * 4  # 6 regions and null, 4 products


def test_duplicate_rows_fail_with_the_rate_of_repeated_rows(reference: pa.Table) -> None:
    table = pa.concat_tables([reference, reference.slice(100, 5)])

    verdict = _check(table, "duplicate-rows", duplicates={"max_duplicate_row_rate": 0.0})

    assert (verdict.passed, verdict.measured) == (False, 5 / table.num_rows)


def test_rows_that_share_a_key_but_differ_are_not_duplicate_rows(reference: pa.Table) -> None:
    repeated = reference.slice(10, 7)
    table = pa.concat_tables(
        [
            reference,
            _replace_column(repeated, "age", pc.add(repeated.column("age"), 1).combine_chunks()),
        ]
    )

    verdict = _check(table, "duplicate-rows", duplicates={"max_duplicate_row_rate": 0.0})

    assert (verdict.passed, verdict.measured) == (True, 0.0)


def test_label_balance_fails_outside_its_bounds_with_the_positive_rate(reference: pa.Table) -> None:
    rate = float(np.mean(reference.column("default_90d").to_numpy() == 1))

    low, high = (
        v
        for v in run_quality_checks(
            reference,
            _spec(
                label={"column": "default_90d", "min_positive_rate": 0.5, "max_positive_rate": 0.1}
            ),
        )
        if v.check == "label-balance"
    )

    assert (low.passed, low.measured, low.threshold) == (False, rate, ">= 0.5")
    assert (high.passed, high.measured, high.threshold) == (False, rate, "<= 0.1")


def test_label_balance_passes_within_its_bounds(reference: pa.Table) -> None:
    verdicts = run_quality_checks(
        reference,
        _spec(label={"column": "default_90d", "min_positive_rate": 0.05, "max_positive_rate": 0.5}),
    )

    assert [v.passed for v in verdicts] == [True, True]


# ---------------------------------------------------------------------------
# Drift


def _drift(
    table: pa.Table, reference: pa.Table, **rule: Any
) -> dict[tuple[str, str], QualityVerdict]:
    numeric = [
        "age",
        "income",
        "debt_ratio",
        "credit_lines",
        "utilization",
        "tenure_months",
        "late_payments_12m",
    ]
    spec = _spec(
        drift={
            "reference": "ref",
            "numeric": numeric,
            "categorical": ["region", "employment", "product", "channel"],
            "psi_max": 0.1,
            "ks_statistic_max": 0.05,
        }
        | rule
    )
    return {
        (v.check, v.column or ""): v for v in run_quality_checks(table, spec, reference=reference)
    }


def test_drifted_data_fails_psi_against_the_reference(
    reference: pa.Table, drifted: pa.Table
) -> None:
    verdicts = _drift(drifted, reference)

    for column in ("debt_ratio", "utilization", "late_payments_12m"):
        verdict = verdicts[("drift-psi", column)]
        assert not verdict.passed
        assert verdict.measured > 0.1
        assert verdict.detail == "against ref"


def test_drifted_data_fails_ks_against_the_reference(
    reference: pa.Table, drifted: pa.Table
) -> None:
    verdicts = _drift(drifted, reference)

    for column in (
        "age",
        "income",
        "debt_ratio",
        "credit_lines",
        "utilization",
        "late_payments_12m",
    ):
        verdict = verdicts[("drift-ks", column)]
        assert not verdict.passed
        assert verdict.measured > 0.05
        assert re.fullmatch(r"p-value \S+ against ref", verdict.detail)


def test_same_distribution_sample_passes_psi_and_ks(
    reference: pa.Table, same_distribution: pa.Table
) -> None:
    verdicts = _drift(same_distribution, reference)

    assert [key for key, v in verdicts.items() if not v.passed] == []
    assert all(v.measured < 0.01 for (check, _), v in verdicts.items() if check == "drift-psi")


def test_ks_statistic_is_the_largest_gap_between_the_two_cdfs(
    reference: pa.Table, drifted: pa.Table
) -> None:
    ref = reference.column("debt_ratio").to_numpy()
    cur = drifted.column("debt_ratio").to_numpy()
    grid = np.union1d(ref, cur)
    gap = np.max(
        np.abs(
            np.searchsorted(np.sort(ref), grid, "right") / ref.size
            - np.searchsorted(np.sort(cur), grid, "right") / cur.size
        )
    )

    assert _drift(drifted, reference)[("drift-ks", "debt_ratio")].measured == pytest.approx(
        gap, abs=1e-12
    )


def test_ks_without_a_threshold_is_reported_and_passes(
    reference: pa.Table, drifted: pa.Table
) -> None:
    spec = _spec(drift={"reference": "ref", "numeric": ["utilization"], "psi_max": 10})

    ks = next(
        v for v in run_quality_checks(drifted, spec, reference=reference) if v.check == "drift-ks"
    )

    assert (ks.passed, ks.threshold) == (True, "reported")
    assert ks.measured > 0.05


def test_categorical_psi_counts_a_category_absent_from_the_reference(reference: pa.Table) -> None:
    regions = reference.column("region").to_pylist()
    table = _replace_column(
        reference, "region", pa.array(["atlantis" if r == "north" else r for r in regions])
    )
    spec = _spec(drift={"reference": "ref", "categorical": ["region"]})

    (verdict,) = run_quality_checks(table, spec, reference=reference)

    assert (verdict.check, verdict.column, verdict.passed) == ("drift-psi", "region", False)
    assert verdict.measured > 1.0


def test_drift_without_a_reference_table_is_refused(same_distribution: pa.Table) -> None:
    spec = _spec(drift={"reference": "default", "numeric": ["age"]})

    with pytest.raises(
        InputError, match="declares drift against 'default' but no reference dataset was given"
    ):
        run_quality_checks(same_distribution, spec)


def test_drift_column_without_finite_values_is_refused(reference: pa.Table) -> None:
    table = _replace_column(reference, "income", pa.nulls(reference.num_rows, pa.float64()))
    spec = _spec(drift={"reference": "ref", "numeric": ["income"]})

    with pytest.raises(InputError, match="drift feature 'income' has no finite values"):
        run_quality_checks(table, spec, reference=reference)


# ---------------------------------------------------------------------------
# A spec naming a column the data lacks


@pytest.mark.parametrize(
    ("sections", "context"),
    [
        pytest.param({"columns": {"salary": {"min": 0}}}, "the quality spec", id="columns"),
        pytest.param(
            {"duplicates": {"unique_key": ["salary"]}}, "duplicates.unique_key", id="unique-key"
        ),
        pytest.param({"label": {"column": "salary"}}, "label.column", id="label"),
        pytest.param(
            {"drift": {"reference": "ref", "numeric": ["salary"]}},
            "drift.numeric",
            id="drift-numeric",
        ),
        pytest.param(
            {"drift": {"reference": "ref", "categorical": ["salary"]}},
            "drift.categorical",
            id="drift-categorical",
        ),
    ],
)
def test_spec_naming_a_column_the_data_lacks_is_refused(
    reference: pa.Table, sections: dict[str, Any], context: str
) -> None:
    with pytest.raises(InputError) as info:
        run_quality_checks(reference, _spec(**sections), reference=reference, where="holdout")

    assert str(info.value).startswith(
        f"holdout: {context} names column 'salary', which the dataset does not have: expected one of customer_id, age,"
    )
    assert str(info.value).endswith("found 'salary'")


def test_drift_column_missing_from_the_reference_is_refused_naming_the_reference(
    reference: pa.Table,
) -> None:
    spec = _spec(drift={"reference": "default", "numeric": ["age"]})

    with pytest.raises(InputError, match=r"^reference default: drift\.numeric names column 'age'"):
        run_quality_checks(reference, spec, reference=reference.drop_columns(["age"]))


# ---------------------------------------------------------------------------
# PSI


def test_psi_of_identical_samples_is_zero() -> None:
    sample = np.random.default_rng(0).normal(size=5000)

    assert population_stability_index(sample, sample.copy(), bins=10) == 0.0


def test_psi_grows_with_the_shift() -> None:
    rng = np.random.default_rng(1)
    reference, current = rng.normal(size=20_000), rng.normal(size=20_000)

    values = [
        population_stability_index(reference, current + shift, bins=10)
        for shift in (0.0, 0.25, 0.5, 1.0, 2.0)
    ]

    assert values == sorted(values)
    assert values[0] < 0.01 < 0.1 < values[3]


def test_psi_stays_finite_when_a_bin_is_empty() -> None:
    reference = np.arange(1000, dtype=np.float64)

    psi = population_stability_index(reference, np.full(1000, 10_000.0), bins=10)

    # Every current value is in the top bin: nine bins at the 1e-4 floor.
    r, c = 0.1, np.array([1e-4] * 9 + [1.0])
    assert psi == pytest.approx(float(np.sum((c - r) * np.log(c / r))), rel=1e-12)


def test_psi_bins_are_reference_quantiles_with_repeated_edges_merged() -> None:
    reference = np.array([0.0] * 90 + [1.0] * 10)
    current = np.array([0.0] * 50 + [1.0] * 50)

    psi = population_stability_index(reference, current, bins=10)

    assert psi == pytest.approx(
        (0.5 - 0.9) * math.log(0.5 / 0.9) + (0.5 - 0.1) * math.log(0.5 / 0.1), rel=1e-12
    )


def _doc_namespace() -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    namespace: dict[str, Any] = {"__name__": "docs_validation"}
    for block in re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        exec(compile(block, "docs/validation.md", "exec"), namespace)
    return namespace


def test_documented_psi_equals_population_stability_index(
    reference: pa.Table, drifted: pa.Table
) -> None:
    psi_of = _doc_namespace()["psi_of"]

    for column in ("age", "debt_ratio", "late_payments_12m"):
        ref = reference.column(column).to_numpy().astype(np.float64)
        cur = drifted.column(column).to_numpy().astype(np.float64)
        assert psi_of(ref, cur, 10) == population_stability_index(ref, cur, bins=10)


# ---------------------------------------------------------------------------
# The profile


def test_profile_counts_nan_and_infinities_apart_and_keeps_statistics_finite() -> None:
    table = pa.table({"x": pa.array([1.0, math.nan, math.inf, -math.inf, None, 3.0])})

    (column,) = profile_table(table)["columns"]

    assert column == {
        "name": "x",
        "type": "double",
        "nulls": 1,
        "null_rate": 1 / 6,
        "nan": 1,
        "infinite": 2,
        "min": 1.0,
        "max": 3.0,
        "mean": 2.0,
    }


def test_profile_of_a_column_without_finite_values_has_null_statistics() -> None:
    (column,) = profile_table(pa.table({"x": [math.nan, math.inf]}))["columns"]

    assert (column["min"], column["max"], column["mean"]) == (None, None, None)


def test_profile_reads_dictionary_columns_by_value() -> None:
    table = pa.table({"s": pa.array(["a", "b", "a", None]).dictionary_encode()})

    (column,) = profile_table(table)["columns"]

    assert column["type"].startswith("dictionary<values=string")
    assert (column["nulls"], column["distinct"]) == (1, 2)


def test_profile_of_an_empty_table_has_zero_null_rate() -> None:
    profile = profile_table(pa.table({"x": pa.array([], pa.int64())}))

    assert profile["rows"] == 0
    assert profile["columns"][0]["null_rate"] == 0.0
