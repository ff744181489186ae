"""Each bad dataset fails the build with one line naming the file, expected and found.

Every case is its own `dataset` target in a scratch package, so the failing
action is the verification and the assertion is exact: one `retrain: error:`
line, no traceback, and no verification record written.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retrain.datagen import GeneratorSpec, write_dataset
from retrain.digest import sha256_file
from retrain.manifest import ManifestEntry, create_manifest
from tests.bazel_harness import BazelWorkspace

pytestmark = [pytest.mark.bazel]

PKG = "badcases"


def _manifest(case_dir: Path) -> dict:
    return json.loads((case_dir / "manifest.json").read_text())


def _write_manifest(case_dir: Path, raw: dict) -> None:
    (case_dir / "manifest.json").write_text(json.dumps(raw, indent=2))


def flip_byte(case: Path) -> None:
    f = case / "data/part-00001.parquet"
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0xFF
    f.write_bytes(bytes(b))


def grow_file(case: Path) -> None:
    with open(case / "data/part-00001.parquet", "ab") as f:
        f.write(b"\0" * 7)


def change_schema(case: Path) -> None:
    # Same rows, one column retyped; the manifest's hash and size entries are
    # updated to match, so the only defect left is the schema.
    f = case / "data/part-00001.parquet"
    table = pq.read_table(f)
    i = table.schema.get_field_index("age")
    table = table.set_column(
        i, pa.field("age", pa.string(), nullable=False), table.column("age").cast(pa.string())
    )
    pq.write_table(table, f)
    raw = _manifest(case)
    d = sha256_file(f)
    for entry in raw["files"]:
        if entry["path"] == "part-00001.parquet":
            entry["sha256"], entry["size"] = d.sha256, d.size
    entries = [ManifestEntry(**e) for e in raw["files"]]
    from retrain.digest import dataset_digest

    raw["dataset_digest"] = dataset_digest((e.path, e.sha256, e.size, e.rows) for e in entries)
    raw["bytes"] = sum(e.size for e in entries)
    _write_manifest(case, raw)


def remove_file(case: Path) -> None:
    (case / "data/part-00001.parquet").unlink()


def break_json(case: Path) -> None:
    text = (case / "manifest.json").read_text()
    (case / "manifest.json").write_text(text[: len(text) // 2])


def unknown_version(case: Path) -> None:
    raw = _manifest(case)
    raw["manifest_version"] = 99
    _write_manifest(case, raw)


def dotdot_path(case: Path) -> None:
    raw = _manifest(case)
    raw["files"][1]["path"] = "../escape.parquet"
    _write_manifest(case, raw)


def absolute_path(case: Path) -> None:
    raw = _manifest(case)
    raw["files"][1]["path"] = "/etc/passwd"
    _write_manifest(case, raw)


def symlink_out(case: Path) -> None:
    # Same bytes, but the file is a symlink to a copy outside the dataset root.
    f = case / "data/part-00001.parquet"
    outside = case.parent.parent.parent / "outside-the-workspace.parquet"
    shutil.copyfile(f, outside)
    f.unlink()
    f.symlink_to(outside)


CASES: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "hash_mismatch": (flip_byte, ["part-00001.parquet", "sha256 mismatch", "expected", "found"]),
    "size_mismatch": (
        grow_file,
        ["part-00001.parquet", "size mismatch", "expected", "bytes", "found"],
    ),
    "schema_mismatch": (
        change_schema,
        [
            "part-00001.parquet",
            "schema mismatch",
            "column 'age' of type int64",
            "found type string",
        ],
    ),
    "missing_file": (
        remove_file,
        ["part-00001.parquet", "missing", "expected sha256", "found no file"],
    ),
    "malformed_json": (break_json, ["manifest.json", "malformed JSON"]),
    "unknown_version": (
        unknown_version,
        ["manifest.json", "unknown manifest version", "expected 1", "found 99"],
    ),
    "dotdot_path": (
        dotdot_path,
        ["manifest.json", "'../escape.parquet'", "escapes the dataset root"],
    ),
    "absolute_path": (absolute_path, ["manifest.json", "'/etc/passwd'", "absolute"]),
    "symlink_out": (
        symlink_out,
        ["part-00001.parquet", "symlink that escapes the dataset root", "found"],
    ),
}


@pytest.fixture(scope="module")
def bad_package(scratch: BazelWorkspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pkg = scratch.root / PKG
    pkg.mkdir()
    source = tmp_path_factory.mktemp("bad-source") / "data"
    write_dataset(GeneratorSpec(rows=3000, seed=3), source, files=3)
    good = create_manifest(source, name="bad_case")
    for case, (mutate, _) in CASES.items():
        case_dir = pkg / case
        shutil.copytree(source, case_dir / "data")
        (case_dir / "manifest.json").write_bytes(good.to_json_bytes())
        mutate(case_dir)
    (pkg / "BUILD.bazel").write_text(
        'load("//rules:defs.bzl", "dataset")\n\n'
        + "".join(
            f'dataset(\n    name = "{c}",\n    manifest = "{c}/manifest.json",\n'
            f'    srcs = glob(["{c}/data/**"]),\n    root = "{PKG}/{c}/data",\n)\n\n'
            for c in CASES
        )
    )
    return pkg


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_dataset_fails_the_build_with_one_clear_line(
    scratch: BazelWorkspace, bad_package: Path, case: str
) -> None:
    result = scratch.build(f"//{PKG}:{case}")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("retrain: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    for needle in CASES[case][1]:
        assert needle in errors[0], (needle, errors[0])
    assert "Traceback" not in result.stderr
    assert not (scratch.bazel_bin() / PKG / f"{case}.verified.json").exists()


def test_the_unmutated_copy_verifies(
    scratch: BazelWorkspace, bad_package: Path, tmp_path: Path
) -> None:
    # Guards the cases above: they fail because of their defect, not the setup.
    good = bad_package / "good"
    shutil.copytree(bad_package / "hash_mismatch", good)
    source = tmp_path / "data"
    write_dataset(GeneratorSpec(rows=3000, seed=3), source, files=3)
    shutil.rmtree(good / "data")
    shutil.copytree(source, good / "data")
    (good / "manifest.json").write_bytes(create_manifest(source, name="bad_case").to_json_bytes())
    build = (bad_package / "BUILD.bazel").read_text()
    (bad_package / "BUILD.bazel").write_text(
        build
        + f'dataset(\n    name = "good",\n    manifest = "good/manifest.json",\n    srcs = glob(["good/data/**"]),\n    root = "{PKG}/good/data",\n)\n'
    )
    scratch.must_build(f"//{PKG}:good")
