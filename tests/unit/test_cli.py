"""The ``retrain`` command, called in-process through ``retrain.cli.main``.

Every failure is one line per problem on stderr, ``retrain: error: ...``,
with exit code 1 for a failed check and 2 for unusable input or usage, and
never a traceback unless ``--verbose`` asks for one.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from retrain.cli import main
from retrain.datagen import GeneratorSpec, write_dataset
from retrain.digest import sha256_file
from retrain.manifest import load_manifest
from tests.unit.support import REPO, Dataset


@pytest.fixture(autouse=True)
def _private_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test may touch the user's real store, even by accident."""
    store = tmp_path / "default-store"
    monkeypatch.setenv("RETRAIN_STORE", str(store))
    return store


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _error_lines(err: str) -> list[str]:
    lines = err.splitlines()
    assert lines, "expected at least one error line"
    assert all(line.startswith("retrain: error: ") for line in lines), lines
    assert "Traceback" not in err
    return lines


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _bad_manifest(dataset: Dataset, tmp_path: Path, edit: str) -> Path:
    path = tmp_path / "bad.json"
    if edit == "malformed_json":
        path.write_text(dataset.manifest_path.read_text()[:-20])
        return path
    raw = dataset.manifest_dict()
    if edit == "unknown_version":
        raw["manifest_version"] = 99
    elif edit == "dotdot_path":
        raw["files"][0]["path"] = "../../etc/passwd"
    path.write_text(json.dumps(raw))
    return path


# ---------------------------------------------------------------------------
# manifest create / verify


def test_manifest_create_writes_the_manifest_and_prints_its_digest(
    capsys: pytest.CaptureFixture[str], dataset: Dataset, tmp_path: Path
) -> None:
    out_path = tmp_path / "manifests" / "ds.json"

    code, out, err = _run(
        capsys, "manifest", "create", dataset.root, "--name", "ds", "-o", out_path
    )

    written = load_manifest(out_path)
    assert code == 0
    assert out == ""
    assert err == f"wrote {out_path}: 3 files, 3000 rows, {written.dataset_digest}\n"
    assert written.dataset_digest == dataset.manifest.dataset_digest


def test_manifest_create_records_the_generator_origin(
    capsys: pytest.CaptureFixture[str], dataset: Dataset, tmp_path: Path
) -> None:
    out_path = tmp_path / "ds.json"

    _run(capsys, "manifest", "create", dataset.root, "--name", "ds", "-o", out_path)

    assert json.loads(out_path.read_text())["origin"]["generator"] == "retrain.datagen"


def test_manifest_create_without_output_prints_the_manifest(
    capsys: pytest.CaptureFixture[str], dataset: Dataset
) -> None:
    code, out, _ = _run(capsys, "manifest", "create", dataset.root, "--name", "ds")

    assert code == 0
    assert json.loads(out)["dataset_digest"] == dataset.manifest.dataset_digest


def test_manifest_create_refusal_writes_no_output(
    capsys: pytest.CaptureFixture[str], dataset: Dataset, tmp_path: Path
) -> None:
    (dataset.root / "notes.txt").write_text("not parquet")
    out_path = tmp_path / "ds.json"

    code, _, err = _run(capsys, "manifest", "create", dataset.root, "--name", "ds", "-o", out_path)

    assert code == 2
    assert len(_error_lines(err)) == 1
    assert "notes.txt: not a readable Parquet file" in err
    assert not out_path.exists()


def test_manifest_verify_exits_0_on_good_data(
    capsys: pytest.CaptureFixture[str], dataset: Dataset
) -> None:
    code, out, err = _run(capsys, "manifest", "verify", dataset.manifest_path, dataset.root)

    assert code == 0
    assert err == ""
    assert out.startswith("ok: dataset unit-test-data: 3 files, 3000 rows")
    assert out.rstrip().endswith(dataset.manifest.dataset_digest)


