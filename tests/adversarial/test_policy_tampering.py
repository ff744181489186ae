"""The trust policy under attack: every tampered policy file is refused by verify, promote and audit.

No Bazel: the model is the in-memory chain (``chain_support``) over the
manifests of a tiny repository (``promotion_support``). Keys: the root keys
R1 and R2, the model key S and a co-signer S2 (the build link and a canary
promotion need both: threshold 2), and an attacker's key A. Version 1 of the
policy has root R1 and is signed by it; the legitimate version 2 rotates the
root to R2, carries version 1 as its history, and is signed by R1 and R2.
One registry recorded version 1 (model A promoted to shadow under it); another
also recorded version 2 (model B promoted to shadow under it).

Each row is one tampered policy file, given to ``retrain verify`` (with
``--trust-root R1.pub`` and ``--registry``), to ``retrain promote`` (model A
to canary) and to ``retrain audit``, each of the last two also with
``--trust-root R1.pub``. Every one must refuse: exit 1, nothing on stdout,
only ``retrain: error:`` lines on stderr, one naming the policy file, never a
traceback; a refused promote leaves every file of the registry as it was.

Lines below: POLICY is the tampered file, CHECKPOINT the registry's
checkpoint.json; "hint" is " (--insecure-unsigned-policy accepts it for local
experiments)" without --trust-root, " (an unsigned policy cannot chain to a
trust root)" for format 1 with it. Every row exits 1 for every command (the exit column).

| row | the tampered file | the refusal line (``retrain: error: …``) | exit |
|-----|-------------------|-------------------------------------------|------|
| key added to a step | A added to keys and to steps.evaluation; R1's signature kept | POLICY: the trust policy does not verify: version 1 is not signed by its own root: expected 1 of [root1 (R1)], found 0[hint] | 1 |
| step threshold lowered | steps.build.threshold 2 → 1; signature kept | the same | 1 |
| promotion threshold lowered | promotion.stages.canary.threshold 2 → 1 (promote by S alone); signature kept | the same | 1 |
| root keys swapped | A (named "root1") made the only root, re-signed by A | with --trust-root: POLICY: the trust policy does not chain to the trust root: expected a version signed by R1 as root key(s), found versions 1..1 signed by A; without: CHECKPOINT: trust policy POLICY: version 1 is not the one the registry recorded: expected sha256:…, found sha256:… | 1 |
| older version replayed | the real version 1, to the registry that recorded version 2 | CHECKPOINT: trust policy POLICY is version 1, older than version 2 that the registry recorded: refusing to roll the policy back | 1 |
| unsigned | version 1 with signatures [] | as "key added to a step" | 1 |
| unsigned format 1 | version 1's rules as the unsigned format 1 | POLICY: the trust policy is unsigned (format 1): expected a policy signed by its root keys (retrain policy init --root, retrain policy sign), found no signatures[hint] | 1 |
| signed by a non-root key | version 1 signed by S instead of R1 | as "key added to a step" | 1 |
| version 2 by its new root alone, with history | version 2 signed by R2, not R1; version 1 as previous | POLICY: the trust policy does not verify: version 2 is not signed by the root of version 1: expected 1 of [root1 (R1)], found 0[hint] | 1 |
| version 2 by its new root alone, no history | version 2 signed by R2, not R1; no previous | with --trust-root: POLICY: the trust policy does not chain to the trust root: … found versions 2..2 signed by R2; without: CHECKPOINT: trust policy POLICY (version 2) does not chain to version 1 that the registry recorded: its history holds no earlier version | 1 |

Positive controls: the untouched version 1 and the legitimate version 2 pass
all three commands; after promoting under version 2, the new entry and the
checkpoint both record version 2.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from securesystemslib.dsse import Envelope

from retrain.attest.envelope import read_envelopes
from retrain.attest.keys import KeyPairPaths, generate_key_pair, load_signer
from retrain.attest.policy import TrustPolicy
from retrain.attest.trust import POLICY_PAYLOAD_TYPE, load_policy
from retrain.digest import canonical_json
from retrain.registry import Registry
from tests.adversarial.promotion_support import (
    Outcome,
    Repo,
    model_files,
    promotable_chain,
    run,
    tree,
    write_model,
    write_repo,
)
from tests.policy_support import write_raw_policy

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
V1_FROM = datetime(2020, 1, 1, tzinfo=UTC)
V2_FROM = datetime(2021, 1, 1, tzinfo=UTC)

Json = dict[str, Any]


@dataclass(frozen=True)
class Keys:
    root1: KeyPairPaths
    root2: KeyPairPaths
    signer: KeyPairPaths  # S: signs every link, promotes
    cosigner: KeyPairPaths  # S2: co-signs the build link and canary promotions
    attacker: KeyPairPaths  # A: trusted by no legitimate version


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    home = tmp_path_factory.mktemp("keys")
    return Keys(
        *(
            generate_key_pair(home / f"{name}.pem")
            for name in ("root1", "root2", "signer", "cosigner", "attacker")
        )
    )


def policy_content(keys: Keys, *, version: int, root: KeyPairPaths, not_before: datetime) -> Json:
    """A version's ``signed`` object: S and S2 sign links (the build needs both) and promote
    (canary needs both); ``root`` signs the policy."""
    policy = TrustPolicy.for_keys(
        [
            ("signer", keys.signer.public.read_text()),
            ("cosigner", keys.cosigner.public.read_text()),
        ],
        root_keys=[(root.private.stem, root.public.read_text())],
        expires=FAR_FUTURE,
        not_before=not_before,
        version=version,
        thresholds={"build": 2},
    )
    content = policy.to_dict()
    content["promotion"]["stages"]["canary"]["threshold"] = 2
    return content


@dataclass(frozen=True)
class Policies:
    v1: Path
    v2: Path  # the legitimate rotation: root R2, signed by R1 and R2, version 1 as history


def policy_file(path: Path) -> Json:
    data: Json = json.loads(path.read_text())
    return data


@pytest.fixture(scope="module")
def policies(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Policies:
    home = tmp_path_factory.mktemp("policies")
    v1 = write_raw_policy(
        home / "v1.json",
        policy_content(keys, version=1, root=keys.root1, not_before=V1_FROM),
        keys.root1,
    )
    v2 = write_raw_policy(
        home / "v2.json",
        policy_content(keys, version=2, root=keys.root2, not_before=V2_FROM),
        keys.root1,
        keys.root2,
        previous=[policy_file(v1)],
    )
    return Policies(v1, v2)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return write_repo(tmp_path_factory.mktemp("repo") / "repo")


@pytest.fixture(scope="module")
def signers(keys: Keys) -> tuple[Any, Any]:
    return load_signer(keys.signer.private), load_signer(keys.cosigner.private)


@dataclass(frozen=True)
class Models:
    a: Path
    b: Path


@pytest.fixture(scope="module")
def models(
    repo: Repo, signers: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory
) -> Models:
    """Two models; every link signed by S and S2. Never modified."""
    home = tmp_path_factory.mktemp("models")
    b_files = model_files(b"model B's bytes")
    return Models(
        a=write_model(home / "a", promotable_chain(repo), signers),
        b=write_model(home / "b", promotable_chain(repo, b_files), signers, files=b_files),
    )


@dataclass(frozen=True)
class Registries:
    v1: Path  # model A promoted to shadow under version 1
    v2: Path  # then model B promoted to shadow under version 2


@pytest.fixture(scope="module")
def registries(
    policies: Policies,
    models: Models,
    repo: Repo,
    signers: tuple[Any, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Registries:
    home = tmp_path_factory.mktemp("registries")
    Registry(home / "v1", load_policy(policies.v1), policy_where=str(policies.v1)).promote(
        models.a, "shadow", signers=signers[:1], repo_root=repo.root, now="2020-06-01T00:00:00Z"
    )
    shutil.copytree(home / "v1", home / "v2")
    Registry(home / "v2", load_policy(policies.v2), policy_where=str(policies.v2)).promote(
        models.b, "shadow", signers=signers[:1], repo_root=repo.root, now="2021-06-01T00:00:00Z"
    )
    return Registries(home / "v1", home / "v2")


# ---------------------------------------------------------------------------
# The tampered files


def signature_by(key: KeyPairPaths, content: Json) -> Json:
    """A policy signature over ``content`` by ``key``, made the way the library makes them."""
    envelope = Envelope(
        payload=canonical_json(content), payload_type=POLICY_PAYLOAD_TYPE, signatures={}
    )
    sig = envelope.sign(load_signer(key.private))
    return {"keyid": sig.keyid, "sig": base64.b64encode(bytes.fromhex(sig.signature)).decode()}


def key_entry(key: KeyPairPaths, name: str) -> Json:
    pem = key.public.read_text()
    listed = TrustPolicy.for_keys([(name, pem)], expires=FAR_FUTURE).to_dict()["keys"]
    entry: Json = listed[key.keyid]
    return entry


def add_key_to_a_step(doc: Json, keys: Keys, _: Policies) -> None:
    doc["signed"]["keys"][keys.attacker.keyid] = key_entry(keys.attacker, "attacker")
    doc["signed"]["steps"]["evaluation"]["functionaries"].append(keys.attacker.keyid)


def lower_the_build_threshold(doc: Json, keys: Keys, _: Policies) -> None:
    doc["signed"]["steps"]["build"]["threshold"] = 1


def lower_the_canary_threshold(doc: Json, keys: Keys, _: Policies) -> None:
    doc["signed"]["promotion"]["stages"]["canary"]["threshold"] = 1


def swap_the_root(doc: Json, keys: Keys, _: Policies) -> None:
    signed = doc["signed"]
    signed["keys"][keys.attacker.keyid] = key_entry(keys.attacker, "root1")
    signed["root"] = {"functionaries": [keys.attacker.keyid], "threshold": 1}
    doc["signatures"] = [signature_by(keys.attacker, signed)]


def replay_version_1(doc: Json, keys: Keys, _: Policies) -> None:
    """Nothing to change: the real version 1, replayed to a registry that recorded version 2."""


def drop_the_signatures(doc: Json, keys: Keys, _: Policies) -> None:
    doc["signatures"] = []


def downgrade_to_format_1(doc: Json, keys: Keys, _: Policies) -> None:
    signed = doc.pop("signed")
    doc.pop("signatures")
    for field in ("version", "notBefore", "root"):
        signed.pop(field)
    doc.update(signed, policy_version=1)


def sign_with_the_model_key(doc: Json, keys: Keys, _: Policies) -> None:
    doc["signatures"] = [signature_by(keys.signer, doc["signed"])]


def next_version_by_its_new_root(*, history: bool) -> Callable[[Json, Keys, Policies], None]:
    def change(doc: Json, keys: Keys, policies: Policies) -> None:
        v2 = policy_file(policies.v2)
        doc.clear()
        doc["signed"] = v2["signed"]
        doc["signatures"] = [signature_by(keys.root2, v2["signed"])]
        if history:
            doc["previous"] = v2["previous"]

    return change


@dataclass(frozen=True)
class Row:
    tamper: Callable[[Json, Keys, Policies], None]
    registry: str = "v1"  # which registry the file is given to
    promoters: Sequence[str] = ("signer", "cosigner")


ROWS = {
    "key-added-to-a-step": Row(add_key_to_a_step),
    "step-threshold-lowered": Row(lower_the_build_threshold),
    "promotion-threshold-lowered": Row(lower_the_canary_threshold, promoters=("signer",)),
    "root-keys-swapped": Row(swap_the_root),
    "older-version-replayed": Row(replay_version_1, registry="v2"),
    "unsigned": Row(drop_the_signatures),
    "unsigned-format-1": Row(downgrade_to_format_1),
    "signed-by-a-non-root-key": Row(sign_with_the_model_key),
    "next-version-by-its-new-root-with-history": Row(next_version_by_its_new_root(history=True)),
    "next-version-by-its-new-root-no-history": Row(next_version_by_its_new_root(history=False)),
}

COMMANDS = ["verify", "promote", "promote --trust-root", "audit", "audit --trust-root"]


# ---------------------------------------------------------------------------
# Running the three commands


def command(
    capsys: pytest.CaptureFixture[str],
    name: str,
    *,
    policy: Path,
    registry: Path,
    keys: Keys,
    models: Models,
    repo: Repo,
    promoters: Sequence[str] = ("signer", "cosigner"),
) -> Outcome:
    anchor = ("--trust-root", keys.root1.public)
    if name == "verify":
        return run(
            capsys,
            "verify",
            models.a,
            "--policy",
            policy,
            "--repo",
            repo.root,
            "--registry",
            registry,
            *anchor,
        )
    verb, _, anchored = name.partition(" ")
    options = [
        "--registry",
        registry,
        "--policy",
        policy,
        *(anchor if anchored else ()),
    ]
    if verb == "promote":
        approvers = [a for p in promoters for a in ("--key", getattr(keys, p).private)]
        return run(
            capsys, "promote", models.a, "--to", "canary", *approvers, "--repo", repo.root, *options
        )
    return run(capsys, "audit", *options)


@pytest.fixture
def registry_copies(registries: Registries, tmp_path: Path) -> Registries:
    """Private copies: a command that should have refused may have written."""
    return Registries(
        Path(shutil.copytree(registries.v1, tmp_path / "registry-v1")),
        Path(shutil.copytree(registries.v2, tmp_path / "registry-v2")),
    )


def tampered(tmp_path: Path, policies: Policies, keys: Keys, row: Row) -> Path:
    doc = policy_file(policies.v1)
    row.tamper(doc, keys, policies)
    path = tmp_path / "tampered-policy.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_a_tampered_policy_is_refused(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    policies: Policies,
    registry_copies: Registries,
    keys: Keys,
    models: Models,
    repo: Repo,
    row: Row,
    name: str,
) -> None:
    policy = tampered(tmp_path, policies, keys, row)
    registry = getattr(registry_copies, row.registry)
    before = tree(registry)

    outcome = command(
        capsys,
        name,
        policy=policy,
        registry=registry,
        keys=keys,
        models=models,
        repo=repo,
        promoters=row.promoters,
    )

    assert outcome.exit_code == 1, outcome.stdout + outcome.stderr
    assert outcome.stdout == ""
    assert outcome.lines, "no error line"
    assert all(line.startswith("retrain: error: ") for line in outcome.lines), outcome.lines
    assert any(str(policy) in line for line in outcome.lines), outcome.lines
    assert tree(registry) == before


# ---------------------------------------------------------------------------
# Positive controls


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_an_untampered_policy_passes(
    capsys: pytest.CaptureFixture[str],
    policies: Policies,
    registry_copies: Registries,
    keys: Keys,
    models: Models,
    repo: Repo,
    version: str,
    name: str,
) -> None:
    outcome = command(
        capsys,
        name,
        policy=getattr(policies, version),
        registry=registry_copies.v1,
        keys=keys,
        models=models,
        repo=repo,
    )

    assert outcome.exit_code == 0, outcome.stdout + outcome.stderr
    assert "retrain: error" not in outcome.stderr


def recorded_policy_version(path: Path, key: str = "policy") -> int:
    (envelope,) = read_envelopes(path)
    payload = json.loads(envelope.payload)
    version: int = (payload.get("predicate") or payload)[key]["version"]
    return version


def test_a_promotion_under_the_rotated_policy_records_version_2(
    capsys: pytest.CaptureFixture[str],
    policies: Policies,
    registry_copies: Registries,
    keys: Keys,
    models: Models,
    repo: Repo,
) -> None:
    registry = registry_copies.v1
    assert recorded_policy_version(registry / "checkpoint.json") == 1

    outcome = command(
        capsys,
        "promote",
        policy=policies.v2,
        registry=registry,
        keys=keys,
        models=models,
        repo=repo,
    )

    assert outcome.exit_code == 0, outcome.stderr
    assert recorded_policy_version(registry / "log" / "00000002.json") == 2
    assert recorded_policy_version(registry / "checkpoint.json") == 2
    assert recorded_policy_version(registry / "log" / "00000001.json") == 1


def test_the_registry_that_recorded_version_2_accepts_it(
    capsys: pytest.CaptureFixture[str],
    policies: Policies,
    registry_copies: Registries,
    keys: Keys,
    models: Models,
    repo: Repo,
) -> None:
    """The replay row's registry refuses version 1 for what it is, not for being broken."""
    outcome = command(
        capsys,
        "audit",
        policy=policies.v2,
        registry=registry_copies.v2,
        keys=keys,
        models=models,
        repo=repo,
    )

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.startswith("OK: 2 entries"), outcome.stdout
