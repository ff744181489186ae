"""The registry's writes and its audit: promote, roll back, audit, under one lock.

A write verifies, appends and commits under the lock: the model's files are
snapshotted and its chain verified on that copy (``store``); the rules are
checked (``rules``); the verified files enter the model store; the entry
(naming the previous entry's hash and the policy in force) is written; then
the checkpoint is replaced. Every file is written to a temporary name,
flushed and renamed, so a writer killed at any point leaves the old state
(its entry, if written, is beyond the checkpoint and never counts) or the
new one. Readers need no lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
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
    STAGES,
    Checkpoint,
    PolicyRef,
    PromotionPredicate,
)
from retrain.attest.statement import ResourceDescriptor, Statement
from retrain.attest.verify import VerificationReport, verify_model
from retrain.digest import canonical_json, sha256_bytes, sha256_file
from retrain.errors import CheckFailed, InputError, PolicyUntrusted, RetrainError
from retrain.registry.layout import Layout, inspect_layout
from retrain.registry.log import Log, LogBroken, LogEntry
from retrain.registry.rules import (
    apply_entry,
    authorization_errors,
    champion_errors,
    dirty_errors,
    policy_order_errors,
    reason_errors,
    time_order_errors,
    transition_errors,
)
from retrain.registry.store import (
    ModelStore,
    Snapshot,
    link_names,
    links_signed,
    named_files,
    named_manifests,
    output_names,
    remove_tree,
    snapshot,
    stage_manifests,
    store_problems,
    unsafe_entries,
)

__all__ = ["AuditReport", "PromotionRefused", "PromotionResult", "Registry"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


class PromotionRefused(CheckFailed):
    """A promotion or rollback the registry will not record; carries every reason."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = list(dict.fromkeys(reasons))
        super().__init__(self.reasons[0])

    def lines(self) -> list[str]:
        return self.reasons

    def diagnostics(self) -> str:
        return self.what


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


@dataclass(frozen=True)
class VerifiedModel:
    """What the verified chain says of a model: the facts promotion rules judge."""

    sha256: str
    champion: str | None
    tree_state: str


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _entry_bytes(envelope: Any) -> bytes:
    return (json.dumps(envelope.to_dict(), sort_keys=True, separators=(",", ":")) + "\n").encode()


def _verified_model(report: VerificationReport, fallback_sha: str) -> VerifiedModel:
    """The model digest the verified build link names (never a re-hash), its champion, its tree."""
    links = {link.link: link for link in report.links if link.trusted}
    build = links.get("build")
    sha = fallback_sha
    tree_state = "unknown"
    if build is not None and build.predicate is not None:
        subject = build.predicate.subject("model.rtm")
        sha = subject.sha256 if subject is not None and subject.sha256 else fallback_sha
        tree_state = build.tree_state
    evaluation = links.get("evaluation")
    champion = evaluation.predicate.champion_sha256 if evaluation and evaluation.predicate else None
    return VerifiedModel(sha, champion, tree_state)


# Checks of the files a link names: meaningless on a copy without the outputs.
_OUTPUT_CHECKS = frozenset({"subject-digest", "model-bundle"})


