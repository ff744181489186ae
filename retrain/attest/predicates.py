"""retrain's own predicate types: the dataset link and the evaluation link.

Both are versioned URIs under https://retrain.dev/attestations/ and are
documented, with a JSON Schema each, in docs/attestations.md. Each class
validates strictly on the way in (unknown keys, wrong types, malformed
digests are refused), so a verifier never reasons about half-formed data.

* dataset/v1: a dataset snapshot passed its manifest checks. Subject: the
  dataset digest (``dataset/<name>``) and the manifest file.
* evaluation/v2: a model validated on a pinned holdout: metrics with
  bootstrap intervals, per-slice metrics, the champion comparison and every
  gate verdict. Subject: the model file; it names the holdout and training
  dataset digests, the metrics file's sha256 and the champion's digest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from retrain.errors import InputError

__all__ = ["DATASET_V1", "EVALUATION_V2", "DatasetPredicate", "EvaluationPredicate"]

DATASET_V1 = "https://retrain.dev/attestations/dataset/v1"
EVALUATION_V2 = "https://retrain.dev/attestations/evaluation/v2"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _require(
    raw: Mapping[str, Any], keys: set[str], optional: set[str], where: str, ctx: str
) -> None:
    missing = sorted(keys - set(raw))
    if missing:
        raise InputError(f"{ctx} lacks {missing[0]!r}", where=where)
    unknown = sorted(set(raw) - keys - optional)
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r} in {ctx}", where=where)


def _obj(value: object, where: str, ctx: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{ctx} must be an object", where=where, found=type(value).__name__)
    return value


def _int(value: object, where: str, ctx: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{ctx} must be a non-negative integer", where=where, found=repr(value))
    return value


def _str(value: object, where: str, ctx: str, pattern: re.Pattern[str] | None = None) -> str:
    if (
        not isinstance(value, str)
        or not value
        or (pattern is not None and not pattern.fullmatch(value))
    ):
        expected = (
            f"a string matching {pattern.pattern}" if pattern is not None else "a non-empty string"
        )
        raise InputError(f"{ctx}", where=where, expected=expected, found=repr(value))
    return value


def _relative(value: object, where: str, ctx: str) -> str:
    """A repository-relative, normalized POSIX path: the verifier will read it."""
    from retrain.paths import validate_relative_path

    text = _str(value, where, ctx)
    try:
        return validate_relative_path(text, where=where)
    except InputError as exc:
        raise InputError(
            f"{ctx}: {exc.what}", where=where, expected="a relative path inside the repository"
        ) from None


def _file_name(value: object, where: str, ctx: str) -> str:
    text = _str(value, where, ctx)
    if "/" in text or "\\" in text or text in (".", ".."):
        raise InputError(ctx, where=where, expected="a plain file name", found=repr(text))
    return text


def _quality(raw: object, where: str) -> dict[str, Any]:
    """The dataset link's quality section: profile, spec, checks, and their verdict."""
    q = _obj(raw, where, "quality")
    _require(q, {"profile", "spec", "checks", "passed"}, set(), where, "quality")
    _obj(q["profile"], where, "quality.profile")
    if q["spec"] is not None:
        spec = _obj(q["spec"], where, "quality.spec")
        _require(spec, {"path", "sha256"}, set(), where, "quality.spec")
        _relative(spec["path"], where, "quality.spec.path")
        _str(spec["sha256"], where, "quality.spec.sha256", _SHA256)
    checks = q["checks"]
    if not isinstance(checks, list):
        raise InputError("quality.checks must be a list", where=where, found=type(checks).__name__)
    for i, check in enumerate(checks):
        c = _obj(check, where, f"quality.checks[{i}]")
        _require(
            c,
            {"check", "column", "passed", "measured", "threshold", "detail"},
            set(),
            where,
            f"quality.checks[{i}]",
        )
        _str(c["check"], where, f"quality.checks[{i}].check")
        if not isinstance(c["passed"], bool):
            raise InputError(
                f"quality.checks[{i}].passed",
                where=where,
                expected="true or false",
                found=repr(c["passed"]),
            )
    if not isinstance(q["passed"], bool) or q["passed"] != all(c["passed"] for c in checks):
        raise InputError(
            "quality.passed contradicts its checks",
            where=where,
            expected=all(c["passed"] for c in checks),
            found=repr(q["passed"]),
        )
    return q


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


