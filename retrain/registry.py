"""The promotion registry: staged rollout, a tamper-evident log, instant rollback.

Layout (``attestations/registry/`` by default, so the repository's history is
also the audit trail; format in docs/registry.md)::

    checkpoint.json          signed: log size, head hash, and the state it leads to
    log/00000001.json        one signed promotion entry (DSSE envelope) per file
    models/<sha256>/         each promoted model with its whole chain, content-addressed
    .lock                    writers hold it (flock) while they append

A write verifies, appends and commits under the lock: the model's chain is
verified against the trust policy; the model is copied in; the entry (naming
the previous entry's hash) is written; then the checkpoint is replaced. Every
file is written to a temporary name, flushed and renamed, so a writer killed
at any point leaves the old state (its entry, if written, is beyond the
checkpoint and never counts) or the new one. Readers need no lock.

``audit`` re-verifies everything: every entry's signature against the keys
the policy allows for its action and stage, the hash chain, positions, each
transition's rules, the checkpoint, and every model's chain.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrain._internal.fsio import atomic_write_bytes
from retrain.attest.policy import TrustPolicy
from retrain.attest.promotion import (
    CHECKPOINT_PAYLOAD_TYPE,
    PROMOTION_V1,
    STAGES,
    Checkpoint,
    PromotionPredicate,
    StageState,
)
from retrain.attest.statement import PAYLOAD_TYPE, ResourceDescriptor, Statement
from retrain.digest import canonical_json, sha256_bytes, sha256_file
from retrain.errors import CheckFailed, InputError, RetrainError

__all__ = [
    "AuditReport",
    "LogEntry",
    "PromotionRefused",
    "PromotionResult",
    "Registry",
    "apply_entry",
]

_ENTRY_NAME = re.compile(r"[0-9]{8}\.json")
_MODEL_FILES = re.compile(r"[A-Za-z0-9_.-]+")


class PromotionRefused(CheckFailed):
    """A promotion or rollback the registry will not record; carries every reason."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        super().__init__(self.reasons[0])

    def lines(self) -> list[str]:
        return self.reasons

    def diagnostics(self) -> str:
        return self.what


class LogBroken(CheckFailed):
    """The log or checkpoint does not verify; names the first broken entry."""


@dataclass(frozen=True)
class LogEntry:
    position: int
    path: Path
    hash: str  # "sha256:<hex>" of the entry file's bytes
    predicate: PromotionPredicate
    signers: tuple[str, ...]


@dataclass(frozen=True)
class PromotionResult:
    entry: LogEntry
    checkpoint: Checkpoint
    notes: tuple[str, ...] = ()


@dataclass
class AuditReport:
    ok: bool
    entries: int
    models: int
    first_broken: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "models": self.models,
            "first_broken": self.first_broken,
            "notes": self.notes,
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _entry_bytes(envelope: Any) -> bytes:
    return (json.dumps(envelope.to_dict(), sort_keys=True, separators=(",", ":")) + "\n").encode()


# ---------------------------------------------------------------------------
# Scanning the log fast: the audit's hot loop


