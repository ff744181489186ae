"""Verifying a model's attestation chain: a row of named checks.

For a model directory (``bazel-bin/models/candidate``) and a trust policy,
``verify_model`` runs, per link the policy requires (dataset, holdout, build,
evaluation) and in order:

* ``link-present``: the link's ``.intoto.jsonl`` file exists and is a
  regular file (nothing else is opened: a FIFO would block the verifier);
* ``envelope``: it holds a well-formed DSSE envelope of an in-toto statement
  (unusable input otherwise: exit 2);
* ``payload-type``: the envelope says ``application/vnd.in-toto+json``;
* ``signature-threshold``: at least the policy's threshold of distinct keys
  that the policy allows for this step signed the payload;
* ``predicate-schema``: the statement has the step's predicate type and the
  predicate validates;
* ``subject-digest``: the subjects are exactly what the step produces, and
  every subject's digest equals the bytes it names (the model files beside
  it; for a dataset, the manifest in the repository and every data file it
  lists, when they are present);
* ``gates``: the evaluation's gates passed; each dataset's quality checks
  passed;
* ``model-bundle`` (build): model.sig verifies the model with a key the
  policy allows for the build (skipped when there is no model.sig; one that
  is there but is not a regular file fails).

Checks on a link's claims (subject-digest, gates, model-bundle) run only
when its signature verified; otherwise they are recorded as skipped. Then,
across links, ``chain``: the build names the training dataset the dataset
link attests; the evaluation names the model and metrics the build attests,
that training dataset, and the holdout the holdout link attests. Before all
of it, ``policy-expiry``.

Checks never stop at the first failure: the report lists every failed check,
each naming the link, the check, what was expected and what was found.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrain._internal.fsio import file_kind, read_regular_bytes
from retrain.attest.errors import (
    BundleInvalid,
    ChainLinkBroken,
    GatesFailed,
    LinkCheckFailed,
    LinkMissing,
    PayloadTypeInvalid,
    PolicyExpired,
    PredicateInvalid,
    SignatureThresholdNotMet,
    SubjectDigestMismatch,
)
from retrain.attest.policy import StepRule, TrustPolicy
from retrain.attest.predicates import DatasetPredicate, EvaluationPredicate
from retrain.attest.provenance import BuildProvenance
from retrain.attest.sign import BUILD_SUBJECTS, LINK_FILES, MODEL_BUNDLE
from retrain.attest.statement import PAYLOAD_TYPE, Statement
from retrain.digest import sha256_file
from retrain.errors import InputError, RetrainError

__all__ = [
    "BUILD_SUBJECTS",
    "CHECKS",
    "TREE_STATES",
    "CheckResult",
    "LinkResult",
    "VerificationReport",
    "build_tree_state",
    "describe_unknown_keyid",
    "near_miss_keyid",
    "not_a_regular_file",
    "verify_model",
    "verify_payload_type",
    "verify_signature_threshold",
    "verify_subject_set",
]

CHECKS = (
    "policy-expiry",
    "link-present",
    "envelope",
    "payload-type",
    "signature-threshold",
    "predicate-schema",
    "subject-digest",
    "gates",
    "model-bundle",
    "chain",
)

# The source tree's state as tools/workspace_status.sh records it in the
# provenance (annotation gitTreeState of the resolvedDependency "source").
TREE_STATES = ("clean", "dirty", "unknown")
_KEYID = re.compile(r"[0-9a-f]{64}")
# A Bazel label, as docs/schemas/provenance.v1.schema.json has it.
_LABEL = re.compile(r"(@[A-Za-z0-9_.~+-]*)?//[^:]*:[^:]+")


@dataclass(frozen=True)
class CheckResult:
    """One check on one link: passed, or the failure's one-line diagnostics."""

    link: str
    check: str
    ok: bool
    message: str = ""
    expected: str | None = None
    found: str | None = None
    exit_code: int = 0
    skipped: bool = False

    @property
    def status(self) -> str:
        return "skipped" if self.skipped else ("passed" if self.ok else "failed")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "link": self.link,
            "check": self.check,
            "ok": self.ok,
            "status": self.status,
        }
        if not self.ok or self.skipped:
            out |= {"message": self.message, "expected": self.expected, "found": self.found}
        return out


