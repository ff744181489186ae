"""Data quality profile of a dataset: what each column holds.

The profile goes into the dataset attestation, so an auditor sees what the
model was trained on without the data: per column its type, null count and
rate, and for numeric columns min/max/mean, for string columns the number of
distinct values. Pure functions of an Arrow table; deterministic (one pass,
fixed order, floats as Python floats).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["profile_table"]


def _num(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    return float(value)


def profile_table(table: pa.Table) -> dict[str, Any]:
    columns = []
    for field in table.schema:
        col = table.column(field.name)
        if pa.types.is_dictionary(field.type):
            col = col.cast(field.type.value_type)
        entry: dict[str, Any] = {
            "name": field.name,
            "type": str(field.type),
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
