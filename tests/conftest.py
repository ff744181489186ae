"""Session-wide test fixtures: a signing key of the tests' own, and shared Bazel.

Builds sign their attestation chains. Tests must never touch a developer's
keys: every Bazel build in the suite signs with a key pair generated for the
session (RETRAIN_SIGNING_KEY), and XDG_CONFIG_HOME points into the session's
temporary directory so no development key is created in the real home.

Bazel fixtures are here (not in tests/integration) so that integration and
adversarial tests share one output base per workspace for the whole session.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrain.attest.keys import KeyPairPaths, generate_key_pair
from tests.bazel_harness import REPO_ROOT, BazelWorkspace, copy_workspace


@pytest.fixture(scope="session", autouse=True)
def test_signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyPairPaths]:
    home = tmp_path_factory.mktemp("signing")
    pair = generate_key_pair(home / "keys" / "test-signer.pem")
    saved = {k: os.environ.get(k) for k in ("RETRAIN_SIGNING_KEY", "XDG_CONFIG_HOME")}
    os.environ["RETRAIN_SIGNING_KEY"] = str(pair.private)
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    yield pair
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def test_policy_path(
    test_signing_key: KeyPairPaths, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A policy that trusts the session's key for every step, signed by it as its root.

    Dirty-tree builds may reach every stage: the tests' models are built from
    scratch copies of a working tree, which have no git history to be clean in.
    """
    from datetime import UTC, datetime

    from retrain.attest.policy import TrustPolicy
    from retrain.attest.promotion import STAGES
    from tests.policy_support import write_policy

    policy = TrustPolicy.for_keys(
        [("test-signer", test_signing_key.public.read_text())],
        expires=datetime(2100, 1, 1, tzinfo=UTC),
        allow_dirty=STAGES,
    )
    return write_policy(tmp_path_factory.mktemp("policy") / "policy.json", policy, test_signing_key)


# ---------------------------------------------------------------------------
# Real Bazel, shared across the session


def _require_bazel() -> None:
    if shutil.which("bazel") is None:
        pytest.fail("bazel is not installed: run scripts/setup.sh (apt package bazel-bootstrap)")


@pytest.fixture(scope="session")
def bazel_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_bazel()
    return tmp_path_factory.mktemp("bazel")


@pytest.fixture(scope="session")
def repo_bazel(bazel_root: Path) -> Iterator[BazelWorkspace]:
    """The repository itself, with one output base shared by the session."""
    ws = BazelWorkspace(REPO_ROOT, bazel_root / "repo-output-base")
    yield ws
    ws.shutdown()


@pytest.fixture(scope="session")
def candidate(repo_bazel: BazelWorkspace) -> dict[str, str]:
    """sha256 of each output of //models:candidate, built once per session."""
    repo_bazel.must_build("//models:candidate")
    return repo_bazel.outputs()


@pytest.fixture(scope="session")
def candidate_payloads(repo_bazel: BazelWorkspace, candidate: dict[str, str]) -> dict[str, str]:
    """sha256 of each signed link's payload in the session build."""
    return repo_bazel.signed_payloads()


@pytest.fixture(scope="session")
def scratch(bazel_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BazelWorkspace]:
    """A copy of the repository that tests may edit (they restore what they change)."""
    root = copy_workspace(tmp_path_factory.mktemp("scratch") / "ws")
    ws = BazelWorkspace(root, bazel_root / "scratch-output-base")
    yield ws
    ws.shutdown()
