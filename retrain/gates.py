"""Validation gates: declared in a checked-in spec, decided from measured intervals.

A gate spec (``models/NAME.gates.toml``, documented in docs/validation.md)
sets the bootstrap (resamples, seed, confidence), the slices to report and
gate on, and the gates. Gate kinds, after TFX's value and change thresholds:

* ``value``: a metric (or its CI bound) against a lower and/or upper bound,
  overall or on every slice of a feature;
* ``change``: candidate - champion (paired bootstrap) against absolute and/or
  relative thresholds, in the metric's better direction;
* ``non_inferiority``: the candidate is not worse than the champion by more
  than a tolerance, with the chosen confidence, overall or per slice (the
  fairness rail);
* ``sanity``: predictions are finite, within [0, 1] and not constant;
* ``data_quality``: every quality check of the datasets passed.

Without a champion, ``change`` and ``non_inferiority`` gates are skipped and
say so. ``decide_gates`` is pure: measurements in, verdicts out.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrain.errors import InputError
from retrain.metrics import HIGHER_IS_BETTER, METRIC_NAMES, Estimate

__all__ = [
    "GATE_KINDS",
    "GATE_SPEC_VERSION",
    "GateRule",
    "GateSpec",
    "GateVerdict",
    "Measurements",
    "SliceSpec",
    "decide_gates",
    "load_gate_spec",
]

GATE_SPEC_VERSION = 1
GATE_KINDS = ("value", "change", "non_inferiority", "sanity", "data_quality")
STATISTICS = ("value", "ci_low", "ci_high")


@dataclass(frozen=True)
class SliceSpec:
    """Slice the holdout by a categorical feature: every value, or the listed ones."""

    feature: str
    values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class GateRule:
    name: str
    kind: str
    metric: str | None = None
    slice: str | None = None
    lower: float | None = None
    upper: float | None = None
    absolute: float | None = None
    relative: float | None = None
    tolerance: float | None = None
    statistic: str | None = None
    higher_is_better: bool | None = None

    def better_high(self) -> bool:
        if self.higher_is_better is not None:
            return self.higher_is_better
        return HIGHER_IS_BETTER[self.metric or "auc"]

    def bound(self) -> str:
        """Which statistic the gate compares: declared, else the conservative one."""
        if self.statistic:
            return self.statistic
        if self.kind == "value":
            return "ci_low" if self.lower is not None else "ci_high"
        return "ci_low" if self.better_high() else "ci_high"


@dataclass(frozen=True)
class GateSpec:
    confidence: float
    resamples: int
    seed: int
    min_slice_rows: int
    slices: tuple[SliceSpec, ...]
    gates: tuple[GateRule, ...]
    leakage_key: str | None = None


_TOP = {"spec_version", "evaluation", "slices", "gates"}
_GATE_KEYS = {
    "value": {"name", "kind", "metric", "slice", "lower", "upper", "statistic", "direction"},
    "change": {"name", "kind", "metric", "slice", "absolute", "relative", "statistic", "direction"},
    "non_inferiority": {"name", "kind", "metric", "slice", "tolerance", "statistic", "direction"},
    "sanity": {"name", "kind"},
    "data_quality": {"name", "kind"},
}


def _num(value: Any, where: str, ctx: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise InputError(ctx, where=where, expected=f"a number in [{lo}, {hi}]", found=repr(value))
    return float(value)


def _int(value: Any, where: str, ctx: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InputError(
            ctx, where=where, expected=f"an integer in [{lo}, {hi}]", found=repr(value)
        )
    return value


def parse_gate_spec(raw: Mapping[str, Any], *, where: str) -> GateSpec:
    unknown = sorted(set(raw) - _TOP)
    if unknown:
        raise InputError(
            f"unknown key {unknown[0]!r} in the gate spec",
            where=where,
            expected=", ".join(sorted(_TOP)),
        )
    if type(raw.get("spec_version")) is not int or raw.get("spec_version") != GATE_SPEC_VERSION:
        raise InputError(
            "unknown gate spec version",
            where=where,
            expected=GATE_SPEC_VERSION,
            found=raw.get("spec_version"),
        )
    ev = raw.get("evaluation", {})
    if not isinstance(ev, dict):
        raise InputError("[evaluation] must be a table", where=where, found=type(ev).__name__)
    extra = sorted(set(ev) - {"confidence", "resamples", "seed", "min_slice_rows", "leakage_key"})
    if extra:
        raise InputError(f"unknown key {extra[0]!r} in [evaluation]", where=where)
    confidence = _num(ev.get("confidence", 0.95), where, "evaluation.confidence", 0.5, 0.999)
    resamples = _int(ev.get("resamples", 1000), where, "evaluation.resamples", 10, 100_000)
    seed = _int(ev.get("seed", 0), where, "evaluation.seed", 0, 2**32 - 1)
    min_slice_rows = _int(
        ev.get("min_slice_rows", 100), where, "evaluation.min_slice_rows", 1, 2**62
    )
    leakage_key = ev.get("leakage_key")
    if leakage_key is not None and (not isinstance(leakage_key, str) or not leakage_key):
        raise InputError(
            "evaluation.leakage_key must be a column name", where=where, found=repr(leakage_key)
        )
    slices = []
    for i, s in enumerate(raw.get("slices", [])):
        if (
            not isinstance(s, dict)
            or not isinstance(s.get("feature"), str)
            or set(s) - {"feature", "values"}
        ):
            raise InputError(f"slices[{i}] must be {{feature, values?}}", where=where)
        values = s.get("values")
        if values is not None and (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) for v in values)
        ):
            raise InputError(f"slices[{i}].values must be a non-empty list of strings", where=where)
        slices.append(SliceSpec(s["feature"], tuple(values) if values else None))
    sliced = {s.feature for s in slices}
    gates = []
    names: set[str] = set()
    for i, g in enumerate(raw.get("gates", [])):
        if not isinstance(g, dict) or not isinstance(g.get("name"), str) or not g["name"]:
            raise InputError(f"gates[{i}] must have a name", where=where)
        ctx = f"gate {g['name']!r}"
        if g["name"] in names:
            raise InputError(f"{ctx} is declared twice", where=where)
        names.add(g["name"])
        kind = g.get("kind")
        if kind not in GATE_KINDS:
            raise InputError(
                f"{ctx}: unknown kind",
                where=where,
                expected=", ".join(GATE_KINDS),
                found=repr(kind),
            )
        extra = sorted(set(g) - _GATE_KEYS[kind])
        if extra:
            raise InputError(
                f"{ctx}: unknown key {extra[0]!r} for kind {kind}",
                where=where,
                expected=", ".join(sorted(_GATE_KEYS[kind])),
            )
        metric = g.get("metric")
        if kind in ("value", "change", "non_inferiority") and metric not in METRIC_NAMES:
            raise InputError(
                f"{ctx}: unknown metric",
                where=where,
                expected=", ".join(METRIC_NAMES),
                found=repr(metric),
            )
        statistic = g.get("statistic")
        if statistic is not None and statistic not in STATISTICS:
            raise InputError(
                f"{ctx}: statistic",
                where=where,
                expected=", ".join(STATISTICS),
                found=repr(statistic),
            )
        direction = g.get("direction")
        if direction is not None and direction not in ("higher_is_better", "lower_is_better"):
            raise InputError(
                f"{ctx}: direction",
                where=where,
                expected="higher_is_better or lower_is_better",
                found=repr(direction),
            )
        slice_feature = g.get("slice")
        if slice_feature is not None and slice_feature not in sliced:
            raise InputError(
                f"{ctx} gates slice {slice_feature!r}, which [[slices]] does not declare",
                where=where,
                expected=", ".join(sorted(sliced)) or "a declared slice",
            )
        rule = GateRule(
            name=g["name"],
            kind=kind,
            metric=metric,
            slice=slice_feature,
            lower=_num(g["lower"], where, f"{ctx}.lower") if "lower" in g else None,
            upper=_num(g["upper"], where, f"{ctx}.upper") if "upper" in g else None,
            absolute=_num(g["absolute"], where, f"{ctx}.absolute") if "absolute" in g else None,
            relative=_num(g["relative"], where, f"{ctx}.relative") if "relative" in g else None,
            tolerance=_num(g["tolerance"], where, f"{ctx}.tolerance", 0)
            if "tolerance" in g
            else None,
            statistic=statistic,
            higher_is_better=None if direction is None else direction == "higher_is_better",
        )
        if kind == "value" and rule.lower is None and rule.upper is None:
            raise InputError(f"{ctx}: a value gate needs lower and/or upper", where=where)
        if kind == "change" and rule.absolute is None and rule.relative is None:
            raise InputError(f"{ctx}: a change gate needs absolute and/or relative", where=where)
        if kind == "non_inferiority" and rule.tolerance is None:
            raise InputError(f"{ctx}: a non_inferiority gate needs a tolerance", where=where)
        gates.append(rule)
    if not gates:
        raise InputError("the gate spec declares no gates", where=where)
    return GateSpec(
        confidence, resamples, seed, min_slice_rows, tuple(slices), tuple(gates), leakage_key
    )


def load_gate_spec(path: str | Path) -> GateSpec:
    where = str(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise InputError("gate spec not found", where=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"malformed TOML: {exc}", where=where) from None
    return parse_gate_spec(raw, where=where)


# ---------------------------------------------------------------------------
# Deciding


@dataclass(frozen=True)
class SliceMeasurement:
    feature: str
    value: str
    rows: int
    estimates: Mapping[str, Estimate]
    differences: Mapping[str, Estimate] | None = None


@dataclass(frozen=True)
class Measurements:
    """Everything the gates read: overall and per-slice estimates, differences, sanity, quality."""

    estimates: Mapping[str, Estimate]
    slices: Sequence[SliceMeasurement]
    differences: Mapping[str, Estimate] | None  # candidate - champion; None without a champion
    champion_estimates: Mapping[str, Estimate] | None
    sanity: Mapping[str, bool]
    quality_failures: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class GateVerdict:
    name: str
    kind: str
    status: str  # passed | failed | skipped
    metric: str | None = None
    slice: str | None = None
    statistic: str | None = None
    measured: float | None = None
    interval: tuple[float, float] | None = None
    threshold: str = ""
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        def finite(x: float | None) -> float | None:
            return x if x is not None and math.isfinite(x) else None

        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "metric": self.metric,
            "slice": self.slice,
            "statistic": self.statistic,
            "measured": finite(self.measured),
            "interval": [finite(x) for x in self.interval] if self.interval else None,
            "threshold": self.threshold,
            "message": self.message,
        }

    def line(self) -> str:
        where = f" [{self.slice}]" if self.slice else ""
        head = f"{self.status.upper():<7} {self.name}{where}"
        return f"{head}: {self.message}" if self.message else head


def _stat(e: Estimate, statistic: str) -> float:
    return {"value": e.value, "ci_low": e.low, "ci_high": e.high}[statistic]


def _fmt(x: float) -> str:
    return f"{x:.4f}" if math.isfinite(x) else str(x)


def _describe(metric: str, e: Estimate, statistic: str, what: str = "") -> str:
    ci = f"{e.confidence:.0%} CI [{_fmt(e.low)}, {_fmt(e.high)}]"
    return f"{what}{metric} {_fmt(e.value)} ({ci}); {statistic} {_fmt(_stat(e, statistic))}"


def _value_verdict(rule: GateRule, e: Estimate, slice_label: str | None) -> GateVerdict:
    statistic = rule.bound()
    measured = _stat(e, statistic)
    checks = []
    # Without a declared statistic, each bound meets its own conservative
    # one: a lower bound the interval's low end, an upper bound its high end.
    if rule.lower is not None:
        low = _stat(e, rule.statistic or "ci_low")
        checks.append((math.isfinite(low) and low >= rule.lower, f">= {rule.lower}"))
    if rule.upper is not None:
        high = _stat(e, rule.statistic or "ci_high")
        checks.append((math.isfinite(high) and high <= rule.upper, f"<= {rule.upper}"))
    passed = math.isfinite(measured) and all(ok for ok, _ in checks)
    threshold = " and ".join(t for _, t in checks)
    message = f"{_describe(rule.metric or '', e, statistic)} {'meets' if passed else 'misses'} {threshold}"
    return GateVerdict(
        rule.name,
        rule.kind,
        "passed" if passed else "failed",
        rule.metric,
        slice_label,
        statistic,
        measured,
        (e.low, e.high),
        threshold,
        message,
    )


def _difference_verdict(
    rule: GateRule, diff: Estimate, champion: Estimate, slice_label: str | None
) -> GateVerdict:
    statistic = rule.bound()
    measured = _stat(diff, statistic)
    high = rule.better_high()
    checks = []
    if rule.kind == "non_inferiority":
        tol = rule.tolerance or 0.0
        checks.append(
            (
                measured >= -tol if high else measured <= tol,
                f"{'>=' if high else '<='} {-tol if high else tol}",
            )
        )
    else:
        if rule.absolute is not None:
            checks.append(
                (
                    measured >= rule.absolute if high else measured <= rule.absolute,
                    f"{'>=' if high else '<='} {rule.absolute}",
                )
            )
        if rule.relative is not None:
            # A relative change from zero is undefined: it fails rather than passes.
            rel = measured / champion.value if champion.value else math.nan
            checks.append(
                (
                    rel >= rule.relative if high else rel <= rule.relative,
                    f"relative {'>=' if high else '<='} {rule.relative}",
                )
            )
    passed = math.isfinite(measured) and all(ok for ok, _ in checks)
    threshold = " and ".join(t for _, t in checks)
    message = (
        f"{_describe(rule.metric or '', diff, statistic, 'candidate - champion ')} "
        f"{'meets' if passed else 'misses'} {threshold} (champion {_fmt(champion.value)})"
    )
    return GateVerdict(
        rule.name,
        rule.kind,
        "passed" if passed else "failed",
        rule.metric,
        slice_label,
        statistic,
        measured,
        (diff.low, diff.high),
        threshold,
        message,
    )


def decide_gates(spec: GateSpec, m: Measurements) -> list[GateVerdict]:
    verdicts: list[GateVerdict] = []
    for rule in spec.gates:
        if rule.kind == "sanity":
            failed = [name for name, ok in m.sanity.items() if not ok]
            verdicts.append(
                GateVerdict(
                    rule.name,
                    rule.kind,
                    "failed" if failed else "passed",
                    threshold="finite, in [0, 1], not constant",
                    message=("predictions fail: " + ", ".join(failed))
                    if failed
                    else "predictions are finite, in [0, 1] and not constant",
                )
            )
            continue
        if rule.kind == "data_quality":
            failed = list(m.quality_failures)
            verdicts.append(
                GateVerdict(
                    rule.name,
                    rule.kind,
                    "failed" if failed else "passed",
                    threshold="every quality check passes",
                    message=(f"{len(failed)} quality check(s) failed: " + "; ".join(failed[:5]))
                    if failed
                    else "every quality check passed",
                )
            )
            continue
        metric = rule.metric or ""
        comparative = rule.kind in ("change", "non_inferiority")
        if comparative and m.differences is None:
            verdicts.append(
                GateVerdict(
                    rule.name,
                    rule.kind,
                    "skipped",
                    metric,
                    rule.slice,
                    message="no champion yet: only value, sanity and data-quality gates apply",
                )
            )
            continue
        if rule.slice is None:
            if comparative:
                assert m.differences is not None and m.champion_estimates is not None
                verdicts.append(
                    _difference_verdict(
                        rule, m.differences[metric], m.champion_estimates[metric], None
                    )
                )
            else:
                verdicts.append(_value_verdict(rule, m.estimates[metric], None))
            continue
        for s in (s for s in m.slices if s.feature == rule.slice):
            label = f"{s.feature}={s.value}"
            if s.rows < spec.min_slice_rows:
                verdicts.append(
                    GateVerdict(
                        rule.name,
                        rule.kind,
                        "skipped",
                        metric,
                        label,
                        message=f"{s.rows} rows, fewer than min_slice_rows {spec.min_slice_rows}",
                    )
                )
                continue
            if comparative:
                assert s.differences is not None
                champion_value = Estimate(
                    s.estimates[metric].value - s.differences[metric].value,
                    math.nan,
                    math.nan,
                    spec.confidence,
                    spec.resamples,
                )
                verdicts.append(
                    _difference_verdict(rule, s.differences[metric], champion_value, label)
                )
            else:
                verdicts.append(_value_verdict(rule, s.estimates[metric], label))
    return verdicts
