"""Gate specs and gate decisions: strict parsing naming the gate, each kind decided on the right number.

``decide_gates`` is pure, so the decisions are tested on hand-made
measurements: an estimate is (value, ci_low, ci_high), a difference is
candidate - champion. The format is documented in docs/validation.md.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from retrain.errors import InputError
from retrain.gates import (
    GateSpec,
    GateVerdict,
    Measurements,
    SliceSpec,
    decide_gates,
    load_gate_spec,
    parse_gate_spec,
)
from retrain.gates import SliceMeasurement as Slice
from retrain.metrics import METRIC_NAMES, Estimate

CANDIDATE_GATES = Path(__file__).resolve().parents[2] / "models" / "candidate.gates.toml"


def _spec(
    *gates: dict[str, Any], slices: tuple[str, ...] = ("region",), **evaluation: Any
) -> GateSpec:
    return parse_gate_spec(
        {
            "spec_version": 1,
            "evaluation": evaluation,
            "slices": [{"feature": f} for f in slices],
            "gates": list(gates),
        },
        where="g.toml",
    )


def _refusal(*gates: dict[str, Any], **raw: Any) -> str:
    document = {"spec_version": 1, "slices": [{"feature": "region"}], "gates": list(gates)} | raw
    with pytest.raises(InputError) as info:
        parse_gate_spec(document, where="g.toml")
    return str(info.value)


def _est(value: float, low: float, high: float) -> Estimate:
    return Estimate(value, low, high, 0.95, 1000)


def _all(e: Estimate) -> dict[str, Estimate]:
    return {name: e for name in METRIC_NAMES}


def _measured(
    estimates: dict[str, Estimate] | None = None,
    *,
    differences: dict[str, Estimate] | None = None,
    champion: dict[str, Estimate] | None = None,
    slices: tuple[Slice, ...] = (),
    sanity: dict[str, bool] | None = None,
    quality_failures: tuple[str, ...] = (),
) -> Measurements:
    return Measurements(
        estimates=estimates or _all(_est(0.7, 0.68, 0.72)),
        slices=slices,
        differences=differences,
        champion_estimates=champion
        if differences is None
        else (champion or _all(_est(0.7, 0.68, 0.72))),
        sanity=sanity or {"finite": True, "in_range": True, "not_constant": True},
        quality_failures=quality_failures,
    )


def _decide(gate: dict[str, Any], measurements: Measurements, **evaluation: Any) -> GateVerdict:
    (verdict,) = decide_gates(_spec(gate, **evaluation), measurements)
    return verdict


# ---------------------------------------------------------------------------
# Parsing


def test_checked_in_gate_spec_loads_with_its_evaluation_settings() -> None:
    spec = load_gate_spec(CANDIDATE_GATES)

    assert (spec.confidence, spec.resamples, spec.seed, spec.min_slice_rows) == (
        0.95,
        1000,
        20261126,
        300,
    )
    assert spec.leakage_key == "customer_id"
    assert spec.slices == (SliceSpec("region"), SliceSpec("employment"))
    assert [g.kind for g in spec.gates] == [
        "sanity",
        "data_quality",
        "value",
        "value",
        "value",
        "value",
        "change",
        "non_inferiority",
        "non_inferiority",
        "non_inferiority",
    ]


def test_checked_in_gates_compare_the_conservative_bound_unless_they_say_otherwise() -> None:
    bounds = {g.name: g.bound() for g in load_gate_spec(CANDIDATE_GATES).gates if g.metric}

    assert bounds == {
        "auc-floor": "ci_low",
        "log-loss-ceiling": "ci_high",
        "calibration": "ci_high",
        "auc-floor-per-region": "value",
        "auc-not-worse-than-champion": "ci_low",
        "log-loss-not-worse-than-champion": "ci_high",
        "no-region-worse-than-champion": "ci_low",
        "no-employment-group-worse-than-champion": "ci_low",
    }


def test_evaluation_defaults() -> None:
    spec = parse_gate_spec(
        {"spec_version": 1, "gates": [{"name": "s", "kind": "sanity"}]}, where="g.toml"
    )

    assert (spec.confidence, spec.resamples, spec.seed, spec.min_slice_rows, spec.leakage_key) == (
        0.95,
        1000,
        0,
        100,
        None,
    )
    assert spec.slices == ()


def test_slice_values_are_kept_when_declared() -> None:
    spec = parse_gate_spec(
        {
            "spec_version": 1,
            "slices": [{"feature": "region", "values": ["north", "south"]}],
            "gates": [{"name": "s", "kind": "sanity"}],
        },
        where="g.toml",
    )

    assert spec.slices == (SliceSpec("region", ("north", "south")),)


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        pytest.param(
            {"name": "auc-floor", "kind": "value", "metric": "f1", "lower": 0.5},
            "g.toml: gate 'auc-floor': unknown metric: expected auc, accuracy, log_loss, brier, ece, found 'f1'",
            id="unknown-metric",
        ),
        pytest.param(
            {"name": "auc-floor", "kind": "value", "lower": 0.5},
            "g.toml: gate 'auc-floor': unknown metric: expected auc, accuracy, log_loss, brier, ece, found None",
            id="missing-metric",
        ),
        pytest.param(
            {"name": "floor", "kind": "threshold", "metric": "auc"},
            "g.toml: gate 'floor': unknown kind: expected value, change, non_inferiority, sanity, data_quality, "
            "found 'threshold'",
            id="unknown-kind",
        ),
        pytest.param(
            {"name": "fair", "kind": "value", "metric": "auc", "slice": "age", "lower": 0.6},
            "g.toml: gate 'fair' gates slice 'age', which [[slices]] does not declare: expected region",
            id="undeclared-slice",
        ),
        pytest.param(
            {"name": "floor", "kind": "value", "metric": "auc"},
            "g.toml: gate 'floor': a value gate needs lower and/or upper",
            id="value-without-bounds",
        ),
        pytest.param(
            {"name": "better", "kind": "change", "metric": "auc"},
            "g.toml: gate 'better': a change gate needs absolute and/or relative",
            id="change-without-thresholds",
        ),
        pytest.param(
            {"name": "not-worse", "kind": "non_inferiority", "metric": "auc"},
            "g.toml: gate 'not-worse': a non_inferiority gate needs a tolerance",
            id="non-inferiority-without-tolerance",
        ),
        pytest.param(
            {"name": "not-worse", "kind": "non_inferiority", "metric": "auc", "tolerance": -0.01},
            "g.toml: gate 'not-worse'.tolerance: expected a number in [0, inf], found -0.01",
            id="negative-tolerance",
        ),
        pytest.param(
            {"name": "sane", "kind": "sanity", "metric": "auc"},
            "g.toml: gate 'sane': unknown key 'metric' for kind sanity: expected kind, name",
            id="key-the-kind-does-not-take",
        ),
        pytest.param(
            {"name": "floor", "kind": "value", "metric": "auc", "lower": 0.6, "tolerance": 0.1},
            "g.toml: gate 'floor': unknown key 'tolerance' for kind value: "
            "expected direction, kind, lower, metric, name, slice, statistic, upper",
            id="tolerance-on-a-value-gate",
        ),
        pytest.param(
            {
                "name": "floor",
                "kind": "value",
                "metric": "auc",
                "lower": 0.6,
                "statistic": "median",
            },
            "g.toml: gate 'floor': statistic: expected value, ci_low, ci_high, found 'median'",
            id="unknown-statistic",
        ),
        pytest.param(
            {"name": "floor", "kind": "value", "metric": "auc", "lower": 0.6, "direction": "up"},
            "g.toml: gate 'floor': direction: expected higher_is_better or lower_is_better, found 'up'",
            id="unknown-direction",
        ),
        pytest.param(
            {"name": "floor", "kind": "value", "metric": "auc", "lower": "0.6"},
            "g.toml: gate 'floor'.lower: expected a number in [-inf, inf], found '0.6'",
            id="bound-not-a-number",
        ),
        pytest.param({"kind": "sanity"}, "g.toml: gates[0] must have a name", id="no-name"),
    ],
)
def test_spec_refuses_a_bad_gate_naming_it(gate: dict[str, Any], message: str) -> None:
    assert _refusal(gate) == message


def test_spec_refuses_a_gate_name_declared_twice() -> None:
    message = _refusal({"name": "sane", "kind": "sanity"}, {"name": "sane", "kind": "data_quality"})

    assert message == "g.toml: gate 'sane' is declared twice"


def test_spec_refuses_no_gates() -> None:
    assert _refusal() == "g.toml: the gate spec declares no gates"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(
            {"spec_version": 2},
            "g.toml: unknown gate spec version: expected 1, found 2",
            id="version",
        ),
        pytest.param(
            {"gate": []}, "g.toml: unknown key 'gate' in the gate spec", id="unknown-top-level-key"
        ),
        pytest.param(
            {"evaluation": {"resamples": 1000, "bootstrap": "bca"}},
            "g.toml: unknown key 'bootstrap' in [evaluation]",
            id="unknown-evaluation-key",
        ),
        pytest.param(
            {"evaluation": {"confidence": 95}},
            "g.toml: evaluation.confidence: expected a number in [0.5, 0.999], found 95",
            id="confidence-as-percent",
        ),
        pytest.param(
            {"evaluation": {"resamples": 5}},
            "g.toml: evaluation.resamples: expected an integer in [10, 100000], found 5",
            id="too-few-resamples",
        ),
        pytest.param(
            {"evaluation": {"seed": -1}},
            "g.toml: evaluation.seed: expected an integer in [0, 4294967295]",
            id="negative-seed",
        ),
        pytest.param(
            {"evaluation": {"min_slice_rows": 0}},
            "g.toml: evaluation.min_slice_rows: expected an integer in [1, 4611686018427387904], found 0",
            id="zero-min-slice-rows",
        ),
        pytest.param(
            {"evaluation": {"leakage_key": ""}},
            "g.toml: evaluation.leakage_key must be a column name: found ''",
            id="empty-leakage-key",
        ),
        pytest.param(
            {"slices": [{"feature": "region", "values": []}]},
            "g.toml: slices[0].values must be a non-empty list of strings",
            id="empty-slice-values",
        ),
        pytest.param(
            {"slices": [{"feature": "region", "bins": 3}]},
            "g.toml: slices[0] must be {feature, values?}",
            id="unknown-slice-key",
        ),
    ],
)
def test_spec_refuses_a_bad_setting_naming_its_key(raw: dict[str, Any], message: str) -> None:
    assert _refusal({"name": "sane", "kind": "sanity"}, **raw).startswith(message)


def test_loading_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="gate spec not found"):
        load_gate_spec(tmp_path / "absent.gates.toml")


def test_loading_refuses_malformed_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.gates.toml"
    path.write_text("[[gates]\n", encoding="utf-8")

    with pytest.raises(InputError, match="malformed TOML"):
        load_gate_spec(path)


# ---------------------------------------------------------------------------
# value gates


def test_value_gate_with_a_lower_bound_compares_ci_low_by_default() -> None:
    verdict = _decide(
        {"name": "floor", "kind": "value", "metric": "auc", "lower": 0.70},
        _measured(_all(_est(0.72, 0.69, 0.75))),
    )

    assert (verdict.status, verdict.statistic, verdict.measured) == ("failed", "ci_low", 0.69)
    assert verdict.interval == (0.69, 0.75)
    assert verdict.threshold == ">= 0.7"
    assert verdict.message == "auc 0.7200 (95% CI [0.6900, 0.7500]); ci_low 0.6900 misses >= 0.7"


def test_value_gate_passes_when_ci_low_clears_the_lower_bound() -> None:
    verdict = _decide(
        {"name": "floor", "kind": "value", "metric": "auc", "lower": 0.68},
        _measured(_all(_est(0.72, 0.69, 0.75))),
    )

    assert (verdict.status, verdict.measured) == ("passed", 0.69)


def test_value_gate_with_an_upper_bound_compares_ci_high_by_default() -> None:
    verdict = _decide(
        {"name": "ceiling", "kind": "value", "metric": "log_loss", "upper": 0.50},
        _measured(_all(_est(0.45, 0.44, 0.51))),
    )

    assert (verdict.status, verdict.statistic, verdict.measured, verdict.threshold) == (
        "failed",
        "ci_high",
        0.51,
        "<= 0.5",
    )


def test_value_gate_upper_bound_uses_ci_high_whatever_the_metric_direction() -> None:
    verdict = _decide(
        {"name": "too-good", "kind": "value", "metric": "auc", "upper": 0.99}, _measured()
    )

    assert verdict.statistic == "ci_high"


def test_value_gate_compares_the_declared_statistic() -> None:
    verdict = _decide(
        {"name": "floor", "kind": "value", "metric": "auc", "lower": 0.70, "statistic": "value"},
        _measured(_all(_est(0.72, 0.69, 0.75))),
    )

    assert (verdict.status, verdict.statistic, verdict.measured) == ("passed", "value", 0.72)


def test_value_gate_with_both_bounds_compares_the_upper_one_with_ci_high() -> None:
    verdict = _decide(
        {"name": "band", "kind": "value", "metric": "auc", "lower": 0.6, "upper": 0.74},
        _measured(_all(_est(0.72, 0.69, 0.75))),
    )

    assert verdict.status == "failed"


def test_value_gate_fails_on_an_undefined_measurement() -> None:
    verdict = _decide(
        {"name": "ceiling", "kind": "value", "metric": "auc", "upper": 2.0},
        _measured(_all(_est(math.nan, math.nan, math.nan))),
    )

    assert verdict.status == "failed"


def test_value_gate_on_a_slice_decides_every_slice_of_that_feature() -> None:
    slices = (
        Slice("region", "north", 500, _all(_est(0.70, 0.66, 0.74))),
        Slice("region", "south", 500, _all(_est(0.64, 0.58, 0.70))),
        Slice("employment", "retired", 500, _all(_est(0.50, 0.40, 0.60))),
    )

    verdicts = decide_gates(
        _spec(
            {
                "name": "regional-floor",
                "kind": "value",
                "metric": "auc",
                "slice": "region",
                "lower": 0.60,
            }
        ),
        _measured(slices=slices),
    )

    assert [(v.slice, v.status, v.measured) for v in verdicts] == [
        ("region=north", "passed", 0.66),
        ("region=south", "failed", 0.58),
    ]


def test_slice_gate_skips_slices_smaller_than_min_slice_rows() -> None:
    slices = (
        Slice("region", "north", 300, _all(_est(0.70, 0.66, 0.74))),
        Slice("region", "coastal", 299, _all(_est(0.40, 0.30, 0.50))),
    )

    verdicts = decide_gates(
        _spec(
            {
                "name": "regional-floor",
                "kind": "value",
                "metric": "auc",
                "slice": "region",
                "lower": 0.6,
            },
            min_slice_rows=300,
        ),
        _measured(slices=slices),
    )

    assert [(v.slice, v.status) for v in verdicts] == [
        ("region=north", "passed"),
        ("region=coastal", "skipped"),
    ]
    assert verdicts[1].message == "299 rows, fewer than min_slice_rows 300"


# ---------------------------------------------------------------------------
# change gates


def test_change_gate_higher_is_better_compares_ci_low_of_the_difference_with_absolute() -> None:
    gate = {"name": "better", "kind": "change", "metric": "auc", "absolute": -0.01}

    passed = _decide(gate, _measured(differences=_all(_est(0.01, -0.005, 0.02))))
    failed = _decide(gate, _measured(differences=_all(_est(0.0, -0.015, 0.01))))

    assert (passed.status, passed.statistic, passed.measured, passed.threshold) == (
        "passed",
        "ci_low",
        -0.005,
        ">= -0.01",
    )
    assert (failed.status, failed.measured) == ("failed", -0.015)


def test_change_gate_lower_is_better_compares_ci_high_of_the_difference_with_absolute() -> None:
    gate = {"name": "better", "kind": "change", "metric": "log_loss", "absolute": 0.0}

    passed = _decide(gate, _measured(differences=_all(_est(-0.02, -0.03, -0.01))))
    failed = _decide(gate, _measured(differences=_all(_est(-0.005, -0.015, 0.005))))

    assert (passed.status, passed.statistic, passed.measured, passed.threshold) == (
        "passed",
        "ci_high",
        -0.01,
        "<= 0.0",
    )
    assert (failed.status, failed.measured) == ("failed", 0.005)


def test_change_gate_higher_is_better_divides_by_the_champion_for_relative() -> None:
    gate = {"name": "better", "kind": "change", "metric": "auc"}
    measurements = _measured(
        differences=_all(_est(0.03, 0.02, 0.04)), champion=_all(_est(0.70, 0.68, 0.72))
    )

    passed = _decide(gate | {"relative": 0.02}, measurements)  # 0.02 / 0.70 = 0.0286
    failed = _decide(gate | {"relative": 0.05}, measurements)

    assert (passed.status, passed.threshold) == ("passed", "relative >= 0.02")
    assert failed.status == "failed"
    assert passed.message.endswith("(champion 0.7000)")


def test_change_gate_lower_is_better_divides_by_the_champion_for_relative() -> None:
    gate = {"name": "better", "kind": "change", "metric": "log_loss"}
    measurements = _measured(
        differences=_all(_est(-0.06, -0.07, -0.05)), champion=_all(_est(0.50, 0.48, 0.52))
    )

    passed = _decide(gate | {"relative": -0.05}, measurements)  # -0.05 / 0.50 = -0.1
    failed = _decide(gate | {"relative": -0.2}, measurements)

    assert (passed.status, passed.threshold) == ("passed", "relative <= -0.05")
    assert failed.status == "failed"


def test_change_gate_needs_both_absolute_and_relative_when_both_are_set() -> None:
    measurements = _measured(
        differences=_all(_est(0.03, 0.02, 0.04)), champion=_all(_est(0.70, 0.68, 0.72))
    )

    verdict = _decide(
        {"name": "b", "kind": "change", "metric": "auc", "absolute": 0.0, "relative": 0.05},
        measurements,
    )

    assert (verdict.status, verdict.threshold) == ("failed", ">= 0.0 and relative >= 0.05")


def test_change_gate_direction_overrides_the_metric_default() -> None:
    verdict = _decide(
        {
            "name": "b",
            "kind": "change",
            "metric": "auc",
            "absolute": 0.0,
            "direction": "lower_is_better",
        },
        _measured(differences=_all(_est(-0.02, -0.03, -0.01))),
    )

    assert (verdict.status, verdict.statistic, verdict.threshold) == ("passed", "ci_high", "<= 0.0")


# ---------------------------------------------------------------------------
# non_inferiority gates


def test_non_inferiority_higher_is_better_allows_a_loss_up_to_the_tolerance() -> None:
    gate = {"name": "not-worse", "kind": "non_inferiority", "metric": "auc", "tolerance": 0.01}

    passed = _decide(gate, _measured(differences=_all(_est(0.0, -0.008, 0.008))))
    failed = _decide(gate, _measured(differences=_all(_est(0.0, -0.012, 0.008))))

    assert (passed.status, passed.statistic, passed.threshold) == ("passed", "ci_low", ">= -0.01")
    assert (failed.status, failed.measured) == ("failed", -0.012)


def test_non_inferiority_lower_is_better_allows_an_increase_up_to_the_tolerance() -> None:
    gate = {"name": "not-worse", "kind": "non_inferiority", "metric": "log_loss", "tolerance": 0.01}

    passed = _decide(gate, _measured(differences=_all(_est(0.0, -0.008, 0.008))))
    failed = _decide(gate, _measured(differences=_all(_est(0.0, -0.008, 0.012))))

    assert (passed.status, passed.statistic, passed.threshold) == ("passed", "ci_high", "<= 0.01")
    assert (failed.status, failed.measured) == ("failed", 0.012)


def test_non_inferiority_per_slice_decides_each_slice_on_its_own_difference() -> None:
    slices = (
        Slice("region", "north", 400, _all(_est(0.72, 0.68, 0.76)), _all(_est(0.01, -0.02, 0.04))),
        Slice(
            "region", "south", 400, _all(_est(0.65, 0.60, 0.70)), _all(_est(-0.04, -0.07, -0.01))
        ),
        Slice("region", "coastal", 40, _all(_est(0.50, 0.30, 0.70)), _all(_est(-0.20, -0.40, 0.0))),
    )

    verdicts = decide_gates(
        _spec(
            {
                "name": "fair",
                "kind": "non_inferiority",
                "metric": "auc",
                "slice": "region",
                "tolerance": 0.05,
            }
        ),
        _measured(differences=_all(_est(0.0, -0.01, 0.01)), slices=slices),
    )

    assert [(v.slice, v.status, v.measured) for v in verdicts] == [
        ("region=north", "passed", -0.02),
        ("region=south", "failed", -0.07),
        ("region=coastal", "skipped", None),
    ]
    # The champion's slice value is the candidate's minus the difference.
    assert verdicts[1].message.endswith("(champion 0.6900)")


# ---------------------------------------------------------------------------
# Without a champion


@pytest.mark.parametrize(
    "gate",
    [
        pytest.param(
            {"name": "better", "kind": "change", "metric": "auc", "absolute": 0.0}, id="change"
        ),
        pytest.param(
            {"name": "not-worse", "kind": "non_inferiority", "metric": "auc", "tolerance": 0.01},
            id="non-inferiority",
        ),
        pytest.param(
            {
                "name": "fair",
                "kind": "non_inferiority",
                "metric": "auc",
                "slice": "region",
                "tolerance": 0.05,
            },
            id="non-inferiority-per-slice",
        ),
    ],
)
def test_comparative_gate_is_skipped_without_a_champion(gate: dict[str, Any]) -> None:
    slices = (Slice("region", "north", 400, _all(_est(0.72, 0.68, 0.76))),)

    verdict = _decide(gate, _measured(slices=slices))

    assert verdict.status == "skipped"
    assert verdict.message.startswith("no champion yet:")
    assert verdict.slice == gate.get("slice")


def test_value_gates_still_decide_without_a_champion() -> None:
    verdicts = decide_gates(
        _spec(
            {"name": "floor", "kind": "value", "metric": "auc", "lower": 0.9},
            {"name": "better", "kind": "change", "metric": "auc", "absolute": 0.0},
        ),
        _measured(),
    )

    assert [v.status for v in verdicts] == ["failed", "skipped"]


# ---------------------------------------------------------------------------
# sanity and data_quality


def test_sanity_gate_passes_on_sane_predictions() -> None:
    verdict = _decide({"name": "sane", "kind": "sanity"}, _measured())

    assert (verdict.status, verdict.message) == (
        "passed",
        "predictions are finite, in [0, 1] and not constant",
    )


def test_sanity_gate_fails_naming_each_failed_property() -> None:
    verdict = _decide(
        {"name": "sane", "kind": "sanity"},
        _measured(sanity={"finite": False, "in_range": True, "not_constant": False}),
    )

    assert (verdict.status, verdict.message) == ("failed", "predictions fail: finite, not_constant")


def test_data_quality_gate_passes_without_failed_checks() -> None:
    verdict = _decide({"name": "dq", "kind": "data_quality"}, _measured())

    assert (verdict.status, verdict.message) == ("passed", "every quality check passed")


def test_data_quality_gate_fails_listing_the_first_five_failures() -> None:
    failures = tuple(f"holdout: drift-psi(col{i}) measured 0.3, expected <= 0.1" for i in range(7))

    verdict = _decide({"name": "dq", "kind": "data_quality"}, _measured(quality_failures=failures))

    assert verdict.status == "failed"
    assert verdict.message == "7 quality check(s) failed: " + "; ".join(failures[:5])


# ---------------------------------------------------------------------------
# Verdicts as written


def test_verdict_line_pads_the_status_and_names_the_slice() -> None:
    verdict = GateVerdict(
        "fair", "value", "failed", "auc", "region=south", message="auc 0.6 misses"
    )

    assert verdict.line() == "FAILED  fair [region=south]: auc 0.6 misses"
    assert GateVerdict("better", "change", "skipped", message="m").line() == "SKIPPED better: m"


def test_verdict_to_dict_writes_the_interval_as_a_list() -> None:
    verdict = _decide(
        {"name": "floor", "kind": "value", "metric": "auc", "lower": 0.6}, _measured()
    )

    assert verdict.to_dict() == {
        "name": "floor",
        "kind": "value",
        "status": "passed",
        "metric": "auc",
        "slice": None,
        "statistic": "ci_low",
        "measured": 0.68,
        "interval": [0.68, 0.72],
        "threshold": ">= 0.6",
        "message": "auc 0.7000 (95% CI [0.6800, 0.7200]); ci_low 0.6800 meets >= 0.6",
    }


def test_verdict_to_dict_writes_an_undefined_measurement_as_null() -> None:
    verdict = _decide(
        {"name": "floor", "kind": "value", "metric": "auc", "lower": 0.6},
        _measured(_all(_est(math.nan, math.nan, math.nan))),
    )

    assert (verdict.to_dict()["measured"], verdict.to_dict()["interval"]) == (None, [None, None])
