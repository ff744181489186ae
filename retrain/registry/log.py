"""The registry's log: signed entries in order, and the signed checkpoint that commits them.

Each entry (``log/NNNNNNNN.json``) is a DSSE envelope of an in-toto
statement with the promotion predicate; each names the hash of the entry
before it. ``checkpoint.json`` names the log's size, its head's hash and the
state they lead to. Both are judged under the trust policy they were made
under: a v2 entry records it (``PolicyRef``), and the current policy's
verified history holds that version; a v1 entry, from before policies were
signed, is judged under the current policy.

One function checks an entry's bytes (``check_entry``), whether it is read
alone (``Log.read_entry``) or by the audit's parallel scan (``scan_entries``,
which verifies with pyca/cryptography directly: it runs once per entry of a
possibly long log, in worker processes).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain._internal.fsio import loads_strict, read_regular_bytes
from retrain.attest.policy import TrustPolicy
from retrain.attest.promotion import (
    CHECKPOINT_PAYLOAD_TYPE,
    PROMOTION_V1,
    PROMOTION_V2,
    Checkpoint,
    PolicyRef,
    PromotionPredicate,
)
from retrain.attest.statement import PAYLOAD_TYPE, Statement
from retrain.attest.trust import succession_errors
from retrain.errors import CheckFailed, InputError, PolicyUntrusted, RetrainError
from retrain.registry.layout import ENTRY_NAME
from retrain.registry.rules import (
    authorization_errors,
    policy_order_errors,
    promotion_roles,
    time_order_errors,
)

__all__ = [
    "CheckpointUnknownSigners",
    "KeyTable",
    "Log",
    "LogBroken",
    "LogEntry",
    "check_entry",
    "scan_entries",
]

MAX_ENTRY_BYTES = 1 << 20  # an entry is about 2 kB


class LogBroken(CheckFailed):
    """The log or checkpoint does not verify; names the first broken entry."""


class CheckpointUnknownSigners(LogBroken):
    """A well-formed checkpoint signed by no key this policy lets promote: another policy's registry."""


@dataclass(frozen=True)
class LogEntry:
    position: int
    path: Path
    hash: str  # "sha256:<hex>" of the entry file's bytes
    predicate: PromotionPredicate
    signers: tuple[str, ...]


@dataclass(frozen=True)
class KeyTable:
    """The public keys of every policy version an entry may record: picklable, for workers.

    Version 0 stands for the current policy, which judges v1 entries.
    """

    pems: Mapping[int, Mapping[str, str]]
    digests: Mapping[int, str]

    @classmethod
    def of(cls, policy: TrustPolicy) -> KeyTable:
        versions = {0: policy, policy.version: policy, **policy.history}
        return cls(
            pems={
                v: {k: key.keyval["public"] for k, key in p.keys.items()}
                for v, p in versions.items()
            },
            digests={v: p.digest for v, p in versions.items()},
        )

    def loaded(self) -> dict[int, dict[str, Any]]:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        out: dict[int, dict[str, Any]] = {}
        for version, pems in self.pems.items():
            out[version] = {}
            for keyid, pem in pems.items():
                key = load_pem_public_key(pem.encode())
                if isinstance(key, ec.EllipticCurvePublicKey):  # the policy admits only P-256
                    out[version][keyid] = key
        return out


def _pae(payload_type: str, payload: bytes) -> bytes:
    from securesystemslib.dsse import Envelope

    return bytes(Envelope(payload=payload, payload_type=payload_type, signatures={}).pae())