@dataclass
class LinkResult:
    """What one verified link says: its subject and who signed it.

    ``tree_state`` is the build link's: the source tree's state the
    provenance records (``clean``, ``dirty``, or ``unknown`` when it records
    none), set once the link verified; empty for the other links.
    """

    link: str
    subject: str = ""
    signers: list[str] = field(default_factory=list)
    detail: str = ""
    statement: Statement | None = None
    predicate: Any = None
    trusted: bool = False  # signed by enough allowed keys; only then do its claims count
    tree_state: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "link": self.link,
            "subject": self.subject,
            "signers": self.signers,
            "detail": self.detail,
        }
        if self.link == "build":
            out["tree_state"] = self.tree_state
        return out


@dataclass(frozen=True)
class VerificationReport:
    model_dir: str
    policy: str
    checks: tuple[CheckResult, ...]
    links: tuple[LinkResult, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.ok]

    @property
    def exit_code(self) -> int:
        return max((c.exit_code for c in self.checks), default=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "model_dir": self.model_dir,
            "policy": self.policy,
            "links": [link.to_dict() for link in self.links],
            "checks": [c.to_dict() for c in self.checks],
            "failures": [c.to_dict() | {"message": c.message} for c in self.failures],
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------------------
# Single checks: each does one thing and raises its own error type.


def verify_policy_not_expired(policy: TrustPolicy, now: datetime) -> None:
    """The policy is in force at ``now``: not before its notBefore, not at or after its expiry."""
    if policy.is_not_yet_valid(now):
        assert policy.not_before is not None
        raise PolicyExpired(
            "policy",
            "the trust policy is not yet valid",
            expected=f"a time at or after {policy.not_before:%Y-%m-%dT%H:%M:%SZ}",
            found=f"{now:%Y-%m-%dT%H:%M:%SZ}",
        )
    if policy.is_expired(now):
        raise PolicyExpired(
            "policy",
            "the trust policy has expired",
            expected=f"a time before {policy.expires:%Y-%m-%dT%H:%M:%SZ}",
            found=f"{now:%Y-%m-%dT%H:%M:%SZ}",
        )


def not_a_regular_file(path: Path) -> str | None:
    """None for a regular file (symlinks followed), else what is there: "no file", "a FIFO", ...

    Only lstat and stat, never open: opening a FIFO blocks until a writer
    comes. Symlinks to regular files are regular files (inside a Bazel
    sandbox every input is one).
    """
    if not os.path.lexists(path):
        return "no file"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a dangling symlink"
    except OSError as exc:  # a symlink loop, a path too long
        return f"a path that cannot be read ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def verify_link_present(link: str, path: Path) -> None:
    found = not_a_regular_file(path)
    if found == "no file":
        raise LinkMissing(
            link, "attestation is missing", where=str(path), expected=path.name, found=found
        )
    if found is not None:
        raise LinkMissing(
            link,
            "attestation is not a regular file",
            where=str(path),
            expected="a regular file",
            found=found,
        )


def verify_payload_type(link: str, envelope: Any) -> None:
    if envelope.payload_type != PAYLOAD_TYPE:
        raise PayloadTypeInvalid(
            link, "wrong DSSE payloadType", expected=PAYLOAD_TYPE, found=envelope.payload_type
        )


def _keyid_core(keyid: str) -> str:
    """A keyid without case, whitespace, invisible characters, quotes or a digest prefix."""
    visible = "".join(
        c for c in keyid if not c.isspace() and unicodedata.category(c) not in ("Cc", "Cf")
    )
    core = visible.strip("'\"`=").lower()
    return core.removeprefix("sha256:").removeprefix("0x")


def near_miss_keyid(keyid: str, trusted: Iterable[str]) -> str | None:
    """The trusted keyid that ``keyid`` is not, but equals once case and padding are ignored."""
    core = _keyid_core(keyid)
    return next((t for t in trusted if t != keyid and _keyid_core(t) == core), None)


def _shown_keyid(keyid: str) -> str:
    # repr: quotes and escapes make whitespace and control characters visible.
    text = repr(keyid)
    return text if len(text) <= 80 else f"{text[:72]}… ({len(keyid)} characters)"


def describe_unknown_keyid(keyid: str, policy: TrustPolicy) -> str:
    """How a report names a signature by a keyid the policy does not list.

    The usual 12-character prefix would let a keyid that differs from a
    trusted one only in case, padding or its tail print exactly like the
    trusted key; such a keyid is shown whole and said to be a near miss or
    a lookalike.
    """
    near = near_miss_keyid(keyid, policy.keys)
    if near is not None:
        return (
            f"a signature by unknown key {_shown_keyid(keyid)} (a near miss of trusted key "
            f"{policy.key_label(near)}: keyids are exact lowercase hex)"
        )
    if not _KEYID.fullmatch(keyid):
        return f"a signature by unknown key {_shown_keyid(keyid)}"
    lookalike = next((k for k in policy.keys if k[:12] == keyid[:12]), None)
    if lookalike is not None:
        return (
            f"a signature by unknown key {keyid} "
            f"(not {policy.key_label(lookalike)}, whose id starts the same)"
        )
    return f"a signature by unknown key {keyid[:12]}"


def verify_signature_threshold(
    link: str, envelope: Any, rule: StepRule, policy: TrustPolicy
) -> list[str]:
    """Distinct policy-allowed keys with a valid signature; raises below the threshold."""
    from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError

    pae = envelope.pae()
    valid: list[str] = []
    refused: list[str] = []
    for keyid, signature in envelope.signatures.items():
        key = policy.keys.get(keyid)
        if key is None:
            refused.append(describe_unknown_keyid(keyid, policy))
            continue
        try:
            key.verify_signature(signature, pae)
        except (UnverifiedSignatureError, VerificationError):
            refused.append(f"an invalid signature claiming key {policy.key_label(keyid)}")
            continue
        if keyid not in rule.functionaries:
            refused.append(
                f"a signature by {policy.key_label(keyid)}, which the policy does not allow for step {link}"
            )
            continue
        if keyid not in valid:
            valid.append(keyid)
    if len(valid) < rule.threshold:
        allowed = ", ".join(policy.key_label(k) for k in rule.functionaries)
        found = f"{len(valid)}" + (f" ({'; '.join(refused)})" if refused else "")
        raise SignatureThresholdNotMet(
            link,
            "not enough valid signatures by keys the policy allows",
            expected=f"{rule.threshold} of [{allowed}]",
            found=found,
        )
    return [policy.key_label(k) for k in valid]


def _predicate_parser(link: str) -> Callable[[Statement, str], Any]:
    def dataset(s: Statement, where: str) -> Any:
        return DatasetPredicate.from_dict(s.predicate, where=where)

    def build(s: Statement, where: str) -> Any:
        provenance = BuildProvenance.from_statement_object(s, where=where)
        # What the summary shows (_build_detail) is checked with the predicate.
        _build_target(provenance, where)
        build_tree_state(provenance, where)
        return provenance

    def evaluation(s: Statement, where: str) -> Any:
        return EvaluationPredicate.from_dict(s.predicate, where=where)

    return {"dataset": dataset, "holdout": dataset, "build": build, "evaluation": evaluation}[link]


def _build_target(provenance: BuildProvenance, where: str) -> str:
    target = provenance.external_parameters.get("target")
    if not isinstance(target, str) or not _LABEL.fullmatch(target):
        raise InputError(
            "provenance externalParameters.target",
            where=where,
            expected="a Bazel label such as //models:candidate",
            found=repr(target)[:60],
        )
    return target


def build_tree_state(provenance: BuildProvenance, where: str) -> str:
    """The source tree's state the build recorded: clean, dirty, or unknown when it says nothing."""
    sources = [d for d in provenance.resolved_dependencies if d.name == "source"]
    if len(sources) > 1:
        # Two source entries could carry two states; a reader would pick one.
        raise InputError(
            "provenance names more than one source",
            where=where,
            expected="one resolvedDependencies entry named 'source'",
            found=str(len(sources)),
        )
    if not sources:
        return "unknown"
    state = (sources[0].annotations or {}).get("gitTreeState", "unknown")
    if not isinstance(state, str) or state not in TREE_STATES:
        raise InputError(
            "source gitTreeState",
            where=where,
            expected="clean, dirty or unknown",
            found=repr(state)[:60],
        )
    return state


def verify_predicate(link: str, statement: Statement, rule: StepRule, where: str) -> Any:
    if statement.predicate_type != rule.predicate_type:
        raise PredicateInvalid(
            link,
            "wrong predicate type",
            expected=rule.predicate_type,
            found=statement.predicate_type,
        )
    try:
        return _predicate_parser(link)(statement, where)
    except InputError as exc:
        raise PredicateInvalid(
            link, exc.what, where=exc.where, expected=exc.expected, found=exc.found
        ) from None


def _names(names: Iterable[str]) -> str:
    """Subject names for a message; a statement may hold thousands."""
    shown = [repr(n) for n in names]
    return ", ".join(shown[:10]) + (f", … ({len(shown)} in all)" if len(shown) > 10 else "")


def verify_subject_set(
    link: str, statement: Statement, expected: Sequence[str], where: str | None = None
) -> None:
    """The statement's subjects are exactly ``expected``: none extra, none missing, none twice.

    A subject the step does not produce would still be "attested" by the
    signature; one it leaves out is a file nobody vouches for.
    """
    found = Counter(s.name for s in statement.subjects)
    want = set(expected)
    problems = (
        [f"extra {n!r}" for n in sorted(set(found) - want)]
        + [f"missing {n!r}" for n in sorted(want - set(found))]
        + [f"duplicate {n!r}" for n, count in sorted(found.items()) if count > 1]
    )
    if problems:
        raise SubjectDigestMismatch(
            link,
            f"the {link} statement's subjects are not exactly what the step produces: "
            + "; ".join(problems[:10]),
            where=where,
            expected="exactly " + _names(sorted(want)),
            found=_names(sorted(found.elements())),
        )


def verify_file_subjects(
    link: str, statement: Statement, model_dir: Path, names: tuple[str, ...]
) -> None:
    """Each named subject must be a file in ``model_dir`` with the attested sha256."""
    for name in names:
        if not name or "/" in name or "\\" in name or "\0" in name or name in (".", ".."):
            raise SubjectDigestMismatch(
                link,
                "subject is not a file name in the model directory",
                expected="a plain file name",
                found=repr(name),
            )
        subject = statement.subject(name)
        if subject is None:
            raise SubjectDigestMismatch(
                link, f"statement has no subject {name}", expected=name, found="no subject"
            )
        path = model_dir / name
        _require_regular_file(link, name, path, expected=f"sha256 {subject.sha256}")
        found = sha256_file(path).sha256
        if found != subject.sha256:
            raise SubjectDigestMismatch(
                link,
                f"{name} does not match the attested digest",
                where=str(path),
                expected=f"sha256 {subject.sha256}",
                found=f"sha256 {found}",
            )


def _require_regular_file(
    link: str,
    name: str,
    path: Path,
    *,
    expected: str,
    error: type[SubjectDigestMismatch] | type[BundleInvalid] = SubjectDigestMismatch,
) -> None:
    """``path`` must be a regular file before anything opens it: "missing" or "not a regular file"."""
    found = not_a_regular_file(path)
    if found == "no file":
        raise error(link, f"{name} is missing", where=str(path), expected=expected, found=found)
    if found is not None:
        raise error(
            link,
            f"{name} is not a regular file",
            where=str(path),
            expected="a regular file",
            found=found,
        )


def _private_copy(source: Path, dest: Path) -> Path:
    """Copy a regular file (symlinks followed) opened without blocking; judged by ``fstat``."""
    import shutil

    where = str(source)
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"cannot open {source.name}", where=where, found=exc.strerror) from None
    with os.fdopen(fd, "rb") as src:
        kind = os.fstat(src.fileno()).st_mode
        if not stat.S_ISREG(kind):
            raise InputError(
                f"{source.name} is not a regular file",
                where=where,
                expected="a regular file",
                found=file_kind(kind),
            )
        with open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    return dest


