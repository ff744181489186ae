"""The tamper matrix for data manifests: every bad input, refused with its reason.

Two halves. Bad data against a good manifest: ``verify_directory`` returns
one failure per bad file, naming the file, what the manifest expected and
what was found. Bad manifests: ``load_manifest`` raises one error naming the
manifest file. Exit codes follow retrain.errors: 1 for a check that ran and
failed, 2 for input that cannot be used at all.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retrain.digest import sha256_file
from retrain.errors import (
    CheckFailed,
    DigestMismatch,
    InputError,
    ManifestError,
    PathEscapeError,
    RetrainError,
    SchemaMismatch,
)
from retrain.manifest import (
    DataManifest,
    ManifestEntry,
    create_manifest,
    failures_exit_code,
    load_manifest,
    verify_directory,
)
from tests.unit.support import Dataset

MANIFEST_WHERE = "data_manifests/unit-test-data.json"


def _verify(dataset: Dataset, manifest: DataManifest | None = None) -> list[RetrainError]:
    return verify_directory(
        manifest or dataset.manifest, dataset.root, manifest_where=MANIFEST_WHERE
    )


def _only(failures: list[RetrainError]) -> RetrainError:
    assert len(failures) == 1, [f.diagnostics() for f in failures]
    return failures[0]


def _write_manifest(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(json.dumps(raw, indent=2), encoding="utf-8")
    return path


def _with_entry(manifest: DataManifest, index: int, **changes: object) -> DataManifest:
    """The manifest with one entry changed, its digests recomputed so only that entry differs."""
    entries = list(manifest.entries)
    old = entries[index]
    entries[index] = ManifestEntry(**{**old.to_dict(), **changes})  # type: ignore[arg-type]
    return DataManifest(name=manifest.name, fields=manifest.fields, entries=tuple(entries))


# ---------------------------------------------------------------------------
# bad data, good manifest


def test_verify_reports_sha256_mismatch_naming_file_expected_and_found(dataset: Dataset) -> None:
    path = dataset.file(1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    failure = _only(_verify(dataset))

    assert isinstance(failure, DigestMismatch)
    assert failure.exit_code == 1
    line = failure.diagnostics()
    assert line.startswith(f"{path}: sha256 mismatch")
    assert f"expected {dataset.manifest.entries[1].sha256} ({MANIFEST_WHERE})" in line
    assert f"found {sha256_file(path).sha256}" in line


def test_verify_reports_size_mismatch_for_truncated_file(dataset: Dataset) -> None:
    path = dataset.file(0)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 10)

    failure = _only(_verify(dataset))

    assert isinstance(failure, DigestMismatch)
    assert failure.exit_code == 1
    assert failure.diagnostics() == (
        f"{path}: size mismatch: expected {size} bytes ({MANIFEST_WHERE}), found {size - 10} bytes"
    )


def test_verify_reports_missing_file_naming_it_and_its_expected_sha256(dataset: Dataset) -> None:
    path = dataset.file(2)
    path.unlink()

    failure = _only(_verify(dataset))

    assert isinstance(failure, CheckFailed)
    assert failure.exit_code == 1
    line = failure.diagnostics()
    assert line.startswith(f"{path}: file listed in the manifest is missing")
    assert f"expected sha256 {dataset.manifest.entries[2].sha256}" in line
    assert "found no file" in line


def test_verify_reports_extra_unlisted_file(dataset: Dataset) -> None:
    extra = dataset.root / "part-00099.parquet"
    shutil.copyfile(dataset.file(0), extra)

    failure = _only(_verify(dataset))

    assert isinstance(failure, CheckFailed)
    assert failure.exit_code == 1
    line = failure.diagnostics()
    assert line.startswith(f"{extra}: file 'part-00099.parquet' is not listed in the manifest")
    assert f"expected only the 3 files listed in {MANIFEST_WHERE}" in line
    assert "found an unlisted file" in line


def test_verify_reports_schema_mismatch_when_only_a_column_type_differs(dataset: Dataset) -> None:
    path = dataset.file(1)
    table = pq.read_table(path)
    index = table.schema.get_field_index("age")
    narrowed = table.set_column(
        index, pa.field("age", pa.int32(), nullable=False), table.column("age").cast(pa.int32())
    )
    path.unlink()
    pq.write_table(narrowed, path)
    digest = sha256_file(path)
    manifest = _with_entry(dataset.manifest, 1, sha256=digest.sha256, size=digest.size)

    failure = _only(_verify(dataset, manifest))

    assert isinstance(failure, SchemaMismatch)
    assert failure.exit_code == 1
    assert failure.diagnostics() == (
        f"{path}: schema mismatch: expected column 'age' of type int64, found type int32"
    )


def test_verify_reports_row_count_mismatch(dataset: Dataset) -> None:
    entry = dataset.manifest.entries[0]
    manifest = _with_entry(dataset.manifest, 0, rows=entry.rows + 1)

    failure = _only(_verify(dataset, manifest))

    assert isinstance(failure, CheckFailed)
    assert failure.exit_code == 1
    assert failure.diagnostics() == (
        f"{dataset.file(0)}: row count mismatch: "
        f"expected {entry.rows + 1} rows ({MANIFEST_WHERE}), found {entry.rows} rows"
    )


def test_verify_reports_every_bad_file_in_path_order(dataset: Dataset) -> None:
    dataset.file(2).unlink()
    with open(dataset.file(0), "r+b") as f:
        f.truncate(100)

    failures = _verify(dataset)

    assert [f.where for f in failures] == [str(dataset.file(0)), str(dataset.file(2))]


def test_verify_refuses_symlink_pointing_outside_the_dataset(
    dataset: Dataset, tmp_path: Path
) -> None:
    path = dataset.file(1)
    outside = tmp_path / "outside.parquet"
    shutil.move(path, outside)
    path.symlink_to(outside)

    failure = _only(_verify(dataset))

    assert isinstance(failure, PathEscapeError)
    assert failure.exit_code == 2
    line = failure.diagnostics()
    assert line.startswith(
        f"{path}: 'part-00001.parquet' is a symlink that escapes the dataset root"
    )
    assert f"expected a file under {dataset.root.resolve()}" in line
    assert f"found {outside.resolve()}" in line


def test_verify_accepts_symlink_that_stays_inside_the_dataset(dataset: Dataset) -> None:
    path = dataset.file(1)
    hidden = dataset.root / ".objects" / "blob"
    hidden.parent.mkdir()
    shutil.move(path, hidden)
    path.symlink_to(hidden)
    manifest = create_manifest(dataset.root, name="with-link")

    # The blob itself is a file under the root too, so it is listed as well.
    assert verify_directory(manifest, dataset.root, manifest_where=MANIFEST_WHERE) == []


def test_failures_exit_code_is_2_when_any_failure_is_unusable_input(
    dataset: Dataset, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.parquet"
    shutil.move(dataset.file(1), outside)
    dataset.file(1).symlink_to(outside)
    dataset.file(2).unlink()

    assert failures_exit_code(_verify(dataset)) == 2


# ---------------------------------------------------------------------------
# bad directories handed to create_manifest


def test_create_refuses_symlink_pointing_outside_the_dataset(
    dataset: Dataset, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.parquet"
    shutil.move(dataset.file(1), outside)
    dataset.file(1).symlink_to(outside)

    with pytest.raises(PathEscapeError, match="symlink that escapes the dataset root"):
        create_manifest(dataset.root, name="x")


def test_create_refuses_non_parquet_file_naming_it(dataset: Dataset) -> None:
    notes = dataset.root / "notes.txt"
    notes.write_text("not parquet\n")

    with pytest.raises(InputError) as info:
        create_manifest(dataset.root, name="x")

    assert info.value.exit_code == 2
    assert info.value.diagnostics().startswith(f"{notes}: not a readable Parquet file")


def test_create_refuses_files_whose_schemas_differ(dataset: Dataset) -> None:
    path = dataset.file(2)
    table = pq.read_table(path).drop_columns(["channel"])
    path.unlink()
    pq.write_table(table, path)

    with pytest.raises(InputError) as info:
        create_manifest(dataset.root, name="x")

    assert info.value.exit_code == 2
    assert info.value.diagnostics() == (
        f"{path}: schema differs from 'part-00000.parquet': "
        "expected column 'channel', found no such column"
    )


def test_create_refuses_symlinked_directory(dataset: Dataset, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (dataset.root / "more").symlink_to(tmp_path / "elsewhere")

    with pytest.raises(PathEscapeError, match="symlinked directory"):
        create_manifest(dataset.root, name="x")


# ---------------------------------------------------------------------------
# bad manifests


def _load_refused(path: Path) -> RetrainError:
    with pytest.raises(RetrainError) as info:
        load_manifest(path)
    assert info.value.diagnostics().startswith(f"{path}: ")
    return info.value


def test_load_refuses_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"manifest_version": 1,\n  "name": }')

    error = _load_refused(path)

    assert type(error) is ManifestError
    assert error.exit_code == 2
    assert "malformed JSON at line 2 column" in error.diagnostics()


def test_load_refuses_unknown_manifest_version(dataset: Dataset, tmp_path: Path) -> None:
    raw = dataset.manifest_dict()
    raw["manifest_version"] = 2

    error = _load_refused(_write_manifest(tmp_path / "m.json", raw))

    assert type(error) is ManifestError
    assert error.exit_code == 2
    assert "unknown manifest version: expected 1, found 2" in error.diagnostics()


def test_load_refuses_manifest_version_given_as_string(dataset: Dataset, tmp_path: Path) -> None:
    raw = dataset.manifest_dict()
    raw["manifest_version"] = "1"

    error = _load_refused(_write_manifest(tmp_path / "m.json", raw))

    assert type(error) is ManifestError
    assert "found '1'" in error.diagnostics()


def test_load_refuses_unknown_top_level_key(dataset: Dataset, tmp_path: Path) -> None:
    raw = dataset.manifest_dict()
    raw["comment"] = "hello"

    error = _load_refused(_write_manifest(tmp_path / "m.json", raw))

    assert type(error) is ManifestError
    assert error.exit_code == 2
    assert "unknown key 'comment'" in error.diagnostics()


def test_load_refuses_unknown_key_in_file_entry(dataset: Dataset, tmp_path: Path) -> None:
    raw = dataset.manifest_dict()
    raw["files"][0]["mtime"] = 0

    error = _load_refused(_write_manifest(tmp_path / "m.json", raw))

    assert type(error) is ManifestError
    assert "files[0]" in error.diagnostics()
    assert "unknown key 'mtime'" in error.diagnostics()


@pytest.mark.parametrize(
    "bad_path, reason",
    [
        ("../part-00000.parquet", "escapes the dataset root through '..'"),
        ("sub/../../part-00000.parquet", "escapes the dataset root through '..'"),
        ("/etc/passwd", "is absolute and escapes the dataset root"),
        ("C:/data/part-00000.parquet", "is absolute and escapes the dataset root"),
        ("sub\\part-00000.parquet", "has a backslash or NUL"),
    ],
    ids=["dotdot", "dotdot_nested", "absolute", "drive_letter", "backslash"],
)
def test_load_refuses_path_escaping_the_dataset_root(
    dataset: Dataset, tmp_path: Path, bad_path: str, reason: str
) -> None:
    raw = dataset.manifest_dict()
    raw["files"][0]["path"] = bad_path

    error = _load_refused(_write_manifest(tmp_path / "m.json", raw))

    assert isinstance(error, PathEscapeError)
    assert error.exit_code == 2
    assert "files[0]" in error.diagnostics()
    assert reason in error.diagnostics()


@pytest.mark.parametrize("bad_path", ["./part.parquet", "sub//part.parquet", "sub/"])
def test_load_refuses_path_that_is_not_normalized(
    dataset: Dataset, tmp_path: Path, bad_path: str
) -> None:
    raw = dataset.manifest_dict()
    raw["files"][0]["path"] = bad_path

    error = _load_refused(_write_manifest(tmp_path / "m.json", raw))

    assert type(error) is ManifestError
    assert "is not normalized" in error.diagnostics()


def test_load_refuses_duplicated_path(dataset: Dataset, tmp_path: Path) -> None:
    raw = dataset.manifest_dict()
    raw["files"][1]["path"] = raw["files"][0]["path"]

    error = _load_refused(_write_manifest(tmp_path / "m.json", raw))

    assert type(error) is ManifestError
    assert error.exit_code == 2
    assert "file 'part-00000.parquet' is listed twice" in error.diagnostics()


def test_load_refuses_tampered_dataset_digest(dataset: Dataset, tmp_path: Path) -> None:
    raw = dataset.manifest_dict()
    good = raw["dataset_digest"]
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    raw["dataset_digest"] = tampered

    error = _load_refused(_write_manifest(tmp_path / "m.json", raw))

    assert isinstance(error, DigestMismatch)
    assert error.exit_code == 1
    assert f"dataset_digest does not match the file entries: expected {good}, found {tampered}" in (
        error.diagnostics()
    )


def test_load_refuses_file_sha256_changed_without_its_dataset_digest(
    dataset: Dataset, tmp_path: Path
) -> None:
    raw = dataset.manifest_dict()
    raw["files"][0]["sha256"] = "0" * 64

    error = _load_refused(_write_manifest(tmp_path / "m.json", raw))

    assert isinstance(error, DigestMismatch)
    assert "dataset_digest does not match the file entries" in error.diagnostics()


def test_load_refuses_rows_total_that_is_not_the_sum_over_files(
    dataset: Dataset, tmp_path: Path
) -> None:
    raw = dataset.manifest_dict()
    raw["rows"] += 1

    error = _load_refused(_write_manifest(tmp_path / "m.json", raw))

    assert isinstance(error, DigestMismatch)
    assert "'rows' is not the sum over files" in error.diagnostics()


def test_load_refuses_schema_fingerprint_not_matching_fields(
    dataset: Dataset, tmp_path: Path
) -> None:
    raw = dataset.manifest_dict()
    raw["schema"]["fields"][1]["type"] = "int32"

    error = _load_refused(_write_manifest(tmp_path / "m.json", raw))

    assert isinstance(error, DigestMismatch)
    assert "schema fingerprint does not match the fields listed" in error.diagnostics()


@pytest.mark.parametrize(
    "sha", ["A" * 64, "a" * 63, 42], ids=["uppercase", "short", "not_a_string"]
)
def test_load_refuses_malformed_file_sha256(dataset: Dataset, tmp_path: Path, sha: object) -> None:
    raw = dataset.manifest_dict()
    raw["files"][0]["sha256"] = sha

    error = _load_refused(_write_manifest(tmp_path / "m.json", raw))

    assert type(error) is ManifestError
    assert "is not 64 lowercase hex digits" in error.diagnostics()


@pytest.mark.parametrize("size", [-1, 1.5, True, "10"], ids=["negative", "float", "bool", "string"])
def test_load_refuses_size_that_is_not_a_non_negative_integer(
    dataset: Dataset, tmp_path: Path, size: object
) -> None:
    raw = dataset.manifest_dict()
    raw["files"][0]["size"] = size

    error = _load_refused(_write_manifest(tmp_path / "m.json", raw))

    assert type(error) is ManifestError
    assert "size of 'part-00000.parquet' must be a non-negative integer" in error.diagnostics()


def test_load_refuses_empty_file_list(dataset: Dataset, tmp_path: Path) -> None:
    raw = dataset.manifest_dict()
    raw["files"] = []

    error = _load_refused(_write_manifest(tmp_path / "m.json", raw))

    assert type(error) is ManifestError
    assert "'files' must be a non-empty list" in error.diagnostics()


def test_load_refuses_manifest_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text("[1, 2]")

    error = _load_refused(path)

    assert type(error) is ManifestError
    assert "manifest must be a JSON object" in error.diagnostics()


def test_load_reports_missing_manifest_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"

    error = _load_refused(path)

    assert type(error) is InputError
    assert error.diagnostics() == f"{path}: manifest not found"


def test_load_refuses_manifest_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(b"\xff\xfe{}")

    error = _load_refused(path)

    assert type(error) is ManifestError
    assert os.linesep not in error.diagnostics()
