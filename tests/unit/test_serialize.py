"""The RTM v1 model file: canonical bytes, and every malformed file refused.

Refusals are all ``InputError`` (exit 2) raised before any array is used;
crafted headers never surface as a KeyError, ValueError or similar.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from retrain.digest import canonical_json
from retrain.errors import InputError
from retrain.model import Model
from retrain.serialize import FORMAT, MAGIC, model_from_bytes, model_to_bytes, read_model

Header = dict[str, Any]


def _split(data: bytes) -> tuple[Header, bytes]:
    (length,) = struct.unpack("<Q", data[8:16])
    return json.loads(data[16 : 16 + length]), data[16 + length :]


def _join(header_bytes: bytes, body: bytes) -> bytes:
    header_bytes += b" " * ((-(16 + len(header_bytes))) % 64)
    return MAGIC + struct.pack("<Q", len(header_bytes)) + header_bytes + body


def _with_header(data: bytes, edit: Callable[[Header], None]) -> bytes:
    header, body = _split(data)
    edit(header)
    return _join(canonical_json(header), body)


def _refused(data: bytes) -> str:
    with pytest.raises(InputError) as info:
        model_from_bytes(data, where="m.rtm")
    assert type(info.value) is InputError
    assert info.value.exit_code == 2
    line = info.value.diagnostics()
    assert line.startswith("m.rtm: ")
    return line


def _array_index(header: Header, name: str) -> int:
    return [a["name"] for a in header["arrays"]].index(name)


@pytest.fixture
def model_bytes(hgb_model: Model) -> bytes:
    return model_to_bytes(hgb_model)


def test_model_file_starts_with_magic_and_aligns_data_to_64_bytes(model_bytes: bytes) -> None:
    (length,) = struct.unpack("<Q", model_bytes[8:16])

    assert model_bytes[:8] == MAGIC
    assert (16 + length) % 64 == 0


def test_model_header_is_canonical_json_with_arrays_sorted_by_name(model_bytes: bytes) -> None:
    header, _ = _split(model_bytes)
    names = [a["name"] for a in header["arrays"]]

    assert header["format"] == FORMAT
    assert names == sorted(names)
    (length,) = struct.unpack("<Q", model_bytes[8:16])
    assert model_bytes[16 : 16 + length].rstrip(b" ") == canonical_json(header)


def test_read_model_loads_a_model_file(tmp_path: Path, model_bytes: bytes) -> None:
    path = tmp_path / "model.rtm"
    path.write_bytes(model_bytes)

    assert model_to_bytes(read_model(str(path))) == model_bytes


def test_read_model_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model file not found"):
        read_model(str(tmp_path / "absent.rtm"))


def test_model_from_bytes_refuses_wrong_magic(model_bytes: bytes) -> None:
    line = _refused(b"PK\x03\x04\x14\x00\x00\x00" + model_bytes[8:])

    assert "not a retrain model file" in line


def test_model_from_bytes_refuses_file_shorter_than_the_preamble() -> None:
    assert "not a retrain model file" in _refused(MAGIC + b"\x01")


def test_model_from_bytes_refuses_truncated_header(model_bytes: bytes) -> None:
    line = _refused(model_bytes[:200])

    assert "truncated model header" in line
    assert "found 184" in line


def test_model_from_bytes_refuses_truncated_data(model_bytes: bytes) -> None:
    assert "runs past the end of the file" in _refused(model_bytes[:-100])


def test_model_from_bytes_refuses_trailing_bytes(model_bytes: bytes) -> None:
    line = _refused(model_bytes + b"\0" * 64)

    assert (
        f"model file has trailing bytes: expected {len(model_bytes)}, found {len(model_bytes) + 64}"
        in line
    )


def test_model_from_bytes_refuses_non_canonical_header(model_bytes: bytes) -> None:
    header, body = _split(model_bytes)
    indented = json.dumps(header, sort_keys=True, indent=2).encode()

    assert "not in canonical form" in _refused(_join(indented, body))


def test_model_from_bytes_refuses_header_that_is_not_json(model_bytes: bytes) -> None:
    _, body = _split(model_bytes)

    assert "model header is not JSON" in _refused(_join(b"{not json", body))


def test_model_from_bytes_refuses_unknown_format(model_bytes: bytes) -> None:
    def edit(h: Header) -> None:
        h["format"] = "retrain.model/v2"

    assert "unknown model format: expected retrain.model/v1, found retrain.model/v2" in _refused(
        _with_header(model_bytes, edit)
    )


def test_model_from_bytes_refuses_unknown_estimator(model_bytes: bytes) -> None:
    def edit(h: Header) -> None:
        h["metadata"]["estimator"] = "random_forest"

    assert "unknown estimator" in _refused(_with_header(model_bytes, edit))
    assert "found random_forest" in _refused(_with_header(model_bytes, edit))


def test_model_from_bytes_refuses_array_with_unsupported_dtype(model_bytes: bytes) -> None:
    def edit(h: Header) -> None:
        h["arrays"][_array_index(h, "node_value")]["dtype"] = "<f4"

    line = _refused(_with_header(model_bytes, edit))

    assert "array 'node_value' has an unsupported dtype or shape" in line


def test_model_from_bytes_refuses_object_dtype(model_bytes: bytes) -> None:
    def edit(h: Header) -> None:
        h["arrays"][0]["dtype"] = "|O"

    assert "unsupported dtype" in _refused(_with_header(model_bytes, edit))


def test_model_from_bytes_refuses_array_with_a_dtype_other_than_its_estimator_declares(
    model_bytes: bytes,
) -> None:
    # <i8 is a supported dtype of the same width, but node_value is <f8.
    def edit(h: Header) -> None:
        h["arrays"][_array_index(h, "node_value")]["dtype"] = "<i8"

    assert "not in canonical form" in _refused(_with_header(model_bytes, edit))


def test_model_from_bytes_refuses_inconsistent_array_offset(model_bytes: bytes) -> None:
    def edit(h: Header) -> None:
        h["arrays"][1]["offset"] += 64

    assert "table entry is inconsistent" in _refused(_with_header(model_bytes, edit))


def test_model_from_bytes_refuses_malformed_array_table_entry(model_bytes: bytes) -> None:
    def edit(h: Header) -> None:
        h["arrays"][0] = {"name": "baseline"}

    assert "model array table entry 0 is malformed" in _refused(_with_header(model_bytes, edit))


def test_model_from_bytes_refuses_array_table_that_is_not_a_list(model_bytes: bytes) -> None:
    def edit(h: Header) -> None:
        h["arrays"] = {"baseline": {}}

    assert "model array table must be a list" in _refused(_with_header(model_bytes, edit))


def test_model_from_bytes_refuses_shape_whose_size_overflows_int64(model_bytes: bytes) -> None:
    def edit(h: Header) -> None:
        entry = h["arrays"][0]
        entry["shape"] = [2**32, 2**32]
        entry["nbytes"] = 2**64 * 8

    assert "runs past the end of the file" in _refused(_with_header(model_bytes, edit))


def test_model_from_bytes_refuses_incomplete_metadata(model_bytes: bytes) -> None:
    def edit(h: Header) -> None:
        del h["metadata"]["label"]

    assert "model metadata is incomplete" in _refused(_with_header(model_bytes, edit))


def test_model_from_bytes_refuses_tree_child_index_out_of_range(model_bytes: bytes) -> None:
    header, body = _split(model_bytes)
    entry = header["arrays"][_array_index(header, "node_left")]
    data = bytearray(body)
    # The root of the first tree is internal; point its left child far away.
    data[entry["offset"] : entry["offset"] + 4] = struct.pack("<I", 2**31)

    assert "node_left" in _refused(_join(canonical_json(header), bytes(data)))


def test_model_from_bytes_refuses_array_with_more_than_two_dimensions(model_bytes: bytes) -> None:
    def edit(h: Header) -> None:
        h["arrays"][0]["shape"] = [0] * 70
        h["arrays"][0]["nbytes"] = 0

    assert "unsupported dtype or shape" in _refused(_with_header(model_bytes, edit))