class Registry:
    """The registry under ``root``, judged under ``policy`` (loaded by ``retrain.attest.trust``)."""

    def __init__(
        self, root: str | os.PathLike[str], policy: TrustPolicy, *, policy_where: str = "policy"
    ) -> None:
        self.root = Path(root)
        self.policy = policy
        self.policy_where = policy_where
        self.log = Log(self.root, policy, policy_where)
        self.store = ModelStore(self.root / "models")

    # -- paths ---------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        return self.log.dir

    @property
    def models_dir(self) -> Path:
        return self.store.root

    @property
    def checkpoint_path(self) -> Path:
        return self.log.checkpoint_path

    def entry_path(self, position: int) -> Path:
        return self.log.entry_path(position)

    def model_path(self, sha256: str) -> Path:
        return self.store.path(sha256)

    # -- reading -------------------------------------------------------------

    def read_checkpoint(self) -> Checkpoint:
        """The committed state, which the current policy must be allowed to follow."""
        return self.log.read_checkpoint()

    def read_entry(self, position: int) -> LogEntry:
        return self.log.read_entry(position)

    def entry_positions(self) -> list[int]:
        return self.log.entry_positions()

    def history(self) -> list[LogEntry]:
        checkpoint = self.read_checkpoint()
        return [self.read_entry(i) for i in range(1, checkpoint.size + 1)]

    # -- writing -------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        # Never through a symlink: the lock file is created where it is named.
        fd = os.open(
            self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _layout_errors(self, layout: Layout | None = None) -> list[str]:
        """A write works only in a registry that holds nothing retrain did not write.

        Without ``layout``, the early check before the lock: all but ``log/``,
        which the write judges (one scan of a long log) under the lock.
        """
        problems = (layout or inspect_layout(self.root, log=False)).problems
        return [f"the registry holds what retrain did not write: {p}" for p in problems[:1]]

    @staticmethod
    def _clean_leftovers(layout: Layout) -> None:
        """Temporary files and model directories an interrupted write left (never committed).

        Only names of exactly the writers' temporary patterns (``layout``);
        anything else is left for ``audit`` to report.
        """
        for path in layout.leftover_files:
            path.unlink(missing_ok=True)
        for path in layout.leftover_dirs:
            remove_tree(path)

    def _discard_pending(self, checkpoint: Checkpoint, layout: Layout) -> list[str]:
        """Entries beyond the checkpoint were never committed (an interrupted write).

        A well-formed one (signed, in place, chained to the head) is dropped;
        anything else is refused, and the log is left untouched for an audit.
        """
        pending = layout.positions(after=checkpoint.size)
        if not pending:
            return []
        if len(pending) > 1:
            # One write appends one entry: two beyond the checkpoint were
            # committed once, and the checkpoint was rolled back.
            raise PromotionRefused(
                [
                    f"the log holds {len(pending)} entries beyond the checkpoint (size "
                    f"{checkpoint.size}): an interrupted write leaves at most one; run 'retrain audit'"
                ]
            )
        (position,) = pending
        if position != checkpoint.size + 1:
            raise PromotionRefused(
                [
                    f"the log has entry {position} after {checkpoint.size}, with a gap: run "
                    "'retrain audit'"
                ]
            )
        try:
            entry = self.read_entry(position)
        except LogBroken as exc:
            raise PromotionRefused(
                [f"the log has an uncommitted entry that does not verify: {exc.diagnostics()}"]
            ) from None
        if entry.predicate.previous_entry != checkpoint.head:
            raise PromotionRefused(
                [
                    f"uncommitted entry {position} does not follow the committed head: expected "
                    f"previous {checkpoint.head}, found {entry.predicate.previous_entry}"
                ]
            )
        self.entry_path(position).unlink()
        model = entry.predicate.model_sha256
        if model not in checkpoint.reached and model not in checkpoint.production_history:
            # Stored by the interrupted write alone: no committed entry names it.
            stored = self.model_path(model)
            if stored.is_dir() and not stored.is_symlink():
                remove_tree(stored)
        return [f"discarded uncommitted entry {position} (an interrupted write)"]

    def _sign_checkpoint(self, state: Checkpoint, signers: Sequence[Any]) -> None:
        from securesystemslib.dsse import Envelope

        from retrain.attest.envelope import serialize_envelopes

        envelope = Envelope(
            payload=canonical_json(state.to_dict()),
            payload_type=CHECKPOINT_PAYLOAD_TYPE,
            signatures={},
        )
        for signer in signers:
            envelope.sign(signer)
        atomic_write_bytes(self.checkpoint_path, serialize_envelopes([envelope]))

    def _append(
        self, checkpoint: Checkpoint, predicate: PromotionPredicate, signers: Sequence[Any]
    ) -> PromotionResult:
        from retrain.attest.sign import sign_statement

        if not os.path.lexists(self.checkpoint_path):
            # The first write commits an empty log first: from then on, a log
            # without a checkpoint is a deleted checkpoint, never an interrupted write.
            self._sign_checkpoint(replace(Checkpoint.empty(), policy=predicate.policy), signers)
        statement = Statement(
            subjects=(
                ResourceDescriptor(name="model.rtm", digest={"sha256": predicate.model_sha256}),
            ),
            predicate_type=predicate.predicate_type,
            predicate=predicate.to_dict(),
        )
        envelope = sign_statement(statement.to_json_bytes(), signers)
        data = _entry_bytes(envelope)
        entry_hash = "sha256:" + sha256_bytes(data)
        new_state = apply_entry(checkpoint, entry_hash, predicate)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.entry_path(predicate.position), data)
        # The commit point: until this rename the entry is beyond the checkpoint.
        self._sign_checkpoint(new_state, signers)
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

    def _policy_errors(self, stage: str) -> list[str]:
        """Production, and rollback, only under a policy signed by its root."""
        if stage == "production" and not self.policy.signed:
            return [
                f"the trust policy {self.policy_where} is not signed by its root: "
                "--insecure-unsigned-policy is for local experiments, never for production"
            ]
        return []

    @property
    def _recorded_policy(self) -> PolicyRef | None:
        """What an entry records: the policy in force, when it is signed; else nothing.

        An unsigned policy is never recorded: a registry bound to it would
        refuse every signed successor, and its keys were approved by no root.
        """
        return self.policy.ref if self.policy.signed else None

    def _time(self, now: str | None) -> str:
        """Now, or the head entry's time if the clock is behind it: entries stay in time order."""
        stamp = now or _now()
        head = self.log.head
        return max(stamp, head.predicate.time) if head is not None and now is None else stamp

    def _rule_errors(
        self, state: Checkpoint, p: PromotionPredicate, model: VerifiedModel | None
    ) -> list[str]:
        if not self.policy.signed and state.policy is not None:
            return [
                f"the registry is bound to signed policy {state.policy.describe()}: an unsigned "
                f"policy ({self.policy_where}, --insecure-unsigned-policy) cannot write to it"
            ]
        errors = transition_errors(state, p, self.policy)
        errors += policy_order_errors(state.policy, p, self.policy)
        if model is not None:
            errors += champion_errors(state, p, self.policy, model.champion)
            errors += dirty_errors(self.policy, p, model.tree_state)
        return errors

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
        model_dir = Path(model_dir)
        if stage not in STAGES:
            raise InputError("unknown stage", expected=", ".join(STAGES), found=repr(stage))
        if reason_errors(reason):
            raise InputError(reason_errors(reason)[0], where="--reason")
        if traffic is None:
            traffic = {"shadow": 0, "canary": 10, "production": 100}[stage]
        reasons = self._policy_errors(stage) + self._layout_errors()
        keyids = self._signer_ids(signers)
        with tempfile.TemporaryDirectory(prefix="retrain-promote-") as staging:
            staged, outputs_staged = self._stage(model_dir, Path(staging))
            report = verify_model(
                staged.dir, self.policy, policy_where=self.policy_where, repo_root=repo_root
            )
            failures = report.failures
            if not outputs_staged:
                # A link did not verify, so the outputs were never copied:
                # checks of them against the copy say nothing about the
                # directory given. The link's own failure refuses it.
                failures = [f for f in failures if f.check not in _OUTPUT_CHECKS]
            # The chain was verified on the copy; the lines name the directory given.
            reasons += [f.message.replace(str(staged.dir), str(model_dir)) for f in failures]
            model = _verified_model(report, self._model_digest(staged, model_dir))
            reasons += authorization_errors(self.policy, keyids, "promote", stage)

            def planned(checkpoint: Checkpoint) -> PromotionPredicate:
                current = checkpoint.stages.get(stage)
                return PromotionPredicate(
                    position=checkpoint.size + 1,
                    previous_entry=checkpoint.head,
                    action="promote",
                    stage=stage,
                    traffic=traffic,
                    model_sha256=model.sha256,
                    previous_model=None if current is None else current.model_sha256,
                    approvers=keyids,
                    time=self._time(now),
                    reason=reason,
                    policy=self._recorded_policy,
                )

            # Decided once without the lock, so a refusal writes nothing at all
            # (not even the lock file), then again under it, against the state
            # the entry will really follow.
            unlocked = self._checkpoint_or_refuse()
            early = reasons + self._rule_errors(unlocked, planned(unlocked), model)
            early += self._reused_model_errors(model.sha256)
            if early:
                raise PromotionRefused(early)
            # The manifests join the staging copy before the lock too: what
            # the store takes under it comes only from there, already checked.
            named = named_files(report, staged.dir)
            manifests = named_manifests(report) if repo_root is not None else {}
            if repo_root is not None:
                staged = stage_manifests(staged, manifests, named, repo_root)
            with self._locked():
                checkpoint = self._checkpoint_or_refuse()
                predicate = planned(checkpoint)
                reasons += self._rule_errors(checkpoint, predicate, model)
                layout = inspect_layout(self.root)
                reasons += self._layout_errors(layout) + self._reused_model_errors(model.sha256)
                if reasons:
                    raise PromotionRefused(reasons)
                notes = self._discard_pending(checkpoint, layout)
                self._clean_leftovers(layout)
                self.store.add(model.sha256, staged, named, manifests)
                result = self._append(checkpoint, predicate, signers)
        return replace(result, notes=tuple(notes))

    def _stage(self, model_dir: Path, staging: Path) -> tuple[Snapshot, bool]:
        """The model directory's files a chain may name, copied once into ``staging``.

        The link files (and ``model.sig``) first; the build's outputs only if
        every link the policy requires is signed by enough of its keys: an
        unsigned directory never gets to make promotion copy large files.
        Returns the snapshot and whether the outputs are in it.
        """
        staged = snapshot(model_dir, staging, link_names(self.policy.steps))
        if not links_signed(staged.dir, self.policy):
            return staged, False
        return snapshot(model_dir, staging, output_names(), into=staged), True

    @staticmethod
    def _model_digest(staged: Snapshot, model_dir: Path) -> str:
        """The staged model's sha256; for an unsigned directory, the source's (for messages)."""
        if "model.rtm" in staged.files:
            return staged.files["model.rtm"].sha256
        if not os.path.lexists(model_dir / "model.rtm"):
            raise InputError("no model.rtm to promote", where=str(model_dir))
        return sha256_file(model_dir / "model.rtm").sha256

    def _reused_model_errors(self, sha: str) -> list[str]:
        """A model already in the store is reused only if it is exactly a stored model."""
        stored = self.model_path(sha)
        if not os.path.lexists(stored):
            return []
        return [
            f"the model store already holds {sha[:12]}, but not as promotion stores it: {problem}"
            for problem in self._stored_model_errors(sha, "model")[:1]
        ]

    def _checkpoint_or_refuse(self) -> Checkpoint:
        try:
            return self.read_checkpoint()
        except (LogBroken, PolicyUntrusted) as exc:
            raise PromotionRefused([exc.diagnostics()]) from None

    def rollback(
        self,
        *,
        signers: Sequence[Any],
        to: str | None = None,
        reason: str = "",
        now: str | None = None,
    ) -> PromotionResult:
        """Put production back on the previous (or a named, earlier) production model."""
        if reason_errors(reason):
            raise InputError(reason_errors(reason)[0], where="--reason")
        reasons = self._policy_errors("production") + self._layout_errors()
        keyids = self._signer_ids(signers)
        reasons += authorization_errors(self.policy, keyids, "rollback", "production")
        if reasons:
            raise PromotionRefused(reasons)
        with self._locked():
            checkpoint = self._checkpoint_or_refuse()
            current = checkpoint.stages.get("production")
            target = self._rollback_target(checkpoint, to)
            predicate = PromotionPredicate(
                position=checkpoint.size + 1,
                previous_entry=checkpoint.head,
                action="rollback",
                stage="production",
                traffic=100,
                model_sha256=target,
                previous_model=None if current is None else current.model_sha256,
                approvers=keyids,
                time=self._time(now),
                reason=reason,
                policy=self._recorded_policy,
            )
            layout = inspect_layout(self.root)
            reasons += self._rule_errors(checkpoint, predicate, None) + self._layout_errors(layout)
            if not reasons:
                reasons += self._stored_model_errors(target, "rollback target")
            if reasons:
                raise PromotionRefused(reasons)
            notes = self._discard_pending(checkpoint, layout)
            self._clean_leftovers(layout)
            result = self._append(checkpoint, predicate, signers)
        return replace(result, notes=tuple(notes))

    @staticmethod
    def _rollback_target(checkpoint: Checkpoint, to: str | None) -> str:
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
            sorted({h for h in checkpoint.production_history if h.startswith(target)})
            if len(target) < 64
            else [target]
        )
        if len(matches) > 1:
            raise PromotionRefused(
                [f"rollback target {target!r} is ambiguous: " + ", ".join(m[:12] for m in matches)]
            )
        return matches[0] if matches else target

    def _stored_model_errors(self, sha: str, what: str) -> list[str]:
        """The stored model is in place, is these bytes, holds nothing else, and its chain verifies."""
        stored = self.model_path(sha)
        if not stored.is_dir() or stored.is_symlink():
            return [f"{what} {sha[:12]} is not in the registry's model store"]
        unsafe = unsafe_entries(stored)
        if unsafe:
            return unsafe[:1]
        stored_model = stored / "model.rtm"
        found = sha256_file(stored_model).sha256 if stored_model.is_file() else "no model.rtm"
        if found != sha:
            return [
                f"the stored model's bytes are not {sha[:12]} ({stored}): expected sha256 {sha}, "
                f"found {found}"
                if what == "model"
                else f"the stored model {stored} is not the {what}: expected sha256 {sha}, "
                f"found {found}"
            ]
        report = verify_model(stored, self.policy, policy_where=self.policy_where, repo_root=stored)
        if not report.ok:
            return [f"{what} {sha[:12]}: {f.message}" for f in report.failures]
        return store_problems(stored, named_files(report, stored), named_manifests(report))[:1]

    # -- audit ---------------------------------------------------------------

    def audit(self, *, verify_models: bool = True) -> AuditReport:
        """Re-verify the log from the first entry, every model it names, and the store."""
        report = AuditReport(ok=True, entries=0, models=0)

        def broken(message: str) -> AuditReport:
            report.ok = False
            report.first_broken = message
            return report

        layout = inspect_layout(self.root)
        if layout.problems:
            return broken(layout.problems[0])
        try:
            checkpoint = self.log.read_checkpoint(head_order=False)
            positions = layout.positions()
        except PolicyUntrusted:
            raise  # the policy given is not believed: the user's error, not a break in the log
        except RetrainError as exc:
            return broken(exc.diagnostics())
        committed = [p for p in positions if p <= checkpoint.size]
        if committed != list(range(1, checkpoint.size + 1)):
            missing = sorted(set(range(1, checkpoint.size + 1)) - set(committed))
            return broken(
                f"entry {missing[0]} is missing: the checkpoint commits {checkpoint.size} "
                f"entries, the log holds {len(committed)}"
            )
        report.notes += [
            f"{path}: left by an interrupted write (the next write removes it)"
            for path in (*layout.leftover_files, *layout.leftover_dirs)
        ]
        state = replace(Checkpoint.empty(), policy=checkpoint.policy if not committed else None)
        verified: set[str] = set()
        previous_time: str | None = None
        for scanned in self.log.scan(committed):
            if isinstance(scanned, str):
                return broken(scanned)
            position, entry_hash, p, signers = scanned
            problem = self._audit_entry(state, position, p, signers, previous_time)
            previous_time = p.time
            if problem is None and verify_models and p.model_sha256 not in verified:
                model_problems = self._stored_model_errors(p.model_sha256, "model")
                problem = f"entry {position}: {model_problems[0]}" if model_problems else None
                verified.add(p.model_sha256)
            if problem is not None:
                return broken(problem)
            state = apply_entry(state, entry_hash, p)
            report.entries += 1
        if state.to_dict() != checkpoint.to_dict():
            return broken(
                f"the checkpoint does not match the log: expected size {state.size} head "
                f"{state.head}, found size {checkpoint.size} head {checkpoint.head}"
            )
        pending: set[str] = set()
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
            pending.add(entry.predicate.model_sha256)
        if verify_models:
            # The model an interrupted write stored is named by its uncommitted entry.
            for problem, is_note in self._stray_models(verified | pending):
                if not is_note:
                    return broken(problem)
                report.notes.append(problem)
        report.models = len(verified)
        return report

    def _audit_entry(
        self,
        state: Checkpoint,
        position: int,
        p: PromotionPredicate,
        signers: tuple[str, ...],
        previous_time: str | None,
    ) -> str | None:
        """Why a scanned entry does not follow ``state`` under the policy it was made under."""
        # Named only in a message: no Path per entry of a long log.
        where = os.path.join(self.log.dir, f"{position:08d}.json")
        try:
            policy = self.log.policy_for(p.policy, where=where)
        except LogBroken as exc:
            return f"entry {position}: {exc.diagnostics()}"
        errors = authorization_errors(policy, signers, p.action, p.stage)
        if errors:
            return f"{where}: entry {position}: {errors[0]}"
        if p.previous_entry != state.head:
            return (
                f"entry {position} does not follow entry {position - 1}: expected previous "
                f"{state.head}, found {p.previous_entry}"
            )
        errors = policy_order_errors(state.policy, p, self.policy)
        errors += time_order_errors(previous_time, p)
        if errors:
            return f"{where}: {errors[0]}"
        errors = transition_errors(state, p, policy)
        return f"entry {position}: {errors[0]}" if errors else None

    def _stray_models(self, named: set[str]) -> list[tuple[str, bool]]:
        """Directories in the model store that no entry names: (line, whether only a note).

        A writer killed after it stored a model and before it wrote the entry
        leaves a complete model no entry names: if the directory is exactly
        a stored model (named by its sha256, those bytes, a chain that
        verifies, nothing else in it), that is a note. Anything else is a break.
        """
        if not self.models_dir.is_dir():
            return []
        found = []
        for path in sorted(self.models_dir.iterdir()):
            if path.name.startswith(".") and path.is_dir() and not path.is_symlink():
                continue  # an interrupted write's temporary directory
            if path.name in named:
                continue
            problems = (
                self._stored_model_errors(path.name, "model")
                if _SHA256.fullmatch(path.name)
                else ["not a model's sha256"]
            )
            if problems:
                found.append((f"{path}: in the model store, but no entry names it", False))
            else:
                found.append(
                    (
                        f"{path}: a verified model no entry names (an interrupted write "
                        "stored it before its entry)",
                        True,
                    )
                )
        return found