def test_manifest_verify_exits_1_with_one_line_for_a_flipped_byte(
    capsys: pytest.CaptureFixture[str], dataset: Dataset
) -> None:
    _flip_byte(dataset.file(1))

    code, out, err = _run(capsys, "manifest", "verify", dataset.manifest_path, dataset.root)

    assert code == 1
    assert out == ""
    (line,) = _error_lines(err)
    assert line.startswith(f"retrain: error: {dataset.file(1)}: sha256 mismatch: expected ")


def test_manifest_verify_prints_one_line_per_failed_file(
    capsys: pytest.CaptureFixture[str], dataset: Dataset
) -> None:
    _flip_byte(dataset.file(0))
    _flip_byte(dataset.file(2))

    code, _, err = _run(capsys, "manifest", "verify", dataset.manifest_path, dataset.root)

    lines = _error_lines(err)
    assert code == 1
    assert len(lines) == 2
    assert str(dataset.file(0)) in lines[0]
    assert str(dataset.file(2)) in lines[1]


@pytest.mark.parametrize("edit", ["malformed_json", "unknown_version", "dotdot_path"])
def test_manifest_verify_exits_2_on_unusable_manifest(
    capsys: pytest.CaptureFixture[str], dataset: Dataset, tmp_path: Path, edit: str
) -> None:
    bad = _bad_manifest(dataset, tmp_path, edit)

    code, out, err = _run(capsys, "manifest", "verify", bad, dataset.root)

    assert code == 2
    assert out == ""
    (line,) = _error_lines(err)
    assert line.startswith(f"retrain: error: {bad}: ")


def test_manifest_verify_against_the_store_exits_0_after_store_put(
    capsys: pytest.CaptureFixture[str], dataset: Dataset, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    _run(capsys, "store", "put", dataset.manifest_path, dataset.root, "--store", store)

    code, out, _ = _run(capsys, "manifest", "verify", dataset.manifest_path, "--store", store)

    assert code == 0
    assert f"in {store}" in out


def test_verbose_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], dataset: Dataset, tmp_path: Path
) -> None:
    bad = _bad_manifest(dataset, tmp_path, "unknown_version")

    code, _, err = _run(capsys, "--verbose", "manifest", "verify", bad, dataset.root)

    assert code == 2
    assert "Traceback" in err
    assert err.rstrip().splitlines()[-1].startswith("retrain: error: ")


# ---------------------------------------------------------------------------
# datagen


