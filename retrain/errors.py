"""The one error family of retrain.

Every failure a person can cause or fix (a wrong hash, a malformed manifest, a
recipe naming a feature that does not exist) is a ``RetrainError``. Its
``diagnostics()`` is one line: where, what, expected versus found. The CLI and
the Bazel actions print that line and exit with ``exit_code``; tracebacks
appear only with ``--verbose``.

Exit codes: 2 for input that cannot be used at all (bad usage, malformed or
unsupported input), 1 for a check that ran and failed (a digest mismatch, a
failed gate).
"""

from __future__ import annotations

__all__ = [
    "CheckFailed",
    "DataError",
    "DigestMismatch",
    "EnvelopeError",
    "HermeticityError",
    "InputError",
    "KeyFileError",
    "ManifestError",
    "PathEscapeError",
    "PolicyError",
    "PolicyUntrusted",
    "RecipeError",
    "RetrainError",
    "SchemaMismatch",
    "StoreError",
]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class RetrainError(Exception):
    """Base of every error retrain reports to a person."""

    exit_code = 2

    def __init__(
        self,
        what: str,
        *,
        where: str | None = None,
        expected: object | None = None,
        found: object | None = None,
        hint: str | None = None,
    ) -> None:
        self.what = what
        self.where = where
        self.expected = expected
        self.found = found
        self.hint = hint
        super().__init__(self.diagnostics())

    def diagnostics(self) -> str:
        """One line saying where, what, expected versus found, and what to do."""
        parts = []
        if self.where:
            parts.append(f"{self.where}:")
        parts.append(self.what)
        line = " ".join(parts)
        # Only what is known: "expected None" would send a person looking for a None.
        if self.expected is not None and self.found is not None:
            line += f": expected {self.expected}, found {self.found}"
        elif self.expected is not None:
            line += f": expected {self.expected}"
        elif self.found is not None:
            line += f": found {self.found}"
        if self.hint:
            line += f" ({self.hint})"
        return _one_line(line)


class InputError(RetrainError):
    """Input that cannot be used: malformed, unsupported or missing."""

    exit_code = 2


class CheckFailed(RetrainError):
    """A check ran on usable input and the input did not pass it."""

    exit_code = 1


class ManifestError(InputError):
    """A data manifest that is malformed or of an unknown version."""


class PathEscapeError(InputError):
    """A dataset path that leaves the dataset root (``..``, absolute, symlink out)."""


class RecipeError(InputError):
    """A training recipe that is malformed or names what does not exist."""


class DataError(InputError):
    """Data that cannot be trained or evaluated on (NaN labels, missing columns)."""


class StoreError(InputError):
    """The content-addressed store lacks a blob or cannot be used."""


class HermeticityError(InputError):
    """A build action started outside the environment contract."""


class DigestMismatch(CheckFailed):
    """Bytes whose sha256 or size differs from what was recorded."""


class SchemaMismatch(CheckFailed):
    """A file whose Arrow schema differs from the one recorded."""


class PolicyError(InputError):
    """A trust policy that is malformed or names what does not exist."""


class PolicyUntrusted(CheckFailed):
    """A trust policy that reads well but is not to be believed: unsigned, badly
    signed, not chained to the trust root or to the policy a registry recorded."""


class EnvelopeError(InputError):
    """An attestation file that is not a readable DSSE envelope of a statement."""


class KeyFileError(InputError):
    """A key file that is missing, unreadable or of an unsupported type."""