def verify_model_bundle(model_dir: Path, rule: StepRule, policy: TrustPolicy) -> None:
    """model.sig (OpenSSF model-signing bundle) verifies with a key the policy allows for the build."""
    import tempfile

    from model_signing import verifying

    model = model_dir / "model.rtm"
    # model-signing opens both: neither may be a FIFO, whatever subject-digest found.
    for name in (MODEL_BUNDLE, model.name):
        _require_regular_file(
            "build", name, model_dir / name, expected="a regular file", error=BundleInvalid
        )
    errors = []
    with tempfile.TemporaryDirectory(prefix="retrain-bundle-") as private:
        # model-signing opens the files itself, by path, blocking: it gets
        # private copies, each read once without blocking (a FIFO swapped in
        # after the check above is refused, never waited on), and never a
        # symlink (which it refuses; inside a Bazel sandbox every input is one).
        copies = {}
        for name in (model.name, MODEL_BUNDLE):
            try:
                copies[name] = _private_copy(model_dir / name, Path(private) / name)
            except InputError as exc:
                raise BundleInvalid(
                    "build", exc.what, where=exc.where, expected=exc.expected, found=exc.found
                ) from None
        for keyid in rule.functionaries:
            pub = Path(private) / f"{keyid}.pub"
            pub.write_text(policy.keys[keyid].keyval["public"], encoding="ascii")
            try:
                verifying.Config().use_elliptic_key_verifier(public_key=pub).verify(
                    copies[model.name], copies[MODEL_BUNDLE]
                )
                return
            except Exception as exc:  # model-signing raises ValueError and others for a mismatch
                reason = str(exc).split(":")[0] if str(exc) else type(exc).__name__
                errors.append(f"{policy.key_label(keyid)}: {reason[:80]}")
    raise BundleInvalid(
        "build",
        f"{MODEL_BUNDLE} does not verify the model with a key the policy allows for the build",
        where=str(model_dir / MODEL_BUNDLE),
        expected="a model-signing bundle over model.rtm by "
        + ", ".join(policy.key_label(k) for k in rule.functionaries),
        found="; ".join(errors),
    )


