"""in-toto Statement v1: subjects (what the statement is about) and a typed predicate.

``Statement.from_json_bytes`` validates the envelope-independent shape: the
statement type, a non-empty subject list whose entries each carry at least
one digest and whose names are distinct, a predicate type URI and a
predicate object. What a predicate must contain is checked by its own type
(``retrain.attest.predicates``, ``retrain.attest.provenance``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from retrain._internal.fsio import loads_strict, pretty_json
from retrain.errors import InputError

__all__ = ["PAYLOAD_TYPE", "STATEMENT_V1", "ResourceDescriptor", "Statement"]

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class ResourceDescriptor:
    """An in-toto ResourceDescriptor: a name, digests, and optional uri/annotations."""

    name: str
    digest: Mapping[str, str]
    uri: str | None = None
    annotations: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "digest": dict(sorted(self.digest.items()))}
        if self.uri is not None:
            out["uri"] = self.uri
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @property
    def sha256(self) -> str | None:
        return self.digest.get("sha256")

    @classmethod
    def from_dict(cls, raw: object, *, where: str) -> ResourceDescriptor:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise InputError("resource descriptor must be an object with a 'name'", where=where)
        digest = raw.get("digest", {})
        if not isinstance(digest, dict) or not all(isinstance(v, str) for v in digest.values()):
            raise InputError(f"digest of {raw['name']!r} must map algorithm to hex", where=where)
        if not digest and not raw.get("uri"):
            raise InputError(f"resource {raw['name']!r} has neither digest nor uri", where=where)
        uri = raw.get("uri")
        annotations = raw.get("annotations")
        if uri is not None and not isinstance(uri, str):
            raise InputError(f"uri of {raw['name']!r} must be a string", where=where)
        if annotations is not None and not isinstance(annotations, dict):
            raise InputError(f"annotations of {raw['name']!r} must be an object", where=where)
        return cls(name=raw["name"], digest=digest, uri=uri, annotations=annotations)


def _refuse_repeated_subjects(subjects: tuple[ResourceDescriptor, ...], where: str) -> None:
    """A name is one artifact: a second digest under it would let a reader pick either."""
    seen: set[str] = set()
    for s in subjects:
        if s.name in seen:
            raise InputError(
                f"statement names subject {s.name!r} twice",
                where=where,
                expected="each subject once",
            )
        seen.add(s.name)


@dataclass(frozen=True)
class Statement:
    """An in-toto Statement v1 with its predicate as plain JSON data."""

    subjects: tuple[ResourceDescriptor, ...]
    predicate_type: str
    predicate: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "_type": STATEMENT_V1,
            "subject": [s.to_dict() for s in sorted(self.subjects, key=lambda s: s.name)],
            "predicateType": self.predicate_type,
            "predicate": dict(self.predicate),
        }

    def to_json_bytes(self) -> bytes:
        """Deterministic bytes: these are what a DSSE envelope signs."""
        return pretty_json(self.to_dict())

    def subject(self, name: str) -> ResourceDescriptor | None:
        return next((s for s in self.subjects if s.name == name), None)

    @classmethod
    def from_dict(cls, raw: object, *, where: str) -> Statement:
        if not isinstance(raw, dict):
            raise InputError(
                "statement must be a JSON object", where=where, found=type(raw).__name__
            )
        if raw.get("_type") != STATEMENT_V1:
            raise InputError(
                "not an in-toto Statement v1",
                where=where,
                expected=STATEMENT_V1,
                found=raw.get("_type"),
            )
        subjects = raw.get("subject")
        if not isinstance(subjects, list) or not subjects:
            raise InputError("statement has no subject", where=where)
        parsed = tuple(ResourceDescriptor.from_dict(s, where=f"{where}: subject") for s in subjects)
        _refuse_repeated_subjects(parsed, where)
        for s in parsed:
            if not s.digest:
                raise InputError(f"subject {s.name!r} has no digest", where=where)
            for algo, value in s.digest.items():
                if algo in ("sha256", "sha512") and not _HEX.fullmatch(value):
                    raise InputError(
                        f"subject {s.name!r} {algo} is not hex", where=where, found=value
                    )
        ptype = raw.get("predicateType")
        if not isinstance(ptype, str) or not ptype:
            raise InputError("statement has no predicateType", where=where)
        predicate = raw.get("predicate")
        if not isinstance(predicate, dict):
            raise InputError("statement predicate must be an object", where=where)
        return cls(subjects=parsed, predicate_type=ptype, predicate=predicate)

    @classmethod
    def from_json_bytes(cls, data: bytes, *, where: str) -> Statement:
        try:
            raw = loads_strict(data.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # also over-long numbers, over-deep nesting
            problem = (
                f"{exc.msg} at column {exc.colno}"
                if isinstance(exc, json.JSONDecodeError)
                else str(exc).split(":")[0]
            )
            raise InputError(
                "statement is not JSON",
                where=where,
                expected="an in-toto statement in UTF-8 JSON",
                found=problem,
            ) from None
        return cls.from_dict(raw, where=where)
