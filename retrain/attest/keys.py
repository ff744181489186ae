"""Signing keys: ECDSA P-256 pairs as PEM files, and the per-user development key.

One key pair serves both signature formats: DSSE envelopes (securesystemslib's
``CryptoSigner``) and the OpenSSF model-signing Sigstore bundle, whose
private-key method accepts P-256 and refuses ed25519 (model-signing 1.1.1).
A key's id is securesystemslib's: the sha256 of its canonical public-key JSON.

Where no key is configured, builds sign with a development key kept outside
any repository, in ``$XDG_CONFIG_HOME/retrain/dev-key.pem`` (default
``~/.config``), created on first use. Nothing trusts it unless a policy says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from retrain.errors import KeyFileError

__all__ = [
    "KeyPairPaths",
    "dev_key_path",
    "ensure_dev_key",
    "generate_key_pair",
    "load_public_key",
    "load_signer",
    "public_key_path_for",
]


@dataclass(frozen=True)
class KeyPairPaths:
    """Where a key pair lives, and the public key's id."""

    private: Path
    public: Path
    keyid: str


def public_key_path_for(private: Path) -> Path:
    """``NAME.pem`` → ``NAME.pub``: the public half sits next to the private one."""
    return private.with_suffix(".pub")


def dev_key_path() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(config) / "retrain" / "dev-key.pem"


def generate_key_pair(private: Path, *, force: bool = False) -> KeyPairPaths:
    """Write a new ECDSA P-256 key pair: ``private`` (PKCS#8 PEM, mode 0600) and ``.pub``."""
    from securesystemslib.signer import CryptoSigner

    public = public_key_path_for(private)
    for path in (private, public):
        if path.exists() and not force:
            raise KeyFileError(
                "key file exists", where=str(path), hint="pass --force to replace it"
            )
    private.parent.mkdir(parents=True, exist_ok=True)
    signer = CryptoSigner.generate_ecdsa()
    fd = os.open(f"{private}.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(signer.private_bytes)
    os.replace(f"{private}.tmp", private)
    public.write_text(signer.public_key.keyval["public"], encoding="ascii")
    return KeyPairPaths(private=private, public=public, keyid=signer.public_key.keyid)


def ensure_dev_key(private: Path | None = None) -> tuple[KeyPairPaths, bool]:
    """The development key pair, created when missing; returns (paths, created)."""
    private = private or dev_key_path()
    if private.exists():
        signer = load_signer(private)
        public = public_key_path_for(private)
        if not public.exists():
            public.write_text(signer.public_key.keyval["public"], encoding="ascii")
        return KeyPairPaths(private, public, signer.public_key.keyid), False
    return generate_key_pair(private), True


def load_signer(path: Path):  # type: ignore[no-untyped-def]
    """A securesystemslib CryptoSigner for an unencrypted PEM private key (ECDSA P-256)."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyFileError("private key not found", where=str(path)) from None
    except OSError as exc:
        raise KeyFileError("cannot read private key", where=str(path), hint=exc.strerror) from None
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(
            "not an unencrypted PEM private key", where=str(path), hint=str(exc).splitlines()[0]
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        found = getattr(getattr(key, "curve", None), "name", type(key).__name__)
        raise KeyFileError(
            "unsupported key type", where=str(path), expected="ECDSA P-256", found=found
        )
    return CryptoSigner(key)


def load_public_key(pem: str, *, where: str):  # type: ignore[no-untyped-def]
    """An SSlibKey from a PEM public key (ECDSA P-256); its keyid is computed, not trusted."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.signer import SSlibKey

    try:
        key = load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(
            "not a PEM public key", where=where, hint=str(exc).splitlines()[0]
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise KeyFileError("unsupported public key type", where=where, expected="ECDSA P-256")
    return SSlibKey.from_crypto(key)
