"""The training recipe: everything about a model that is a choice, not code.

A recipe (``models/*.recipe.json``, schema in docs/recipe.md) declares the
label, the features and their kinds, the train/holdout split, the estimator
with its hyperparameters, and the seed. It is a declared input of the
training action, so changing any of it changes the model and its provenance.
Validation is strict: unknown keys, unknown estimators and out-of-range
values are refused with the key's path in the file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from retrain.errors import InputError, RecipeError

__all__ = [
    "ESTIMATORS",
    "RECIPE_VERSION",
    "FeatureSpec",
    "LabelSpec",
    "SplitSpec",
    "TrainingRecipe",
    "load_recipe",
]

RECIPE_VERSION = 1
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")

# Per estimator: every hyperparameter a recipe may set, its type and its
# allowed range. Anything else is refused, so a typo is an error rather than
# a silently ignored key. Parameters a recipe leaves out take scikit-learn's
# defaults, which the lock file pins.
_Num = (int, float)
ESTIMATORS: Mapping[str, Mapping[str, tuple[type | tuple[type, ...], float, float]]] = (
    MappingProxyType(
        {
            "hist_gradient_boosting": MappingProxyType(
                {
                    "max_iter": (int, 1, 10_000),
                    "learning_rate": (_Num, 1e-6, 10.0),
                    "max_leaf_nodes": (int, 2, 4096),
                    "max_depth": (int, 1, 64),
                    "min_samples_leaf": (int, 1, 1_000_000),
                    "l2_regularization": (_Num, 0.0, 1e6),
                    "max_bins": (int, 2, 255),
                    "max_features": (_Num, 1e-6, 1.0),
                }
            ),
            "logistic_regression": MappingProxyType(
                {
                    "C": (_Num, 1e-9, 1e9),
                    "max_iter": (int, 1, 100_000),
                    "tol": (_Num, 1e-12, 1.0),
                }
            ),
        }
    )
)


@dataclass(frozen=True)
class FeatureSpec:
    """One model input: a column name and whether it is numeric or categorical."""

    name: str
    kind: str  # "numeric" | "categorical"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind}


@dataclass(frozen=True)
class LabelSpec:
    """The binary target column and which of its values is the positive class."""

    column: str
    positive: int = 1
    negative: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"column": self.column, "positive": self.positive, "negative": self.negative}


@dataclass(frozen=True)
class SplitSpec:
    """Which rows are held out: a seeded hash of an integer key column.

    A row is in the holdout when the top 53 bits of splitmix64(key XOR salt),
    divided by 2**53, are below ``holdout_fraction``. The assignment depends on the row's key only, not
    on row order or file layout, so a row never moves between train and
    holdout when a dataset grows.
    """

    key: str
    holdout_fraction: float
    salt: int

    def to_dict(self) -> dict[str, object]:
        return {
            "method": "key_hash",
            "key": self.key,
            "holdout_fraction": self.holdout_fraction,
            "salt": self.salt,
        }


@dataclass(frozen=True)
class TrainingRecipe:
    """A whole training recipe, validated."""

    name: str
    label: LabelSpec
    features: tuple[FeatureSpec, ...]
    split: SplitSpec | None
    estimator: str
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    description: str = ""

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "recipe_version": RECIPE_VERSION,
            "name": self.name,
            "description": self.description,
            "label": self.label.to_dict(),
            "features": [f.to_dict() for f in self.features],
            "estimator": {"type": self.estimator, "params": dict(sorted(self.params.items()))},
            "seed": self.seed,
        }
        if self.split is not None:
            out["split"] = self.split.to_dict()
        return out

    @classmethod
    def from_dict(cls, raw: object, *, where: str) -> TrainingRecipe:
        obj = _obj(raw, where, "recipe")
        _keys(
            obj,
            where,
            "recipe",
            required={"recipe_version", "name", "label", "features", "estimator", "seed"},
            optional={"description", "split"},
        )
        version = obj["recipe_version"]
        if type(version) is not int or version != RECIPE_VERSION:
            raise RecipeError(
                "unknown recipe version",
                where=where,
                expected=RECIPE_VERSION,
                found=repr(obj["recipe_version"]),
            )
        name = _str(obj["name"], where, "name")
        if not _NAME_RE.fullmatch(name):
            raise RecipeError(
                "name must match [A-Za-z_][A-Za-z0-9_.-]*", where=f"{where}: name", found=repr(name)
            )
        description = _str(obj.get("description", ""), where, "description", allow_empty=True)

        lab = _obj(obj["label"], where, "label")
        _keys(lab, where, "label", required={"column"}, optional={"positive", "negative"})
        label = LabelSpec(
            column=_str(lab["column"], where, "label.column"),
            positive=_int(lab.get("positive", 1), where, "label.positive"),
            negative=_int(lab.get("negative", 0), where, "label.negative"),
        )
        if label.positive == label.negative:
            raise RecipeError(
                "label.positive and label.negative must differ", where=where, found=label.positive
            )

        feats = obj["features"]
        if not isinstance(feats, list) or not feats:
            raise RecipeError("'features' must be a non-empty list", where=f"{where}: features")
        features = []
        seen: set[str] = set()
        for i, f in enumerate(feats):
            fo = _obj(f, where, f"features[{i}]")
            _keys(fo, where, f"features[{i}]", required={"name", "kind"})
            fname = _str(fo["name"], where, f"features[{i}].name")
            kind = fo["kind"]
            if kind not in ("numeric", "categorical"):
                raise RecipeError(
                    f"features[{i}].kind",
                    where=where,
                    expected="'numeric' or 'categorical'",
                    found=repr(kind),
                )
            if fname in seen:
                raise RecipeError(f"feature {fname!r} is listed twice", where=where)
            if fname == label.column:
                raise RecipeError(f"feature {fname!r} is the label column", where=where)
            seen.add(fname)
            features.append(FeatureSpec(fname, kind))

        split = _parse_split(obj, seen, label, where) if "split" in obj else None

        est = _obj(obj["estimator"], where, "estimator")
        est = _obj(obj["estimator"], where, "estimator")
        _keys(est, where, "estimator", required={"type"}, optional={"params"})
        etype = est["type"]
        if etype not in ESTIMATORS:
            raise RecipeError(
                "estimator.type",
                where=where,
                expected=" or ".join(sorted(ESTIMATORS)),
                found=repr(etype),
            )
        params = _obj(est.get("params", {}), where, "estimator.params")
        allowed = ESTIMATORS[etype]
        for key, value in params.items():
            if key not in allowed:
                raise RecipeError(
                    f"estimator.params.{key} is not a parameter of {etype}",
                    where=where,
                    expected=", ".join(sorted(allowed)),
                )
            typ, lo, hi = allowed[key]
            right_type = isinstance(value, typ) and not isinstance(value, bool)
            if not right_type or not lo <= float(cast(Any, value)) <= hi:
                kind = "an integer" if typ is int else "a number"
                raise RecipeError(
                    f"estimator.params.{key}",
                    where=where,
                    expected=f"{kind} in [{lo}, {hi}]",
                    found=repr(value),
                )
        seed = _int(obj["seed"], where, "seed", lo=0, hi=2**32 - 1)
        return cls(
            name=name,
            label=label,
            features=tuple(features),
            split=split,
            estimator=etype,
            params=MappingProxyType(dict(params)),
            seed=seed,
            description=description,
        )


def _parse_split(obj: dict[str, Any], seen: set[str], label: LabelSpec, where: str) -> SplitSpec:
    sp = _obj(obj["split"], where, "split")
    _keys(sp, where, "split", required={"method", "key", "holdout_fraction", "salt"})
    if sp["method"] != "key_hash":
        raise RecipeError(
            "split.method", where=where, expected="'key_hash'", found=repr(sp["method"])
        )
    frac = sp["holdout_fraction"]
    if not isinstance(frac, _Num) or isinstance(frac, bool) or not 0.0 < float(frac) < 1.0:
        raise RecipeError(
            "split.holdout_fraction",
            where=where,
            expected="a number in (0, 1)",
            found=repr(frac),
        )
    split = SplitSpec(
        key=_str(sp["key"], where, "split.key"),
        holdout_fraction=float(frac),
        salt=_int(sp["salt"], where, "split.salt", lo=0, hi=2**64 - 1),
    )
    if split.key in seen or split.key == label.column:
        raise RecipeError(
            f"split.key {split.key!r} must not be a feature or the label", where=where
        )
    return split


def _obj(value: object, where: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecipeError(f"'{key}' must be an object", where=where, found=type(value).__name__)
    return value


def _keys(
    obj: Mapping[str, object],
    where: str,
    ctx: str,
    *,
    required: set[str],
    optional: frozenset[str] | set[str] = frozenset(),
) -> None:
    for key in sorted(required):
        if key not in obj:
            raise RecipeError(f"'{ctx}' lacks {key!r}", where=where)
    unknown = sorted(set(obj) - required - set(optional))
    if unknown:
        raise RecipeError(
            f"unknown key {unknown[0]!r} in '{ctx}'",
            where=where,
            expected=", ".join(sorted(required | set(optional))),
        )


def _str(value: object, where: str, key: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty):
        raise RecipeError(f"'{key}' must be a non-empty string", where=where, found=repr(value))
    return value


def _int(value: object, where: str, key: str, *, lo: int = -(2**63), hi: int = 2**63 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RecipeError(
            f"'{key}'", where=where, expected=f"an integer in [{lo}, {hi}]", found=repr(value)
        )
    return value


def load_recipe(path: str | os.PathLike[str]) -> TrainingRecipe:
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("recipe not found", where=where) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecipeError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", where=where
        ) from None
    return TrainingRecipe.from_dict(raw, where=where)