def verify_dataset_subjects(
    statement: Statement,
    predicate: DatasetPredicate,
    repo_root: Path | None,
    notes: list[str],
    link: str = "dataset",
) -> str:
    """The manifest (and, when present, every data file) must match the attested digests."""

    subject = statement.subject(f"dataset/{predicate.name}")
    if subject is None or "sha256:" + (subject.sha256 or "") != predicate.dataset_digest:
        raise SubjectDigestMismatch(
            link,
            "dataset subject disagrees with its predicate",
            expected=f"dataset/{predicate.name} {predicate.dataset_digest}",
            found=f"{subject.name} sha256:{subject.sha256}" if subject else "no such subject",
        )
    manifest_subject = statement.subject(predicate.manifest_uri)
    if manifest_subject is None or manifest_subject.sha256 != predicate.manifest_sha256:
        raise SubjectDigestMismatch(
            link,
            "manifest subject disagrees with its predicate",
            expected=f"{predicate.manifest_uri} sha256 {predicate.manifest_sha256}",
            found=f"sha256 {manifest_subject.sha256}" if manifest_subject else "no such subject",
        )
    if repo_root is None:
        notes.append(f"{link}: no repository given, manifest and data not checked")
        return "manifest not checked"
    # Imported here: the manifest code needs pyarrow, which verifiers without
    # a repository (a champion's chain, inside the signing environment) lack.
    from retrain.manifest import MAX_MANIFEST_BYTES, manifest_from_bytes, verify_directory

    manifest_path = repo_root / predicate.manifest_uri
    _require_regular_file(
        link, "manifest", manifest_path, expected=f"sha256 {predicate.manifest_sha256}"
    )
    # Read once: the bytes hashed are the bytes parsed (a file swapped in
    # between, or a FIFO, changes nothing and blocks nothing).
    try:
        data = read_regular_bytes(manifest_path, limit=MAX_MANIFEST_BYTES, what="manifest")
    except InputError as exc:
        raise SubjectDigestMismatch(
            link, exc.what, where=exc.where, expected=exc.expected, found=exc.found
        ) from None
    found = hashlib.sha256(data).hexdigest()
    if found != predicate.manifest_sha256:
        raise SubjectDigestMismatch(
            link,
            "manifest does not match the attested digest",
            where=str(manifest_path),
            expected=f"sha256 {predicate.manifest_sha256}",
            found=f"sha256 {found}",
        )
    try:
        manifest = manifest_from_bytes(data, where=str(manifest_path))
    except RetrainError as exc:
        raise SubjectDigestMismatch(
            link, exc.what, where=exc.where, expected=exc.expected, found=exc.found
        ) from None
    if manifest.dataset_digest != predicate.dataset_digest:
        raise SubjectDigestMismatch(
            link,
            "manifest's dataset digest",
            where=str(manifest_path),
            expected=predicate.dataset_digest,
            found=manifest.dataset_digest,
        )
    if predicate.root is None or not (repo_root / predicate.root).is_dir():
        notes.append(
            f"{link} {predicate.name}: data files not present locally; the manifest was checked"
        )
        return "manifest checked; data not present"
    failures = verify_directory(
        manifest, repo_root / predicate.root, manifest_where=predicate.manifest_uri
    )
    if failures:
        first = failures[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise SubjectDigestMismatch(
            link, first.what + more, where=first.where, expected=first.expected, found=first.found
        )
    return f"{len(manifest.entries)} files, {manifest.rows} rows verified"


def verify_chain_links(links: dict[str, LinkResult]) -> None:
    """Each link names the previous link's subject.

    The build names the training dataset the dataset link attests; the
    evaluation names the model and metrics the build attests, the same
    training dataset, and the holdout the holdout link attests (or, with no
    holdout link, the training dataset itself).
    """
    ds, hold, build, ev = (links.get(k) for k in ("dataset", "holdout", "build", "evaluation"))
    dsp = ds.predicate if ds else None
    hp = hold.predicate if hold else None
    bp = build.predicate if build else None
    ep = ev.predicate if ev else None
    if dsp is not None and bp is not None:
        dep = bp.dependency(f"dataset/{dsp.name}")
        want = dsp.dataset_digest.removeprefix("sha256:")
        if dep is None or dep.sha256 != want:
            raise ChainLinkBroken(
                "build",
                f"provenance does not name the attested dataset/{dsp.name}",
                expected=f"sha256 {want}",
                found=f"sha256 {dep.sha256}" if dep else "no such dependency",
            )
    if ep is not None and (ep.model_name, ep.metrics_file) != ("model.rtm", "metrics.json"):
        # The evaluation is of the build's model and its metrics: another build
        # output (a report, the metrics) is not a model however well it scored.
        raise ChainLinkBroken(
            "evaluation",
            "evaluation is not of the build's model and metrics",
            expected="model model.rtm, metricsFile metrics.json",
            found=f"model {ep.model_name}, metricsFile {ep.metrics_file}",
        )
    if bp is not None and ep is not None:
        model = bp.subject(ep.model_name)
        if model is None or model.sha256 != ep.model_sha256:
            raise ChainLinkBroken(
                "evaluation",
                "evaluation names a model the build did not attest",
                expected=f"{ep.model_name} sha256 {model.sha256 if model else '(none)'}",
                found=f"sha256 {ep.model_sha256}",
            )
        metrics = bp.subject(ep.metrics_file)
        if metrics is None or metrics.sha256 != ep.metrics_sha256:
            raise ChainLinkBroken(
                "evaluation",
                f"evaluation's {ep.metrics_file} is not the one the build attests",
                expected=f"sha256 {metrics.sha256 if metrics else '(none)'}",
                found=f"sha256 {ep.metrics_sha256}",
            )
    if dsp is not None and ep is not None and ep.training_dataset_digest != dsp.dataset_digest:
        raise ChainLinkBroken(
            "evaluation",
            "evaluation names a training dataset other than the attested one",
            expected=dsp.dataset_digest,
            found=ep.training_dataset_digest,
        )
    holdout = hp or dsp
    if holdout is not None and ep is not None and ep.dataset_digest != holdout.dataset_digest:
        raise ChainLinkBroken(
            "evaluation",
            f"evaluation names a holdout other than the attested {'holdout' if hp else 'dataset'}",
            expected=holdout.dataset_digest,
            found=ep.dataset_digest,
        )


def verify_gates_passed(link: str, predicate: Any) -> None:
    """The evaluation's gates, and each dataset's quality checks, all passed."""
    if isinstance(predicate, EvaluationPredicate):
        if not predicate.gates_passed:
            raise GatesFailed(
                link,
                f"{len(predicate.failed_gates)} validation gate(s) failed",
                expected="every gate passed or skipped",
                found=", ".join(predicate.failed_gates),
            )
        return
    quality = predicate.quality
    failed = [
        f"{c.get('check')}({c.get('column')})" if c.get("column") else str(c.get("check"))
        for c in quality.get("checks", [])
        if isinstance(c, dict) and c.get("passed") is False
    ]
    if failed or quality.get("passed") is False:
        raise GatesFailed(
            link,
            f"dataset {predicate.name} failed {len(failed)} quality check(s)",
            expected="every quality check passed",
            found=", ".join(failed) or "passed: false",
        )


# ---------------------------------------------------------------------------
# The row


class _Check:
    """Context manager recording one check's outcome; a failure does not propagate."""

    def __init__(self, results: list[CheckResult], link: str, name: str) -> None:
        self.results, self.link, self.name = results, link, name
        self.ok = False

    def __enter__(self) -> _Check:
        return self

    def skip(self, reason: str) -> None:
        """Record the check as not run (its inputs are untrusted or absent)."""
        self.results.append(CheckResult(self.link, self.name, True, message=reason, skipped=True))

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        if exc is None:
            self.ok = True
            self.results.append(CheckResult(self.link, self.name, True))
            return False
        if not isinstance(exc, RetrainError):
            return False
        prefix = "" if isinstance(exc, LinkCheckFailed) else f"[{self.link}] {self.name}: "
        # A chain failure belongs to the link whose claim broke it.
        link = exc.link if isinstance(exc, LinkCheckFailed) and self.link == "chain" else self.link
        self.results.append(
            CheckResult(
                link,
                self.name,
                False,
                message=prefix + exc.diagnostics(),
                expected=None if exc.expected is None else str(exc.expected),
                found=None if exc.found is None else str(exc.found),
                exit_code=exc.exit_code,
            )
        )
        return True


def _build_detail(provenance: BuildProvenance, tree_state: str) -> str:
    """The build's target and commit, and the tree's state unless it was clean."""
    target = _build_target(provenance, "provenance")
    source = provenance.dependency("source")
    commit = source.digest.get("gitCommit") if source else None
    state = {"clean": "", "dirty": " (dirty)"}.get(tree_state, " (tree state unknown)")
    return (f"{target} @ {commit[:12]}" if commit else target) + state


def _verify_link(
    link: str,
    rule: StepRule,
    policy: TrustPolicy,
    model_dir: Path,
    repo_root: Path | None,
    results: list[CheckResult],
    notes: list[str],
) -> LinkResult:
    result = LinkResult(link)
    path = model_dir / LINK_FILES[link]
    with (check := _Check(results, link, "link-present")):
        verify_link_present(link, path)
    if not check.ok:
        return result
    with (check := _Check(results, link, "envelope")):
        envelope = _read_one(path)
        statement = Statement.from_json_bytes(envelope.payload, where=str(path))
    if not check.ok:
        return result
    result.statement = statement
    with _Check(results, link, "payload-type"):
        verify_payload_type(link, envelope)
    with (signed := _Check(results, link, "signature-threshold")):
        result.signers = verify_signature_threshold(link, envelope, rule, policy)
    with (check := _Check(results, link, "predicate-schema")):
        predicate = verify_predicate(link, statement, rule, str(path))
    if not check.ok:
        return result
    if not signed.ok:
        # An unsigned statement must not choose which files the verifier
        # reads, and its claims (gates passed) count for nothing.
        for name in ("subject-digest", "model-bundle" if link == "build" else "gates"):
            _Check(results, link, name).skip("skipped: the statement's signature did not verify")
        return result
    result.predicate = predicate
    result.trusted = True
    with _Check(results, link, "subject-digest"):
        if link in ("dataset", "holdout"):
            result.subject = f"dataset/{predicate.name} {predicate.dataset_digest[:19]}"
            verify_subject_set(
                link, statement, (f"dataset/{predicate.name}", predicate.manifest_uri), str(path)
            )
            result.detail = verify_dataset_subjects(statement, predicate, repo_root, notes, link)
        elif link == "build":
            model = predicate.subject("model.rtm")
            result.subject = f"model.rtm {model.sha256[:12]}" if model and model.sha256 else ""
            result.tree_state = build_tree_state(predicate, str(path))
            result.detail = _build_detail(predicate, result.tree_state)
            verify_subject_set(link, statement, BUILD_SUBJECTS, str(path))
            verify_file_subjects(link, statement, model_dir, BUILD_SUBJECTS)
        else:
            result.subject = f"{predicate.model_name} {predicate.model_sha256[:12]}"
            shown = ", ".join(
                f"{k} {v:.4f}"
                for k, v in sorted(predicate.metrics.items())
                if k in ("auc", "accuracy")
            )
            result.detail = f"{shown} on {predicate.holdout_rows} holdout rows"
            verify_subject_set(link, statement, (predicate.model_name,), str(path))
            subject = statement.subject(predicate.model_name)
            if subject is not None and subject.sha256 != predicate.model_sha256:
                raise SubjectDigestMismatch(
                    link,
                    "the statement's subject and its predicate name different models",
                    expected=f"sha256 {predicate.model_sha256} (predicate)",
                    found=f"sha256 {subject.sha256} (subject)",
                )
            verify_file_subjects(link, statement, model_dir, (predicate.model_name,))
    if link != "build":
        with _Check(results, link, "gates"):
            verify_gates_passed(link, predicate)
    if link == "build":
        bundle = model_dir / MODEL_BUNDLE
        check = _Check(results, link, "model-bundle")
        # Absent is optional; present as anything but a regular file fails below.
        if not os.path.lexists(bundle):
            check.skip(f"skipped: no {MODEL_BUNDLE} beside the model")
            notes.append(f"build: no {MODEL_BUNDLE}; the Sigstore bundle was not checked")
        else:
            with check:
                verify_model_bundle(model_dir, rule, policy)
    return result


def verify_model(
    model_dir: str | Path,
    policy: TrustPolicy,
    *,
    policy_where: str = "policy",
    repo_root: Path | None = None,
    now: datetime | None = None,
) -> VerificationReport:
    """Run every check on every link of the model in ``model_dir``; never raises on a failed check."""
    model_dir = Path(model_dir)
    results: list[CheckResult] = []
    notes: list[str] = []
    with _Check(results, "policy", "policy-expiry"):
        verify_policy_not_expired(policy, now or datetime.now(UTC))
    links = {
        link: _verify_link(link, rule, policy, model_dir, repo_root, results, notes)
        for link, rule in policy.steps.items()
    }
    chain = _Check(results, "chain", "chain")
    untrusted = [name for name, link in links.items() if not link.trusted]
    if untrusted:
        chain.skip(f"skipped: link(s) {', '.join(untrusted)} did not verify")
    else:
        with chain:
            verify_chain_links(links)
    return VerificationReport(
        model_dir=str(model_dir),
        policy=policy_where,
        checks=tuple(results),
        links=tuple(links.values()),
        notes=tuple(notes),
    )


def _read_one(path: Path) -> Any:
    from retrain.attest.envelope import read_link_envelope

    return read_link_envelope(path)