def check_entry(
    data: bytes,
    position: int,
    where: str,
    keys: Mapping[int, Mapping[str, Any]],
    digests: Mapping[int, str],
) -> tuple[PromotionPredicate, tuple[str, ...]]:
    """An entry's predicate and the keyids whose signatures verify, or ``LogBroken``.

    Checks: a DSSE envelope of an in-toto statement with a promotion
    predicate, at this position, whose subject is its model, made under a
    policy version the keys know (with that version's digest), and whose
    approvers are exactly the keys whose signatures verify. Authorization
    against the stage rules is the caller's.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        envelope = loads_strict(data)
        if not isinstance(envelope, dict) or set(envelope) != {
            "payload",
            "payloadType",
            "signatures",
        }:
            raise ValueError("not a DSSE envelope")
        payload = base64.b64decode(envelope["payload"], validate=True)
        payload_type = envelope["payloadType"]
        signatures = envelope["signatures"]
        if not isinstance(payload_type, str) or not isinstance(signatures, list):
            raise ValueError("not a DSSE envelope")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        reason = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise LogBroken(
            f"entry {position} is not a DSSE envelope ({reason})", where=where
        ) from None
    if payload_type != PAYLOAD_TYPE:
        raise LogBroken(
            f"entry {position} payloadType", where=where, expected=PAYLOAD_TYPE, found=payload_type
        )
    try:
        statement = Statement.from_json_bytes(payload, where=where)
        if statement.predicate_type not in (PROMOTION_V1, PROMOTION_V2):
            raise InputError(
                "predicate type",
                where=where,
                expected=f"{PROMOTION_V2} (or {PROMOTION_V1})",
                found=statement.predicate_type,
            )
        predicate = PromotionPredicate.from_dict(
            statement.predicate, where=where, predicate_type=statement.predicate_type
        )
    except InputError as exc:
        raise LogBroken(
            f"entry {position}: {exc.what}", where=exc.where, expected=exc.expected, found=exc.found
        ) from None
    subjects = [s for s in statement.subjects if s.name == "model.rtm"]
    if (
        len(statement.subjects) != 1
        or len(subjects) != 1
        or subjects[0].sha256 != predicate.model_sha256
    ):
        raise LogBroken(
            f"entry {position}: its one subject must be the model it names", where=where
        )
    if predicate.position != position:
        raise LogBroken(
            f"entry {position} claims another position",
            where=where,
            expected=position,
            found=predicate.position,
        )
    version = 0 if predicate.policy is None else predicate.policy.version
    if version not in keys:
        raise LogBroken(
            f"entry {position} was made under policy version {version}, which the trust "
            "policy's history does not hold",
            where=where,
            expected="a version of the current policy or of its history",
        )
    if predicate.policy is not None and digests[version] != predicate.policy.digest:
        raise LogBroken(
            f"entry {position} records a policy version {version} other than the one the "
            "trust policy's history holds",
            where=where,
            expected=digests[version],
            found=predicate.policy.digest,
        )
    pae = _pae(payload_type, payload)
    algorithm = ec.ECDSA(hashes.SHA256())
    valid = set()
    for sig in signatures:
        key = keys[version].get(str(sig.get("keyid"))) if isinstance(sig, dict) else None
        if key is None or not isinstance(sig.get("sig"), str):
            continue
        try:
            key.verify(base64.b64decode(sig["sig"]), pae, algorithm)
        except (InvalidSignature, ValueError, TypeError):
            continue
        valid.add(str(sig["keyid"]))
    signers = tuple(sorted(valid))
    if tuple(predicate.approvers) != signers:
        raise LogBroken(
            f"entry {position}: approvers are not the keys whose signatures verify",
            where=where,
            expected=", ".join(k[:12] for k in signers) or "a valid signature",
            found=", ".join(k[:12] for k in predicate.approvers),
        )
    return predicate, signers


def scan_entries(
    log_dir: str, positions: Sequence[int], table: KeyTable
) -> list[tuple[int, str, PromotionPredicate, tuple[str, ...]] | str]:
    """Per position: (position, hash, predicate, signers), or the line saying why it is broken."""
    keys = table.loaded()
    out: list[tuple[int, str, PromotionPredicate, tuple[str, ...]] | str] = []
    for position in positions:
        path = os.path.join(log_dir, f"{position:08d}.json")
        try:
            data = read_regular_bytes(path, limit=MAX_ENTRY_BYTES, what=f"entry {position}")
            predicate, signers = check_entry(data, position, path, keys, table.digests)
        except InputError as exc:
            out.append(exc.diagnostics().replace(" not found", " is missing"))
            continue
        except RetrainError as exc:
            out.append(exc.diagnostics())
            continue
        out.append((position, "sha256:" + hashlib.sha256(data).hexdigest(), predicate, signers))
    return out


class Log:
    """The log and checkpoint under ``root``, judged under ``policy`` and its history."""

    def __init__(self, root: Path, policy: TrustPolicy, policy_where: str) -> None:
        self.root = root
        self.policy = policy
        self.policy_where = policy_where
        self._table = KeyTable.of(policy)
        self._keys: dict[int, dict[str, Any]] | None = None
        self.head: LogEntry | None = None  # the head entry, as the last read_checkpoint found it

    @property
    def dir(self) -> Path:
        return self.root / "log"

    @property
    def checkpoint_path(self) -> Path:
        return self.root / "checkpoint.json"

    def entry_path(self, position: int) -> Path:
        return self.dir / f"{position:08d}.json"

    def policy_for(self, ref: PolicyRef | None, *, where: str) -> TrustPolicy:
        """The policy an entry or checkpoint was made under (v1: the current one)."""
        if ref is None:
            return self.policy
        policy = self.policy.at_version(ref.version)
        if policy is None or policy.digest != ref.digest:
            held = sorted({self.policy.version, *self.policy.history})
            raise LogBroken(
                f"made under trust policy {ref.describe()}, which {self.policy_where} does not hold",
                where=where,
                expected=f"one of its versions {', '.join(map(str, held))}",
                found=f"version {ref.version} {ref.digest}",
            )
        return policy

    def entry_positions(self) -> list[int]:
        if not self.dir.exists():
            return []
        positions = []
        for name in os.listdir(self.dir):
            if name.startswith("."):
                continue
            if not ENTRY_NAME.fullmatch(name) or name == "00000000.json":
                raise LogBroken(
                    "unexpected file in the log",
                    where=str(self.dir / name),
                    expected="NNNNNNNN.json, from 00000001",
                )
            positions.append(int(name[:8]))
        return sorted(positions)

    def read_entry(self, position: int) -> LogEntry:
        """One entry, its signature and authorization checked under the policy it records."""
        path = self.entry_path(position)
        where = str(path)
        try:
            data = read_regular_bytes(path, limit=MAX_ENTRY_BYTES, what=f"entry {position}")
        except InputError as exc:
            if not os.path.lexists(path):
                raise LogBroken(f"entry {position} is missing", where=where) from None
            raise LogBroken(exc.what, where=where, expected=exc.expected, found=exc.found) from None
        if self._keys is None:
            self._keys = self._table.loaded()
        predicate, signers = check_entry(data, position, where, self._keys, self._table.digests)
        policy = self.policy_for(predicate.policy, where=where)
        errors = authorization_errors(policy, signers, predicate.action, predicate.stage)
        if errors:
            raise LogBroken(f"entry {position}: {errors[0]}", where=where)
        return LogEntry(
            position, path, "sha256:" + hashlib.sha256(data).hexdigest(), predicate, signers
        )

    def read_checkpoint(self, *, head_order: bool = True) -> Checkpoint:
        """The committed state; an empty registry has an empty one.

        ``head_order=False`` skips checking that the head follows the entry
        before it, for ``audit``, which checks every entry in order and so
        names the first that does not.

        The current policy must be allowed to follow the policy the checkpoint
        recorded (``PolicyUntrusted`` otherwise).

        A log with entries and no checkpoint is broken: the first write
        commits an empty checkpoint before its entry, so no interrupted write
        leaves entries without one.
        """
        from securesystemslib.dsse import Envelope

        from retrain.attest.envelope import read_envelopes

        where = str(self.checkpoint_path)
        if not os.path.lexists(self.checkpoint_path):
            positions = self.entry_positions()
            if positions:
                raise LogBroken(
                    "the checkpoint is missing",
                    where=where,
                    expected="a signed checkpoint committing the log",
                    found=f"no checkpoint, and {len(positions)} entries in {self.dir}",
                )
            return Checkpoint.empty()
        try:
            read_regular_bytes(self.checkpoint_path, limit=MAX_ENTRY_BYTES * 64, what="checkpoint")
            envelopes = read_envelopes(self.checkpoint_path)
        except RetrainError as exc:
            raise LogBroken(exc.what, where=where, expected=exc.expected, found=exc.found) from None
        if len(envelopes) != 1:
            raise LogBroken("checkpoint must hold one envelope", where=where)
        envelope: Envelope = envelopes[0]
        if envelope.payload_type != CHECKPOINT_PAYLOAD_TYPE:
            raise LogBroken(
                "checkpoint payloadType",
                where=where,
                expected=CHECKPOINT_PAYLOAD_TYPE,
                found=envelope.payload_type,
            )
        try:
            raw = loads_strict(envelope.payload)
        except (ValueError, RecursionError):
            raise LogBroken("checkpoint payload is not JSON", where=where) from None
        try:
            checkpoint = Checkpoint.from_dict(raw, where=where)
        except InputError as exc:
            raise LogBroken(
                exc.what, where=exc.where, expected=exc.expected, found=exc.found
            ) from None
        # Before any signature: a policy older than the recorded one must not
        # get to judge the checkpoint at all.
        errors = succession_errors(self.policy, checkpoint.policy, where=self.policy_where)
        if errors:
            raise PolicyUntrusted(errors[0], where=where)
        policy = self.policy_for(checkpoint.policy, where=where)
        signers = set(_valid_signers(envelope, policy)) & promotion_roles(policy)
        if not signers:
            raise CheckpointUnknownSigners(
                "checkpoint is not signed by a key the policy allows to promote or roll back",
                where=where,
            )
        self.head = (
            self._check_head(checkpoint, signers, policy, head_order) if checkpoint.size else None
        )
        return checkpoint

    def _check_head(
        self, checkpoint: Checkpoint, signers: set[str], policy: TrustPolicy, order: bool
    ) -> LogEntry:
        """The checkpoint must be its head entry's: same bytes, same approvers, same policy.

        And the head must follow the entry before it as ``audit`` would have
        it: no older policy version, not made under a version already
        replaced, no earlier time. Otherwise a key a later policy version
        removed could still commit a head under the old version, and every
        command but ``audit`` would believe it.
        """
        head_path = self.entry_path(checkpoint.size)
        try:
            head_bytes = read_regular_bytes(head_path, limit=MAX_ENTRY_BYTES, what="head entry")
        except InputError:
            raise LogBroken(
                f"entry {checkpoint.size}, the checkpoint's head, is missing", where=str(head_path)
            ) from None
        found = "sha256:" + hashlib.sha256(head_bytes).hexdigest()
        if found != checkpoint.head:
            raise LogBroken(
                f"entry {checkpoint.size} is not the checkpoint's head",
                where=str(head_path),
                expected=checkpoint.head,
                found=found,
            )
        head = self.read_entry(checkpoint.size)
        if not set(head.predicate.approvers) <= signers:
            raise LogBroken(
                "the checkpoint is not signed by the head entry's approvers",
                where=str(self.checkpoint_path),
                expected=", ".join(policy.key_label(k) for k in head.predicate.approvers),
                found=", ".join(policy.key_label(k) for k in sorted(signers)),
            )
        if head.predicate.policy != checkpoint.policy and head.predicate.policy is not None:
            raise LogBroken(
                "the checkpoint records another policy than its head entry",
                where=str(self.checkpoint_path),
                expected=head.predicate.policy.describe(),
                found=checkpoint.policy.describe() if checkpoint.policy else "none",
            )
        if order and checkpoint.size > 1:
            previous = self.read_entry(checkpoint.size - 1).predicate
            errors = policy_order_errors(previous.policy, head.predicate, self.policy)
            errors += time_order_errors(previous.time, head.predicate)
            if errors:
                raise LogBroken(errors[0], where=str(head_path))
        return head

    def scan(
        self, positions: list[int]
    ) -> Iterator[tuple[int, str, PromotionPredicate, tuple[str, ...]] | str]:
        """Entries in order; long logs are scanned by one worker process per CPU."""
        workers = min(os.cpu_count() or 1, max(1, len(positions) // 2000))
        if workers == 1:
            yield from scan_entries(str(self.dir), positions, self._table)
            return
        from concurrent.futures import ProcessPoolExecutor

        # Chunks of about 1000, in order: the caller judges one chunk while
        # the workers check the next ones, instead of waiting for half the log.
        size = min(1000, -(-len(positions) // workers))
        chunks = [positions[i : i + size] for i in range(0, len(positions), size)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(
                scan_entries, [str(self.dir)] * len(chunks), chunks, [self._table] * len(chunks)
            ):
                yield from result


def _valid_signers(envelope: Any, policy: TrustPolicy) -> tuple[str, ...]:
    """Keyids (known to the policy) whose signature on the envelope verifies."""
    from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError

    pae = envelope.pae()
    valid = []
    for keyid, signature in envelope.signatures.items():
        key = policy.keys.get(keyid)
        if key is None:
            continue
        try:
            key.verify_signature(signature, pae)
        except (UnverifiedSignatureError, VerificationError):
            continue
        valid.append(keyid)
    return tuple(sorted(valid))
