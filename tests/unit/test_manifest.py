"""Data manifests: creating, round-tripping and verifying a good dataset.

Refusals of bad data and bad manifests live in test_manifest_refusals.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from retrain.datagen import SCHEMA, read_origin
from retrain.digest import dataset_digest
from retrain.errors import InputError, PathEscapeError
from retrain.manifest import (
    MANIFEST_VERSION,
    ManifestEntry,
    create_manifest,
    load_manifest,
    sandbox_containment,
    verify_dataset,
    verify_directory,
)
from retrain.tabular import fields_from_arrow
from tests.unit.support import DATASET_FILES, DATASET_SPEC, Dataset


def test_create_manifest_lists_every_file_in_path_order(pristine_dataset: Dataset) -> None:
    paths = [e.path for e in pristine_dataset.manifest.entries]

    assert paths == [f"part-{i:05d}.parquet" for i in range(DATASET_FILES)]


def test_create_manifest_records_each_files_sha256_size_and_rows(pristine_dataset: Dataset) -> None:
    for entry in pristine_dataset.manifest.entries:
        data = (pristine_dataset.root / entry.path).read_bytes()
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
        assert entry.size == len(data)
        assert entry.rows == pq.ParquetFile(pristine_dataset.root / entry.path).metadata.num_rows


def test_create_manifest_totals_rows_and_bytes(pristine_dataset: Dataset) -> None:
    m = pristine_dataset.manifest

    assert m.rows == DATASET_SPEC.rows
    assert m.total_bytes == sum((pristine_dataset.root / e.path).stat().st_size for e in m.entries)


def test_create_manifest_records_the_shared_arrow_schema(pristine_dataset: Dataset) -> None:
    assert pristine_dataset.manifest.fields == fields_from_arrow(SCHEMA)


def test_manifest_dataset_digest_is_over_its_entries(pristine_dataset: Dataset) -> None:
    m = pristine_dataset.manifest

    assert m.dataset_digest == dataset_digest((e.path, e.sha256, e.size, e.rows) for e in m.entries)


def test_manifest_round_trips_through_json_bytes_and_load_manifest(
    pristine_dataset: Dataset, tmp_path: Path
) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(pristine_dataset.manifest.to_json_bytes())

    loaded = load_manifest(path)

    assert loaded == pristine_dataset.manifest
    assert loaded.dataset_digest == pristine_dataset.manifest.dataset_digest
    assert loaded.to_json_bytes() == pristine_dataset.manifest.to_json_bytes()


def test_manifest_json_carries_version_and_ends_with_newline(pristine_dataset: Dataset) -> None:
    data = pristine_dataset.manifest.to_json_bytes()

    assert pristine_dataset.manifest_dict()["manifest_version"] == MANIFEST_VERSION
    assert data.endswith(b"}\n")


def test_create_manifest_is_deterministic(pristine_dataset: Dataset) -> None:
    again = create_manifest(pristine_dataset.root, name="unit-test-data", workers=1)

    assert again.to_json_bytes() == pristine_dataset.manifest.to_json_bytes()


def test_create_manifest_does_not_depend_on_where_the_dataset_lives(dataset: Dataset) -> None:
    moved = create_manifest(dataset.root, name="unit-test-data")

    assert moved.dataset_digest == dataset.manifest.dataset_digest


def test_create_manifest_records_origin_given(pristine_dataset: Dataset) -> None:
    origin = read_origin(pristine_dataset.root)

    m = create_manifest(pristine_dataset.root, name="with-origin", origin=origin)

    assert origin == DATASET_SPEC.to_dict()
    assert m.to_dict()["origin"] == origin


def test_verify_directory_passes_on_untouched_dataset(dataset: Dataset) -> None:
    assert verify_directory(dataset.manifest, dataset.root, manifest_where="m.json") == []


def test_verify_directory_accepts_dataset_in_subdirectories(
    tmp_path: Path, pristine_dataset: Dataset
) -> None:
    root = tmp_path / "nested"
    (root / "day=1").mkdir(parents=True)
    (root / "day=1" / "a.parquet").write_bytes(pristine_dataset.file(0).read_bytes())
    m = create_manifest(root, name="nested")

    assert [e.path for e in m.entries] == ["day=1/a.parquet"]
    assert verify_directory(m, root, manifest_where="m.json") == []


def test_create_manifest_refuses_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="holds no files"):
        create_manifest(tmp_path, name="empty")


# ---------------------------------------------------------------------------
# sandbox_containment: where a file handed to a Bazel action finally resolves


def _entry_for(path: Path, rel: str) -> ManifestEntry:
    data = path.read_bytes()
    return ManifestEntry(path=rel, sha256=hashlib.sha256(data).hexdigest(), size=len(data), rows=1)


def test_sandbox_containment_accepts_symlink_resolving_to_root_slash_path(tmp_path: Path) -> None:
    source = tmp_path / "src" / "data" / "part-00000.parquet"
    source.parent.mkdir(parents=True)
    source.write_bytes(b"PAR1 rows PAR1")
    link = tmp_path / "sandbox" / "execroot" / "data" / "part-00000.parquet"
    link.parent.mkdir(parents=True)
    link.symlink_to(source)

    sandbox_containment("data")(_entry_for(source, "part-00000.parquet"), link)


def test_sandbox_containment_refuses_symlink_to_a_file_elsewhere(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "evil.parquet"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"PAR1 rows PAR1")
    link = tmp_path / "sandbox" / "data" / "part-00000.parquet"
    link.parent.mkdir(parents=True)
    link.symlink_to(elsewhere)

    with pytest.raises(PathEscapeError) as info:
        sandbox_containment("data")(_entry_for(elsewhere, "part-00000.parquet"), link)

    assert "data/part-00000.parquet" in str(info.value)
    assert str(elsewhere) in str(info.value)
    assert info.value.exit_code == 2


def test_sandbox_containment_accepts_symlink_to_its_own_store_blob(tmp_path: Path) -> None:
    content = b"PAR1 rows PAR1"
    sha = hashlib.sha256(content).hexdigest()
    blob = tmp_path / "store" / "sha256" / sha[:2] / sha
    blob.parent.mkdir(parents=True)
    blob.write_bytes(content)
    link = tmp_path / "sandbox" / "data" / "part-00000.parquet"
    link.parent.mkdir(parents=True)
    link.symlink_to(blob)

    sandbox_containment("data")(_entry_for(blob, "part-00000.parquet"), link)


def test_sandbox_containment_refuses_symlink_to_another_files_blob(tmp_path: Path) -> None:
    other = b"other bytes"
    other_sha = hashlib.sha256(other).hexdigest()
    blob = tmp_path / "store" / "sha256" / other_sha[:2] / other_sha
    blob.parent.mkdir(parents=True)
    blob.write_bytes(other)
    link = tmp_path / "sandbox" / "data" / "part-00000.parquet"
    link.parent.mkdir(parents=True)
    link.symlink_to(blob)
    entry = ManifestEntry(path="part-00000.parquet", sha256="e" * 64, size=len(other), rows=1)

    with pytest.raises(PathEscapeError):
        sandbox_containment("data")(entry, link)


def test_verify_dataset_with_sandbox_containment_passes_on_symlinked_inputs(
    pristine_dataset: Dataset, tmp_path: Path
) -> None:
    sandbox = tmp_path / "execroot" / "data"
    sandbox.mkdir(parents=True)
    located = {}
    for entry in pristine_dataset.manifest.entries:
        link = sandbox / entry.path
        link.symlink_to(pristine_dataset.root / entry.path)
        located[entry.path] = link

    failures = verify_dataset(
        pristine_dataset.manifest,
        located,
        containment=sandbox_containment("data"),
        manifest_where="m.json",
    )

    assert failures == []
