"""The promotion rules, pure: what an entry does to the state, and what the policy forbids.

Nothing here reads or writes a file: each function takes the registry's
state (a ``Checkpoint``), a planned entry and the trust policy, and returns
the next state or the reasons the entry is refused. ``promote``,
``rollback`` and ``audit`` all judge entries with these same functions.
"""

from __future__ import annotations

from collections.abc import Sequence

from retrain.attest.policy import TrustPolicy, format_time
from retrain.attest.promotion import STAGES, Checkpoint, PolicyRef, PromotionPredicate, StageState

__all__ = [
    "CLEAN",
    "apply_entry",
    "authorization_errors",
    "champion_errors",
    "dirty_errors",
    "policy_order_errors",
    "promotion_roles",
    "reason_errors",
    "time_order_errors",
    "transition_errors",
]

CLEAN = "clean"  # the gitTreeState of a build from a committed tree


def apply_entry(state: Checkpoint, entry_hash: str, p: PromotionPredicate) -> Checkpoint:
    """The state after one entry (pure): who serves each stage, what reached where."""
    stages = dict(state.stages)
    reached = {m: tuple(v) for m, v in state.reached.items()}
    history = list(state.production_history)
    serving = StageState(p.model_sha256, p.traffic, p.position, p.approvers, p.time)
    stages[p.stage] = serving
    if p.action == "promote":
        reached[p.model_sha256] = tuple(sorted(set(reached.get(p.model_sha256, ())) | {p.stage}))
        # A model moving up leaves the stage it held: one model, one stage.
        for lower in STAGES[: STAGES.index(p.stage)]:
            held = stages.get(lower)
            if held is not None and held.model_sha256 == p.model_sha256:
                stages[lower] = None
    rolled_back = set(state.rolled_back)
    if p.stage == "production":
        # Every model that ever served production, once each, most recent last.
        if p.model_sha256 in history:
            history.remove(p.model_sha256)
        history.append(p.model_sha256)
        # A rollback marks the model it replaces; promoting a model again clears it.
        rolled_back.discard(p.model_sha256)
        if p.action == "rollback" and p.previous_model is not None:
            rolled_back.add(p.previous_model)
    return Checkpoint(
        size=p.position,
        head=entry_hash,
        stages=stages,
        production_history=tuple(history),
        reached=reached,
        rolled_back=tuple(sorted(rolled_back)),
        policy=p.policy or state.policy,
    )


def transition_errors(state: Checkpoint, p: PromotionPredicate, policy: TrustPolicy) -> list[str]:
    """Why the policy's promotion rules forbid this entry in this state (empty: allowed)."""
    rules = policy.promotion
    if rules is None:
        return ["the trust policy has no promotion section: nobody may promote or roll back"]
    short = p.model_sha256[:12]
    if p.action == "rollback":
        current = state.stages.get("production")
        if current is None:
            return ["nothing serves production, so there is nothing to roll back"]
        if p.model_sha256 == current.model_sha256:
            return [f"rollback target {short} already serves production"]
        if p.model_sha256 not in state.production_history:
            return [
                f"rollback target {short} was never attested for production: "
                f"expected one of {', '.join(h[:12] for h in state.production_history) or 'none'}"
            ]
        return []
    rule = rules.stages.get(p.stage)
    if rule is None:
        return [f"the trust policy allows no promotion to {p.stage}"]
    errors = []
    reached = set(state.reached.get(p.model_sha256, ()))
    if not ("candidate" in rule.after or reached & set(rule.after)):
        errors.append(
            f"model {short} skips a stage: promotion to {p.stage}: expected it to have reached "
            f"{' or '.join(rule.after)}, found {', '.join(sorted(reached)) or 'no stage'}"
        )
    expected_traffic = {
        "shadow": (0, 0),
        "production": (100, 100),
        "canary": (1, rule.max_traffic),
    }[p.stage]
    if not expected_traffic[0] <= p.traffic <= expected_traffic[1]:
        errors.append(
            f"traffic for {p.stage}: expected {expected_traffic[0]}..{expected_traffic[1]}%, found {p.traffic}%"
        )
    current = state.stages.get(p.stage)
    if (
        current is not None
        and current.model_sha256 == p.model_sha256
        and current.traffic == p.traffic
    ):
        errors.append(f"model {short} already serves {p.stage} at {p.traffic}%")
    return errors


def champion_errors(
    state: Checkpoint, p: PromotionPredicate, policy: TrustPolicy, champion: str | None
) -> list[str]:
    """A production promotion under ``require_champion`` must name the serving model as champion.

    Checked by ``promote`` against the chain being promoted. ``audit`` does
    not re-check it: the model store keeps the first chain promoted for a
    model, and a model re-evaluated against a new production model later
    carries a newer evaluation than the stored one.
    """
    rules = policy.promotion
    rule = rules.stages.get("production") if rules is not None else None
    if p.action != "promote" or p.stage != "production" or rule is None:
        return []
    current = state.stages.get("production")
    if not rule.require_champion or current is None or current.model_sha256 == p.model_sha256:
        return []
    if champion == current.model_sha256:
        return []
    return [
        f"model {p.model_sha256[:12]} was not evaluated against the model serving production: "
        f"expected champion {current.model_sha256[:12]}, found "
        f"{champion[:12] if champion else 'no champion'} (the policy requires it; rebuild "
        "the candidate with that model as its champion)"
    ]


