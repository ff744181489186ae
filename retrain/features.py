"""Feature encoding fitted on training data, as plain, serializable parameters.

Two encodings, chosen by the estimator:

* ``raw`` (trees): numeric columns pass through as float64 with missing values
  as NaN, which gradient-boosted trees route natively.
* ``standardized`` (linear models): numeric columns are imputed with the
  training median, standardized, and get a missing-value indicator column.

Categorical columns are one-hot encoded over a vocabulary fitted on the
training rows (the most frequent values, ties broken by value, at most
``MAX_CATEGORIES``), plus one column for missing or unseen values. Every
parameter is a number or a string, so a fitted encoder serializes exactly and
reloads without pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retrain.errors import DataError, InputError
from retrain.recipe import FeatureSpec, LabelSpec

__all__ = [
    "MAX_CATEGORIES",
    "OTHER",
    "CategoricalEncoding",
    "NumericEncoding",
    "Preprocessor",
    "check_feature_columns",
    "fit_preprocessor",
    "label_vector",
]

MAX_CATEGORIES = 64
OTHER = "__other__"


@dataclass(frozen=True)
class NumericEncoding:
    name: str
    median: float
    mean: float
    scale: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "median": self.median, "mean": self.mean, "scale": self.scale}


@dataclass(frozen=True)
class CategoricalEncoding:
    name: str
    vocabulary: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "vocabulary": list(self.vocabulary)}


@dataclass(frozen=True)
class Preprocessor:
    """A fitted encoder from an Arrow table to a float64 design matrix."""

    mode: str  # "raw" | "standardized"
    features: tuple[FeatureSpec, ...]
    numeric: tuple[NumericEncoding, ...]
    categorical: tuple[CategoricalEncoding, ...]

    def output_columns(self) -> list[str]:
        num = {n.name: n for n in self.numeric}
        cat = {c.name: c for c in self.categorical}
        cols: list[str] = []
        for f in self.features:
            if f.kind == "numeric":
                cols.append(num[f.name].name)
                if self.mode == "standardized":
                    cols.append(f"{f.name}__missing")
            else:
                cols.extend(f"{f.name}={v}" for v in cat[f.name].vocabulary)
                cols.append(f"{f.name}={OTHER}")
        return cols

    def transform(self, table: pa.Table, *, where: str = "dataset") -> np.ndarray:
        check_feature_columns(table, self.features, where=where)
        num = {n.name: n for n in self.numeric}
        cat = {c.name: c for c in self.categorical}
        blocks: list[np.ndarray] = []
        for f in self.features:
            if f.kind == "numeric":
                x = _numeric(table, f.name)
                if self.mode == "raw":
                    blocks.append(x[:, None])
                else:
                    enc = num[f.name]
                    missing = np.isnan(x)
                    filled = np.where(missing, enc.median, x)
                    blocks.append(((filled - enc.mean) / enc.scale)[:, None])
                    blocks.append(missing.astype(np.float64)[:, None])
            else:
                vocab = cat[f.name].vocabulary
                codes = _category_codes(table, f.name, vocab)
                onehot = np.zeros((table.num_rows, len(vocab) + 1), dtype=np.float64)
                onehot[np.arange(table.num_rows), codes] = 1.0
                blocks.append(onehot)
        return np.ascontiguousarray(np.hstack(blocks), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "features": [f.to_dict() for f in self.features],
            "numeric": [n.to_dict() for n in self.numeric],
            "categorical": [c.to_dict() for c in self.categorical],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Preprocessor:
        if raw.get("mode") not in ("raw", "standardized"):
            raise InputError(
                "preprocessor mode", expected="'raw' or 'standardized'", found=repr(raw.get("mode"))
            )
        for f in raw.get("features", []):
            if not isinstance(f, dict) or f.get("kind") not in ("numeric", "categorical"):
                raise InputError(
                    "preprocessor feature kind",
                    expected="'numeric' or 'categorical'",
                    found=repr(f),
                )
        pre = cls(
            mode=raw["mode"],
            features=tuple(FeatureSpec(f["name"], f["kind"]) for f in raw["features"]),
            numeric=tuple(NumericEncoding(**n) for n in raw["numeric"]),
            categorical=tuple(
                CategoricalEncoding(c["name"], tuple(c["vocabulary"])) for c in raw["categorical"]
            ),
        )
        encoded = {n.name for n in pre.numeric} | {c.name for c in pre.categorical}
        missing = [f.name for f in pre.features if f.name not in encoded]
        if missing:
            raise InputError(
                "preprocessor has no encoding for a feature",
                expected=f"an encoding of {missing[0]!r}",
                found="none",
            )
        return pre


def _is_numeric_type(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))


def _is_categorical_type(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _is_categorical_type(t.value_type)
    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_integer(t)
        or pa.types.is_boolean(t)
    )


def check_feature_columns(table: pa.Table, features: Sequence[FeatureSpec], *, where: str) -> None:
    """Every feature must exist with a type its kind can encode."""
    names = table.column_names
    for f in features:
        if f.name not in names:
            raise DataError(
                f"feature {f.name!r} not in dataset",
                where=where,
                expected=f"a column named {f.name!r}",
                found="columns " + ", ".join(names),
            )
        t = table.schema.field(f.name).type
        if f.kind == "numeric" and not _is_numeric_type(t):
            raise DataError(
                f"feature {f.name!r} is declared numeric",
                where=where,
                expected="an integer, float or bool column",
                found=str(t),
            )
        if f.kind == "categorical" and not _is_categorical_type(t):
            raise DataError(
                f"feature {f.name!r} is declared categorical",
                where=where,
                expected="a string, integer or bool column",
                found=str(t),
            )


def _numeric(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name).cast(pa.float64())
    return np.asarray(col.fill_null(float("nan")).to_numpy(), dtype=np.float64)


def _as_strings(table: pa.Table, name: str) -> pa.ChunkedArray:
    col = table.column(name)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col.cast(pa.string())


def _category_codes(table: pa.Table, name: str, vocab: tuple[str, ...]) -> np.ndarray:
    idx = pc.index_in(_as_strings(table, name), value_set=pa.array(vocab, type=pa.string()))
    return np.asarray(idx.fill_null(len(vocab)).to_numpy(), dtype=np.int64)


def fit_preprocessor(
    table: pa.Table, features: Sequence[FeatureSpec], *, mode: str, where: str = "dataset"
) -> Preprocessor:
    if mode not in ("raw", "standardized"):
        raise ValueError(mode)
    check_feature_columns(table, features, where=where)
    numeric = []
    categorical = []
    for f in features:
        if f.kind == "numeric":
            x = _numeric(table, f.name)
            finite = x[~np.isnan(x)]
            if np.isinf(finite).any():
                raise DataError(
                    f"feature {f.name!r} has infinite values",
                    where=where,
                    expected="finite numbers or null",
                )
            median = float(np.median(finite)) if finite.size else 0.0
            filled = np.where(np.isnan(x), median, x)
            mean = float(filled.mean()) if filled.size else 0.0
            std = float(filled.std()) if filled.size else 0.0
            numeric.append(NumericEncoding(f.name, median, mean, std if std > 0.0 else 1.0))
        else:
            counts = pc.value_counts(_as_strings(table, f.name).drop_null())
            values = counts.field("values").to_pylist()
            freq = counts.field("counts").to_pylist()
            # A value spelled like the catch-all column joins it rather than
            # producing two columns of the same name.
            ranked = sorted(
                ((v, c) for v, c in zip(values, freq, strict=True) if v != OTHER),
                key=lambda vc: (-vc[1], vc[0]),
            )
            vocab = tuple(sorted(v for v, _ in ranked[:MAX_CATEGORIES]))
            categorical.append(CategoricalEncoding(f.name, vocab))
    return Preprocessor(
        mode=mode, features=tuple(features), numeric=tuple(numeric), categorical=tuple(categorical)
    )


def label_vector(table: pa.Table, label: LabelSpec, *, where: str = "dataset") -> np.ndarray:
    """The label as int8 0/1; refuses nulls, NaN and values other than the two declared."""
    if label.column not in table.column_names:
        raise DataError(
            f"label column {label.column!r} not in dataset",
            where=where,
            expected=f"a column named {label.column!r}",
            found="columns " + ", ".join(table.column_names),
        )
    col = table.column(label.column)
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_floating(t)):
        raise DataError(
            f"label column {label.column!r}",
            where=where,
            expected="an integer or bool column",
            found=str(t),
        )
    if col.null_count:
        first = int(pc.index(pc.is_null(col), True).as_py())
        raise DataError(
            f"label column {label.column!r} has {col.null_count} null values (first at row {first})",
            where=where,
            expected="a label on every row",
        )
    values = (
        col.cast(pa.float64()).to_numpy()
        if not pa.types.is_boolean(t)
        else col.to_numpy(zero_copy_only=False).astype(np.float64)
    )
    bad = ~((values == label.positive) | (values == label.negative))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        found = values[first]
        if np.isnan(found):
            what = "NaN"
        elif np.isinf(found):
            what = "inf" if found > 0 else "-inf"
        elif float(found).is_integer():
            what = str(int(found))
        else:
            what = repr(float(found))
        raise DataError(
            f"label column {label.column!r} has an unknown value at row {first}",
            where=where,
            expected=f"{label.negative} or {label.positive}",
            found=what,
        )
    return np.asarray(values == label.positive, dtype=np.int8)
