"""The train/holdout split: a seeded hash of each row's key, nothing else."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from retrain.errors import DataError
from retrain.recipe import SplitSpec
from retrain.split import holdout_mask, splitmix64

SPLIT = SplitSpec(key="customer_id", holdout_fraction=0.2, salt=1126)


def _keys(n: int, start: int = 0) -> pa.Table:
    return pa.table({"customer_id": pa.array(np.arange(start, start + n, dtype=np.int64))})


def _held_out(table: pa.Table, split: SplitSpec = SPLIT) -> set[int]:
    mask = holdout_mask(table, split)
    return set(np.asarray(table.column("customer_id"))[mask].tolist())


def test_splitmix64_matches_the_reference_output() -> None:
    # First outputs of the reference splitmix64 generator seeded with 0 and 1.
    out = splitmix64(np.array([0, 0x9E3779B97F4A7C15], dtype=np.uint64))

    assert out.tolist() == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4]


def test_holdout_mask_is_deterministic() -> None:
    table = _keys(10_000)

    assert np.array_equal(holdout_mask(table, SPLIT), holdout_mask(table, SPLIT))


def test_holdout_membership_does_not_depend_on_row_order() -> None:
    table = _keys(10_000)
    shuffled = table.take(np.random.default_rng(0).permutation(table.num_rows))

    assert _held_out(shuffled) == _held_out(table)


def test_holdout_membership_does_not_change_when_the_dataset_grows() -> None:
    held = _held_out(_keys(10_000))
    grown = _held_out(_keys(15_000))

    assert {k for k in grown if k < 10_000} == held


def test_holdout_membership_does_not_depend_on_other_columns() -> None:
    table = _keys(5_000)
    wider = table.append_column("noise", pa.array(np.random.default_rng(1).random(5_000)))

    assert _held_out(wider) == _held_out(table)


def test_holdout_membership_changes_with_the_salt() -> None:
    table = _keys(10_000)
    resalted = SplitSpec(key="customer_id", holdout_fraction=0.2, salt=1127)

    assert _held_out(table, resalted) != _held_out(table)


def test_holdout_fraction_is_close_to_requested_on_100k_keys() -> None:
    mask = holdout_mask(_keys(100_000), SPLIT)

    assert abs(mask.mean() - 0.2) < 0.005


def test_holdout_mask_accepts_keys_spread_over_several_chunks() -> None:
    chunked = pa.concat_tables([_keys(3_000), _keys(3_000, start=3_000)])

    assert np.array_equal(
        holdout_mask(chunked, SPLIT), holdout_mask(chunked.combine_chunks(), SPLIT)
    )


def test_holdout_mask_accepts_negative_and_unsigned_keys() -> None:
    signed = pa.table({"customer_id": pa.array([-1, -(2**63), 2**63 - 1], type=pa.int64())})
    unsigned = pa.table({"customer_id": pa.array([2**64 - 1, 0], type=pa.uint64())})

    assert holdout_mask(signed, SPLIT).shape == (3,)
    assert holdout_mask(unsigned, SPLIT).shape == (2,)


@pytest.mark.parametrize(
    "column",
    [pa.array([1.0, 2.0, 3.0]), pa.array(["a", "b", "c"])],
    ids=["float", "string"],
)
def test_holdout_mask_refuses_non_integer_key_column(column: pa.Array) -> None:
    with pytest.raises(DataError) as info:
        holdout_mask(pa.table({"customer_id": column}), SPLIT, where="train.parquet")

    assert info.value.diagnostics().startswith(
        "train.parquet: split key column 'customer_id' must be integer"
    )
    assert f"found {column.type}" in info.value.diagnostics()


def test_holdout_mask_refuses_null_keys() -> None:
    table = pa.table({"customer_id": pa.array([1, None, 3, None], type=pa.int64())})

    with pytest.raises(DataError, match="split key column 'customer_id' has 2 null values"):
        holdout_mask(table, SPLIT)


def test_holdout_mask_refuses_missing_key_column() -> None:
    table = pa.table({"id": pa.array([1, 2], type=pa.int64())})

    with pytest.raises(DataError, match="split key column 'customer_id' not in dataset"):
        holdout_mask(table, SPLIT)
