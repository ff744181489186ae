"""The content-addressed store: blobs in by digest, datasets out verified."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from retrain.errors import DigestMismatch, StoreError
from retrain.manifest import sandbox_containment, verify_dataset, verify_directory
from retrain.store import ContentStore, default_store_location
from tests.unit.support import Dataset


def _stored(dataset: Dataset, location: str) -> ContentStore:
    store = ContentStore(location)
    store.put_dataset(dataset.manifest, dataset.root)
    return store


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))


def test_put_dataset_stores_each_file_under_its_sha256(dataset: Dataset, tmp_path: Path) -> None:
    store = _stored(dataset, str(tmp_path / "store"))

    for entry in dataset.manifest.entries:
        blob = tmp_path / "store" / "sha256" / entry.sha256[:2] / entry.sha256
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == entry.sha256
        assert store.has(entry.sha256)


def test_put_dataset_counts_only_new_blobs(dataset: Dataset, tmp_path: Path) -> None:
    store = ContentStore(str(tmp_path / "store"))

    assert store.put_dataset(dataset.manifest, dataset.root) == 3
    assert store.put_dataset(dataset.manifest, dataset.root) == 0


def test_materialize_with_symlinks_gives_files_that_verify(
    dataset: Dataset, tmp_path: Path
) -> None:
    store = _stored(dataset, str(tmp_path / "store"))
    dest = tmp_path / "out" / "data"

    store.materialize(dataset.manifest, dest)

    located = {e.path: dest / e.path for e in dataset.manifest.entries}
    assert all(p.is_symlink() for p in located.values())
    failures = verify_dataset(
        dataset.manifest, located, containment=sandbox_containment("data"), manifest_where="m.json"
    )
    assert failures == []


def test_materialize_with_copies_gives_files_that_verify(dataset: Dataset, tmp_path: Path) -> None:
    store = _stored(dataset, str(tmp_path / "store"))
    dest = tmp_path / "out"

    store.materialize(dataset.manifest, dest, link=False)

    assert not any(p.is_symlink() for p in dest.iterdir())
    assert verify_directory(dataset.manifest, dest, manifest_where="m.json") == []


def test_materialize_replaces_what_is_already_at_the_destination(
    dataset: Dataset, tmp_path: Path
) -> None:
    store = _stored(dataset, str(tmp_path / "store"))
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / dataset.manifest.entries[0].path).write_bytes(b"stale")

    store.materialize(dataset.manifest, dest)

    assert (
        verify_dataset(
            dataset.manifest,
            {e.path: dest / e.path for e in dataset.manifest.entries},
            containment=sandbox_containment(""),
            manifest_where="m.json",
        )
        == []
    )


@pytest.mark.parametrize("link", [True, False], ids=["symlink", "copy"])
def test_fetch_refuses_corrupted_blob(dataset: Dataset, tmp_path: Path, link: bool) -> None:
    store = _stored(dataset, str(tmp_path / "store"))
    sha = dataset.manifest.entries[1].sha256
    blob = store.local_path(sha)
    _flip_byte(blob)
    dest = tmp_path / "out" / "part.parquet"

    with pytest.raises(DigestMismatch) as info:
        store.fetch_blob(sha, dest, link=link)

    assert info.value.exit_code == 1
    assert info.value.diagnostics().startswith(
        f"{blob}: store blob is corrupted: expected {sha}, found "
    )
    assert not os.path.lexists(dest)


def test_fetch_by_copy_leaves_no_temporary_file_on_corruption(
    dataset: Dataset, tmp_path: Path
) -> None:
    store = _stored(dataset, str(tmp_path / "store"))
    sha = dataset.manifest.entries[0].sha256
    _flip_byte(store.local_path(sha))
    out = tmp_path / "out"

    with pytest.raises(DigestMismatch):
        store.fetch_blob(sha, out / "part.parquet", link=False)

    assert list(out.iterdir()) == []


def test_materialize_reports_missing_blob_naming_the_file(dataset: Dataset, tmp_path: Path) -> None:
    store = _stored(dataset, str(tmp_path / "store"))
    missing = dataset.manifest.entries[1]
    store.remove(missing.sha256)

    with pytest.raises(StoreError) as info:
        store.materialize(dataset.manifest, tmp_path / "out")

    line = info.value.diagnostics()
    assert info.value.exit_code == 2
    assert "1 of 3 files of dataset 'unit-test-data' are not in the store" in line
    assert f"expected {missing.path} (sha256 {missing.sha256}), found no blob" in line


def test_materialize_writes_nothing_when_a_blob_is_missing(
    dataset: Dataset, tmp_path: Path
) -> None:
    store = _stored(dataset, str(tmp_path / "store"))
    store.remove(dataset.manifest.entries[2].sha256)

    with pytest.raises(StoreError):
        store.materialize(dataset.manifest, tmp_path / "out")

    assert not (tmp_path / "out").exists()


def test_fetch_blob_reports_blob_not_in_store(tmp_path: Path) -> None:
    store = ContentStore(str(tmp_path / "store"))

    with pytest.raises(StoreError, match=f"blob not in store: expected sha256 {'0' * 64}"):
        store.fetch_blob("0" * 64, tmp_path / "x")


def test_put_file_is_idempotent(tmp_path: Path) -> None:
    src = tmp_path / "file.bin"
    src.write_bytes(b"some bytes")
    store = ContentStore(str(tmp_path / "store"))

    first = store.put_file(src)
    second = store.put_file(src)

    assert first == second == hashlib.sha256(b"some bytes").hexdigest()
    blobs = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert blobs == [store.local_path(first)]
    assert blobs[0].read_bytes() == b"some bytes"


def test_put_file_refuses_content_that_does_not_match_the_given_sha256(tmp_path: Path) -> None:
    src = tmp_path / "file.bin"
    src.write_bytes(b"changed")
    store = ContentStore(str(tmp_path / "store"))
    claimed = hashlib.sha256(b"original").hexdigest()

    with pytest.raises(DigestMismatch, match="file changed while it was stored"):
        store.put_file(src, claimed)

    assert not store.has(claimed)
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


def test_store_behind_a_file_uri_round_trips_a_dataset(dataset: Dataset, tmp_path: Path) -> None:
    store = ContentStore("file://" + str(tmp_path / "uri-store"))
    dest = tmp_path / "out"

    assert store.put_dataset(dataset.manifest, dataset.root) == 3
    store.materialize(dataset.manifest, dest, link=False)

    assert store.is_local
    assert (tmp_path / "uri-store" / store.blob_key(dataset.manifest.entries[0].sha256)).is_file()
    assert verify_directory(dataset.manifest, dest, manifest_where="m.json") == []


def test_store_with_unknown_uri_scheme_is_refused(tmp_path: Path) -> None:
    store = ContentStore("nosuchscheme://bucket/prefix")

    with pytest.raises(StoreError, match="nosuchscheme://bucket/prefix: cannot open store"):
        store.has("0" * 64)


def test_default_store_location_prefers_retrain_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAIN_STORE", "/somewhere/store")

    assert default_store_location() == "/somewhere/store"


def test_default_store_location_falls_back_to_xdg_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETRAIN_STORE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/cache")

    assert default_store_location() == "/cache/retrain/store"
