"""Arrow schemas as plain data, their fingerprint, and Parquet footers.

A schema is recorded as an ordered list of (name, Arrow type, nullable). Its
fingerprint is the sha256 of that list's canonical JSON, so two files agree on
schema exactly when their fingerprints agree; key-value metadata (pandas
blobs, writer versions) is deliberately left out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from retrain.digest import canonical_json, sha256_bytes
from retrain.errors import InputError

__all__ = [
    "ParquetFooter",
    "SchemaField",
    "describe_schema_difference",
    "fields_from_arrow",
    "read_parquet_footer",
    "schema_fingerprint",
]


@dataclass(frozen=True)
class SchemaField:
    """One column: its name, its Arrow type as Arrow spells it, and nullability."""

    name: str
    type: str
    nullable: bool

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "type": self.type, "nullable": self.nullable}


@dataclass(frozen=True)
class ParquetFooter:
    """What a Parquet file's footer says without reading its data pages."""

    fields: tuple[SchemaField, ...]
    rows: int


def fields_from_arrow(schema: pa.Schema) -> tuple[SchemaField, ...]:
    return tuple(SchemaField(f.name, str(f.type), bool(f.nullable)) for f in schema)


def schema_fingerprint(fields: Sequence[SchemaField]) -> str:
    return "sha256:" + sha256_bytes(canonical_json([f.to_dict() for f in fields]))


def read_parquet_footer(path: str | os.PathLike[str]) -> ParquetFooter:
    """Schema and row count from the footer; a clear error when it is not Parquet."""
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(
            "not a readable Parquet file", where=str(path), hint=str(exc).splitlines()[0]
        ) from None
    try:
        return ParquetFooter(fields_from_arrow(pf.schema_arrow), pf.metadata.num_rows)
    finally:
        pf.close()


def describe_schema_difference(
    expected: Sequence[SchemaField], found: Sequence[SchemaField]
) -> tuple[str, str]:
    """The first difference between two schemas, as (expected, found) phrases."""
    exp_names = [f.name for f in expected]
    found_names = [f.name for f in found]
    if exp_names != found_names:
        missing = [n for n in exp_names if n not in found_names]
        extra = [n for n in found_names if n not in exp_names]
        if missing:
            return f"column {missing[0]!r}", "no such column"
        if extra:
            return "no column " + repr(extra[0]), f"column {extra[0]!r}"
        return "columns " + ",".join(exp_names), "columns " + ",".join(found_names)
    for e, f in zip(expected, found, strict=True):
        if e.type != f.type:
            return f"column {e.name!r} of type {e.type}", f"type {f.type}"
        if e.nullable != f.nullable:
            return (
                f"column {e.name!r} nullable={str(e.nullable).lower()}",
                f"nullable={str(f.nullable).lower()}",
            )
    return "the same schema", "the same schema"
