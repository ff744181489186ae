"""``require_champion``: a model replaces production only if it was evaluated against it.

Two really built and signed models: A is the session's ``//models:candidate``
(evaluated against the repository's production model, 261f16e72667); C is the candidate recipe with another learning
rate, built in the scratch workspace with A wired in as its champion
(``champion_model``), so its signed evaluation names A. Under a policy whose
production rule says ``require_champion``:

| production serves | promoted to production | outcome                                                  |
|-------------------|------------------------|----------------------------------------------------------|
| nothing           | C                      | accepted (a first production model has no champion)      |
| A                 | C (champion A)         | accepted                                                 |
| C                 | A (champion 261f…)     | refused: expected champion C, found 261f…; nothing written |
| C                 | A, policy without it   | accepted (the rule is the policy's choice)               |

The CLI runs in-process, as in test_registry_attacks.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from retrain.attest.keys import KeyPairPaths, load_signer
from retrain.attest.policy import TrustPolicy
from retrain.attest.trust import load_policy
from retrain.registry import Registry
from tests.adversarial.test_registry_attacks import (
    Promote,
    apply_steps,
    copy_model,
    model_sha,
    refused_and_unchanged,
    retrain,
)
from tests.bazel_harness import BazelWorkspace, write_champion_package
from tests.policy_support import write_successor

pytestmark = [pytest.mark.bazel, pytest.mark.slow]


@pytest.fixture(scope="module")
def signer(test_signing_key: KeyPairPaths) -> Any:
    return load_signer(test_signing_key.private)


@pytest.fixture(scope="module")
def model_a(
    repo_bazel: BazelWorkspace, candidate: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    dest = tmp_path_factory.mktemp("champion-a") / "candidate"
    return copy_model(repo_bazel.bazel_bin() / "models" / "candidate", dest)


@pytest.fixture(scope="module")
def model_c(
    scratch: BazelWorkspace,
    model_a: Path,
    test_policy_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """Learning rate 0.08, evaluated against A (wired in as //champion_a)."""
    pkg = scratch.root / "champion_a"
    recipe = scratch.root / "models" / "candidate.recipe.json"
    build = scratch.root / "models" / "BUILD.bazel"
    saved = {recipe: recipe.read_bytes(), build: build.read_bytes()}
    try:
        assert write_champion_package(pkg, model_a, test_policy_path) == "//champion_a"
        anchor = b'    champion = "//attestations:production",\n'
        assert anchor in saved[build]
        build.write_bytes(saved[build].replace(anchor, b'    champion = "//champion_a",\n', 1))
        assert b'"learning_rate": 0.05' in saved[recipe]
        recipe.write_bytes(
            saved[recipe].replace(b'"learning_rate": 0.05', b'"learning_rate": 0.08')
        )
        scratch.must_build("//models:candidate")
        dest = copy_model(
            scratch.bazel_bin() / "models" / "candidate",
            tmp_path_factory.mktemp("champion-c") / "candidate",
        )
    finally:
        for path, data in saved.items():
            path.write_bytes(data)
        shutil.rmtree(pkg)
    assert model_sha(dest) != model_sha(model_a)
    gates = (dest / "gates.txt").read_text()
    assert "FAILED" not in gates, f"model C must pass its gates for these tests:\n{gates}"
    return dest


@pytest.fixture(scope="module")
def champion_policy(
    test_policy_path: Path,
    test_signing_key: KeyPairPaths,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The session's test policy, its production rule requiring a champion."""
    raw = json.loads(test_policy_path.read_text())["signed"]
    raw["promotion"]["stages"]["production"]["require_champion"] = True
    path = tmp_path_factory.mktemp("champion-policy") / "policy.json"
    # The next version of the session's policy, so registries made under it chain.
    policy = TrustPolicy.from_dict(raw, where="champion-policy")
    write_successor(path, test_policy_path, policy, test_signing_key)
    assert load_policy(path).promotion.stages["production"].require_champion  # type: ignore[union-attr]
    return path


def evaluated_champion(model_dir: Path) -> str | None:
    """The champion the model's evaluation link names (read as it is, not verified)."""
    from retrain.attest.envelope import read_link_envelope
    from retrain.attest.predicates import EvaluationPredicate
    from retrain.attest.sign import LINK_FILES

    payload = read_link_envelope(model_dir / LINK_FILES["evaluation"]).payload
    predicate = EvaluationPredicate.from_dict(json.loads(payload)["predicate"], where="test")
    return predicate.champion_sha256


def _to_production(model: Path) -> list[Promote]:
    return [Promote(model, "shadow"), Promote(model, "canary", 10), Promote(model, "production")]


def test_the_evaluation_names_the_champion_it_was_compared_with(
    model_a: Path, model_c: Path
) -> None:
    assert evaluated_champion(model_a) not in (None, model_sha(model_c))
    assert evaluated_champion(model_c) == model_sha(model_a)
    metrics = json.loads((model_c / "metrics.json").read_text())
    assert metrics["champion"]["sha256"] == model_sha(model_a)


def test_a_first_production_model_needs_no_champion(
    model_c: Path, champion_policy: Path, signer: Any, tmp_path: Path
) -> None:
    registry = Registry(tmp_path / "registry", load_policy(champion_policy))
    apply_steps(registry, [signer], _to_production(model_c))
    assert registry.read_checkpoint().stages["production"].model_sha256 == model_sha(model_c)


def test_a_model_evaluated_against_the_serving_model_may_replace_it(
    model_a: Path,
    model_c: Path,
    champion_policy: Path,
    test_signing_key: KeyPairPaths,
    signer: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "registry"
    registry = Registry(root, load_policy(champion_policy))
    apply_steps(registry, [signer], [*_to_production(model_a), *_to_production(model_c)[:2]])

    outcome = retrain(
        capsys,
        root,
        champion_policy,
        "promote",
        model_c,
        "--to",
        "production",
        "--key",
        test_signing_key.private,
    )

    assert outcome.exit_code == 0, outcome.stderr
    assert registry.read_checkpoint().stages["production"].model_sha256 == model_sha(model_c)
    audit = retrain(capsys, root, champion_policy, "audit")
    assert audit.exit_code == 0, audit.stderr


def test_a_model_not_evaluated_against_the_serving_model_is_refused(
    model_a: Path,
    model_c: Path,
    champion_policy: Path,
    test_policy_path: Path,
    test_signing_key: KeyPairPaths,
    signer: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "registry"
    registry = Registry(root, load_policy(champion_policy))
    apply_steps(registry, [signer], [*_to_production(model_c), *_to_production(model_a)[:2]])
    args = ("promote", model_a, "--to", "production", "--key", test_signing_key.private)

    (line,) = refused_and_unchanged(capsys, root, champion_policy, args, reasons=1)

    a, c = model_sha(model_a)[:12], model_sha(model_c)[:12]
    other = str(evaluated_champion(model_a))[:12]
    assert line == (
        f"model {a} was not evaluated against the model serving production: "
        f"expected champion {c}, found {other} (the policy requires it; rebuild the "
        "candidate with that model as its champion)"
    )
    # The rule is the policy's: under its next version, without it, the same promotion lands.
    raw = json.loads(champion_policy.read_text())["signed"]
    raw["promotion"]["stages"]["production"]["require_champion"] = False
    lax = write_successor(
        tmp_path / "lax.json",
        champion_policy,
        TrustPolicy.from_dict(raw, where="lax"),
        test_signing_key,
    )
    outcome = retrain(capsys, root, lax, *args)
    assert outcome.exit_code == 0, outcome.stderr
    state = Registry(root, load_policy(lax)).read_checkpoint()
    assert state.stages["production"].model_sha256 == model_sha(model_a)
