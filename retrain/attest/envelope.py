"""DSSE envelopes on disk: ``*.intoto.jsonl``, one envelope a line.

Envelopes are securesystemslib's ``dsse.Envelope``; this module only reads
and writes them, refusing anything that is not a well-formed envelope with
one clear line naming the file and line.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any

from retrain._internal.fsio import atomic_write_bytes, loads_strict, read_regular_bytes
from retrain.errors import EnvelopeError, InputError

__all__ = ["read_envelopes", "read_link_envelope", "serialize_envelopes", "write_envelopes"]

# An evaluation link is some tens of kB; a limit keeps a hostile file from
# filling memory before it is refused.
MAX_ATTESTATION_BYTES = 64 << 20


def _envelope_from_dict(raw: object, *, where: str) -> Any:
    from securesystemslib.dsse import Envelope

    if not isinstance(raw, dict) or set(raw) != {"payload", "payloadType", "signatures"}:
        raise EnvelopeError(
            "not a DSSE envelope", where=where, expected="{payload, payloadType, signatures}"
        )
    if not isinstance(raw["payload"], str) or not isinstance(raw["payloadType"], str):
        raise EnvelopeError("DSSE payload and payloadType must be strings", where=where)
    try:
        base64.b64decode(raw["payload"], validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("DSSE payload is not base64", where=where) from None
    sigs = raw["signatures"]
    if not isinstance(sigs, list) or not all(
        isinstance(s, dict) and isinstance(s.get("keyid"), str) and isinstance(s.get("sig"), str)
        for s in sigs
    ):
        raise EnvelopeError("DSSE signatures must be a list of {keyid, sig}", where=where)
    try:
        return Envelope.from_dict(raw)
    except Exception as exc:  # securesystemslib raises several types for bad input
        raise EnvelopeError(
            "not a DSSE envelope", where=where, hint=str(exc).splitlines()[0]
        ) from None


def read_envelopes(path: str | os.PathLike[str]) -> list[Any]:
    """Every envelope in a ``.intoto.jsonl`` file; at least one."""
    where = str(path)
    try:
        data = read_regular_bytes(path, limit=MAX_ATTESTATION_BYTES, what="attestation file")
    except InputError as exc:
        raise EnvelopeError(exc.what, where=where, expected=exc.expected, found=exc.found) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvelopeError("attestation file is not UTF-8 text", where=where) from None
    envelopes = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = loads_strict(line)
        except (ValueError, RecursionError) as exc:
            # Besides malformed JSON, json.loads refuses over-long integers
            # (ValueError) and over-deep nesting (RecursionError): all unusable.
            problem = (
                f"{exc.msg} at column {exc.colno}"
                if isinstance(exc, json.JSONDecodeError)
                else str(exc).split(":")[0]
            )
            raise EnvelopeError(
                f"line {lineno} is not JSON",
                where=where,
                expected="one DSSE envelope (a JSON object) per line",
                found=problem,
            ) from None
        envelopes.append(_envelope_from_dict(raw, where=f"{where}:{lineno}"))
    if not envelopes:
        raise EnvelopeError(
            "attestation file holds no envelope",
            where=where,
            expected="one DSSE envelope per line",
            found="an empty file",
        )
    return envelopes


def serialize_envelopes(envelopes: list[Any]) -> bytes:
    lines = [json.dumps(e.to_dict(), sort_keys=True, separators=(",", ":")) for e in envelopes]
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_envelopes(path: str | os.PathLike[str], envelopes: list[Any]) -> None:
    atomic_write_bytes(path, serialize_envelopes(envelopes))


def read_link_envelope(path: str | os.PathLike[str]) -> Any:
    """A link's envelope; several lines signing the same payload merge their signatures."""
    from securesystemslib.dsse import Envelope

    envelopes = read_envelopes(path)
    first = envelopes[0]
    signatures = dict(first.signatures)
    for lineno, other in enumerate(envelopes[1:], start=2):
        if other.payload != first.payload or other.payload_type != first.payload_type:
            raise EnvelopeError(
                "envelopes in one link file sign different payloads",
                where=str(path),
                expected="every envelope signing the payload of the first",
                found=f"envelope {lineno} signing another",
            )
        for keyid, sig in other.signatures.items():
            signatures.setdefault(keyid, sig)
    return Envelope(payload=first.payload, payload_type=first.payload_type, signatures=signatures)
