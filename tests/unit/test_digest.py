"""Streaming file hashes, the dataset digest and the tree digest."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import pytest

from retrain.digest import (
    FileDigest,
    canonical_json,
    dataset_digest,
    sha256_file,
    sha256_files,
    tree_digest,
)
from retrain.errors import InputError

SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_C = "c" * 64
ENTRIES = [
    ("part-00000.parquet", SHA_A, 100, 10),
    ("part-00001.parquet", SHA_B, 200, 20),
    ("sub/part-00002.parquet", SHA_C, 300, 30),
]


@pytest.mark.parametrize(
    "size",
    [0, 1000, 3 * (1 << 20) + 12345],
    ids=["empty", "small", "multi_mib_not_a_buffer_multiple"],
)
def test_sha256_file_equals_hashlib(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "blob"
    path.write_bytes(data)

    assert sha256_file(path) == FileDigest(hashlib.sha256(data).hexdigest(), size)


def test_sha256_file_refuses_missing_file_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "absent.parquet"

    with pytest.raises(InputError, match=r"absent\.parquet: file not found"):
        sha256_file(missing)


def test_sha256_files_keeps_input_order_with_several_workers(tmp_path: Path) -> None:
    # Sizes decrease so that later files tend to finish first on the pool.
    paths = []
    for i in range(24):
        path = tmp_path / f"f{i:02d}"
        path.write_bytes(os.urandom((24 - i) * 40_000))
        paths.append(path)

    digests = sha256_files(paths, workers=4)

    assert digests == [
        FileDigest(hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size) for p in paths
    ]


def test_dataset_digest_is_independent_of_entry_order() -> None:
    assert dataset_digest(ENTRIES) == dataset_digest(reversed(ENTRIES))


def test_dataset_digest_is_sha256_prefixed_hex() -> None:
    digest = dataset_digest(ENTRIES)

    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    int(digest.removeprefix("sha256:"), 16)


@pytest.mark.parametrize(
    "field, value",
    [(0, "part-00009.parquet"), (1, "d" * 64), (2, 101), (3, 11)],
    ids=["path", "sha256", "size", "rows"],
)
def test_dataset_digest_changes_when_any_entry_field_changes(field: int, value: object) -> None:
    changed = list(ENTRIES)
    entry = list(changed[0])
    entry[field] = value
    changed[0] = tuple(entry)  # type: ignore[assignment]

    assert dataset_digest(changed) != dataset_digest(ENTRIES)


def test_dataset_digest_changes_when_an_entry_is_dropped() -> None:
    assert dataset_digest(ENTRIES[:2]) != dataset_digest(ENTRIES)


def test_tree_digest_is_independent_of_entry_order() -> None:
    files = [(p, s) for p, s, _, _ in ENTRIES]

    assert tree_digest(files) == tree_digest(reversed(files))


@pytest.mark.parametrize("field, value", [(0, "other.py"), (1, "d" * 64)], ids=["path", "sha256"])
def test_tree_digest_changes_when_any_entry_field_changes(field: int, value: str) -> None:
    files = [(p, s) for p, s, _, _ in ENTRIES]
    changed = list(files)
    entry = list(changed[1])
    entry[field] = value
    changed[1] = (entry[0], entry[1])

    assert tree_digest(changed) != tree_digest(files)


def test_tree_digest_differs_from_dataset_digest_of_the_same_files() -> None:
    # Different version tags keep the two kinds of identity apart.
    files = [(p, s) for p, s, _, _ in ENTRIES]

    assert tree_digest(files) != dataset_digest(ENTRIES)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_canonical_json_rejects_non_finite_numbers(value: float) -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": value})


def test_canonical_json_sorts_keys_without_spaces_in_utf8() -> None:
    assert canonical_json({"b": 1, "a": [1, 2], "é": "ü"}) == '{"a":[1,2],"b":1,"é":"ü"}'.encode()
