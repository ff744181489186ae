"""//models:candidate is bit-identical whatever output base or caller environment builds it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.bazel_harness import REPO_ROOT, BazelWorkspace, base_env

pytestmark = [pytest.mark.bazel, pytest.mark.slow]


def test_candidate_is_bit_identical_in_two_fresh_output_bases(
    candidate: dict[str, str], candidate_payloads: dict[str, str], bazel_root: Path
) -> None:
    fresh = BazelWorkspace(REPO_ROOT, bazel_root / "fresh-output-base")
    try:
        fresh.must_build("//models:candidate")
        assert fresh.outputs() == candidate
        # Signatures differ run to run (ECDSA nonces); what they sign does not.
        assert fresh.signed_payloads() == candidate_payloads
    finally:
        fresh.shutdown()


def test_candidate_is_bit_identical_under_a_perturbed_caller_environment(
    candidate: dict[str, str], candidate_payloads: dict[str, str], bazel_root: Path
) -> None:
    env = base_env()
    env.update(
        {
            "PYTHONHASHSEED": "4242",
            "TZ": "America/St_Johns",
            "LANG": "de_DE.UTF-8",
            "LC_ALL": "de_DE.UTF-8",
            "OMP_NUM_THREADS": "2",
            "OPENBLAS_NUM_THREADS": "2",
            "MKL_NUM_THREADS": "2",
            "OPENBLAS_CORETYPE": "Haswell",
            "SOURCE_DATE_EPOCH": "1700000000",
            "PYTHONPATH": "/nonexistent",
            "PYTHONWARNINGS": "error",
        }
    )
    perturbed = BazelWorkspace(REPO_ROOT, bazel_root / "perturbed-output-base")
    try:
        # From a subdirectory, with a umask that makes every new file private.
        perturbed.must_build("//models:candidate", env=env, cwd=REPO_ROOT / "models", umask=0o077)
        assert perturbed.outputs() == candidate
        assert perturbed.signed_payloads() == candidate_payloads
    finally:
        perturbed.shutdown()


# What //models:candidate computes, pinned across changes to retrain's code
# (issue 12: a refactor keeps the bytes). The model records the digest of the
# code that trained it, and every later output names the model's sha256, so
# both are masked (full and 12-character forms) before hashing; everything
# else must be byte for byte what it was. A change that means to change what
# the build computes updates candidate_normalized.json in the same commit
# (run this module with RETRAIN_PIN_CANDIDATE=1 to rewrite it) and says why.
PINNED = Path(__file__).with_name("candidate_normalized.json")
NORMALIZED = ("model.rtm", "metrics.json", "gates.txt", "report.html", "train_report.json")


def normalized_digests(out: Path) -> dict[str, str]:
    report = json.loads((out / "train_report.json").read_text())
    code = report["lineage"]["code_digest"].removeprefix("sha256:")
    model = report["model_sha256"]
    masks = [(code, "C"), (model, "M"), (code[:12], "c"), (model[:12], "m")]
    digests = {}
    for name in NORMALIZED:
        data = (out / name).read_bytes()
        for value, tag in masks:
            data = data.replace(value.encode(), tag.encode() * len(value))
        digests[name] = hashlib.sha256(data).hexdigest()
    return digests


def test_candidate_computes_the_pinned_bytes_whatever_the_code_digest(
    candidate: dict[str, str], repo_bazel: BazelWorkspace
) -> None:
    found = normalized_digests(repo_bazel.bazel_bin() / "models" / "candidate")
    if os.environ.get("RETRAIN_PIN_CANDIDATE") == "1":
        PINNED.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
    assert found == json.loads(PINNED.read_text())
