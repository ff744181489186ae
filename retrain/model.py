"""A trained model as plain data: encoder parameters, estimator arrays, lineage.

A ``Model`` holds no estimator object. Its estimator is a name and a few
numeric arrays (tree nodes, or coefficients), from which ``predict_proba``
computes exactly what the fitted scikit-learn estimator computes, in the
same floating-point order. That is what makes the model file deterministic
(no pickle, no object ids) and safe to load from an untrusted source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.special import expit

from retrain.errors import InputError
from retrain.features import Preprocessor
from retrain.recipe import LabelSpec

__all__ = ["ESTIMATOR_ARRAYS", "Model"]

# The arrays each estimator kind carries, with their dtypes.
ESTIMATOR_ARRAYS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "hist_gradient_boosting": MappingProxyType(
            {
                "baseline": "<f8",
                "tree_offsets": "<i8",
                "node_feature": "<i8",
                "node_threshold": "<f8",
                "node_missing_left": "|u1",
                "node_left": "<u4",
                "node_right": "<u4",
                "node_is_leaf": "|u1",
                "node_value": "<f8",
            }
        ),
        "logistic_regression": MappingProxyType({"coef": "<f8", "intercept": "<f8"}),
    }
)


@dataclass(frozen=True)
class Model:
    """A trained binary classifier that predicts P(label == positive)."""

    estimator: str
    label: LabelSpec
    preprocessor: Preprocessor
    arrays: Mapping[str, np.ndarray]
    lineage: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        expected = ESTIMATOR_ARRAYS.get(self.estimator)
        if expected is None:
            raise InputError(
                "unknown estimator in model",
                expected=" or ".join(ESTIMATOR_ARRAYS),
                found=self.estimator,
            )
        if set(self.arrays) != set(expected):
            raise InputError(
                f"{self.estimator} model arrays",
                expected=sorted(expected),
                found=sorted(self.arrays),
            )
        frozen = {}
        for name, dtype in expected.items():
            arr = np.ascontiguousarray(self.arrays[name], dtype=np.dtype(dtype))
            arr.setflags(write=False)
            frozen[name] = arr
        object.__setattr__(self, "arrays", MappingProxyType(frozen))
        object.__setattr__(self, "lineage", MappingProxyType(dict(self.lineage)))
        self._check_shapes()

    def _check_shapes(self) -> None:
        a = self.arrays
        width = len(self.preprocessor.output_columns())
        if self.estimator == "logistic_regression":
            if a["coef"].shape != (1, width) or a["intercept"].shape != (1,):
                raise InputError(
                    "logistic_regression arrays",
                    expected=f"coef (1, {width}) and intercept (1,)",
                    found=f"{a['coef'].shape}, {a['intercept'].shape}",
                )
            return
        offsets = a["tree_offsets"]
        n_nodes = a["node_value"].shape[0]
        if a["baseline"].shape != (1,) or offsets.ndim != 1 or offsets.size < 1:
            raise InputError(
                "hist_gradient_boosting arrays", expected="baseline (1,) and tree_offsets (T+1,)"
            )
        if offsets[0] != 0 or offsets[-1] != n_nodes or np.any(np.diff(offsets) <= 0):
            raise InputError(
                "tree_offsets",
                expected=f"increasing from 0 to {n_nodes}",
                found=offsets[:5].tolist(),
            )
        for name in ESTIMATOR_ARRAYS[self.estimator]:
            if name.startswith("node_") and a[name].shape != (n_nodes,):
                raise InputError(
                    f"array {name}", expected=f"shape ({n_nodes},)", found=a[name].shape
                )
        internal = a["node_is_leaf"] == 0
        feat = a["node_feature"][internal]
        if feat.size and (feat.min() < 0 or feat.max() >= width):
            raise InputError(
                "node_feature", expected=f"in [0, {width})", found=f"[{feat.min()}, {feat.max()}]"
            )
        for t in range(offsets.size - 1):
            size = offsets[t + 1] - offsets[t]
            for child in ("node_left", "node_right"):
                c = a[child][offsets[t] : offsets[t + 1]][internal[offsets[t] : offsets[t + 1]]]
                if c.size and c.max() >= size:
                    raise InputError(f"tree {t} {child}", expected=f"< {size}", found=int(c.max()))

    @property
    def n_trees(self) -> int:
        return (
            int(self.arrays["tree_offsets"].size - 1)
            if self.estimator == "hist_gradient_boosting"
            else 0
        )

    def design_matrix(self, table: pa.Table, *, where: str = "dataset") -> np.ndarray:
        return self.preprocessor.transform(table, where=where)

    def predict_proba(self, table: pa.Table, *, where: str = "dataset") -> np.ndarray:
        """P(positive) for each row of ``table``, float64."""
        return self.predict_proba_matrix(self.design_matrix(table, where=where))

    def predict_proba_matrix(self, x: np.ndarray) -> np.ndarray:
        if self.estimator == "logistic_regression":
            # The same operations, shapes and order as LogisticRegression.predict_proba.
            scores = x @ self.arrays["coef"].T + self.arrays["intercept"]
            return np.asarray(expit(scores.ravel()), dtype=np.float64)
        return np.asarray(expit(self._raw_tree_scores(x)), dtype=np.float64)

    def _raw_tree_scores(self, x: np.ndarray) -> np.ndarray:
        # scikit-learn's compiled predictor walks each tree; the sum runs in
        # the same order as HistGradientBoostingClassifier._raw_predict.
        from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data
        from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

        a = self.arrays
        x = np.ascontiguousarray(x, dtype=np.float64)
        raw = np.zeros(x.shape[0], dtype=np.float64)
        raw += a["baseline"][0]
        no_bitsets = np.zeros((0, 8), dtype=np.uint32)
        f_idx_map = np.zeros(x.shape[1], dtype=np.uint32)
        out = np.empty(x.shape[0], dtype=np.float64)
        offsets = a["tree_offsets"]
        for t in range(offsets.size - 1):
            lo, hi = int(offsets[t]), int(offsets[t + 1])
            nodes = np.zeros(hi - lo, dtype=PREDICTOR_RECORD_DTYPE)
            nodes["value"] = a["node_value"][lo:hi]
            nodes["feature_idx"] = a["node_feature"][lo:hi]
            nodes["num_threshold"] = a["node_threshold"][lo:hi]
            nodes["missing_go_to_left"] = a["node_missing_left"][lo:hi]
            nodes["left"] = a["node_left"][lo:hi]
            nodes["right"] = a["node_right"][lo:hi]
            nodes["is_leaf"] = a["node_is_leaf"][lo:hi]
            _predict_from_raw_data(nodes, x, no_bitsets, no_bitsets, f_idx_map, 1, out)
            raw += out
        return raw

    def metadata(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator,
            "label": self.label.to_dict(),
            "preprocessor": self.preprocessor.to_dict(),
            "input_columns": self.preprocessor.output_columns(),
            "lineage": dict(self.lineage),
        }
