"""Promotion attestations and registry checkpoints, as plain typed data.

A promotion entry is an in-toto Statement v1 (predicate type
https://retrain.dev/attestations/promotion/v1, documented in
docs/registry.md) in a DSSE envelope, one file per entry of the registry's
log. Its subject is the model it promotes; its predicate says what happened
(promote or rollback), to which stage, with what traffic, which model it
replaced, who approved it (the keys that signed), when, and where it sits in
the log: its position and the hash of the entry before it. That hash chain,
and a signed checkpoint naming the log's size and head, make any edit,
deletion, reordering, truncation or forged append visible.

The promotion rules (which keys may promote to which stage, from which
stage, with how much canary traffic, and who may roll back) live in the
trust policy's ``promotion`` section (``PromotionRules``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from retrain.errors import InputError, PolicyError

__all__ = [
    "CHECKPOINT_PAYLOAD_TYPE",
    "PROMOTION_V1",
    "PROMOTION_V2",
    "STAGES",
    "Checkpoint",
    "PolicyRef",
    "PromotionPredicate",
    "PromotionRules",
    "StageRule",
    "StageState",
    "functionaries",
]

# v1 entries predate signed policies; v2 entries record the policy in force.
PROMOTION_V1 = "https://retrain.dev/attestations/promotion/v1"
PROMOTION_V2 = "https://retrain.dev/attestations/promotion/v2"
CHECKPOINT_PAYLOAD_TYPE = "application/vnd.retrain.registry-checkpoint+json"
CHECKPOINT_V1 = "https://retrain.dev/registry/checkpoint/v1"
CHECKPOINT_V2 = "https://retrain.dev/registry/checkpoint/v2"
STAGES = ("shadow", "canary", "production")
# Stages a dirty-tree build may reach when a policy does not say (allow_dirty).
DIRTY_ALLOWED_BY_DEFAULT = ("shadow",)
ACTIONS = ("promote", "rollback")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
# The traffic an entry (and the state it leaves) may carry at each stage.
_TRAFFIC = {"shadow": (0, 0), "canary": (1, 100), "production": (100, 100)}


def _obj(value: object, where: str, ctx: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{ctx} must be an object", where=where, found=type(value).__name__)
    return value


def _keys(
    d: Mapping[str, Any], required: set[str], optional: set[str], where: str, ctx: str
) -> None:
    missing = sorted(required - set(d))
    if missing:
        raise InputError(f"{ctx} lacks {missing[0]!r}", where=where)
    unknown = sorted(set(d) - required - optional)
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r} in {ctx}", where=where)


def _match(value: object, pattern: re.Pattern[str], where: str, ctx: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InputError(
            ctx, where=where, expected=f"a string matching {pattern.pattern}", found=repr(value)
        )
    return value


def _time(value: object, where: str, ctx: str) -> str:
    """A whole-second UTC time, as retrain writes it, that names a real date."""
    text = _match(value, _TIME, where, ctx)
    try:
        datetime.fromisoformat(text[:-1])
    except ValueError:
        raise InputError(
            ctx, where=where, expected="a real date and time", found=repr(text)
        ) from None
    return text


def _sorted_distinct(value: list[Any], where: str, ctx: str) -> None:
    if not value or value != sorted(set(value)):
        raise InputError(f"{ctx} must be non-empty, sorted and distinct", where=where, found=value)


def _int(value: object, where: str, ctx: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InputError(
            ctx, where=where, expected=f"an integer in [{lo}, {hi}]", found=repr(value)
        )
    return value


# ---------------------------------------------------------------------------
# The policy an entry was made under


def functionaries(
    rule: Mapping[str, Any], keys: Mapping[str, Any], where: str, ctx: str
) -> tuple[tuple[str, ...], int]:
    """A rule's ``functionaries`` (distinct keyids the policy lists) and ``threshold``."""
    funcs = rule.get("functionaries")
    if not isinstance(funcs, list) or not funcs or not all(isinstance(f, str) for f in funcs):
        raise PolicyError(f"{ctx}.functionaries must be a non-empty list of keyids", where=where)
    if len(set(funcs)) != len(funcs):
        raise PolicyError(f"{ctx}.functionaries lists a key twice", where=where)
    for f in funcs:
        if f not in keys:
            raise PolicyError(f"{ctx} names a key the policy does not list", where=where, found=f)
    threshold = rule.get("threshold")
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int)
        or not 1 <= threshold <= len(funcs)
    ):
        raise PolicyError(
            f"{ctx}.threshold",
            where=where,
            expected=f"an integer in [1, {len(funcs)}]",
            found=repr(threshold),
        )
    return tuple(funcs), threshold


