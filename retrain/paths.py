"""Paths a dataset or an attestation may name: relative, normalized, inside their root.

Kept free of heavy imports: the signing and verification environments use it
without pyarrow or numpy.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from retrain.errors import ManifestError, PathEscapeError

__all__ = ["validate_relative_path"]


def validate_relative_path(path: object, *, where: str) -> str:
    """A dataset path must be relative, normalized POSIX and stay inside the root."""
    if not isinstance(path, str) or not path:
        raise ManifestError("file path must be a non-empty string", where=where, found=repr(path))
    if "\\" in path or "\0" in path:
        raise PathEscapeError(
            f"file path {path!r} has a backslash or NUL", where=where, hint="use '/' separators"
        )
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise PathEscapeError(
            f"file path {path!r} is absolute and escapes the dataset root",
            where=where,
            expected="a path relative to the dataset root",
        )
    parts = path.split("/")
    if any(p == ".." for p in parts):
        raise PathEscapeError(
            f"file path {path!r} escapes the dataset root through '..'",
            where=where,
            expected="a path relative to the dataset root",
        )
    if any(p in ("", ".") for p in parts):
        raise ManifestError(
            f"file path {path!r} is not normalized",
            where=where,
            expected=repr(str(PurePosixPath(path))),
        )
    return path