def test_datagen_writes_the_same_bytes_as_the_library(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    expected = write_dataset(GeneratorSpec(rows=500, seed=3, drift=0.5), tmp_path / "lib", files=2)

    code, out, _ = _run(
        capsys,
        "datagen",
        tmp_path / "cli",
        "--rows",
        500,
        "--seed",
        3,
        "--drift",
        0.5,
        "--files",
        2,
    )

    assert code == 0
    assert out == f"wrote 2 files, 500 rows to {tmp_path / 'cli'}\n"
    assert [sha256_file(tmp_path / "cli" / p.name) for p in expected] == [
        sha256_file(p) for p in expected
    ]


def test_datagen_refuses_non_empty_directory_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("x")

    code, _, err = _run(capsys, "datagen", tmp_path / "d", "--rows", 10)

    assert code == 2
    assert _error_lines(err) == [
        f"retrain: error: {tmp_path / 'd'}: output directory exists and is not empty"
    ]


def test_datagen_refuses_drift_out_of_range(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(capsys, "datagen", tmp_path / "d", "--rows", 10, "--drift", 9)

    assert code == 2
    assert "drift must be a number in [-5, 5]" in err
    assert not (tmp_path / "d").exists()


# ---------------------------------------------------------------------------
# store


def test_store_put_then_fetch_copies_gives_a_verified_directory(
    capsys: pytest.CaptureFixture[str], dataset: Dataset, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    dest = tmp_path / "fetched"

    put = _run(capsys, "store", "put", dataset.manifest_path, dataset.root, "--store", store)
    fetch = _run(capsys, "store", "fetch", dataset.manifest_path, dest, "--store", store, "--copy")
    verify = _run(capsys, "manifest", "verify", dataset.manifest_path, dest)

    assert put[:2] == (0, f"stored dataset unit-test-data: 3 new of 3 files in {store}\n")
    assert fetch[:2] == (0, f"fetched dataset unit-test-data: 3 files into {dest}\n")
    assert verify[0] == 0
    assert not any(p.is_symlink() for p in dest.iterdir())


def test_store_fetch_links_files_into_the_store_by_default(
    capsys: pytest.CaptureFixture[str], dataset: Dataset, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    _run(capsys, "store", "put", dataset.manifest_path, dataset.root, "--store", store)

    code, _, _ = _run(
        capsys, "store", "fetch", dataset.manifest_path, tmp_path / "out", "--store", store
    )

    assert code == 0
    for entry in dataset.manifest.entries:
        link = tmp_path / "out" / entry.path
        assert link.is_symlink()
        assert os.path.realpath(link).endswith(f"/sha256/{entry.sha256[:2]}/{entry.sha256}")


def test_store_put_refuses_a_tampered_directory_and_stores_nothing(
    capsys: pytest.CaptureFixture[str], dataset: Dataset, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    _flip_byte(dataset.file(0))

    code, _, err = _run(
        capsys, "store", "put", dataset.manifest_path, dataset.root, "--store", store
    )

    assert code == 1
    assert len(_error_lines(err)) == 1
    assert not store.exists()


def test_store_fetch_from_an_empty_store_exits_2_naming_a_missing_file(
    capsys: pytest.CaptureFixture[str], dataset: Dataset, tmp_path: Path
) -> None:
    code, _, err = _run(
        capsys,
        "store",
        "fetch",
        dataset.manifest_path,
        tmp_path / "out",
        "--store",
        tmp_path / "empty",
    )

    assert code == 2
    (line,) = _error_lines(err)
    assert "3 of 3 files of dataset 'unit-test-data' are not in the store" in line
    assert "part-00000.parquet" in line


def test_store_path_prints_the_default_store(
    capsys: pytest.CaptureFixture[str], _private_default_store: Path
) -> None:
    code, out, _ = _run(capsys, "store", "path")

    assert (code, out) == (0, f"{_private_default_store}\n")


# ---------------------------------------------------------------------------
# usage


def test_missing_argument_is_a_usage_error_exiting_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "manifest", "verify")

    assert code == 2
    assert "Missing argument 'MANIFEST'" in err
    assert "Traceback" not in err


def test_unknown_command_is_a_usage_error_exiting_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "frobnicate")

    assert code == 2
    assert "No such command 'frobnicate'" in err


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--version")

    assert (code, out) == (0, "retrain, version 0.1.0\n")


def test_installed_retrain_command_prints_help(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "retrain"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: retrain [OPTIONS] COMMAND [ARGS]...")
    for command in ("datagen", "manifest", "store"):
        assert command in result.stdout


def test_policy_init_requires_a_champion_for_production_unless_told_not_to(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from retrain.attest.keys import generate_key_pair
    from retrain.attest.trust import load_policy

    pair = generate_key_pair(tmp_path / "ops.pem")
    root = generate_key_pair(tmp_path / "root.pem")
    common = ["policy", "init", "--key", f"ops={pair.public}", "--root", f"root={root.public}"]
    common += ["--expires", "2100-01-01T00:00:00Z"]

    code, _, err = _run(capsys, *common, "-o", tmp_path / "strict.json")
    assert code == 0, err
    code, _, err = _run(capsys, *common, "--no-require-champion", "-o", tmp_path / "lax.json")
    assert code == 0, err
    for name in ("strict.json", "lax.json"):
        code, _, err = _run(capsys, "policy", "sign", tmp_path / name, "--key", root.private)
        assert code == 0, err

    strict = json.loads((tmp_path / "strict.json").read_text())["signed"]
    assert strict["promotion"]["stages"]["production"]["require_champion"] is True
    lax = json.loads((tmp_path / "lax.json").read_text())["signed"]
    assert "require_champion" not in lax["promotion"]["stages"]["production"]
    for name, expected in (("strict.json", True), ("lax.json", False)):
        rules = load_policy(tmp_path / name).promotion
        assert rules is not None
        assert rules.stages["production"].require_champion is expected