@dataclass(frozen=True)
class PolicyRef:
    """Which trust policy was in force: its version and the digest of its signed content.

    The digest is the sha256 of the canonical JSON of the policy's ``signed``
    object, so adding a co-signature does not change it; any edit does.
    """

    version: int
    digest: str  # "sha256:<hex>"

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "digest": self.digest}

    def describe(self) -> str:
        return f"version {self.version} ({self.digest[:19]})"

    @classmethod
    def from_dict(cls, raw: object, *, where: str, ctx: str = "policy") -> PolicyRef:
        d = _obj(raw, where, ctx)
        _keys(d, {"version", "digest"}, set(), where, ctx)
        return cls(
            version=_int(d["version"], where, f"{ctx}.version", 1, 2**31),
            digest=_match(d["digest"], _HASH, where, f"{ctx}.digest"),
        )


# ---------------------------------------------------------------------------
# Policy rules


@dataclass(frozen=True)
class StageRule:
    """Who may promote to a stage (functionaries, threshold), from where, how much traffic."""

    stage: str
    functionaries: tuple[str, ...]
    threshold: int
    after: tuple[
        str, ...
    ]  # stages the model must have reached before; "candidate" = straight from a build
    max_traffic: int = 100
    # Production only: a model may replace the one serving production only if
    # its evaluation compared it with that model (its champion).
    require_champion: bool = False
    # Whether a model built from a tree that was not clean (dirty, or no git
    # at all) may reach this stage: such a build cannot be rebuilt from a commit.
    allow_dirty: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "functionaries": list(self.functionaries),
            "threshold": self.threshold,
            "after": list(self.after),
            "allow_dirty": self.allow_dirty,
        }
        if self.stage == "canary":
            out["max_traffic"] = self.max_traffic
        if self.stage == "production" and self.require_champion:
            out["require_champion"] = True
        return out


