"""The retrain model file format (RTM v1): deterministic bytes, safe to load.

Layout (all integers little-endian)::

    magic      8 bytes   b"RTMODEL\\x01"
    length     8 bytes   uint64, byte length of the header
    header     length    canonical JSON (sorted keys, no spaces), padded with
                         spaces so the data starts on a 64-byte boundary
    data                 each array's raw C-order bytes, in header order, each
                         starting on a 64-byte boundary, zero padded

The header is ``{"format": "retrain.model/v1", "metadata": {...},
"arrays": [{"name", "dtype", "shape", "offset", "nbytes"}, ...]}`` with
arrays sorted by name and offsets relative to the data section. Nothing in
it depends on time, paths, object ids or dict order, so the same model gives
the same bytes. Loading checks every offset, size and dtype before touching
the data and never executes code from the file.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np

from retrain.digest import canonical_json
from retrain.errors import InputError
from retrain.features import Preprocessor
from retrain.model import ESTIMATOR_ARRAYS, Model
from retrain.recipe import LabelSpec

__all__ = [
    "FORMAT",
    "MAGIC",
    "model_from_bytes",
    "model_to_bytes",
    "read_model",
    "read_model_header",
]

MAGIC = b"RTMODEL\x01"
FORMAT = "retrain.model/v1"
_ALIGN = 64
_DTYPES = {"<f8", "<i8", "<u4", "|u1"}
_ARRAY_KEYS = {"name", "dtype", "shape", "offset", "nbytes"}


def _pad(n: int) -> int:
    return (-n) % _ALIGN


def model_to_bytes(model: Model) -> bytes:
    names = sorted(model.arrays)
    table = []
    offset = 0
    for name in names:
        arr = model.arrays[name]
        table.append(
            {
                "name": name,
                "dtype": arr.dtype.str,
                "shape": list(arr.shape),
                "offset": offset,
                "nbytes": int(arr.nbytes),
            }
        )
        offset += arr.nbytes + _pad(arr.nbytes)
    header = canonical_json({"format": FORMAT, "metadata": model.metadata(), "arrays": table})
    header += b" " * _pad(len(MAGIC) + 8 + len(header))
    parts = [MAGIC, struct.pack("<Q", len(header)), header]
    for name in names:
        raw = model.arrays[name].tobytes(order="C")
        parts.append(raw)
        parts.append(b"\0" * _pad(len(raw)))
    return b"".join(parts)


def read_model_header(data: bytes, *, where: str = "model") -> dict[str, Any]:
    if len(data) < 16 or data[:8] != MAGIC:
        raise InputError(
            "not a retrain model file",
            where=where,
            expected=f"magic {MAGIC!r}",
            found=repr(data[:8]),
        )
    (length,) = struct.unpack("<Q", data[8:16])
    if 16 + length > len(data):
        raise InputError(
            "truncated model header",
            where=where,
            expected=f"{length} header bytes",
            found=len(data) - 16,
        )
    try:
        header = json.loads(data[16 : 16 + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError("model header is not JSON", where=where, hint=str(exc)) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise InputError("unknown model format", where=where, expected=FORMAT, found=found)
    header["_data_start"] = 16 + length
    return header


def model_from_bytes(data: bytes, *, where: str = "model") -> Model:
    header = read_model_header(data, where=where)
    start = header.pop("_data_start")
    body = memoryview(data)[start:]
    arrays: dict[str, np.ndarray] = {}
    expected_offset = 0
    table = header.get("arrays", [])
    if not isinstance(table, list):
        raise InputError(
            "model array table must be a list", where=where, found=type(table).__name__
        )
    for i, entry in enumerate(table):
        if (
            not isinstance(entry, dict)
            or set(entry) != _ARRAY_KEYS
            or not isinstance(entry["name"], str)
            or not isinstance(entry["dtype"], str)
            or not isinstance(entry["shape"], list)
        ):
            raise InputError(
                f"model array table entry {i} is malformed",
                where=where,
                expected="keys " + ", ".join(sorted(_ARRAY_KEYS)) + "; shape a list",
                found=json.dumps(entry)[:80],
            )
        name, dtype, shape = entry["name"], entry["dtype"], tuple(entry["shape"])
        # Model arrays are 1-D or 2-D; more dimensions than numpy supports must not reach reshape.
        if (
            dtype not in _DTYPES
            or len(shape) > 2
            or not all(isinstance(s, int) and s >= 0 for s in shape)
        ):
            raise InputError(
                f"array {name!r} has an unsupported dtype or shape",
                where=where,
                found=f"{dtype} {shape}",
            )
        # Python ints: a crafted shape must not wrap around in int64.
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        if entry["offset"] != expected_offset or entry["nbytes"] != nbytes:
            raise InputError(
                f"array {name!r} table entry is inconsistent",
                where=where,
                expected=f"offset {expected_offset}, {nbytes} bytes",
                found=f"offset {entry['offset']}, {entry['nbytes']} bytes",
            )
        if expected_offset + nbytes > len(body):
            raise InputError(f"array {name!r} runs past the end of the file", where=where)
        arrays[name] = np.frombuffer(
            body[expected_offset : expected_offset + nbytes], dtype=dtype
        ).reshape(shape)
        expected_offset += nbytes + _pad(nbytes)
    if expected_offset != len(body):
        raise InputError(
            "model file has trailing bytes",
            where=where,
            expected=start + expected_offset,
            found=len(data),
        )
    meta = header.get("metadata", {})
    try:
        estimator = meta["estimator"]
        if estimator not in ESTIMATOR_ARRAYS:
            raise InputError(
                "unknown estimator",
                where=where,
                expected=" or ".join(ESTIMATOR_ARRAYS),
                found=estimator,
            )
        model = Model(
            estimator=estimator,
            label=LabelSpec(**meta["label"]),
            preprocessor=Preprocessor.from_dict(meta["preprocessor"]),
            arrays=arrays,
            lineage=meta.get("lineage", {}),
        )
    except (KeyError, TypeError) as exc:
        raise InputError(
            "model metadata is incomplete", where=where, hint=f"missing or malformed {exc}"
        ) from None
    except InputError as exc:
        if exc.where is not None:
            raise
        # Model's own shape checks do not know which file they are checking.
        raise InputError(
            exc.what, where=where, expected=exc.expected, found=exc.found, hint=exc.hint
        ) from None
    if model_to_bytes(model) != bytes(data):
        raise InputError(
            "model file is not in canonical form", where=where, hint="it was not written by retrain"
        )
    return model


def read_model(path: str) -> Model:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InputError("model file not found", where=path) from None
    return model_from_bytes(data, where=path)
