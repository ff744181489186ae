"""The seeded data generator: same spec, same bytes; drift moves the data."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from retrain.datagen import (
    BLOCK_ROWS,
    LABEL,
    SCHEMA,
    GeneratorSpec,
    generate_table,
    read_origin,
    write_dataset,
)
from retrain.digest import sha256_file
from retrain.errors import InputError


def _read(paths: list[Path]) -> pa.Table:
    tables = [pq.read_table(p) for p in paths]
    return pa.concat_tables(tables).replace_schema_metadata(None).combine_chunks()


def test_same_spec_writes_identical_bytes(tmp_path: Path) -> None:
    spec = GeneratorSpec(rows=2000, seed=5)

    first = write_dataset(spec, tmp_path / "a", files=2)
    second = write_dataset(spec, tmp_path / "b", files=2)

    assert [sha256_file(p) for p in first] == [sha256_file(p) for p in second]


def test_different_seeds_generate_different_rows() -> None:
    a = generate_table(GeneratorSpec(rows=500, seed=1))
    b = generate_table(GeneratorSpec(rows=500, seed=2))

    assert not a.equals(b)


def test_rows_do_not_depend_on_the_number_of_files(tmp_path: Path) -> None:
    # More rows than one block, so file boundaries and block boundaries differ.
    spec = GeneratorSpec(rows=BLOCK_ROWS + 1500, seed=9)

    one = _read(write_dataset(spec, tmp_path / "one", files=1))
    three = _read(write_dataset(spec, tmp_path / "three", files=3))

    assert one.num_rows == spec.rows
    assert one.equals(three)


def test_written_rows_equal_the_generated_table(tmp_path: Path) -> None:
    spec = GeneratorSpec(rows=1200, seed=4)

    written = _read(write_dataset(spec, tmp_path / "d", files=3))

    assert written.equals(generate_table(spec).combine_chunks())


def test_write_dataset_names_files_part_nnnnn_and_splits_rows_evenly(tmp_path: Path) -> None:
    paths = write_dataset(GeneratorSpec(rows=1000, seed=1), tmp_path / "d", files=3)

    assert [p.name for p in paths] == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert [pq.ParquetFile(p).metadata.num_rows for p in paths] == [333, 334, 333]


def test_generated_table_has_the_declared_schema() -> None:
    assert generate_table(GeneratorSpec(rows=10, seed=1)).schema.equals(SCHEMA)


def test_customer_ids_start_at_id_offset() -> None:
    table = generate_table(GeneratorSpec(rows=5, seed=1, id_offset=1000))

    assert table.column("customer_id").to_pylist() == [1000, 1001, 1002, 1003, 1004]


def test_drift_raises_mean_utilization() -> None:
    base = generate_table(GeneratorSpec(rows=20_000, seed=3))
    drifted = generate_table(GeneratorSpec(rows=20_000, seed=3, drift=2.0))

    before = pc.mean(base.column("utilization")).as_py()
    after = pc.mean(drifted.column("utilization")).as_py()

    assert after - before > 0.05


def test_drift_raises_the_label_rate() -> None:
    base = generate_table(GeneratorSpec(rows=20_000, seed=3))
    drifted = generate_table(GeneratorSpec(rows=20_000, seed=3, drift=2.0))

    before = pc.mean(base.column(LABEL)).as_py()
    after = pc.mean(drifted.column(LABEL)).as_py()

    assert after - before > 0.03


def test_drift_shifts_the_region_mix_toward_coastal() -> None:
    def coastal_share(table: pa.Table) -> float:
        return pc.mean(pc.equal(table.column("region"), "coastal")).as_py()

    base = generate_table(GeneratorSpec(rows=20_000, seed=3))
    drifted = generate_table(GeneratorSpec(rows=20_000, seed=3, drift=2.0))

    assert coastal_share(drifted) - coastal_share(base) > 0.03


@pytest.mark.parametrize("column", ["income", "utilization", "tenure_months", "region"])
def test_generated_data_has_missing_values_in(column: str) -> None:
    table = generate_table(GeneratorSpec(rows=5000, seed=1))

    assert table.column(column).null_count > 0


def test_generated_data_has_no_missing_values_in_non_nullable_columns() -> None:
    table = generate_table(GeneratorSpec(rows=5000, seed=1))

    for field in SCHEMA:
        if not field.nullable:
            assert table.column(field.name).null_count == 0, field.name


def test_label_has_both_classes() -> None:
    labels = set(generate_table(GeneratorSpec(rows=2000, seed=1)).column(LABEL).to_pylist())

    assert labels == {0, 1}


def test_write_dataset_records_its_spec_in_the_files(tmp_path: Path) -> None:
    spec = GeneratorSpec(rows=100, seed=8, drift=0.5, id_offset=7)
    write_dataset(spec, tmp_path / "d")

    assert read_origin(tmp_path / "d") == spec.to_dict()


def test_write_dataset_refuses_non_empty_output_directory(tmp_path: Path) -> None:
    out = tmp_path / "d"
    out.mkdir()
    (out / "keep.txt").write_text("mine")

    with pytest.raises(InputError) as info:
        write_dataset(GeneratorSpec(rows=10, seed=1), out)

    assert info.value.diagnostics() == f"{out}: output directory exists and is not empty"
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_write_dataset_fills_an_existing_empty_directory(tmp_path: Path) -> None:
    out = tmp_path / "d"
    out.mkdir()

    paths = write_dataset(GeneratorSpec(rows=10, seed=1), out)

    assert [p.parent for p in paths] == [out]


def test_write_dataset_refuses_zero_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="files must be positive"):
        write_dataset(GeneratorSpec(rows=10, seed=1), tmp_path / "d", files=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rows": 0, "seed": 1}, "rows must be positive"),
        ({"rows": -5, "seed": 1}, "rows must be positive"),
        ({"rows": 10, "seed": -1}, "seed must be in"),
        ({"rows": 10, "seed": 2**63}, "seed must be in"),
        ({"rows": 10, "seed": 1, "drift": 5.5}, "drift must be a number in"),
        ({"rows": 10, "seed": 1, "drift": math.nan}, "drift must be a number in"),
        ({"rows": 10, "seed": 1, "id_offset": -1}, "id_offset must be non-negative"),
    ],
    ids=[
        "zero_rows",
        "negative_rows",
        "negative_seed",
        "seed_too_big",
        "drift_too_big",
        "drift_nan",
        "negative_id_offset",
    ],
)
def test_generator_spec_refuses_invalid_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        GeneratorSpec(**kwargs)  # type: ignore[arg-type]
