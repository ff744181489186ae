"""Streaming hashes of files and bytes, and the dataset digest.

sha256 here is OpenSSL's (through hashlib), fed from one reusable buffer so a
single file hashes at close to OpenSSL's own speed; hashlib releases the GIL
on large updates, so many files hash in parallel on threads.

The dataset digest identifies a dataset by its content alone: a sha256 over
the sorted per-file leaves (path, sha256, size, rows), each leaf itself a
sha256, under a version tag. It does not depend on where the files live, on
their timestamps, or on the order they were listed in.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from retrain.errors import InputError

__all__ = [
    "DATASET_DIGEST_TAG",
    "FileDigest",
    "canonical_json",
    "dataset_digest",
    "sha256_bytes",
    "sha256_file",
    "sha256_files",
    "tree_digest",
]

# Big enough that per-call overhead vanishes, small enough to stay in L2/L3.
_BUFFER_SIZE = 1 << 20
DATASET_DIGEST_TAG = b"retrain.dataset-digest.v1\n"
_TREE_DIGEST_TAG = b"retrain.tree-digest.v1\n"


@dataclass(frozen=True)
class FileDigest:
    """The sha256 (hex) and size in bytes of one file."""

    sha256: str
    size: int


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> FileDigest:
    """Hash one file in a single streaming pass."""
    h = hashlib.sha256()
    buf = bytearray(_BUFFER_SIZE)
    view = memoryview(buf)
    size = 0
    try:
        # Non-blocking, and judged on the open descriptor: a FIFO put in a
        # file's place is refused, never waited on.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise InputError("not a regular file", where=str(path), expected="a regular file")
        with open(fd, "rb", buffering=0) as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(view[:n])
                size += n
    except FileNotFoundError:
        raise InputError("file not found", where=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", where=str(path)) from None
    except PermissionError:
        raise InputError("permission denied", where=str(path)) from None
    return FileDigest(sha256=h.hexdigest(), size=size)


def sha256_files(
    paths: Sequence[str | os.PathLike[str]], *, workers: int | None = None
) -> list[FileDigest]:
    """Hash many files, in order, on ``workers`` threads (default: one per CPU)."""
    if workers is None:
        workers = os.cpu_count() or 1
    workers = max(1, min(workers, len(paths)))
    if workers == 1:
        return [sha256_file(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(sha256_file, paths))


def canonical_json(value: object) -> bytes:
    """The one byte encoding of a JSON value: sorted keys, no spaces, UTF-8, no NaN."""
    import json

    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _leaf(path: str, sha256: str, size: int, rows: int | None) -> bytes:
    rows_text = "" if rows is None else str(rows)
    return hashlib.sha256(f"{path}\0{sha256}\0{size}\0{rows_text}\n".encode()).digest()


def dataset_digest(entries: Iterable[tuple[str, str, int, int | None]]) -> str:
    """``sha256:<hex>`` over (path, sha256, size, rows) entries taken in path order."""
    leaves = [_leaf(*entry) for entry in sorted(entries)]
    h = hashlib.sha256(DATASET_DIGEST_TAG)
    for leaf in leaves:
        h.update(leaf)
    return "sha256:" + h.hexdigest()


def tree_digest(files: Iterable[tuple[str, str]]) -> str:
    """``sha256:<hex>`` over (relative path, sha256) pairs: a source tree's identity."""
    h = hashlib.sha256(_TREE_DIGEST_TAG)
    for path, sha in sorted(files):
        h.update(f"{path}\0{sha}\n".encode())
    return "sha256:" + h.hexdigest()


def path_digest(path: Path) -> str:
    """sha256 hex of a file's bytes (convenience for small files)."""
    return sha256_file(path).sha256