@dataclass(frozen=True)
class PromotionRules:
    stages: Mapping[str, StageRule]
    rollback_functionaries: tuple[str, ...]
    rollback_threshold: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": {name: rule.to_dict() for name, rule in self.stages.items()},
            "rollback": {
                "functionaries": list(self.rollback_functionaries),
                "threshold": self.rollback_threshold,
            },
        }

    @classmethod
    def default(
        cls,
        keyids: tuple[str, ...],
        *,
        require_champion: bool = False,
        allow_dirty: tuple[str, ...] = DIRTY_ALLOWED_BY_DEFAULT,
    ) -> PromotionRules:
        """Every key may do everything; stages in order, none skipped; canary up to 50%."""
        return cls(
            stages={
                "shadow": StageRule(
                    "shadow", keyids, 1, ("candidate",), allow_dirty="shadow" in allow_dirty
                ),
                "canary": StageRule(
                    "canary",
                    keyids,
                    1,
                    ("shadow",),
                    max_traffic=50,
                    allow_dirty="canary" in allow_dirty,
                ),
                "production": StageRule(
                    "production",
                    keyids,
                    1,
                    ("canary",),
                    require_champion=require_champion,
                    allow_dirty="production" in allow_dirty,
                ),
            },
            rollback_functionaries=keyids,
            rollback_threshold=1,
        )

    @classmethod
    def from_dict(cls, raw: object, *, keys: Mapping[str, Any], where: str) -> PromotionRules:
        p = _obj(raw, where, "promotion")
        unknown = sorted(set(p) - {"stages", "rollback"})
        if unknown or "stages" not in p or "rollback" not in p:
            raise PolicyError("promotion must be {stages, rollback}", where=where)

        def signers(d: Mapping[str, Any], ctx: str) -> tuple[tuple[str, ...], int]:
            return functionaries(d, keys, where, ctx)

        stages_raw = _obj(p["stages"], where, "promotion.stages")
        stages = {}
        for name, rule in stages_raw.items():
            ctx = f"promotion.stages.{name}"
            if name not in STAGES:
                raise PolicyError(
                    f"unknown stage {name!r}", where=where, expected=", ".join(STAGES)
                )
            r = _obj(rule, where, ctx)
            allowed = (
                {"functionaries", "threshold", "after", "allow_dirty"}
                | ({"max_traffic"} if name == "canary" else set())
                | ({"require_champion"} if name == "production" else set())
            )
            if set(r) - allowed or not {"functionaries", "threshold", "after"} <= set(r):
                raise PolicyError(f"{ctx} must be {{{', '.join(sorted(allowed))}}}", where=where)
            funcs, threshold = signers(r, ctx)
            after = r["after"]
            if (
                not isinstance(after, list)
                or not after
                or not all(a in ("candidate", *STAGES) and a != name for a in after)
                or len(set(after)) != len(after)
            ):
                raise PolicyError(
                    f"{ctx}.after",
                    where=where,
                    expected="a non-empty list of earlier stages or 'candidate', each once",
                    found=repr(after),
                )
            max_traffic = 100
            if name == "canary":
                max_traffic = r.get("max_traffic", 100)
                if (
                    isinstance(max_traffic, bool)
                    or not isinstance(max_traffic, int)
                    or not 1 <= max_traffic <= 100
                ):
                    raise PolicyError(
                        f"{ctx}.max_traffic",
                        where=where,
                        expected="an integer in [1, 100]",
                        found=repr(max_traffic),
                    )
            require_champion = r.get("require_champion", False)
            if not isinstance(require_champion, bool):
                raise PolicyError(
                    f"{ctx}.require_champion",
                    where=where,
                    expected="true or false",
                    found=repr(require_champion),
                )
            allow_dirty = r.get("allow_dirty", name in DIRTY_ALLOWED_BY_DEFAULT)
            if not isinstance(allow_dirty, bool):
                raise PolicyError(
                    f"{ctx}.allow_dirty",
                    where=where,
                    expected="true or false",
                    found=repr(allow_dirty),
                )
            stages[name] = StageRule(
                name, funcs, threshold, tuple(after), max_traffic, require_champion, allow_dirty
            )
        rollback = _obj(p["rollback"], where, "promotion.rollback")
        if set(rollback) != {"functionaries", "threshold"}:
            raise PolicyError("promotion.rollback must be {functionaries, threshold}", where=where)
        rb_funcs, rb_threshold = signers(rollback, "promotion.rollback")
        return cls(stages=stages, rollback_functionaries=rb_funcs, rollback_threshold=rb_threshold)


# ---------------------------------------------------------------------------
# Entries


