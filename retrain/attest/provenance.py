"""SLSA build provenance v1 for a model build, as an in-toto Statement v1.

The statement is deterministic: it has no timestamps, invocation ids or
machine paths, and its JSON is written with sorted keys, so the same build
inputs give the same bytes. It names every output (subject) by sha256 and
every input by digest: the source tree (with its git commit when known) and
each source file, the lock file and the environment installed from it, each
dataset by dataset digest (with its manifest), and the toolchain (Python,
Bazel, platform). Schema: docs/provenance.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from retrain.attest.statement import STATEMENT_V1, ResourceDescriptor, Statement
from retrain.digest import canonical_json, sha256_bytes
from retrain.errors import InputError

__all__ = [
    "BUILDER_ID",
    "BUILD_TYPE",
    "SLSA_PROVENANCE_V1",
    "STATEMENT_V1",
    "BuildProvenance",
    "ResourceDescriptor",
    "digest_of_description",
]

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://retrain.dev/buildtypes/bazel-model/v1"
BUILDER_ID = "https://retrain.dev/builders/bazel-local/v1"


def digest_of_description(description: Mapping[str, Any]) -> str:
    """sha256 of a description's canonical JSON: a digest for things that are not files."""
    return sha256_bytes(canonical_json(description))


@dataclass(frozen=True)
class BuildProvenance:
    """What a build produced (subjects) and everything it was built from."""

    subjects: tuple[ResourceDescriptor, ...]
    external_parameters: Mapping[str, Any]
    internal_parameters: Mapping[str, Any]
    resolved_dependencies: tuple[ResourceDescriptor, ...]
    builder_version: Mapping[str, str] = field(default_factory=dict)

    def to_statement(self) -> dict[str, Any]:
        return {
            "_type": STATEMENT_V1,
            "subject": [s.to_dict() for s in sorted(self.subjects, key=lambda s: s.name)],
            "predicateType": SLSA_PROVENANCE_V1,
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": dict(self.external_parameters),
                    "internalParameters": dict(self.internal_parameters),
                    "resolvedDependencies": [d.to_dict() for d in self.resolved_dependencies],
                },
                "runDetails": {
                    "builder": {"id": BUILDER_ID, "version": dict(self.builder_version)},
                    "metadata": {},
                },
            },
        }

    @classmethod
    def from_statement(cls, raw: object, *, where: str) -> BuildProvenance:
        if not isinstance(raw, dict) or raw.get("_type") != STATEMENT_V1:
            raise InputError(
                "not an in-toto Statement v1",
                where=where,
                expected=STATEMENT_V1,
                found=raw.get("_type") if isinstance(raw, dict) else type(raw).__name__,
            )
        if raw.get("predicateType") != SLSA_PROVENANCE_V1:
            raise InputError(
                "not SLSA provenance",
                where=where,
                expected=SLSA_PROVENANCE_V1,
                found=raw.get("predicateType"),
            )
        try:
            bd = raw["predicate"]["buildDefinition"]
            if bd["buildType"] != BUILD_TYPE:
                raise InputError(
                    "unknown buildType", where=where, expected=BUILD_TYPE, found=bd["buildType"]
                )
            subjects = tuple(
                ResourceDescriptor.from_dict(s, where=f"{where}: subject") for s in raw["subject"]
            )
            deps = tuple(
                ResourceDescriptor.from_dict(d, where=f"{where}: resolvedDependencies")
                for d in bd["resolvedDependencies"]
            )
            builder = raw["predicate"]["runDetails"]["builder"]
            objects = {
                "buildDefinition.externalParameters": bd["externalParameters"],
                "buildDefinition.internalParameters": bd.get("internalParameters", {}),
                "runDetails.builder": builder,
                "runDetails.builder.version": builder.get("version", {})
                if isinstance(builder, dict)
                else {},
            }
            for ctx, value in objects.items():
                if not isinstance(value, dict):
                    raise InputError(
                        f"provenance {ctx}",
                        where=where,
                        expected="an object",
                        found=type(value).__name__,
                    )
            return cls(
                subjects=subjects,
                external_parameters=objects["buildDefinition.externalParameters"],
                internal_parameters=objects["buildDefinition.internalParameters"],
                resolved_dependencies=deps,
                builder_version=objects["runDetails.builder.version"],
            )
        except (KeyError, TypeError) as exc:
            raise InputError(
                "provenance statement is incomplete", where=where, hint=f"missing {exc}"
            ) from None

    @classmethod
    def from_statement_object(cls, statement: Statement, *, where: str) -> BuildProvenance:
        return cls.from_statement(statement.to_dict(), where=where)

    def dependency(self, name: str) -> ResourceDescriptor | None:
        return next((d for d in self.resolved_dependencies if d.name == name), None)

    def subject(self, name: str) -> ResourceDescriptor | None:
        return next((s for s in self.subjects if s.name == name), None)
