"""//models:candidate is bit-identical whatever output base or caller environment builds it."""

from __future__ import annotations

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