def _scan_entries(
    log_dir: str, positions: Sequence[int], key_pems: dict[str, str]
) -> list[tuple[int, str, Any, tuple[str, ...]] | str]:
    """Read, parse and signature-check entries; per position (position, hash, predicate, signers) or an error.

    The same checks as ``Registry.read_entry`` (envelope, payload type,
    statement, predicate, position, subject, approvers = valid signers), with
    the policy's public keys parsed once and verified through pyca/cryptography
    directly: this runs once per entry of a possibly long log, in worker
    processes. Authorization against the stage rules is left to the caller.
    """
    import base64
    import hashlib

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for keyid, pem in key_pems.items():
        loaded = load_pem_public_key(pem.encode())
        if isinstance(loaded, ec.EllipticCurvePublicKey):  # the policy admits only P-256
            keys[keyid] = loaded
    algorithm = ec.ECDSA(hashes.SHA256())
    out: list[tuple[int, str, Any, tuple[str, ...]] | str] = []
    for position in positions:
        path = os.path.join(log_dir, f"{position:08d}.json")
        try:
            with open(path, "rb") as f:
                data = f.read()
            envelope = json.loads(data)
            payload = base64.b64decode(envelope["payload"], validate=True)
            payload_type = envelope["payloadType"]
            signatures = envelope["signatures"]
            if set(envelope) != {"payload", "payloadType", "signatures"} or not isinstance(
                signatures, list
            ):
                raise ValueError("not a DSSE envelope")
        except FileNotFoundError:
            out.append(f"{path}: entry {position} is missing")
            continue
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            reason = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
            out.append(f"{path}: entry {position} is not a DSSE envelope ({reason})")
            continue
        if payload_type != PAYLOAD_TYPE:
            out.append(
                f"{path}: entry {position} payloadType: expected {PAYLOAD_TYPE}, found {payload_type}"
            )
            continue
        pae = b"DSSEv1 %d %b %d %b" % (
            len(payload_type),
            payload_type.encode(),
            len(payload),
            payload,
        )
        valid = set()
        for sig in signatures:
            key = keys.get(str(sig.get("keyid"))) if isinstance(sig, dict) else None
            if key is None or not isinstance(sig.get("sig"), str):
                continue
            try:
                key.verify(base64.b64decode(sig["sig"]), pae, algorithm)
            except (InvalidSignature, ValueError, TypeError):
                continue
            valid.add(str(sig["keyid"]))
        try:
            statement = Statement.from_json_bytes(payload, where=path)
            if statement.predicate_type != PROMOTION_V1:
                raise InputError(
                    "predicate type",
                    where=path,
                    expected=PROMOTION_V1,
                    found=statement.predicate_type,
                )
            predicate = PromotionPredicate.from_dict(statement.predicate, where=path)
        except InputError as exc:
            out.append(f"entry {position}: {exc.diagnostics()}")
            continue
        subject = statement.subject("model.rtm")
        if subject is None or subject.sha256 != predicate.model_sha256:
            out.append(f"{path}: entry {position}: subject and predicate name different models")
            continue
        if predicate.position != position:
            out.append(
                f"{path}: entry {position} claims another position: expected {position}, found {predicate.position}"
            )
            continue
        signers = tuple(sorted(valid))
        if tuple(predicate.approvers) != signers:
            out.append(
                f"{path}: entry {position}: approvers are not the keys whose signatures verify: expected "
                f"{', '.join(k[:12] for k in signers) or 'a valid signature'}, found {', '.join(k[:12] for k in predicate.approvers)}"
            )
            continue
        out.append((position, "sha256:" + hashlib.sha256(data).hexdigest(), predicate, signers))
    return out


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


def evaluated_champion(model_dir: Path) -> str | None:
    """The champion (sha256) the model's signed evaluation compared it with; None if none.

    Read from the evaluation link as it is; the chain's verification decides
    whether that link counts.
    """
    from retrain.attest.envelope import read_link_envelope
    from retrain.attest.sign import LINK_FILES

    try:
        statement = json.loads(read_link_envelope(model_dir / LINK_FILES["evaluation"]).payload)
        champion = statement["predicate"]["champion"]
    except (RetrainError, OSError, ValueError, KeyError, TypeError):
        return None
    if isinstance(champion, dict) and isinstance(champion.get("sha256"), str):
        return str(champion["sha256"])
    return None


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


