"""Session fixtures for integration tests: real Bazel, shared output bases."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bazel_harness import REPO_ROOT, BazelWorkspace, copy_workspace


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
