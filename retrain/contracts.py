"""Model contracts: what goes in and what comes out, checked on real data.

Before a model is evaluated, its declared input schema (feature names,
kinds, order) must be the recipe's feature spec; the evaluation data must
hold every feature with a type the model encodes; and on real rows the
model must return one float64 probability per row, within [0, 1] where
finite, for the recipe's label classes. A violation is not a bad score but
a broken model or pipeline: it stops the build with one line, before any
metric is computed. Non-finite predictions are left to the sanity gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from retrain.errors import CheckFailed, RetrainError
from retrain.features import check_feature_columns
from retrain.model import Model
from retrain.recipe import TrainingRecipe

__all__ = ["ContractCheck", "ContractViolation", "check_contracts"]

_SAMPLE_ROWS = 1000


class ContractViolation(CheckFailed):
    """The model or the evaluation data breaks the model's contract."""


@dataclass(frozen=True)
class ContractCheck:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def check_contracts(
    model: Model, recipe: TrainingRecipe, table: pa.Table, *, where: str
) -> list[ContractCheck]:
    """Every contract check, all passed; raises ContractViolation at the first broken one."""
    checks: list[ContractCheck] = []
    declared = [(f.name, f.kind) for f in model.preprocessor.features]
    wanted = [(f.name, f.kind) for f in recipe.features]
    if declared != wanted:
        first = next(
            (i for i, (a, b) in enumerate(zip(declared, wanted, strict=False)) if a != b),
            min(len(declared), len(wanted)),
        )
        raise ContractViolation(
            "model input schema differs from the recipe's feature spec",
            where=where,
            expected=f"feature {first}: {wanted[first] if first < len(wanted) else 'none'}",
            found=f"{declared[first] if first < len(declared) else 'none'}",
        )
    checks.append(
        ContractCheck(
            "input-features",
            True,
            f"{len(declared)} features, names, kinds and order as the recipe",
        )
    )
    if (model.label.positive, model.label.negative) != (
        recipe.label.positive,
        recipe.label.negative,
    ):
        raise ContractViolation(
            "model classes differ from the recipe's label",
            where=where,
            expected=f"negative {recipe.label.negative}, positive {recipe.label.positive}",
            found=f"negative {model.label.negative}, positive {model.label.positive}",
        )
    checks.append(
        ContractCheck(
            "output-classes", True, f"binary: {recipe.label.negative} / {recipe.label.positive}"
        )
    )
    try:
        check_feature_columns(table, recipe.features, where=where)
    except RetrainError as exc:
        raise ContractViolation(
            exc.what, where=exc.where, expected=exc.expected, found=exc.found
        ) from None
    checks.append(
        ContractCheck("input-columns", True, "every feature present with an encodable type")
    )
    sample = table.slice(0, min(_SAMPLE_ROWS, table.num_rows))
    x = model.design_matrix(sample, where=where)
    width = len(model.preprocessor.output_columns())
    if x.shape != (sample.num_rows, width) or x.dtype != np.float64:
        raise ContractViolation(
            "design matrix",
            where=where,
            expected=f"float64 ({sample.num_rows}, {width})",
            found=f"{x.dtype} {x.shape}",
        )
    p = model.predict_proba_matrix(x)
    if p.shape != (sample.num_rows,) or p.dtype != np.float64:
        raise ContractViolation(
            "model output shape",
            where=where,
            expected=f"float64 ({sample.num_rows},)",
            found=f"{p.dtype} {p.shape}",
        )
    checks.append(
        ContractCheck(
            "output-shape",
            True,
            f"one float64 probability per row ({sample.num_rows} rows checked)",
        )
    )
    finite = p[np.isfinite(p)]
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
        raise ContractViolation(
            "model output range",
            where=where,
            expected="probabilities in [0, 1]",
            found=f"[{finite.min()!r}, {finite.max()!r}]",
        )
    checks.append(ContractCheck("output-range", True, "finite probabilities within [0, 1]"))
    return checks
