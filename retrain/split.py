"""Deterministic train/holdout assignment by a hash of each row's key.

splitmix64 is a bijective 64-bit mixer: cheap, vectorised in numpy, and the
same on every machine. A row's side depends only on its key and the salt, so
a row stays on its side when a dataset is re-ordered, re-split into files or
grown with new rows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from retrain.errors import DataError
from retrain.recipe import SplitSpec

__all__ = ["holdout_mask", "splitmix64"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer over a uint64 array (wrapping arithmetic)."""
    z = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z += _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def holdout_mask(table: pa.Table, split: SplitSpec, *, where: str = "dataset") -> np.ndarray:
    """Boolean array, True for rows that belong to the holdout."""
    if split.key not in table.column_names:
        raise DataError(
            f"split key column {split.key!r} not in dataset",
            where=where,
            expected=f"a column named {split.key!r}",
            found=", ".join(table.column_names),
        )
    col = table.column(split.key)
    if not pa.types.is_integer(col.type):
        raise DataError(
            f"split key column {split.key!r} must be integer",
            where=where,
            expected="an integer column",
            found=str(col.type),
        )
    if col.null_count:
        raise DataError(
            f"split key column {split.key!r} has {col.null_count} null values", where=where
        )
    keys = col.to_numpy().astype(np.int64).view(np.uint64)
    mixed = splitmix64(keys ^ np.uint64(split.salt))
    unit = (mixed >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return unit < split.holdout_fraction
