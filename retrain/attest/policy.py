"""The trust policy: who may sign which step of a model's chain, until when.

``attestations/policy.json`` (schema in docs/attestations.md) follows in-toto
layout semantics: it lists public keys, and per step (dataset, holdout,
build, evaluation) the predicate type the step's statement must have, the keys
allowed to sign it (functionaries) and how many distinct ones must
(threshold). Every step it lists is required. A policy has an expiry; an
expired policy verifies nothing.

Keys are listed by keyid, and the keyid must be the one computed from the
public key, so a policy cannot attach a trusted name to another key.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from retrain.attest.promotion import PromotionRules
from retrain.errors import InputError, PolicyError

__all__ = ["POLICY_VERSION", "STEP_ORDER", "StepRule", "TrustPolicy", "load_policy", "parse_time"]

POLICY_VERSION = 1
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
# The chain, in order: each step names the previous one's subject.
STEP_ORDER = ("dataset", "holdout", "build", "evaluation")
# The predicate type each step's statement has in this version.
STEP_PREDICATE_TYPES = {
    "dataset": "https://retrain.dev/attestations/dataset/v1",
    "holdout": "https://retrain.dev/attestations/dataset/v1",
    "build": "https://slsa.dev/provenance/v1",
    "evaluation": "https://retrain.dev/attestations/evaluation/v2",
}


def parse_time(value: object, *, where: str, ctx: str) -> datetime:
    """An RFC 3339 UTC time written as YYYY-MM-DDTHH:MM:SSZ."""
    if not isinstance(value, str):
        raise PolicyError(f"{ctx} must be a string", where=where, found=repr(value))
    if not _TIME.fullmatch(value):
        raise PolicyError(
            f"{ctx}", where=where, expected="YYYY-MM-DDTHH:MM:SSZ (UTC)", found=repr(value)
        )
    try:
        parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise PolicyError(
            f"{ctx}", where=where, expected="YYYY-MM-DDTHH:MM:SSZ (UTC)", found=repr(value)
        ) from None
    return parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StepRule:
    """Which predicate type a step's statement has, and who must sign it."""

    name: str
    predicate_type: str
    functionaries: tuple[str, ...]
    threshold: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "predicate_type": self.predicate_type,
            "functionaries": list(self.functionaries),
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class TrustPolicy:
    """Keys by keyid (with their names), rules per step, and an expiry."""

    keys: Mapping[str, Any]  # keyid -> securesystemslib Key
    key_names: Mapping[str, str]
    steps: Mapping[str, StepRule]
    expires: datetime
    promotion: PromotionRules | None = None  # who may promote and roll back; None: nobody

    def key_label(self, keyid: str) -> str:
        name = self.key_names.get(keyid)
        return f"{name} ({keyid[:12]})" if name else keyid[:12]

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_version": POLICY_VERSION,
            "expires": self.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "keys": {
                keyid: {
                    "name": self.key_names.get(keyid, ""),
                    "keytype": key.keytype,
                    "scheme": key.scheme,
                    "public": key.keyval["public"],
                }
                for keyid, key in sorted(self.keys.items())
            },
            "steps": {name: rule.to_dict() for name, rule in self.steps.items()},
        } | ({"promotion": self.promotion.to_dict()} if self.promotion is not None else {})

    @classmethod
    def for_keys(
        cls,
        keys: Sequence[tuple[str, str]],
        *,
        expires: datetime,
        step_keys: Mapping[str, Sequence[str]] | None = None,
        thresholds: Mapping[str, int] | None = None,
        steps: Sequence[str] = STEP_ORDER,
        promotion: bool = True,
        require_champion: bool = False,
    ) -> TrustPolicy:
        """A policy over (name, public PEM) keys for ``steps``.

        ``step_keys`` names the keys allowed per step; a step it does not
        name may be signed by every key.
        """
        from retrain.attest.keys import load_public_key
        from retrain.attest.predicates import DATASET_V1, EVALUATION_V2
        from retrain.attest.provenance import SLSA_PROVENANCE_V1

        types = {
            "dataset": DATASET_V1,
            "holdout": DATASET_V1,
            "build": SLSA_PROVENANCE_V1,
            "evaluation": EVALUATION_V2,
        }
        assert types == STEP_PREDICATE_TYPES
        unknown = sorted(
            (set(step_keys or {}) | set(thresholds or {}) | set(steps)) - set(STEP_ORDER)
        )
        if unknown:
            raise PolicyError(f"unknown step {unknown[0]!r}", expected=", ".join(STEP_ORDER))
        unused = sorted((set(step_keys or {}) | set(thresholds or {})) - set(steps))
        if unused:
            raise PolicyError(
                f"step {unused[0]!r} is configured but not one of the policy's steps",
                expected=", ".join(steps),
            )
        loaded = {}
        names = {}
        by_name = {}
        for name, pem in keys:
            key = load_public_key(pem, where=f"key {name}")
            loaded[key.keyid] = key
            names[key.keyid] = name
            by_name[name] = key.keyid
        rules = {}
        for step in (s for s in STEP_ORDER if s in steps):
            allowed = (step_keys or {}).get(step, list(by_name))
            try:
                functionaries = tuple(sorted(by_name[n] for n in allowed))
            except KeyError as exc:
                raise PolicyError(f"step {step} names unknown key {exc}") from None
            rules[step] = StepRule(
                step, types[step], functionaries, (thresholds or {}).get(step, 1)
            )
        promotion_rules = (
            PromotionRules.default(tuple(sorted(loaded)), require_champion=require_champion)
            if promotion
            else None
        )
        return cls(
            keys=loaded, key_names=names, steps=rules, expires=expires, promotion=promotion_rules
        )

    @classmethod
    def from_dict(cls, raw: object, *, where: str) -> TrustPolicy:
        from retrain.attest.keys import load_public_key

        if not isinstance(raw, dict):
            raise PolicyError("policy must be a JSON object", where=where)
        if raw.get("policy_version") != POLICY_VERSION or isinstance(
            raw.get("policy_version"), bool
        ):
            raise PolicyError(
                "unknown policy version",
                where=where,
                expected=POLICY_VERSION,
                found=repr(raw.get("policy_version")),
            )
        unknown = sorted(
            set(raw) - {"policy_version", "expires", "keys", "steps", "description", "promotion"}
        )
        if unknown:
            raise PolicyError(f"unknown key {unknown[0]!r}", where=where)
        for key in ("expires", "keys", "steps"):
            if key not in raw:
                raise PolicyError(f"policy lacks {key!r}", where=where)
        expires = parse_time(raw["expires"], where=where, ctx="expires")
        if not isinstance(raw["keys"], dict) or not raw["keys"]:
            raise PolicyError("'keys' must be a non-empty object", where=where)
        keys = {}
        names = {}
        for keyid, entry in raw["keys"].items():
            ctx = f"keys.{keyid[:12]}"
            if (
                not isinstance(entry, dict)
                or set(entry) - {"name", "keytype", "scheme", "public"}
                or not isinstance(entry.get("public"), str)
            ):
                raise PolicyError(f"{ctx} must be {{name, keytype, scheme, public}}", where=where)
            try:
                key = load_public_key(entry["public"], where=f"{where}: {ctx}")
            except InputError as exc:
                raise PolicyError(
                    exc.what, where=exc.where, expected=exc.expected, found=exc.found
                ) from None
            if key.keyid != keyid:
                raise PolicyError(
                    f"{ctx}: keyid does not match the public key",
                    where=where,
                    expected=key.keyid,
                    found=keyid,
                )
            if entry.get("keytype", key.keytype) != key.keytype:
                raise PolicyError(
                    f"{ctx}: keytype", where=where, expected=key.keytype, found=entry.get("keytype")
                )
            if entry.get("scheme", key.scheme) != key.scheme:
                raise PolicyError(
                    f"{ctx}: scheme", where=where, expected=key.scheme, found=entry.get("scheme")
                )
            keys[keyid] = key
            names[keyid] = str(entry.get("name", ""))
        if not isinstance(raw["steps"], dict) or not raw["steps"]:
            raise PolicyError("'steps' must be a non-empty object", where=where)
        steps = {}
        for name, rule in raw["steps"].items():
            ctx = f"steps.{name}"
            if name not in STEP_ORDER:
                raise PolicyError(
                    f"unknown step {name!r}", where=where, expected=", ".join(STEP_ORDER)
                )
            if not isinstance(rule, dict) or set(rule) != {
                "predicate_type",
                "functionaries",
                "threshold",
            }:
                raise PolicyError(
                    f"{ctx} must be {{predicate_type, functionaries, threshold}}", where=where
                )
            funcs = rule["functionaries"]
            if (
                not isinstance(funcs, list)
                or not funcs
                or not all(isinstance(f, str) for f in funcs)
            ):
                raise PolicyError(
                    f"{ctx}.functionaries must be a non-empty list of keyids", where=where
                )
            if len(set(funcs)) != len(funcs):
                raise PolicyError(f"{ctx}.functionaries lists a key twice", where=where)
            for f in funcs:
                if f not in keys:
                    raise PolicyError(
                        f"{ctx} names a key the policy does not list", where=where, found=f
                    )
            threshold = rule["threshold"]
            if (
                isinstance(threshold, bool)
                or not isinstance(threshold, int)
                or not 1 <= threshold <= len(set(funcs))
            ):
                raise PolicyError(
                    f"{ctx}.threshold",
                    where=where,
                    expected=f"an integer in [1, {len(set(funcs))}]",
                    found=repr(threshold),
                )
            if rule["predicate_type"] != STEP_PREDICATE_TYPES[name]:
                # The verifier reads each step with the parser of this version.
                raise PolicyError(
                    f"{ctx}.predicate_type",
                    where=where,
                    expected=STEP_PREDICATE_TYPES[name],
                    found=repr(rule["predicate_type"]),
                )
            steps[name] = StepRule(name, rule["predicate_type"], tuple(funcs), threshold)
        ordered = {s: steps[s] for s in STEP_ORDER if s in steps}
        promotion = None
        if "promotion" in raw:
            try:
                promotion = PromotionRules.from_dict(raw["promotion"], keys=keys, where=where)
            except InputError as exc:
                raise PolicyError(
                    exc.what, where=exc.where, expected=exc.expected, found=exc.found
                ) from None
        return cls(
            keys=MappingProxyType(keys),
            key_names=MappingProxyType(names),
            steps=MappingProxyType(ordered),
            expires=expires,
            promotion=promotion,
        )


def load_policy(path: str | os.PathLike[str]) -> TrustPolicy:
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError("policy not found", where=where) from None
    except UnicodeDecodeError:
        raise PolicyError("policy is not UTF-8 text", where=where) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", where=where
        ) from None
    except (ValueError, RecursionError) as exc:  # over-long numbers, over-deep nesting
        raise PolicyError("malformed JSON", where=where, found=str(exc).split(":")[0]) from None
    return TrustPolicy.from_dict(raw, where=where)
