"""Sigstore keyless signing of a model file, only when asked for.

Keyless signing binds the signature to an OIDC identity instead of a key:
model-signing asks Fulcio (Sigstore's certificate authority) for a
short-lived certificate for that identity and logs the signature in Rekor
(the transparency log). It needs network access to fulcio.sigstore.dev,
rekor.sigstore.dev and an OIDC provider (a browser flow, or an ambient
token in CI such as GitHub Actions'). retrain never does this on its own:
builds sign with keys, offline.
"""

from __future__ import annotations

from pathlib import Path

from retrain.errors import InputError

__all__ = ["sign_keyless"]


def sign_keyless(model: Path, bundle: Path) -> None:
    from model_signing import signing

    try:
        signing.Config().use_sigstore_signer().sign(model, bundle)
    except Exception as exc:  # network, OIDC and TUF failures come as many types
        raise InputError(
            "Sigstore keyless signing failed",
            where=str(model),
            hint=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
            "keyless signing needs network access to Sigstore and an OIDC identity",
        ) from None
