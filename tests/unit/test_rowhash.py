"""Row hashes (retrain.row-hash.v1): equal rows hash equal, any changed cell changes the hash.

The hash finds duplicate rows and rows a holdout shares with its training
data, so it must not depend on how a table is chunked or ordered, must
treat -0.0 as 0.0 and every NaN as one value, and must tell a null from 0 and
"". The algorithm is documented in docs/validation.md, with a reference
implementation that these tests hold to the vectorised one.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from retrain.datagen import GeneratorSpec, generate_table
from retrain.rowhash import ROW_HASH_VERSION, row_hashes

DOC = Path(__file__).resolve().parents[2] / "docs" / "validation.md"


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return generate_table(GeneratorSpec(rows=3000, seed=5))


def _nan_with_bits(bits: int) -> float:
    value: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    assert value != value
    return value


def _one(column: pa.Array, name: str = "x") -> int:
    return int(row_hashes(pa.table({name: column}))[0])


def test_version_names_the_algorithm() -> None:
    assert ROW_HASH_VERSION == "retrain.row-hash.v1"


def test_every_row_of_a_generated_table_hashes_differently(table: pa.Table) -> None:
    hashes = row_hashes(table)

    assert hashes.dtype == np.uint64
    assert hashes.shape == (table.num_rows,)
    assert np.unique(hashes).size == table.num_rows


def test_hashes_do_not_depend_on_chunking(table: pa.Table) -> None:
    rechunked = pa.Table.from_batches(table.to_batches(max_chunksize=777))
    assert rechunked.column("region").num_chunks > 1

    assert np.array_equal(row_hashes(rechunked), row_hashes(table))


def test_hashes_do_not_depend_on_chunks_with_different_string_dictionaries() -> None:
    whole = pa.table({"s": ["b", "a", "c", "a", "d"]})
    # Chunks that see their strings in different orders and sets.
    chunked = pa.Table.from_batches(
        [
            pa.record_batch({"s": ["b", "a"]}),
            pa.record_batch({"s": ["c"]}),
            pa.record_batch({"s": ["a", "d"]}),
        ]
    )

    assert np.array_equal(row_hashes(chunked), row_hashes(whole))


def test_hashes_follow_the_rows_not_their_order(table: pa.Table) -> None:
    order = np.random.default_rng(0).permutation(table.num_rows)

    assert np.array_equal(row_hashes(table.take(order)), row_hashes(table)[order])


def test_negative_zero_hashes_as_zero() -> None:
    assert _one(pa.array([-0.0])) == _one(pa.array([0.0]))


@pytest.mark.parametrize(
    "bits",
    [0x7FF8000000000001, 0xFFF8000000000000, 0x7FF0000000000001, 0xFFFFFFFFFFFFFFFF],
    ids=["quiet-payload", "negative-quiet", "signalling", "all-ones"],
)
def test_every_nan_payload_hashes_as_the_one_nan(bits: int) -> None:
    assert _one(pa.array([_nan_with_bits(bits)])) == _one(pa.array([float("nan")]))


def test_float32_nan_and_negative_zero_hash_as_float64_ones() -> None:
    values = np.array([-0.0, np.nan], dtype=np.float32)

    assert np.array_equal(
        row_hashes(pa.table({"x": pa.array(values)})),
        row_hashes(pa.table({"x": pa.array([0.0, np.nan])})),
    )


def _changed(table: pa.Table, column: str, row: int) -> pa.Table:
    """``table`` with the one cell (row, column) set to another value."""
    values = table.column(column).to_pylist()
    old = values[row]
    if old is None:
        values[row] = {pa.string(): "x", pa.float64(): 1.5}.get(table.schema.field(column).type, 1)
    elif isinstance(old, str):
        values[row] = old + "x"
    else:
        values[row] = old + 1
    i = table.schema.get_field_index(column)
    return table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))


def test_changing_any_single_cell_changes_that_rows_hash_only(table: pa.Table) -> None:
    small = table.slice(0, 40)
    before = row_hashes(small)

    for column in small.column_names:
        after = row_hashes(_changed(small, column, 7))
        assert after[7] != before[7], column
        assert np.array_equal(np.delete(after, 7), np.delete(before, 7)), column


def test_setting_a_cell_to_null_changes_the_hash(table: pa.Table) -> None:
    small = table.slice(0, 10)
    values = small.column("income").to_pylist()
    assert values[3] is not None
    values[3] = None
    i = small.schema.get_field_index("income")

    after = row_hashes(small.set_column(i, small.schema.field(i), pa.array(values, pa.float64())))

    assert after[3] != row_hashes(small)[3]


def test_column_order_matters(table: pa.Table) -> None:
    reordered = table.select(list(reversed(table.column_names)))

    assert not np.any(row_hashes(reordered) == row_hashes(table))


def test_column_names_matter(table: pa.Table) -> None:
    renamed = table.rename_columns(["id" if n == "customer_id" else n for n in table.column_names])

    assert not np.any(row_hashes(renamed) == row_hashes(table))


def test_a_same_valued_column_added_changes_every_hash() -> None:
    base = pa.table({"a": [1, 2]})
    wider = pa.table({"a": [1, 2], "b": pa.nulls(2, pa.int64())})

    assert not np.any(row_hashes(wider) == row_hashes(base))


@pytest.mark.parametrize(
    ("null_type", "value"),
    [(pa.int64(), 0), (pa.float64(), 0.0), (pa.string(), ""), (pa.bool_(), False)],
    ids=["int-0", "float-0", "empty-string", "false"],
)
def test_null_differs_from_zero_and_empty(null_type: pa.DataType, value: Any) -> None:
    assert _one(pa.array([None], null_type)) != _one(pa.array([value], null_type))


def test_dictionary_column_hashes_as_its_values() -> None:
    plain = pa.array(["north", None, "south", "north"])

    assert np.array_equal(
        row_hashes(pa.table({"r": plain.dictionary_encode()})), row_hashes(pa.table({"r": plain}))
    )


def test_empty_table_has_no_hashes() -> None:
    hashes = row_hashes(pa.table({"a": pa.array([], pa.int64())}))

    assert hashes.dtype == np.uint64
    assert hashes.size == 0


def _documented_row_hash() -> Any:
    text = DOC.read_text(encoding="utf-8")
    namespace: dict[str, Any] = {"__name__": "docs_validation"}
    for block in re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        exec(compile(block, "docs/validation.md", "exec"), namespace)
    return namespace["row_hash"]


def test_documented_row_hash_equals_row_hashes_on_generated_rows(table: pa.Table) -> None:
    row_hash = _documented_row_hash()
    small = table.slice(0, 200)

    assert [row_hash(row) for row in small.to_pylist()] == row_hashes(small).tolist()


def test_documented_row_hash_equals_row_hashes_on_special_values() -> None:
    row_hash = _documented_row_hash()
    special = pa.table(
        {
            "f": [-0.0, _nan_with_bits(0xFFF8000000000000), None, float("inf"), 1e-300],
            "i": [-1, 0, None, 2**62, -(2**63)],
            "b": [True, False, None, True, False],
            "s": ["", "é", None, "naïve 🙂", "a\x00b"],
        }
    )

    assert [row_hash(row) for row in special.to_pylist()] == row_hashes(special).tolist()
