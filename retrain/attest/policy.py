"""The trust policy: who may sign which step of a model's chain, until when.

``attestations/policy.json`` (schema in docs/attestations.md) follows in-toto
layout semantics: it lists public keys, and per step (dataset, holdout,
build, evaluation) the predicate type the step's statement must have, the keys
allowed to sign it (functionaries) and how many distinct ones must
(threshold). Every step it lists is required. A policy has an expiry; an
expired policy verifies nothing.

Keys are listed by keyid, and the keyid must be the one computed from the
public key, so a policy cannot attach a trusted name to another key.

Format 2 (``policy_version: 2``) is what ``retrain.attest.trust`` signs: it
adds the policy's own ``version`` (1, 2, ...), ``notBefore`` and a ``root``
(the keys, and how many of them, that must sign this version and the next).
Format 1, the unsigned policy of earlier releases, still loads, but only
where a user accepts an unsigned policy (``--insecure-unsigned-policy``).
This module reads what a policy says; ``trust`` decides whether to believe it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from retrain.attest.promotion import (
    DIRTY_ALLOWED_BY_DEFAULT,
    PolicyRef,
    PromotionRules,
    functionaries,
)
from retrain.digest import canonical_json, sha256_bytes
from retrain.errors import InputError, PolicyError

__all__ = [
    "POLICY_FORMAT",
    "STEP_ORDER",
    "RootRule",
    "StepRule",
    "TrustPolicy",
    "format_time",
    "parse_time",
]

# The format of the policy document (its ``policy_version`` field); 1 is the
# unsigned format of earlier releases.
POLICY_FORMAT = 2
LEGACY_FORMAT = 1
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


def parse_time(value: object, *, where: str | None, ctx: str) -> datetime:
    """An RFC 3339 UTC time written as YYYY-MM-DDTHH:MM:SSZ.

    ``where`` names the file; for a command-line option pass ``where=None``
    and the option as ``ctx`` (the line then names it once).
    """
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
            f"{ctx}", where=where, expected="a real UTC date and time", found=repr(value)
        ) from None
    return parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """As ``parse_time`` reads it; the year zero-padded (strftime's %Y is not, below 1000)."""
    return f"{value.year:04d}-" + value.strftime("%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RootRule:
    """The keys that sign the policy itself, and how many of them must."""

    functionaries: tuple[str, ...]
    threshold: int

    def to_dict(self) -> dict[str, Any]:
        return {"functionaries": list(self.functionaries), "threshold": self.threshold}


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
    """Keys by keyid (with their names), rules per step, a validity window, and its root.

    The last group of fields says how the loader came to trust it
    (``retrain.attest.trust``); a policy built in memory is unsigned.
    """

    keys: Mapping[str, Any]  # keyid -> securesystemslib Key
    key_names: Mapping[str, str]
    steps: Mapping[str, StepRule]
    expires: datetime
    promotion: PromotionRules | None = None  # who may promote and roll back; None: nobody
    version: int = 0  # 0: the unsigned format 1
    not_before: datetime | None = None
    root: RootRule | None = None
    description: str = ""
    # "sha256:<hex>" of the canonical JSON of the signed content
    digest: str = ""
    # How it was trusted: signed by its root threshold (and its predecessor's),
    # what trust was anchored in, and the earlier versions its history proves.
    signed: bool = False
    anchor: str = "unsigned"
    history: Mapping[int, TrustPolicy] = field(default_factory=dict)

    @property
    def ref(self) -> PolicyRef:
        return PolicyRef(self.version, self.digest)

    @property
    def format(self) -> int:
        return LEGACY_FORMAT if self.version == 0 else POLICY_FORMAT

    def key_label(self, keyid: str) -> str:
        name = self.key_names.get(keyid)
        return f"{name} ({keyid[:12]})" if name else keyid[:12]

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires

    def is_not_yet_valid(self, now: datetime) -> bool:
        return self.not_before is not None and now < self.not_before

    def at_version(self, version: int) -> TrustPolicy | None:
        """This policy or the earlier version of it its verified history holds."""
        return self if version == self.version else self.history.get(version)

    def to_dict(self) -> dict[str, Any]:
        if self.format == LEGACY_FORMAT:
            return self._legacy_dict()
        out: dict[str, Any] = {
            "policy_version": POLICY_FORMAT,
            "version": self.version,
            "notBefore": format_time(self.not_before or self.expires),
            "expires": format_time(self.expires),
            "root": self.root.to_dict() if self.root else None,
            **self._rules_dict(),
        }
        if self.description:
            out["description"] = self.description
        return out

    def _legacy_dict(self) -> dict[str, Any]:
        out = {"policy_version": LEGACY_FORMAT, "expires": format_time(self.expires)}
        out |= self._rules_dict()
        if self.description:
            out["description"] = self.description
        return out

    def _rules_dict(self) -> dict[str, Any]:
        return {
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

    def with_digest(self) -> TrustPolicy:
        """This policy with ``digest`` set from its content (for one built in memory)."""
        return replace(self, digest="sha256:" + sha256_bytes(canonical_json(self.to_dict())))

    @classmethod
    def for_keys(
        cls,
        keys: Sequence[tuple[str, str]],
        *,
        expires: datetime,
        root_keys: Sequence[tuple[str, str]] = (),
        root_threshold: int = 1,
        version: int = 1,
        not_before: datetime | None = None,
        step_keys: Mapping[str, Sequence[str]] | None = None,
        thresholds: Mapping[str, int] | None = None,
        steps: Sequence[str] = STEP_ORDER,
        promotion: bool = True,
        require_champion: bool = False,
        allow_dirty: Sequence[str] = DIRTY_ALLOWED_BY_DEFAULT,
        description: str = "",
    ) -> TrustPolicy:
        """A format-2 policy over (name, public PEM) keys for ``steps``, unsigned.

        ``root_keys`` sign the policy (every signing key when empty, which
        suits a policy of one's own); they approve no step unless also in
        ``keys``. ``step_keys`` names the keys allowed per step; a step it does
        not name may be signed by every key of ``keys``. ``allow_dirty`` names
        the stages a dirty-tree build may reach.
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
        loaded: dict[str, Any] = {}
        names: dict[str, str] = {}

        def add(name: str, pem: str, what: str) -> str:
            key = load_public_key(pem, where=f"{what} {name}")
            if names.get(key.keyid, name) != name:
                raise PolicyError(
                    f"{what} {name} is the key already named {names[key.keyid]}",
                    expected="one name per key",
                )
            if name in names.values() and names.get(key.keyid) != name:
                raise PolicyError(f"two keys are named {name}", expected="one key per name")
            loaded[key.keyid] = key
            names[key.keyid] = name
            return str(key.keyid)

        by_name = {name: add(name, pem, "key") for name, pem in keys}
        roots = tuple(sorted({add(name, pem, "root key") for name, pem in root_keys}))
        roots = roots or tuple(sorted(by_name.values()))
        if not 1 <= root_threshold <= len(roots):
            raise PolicyError(
                "root threshold", expected=f"an integer in [1, {len(roots)}]", found=root_threshold
            )
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
            PromotionRules.default(
                tuple(sorted(by_name.values())),
                require_champion=require_champion,
                allow_dirty=tuple(allow_dirty),
            )
            if promotion
            else None
        )
        built = cls(
            keys=MappingProxyType(loaded),
            key_names=MappingProxyType(names),
            steps=MappingProxyType(rules),
            expires=expires,
            promotion=promotion_rules,
            version=version,
            not_before=not_before or datetime(1970, 1, 1, tzinfo=UTC),
            root=RootRule(roots, root_threshold),
            description=description,
        )
        if built.not_before is not None and built.not_before >= expires:
            raise PolicyError(
                "notBefore must be before expires",
                expected=f"before {format_time(expires)}",
                found=format_time(built.not_before),
            )
        return built.with_digest()

    @classmethod
    def from_dict(cls, raw: object, *, where: str) -> TrustPolicy:
        """A policy's content (format 2: the ``signed`` object; format 1: the whole file)."""
        from retrain.attest.keys import load_public_key

        if not isinstance(raw, dict):
            raise PolicyError("policy must be a JSON object", where=where)
        fmt = raw.get("policy_version")
        if isinstance(fmt, bool) or fmt not in (LEGACY_FORMAT, POLICY_FORMAT):
            raise PolicyError(
                "unknown policy format (policy_version)",
                where=where,
                expected=f"{POLICY_FORMAT} (or the unsigned {LEGACY_FORMAT})",
                found=repr(fmt),
            )
        common = {"policy_version", "expires", "keys", "steps", "description", "promotion"}
        required = {"expires", "keys", "steps"}
        if fmt == POLICY_FORMAT:
            common |= {"version", "notBefore", "root"}
            required |= {"version", "notBefore", "root"}
        unknown = sorted(set(raw) - common)
        if unknown:
            raise PolicyError(f"unknown key {unknown[0]!r}", where=where)
        for key in sorted(required):
            if key not in raw:
                raise PolicyError(f"policy lacks {key!r}", where=where)
        description = raw.get("description", "")
        if not isinstance(description, str):
            raise PolicyError("description must be a string", where=where)
        expires = parse_time(raw["expires"], where=where, ctx="expires")
        keys, names = _keys_from_dict(raw["keys"], where, load_public_key)
        steps = _steps_from_dict(raw["steps"], keys, where)
        promotion = None
        if "promotion" in raw:
            try:
                promotion = PromotionRules.from_dict(raw["promotion"], keys=keys, where=where)
            except InputError as exc:
                raise PolicyError(
                    exc.what, where=exc.where, expected=exc.expected, found=exc.found
                ) from None
        version, not_before, root = 0, None, None
        if fmt == POLICY_FORMAT:
            version = raw["version"]
            if (
                isinstance(version, bool)
                or not isinstance(version, int)
                or not 1 <= version <= 2**31
            ):
                raise PolicyError(
                    "version", where=where, expected="an integer from 1", found=repr(version)
                )
            not_before = parse_time(raw["notBefore"], where=where, ctx="notBefore")
            if not_before >= expires:
                raise PolicyError(
                    "notBefore must be before expires",
                    where=where,
                    expected=f"before {format_time(expires)}",
                    found=format_time(not_before),
                )
            if not isinstance(raw["root"], dict) or set(raw["root"]) != {
                "functionaries",
                "threshold",
            }:
                raise PolicyError("root must be {functionaries, threshold}", where=where)
            root = RootRule(*functionaries(raw["root"], keys, where, "root"))
        return cls(
            keys=MappingProxyType(keys),
            key_names=MappingProxyType(names),
            steps=MappingProxyType(steps),
            expires=expires,
            promotion=promotion,
            version=version,
            not_before=not_before,
            root=root,
            description=description,
            digest="sha256:" + sha256_bytes(canonical_json(raw)),
        )


def _keys_from_dict(
    raw: object, where: str, load_public_key: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    if not isinstance(raw, dict) or not raw:
        raise PolicyError("'keys' must be a non-empty object", where=where)
    keys = {}
    names = {}
    for keyid, entry in raw.items():
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
        for field_name in ("keytype", "scheme"):
            if entry.get(field_name, getattr(key, field_name)) != getattr(key, field_name):
                raise PolicyError(
                    f"{ctx}: {field_name}",
                    where=where,
                    expected=getattr(key, field_name),
                    found=entry.get(field_name),
                )
        name = entry.get("name", "")
        if not isinstance(name, str):
            raise PolicyError(f"{ctx}.name must be a string", where=where, found=repr(name))
        keys[keyid] = key
        names[keyid] = name
    return keys, names


def _steps_from_dict(raw: object, keys: Mapping[str, Any], where: str) -> dict[str, StepRule]:
    if not isinstance(raw, dict) or not raw:
        raise PolicyError("'steps' must be a non-empty object", where=where)
    steps = {}
    for name, rule in raw.items():
        ctx = f"steps.{name}"
        if name not in STEP_ORDER:
            raise PolicyError(f"unknown step {name!r}", where=where, expected=", ".join(STEP_ORDER))
        if not isinstance(rule, dict) or set(rule) != {
            "predicate_type",
            "functionaries",
            "threshold",
        }:
            raise PolicyError(
                f"{ctx} must be {{predicate_type, functionaries, threshold}}", where=where
            )
        funcs, threshold = functionaries(rule, keys, where, ctx)
        if rule["predicate_type"] != STEP_PREDICATE_TYPES[name]:
            # The verifier reads each step with the parser of this version.
            raise PolicyError(
                f"{ctx}.predicate_type",
                where=where,
                expected=STEP_PREDICATE_TYPES[name],
                found=repr(rule["predicate_type"]),
            )
        steps[name] = StepRule(name, rule["predicate_type"], funcs, threshold)
    return {s: steps[s] for s in STEP_ORDER if s in steps}