def authorization_errors(
    policy: TrustPolicy, signers: Sequence[str], action: str, stage: str
) -> list[str]:
    """Why these approvers may not take this action (empty: enough of them may)."""
    rules = policy.promotion
    if rules is None:
        return ["the trust policy has no promotion section: nobody may promote or roll back"]
    if action == "rollback":
        allowed, threshold, what = (
            rules.rollback_functionaries,
            rules.rollback_threshold,
            "roll back",
        )
    else:
        rule = rules.stages.get(stage)
        if rule is None:
            return [f"the trust policy allows no promotion to {stage}"]
        allowed, threshold, what = rule.functionaries, rule.threshold, f"promote to {stage}"
    ok = [k for k in signers if k in allowed]
    if len(ok) >= threshold:
        return []
    refused = [policy.key_label(k) for k in signers if k not in allowed]
    return [
        f"not enough approvers to {what}: expected {threshold} of "
        f"[{', '.join(policy.key_label(k) for k in allowed)}], found {len(ok)}"
        + (f" ({', '.join(refused)} not allowed)" if refused else "")
    ]


def promotion_roles(policy: TrustPolicy) -> set[str]:
    """Every key the policy lets promote or roll back: the keys that may sign a checkpoint."""
    rules = policy.promotion
    if rules is None:
        return set()
    return set(rules.rollback_functionaries).union(
        *(r.functionaries for r in rules.stages.values())
    )


def dirty_errors(policy: TrustPolicy, p: PromotionPredicate, tree_state: str) -> list[str]:
    """A build from a tree that was not clean reaches only the stages that allow it.

    "dirty" and "unknown" (no git) alike: neither names a commit the build can
    be reproduced from.
    """
    rules = policy.promotion
    rule = rules.stages.get(p.stage) if rules is not None else None
    if p.action != "promote" or rule is None or rule.allow_dirty or tree_state == CLEAN:
        return []
    return [
        f"model {p.model_sha256[:12]} was built from a tree that was not clean: promotion to "
        f"{p.stage}: expected gitTreeState {CLEAN}, found {tree_state} (the policy does not "
        f"allow_dirty for {p.stage}; build it from a clean checkout)"
    ]


def reason_errors(reason: str) -> list[str]:
    """A reason is one line of printable text: it is shown in ``history`` as it is."""
    bad = sorted({c for c in reason if not c.isprintable()})
    if not bad:
        return []
    return [
        "the reason holds control characters: expected printable text on one line, found "
        + ", ".join(repr(c) for c in bad)
    ]


def policy_order_errors(
    previous: PolicyRef | None,
    p: PromotionPredicate,
    policy: TrustPolicy,
) -> list[str]:
    """An entry records a policy no older than the entry before it did, and not a superseded one.

    ``policy`` is the current, verified policy: its history says when each
    recorded version stopped being in force (the next version's notBefore),
    so an entry stamped after that under the old version is refused. An
    entry backdated before it cannot be told from a real one: only an outside
    witness (git history, a transparency log) can (docs/registry.md).
    """
    ref = p.policy
    if ref is None:
        if previous is not None:
            return [
                f"entry {p.position} records no policy, after entries that did "
                f"({previous.describe()}): expected a policy reference"
            ]
        return []
    if previous is not None and ref.version < previous.version:
        return [
            f"entry {p.position} records policy version {ref.version}, older than version "
            f"{previous.version} an earlier entry recorded"
        ]
    successor = policy.at_version(ref.version + 1)
    if (
        successor is not None
        and successor.not_before is not None
        and p.time > format_time(successor.not_before)
    ):
        return [
            f"entry {p.position} was made at {p.time} under policy version {ref.version}, "
            f"which version {ref.version + 1} replaced at {format_time(successor.not_before)}"
        ]
    return []


def time_order_errors(previous_time: str | None, p: PromotionPredicate) -> list[str]:
    """Entries are in time order: writers stamp no earlier than the head they follow.

    Backdating an entry below the one before it would widen what a removed
    key can forge (``policy_order_errors``); a writer whose clock is behind
    stamps the previous entry's time instead.
    """
    # Times are validated YYYY-MM-DDTHH:MM:SSZ (four-digit years): as text, in time order.
    if previous_time is None or p.time >= previous_time:
        return []
    return [
        f"entry {p.position} is stamped {p.time}, before entry {p.position - 1} "
        f"({previous_time}): entries are in time order"
    ]