@dataclass(frozen=True)
class DatasetPredicate:
    """A dataset snapshot that passed its manifest checks, and its quality profile."""

    name: str
    dataset_digest: str
    manifest_uri: str
    manifest_sha256: str
    rows: int
    files: int
    bytes: int
    schema_fingerprint: str
    root: str | None
    checks: tuple[str, ...]
    quality: Mapping[str, Any] = field(default_factory=dict)
    verifier: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": {
                "name": self.name,
                "digest": self.dataset_digest,
                "rows": self.rows,
                "files": self.files,
                "bytes": self.bytes,
                "schemaFingerprint": self.schema_fingerprint,
            },
            "manifest": {"uri": self.manifest_uri, "sha256": self.manifest_sha256},
            "location": {"root": self.root} if self.root is not None else {"store": True},
            "verification": {
                "result": "passed",
                "checks": list(self.checks),
                "verifier": dict(self.verifier),
            },
            "quality": dict(self.quality),
        }

    @classmethod
    def from_dict(cls, raw: object, *, where: str) -> DatasetPredicate:
        p = _obj(raw, where, "dataset predicate")
        _require(
            p,
            {"dataset", "manifest", "location", "verification", "quality"},
            set(),
            where,
            "dataset predicate",
        )
        ds = _obj(p["dataset"], where, "dataset")
        _require(
            ds,
            {"name", "digest", "rows", "files", "bytes", "schemaFingerprint"},
            set(),
            where,
            "dataset",
        )
        man = _obj(p["manifest"], where, "manifest")
        _require(man, {"uri", "sha256"}, set(), where, "manifest")
        loc = _obj(p["location"], where, "location")
        if set(loc) not in ({"root"}, {"store"}):
            raise InputError("location must be {root} or {store}", where=where, found=sorted(loc))
        root = loc.get("root")
        if root is not None and root != "":
            _relative(root, where, "location.root")
        elif root is None and loc.get("store") is not True:
            raise InputError(
                "location.store", where=where, expected="true", found=repr(loc.get("store"))
            )
        ver = _obj(p["verification"], where, "verification")
        _require(ver, {"result", "checks", "verifier"}, set(), where, "verification")
        if ver["result"] != "passed":
            raise InputError(
                "verification.result", where=where, expected="'passed'", found=repr(ver["result"])
            )
        checks = ver["checks"]
        if not isinstance(checks, list) or not all(isinstance(c, str) for c in checks):
            raise InputError("verification.checks must be a list of strings", where=where)
        return cls(
            name=_str(ds["name"], where, "dataset.name"),
            dataset_digest=_str(ds["digest"], where, "dataset.digest", _DIGEST),
            manifest_uri=_relative(man["uri"], where, "manifest.uri"),
            manifest_sha256=_str(man["sha256"], where, "manifest.sha256", _SHA256),
            rows=_int(ds["rows"], where, "dataset.rows"),
            files=_int(ds["files"], where, "dataset.files"),
            bytes=_int(ds["bytes"], where, "dataset.bytes"),
            schema_fingerprint=_str(
                ds["schemaFingerprint"], where, "dataset.schemaFingerprint", _DIGEST
            ),
            root=root,
            checks=tuple(checks),
            quality=_quality(p["quality"], where),
            verifier=_obj(ver["verifier"], where, "verification.verifier"),
        )