class Registry:
    def __init__(
        self, root: str | os.PathLike[str], policy: TrustPolicy, *, policy_where: str = "policy"
    ) -> None:
        self.root = Path(root)
        self.policy = policy
        self.policy_where = policy_where

    # -- paths ---------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def checkpoint_path(self) -> Path:
        return self.root / "checkpoint.json"

    def entry_path(self, position: int) -> Path:
        return self.log_dir / f"{position:08d}.json"

    def model_path(self, sha256: str) -> Path:
        return self.models_dir / sha256

    # -- signatures ----------------------------------------------------------

    def _valid_signers(self, envelope: Any) -> tuple[str, ...]:
        """Keyids (known to the policy) whose signature on the envelope verifies."""
        from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError

        pae = envelope.pae()
        valid = []
        for keyid, signature in envelope.signatures.items():
            key = self.policy.keys.get(keyid)
            if key is None:
                continue
            try:
                key.verify_signature(signature, pae)
            except (UnverifiedSignatureError, VerificationError):
                continue
            valid.append(keyid)
        return tuple(sorted(valid))

    def _authorization_errors(self, signers: Sequence[str], action: str, stage: str) -> list[str]:
        rules = self.policy.promotion
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
        refused = [self.policy.key_label(k) for k in signers if k not in allowed]
        return [
            f"not enough approvers to {what}: expected {threshold} of "
            f"[{', '.join(self.policy.key_label(k) for k in allowed)}], found {len(ok)}"
            + (f" ({', '.join(refused)} not allowed)" if refused else "")
        ]

    def _promotion_roles(self) -> set[str]:
        rules = self.policy.promotion
        if rules is None:
            return set()
        return set(rules.rollback_functionaries).union(
            *(r.functionaries for r in rules.stages.values())
        )

    # -- reading -------------------------------------------------------------

    def read_checkpoint(self) -> Checkpoint:
        """The committed state; an empty registry has an empty one."""
        from retrain.attest.envelope import read_envelopes

        if not self.checkpoint_path.exists():
            # Nothing committed yet; an entry without a checkpoint is an
            # interrupted first write (audit and the next write judge it).
            return Checkpoint.empty()
        try:
            (envelope,) = read_envelopes(self.checkpoint_path)
        except ValueError:
            raise LogBroken(
                "checkpoint must hold one envelope", where=str(self.checkpoint_path)
            ) from None
        if envelope.payload_type != CHECKPOINT_PAYLOAD_TYPE:
            raise LogBroken(
                "checkpoint payloadType",
                where=str(self.checkpoint_path),
                expected=CHECKPOINT_PAYLOAD_TYPE,
                found=envelope.payload_type,
            )
        signers = set(self._valid_signers(envelope)) & self._promotion_roles()
        if not signers:
            raise LogBroken(
                "checkpoint is not signed by a key the policy allows to promote or roll back",
                where=str(self.checkpoint_path),
            )
        try:
            raw = json.loads(envelope.payload)
        except ValueError:
            raise LogBroken(
                "checkpoint payload is not JSON", where=str(self.checkpoint_path)
            ) from None
        try:
            checkpoint = Checkpoint.from_dict(raw, where=str(self.checkpoint_path))
        except InputError as exc:
            raise LogBroken(
                exc.what, where=exc.where, expected=exc.expected, found=exc.found
            ) from None
        if checkpoint.size:
            # The checkpoint must be the head entry's: same bytes, same approvers.
            head_path = self.entry_path(checkpoint.size)
            try:
                head_bytes = head_path.read_bytes()
            except FileNotFoundError:
                raise LogBroken(
                    f"entry {checkpoint.size}, the checkpoint's head, is missing",
                    where=str(head_path),
                ) from None
            if "sha256:" + sha256_bytes(head_bytes) != checkpoint.head:
                raise LogBroken(
                    f"entry {checkpoint.size} is not the checkpoint's head",
                    where=str(head_path),
                    expected=checkpoint.head,
                    found="sha256:" + sha256_bytes(head_bytes),
                )
            head = self.read_entry(checkpoint.size)
            if not set(head.predicate.approvers) <= signers:
                raise LogBroken(
                    "the checkpoint is not signed by the head entry's approvers",
                    where=str(self.checkpoint_path),
                    expected=", ".join(self.policy.key_label(k) for k in head.predicate.approvers),
                    found=", ".join(self.policy.key_label(k) for k in sorted(signers)),
                )
        return checkpoint

    def read_entry(self, position: int) -> LogEntry:
        """One entry, its signature checked against the policy's keys (not yet its rules)."""
        from retrain.attest.envelope import read_envelopes

        path = self.entry_path(position)
        where = str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise LogBroken(f"entry {position} is missing", where=where) from None
        try:
            (envelope,) = read_envelopes(path)
        except ValueError:
            raise LogBroken(f"entry {position} must hold one envelope", where=where) from None
        except RetrainError as exc:
            raise LogBroken(
                f"entry {position}: {exc.what}", where=where, expected=exc.expected, found=exc.found
            ) from None
        if envelope.payload_type != PAYLOAD_TYPE:
            raise LogBroken(
                f"entry {position} payloadType",
                where=where,
                expected=PAYLOAD_TYPE,
                found=envelope.payload_type,
            )
        try:
            statement = Statement.from_json_bytes(envelope.payload, where=where)
            if statement.predicate_type != PROMOTION_V1:
                raise InputError(
                    "predicate type",
                    where=where,
                    expected=PROMOTION_V1,
                    found=statement.predicate_type,
                )
            predicate = PromotionPredicate.from_dict(statement.predicate, where=where)
        except InputError as exc:
            raise LogBroken(
                f"entry {position}: {exc.what}",
                where=exc.where,
                expected=exc.expected,
                found=exc.found,
            ) from None
        subject = statement.subject("model.rtm")
        if subject is None or subject.sha256 != predicate.model_sha256:
            raise LogBroken(
                f"entry {position}: subject and predicate name different models", where=where
            )
        if predicate.position != position:
            raise LogBroken(
                f"entry {position} claims another position",
                where=where,
                expected=position,
                found=predicate.position,
            )
        signers = self._valid_signers(envelope)
        if tuple(predicate.approvers) != signers:
            raise LogBroken(
                f"entry {position}: approvers are not the keys whose signatures verify",
                where=where,
                expected=", ".join(k[:12] for k in signers) or "a valid signature",
                found=", ".join(k[:12] for k in predicate.approvers),
            )
        errors = self._authorization_errors(signers, predicate.action, predicate.stage)
        if errors:
            raise LogBroken(f"entry {position}: {errors[0]}", where=where)
        return LogEntry(position, path, "sha256:" + sha256_bytes(data), predicate, signers)

    def entry_positions(self) -> list[int]:
        if not self.log_dir.exists():
            return []
        positions = []
        for name in os.listdir(self.log_dir):
            if name.startswith("."):
                continue
            if not _ENTRY_NAME.fullmatch(name):
                raise LogBroken(
                    "unexpected file in the log",
                    where=str(self.log_dir / name),
                    expected="NNNNNNNN.json",
                )
            positions.append(int(name[:8]))
        return sorted(positions)

    def history(self) -> list[LogEntry]:
        checkpoint = self.read_checkpoint()
        return [self.read_entry(i) for i in range(1, checkpoint.size + 1)]

    # -- writing -------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _clean_leftovers(self) -> None:
        """Temporary files and model directories an interrupted write left (never committed)."""
        for directory in (self.log_dir, self.root):
            if directory.is_dir():
                for leftover in directory.glob(".*.tmp"):  # atomic_write_bytes' temporary names
                    leftover.unlink(missing_ok=True)
        if self.models_dir.is_dir():
            for leftover in self.models_dir.glob(".*"):  # _store_model's temporary directories
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)

    def _discard_pending(self, checkpoint: Checkpoint) -> list[str]:
        """Entries beyond the checkpoint were never committed (an interrupted write).

        A well-formed one (signed, in place, chained to the head) is dropped;
        anything else is refused, and the log is left untouched for an audit.
        """
        notes = []
        pending = [p for p in self.entry_positions() if p > checkpoint.size]
        if len(pending) > 1:
            # One write appends one entry: two beyond the checkpoint were
            # committed once, and the checkpoint was rolled back.
            raise PromotionRefused(
                [
                    f"the log holds {len(pending)} entries beyond the checkpoint (size {checkpoint.size}): "
                    "an interrupted write leaves at most one; run 'retrain audit'"
                ]
            )
        expected = checkpoint.size + 1
        for position in pending:
            if position != expected:
                raise PromotionRefused(
                    [
                        f"the log has entry {position} after {expected - 1}, with a gap: run 'retrain audit'"
                    ]
                )
            try:
                entry = self.read_entry(position)
            except LogBroken as exc:
                raise PromotionRefused(
                    [f"the log has an uncommitted entry that does not verify: {exc.diagnostics()}"]
                ) from None
            if (
                position == checkpoint.size + 1
                and entry.predicate.previous_entry != checkpoint.head
            ):
                raise PromotionRefused(
                    [
                        f"uncommitted entry {position} does not follow the committed head: expected previous {checkpoint.head}, found {entry.predicate.previous_entry}"
                    ]
                )
            expected += 1
        for position in pending:
            self.entry_path(position).unlink()
            notes.append(f"discarded uncommitted entry {position} (an interrupted write)")
        return notes

    def _store_model(self, model_dir: Path, sha: str, repo_root: Path | None) -> None:
        """Copy the model, its attestations and its datasets' manifests in, content-addressed."""
        from retrain.attest.envelope import read_link_envelope
        from retrain.attest.sign import LINK_FILES

        target = self.model_path(sha)
        if target.is_dir():
            return
        self.models_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}.", dir=self.models_dir))
        try:
            for f in sorted(model_dir.iterdir()):
                if (
                    f.is_file()
                    and _MODEL_FILES.fullmatch(f.name)
                    and not f.name.endswith(".params")
                ):
                    shutil.copyfile(f, tmp / f.name)
            for link in ("dataset", "holdout"):
                path = model_dir / LINK_FILES[link]
                if not path.exists() or repo_root is None:
                    continue
                uri = json.loads(read_link_envelope(path).payload)["predicate"]["manifest"]["uri"]
                source = repo_root / uri
                if source.is_file():
                    (tmp / uri).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, tmp / uri)
            copied = sha256_file(tmp / "model.rtm").sha256
            if copied != sha:
                raise PromotionRefused(
                    [
                        f"model.rtm changed while it was promoted: expected sha256 {sha}, found {copied}"
                    ]
                )
            # Every file and directory on disk before the rename, and the
            # rename itself after it: a crash leaves no half-copied model.
            for path in [*tmp.rglob("*"), tmp]:
                _fsync(path)
            os.replace(tmp, target)
            _fsync(self.models_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _append(
        self, checkpoint: Checkpoint, predicate: PromotionPredicate, signers: Sequence[Any]
    ) -> PromotionResult:
        from securesystemslib.dsse import Envelope

        from retrain.attest.envelope import serialize_envelopes
        from retrain.attest.sign import sign_statement

        statement = Statement(
            subjects=(
                ResourceDescriptor(name="model.rtm", digest={"sha256": predicate.model_sha256}),
            ),
            predicate_type=PROMOTION_V1,
            predicate=predicate.to_dict(),
        )
        envelope = sign_statement(statement.to_json_bytes(), signers)
        data = _entry_bytes(envelope)
        entry_hash = "sha256:" + sha256_bytes(data)
        new_state = apply_entry(checkpoint, entry_hash, predicate)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.entry_path(predicate.position), data)
        checkpoint_envelope = Envelope(
            payload=canonical_json(new_state.to_dict()),
            payload_type=CHECKPOINT_PAYLOAD_TYPE,
            signatures={},
        )
        for signer in signers:
            checkpoint_envelope.sign(signer)
        # The commit point: until this rename the entry is beyond the checkpoint.
        atomic_write_bytes(self.checkpoint_path, serialize_envelopes([checkpoint_envelope]))
        keyids = tuple(sorted(s.public_key.keyid for s in signers))
        entry = LogEntry(
            predicate.position, self.entry_path(predicate.position), entry_hash, predicate, keyids
        )
        return PromotionResult(entry=entry, checkpoint=new_state)

    def _signer_ids(self, signers: Sequence[Any]) -> tuple[str, ...]:
        """The approvers' keyids; a key the policy does not list approves nothing."""
        keyids = sorted({s.public_key.keyid for s in signers})
        unknown = [k for k in keyids if k not in self.policy.keys]
        if unknown:
            raise PromotionRefused(
                [
                    f"key {k[:12]} is not in the trust policy {self.policy_where}: it cannot approve"
                    for k in unknown
                ]
            )
        return tuple(keyids)

    def promote(
        self,
        model_dir: str | os.PathLike[str],
        stage: str,
        *,
        signers: Sequence[Any],
        traffic: int | None = None,
        reason: str = "",
        repo_root: Path | None = None,
        now: str | None = None,
    ) -> PromotionResult:
        """Verify the model's chain, check the rules, and record the promotion, or refuse."""
        from retrain.attest.verify import verify_model

        model_dir = Path(model_dir)
        if stage not in STAGES:
            raise InputError("unknown stage", expected=", ".join(STAGES), found=repr(stage))
        if not (model_dir / "model.rtm").is_file():
            raise InputError("no model.rtm to promote", where=str(model_dir))
        if traffic is None:
            traffic = {"shadow": 0, "canary": 10, "production": 100}[stage]
        report = verify_model(
            model_dir, self.policy, policy_where=self.policy_where, repo_root=repo_root
        )
        reasons = [f.message for f in report.failures]
        sha = sha256_file(model_dir / "model.rtm").sha256
        champion = evaluated_champion(model_dir)
        keyids = self._signer_ids(signers)
        reasons += self._authorization_errors(keyids, "promote", stage)

        def planned(checkpoint: Checkpoint) -> PromotionPredicate:
            current = checkpoint.stages.get(stage)
            return PromotionPredicate(
                position=checkpoint.size + 1,
                previous_entry=checkpoint.head,
                action="promote",
                stage=stage,
                traffic=traffic,
                model_sha256=sha,
                previous_model=None if current is None else current.model_sha256,
                approvers=keyids,
                time=now or _now(),
                reason=reason,
            )

        # Decided once without the lock, so a refusal writes nothing at all
        # (not even the lock file), then again under it, against the state
        # the entry will really follow.
        unlocked = self.read_checkpoint()
        early = (
            reasons
            + transition_errors(unlocked, planned(unlocked), self.policy)
            + champion_errors(unlocked, planned(unlocked), self.policy, champion)
        )
        if early:
            raise PromotionRefused(list(dict.fromkeys(early)))
        with self._locked():
            checkpoint = self.read_checkpoint()
            predicate = planned(checkpoint)
            reasons += transition_errors(checkpoint, predicate, self.policy)
            reasons += champion_errors(checkpoint, predicate, self.policy, champion)
            if reasons:
                raise PromotionRefused(list(dict.fromkeys(reasons)))
            notes = self._discard_pending(checkpoint)
            self._clean_leftovers()
            self._store_model(model_dir, sha, repo_root)
            result = self._append(checkpoint, predicate, signers)
        return replace(result, notes=tuple(notes))

    def rollback(
        self,
        *,
        signers: Sequence[Any],
        to: str | None = None,
        reason: str = "",
        now: str | None = None,
    ) -> PromotionResult:
        """Put production back on the previous (or a named, earlier) production model."""
        from retrain.attest.verify import verify_model

        keyids = self._signer_ids(signers)
        with self._locked():
            checkpoint = self.read_checkpoint()
            current = checkpoint.stages.get("production")
            target = to
            if target is None and current is not None:
                # The model that served production most recently before the
                # current one, never one production was rolled back away from.
                earlier = [
                    h
                    for h in checkpoint.production_history
                    if h != current.model_sha256 and h not in checkpoint.rolled_back
                ]
                target = earlier[-1] if earlier else None
            if target is None:
                raise PromotionRefused(["no earlier production model to roll back to"])
            matches = (
                [h for h in checkpoint.production_history if h.startswith(target)]
                if len(target) < 64
                else [target]
            )
            if len(set(matches)) > 1:
                raise PromotionRefused(
                    [
                        f"rollback target {target!r} is ambiguous: {', '.join(m[:12] for m in sorted(set(matches)))}"
                    ]
                )
            target = matches[0] if matches else target
            predicate = PromotionPredicate(
                position=checkpoint.size + 1,
                previous_entry=checkpoint.head,
                action="rollback",
                stage="production",
                traffic=100,
                model_sha256=target,
                previous_model=None if current is None else current.model_sha256,
                approvers=keyids,
                time=now or _now(),
                reason=reason,
            )
            reasons = self._authorization_errors(keyids, "rollback", "production")
            reasons += transition_errors(checkpoint, predicate, self.policy)
            if not reasons:
                stored = self.model_path(target)
                stored_model = stored / "model.rtm"
                if not stored.is_dir():
                    reasons.append(
                        f"rollback target {target[:12]} is not in the registry's model store"
                    )
                elif not stored_model.is_file() or sha256_file(stored_model).sha256 != target:
                    found = (
                        sha256_file(stored_model).sha256
                        if stored_model.is_file()
                        else "no model.rtm"
                    )
                    reasons.append(
                        f"the stored model {stored} is not the rollback target: "
                        f"expected sha256 {target}, found {found}"
                    )
                else:
                    report = verify_model(
                        stored, self.policy, policy_where=self.policy_where, repo_root=stored
                    )
                    reasons += [f.message for f in report.failures]
            if reasons:
                raise PromotionRefused(list(dict.fromkeys(reasons)))
            notes = self._discard_pending(checkpoint)
            self._clean_leftovers()
            result = self._append(checkpoint, predicate, signers)
        return replace(result, notes=tuple(notes))

    # -- audit ---------------------------------------------------------------

    def _scan(self, positions: list[int]) -> Iterator[tuple[int, str, Any, tuple[str, ...]] | str]:
        """Entries in order; long logs are scanned by one worker process per CPU."""
        pems = {k: key.keyval["public"] for k, key in self.policy.keys.items()}
        workers = min(os.cpu_count() or 1, max(1, len(positions) // 2000))
        if workers == 1:
            yield from _scan_entries(str(self.log_dir), positions, pems)
            return
        from concurrent.futures import ProcessPoolExecutor

        size = -(-len(positions) // workers)
        chunks = [positions[i : i + size] for i in range(0, len(positions), size)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(
                _scan_entries, [str(self.log_dir)] * len(chunks), chunks, [pems] * len(chunks)
            ):
                yield from result

    def audit(self, *, verify_models: bool = True) -> AuditReport:
        """Re-verify the log from the first entry, and every model it names."""
        from retrain.attest.verify import verify_model

        report = AuditReport(ok=True, entries=0, models=0)

        def broken(message: str) -> AuditReport:
            report.ok = False
            report.first_broken = message
            return report

        try:
            checkpoint = self.read_checkpoint()
            positions = self.entry_positions()
        except RetrainError as exc:
            return broken(exc.diagnostics())
        committed = [p for p in positions if p <= checkpoint.size]
        if committed != list(range(1, checkpoint.size + 1)):
            missing = sorted(set(range(1, checkpoint.size + 1)) - set(committed))
            return broken(
                f"entry {missing[0]} is missing: the checkpoint commits {checkpoint.size} entries, the log holds {len(committed)}"
            )
        state = Checkpoint.empty()
        verified_models: dict[str, bool] = {}
        for scanned in self._scan(committed):
            if isinstance(scanned, str):
                return broken(scanned)
            position, entry_hash, predicate, signers = scanned
            errors = self._authorization_errors(signers, predicate.action, predicate.stage)
            if errors:
                return broken(f"{self.entry_path(position)}: entry {position}: {errors[0]}")
            entry = LogEntry(position, self.entry_path(position), entry_hash, predicate, signers)
            p = entry.predicate
            if p.previous_entry != state.head:
                return broken(
                    f"entry {position} does not follow entry {position - 1}: expected previous {state.head}, found {p.previous_entry}"
                )
            errors = transition_errors(state, p, self.policy)
            if errors:
                return broken(f"entry {position}: {errors[0]}")
            if verify_models and p.model_sha256 not in verified_models:
                stored = self.model_path(p.model_sha256)
                if not stored.is_dir():
                    return broken(
                        f"entry {position}: model {p.model_sha256[:12]} is not in the model store"
                    )
                model_report = verify_model(
                    stored, self.policy, policy_where=self.policy_where, repo_root=stored
                )
                stored_model = stored / "model.rtm"
                if not stored_model.is_file() or sha256_file(stored_model).sha256 != p.model_sha256:
                    return broken(
                        f"entry {position}: the stored model's bytes are not {p.model_sha256[:12]}"
                    )
                if not model_report.ok:
                    return broken(
                        f"entry {position}: model {p.model_sha256[:12]}: {model_report.failures[0].message}"
                    )
                verified_models[p.model_sha256] = True
            state = apply_entry(state, entry.hash, p)
            report.entries += 1
        if state.to_dict() != checkpoint.to_dict():
            return broken(
                f"the checkpoint does not match the log: expected size {state.size} head {state.head}, "
                f"found size {checkpoint.size} head {checkpoint.head}"
            )
        for position in (p for p in positions if p > checkpoint.size):
            try:
                entry = self.read_entry(position)
            except LogBroken as exc:
                return broken(f"beyond the checkpoint: {exc.diagnostics()}")
            if position != checkpoint.size + 1 or entry.predicate.previous_entry != checkpoint.head:
                return broken(
                    f"entry {position} beyond the checkpoint does not follow the committed head"
                )
            report.notes.append(
                f"entry {position} is beyond the checkpoint: an interrupted write, not committed"
            )
        report.models = len(verified_models)
        return report
