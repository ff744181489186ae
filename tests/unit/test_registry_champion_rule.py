"""``require_champion`` as a pure rule: ``champion_errors`` on states built by ``apply_entry``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from retrain.attest.keys import generate_key_pair
from retrain.attest.policy import TrustPolicy
from retrain.attest.promotion import Checkpoint, PromotionPredicate
from retrain.registry import apply_entry, champion_errors

A, B, C = ("a" * 64, "b" * 64, "c" * 64)


@pytest.fixture(scope="module")
def keyid_and_policies(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, dict[bool, TrustPolicy]]:
    pair = generate_key_pair(tmp_path_factory.mktemp("keys") / "ops.pem")
    policies = {
        strict: TrustPolicy.for_keys(
            [("ops", Path(pair.public).read_text())],
            expires=datetime(2100, 1, 1, tzinfo=UTC),
            require_champion=strict,
        )
        for strict in (True, False)
    }
    return pair.keyid, policies


def _entry(
    state: Checkpoint, keyid: str, model: str, stage: str, action: str = "promote"
) -> PromotionPredicate:
    current = state.stages.get(stage)
    return PromotionPredicate(
        position=state.size + 1,
        previous_entry=state.head,
        action=action,
        stage=stage,
        traffic={"shadow": 0, "canary": 10, "production": 100}[stage],
        model_sha256=model,
        previous_model=None if current is None else current.model_sha256,
        approvers=(keyid,),
        time="2026-11-26T00:00:00Z",
    )


def _serving(keyid: str, model: str) -> Checkpoint:
    state = Checkpoint.empty()
    p = _entry(state, keyid, model, "production")
    return apply_entry(state, "sha256:" + "0" * 64, p)


@pytest.mark.parametrize(
    ("champion", "allowed"),
    [(A, True), (None, False), (C, False)],
    ids=["evaluated-against-the-serving-model", "no-champion", "another-champion"],
)
def test_replacing_production_needs_the_serving_model_as_champion(
    keyid_and_policies: tuple[str, dict[bool, TrustPolicy]], champion: str | None, allowed: bool
) -> None:
    keyid, policies = keyid_and_policies
    state = _serving(keyid, A)
    errors = champion_errors(state, _entry(state, keyid, B, "production"), policies[True], champion)
    if allowed:
        assert errors == []
    else:
        found = champion[:12] if champion else "no champion"
        assert errors == [
            f"model {B[:12]} was not evaluated against the model serving production: "
            f"expected champion {A[:12]}, found {found} (the policy requires it; rebuild the "
            "candidate with that model as its champion)"
        ]


def test_the_rule_applies_only_where_it_means_something(
    keyid_and_policies: tuple[str, dict[bool, TrustPolicy]],
) -> None:
    keyid, policies = keyid_and_policies
    strict, lax = policies[True], policies[False]
    empty = Checkpoint.empty()
    serving = _serving(keyid, A)
    # A first production model has nothing to be compared with.
    assert champion_errors(empty, _entry(empty, keyid, B, "production"), strict, None) == []
    # Other stages, and rollbacks, are not evaluations against production.
    for stage in ("shadow", "canary"):
        assert champion_errors(serving, _entry(serving, keyid, B, stage), strict, None) == []
    rollback = _entry(serving, keyid, B, "production", action="rollback")
    assert champion_errors(serving, rollback, strict, None) == []
    # Without require_champion, anything goes.
    assert champion_errors(serving, _entry(serving, keyid, B, "production"), lax, None) == []