@dataclass(frozen=True)
class PromotionPredicate:
    """One log entry: a promotion or a rollback, and where it sits in the log."""

    position: int
    previous_entry: str | None
    action: str
    stage: str
    traffic: int
    model_sha256: str
    previous_model: str | None
    approvers: tuple[str, ...]
    time: str
    reason: str = ""
    # The trust policy in force when the entry was made; None only in v1
    # entries, written before policies were signed.
    policy: PolicyRef | None = None

    @property
    def predicate_type(self) -> str:
        return PROMOTION_V1 if self.policy is None else PROMOTION_V2

    def to_dict(self) -> dict[str, Any]:
        out = {
            "log": {"position": self.position, "previousEntry": self.previous_entry},
            "action": self.action,
            "stage": self.stage,
            "traffic": self.traffic,
            "model": {"sha256": self.model_sha256},
            "previousModel": None
            if self.previous_model is None
            else {"sha256": self.previous_model},
            "approvers": list(self.approvers),
            "time": self.time,
            "reason": self.reason,
        }
        if self.policy is not None:
            out["policy"] = self.policy.to_dict()
        return out

    @classmethod
    def from_dict(
        cls, raw: object, *, where: str, predicate_type: str = PROMOTION_V2
    ) -> PromotionPredicate:
        p = _obj(raw, where, "promotion predicate")
        _keys(
            p,
            {
                "log",
                "action",
                "stage",
                "traffic",
                "model",
                "previousModel",
                "approvers",
                "time",
                "reason",
            }
            | ({"policy"} if predicate_type == PROMOTION_V2 else set()),
            set(),
            where,
            "promotion predicate",
        )
        log = _obj(p["log"], where, "log")
        _keys(log, {"position", "previousEntry"}, set(), where, "log")
        position = _int(log["position"], where, "log.position", 1, 2**53)
        previous = log["previousEntry"]
        if previous is not None:
            _match(previous, _HASH, where, "log.previousEntry")
        if (previous is None) != (position == 1):
            raise InputError(
                "log.previousEntry must be null exactly for the first entry",
                where=where,
                found=repr(previous),
            )
        if p["action"] not in ACTIONS:
            raise InputError(
                "action", where=where, expected=" or ".join(ACTIONS), found=repr(p["action"])
            )
        if p["stage"] not in STAGES:
            raise InputError(
                "stage", where=where, expected=", ".join(STAGES), found=repr(p["stage"])
            )
        if p["action"] == "rollback" and p["stage"] != "production":
            raise InputError("a rollback is of production", where=where, found=repr(p["stage"]))
        model = _obj(p["model"], where, "model")
        _keys(model, {"sha256"}, set(), where, "model")
        previous_model = p["previousModel"]
        if previous_model is not None:
            previous_model = _obj(previous_model, where, "previousModel")
            _keys(previous_model, {"sha256"}, set(), where, "previousModel")
        approvers = p["approvers"]
        if (
            not isinstance(approvers, list)
            or not approvers
            or not all(isinstance(a, str) and _SHA256.fullmatch(a) for a in approvers)
        ):
            raise InputError(
                "approvers must be a non-empty list of keyids", where=where, found=repr(approvers)
            )
        if approvers != sorted(set(approvers)):
            raise InputError("approvers must be sorted and distinct", where=where, found=approvers)
        if not isinstance(p["reason"], str):
            raise InputError("reason must be a string", where=where)
        policy = (
            PolicyRef.from_dict(p["policy"], where=where)
            if predicate_type == PROMOTION_V2
            else None
        )
        return cls(
            position=position,
            previous_entry=previous,
            action=p["action"],
            stage=p["stage"],
            traffic=_int(p["traffic"], where, f"traffic for {p['stage']}", *_TRAFFIC[p["stage"]]),
            model_sha256=_match(model["sha256"], _SHA256, where, "model.sha256"),
            previous_model=None
            if previous_model is None
            else _match(previous_model["sha256"], _SHA256, where, "previousModel.sha256"),
            approvers=tuple(approvers),
            time=_time(p["time"], where, "time"),
            reason=p["reason"],
            policy=policy,
        )


# ---------------------------------------------------------------------------
# State and checkpoint


@dataclass(frozen=True)
class StageState:
    """What serves a stage: the model, its traffic, and the entry that put it there."""

    model_sha256: str
    traffic: int
    position: int
    approvers: tuple[str, ...]
    time: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_sha256,
            "traffic": self.traffic,
            "position": self.position,
            "approvers": list(self.approvers),
            "time": self.time,
        }

    @classmethod
    def from_dict(cls, raw: object, *, where: str) -> StageState:
        d = _obj(raw, where, "stage state")
        _keys(d, {"model", "traffic", "position", "approvers", "time"}, set(), where, "stage state")
        approvers = d["approvers"]
        if not isinstance(approvers, list) or not all(
            isinstance(a, str) and _SHA256.fullmatch(a) for a in approvers
        ):
            raise InputError(
                "stage state approvers must be a list of keyids", where=where, found=repr(approvers)
            )
        _sorted_distinct(approvers, where, "stage state approvers")
        return cls(
            model_sha256=_match(d["model"], _SHA256, where, "stage state model"),
            traffic=_int(d["traffic"], where, "stage state traffic", 0, 100),
            position=_int(d["position"], where, "stage state position", 1, 2**53),
            approvers=tuple(d["approvers"]),
            time=_time(d["time"], where, "stage state time"),
        )


