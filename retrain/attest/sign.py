"""Signing a model's chain: one DSSE envelope per link, and a Sigstore bundle.

``sign_chain`` takes the deterministic, unsigned statements a build wrote,
checks that each statement's file subjects match the files beside them (it
never signs what it cannot see), wraps each in a DSSE envelope signed with
every given key (securesystemslib ``CryptoSigner``), and writes
``<link>.intoto.jsonl``. It also signs the model file with OpenSSF
model-signing (private-key method, offline), giving ``model.sig``, a Sigstore
bundle that model-signing's own ``verify key`` command checks.

Signature bytes are not deterministic (ECDSA draws a fresh nonce); the
signed payloads are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain.attest.envelope import write_envelopes
from retrain.attest.statement import PAYLOAD_TYPE, Statement
from retrain.digest import sha256_file
from retrain.errors import CheckFailed

__all__ = [
    "BUILD_SUBJECTS",
    "LINK_FILES",
    "MODEL_BUNDLE",
    "SignedChain",
    "sign_chain",
    "sign_model_bundle",
    "sign_statement",
]

# Link name -> file name in a model's output directory.
LINK_FILES: Mapping[str, str] = {
    "dataset": "dataset.intoto.jsonl",
    "holdout": "holdout.intoto.jsonl",
    "build": "provenance.intoto.jsonl",
    "evaluation": "evaluation.intoto.jsonl",
}
MODEL_BUNDLE = "model.sig"
# What the build link attests: the outputs model_provenance names as its
# subjects (rules/private/model.bzl, _model_provenance_impl:
# ``subjects = [mi.model, mi.report, ev.metrics, ev.gates, ev.report]``), by
# the file names model_pipeline gives them. Change both together; the
# verifier refuses a build link whose subjects are not exactly these.
BUILD_SUBJECTS = ("model.rtm", "train_report.json", "metrics.json", "gates.txt", "report.html")


@dataclass(frozen=True)
class SignedChain:
    files: tuple[Path, ...]
    keyids: tuple[str, ...]


def sign_statement(payload: bytes, signers: Sequence[Any], *, cosign: Any = None) -> Any:
    """A DSSE envelope over the statement bytes, one signature per signer.

    With ``cosign`` (an existing envelope over the same payload), its
    signatures are kept and the new ones added: how a second functionary
    co-signs a step whose policy threshold is above one.
    """
    from securesystemslib.dsse import Envelope

    signatures = {}
    if cosign is not None:
        if cosign.payload != payload or cosign.payload_type != PAYLOAD_TYPE:
            raise CheckFailed("refusing to co-sign: the existing envelope signs another payload")
        signatures = dict(cosign.signatures)
    envelope = Envelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures=signatures)
    for signer in signers:
        envelope.sign(signer)
    return envelope


def _check_file_subjects(link: str, statement: Statement, out_dir: Path) -> None:
    """Every subject that names a file of this directory must match it; never sign blind.

    The build link must name exactly ``BUILD_SUBJECTS``: what the verifier
    would refuse is never signed.
    """
    names = sorted(s.name for s in statement.subjects)
    if link == "build" and names != sorted(BUILD_SUBJECTS):
        raise CheckFailed(
            "refusing to sign the build link: its subjects are not the build's outputs",
            expected=", ".join(sorted(BUILD_SUBJECTS)),
            found=", ".join(names),
        )
    for subject in statement.subjects:
        path = out_dir / subject.name
        if "/" in subject.name:
            continue  # not a file of this directory (dataset/<name>, a manifest path)
        if not path.is_file():
            raise CheckFailed(
                f"refusing to sign the {link} link: subject {subject.name} is not in {out_dir}",
                where=str(path),
                expected=f"sha256 {subject.sha256}",
                found="no file",
            )
        found = sha256_file(path).sha256
        if subject.sha256 != found:
            raise CheckFailed(
                f"refusing to sign the {link} link: subject {subject.name} does not match its file",
                where=str(path),
                expected=subject.sha256,
                found=found,
            )


def sign_model_bundle(model: Path, private_key: Path, bundle: Path) -> None:
    """OpenSSF model-signing, private-key method: a Sigstore bundle for the model file."""
    from model_signing import signing

    tmp = bundle.with_name(f".{bundle.name}.tmp")
    signing.Config().use_elliptic_key_signer(private_key=private_key).sign(model, tmp)
    os.replace(tmp, bundle)


def sign_chain(
    out_dir: Path,
    statements: Mapping[str, bytes],
    signers: Sequence[Any],
    *,
    model: Path | None = None,
    private_key: Path | None = None,
    cosign: Mapping[str, Any] | None = None,
) -> SignedChain:
    """Sign each link's statement into ``out_dir/<link>.intoto.jsonl``.

    Every statement is checked before anything is written, and the envelope
    files are replaced only once all of them are ready.
    """
    envelopes = {}
    for link, payload in statements.items():
        if link not in LINK_FILES:
            raise ValueError(f"unknown link {link!r}")
        statement = Statement.from_json_bytes(payload, where=f"{link} statement")
        if link in ("build", "evaluation"):  # dataset links name no file of this directory
            _check_file_subjects(link, statement, out_dir)
        envelopes[link] = sign_statement(payload, signers, cosign=(cosign or {}).get(link))
    if model is not None and not model.is_file():
        raise CheckFailed("refusing to sign: the model file is missing", where=str(model))
    staged = []
    try:
        for link, envelope in envelopes.items():
            tmp = out_dir / f".{LINK_FILES[link]}.tmp"
            write_envelopes(tmp, [envelope])
            staged.append((tmp, out_dir / LINK_FILES[link]))
        if model is not None and private_key is not None:
            tmp = out_dir / f".{MODEL_BUNDLE}.staged"
            sign_model_bundle(model, private_key, tmp)
            staged.append((tmp, out_dir / MODEL_BUNDLE))
        for tmp, final in staged:
            os.replace(tmp, final)
    finally:
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()
    return SignedChain(
        files=tuple(final for _, final in staged), keyids=tuple(s.public_key.keyid for s in signers)
    )
