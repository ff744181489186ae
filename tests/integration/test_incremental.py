"""What a change to the workspace does to //models:candidate: fail, rebuild, or nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bazel_harness import BazelWorkspace, sha256_of

pytestmark = [pytest.mark.bazel, pytest.mark.slow]


@pytest.fixture(scope="module")
def baseline(scratch: BazelWorkspace) -> dict[str, str]:
    scratch.must_build("//models:candidate")
    return scratch.outputs()


@pytest.fixture
def edit(scratch: BazelWorkspace) -> Iterator[object]:
    """edit(relpath, transform) changes a scratch file; restored after the test."""
    saved: dict[Path, bytes] = {}

    def apply(rel: str, transform) -> Path:  # type: ignore[no-untyped-def]
        path = scratch.root / rel
        saved.setdefault(path, path.read_bytes())
        path.write_bytes(transform(path.read_bytes()))
        return path

    yield apply
    for path, data in saved.items():
        path.write_bytes(data)


def _deps(ws: BazelWorkspace) -> dict[str, dict]:
    statement = json.loads((ws.bazel_bin() / "models/candidate/provenance.json").read_text())
    return {d["name"]: d for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]}


def test_second_build_runs_no_action(scratch: BazelWorkspace, baseline: dict[str, str]) -> None:
    assert scratch.executed_spawns("//models:candidate") == []
    assert scratch.outputs() == baseline


def test_touching_an_unrelated_file_rebuilds_nothing(
    scratch: BazelWorkspace, baseline: dict[str, str], edit
) -> None:  # type: ignore[no-untyped-def]
    (scratch.root / "README.md").touch()
    edit("README.md", lambda b: b + b"\nan unrelated edit\n")
    edit("tests/unit/__init__.py", lambda b: b + b"# unrelated\n")
    assert scratch.executed_spawns("//models:candidate") == []
    assert scratch.outputs() == baseline


def test_a_changed_recipe_changes_every_output_and_the_provenance(
    scratch: BazelWorkspace, baseline: dict[str, str], edit
) -> None:  # type: ignore[no-untyped-def]
    recipe = edit(
        "models/candidate.recipe.json",
        lambda b: b.replace(b'"learning_rate": 0.05', b'"learning_rate": 0.07'),
    )
    result = scratch.must_build("//models:candidate")
    assert "linux-sandbox" in result.stderr
    changed = scratch.outputs()
    assert all(changed[name] != baseline[name] for name in baseline)
    assert _deps(scratch)["models/candidate.recipe.json"]["digest"]["sha256"] == sha256_of(recipe)


def test_a_changed_source_file_changes_the_model_and_the_provenance(
    scratch: BazelWorkspace, baseline: dict[str, str], edit
) -> None:  # type: ignore[no-untyped-def]
    source = edit("retrain/train.py", lambda b: b + b"\n# a comment changes the code digest\n")
    scratch.must_build("//models:candidate")
    changed = scratch.outputs()
    # The model embeds the code digest, and everything naming the model
    # changes with it; the gate verdicts do not (the predictions are the same).
    assert [name for name in baseline if changed[name] == baseline[name]] == ["gates.txt"]
    assert _deps(scratch)["retrain/train.py"]["digest"]["sha256"] == sha256_of(source)


def test_one_flipped_byte_in_a_data_file_fails_the_build_naming_file_expected_and_found(
    scratch: BazelWorkspace, baseline: dict[str, str], edit
) -> None:  # type: ignore[no-untyped-def]
    rel = "data/default/part-00001.parquet"
    original = (scratch.root / rel).read_bytes()
    expected_sha = sha256_of(scratch.root / rel)

    def flip(b: bytes) -> bytes:
        i = len(b) // 2
        return b[:i] + bytes([b[i] ^ 0x01]) + b[i + 1 :]

    out = scratch.bazel_bin() / "models/candidate"
    before = {n: sha256_of(out / n) for n in baseline if (out / n).exists()}
    path = edit(rel, flip)
    result = scratch.build("//models:candidate")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("retrain: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    line = errors[0]
    assert rel in line and "sha256 mismatch" in line
    assert f"expected {expected_sha}" in line and f"found {sha256_of(path)}" in line
    assert "Traceback" not in result.stderr
    # Nothing new was written: the verification record is gone and the
    # candidate's outputs are exactly what they were before this build.
    assert not (scratch.bazel_bin() / "models/default.verified.json").exists()
    assert {n: sha256_of(out / n) for n in baseline if (out / n).exists()} == before
    assert original != path.read_bytes()


def test_no_cacheable_action_inherits_the_caller_environment(scratch: BazelWorkspace) -> None:
    from retrain.hermetic import ACTION_ENV, expected_blas_coretype

    result = scratch.run(
        "aquery", "--output=jsonproto", 'mnemonic("Retrain.*", deps(//models:candidate))'
    )
    assert result.ok, result.stderr
    actions = json.loads(result.stdout)["actions"]
    assert {a["mnemonic"] for a in actions} == {
        "RetrainVerifyDataset",
        "RetrainRegistryChampion",
        "RetrainTrain",
        "RetrainEvaluate",
        "RetrainProvenance",
        "RetrainReport",
        "RetrainSign",
    }
    for action in actions:
        env = {kv["key"]: kv["value"] for kv in action.get("environmentVariables", [])}
        site = env.pop("PYTHONPATH")
        assert re.fullmatch(r"external/retrain(_sign)?_py/site-packages:\.", site), site
        assert env.pop("OPENBLAS_CORETYPE") == expected_blas_coretype()
        assert env == dict(ACTION_ENV), action["mnemonic"]
