"""Why a trust policy is believed: its root signatures, its version chain, an outside anchor.

A policy file (format 2, docs/attestations.md#the-signed-policy) is::

    {"signed": {...the policy, with its version and root...},
     "signatures": [{"keyid": ..., "sig": ...}, ...],
     "previous": [{"signed": ..., "signatures": [...]}, ...]}   # optional, oldest first

It follows TUF's root metadata and in-toto's layouts. A version is signed
when at least its root's threshold of distinct root keys signed its content;
version N+1 is valid only when it is signed both by its own root threshold
and by the root threshold of version N, so whoever controls one root cannot
hand trust to keys of their own choosing. ``previous`` carries earlier
versions, so one file proves the chain from any version it holds to the
current one. A signature covers the DSSE pre-authentication encoding of the
canonical JSON of ``signed`` with payload type
``application/vnd.retrain.policy+json``: a policy signature can never be
mistaken for a link's. The policy's digest (``PolicyRef.digest``) is the
sha256 of that canonical JSON, so adding a co-signature does not change it.

Where trust starts is the reader's choice, never the file's:

* ``trust_roots`` (``--trust-root PUB.pem`` or a keyid): some version in the
  chain must be signed by every one of these keys as root keys of that
  version; the chain from there on proves the current version.
* A registry that recorded a policy: the current version must be that one,
  or chain forward from it (``succession_errors``); never an older one.
* Neither: the policy is checked against its own root only, and says so.

``insecure_unsigned`` accepts a policy whose signatures do not verify (and
the unsigned format 1), for local experiments; the registry refuses it for
production.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from retrain._internal.fsio import atomic_write_json, load_json_strict, read_regular_bytes
from retrain.attest.policy import LEGACY_FORMAT, TrustPolicy
from retrain.attest.promotion import PolicyRef
from retrain.digest import canonical_json
from retrain.errors import InputError, PolicyError, PolicyUntrusted

__all__ = [
    "POLICY_PAYLOAD_TYPE",
    "PolicyDocument",
    "load_policy",
    "read_policy_file",
    "resolve_trust_root",
    "sign_policy_file",
    "succession_errors",
    "write_policy_file",
]

POLICY_PAYLOAD_TYPE = "application/vnd.retrain.policy+json"
MAX_POLICY_BYTES = 4 << 20  # a policy of a few dozen keys is a few kB; history adds little
MAX_SIGNATURES = 64
MAX_VERSIONS = 256
_KEYID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PolicyDocument:
    """One version of a policy as the file holds it: its content and its signatures."""

    signed: Mapping[str, Any]  # the raw ``signed`` object, as parsed
    policy: TrustPolicy
    signatures: Mapping[str, Any]  # keyid -> securesystemslib Signature

    def pae(self) -> bytes:
        from securesystemslib.dsse import Envelope

        return bytes(
            Envelope(
                payload=canonical_json(self.signed), payload_type=POLICY_PAYLOAD_TYPE, signatures={}
            ).pae()
        )

    def valid_signers(self, keys: Mapping[str, Any], allowed: Sequence[str]) -> list[str]:
        """Keyids among ``allowed`` whose signature on this version verifies with ``keys``."""
        from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError

        pae = self.pae()
        valid = []
        for keyid in sorted(set(allowed) & set(self.signatures)):
            key = keys.get(keyid)
            if key is None:
                continue
            try:
                key.verify_signature(self.signatures[keyid], pae)
            except (UnverifiedSignatureError, VerificationError):
                continue
            valid.append(keyid)
        return valid

    def to_dict(self) -> dict[str, Any]:
        return {
            "signed": dict(self.signed),
            "signatures": [
                {"keyid": keyid, "sig": _b64(sig.signature)}
                for keyid, sig in sorted(self.signatures.items())
            ],
        }


def _b64(hex_signature: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_signature)).decode("ascii")


def _signatures_from(raw: object, where: str, ctx: str) -> dict[str, Any]:
    from securesystemslib.signer import Signature

    if not isinstance(raw, list) or len(raw) > MAX_SIGNATURES:
        raise PolicyError(
            f"{ctx}.signatures",
            where=where,
            expected=f"a list of at most {MAX_SIGNATURES} {{keyid, sig}}",
            found=type(raw).__name__ if not isinstance(raw, list) else f"{len(raw)} signatures",
        )
    out: dict[str, Any] = {}
    for i, item in enumerate(raw):
        if (
            not isinstance(item, dict)
            or set(item) != {"keyid", "sig"}
            or not all(isinstance(item[k], str) and item[k] for k in ("keyid", "sig"))
        ):
            raise PolicyError(
                f"{ctx}.signatures[{i}] must be {{keyid, sig}}, non-empty strings", where=where
            )
        if not _KEYID.fullmatch(item["keyid"]):
            raise PolicyError(
                f"{ctx}.signatures[{i}].keyid",
                where=where,
                expected="64 lowercase hex digits",
                found=repr(item["keyid"][:80]),
            )
        if item["keyid"] in out:
            raise PolicyError(f"{ctx}.signatures lists key {item['keyid'][:12]} twice", where=where)
        try:
            sig_hex = base64.b64decode(item["sig"], validate=True).hex()
        except ValueError:
            raise PolicyError(f"{ctx}.signatures[{i}].sig is not base64", where=where) from None
        out[item["keyid"]] = Signature(item["keyid"], sig_hex)
    return out


def _document(raw: object, where: str, ctx: str) -> PolicyDocument:
    if not isinstance(raw, dict) or set(raw) != {"signed", "signatures"}:
        raise PolicyError(
            f"{ctx} must be {{signed, signatures}}",
            where=where,
            found=sorted(raw) if isinstance(raw, dict) else type(raw).__name__,
        )
    policy = TrustPolicy.from_dict(raw["signed"], where=f"{where}: {ctx}")
    if policy.format == LEGACY_FORMAT:
        raise PolicyError(
            f"{ctx}: a signed policy must be format 2",
            where=where,
            expected="policy_version 2",
            found="policy_version 1",
        )
    return PolicyDocument(
        signed=raw["signed"],
        policy=policy,
        signatures=_signatures_from(raw["signatures"], where, ctx),
    )


def read_policy_file(
    path: str | os.PathLike[str],
) -> tuple[PolicyDocument | TrustPolicy, tuple[PolicyDocument, ...]]:
    """The current version and the earlier ones the file carries; nothing verified yet.

    A format-1 file (unsigned, no envelope) comes back as a bare ``TrustPolicy``.
    """
    where = str(path)
    try:
        data = read_regular_bytes(path, limit=MAX_POLICY_BYTES, what="policy")
    except InputError as exc:
        raise PolicyError(
            exc.what, where=exc.where, expected=exc.expected, found=exc.found
        ) from None
    try:
        raw = load_json_strict(data, where=where, what="policy")
    except InputError as exc:
        raise PolicyError(exc.what, where=exc.where, found=exc.found) from None
    if isinstance(raw, dict) and "policy_version" in raw:
        return TrustPolicy.from_dict(raw, where=where), ()
    if not isinstance(raw, dict) or set(raw) - {"signed", "signatures", "previous"}:
        raise PolicyError(
            "not a policy document",
            where=where,
            expected="{signed, signatures[, previous]} (or a format-1 policy)",
            found=sorted(raw) if isinstance(raw, dict) else type(raw).__name__,
        )
    current = _document(
        {k: v for k, v in raw.items() if k != "previous"}, where, "the current version"
    )
    previous_raw = raw.get("previous", [])
    if not isinstance(previous_raw, list):
        raise PolicyError(
            "previous must be a list of earlier versions, oldest first",
            where=where,
            found=type(previous_raw).__name__,
        )
    if len(previous_raw) >= MAX_VERSIONS:
        raise PolicyError(
            "previous holds too many versions",
            where=where,
            expected=f"fewer than {MAX_VERSIONS}",
            found=len(previous_raw),
        )
    previous = tuple(
        _document(item, where, f"previous[{i}]") for i, item in enumerate(previous_raw)
    )
    versions = [d.policy.version for d in (*previous, current)]
    if versions != list(range(versions[0], versions[0] + len(versions))):
        raise PolicyError(
            "the policy's versions do not follow one another",
            where=where,
            expected="previous versions oldest first, each one less than the next",
            found=versions,
        )
    return current, previous


def resolve_trust_root(value: str) -> str:
    """A keyid from ``--trust-root``: a PEM public key file, or the keyid itself."""
    from retrain.attest.keys import load_public_key

    text = value.strip()
    candidate = text.removeprefix("sha256:").lower()
    # A value that reads as a keyid is that keyid: never a file that happens
    # to carry its name (which anyone who can write the current directory
    # could plant).
    if _KEYID.fullmatch(candidate):
        return candidate
    try:
        pem = read_regular_bytes(value, limit=64 << 10, what="trust root").decode("ascii")
    except (InputError, UnicodeDecodeError):
        raise PolicyError(
            "--trust-root is neither a public key file nor a keyid",
            expected="PUB.pem or 64 hex digits",
            found=repr(value),
        ) from None
    return str(load_public_key(pem, where=f"--trust-root {value}").keyid)


def _root_problem(doc: PolicyDocument, signer_of: PolicyDocument, what: str) -> str | None:
    """Why ``doc`` is not signed by the root threshold of ``signer_of`` (None: it is)."""
    root = signer_of.policy.root
    assert root is not None  # format 2 always has one
    valid = doc.valid_signers(signer_of.policy.keys, root.functionaries)
    if len(valid) >= root.threshold:
        return None
    labels = ", ".join(signer_of.policy.key_label(k) for k in root.functionaries)
    return (
        f"version {doc.policy.version} is not signed by {what}: expected {root.threshold} of "
        f"[{labels}], found {len(valid)}"
    )


def _chain_problems(docs: Sequence[PolicyDocument]) -> list[str | None]:
    """Per version, oldest first: why it does not verify (its own root, its predecessor's)."""
    problems: list[str | None] = []
    for i, doc in enumerate(docs):
        problem = _root_problem(doc, doc, "its own root")
        if problem is None and i > 0:
            problem = _root_problem(
                doc, docs[i - 1], f"the root of version {docs[i - 1].policy.version}"
            )
        problems.append(problem)
    return problems


def _anchored_at(docs: Sequence[PolicyDocument], anchors: Sequence[str]) -> PolicyDocument | None:
    """The earliest version every anchor key signed as one of its root keys."""
    for doc in docs:
        root = doc.policy.root
        assert root is not None
        if set(anchors) <= set(root.functionaries) and set(anchors) <= set(
            doc.valid_signers(doc.policy.keys, anchors)
        ):
            return doc
    return None


def load_policy(
    path: str | os.PathLike[str],
    *,
    trust_roots: Sequence[str] = (),
    insecure_unsigned: bool = False,
) -> TrustPolicy:
    """The policy at ``path``, believed only as far as its signatures and anchors allow.

    Raises ``PolicyUntrusted`` (exit 1) for a policy whose signatures do not
    verify or that does not chain to a trust root, ``PolicyError`` (exit 2)
    for one that cannot be read.
    """
    where = str(path)
    anchors = [resolve_trust_root(r) for r in trust_roots]
    current, previous = read_policy_file(path)
    if isinstance(current, TrustPolicy):
        if not insecure_unsigned or anchors:
            raise PolicyUntrusted(
                "the trust policy is unsigned (format 1)",
                where=where,
                expected="a policy signed by its root keys (retrain policy init --root, retrain policy sign)",
                found="no signatures",
                hint="--insecure-unsigned-policy accepts it for local experiments"
                if not anchors
                else "an unsigned policy cannot chain to a trust root",
            )
        return replace(current, anchor="unsigned (--insecure-unsigned-policy)")
    docs = (*previous, current)
    problems = _chain_problems(docs)
    broken_history = next((p for p in problems[:-1] if p is not None), None)
    if broken_history is not None:
        raise PolicyUntrusted(
            f"the policy's history does not verify: {broken_history}", where=where
        )
    signed = problems[-1] is None
    if not signed and (not insecure_unsigned or anchors):
        raise PolicyUntrusted(
            f"the trust policy does not verify: {problems[-1]}",
            where=where,
            hint="--insecure-unsigned-policy accepts it for local experiments"
            if not anchors
            else None,
        )
    anchored = None
    if anchors:
        anchored = _anchored_at(docs, anchors)
        if anchored is None:
            raise PolicyUntrusted(
                "the trust policy does not chain to the trust root",
                where=where,
                expected=f"a version signed by {', '.join(a[:12] for a in anchors)} as root key(s)",
                found=f"versions {docs[0].policy.version}..{current.policy.version} signed by "
                + "; ".join(
                    ", ".join(k[:12] for k in sorted(d.signatures)) or "nobody" for d in docs
                ),
            )
        names = ", ".join(anchored.policy.key_label(a) for a in anchors)
        anchor = f"trust root {names} (version {anchored.policy.version})"
    elif signed:
        anchor = "its own root keys only (not anchored: pass --trust-root)"
    else:
        anchor = "unsigned (--insecure-unsigned-policy)"
    # With an anchor, only versions from the anchored one on are history
    # the anchor vouches for: earlier ones could be spliced in by anyone who
    # co-signed a later version.
    start = anchored.policy.version if anchors and anchored is not None else 0
    history = {
        d.policy.version: replace(d.policy, signed=True)
        for d in previous
        if d.policy.version >= start
    }
    return replace(current.policy, signed=signed, anchor=anchor, history=history)


def succession_errors(policy: TrustPolicy, recorded: PolicyRef | None, *, where: str) -> list[str]:
    """Why ``policy`` may not follow the policy a registry recorded (empty: it may).

    The same version must be the same content; a later version must hold the
    recorded one in its verified history; an earlier one is a rollback.
    """
    if recorded is None:
        return []
    if policy.version < recorded.version:
        found = "the unsigned format 1" if policy.version == 0 else f"version {policy.version}"
        return [
            f"trust policy {where} is {found}, but the registry's checkpoint records version "
            f"{recorded.version}: refusing a rolled-back policy (or the checkpoint was tampered "
            "with; 'retrain audit' with the newest policy tells)"
        ]
    earlier = policy.at_version(recorded.version)
    if earlier is None:
        held = sorted(policy.history)
        return [
            f"trust policy {where} (version {policy.version}) does not chain to version "
            f"{recorded.version} that the registry recorded: its history holds "
            + (f"versions {', '.join(map(str, held))}" if held else "no earlier version")
        ]
    if earlier.digest != recorded.digest:
        return [
            f"trust policy {where}: version {recorded.version} is not the one the registry "
            f"recorded: expected {recorded.digest}, found {earlier.digest}"
        ]
    return []


def write_policy_file(
    path: str | os.PathLike[str],
    policy: TrustPolicy,
    *,
    previous: Sequence[PolicyDocument] = (),
    signers: Sequence[Any] = (),
) -> None:
    """Write ``policy`` (format 2), carrying ``previous`` versions as its history.

    Unsigned unless ``signers`` are given (root keys of this version or the
    previous one; ``sign_policy_file`` adds more later).
    """
    if policy.format == LEGACY_FORMAT:
        raise PolicyError("only format-2 policies are written", found="format 1")
    content: dict[str, Any] = {"signed": policy.to_dict(), "signatures": []}
    # The content must load as written: a policy that cannot be read is no policy.
    _document(content, str(path), "the current version")
    if previous:
        content["previous"] = [d.to_dict() for d in previous]
    atomic_write_json(path, content)
    if signers:
        sign_policy_file(path, signers)


@dataclass(frozen=True)
class SignOutcome:
    """What ``sign_policy_file`` did: who signed, and which thresholds now hold."""

    version: int
    signed_by: tuple[str, ...]
    own_root: str | None  # None: met; else why not
    previous_root: str | None  # None: met or no previous version
    has_previous: bool = False


def sign_policy_file(path: str | os.PathLike[str], signers: Sequence[Any]) -> SignOutcome:
    """Add each signer's signature to the current version of the policy file at ``path``.

    A signer must be a root key of this version or of the previous one (the
    two roots that must sign a new version); signing never changes the
    content, only the signature list, and the file is replaced atomically.
    """
    from securesystemslib.dsse import Envelope

    where = str(path)
    current, previous = read_policy_file(path)
    if isinstance(current, TrustPolicy):
        raise PolicyError(
            "cannot sign a format-1 policy",
            where=where,
            expected="a format-2 policy (retrain policy init --root ...)",
        )
    roots = set(current.policy.root.functionaries if current.policy.root else ())
    if previous and previous[-1].policy.root is not None:
        roots |= set(previous[-1].policy.root.functionaries)
    signatures = dict(current.signatures)
    labels = []
    for signer in signers:
        keyid = signer.public_key.keyid
        if keyid not in roots:
            raise PolicyError(
                f"key {keyid[:12]} is not a root key of version {current.policy.version}"
                + (" or of the version before it" if previous else ""),
                where=where,
                expected=", ".join(sorted(k[:12] for k in roots)),
                found=keyid[:12],
            )
        envelope = Envelope(
            payload=canonical_json(current.signed), payload_type=POLICY_PAYLOAD_TYPE, signatures={}
        )
        signatures[keyid] = envelope.sign(signer)
        labels.append(keyid)
    updated = replace(current, signatures=signatures)
    content: dict[str, Any] = updated.to_dict()
    if previous:
        content["previous"] = [d.to_dict() for d in previous]
    atomic_write_json(path, content)
    return SignOutcome(
        version=current.policy.version,
        signed_by=tuple(labels),
        own_root=_root_problem(updated, updated, "its own root"),
        previous_root=_root_problem(
            updated, previous[-1], f"the root of version {previous[-1].policy.version}"
        )
        if previous
        else None,
        has_previous=bool(previous),
    )
