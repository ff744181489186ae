"""Session-wide test environment: a signing key of the tests' own.

Builds sign their attestation chains. Tests must never touch a developer's
keys: every Bazel build in the suite signs with a key pair generated for the
session (RETRAIN_SIGNING_KEY), and XDG_CONFIG_HOME points into the session's
temporary directory so no development key is created in the real home.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrain.attest.keys import KeyPairPaths, generate_key_pair


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
    """A policy that trusts the session's key for every step."""
    from datetime import UTC, datetime

    from retrain._internal.fsio import atomic_write_json
    from retrain.attest.policy import TrustPolicy

    policy = TrustPolicy.for_keys(
        [("test-signer", test_signing_key.public.read_text())],
        expires=datetime(2100, 1, 1, tzinfo=UTC),
    )
    path = tmp_path_factory.mktemp("policy") / "policy.json"
    atomic_write_json(path, policy.to_dict())
    return path
