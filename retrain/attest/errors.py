"""The failures of attestation verification, one type per check.

Each check of ``retrain.attest.verify`` raises its own type, so a caller (or
a test) can tell a bad signature from a broken chain without parsing text.
Every one names the link (dataset, build, evaluation), the check, what was
expected and what was found.
"""

from __future__ import annotations

from retrain.errors import CheckFailed

__all__ = [
    "BundleInvalid",
    "ChainLinkBroken",
    "GatesFailed",
    "LinkCheckFailed",
    "LinkMissing",
    "PayloadTypeInvalid",
    "PolicyExpired",
    "PredicateInvalid",
    "SignatureThresholdNotMet",
    "SubjectDigestMismatch",
]


class LinkCheckFailed(CheckFailed):
    """A named check failed for one link of a model's attestation chain."""

    check = "check"

    def __init__(self, link: str, what: str, **kw: object) -> None:
        self.link = link
        super().__init__(what, **kw)  # type: ignore[arg-type]

    def diagnostics(self) -> str:
        return f"[{self.link}] {self.check}: " + super().diagnostics()


class PolicyExpired(LinkCheckFailed):
    check = "policy-expiry"


class LinkMissing(LinkCheckFailed):
    check = "link-present"


class PayloadTypeInvalid(LinkCheckFailed):
    check = "payload-type"


class SignatureThresholdNotMet(LinkCheckFailed):
    check = "signature-threshold"


class PredicateInvalid(LinkCheckFailed):
    check = "predicate-schema"


class SubjectDigestMismatch(LinkCheckFailed):
    check = "subject-digest"


class ChainLinkBroken(LinkCheckFailed):
    check = "chain"


class BundleInvalid(LinkCheckFailed):
    check = "model-bundle"


class GatesFailed(LinkCheckFailed):
    check = "gates"