@dataclass(frozen=True)
class EvaluationPredicate:
    """A model validated on a pinned holdout: metrics with intervals, champion, gate verdicts.

    The top level carries what a verifier reasons about (the model, the
    holdout and training datasets by digest, the metrics file, the champion,
    whether the gates passed and which failed); ``results`` carries the
    measurements themselves, as the evaluation wrote them.
    """

    model_name: str
    model_sha256: str
    dataset_name: str
    dataset_digest: str
    training_dataset_name: str
    training_dataset_digest: str
    metrics_file: str
    metrics_sha256: str
    champion_sha256: str | None
    gates_passed: bool
    failed_gates: tuple[str, ...]
    results: Mapping[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        """Point value of every metric (the intervals are in ``results``)."""
        return {k: float(v["value"]) for k, v in (self.results.get("metrics") or {}).items()}

    @property
    def holdout_rows(self) -> int:
        return int((self.results.get("holdout") or {}).get("rows", 0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": {"name": self.model_name, "sha256": self.model_sha256},
            "dataset": {"name": self.dataset_name, "digest": self.dataset_digest},
            "trainingDataset": {
                "name": self.training_dataset_name,
                "digest": self.training_dataset_digest,
            },
            "metricsFile": {"name": self.metrics_file, "sha256": self.metrics_sha256},
            "champion": None if self.champion_sha256 is None else {"sha256": self.champion_sha256},
            "gates": {"passed": self.gates_passed, "failed": list(self.failed_gates)},
            "results": dict(self.results),
        }

    @classmethod
    def from_dict(cls, raw: object, *, where: str) -> EvaluationPredicate:
        p = _obj(raw, where, "evaluation predicate")
        _require(
            p,
            {"model", "dataset", "trainingDataset", "metricsFile", "champion", "gates", "results"},
            set(),
            where,
            "evaluation predicate",
        )
        model = _obj(p["model"], where, "model")
        _require(model, {"name", "sha256"}, set(), where, "model")
        ds = _obj(p["dataset"], where, "dataset")
        _require(ds, {"name", "digest"}, set(), where, "dataset")
        tds = _obj(p["trainingDataset"], where, "trainingDataset")
        _require(tds, {"name", "digest"}, set(), where, "trainingDataset")
        mf = _obj(p["metricsFile"], where, "metricsFile")
        _require(mf, {"name", "sha256"}, set(), where, "metricsFile")
        champion = p["champion"]
        if champion is not None:
            champion = _obj(champion, where, "champion")
            _require(champion, {"sha256"}, set(), where, "champion")
        gates = _obj(p["gates"], where, "gates")
        _require(gates, {"passed", "failed"}, set(), where, "gates")
        if not isinstance(gates["passed"], bool):
            raise InputError(
                "gates.passed must be true or false", where=where, found=repr(gates["passed"])
            )
        failed = gates["failed"]
        if not isinstance(failed, list) or not all(isinstance(f, str) for f in failed):
            raise InputError("gates.failed must be a list of gate names", where=where)
        if gates["passed"] == bool(failed):
            raise InputError(
                "gates.passed contradicts gates.failed",
                where=where,
                found=f"passed={gates['passed']}, {len(failed)} failed",
            )
        results = _obj(p["results"], where, "results")
        metrics = _obj(results.get("metrics"), where, "results.metrics")
        for key, value in metrics.items():
            estimate = _obj(value, where, f"results.metrics.{key}")
            point = estimate.get("value")
            if isinstance(point, bool) or not isinstance(point, (int, float)) or not _finite(point):
                raise InputError(
                    f"metric {key!r}", where=where, expected="a finite number", found=repr(point)
                )
        result_gates = _obj(results.get("gates"), where, "results.gates")
        verdicts = result_gates.get("verdicts")
        if not isinstance(verdicts, list) or not all(isinstance(v, dict) for v in verdicts):
            raise InputError("results.gates.verdicts must be a list of objects", where=where)
        recorded = sorted(
            f"{v.get('name')}[{v.get('slice')}]" if v.get("slice") else str(v.get("name"))
            for v in verdicts
            if isinstance(v, dict) and v.get("status") == "failed"
        )
        if recorded != sorted(failed):
            raise InputError(
                "gates.failed does not list the failed verdicts",
                where=where,
                expected=recorded,
                found=sorted(failed),
            )
        if result_gates.get("passed") != gates["passed"]:
            raise InputError(
                "results.gates.passed contradicts gates.passed",
                where=where,
                expected=gates["passed"],
                found=result_gates.get("passed"),
            )
        return cls(
            model_name=_file_name(model["name"], where, "model.name"),
            model_sha256=_str(model["sha256"], where, "model.sha256", _SHA256),
            dataset_name=_str(ds["name"], where, "dataset.name"),
            dataset_digest=_str(ds["digest"], where, "dataset.digest", _DIGEST),
            training_dataset_name=_str(tds["name"], where, "trainingDataset.name"),
            training_dataset_digest=_str(tds["digest"], where, "trainingDataset.digest", _DIGEST),
            metrics_file=_file_name(mf["name"], where, "metricsFile.name"),
            metrics_sha256=_str(mf["sha256"], where, "metricsFile.sha256", _SHA256),
            champion_sha256=None
            if champion is None
            else _str(champion["sha256"], where, "champion.sha256", _SHA256),
            gates_passed=gates["passed"],
            failed_gates=tuple(failed),
            results=results,
        )
