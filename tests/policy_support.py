"""Signed trust policies for tests: every policy a test writes is signed by its root.

``TrustPolicy.for_keys`` makes the policy's own keys its root unless told
otherwise, so a test signs with the same private keys it names.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from securesystemslib.signer import CryptoSigner

from retrain._internal.fsio import atomic_write_json
from retrain.attest.keys import KeyPairPaths, load_signer
from retrain.attest.policy import TrustPolicy
from retrain.attest.trust import read_policy_file, sign_policy_file, write_policy_file

__all__ = ["signer_of", "write_policy", "write_raw_policy", "write_successor"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def signer_of(key: KeyPairPaths | CryptoSigner | Path) -> CryptoSigner:
    if isinstance(key, CryptoSigner):
        return key
    return load_signer(key.private if isinstance(key, KeyPairPaths) else key)


def write_policy(
    path: Path, policy: TrustPolicy, *roots: KeyPairPaths | CryptoSigner | Path
) -> Path:
    """``policy`` written as a format-2 file, signed by each of ``roots``."""
    write_policy_file(path, policy, signers=[signer_of(r) for r in roots])
    return path


def write_raw_policy(
    path: Path,
    signed: Mapping[str, Any],
    *roots: KeyPairPaths | CryptoSigner | Path,
    previous: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """A policy file around a raw ``signed`` object (a test's edit of ``to_dict()``), signed."""
    content: dict[str, Any] = {"signed": copy.deepcopy(dict(signed)), "signatures": []}
    if previous:
        content["previous"] = [copy.deepcopy(dict(p)) for p in previous]
    atomic_write_json(path, content)
    if roots:
        sign_policy_file(path, [signer_of(r) for r in roots])
    return path


def write_successor(
    path: Path,
    previous: Path,
    policy: TrustPolicy,
    *roots: KeyPairPaths | CryptoSigner | Path,
) -> Path:
    """``policy`` as the next version of the signed policy at ``previous``, carrying its history.

    ``roots`` must include the previous version's root threshold and this
    one's for the result to verify (a test of a bad rotation signs with fewer).
    """
    current, history = read_policy_file(previous)
    assert not isinstance(current, TrustPolicy), "a format-1 policy has no version"
    # Like ``policy init --supersedes``: in force from now unless the test
    # says when. 1970 (``for_keys``'s default) or the previous version's own
    # notBefore (its fields copied) would replace it before entries made
    # under it.
    not_before = policy.not_before
    if not_before in (None, _EPOCH, current.policy.not_before):
        not_before = datetime.now(UTC).replace(microsecond=0)
    successor = dataclasses.replace(
        policy, version=current.policy.version + 1, not_before=not_before
    ).with_digest()
    write_policy_file(
        path, successor, previous=(*history, current), signers=[signer_of(r) for r in roots]
    )
    return path