def _state_dict(state: StageState | None) -> dict[str, Any] | None:
    return None if state is None else state.to_dict()


@dataclass(frozen=True)
class Checkpoint:
    """The committed log: its size, its head's hash, and the state it leads to."""

    size: int
    head: str | None
    stages: Mapping[str, StageState | None]
    production_history: tuple[
        str, ...
    ]  # every model that served production, once, most recent last
    # model -> the stages it reached
    reached: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # models production was rolled back away from (sorted)
    rolled_back: tuple[str, ...] = ()
    # The policy the head entry was made under (None: none recorded yet).
    policy: PolicyRef | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "checkpoint": CHECKPOINT_V1 if self.policy is None else CHECKPOINT_V2,
            "size": self.size,
            "head": self.head,
            "stages": {s: _state_dict(self.stages.get(s)) for s in STAGES},
            "productionHistory": list(self.production_history),
            "reached": {m: list(v) for m, v in sorted(self.reached.items())},
            "rolledBack": list(self.rolled_back),
        }
        if self.policy is not None:
            out["policy"] = self.policy.to_dict()
        return out

    @classmethod
    def empty(cls) -> Checkpoint:
        return cls(
            size=0,
            head=None,
            stages={s: None for s in STAGES},
            production_history=(),
            reached={},
            rolled_back=(),
        )

    @classmethod
    def from_dict(cls, raw: object, *, where: str) -> Checkpoint:
        d = _obj(raw, where, "checkpoint")
        if d.get("checkpoint") not in (CHECKPOINT_V1, CHECKPOINT_V2):
            raise InputError(
                "unknown checkpoint version",
                where=where,
                expected=f"{CHECKPOINT_V1} or {CHECKPOINT_V2}",
                found=repr(d.get("checkpoint")),
            )
        v2 = d["checkpoint"] == CHECKPOINT_V2
        _keys(
            d,
            {"checkpoint", "size", "head", "stages", "productionHistory", "reached", "rolledBack"}
            | ({"policy"} if v2 else set()),
            set(),
            where,
            "checkpoint",
        )
        size = _int(d["size"], where, "size", 0, 2**53)
        head = d["head"]
        if (head is None) != (size == 0):
            raise InputError("head must be null exactly for an empty log", where=where)
        if head is not None:
            _match(head, _HASH, where, "head")
        stages_raw = _obj(d["stages"], where, "stages")
        if set(stages_raw) != set(STAGES):
            raise InputError("stages must name shadow, canary and production", where=where)
        stages = {
            s: (None if v is None else StageState.from_dict(v, where=where))
            for s, v in stages_raw.items()
        }
        for s, state in stages.items():
            if state is not None:
                _int(state.traffic, where, f"stage state traffic for {s}", *_TRAFFIC[s])
        history = d["productionHistory"]
        if not isinstance(history, list) or not all(
            isinstance(h, str) and _SHA256.fullmatch(h) for h in history
        ):
            raise InputError("productionHistory must be a list of sha256", where=where)
        if len(set(history)) != len(history):
            raise InputError("productionHistory names a model twice", where=where)
        reached = _obj(d["reached"], where, "reached")
        for model, reached_stages in reached.items():
            _match(model, _SHA256, where, "reached model")
            if not isinstance(reached_stages, list) or not all(s in STAGES for s in reached_stages):
                raise InputError(
                    f"reached[{model[:12]}] must list stages",
                    where=where,
                    found=repr(reached_stages),
                )
            _sorted_distinct(reached_stages, where, f"reached[{model[:12]}]")
        rolled_back = d["rolledBack"]
        if not isinstance(rolled_back, list) or not all(
            isinstance(h, str) and _SHA256.fullmatch(h) for h in rolled_back
        ):
            raise InputError("rolledBack must be a list of sha256", where=where)
        if rolled_back != sorted(set(rolled_back)):
            raise InputError("rolledBack must be sorted and distinct", where=where)
        return cls(
            size=size,
            head=head,
            stages=stages,
            production_history=tuple(history),
            reached={m: tuple(v) for m, v in reached.items()},
            rolled_back=tuple(rolled_back),
            policy=PolicyRef.from_dict(d["policy"], where=where) if v2 else None,
        )
