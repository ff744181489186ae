"""The provenance statement of //models:candidate names every output and every input."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import pytest

from retrain.manifest import load_manifest
from retrain.serialize import read_model_header
from tests.bazel_harness import REPO_ROOT, BazelWorkspace, sha256_of

pytestmark = [pytest.mark.bazel]


@pytest.fixture(scope="module")
def out_dir(repo_bazel: BazelWorkspace, candidate: dict[str, str]) -> Path:
    return repo_bazel.bazel_bin() / "models" / "candidate"


@pytest.fixture(scope="module")
def statement(out_dir: Path) -> dict:
    return json.loads((out_dir / "provenance.json").read_text())


def _deps(statement: dict) -> dict[str, dict]:
    return {d["name"]: d for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]}


def test_statement_is_in_toto_v1_with_slsa_provenance_v1(statement: dict) -> None:
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"


def test_subjects_list_every_other_output_by_sha256(
    statement: dict, candidate: dict[str, str]
) -> None:
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    expected = {name: sha for name, sha in candidate.items() if name != "provenance.json"}
    assert subjects == expected


def test_dependencies_list_each_source_file_with_its_sha256(statement: dict) -> None:
    deps = _deps(statement)
    for path in sorted((REPO_ROOT / "retrain").rglob("*.py")):
        rel = path.relative_to(REPO_ROOT).as_posix()
        assert deps[rel]["digest"]["sha256"] == sha256_of(path), rel
    for rel in (
        "models/candidate.recipe.json",
        "models/BUILD.bazel",
        "WORKSPACE",
        ".bazelrc",
        "rules/defs.bzl",
    ):
        assert deps[rel]["digest"]["sha256"] == sha256_of(REPO_ROOT / rel), rel
    assert deps["source"]["digest"]["sha256"]


def test_dependencies_list_the_lock_file_by_sha256(statement: dict) -> None:
    lock = _deps(statement)["requirements/runtime.lock"]
    assert lock["digest"]["sha256"] == sha256_of(REPO_ROOT / "requirements/runtime.lock")
    assert any(d.startswith("scikit-learn==") for d in lock["annotations"]["distributions"])


def test_dependencies_list_the_dataset_by_dataset_and_manifest_digest(statement: dict) -> None:
    manifest = load_manifest(REPO_ROOT / "data_manifests/default.json")
    ds = _deps(statement)["dataset/default"]
    assert "sha256:" + ds["digest"]["sha256"] == manifest.dataset_digest
    assert ds["annotations"]["manifestSha256"] == sha256_of(
        REPO_ROOT / "data_manifests/default.json"
    )
    assert ds["uri"] == "data_manifests/default.json"


def test_dependencies_list_the_toolchain(statement: dict) -> None:
    deps = _deps(statement)
    python = deps["toolchain/python"]
    assert python["annotations"]["version"].startswith("3.11.")
    assert len(python["digest"]["sha256"]) == 64
    assert deps["toolchain/bazel"]["annotations"]["version"]
    assert deps["toolchain/platform"]["annotations"]["machine"] == platform.machine().lower()


def test_statement_has_no_machine_paths_or_timestamps(
    statement: dict, repo_bazel: BazelWorkspace
) -> None:
    text = json.dumps(statement)
    for needle in (
        str(REPO_ROOT),
        str(repo_bazel.output_base),
        "/root/",
        "/home/",
        "/tmp/",
        "bazel-out",
    ):
        assert needle not in text, needle
    assert statement["predicate"]["runDetails"]["metadata"] == {}


def test_model_embeds_its_lineage(out_dir: Path) -> None:
    header = read_model_header((out_dir / "model.rtm").read_bytes())
    lineage = header["metadata"]["lineage"]
    assert (
        lineage["dataset"]["digest"]
        == load_manifest(REPO_ROOT / "data_manifests/default.json").dataset_digest
    )
    assert lineage["lock_sha256"] == sha256_of(REPO_ROOT / "requirements/runtime.lock")
    assert lineage["recipe"]["sha256"] == sha256_of(REPO_ROOT / "models/candidate.recipe.json")


def test_metrics_name_the_model_they_evaluated(out_dir: Path, candidate: dict[str, str]) -> None:
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["model"]["sha256"] == candidate["model.rtm"]
    assert 0.6 < metrics["metrics"]["auc"]["ci_low"] < metrics["metrics"]["auc"]["value"] < 1.0


def test_git_commit_is_recorded_when_the_workspace_is_a_clean_checkout(statement: dict) -> None:
    source = _deps(statement)["source"]
    head = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "HEAD"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    assert source["digest"]["gitCommit"] == head.stdout.strip()
    assert source["annotations"]["gitTreeState"] in ("clean", "dirty")
