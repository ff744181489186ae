"""Data quality: a profile of every column, and the checks a dataset declares.

A dataset's quality spec (``data_manifests/NAME.quality.toml``, documented
in docs/validation.md) declares what its data must look like: the schema,
row counts, missing-value rates, value ranges, allowed categories,
duplicates, label balance, and distribution shift against a reference
dataset (PSI and a two-sample KS test per feature). ``run_quality_checks``
measures each and returns one verdict per check; the verdicts go into the
dataset's attestation and a failed one fails the model's gates.

A spec that names a column the data does not have is unusable input and
stops the build; a check that measures a value beyond its threshold is a
failed check, recorded and reported.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retrain.errors import InputError

__all__ = [
    "QUALITY_SPEC_VERSION",
    "ColumnRule",
    "DriftRule",
    "QualitySpec",
    "QualityVerdict",
    "load_quality_spec",
    "population_stability_index",
    "profile_table",
    "run_quality_checks",
]

QUALITY_SPEC_VERSION = 1


def _num(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    return float(value)


def profile_table(table: pa.Table) -> dict[str, Any]:
    """Per column: type, nulls, and min/max/mean (numeric) or distinct count (string)."""
    columns = []
    for fld in table.schema:
        col = table.column(fld.name)
        if pa.types.is_dictionary(fld.type):
            col = col.cast(fld.type.value_type)
        entry: dict[str, Any] = {
            "name": fld.name,
            "type": str(fld.type),
            "nulls": col.null_count,
            "null_rate": (col.null_count / table.num_rows) if table.num_rows else 0.0,
        }
        t = col.type
        if pa.types.is_floating(t):
            # NaN and infinities are values, not nulls: counted apart, kept out
            # of min/max/mean so the profile stays finite JSON.
            nan = pc.is_nan(col)
            finite = pc.is_finite(col)
            entry["nan"] = int(pc.sum(nan).as_py() or 0)
            entry["infinite"] = int(pc.sum(pc.and_(pc.invert(finite), pc.invert(nan))).as_py() or 0)
            col = pc.filter(col, finite)
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            mm = pc.min_max(col)
            entry["min"] = _num(mm["min"].as_py())
            entry["max"] = _num(mm["max"].as_py())
            mean = pc.mean(col).as_py()
            entry["mean"] = None if mean is None else float(mean)
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            entry["distinct"] = pc.count_distinct(col, mode="only_valid").as_py()
        columns.append(entry)
    return {"rows": table.num_rows, "columns": columns}


# ---------------------------------------------------------------------------
# The spec


@dataclass(frozen=True)
class ColumnRule:
    """What one column must be: type, nullability, missing rate, range, categories."""

    name: str
    type: str | None = None
    nullable: bool | None = None
    max_missing_rate: float | None = None
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DriftRule:
    """Distribution shift against a reference dataset, per feature."""

    reference: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    psi_max: float
    ks_statistic_max: float | None
    bins: int = 10


@dataclass(frozen=True)
class QualitySpec:
    dataset: str
    columns: tuple[ColumnRule, ...] = ()
    exact_columns: bool = False
    min_rows: int | None = None
    max_rows: int | None = None
    unique_key: tuple[str, ...] = ()
    max_duplicate_row_rate: float | None = None
    label: str | None = None
    min_positive_rate: float | None = None
    max_positive_rate: float | None = None
    drift: DriftRule | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)


_TOP = {"spec_version", "dataset", "rows", "schema", "columns", "duplicates", "label", "drift"}


def _expect(d: Mapping[str, Any], allowed: set[str], where: str, ctx: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise InputError(
            f"unknown key {unknown[0]!r} in {ctx}", where=where, expected=", ".join(sorted(allowed))
        )


def _number(value: Any, where: str, ctx: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise InputError(ctx, where=where, expected=f"a number in [{lo}, {hi}]", found=repr(value))
    return float(value)


def _table(raw: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise InputError(f"[{key}] must be a table", where=where, found=type(value).__name__)
    return value


def _bool(value: Any, where: str, ctx: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(ctx, where=where, expected="true or false", found=repr(value))
    return value


def _integer(value: Any, where: str, ctx: str, lo: int = 0, hi: int = 2**62) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InputError(
            ctx, where=where, expected=f"an integer in [{lo}, {hi}]", found=repr(value)
        )
    return value


def _names(value: Any, where: str, ctx: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"{ctx} must be a list of column names", where=where, found=repr(value))
    return tuple(value)


def parse_quality_spec(raw: Mapping[str, Any], *, where: str) -> QualitySpec:
    _expect(raw, _TOP, where, "the quality spec")
    if type(raw.get("spec_version")) is not int or raw.get("spec_version") != QUALITY_SPEC_VERSION:
        raise InputError(
            "unknown quality spec version",
            where=where,
            expected=QUALITY_SPEC_VERSION,
            found=raw.get("spec_version"),
        )
    dataset = raw.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        raise InputError("'dataset' must name the dataset the spec is for", where=where)
    kw: dict[str, Any] = {"dataset": dataset, "raw": raw}
    rows = _table(raw, "rows", where)
    _expect(rows, {"min", "max"}, where, "[rows]")
    if "min" in rows:
        kw["min_rows"] = _integer(rows["min"], where, "rows.min")
    if "max" in rows:
        kw["max_rows"] = _integer(rows["max"], where, "rows.max")
    if "min_rows" in kw and "max_rows" in kw and kw["min_rows"] > kw["max_rows"]:
        raise InputError(
            "rows.min is above rows.max", where=where, found=f"{kw['min_rows']} > {kw['max_rows']}"
        )
    schema = _table(raw, "schema", where)
    _expect(schema, {"exact"}, where, "[schema]")
    kw["exact_columns"] = _bool(schema.get("exact", False), where, "schema.exact")
    columns = []
    for name, rule in _table(raw, "columns", where).items():
        ctx = f"columns.{name}"
        if not isinstance(rule, dict):
            raise InputError(f"{ctx} must be a table", where=where)
        _expect(
            rule,
            {"type", "nullable", "max_missing_rate", "min", "max", "allowed"},
            where,
            f"[{ctx}]",
        )
        allowed = rule.get("allowed")
        if allowed is not None and (
            not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed)
        ):
            raise InputError(f"{ctx}.allowed must be a list of strings", where=where)
        if "type" in rule and (not isinstance(rule["type"], str) or not rule["type"]):
            raise InputError(
                f"{ctx}.type",
                where=where,
                expected="an Arrow type name such as 'int64'",
                found=repr(rule["type"]),
            )
        if (
            "min" in rule
            and "max" in rule
            and _number(rule["min"], where, f"{ctx}.min")
            > _number(rule["max"], where, f"{ctx}.max")
        ):
            raise InputError(
                f"{ctx}.min is above {ctx}.max", where=where, found=f"{rule['min']} > {rule['max']}"
            )
        columns.append(
            ColumnRule(
                name=name,
                type=rule.get("type"),
                nullable=_bool(rule["nullable"], where, f"{ctx}.nullable")
                if "nullable" in rule
                else None,
                max_missing_rate=_number(
                    rule["max_missing_rate"], where, f"{ctx}.max_missing_rate", 0, 1
                )
                if "max_missing_rate" in rule
                else None,
                min=_number(rule["min"], where, f"{ctx}.min") if "min" in rule else None,
                max=_number(rule["max"], where, f"{ctx}.max") if "max" in rule else None,
                allowed=tuple(allowed) if allowed is not None else None,
            )
        )
    kw["columns"] = tuple(columns)
    dup = _table(raw, "duplicates", where)
    _expect(dup, {"unique_key", "max_duplicate_row_rate"}, where, "[duplicates]")
    if "unique_key" in dup:
        kw["unique_key"] = _names(dup["unique_key"], where, "duplicates.unique_key")
    if "max_duplicate_row_rate" in dup:
        kw["max_duplicate_row_rate"] = _number(
            dup["max_duplicate_row_rate"], where, "duplicates.max_duplicate_row_rate", 0, 1
        )
    label = _table(raw, "label", where)
    _expect(label, {"column", "min_positive_rate", "max_positive_rate"}, where, "[label]")
    if label:
        if not isinstance(label.get("column"), str):
            raise InputError("label.column must name the label column", where=where)
        kw["label"] = label["column"]
        for key in ("min_positive_rate", "max_positive_rate"):
            if key in label:
                kw[key] = _number(label[key], where, f"label.{key}", 0, 1)
    drift = raw.get("drift")
    if drift is not None:
        drift = _table(raw, "drift", where)
        _expect(
            drift,
            {"reference", "numeric", "categorical", "psi_max", "ks_statistic_max", "bins"},
            where,
            "[drift]",
        )
        if not isinstance(drift.get("reference"), str):
            raise InputError("drift.reference must name the reference dataset", where=where)
        kw["drift"] = DriftRule(
            reference=drift["reference"],
            numeric=_names(drift.get("numeric", []), where, "drift.numeric"),
            categorical=_names(drift.get("categorical", []), where, "drift.categorical"),
            psi_max=_number(drift.get("psi_max", 0.2), where, "drift.psi_max", 0),
            ks_statistic_max=_number(
                drift["ks_statistic_max"], where, "drift.ks_statistic_max", 0, 1
            )
            if "ks_statistic_max" in drift
            else None,
            bins=_integer(drift.get("bins", 10), where, "drift.bins", 2, 100),
        )
    return QualitySpec(**kw)


def load_quality_spec(path: str | Path) -> QualitySpec:
    where = str(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise InputError("quality spec not found", where=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"malformed TOML: {exc}", where=where) from None
    return parse_quality_spec(raw, where=where)


# ---------------------------------------------------------------------------
# Checks


@dataclass(frozen=True)
class QualityVerdict:
    """One quality check: what it measured against what threshold, and whether it passed."""

    check: str
    column: str | None
    passed: bool
    measured: Any
    threshold: Any
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "column": self.column,
            "passed": self.passed,
            "measured": self.measured,
            "threshold": self.threshold,
            "detail": self.detail,
        }


def _require_columns(table: pa.Table, names: Sequence[str], where: str, ctx: str) -> None:
    for name in names:
        if name not in table.column_names:
            raise InputError(
                f"{ctx} names column {name!r}, which the dataset does not have",
                where=where,
                expected=f"one of {', '.join(table.column_names)}",
                found=repr(name),
            )


def _strings(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col.cast(pa.string())


def _finite_floats(col: pa.ChunkedArray) -> np.ndarray:
    values = col.cast(pa.float64()).drop_null().to_numpy()
    return np.asarray(values[np.isfinite(values)], dtype=np.float64)


def population_stability_index(reference: np.ndarray, current: np.ndarray, *, bins: int) -> float:
    """PSI over reference-quantile bins (numeric): sum (c - r) ln(c / r), shares floored at 1e-4."""
    edges = np.unique(np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    ref = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1)
    cur = np.bincount(np.searchsorted(edges, current, side="right"), minlength=edges.size + 1)
    return _psi(ref, cur)


def _psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    r = np.maximum(ref_counts / max(ref_counts.sum(), 1), 1e-4)
    c = np.maximum(cur_counts / max(cur_counts.sum(), 1), 1e-4)
    return float(np.sum((c - r) * np.log(c / r)))


def _categorical_psi(reference: pa.ChunkedArray, current: pa.ChunkedArray) -> float:
    ref = pc.value_counts(_strings(reference).fill_null("__null__"))
    cur = pc.value_counts(_strings(current).fill_null("__null__"))
    ref_map = dict(
        zip(ref.field("values").to_pylist(), ref.field("counts").to_pylist(), strict=True)
    )
    cur_map = dict(
        zip(cur.field("values").to_pylist(), cur.field("counts").to_pylist(), strict=True)
    )
    keys = sorted(set(ref_map) | set(cur_map))
    return _psi(
        np.array([ref_map.get(k, 0) for k in keys]), np.array([cur_map.get(k, 0) for k in keys])
    )


def _row_hashes(table: pa.Table) -> np.ndarray:
    from retrain.rowhash import row_hashes

    return row_hashes(table)


def run_quality_checks(
    table: pa.Table, spec: QualitySpec, *, reference: pa.Table | None = None, where: str = "dataset"
) -> list[QualityVerdict]:
    """Every declared check, in a fixed order; raises only for an unusable spec."""
    from scipy.stats import ks_2samp

    verdicts: list[QualityVerdict] = []
    add = verdicts.append
    n = table.num_rows
    _require_columns(table, [c.name for c in spec.columns], where, "the quality spec")
    if spec.min_rows is not None:
        add(QualityVerdict("rows", None, n >= spec.min_rows, n, f">= {spec.min_rows}"))
    if spec.max_rows is not None:
        add(QualityVerdict("rows", None, n <= spec.max_rows, n, f"<= {spec.max_rows}"))
    if spec.exact_columns:
        declared = [c.name for c in spec.columns]
        add(
            QualityVerdict(
                "schema-columns", None, table.column_names == declared, table.column_names, declared
            )
        )
    for rule in spec.columns:
        col = table.column(rule.name)
        if rule.type is not None:
            found = str(table.schema.field(rule.name).type)
            add(QualityVerdict("schema-type", rule.name, found == rule.type, found, rule.type))
        if rule.nullable is not None:
            nulls = col.null_count
            ok = rule.nullable or nulls == 0
            add(
                QualityVerdict(
                    "schema-nullable",
                    rule.name,
                    ok,
                    nulls,
                    "nullable" if rule.nullable else "0 nulls",
                )
            )
        if rule.max_missing_rate is not None:
            missing = col.null_count
            if pa.types.is_floating(col.type):
                missing += int(pc.sum(pc.is_nan(col)).as_py() or 0)
            rate = missing / n if n else 0.0
            add(
                QualityVerdict(
                    "missing-rate",
                    rule.name,
                    rate <= rule.max_missing_rate,
                    rate,
                    f"<= {rule.max_missing_rate}",
                )
            )
        if rule.min is not None or rule.max is not None:
            t = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
            if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
                raise InputError(
                    f"columns.{rule.name} declares a range but the column is not numeric",
                    where=where,
                    found=str(t),
                )
            every = col.cast(pa.float64()).drop_null().to_numpy()
            values = every[np.isfinite(every)]
            # Infinities are out of any finite range; NaN is a missing value.
            below = int(np.sum(every < rule.min)) if rule.min is not None else 0
            above = int(np.sum(every > rule.max)) if rule.max is not None else 0
            bounds = f"[{rule.min if rule.min is not None else '-inf'}, {rule.max if rule.max is not None else 'inf'}]"
            detail = (
                f"min {float(values.min())!r}, max {float(values.max())!r}"
                if values.size
                else "no finite values"
            )
            add(
                QualityVerdict(
                    "range",
                    rule.name,
                    below + above == 0,
                    below + above,
                    f"0 values outside {bounds}",
                    detail,
                )
            )
        if rule.allowed is not None:
            strings = _strings(col).drop_null()
            unknown = pc.filter(
                strings,
                pc.invert(pc.is_in(strings, value_set=pa.array(rule.allowed, type=pa.string()))),
            )
            examples = sorted(set(unknown.to_pylist()))[:3]
            add(
                QualityVerdict(
                    "allowed-values",
                    rule.name,
                    len(unknown) == 0,
                    len(unknown),
                    f"only {list(rule.allowed)}",
                    f"unknown values such as {examples}" if examples else "",
                )
            )
    if spec.unique_key:
        _require_columns(table, spec.unique_key, where, "duplicates.unique_key")
        keys = table.select(list(spec.unique_key))
        distinct = keys.group_by(list(spec.unique_key)).aggregate([]).num_rows
        add(
            QualityVerdict(
                "duplicate-keys", ",".join(spec.unique_key), distinct == n, n - distinct, 0
            )
        )
    if spec.max_duplicate_row_rate is not None:
        hashes = _row_hashes(table)
        duplicated = n - np.unique(hashes).size
        rate = duplicated / n if n else 0.0
        add(
            QualityVerdict(
                "duplicate-rows",
                None,
                rate <= spec.max_duplicate_row_rate,
                rate,
                f"<= {spec.max_duplicate_row_rate}",
            )
        )
    if spec.label is not None:
        _require_columns(table, [spec.label], where, "label.column")
        labels = table.column(spec.label).cast(pa.float64()).to_numpy(zero_copy_only=False)
        rate = float(np.nanmean(labels == 1.0)) if n else 0.0
        if spec.min_positive_rate is not None:
            add(
                QualityVerdict(
                    "label-balance",
                    spec.label,
                    rate >= spec.min_positive_rate,
                    rate,
                    f">= {spec.min_positive_rate}",
                )
            )
        if spec.max_positive_rate is not None:
            add(
                QualityVerdict(
                    "label-balance",
                    spec.label,
                    rate <= spec.max_positive_rate,
                    rate,
                    f"<= {spec.max_positive_rate}",
                )
            )
    if spec.drift is not None:
        d = spec.drift
        if reference is None:
            raise InputError(
                f"the quality spec declares drift against {d.reference!r} but no reference dataset was given",
                where=where,
            )
        for ctx, names in (("drift.numeric", d.numeric), ("drift.categorical", d.categorical)):
            _require_columns(table, names, where, ctx)
            _require_columns(reference, names, f"reference {d.reference}", ctx)
        for name in d.numeric:
            ref, cur = _finite_floats(reference.column(name)), _finite_floats(table.column(name))
            if ref.size == 0 or cur.size == 0:
                raise InputError(f"drift feature {name!r} has no finite values", where=where)
            psi = population_stability_index(ref, cur, bins=d.bins)
            add(
                QualityVerdict(
                    "drift-psi",
                    name,
                    psi <= d.psi_max,
                    psi,
                    f"<= {d.psi_max}",
                    f"against {d.reference}",
                )
            )
            ks = ks_2samp(ref, cur, method="asymp")
            passed = d.ks_statistic_max is None or ks.statistic <= d.ks_statistic_max
            add(
                QualityVerdict(
                    "drift-ks",
                    name,
                    bool(passed),
                    float(ks.statistic),
                    f"<= {d.ks_statistic_max}" if d.ks_statistic_max is not None else "reported",
                    f"p-value {float(ks.pvalue):.3g} against {d.reference}",
                )
            )
        for name in d.categorical:
            psi = _categorical_psi(reference.column(name), table.column(name))
            add(
                QualityVerdict(
                    "drift-psi",
                    name,
                    psi <= d.psi_max,
                    psi,
                    f"<= {d.psi_max}",
                    f"against {d.reference}",
                )
            )
    return verdicts
