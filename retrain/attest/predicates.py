"""retrain's own predicate types: the dataset link and the evaluation link.

Both are versioned URIs under https://retrain.dev/attestations/ and are
documented, with a JSON Schema each, in docs/attestations.md. Each class
validates strictly on the way in (unknown keys, wrong types, malformed
digests are refused), so a verifier never reasons about half-formed data:
every field that a check, a message or a summary reads is typed and
range-checked here (counts are int64-sized integers, metric values finite,
dataset names manifest names, verdict names, slices and statuses and every
quality check field of their type), and nothing downstream coerces.

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
# A manifest's dataset name (retrain.manifest): the dataset link's subject is dataset/<name>.
_DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# Row counts, file counts and sizes are int64 in Parquet and Arrow; beyond that
# a number is not a count retrain wrote, only something shaped to break a reader.
_MAX_COUNT = 2**63 - 1
_COUNT_RANGE = "an integer in [0, 2**63 - 1]"
_VERDICT_STATUSES = ("passed", "failed", "skipped")


def _shown(value: object) -> str:
    """A value from a predicate as a message shows it: repr, cut short (it may be huge)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


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


def _count(value: object, where: str, ctx: str) -> int:
    """A count or size: an integer (not a bool) in int64's non-negative range."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        raise InputError(ctx, where=where, expected=_COUNT_RANGE, found=_shown(value))
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
        raise InputError(f"{ctx}", where=where, expected=expected, found=_shown(value))
    return value


def _optional_str(value: object, where: str, ctx: str) -> str | None:
    """A non-empty string or null (a quality check's column, a verdict's slice)."""
    if value is not None and (not isinstance(value, str) or not value):
        raise InputError(
            ctx, where=where, expected="a non-empty string or null", found=_shown(value)
        )
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
    # NUL too: the verifier opens this name in the model directory.
    if "/" in text or "\\" in text or "\0" in text or text in (".", ".."):
        raise InputError(ctx, where=where, expected="a plain file name", found=_shown(text))
    return text


def _measurement(value: object, where: str, ctx: str) -> None:
    """A quality check's measured or threshold value: a number, a string or a list."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number or isinstance(value, (str, list))):
        raise InputError(
            ctx, where=where, expected="a number, a string or a list", found=_shown(value)
        )


def _quality_check(raw: object, where: str, ctx: str) -> dict[str, Any]:
    """One quality verdict; every field is shown in messages and in the report."""
    c = _obj(raw, where, ctx)
    _require(c, {"check", "column", "passed", "measured", "threshold", "detail"}, set(), where, ctx)
    _str(c["check"], where, f"{ctx}.check")
    _optional_str(c["column"], where, f"{ctx}.column")
    if not isinstance(c["passed"], bool):
        raise InputError(
            f"{ctx}.passed", where=where, expected="true or false", found=_shown(c["passed"])
        )
    _measurement(c["measured"], where, f"{ctx}.measured")
    _measurement(c["threshold"], where, f"{ctx}.threshold")
    if not isinstance(c["detail"], str):
        raise InputError(
            f"{ctx}.detail", where=where, expected="a string", found=_shown(c["detail"])
        )
    return c


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
        _quality_check(check, where, f"quality.checks[{i}]")
    if not isinstance(q["passed"], bool) or q["passed"] != all(c["passed"] for c in checks):
        raise InputError(
            "quality.passed contradicts its checks",
            where=where,
            expected=all(c["passed"] for c in checks),
            found=_shown(q["passed"]),
        )
    return q


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _holdout_counts(results: Mapping[str, Any], where: str) -> tuple[int, int]:
    """results.holdout's rows and positives: counts, positives among the rows."""
    holdout = _obj(results.get("holdout"), where, "results.holdout")
    rows = _count(holdout.get("rows"), where, "results.holdout.rows")
    positives = _count(holdout.get("positives"), where, "results.holdout.positives")
    if positives > rows:
        raise InputError(
            "results.holdout.positives",
            where=where,
            expected=f"at most {rows} (the holdout's rows)",
            found=_shown(positives),
        )
    return rows, positives


def _metric_values(results: Mapping[str, Any], where: str) -> dict[str, float]:
    """The point value of every metric in results.metrics: finite numbers."""
    metrics = _obj(results.get("metrics"), where, "results.metrics")
    values = {}
    for key, value in metrics.items():
        estimate = _obj(value, where, f"results.metrics.{key}")
        point = estimate.get("value")
        if isinstance(point, bool) or not isinstance(point, (int, float)) or not _finite(point):
            raise InputError(
                f"metric {key!r}", where=where, expected="a finite number", found=_shown(point)
            )
        values[key] = float(point)
    return values


def _failed_verdicts(result_gates: Mapping[str, Any], where: str) -> list[str]:
    """results.gates.verdicts checked, and each failed one as name or name[slice]."""
    verdicts = result_gates.get("verdicts")
    if not isinstance(verdicts, list) or not all(isinstance(v, dict) for v in verdicts):
        raise InputError("results.gates.verdicts must be a list of objects", where=where)
    failed = []
    for i, verdict in enumerate(verdicts):
        ctx = f"results.gates.verdicts[{i}]"
        name = _str(verdict.get("name"), where, f"{ctx}.name")
        slice_ = _optional_str(verdict.get("slice"), where, f"{ctx}.slice")
        status = verdict.get("status")
        if not isinstance(status, str) or status not in _VERDICT_STATUSES:
            raise InputError(
                f"{ctx}.status",
                where=where,
                expected="passed, failed or skipped",
                found=_shown(status),
            )
        if status == "failed":
            failed.append(f"{name}[{slice_}]" if slice_ is not None else name)
    return failed


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
                "location.store", where=where, expected="true", found=_shown(loc.get("store"))
            )
        ver = _obj(p["verification"], where, "verification")
        _require(ver, {"result", "checks", "verifier"}, set(), where, "verification")
        if ver["result"] != "passed":
            raise InputError(
                "verification.result", where=where, expected="'passed'", found=_shown(ver["result"])
            )
        checks = ver["checks"]
        if not isinstance(checks, list) or not all(isinstance(c, str) for c in checks):
            raise InputError("verification.checks must be a list of strings", where=where)
        return cls(
            name=_str(ds["name"], where, "dataset.name", _DATASET_NAME),
            dataset_digest=_str(ds["digest"], where, "dataset.digest", _DIGEST),
            manifest_uri=_relative(man["uri"], where, "manifest.uri"),
            manifest_sha256=_str(man["sha256"], where, "manifest.sha256", _SHA256),
            rows=_count(ds["rows"], where, "dataset.rows"),
            files=_count(ds["files"], where, "dataset.files"),
            bytes=_count(ds["bytes"], where, "dataset.bytes"),
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

    # Read through the loader's own checks, never coerced: a predicate built
    # by hand that the loader would refuse raises InputError here too.
    @property
    def metrics(self) -> dict[str, float]:
        """Point value of every metric (the intervals are in ``results``)."""
        return _metric_values(self.results, "evaluation predicate")

    @property
    def holdout_rows(self) -> int:
        return _holdout_counts(self.results, "evaluation predicate")[0]

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
                "gates.passed must be true or false", where=where, found=_shown(gates["passed"])
            )
        failed = gates["failed"]
        if not isinstance(failed, list) or not all(isinstance(f, str) and f for f in failed):
            raise InputError("gates.failed must be a list of gate names", where=where)
        if gates["passed"] == bool(failed):
            raise InputError(
                "gates.passed contradicts gates.failed",
                where=where,
                found=f"passed={gates['passed']}, {len(failed)} failed",
            )
        results = _obj(p["results"], where, "results")
        _metric_values(results, where)
        _holdout_counts(results, where)
        result_gates = _obj(results.get("gates"), where, "results.gates")
        if not isinstance(result_gates.get("passed"), bool):
            raise InputError(
                "results.gates.passed",
                where=where,
                expected="true or false",
                found=_shown(result_gates.get("passed")),
            )
        recorded = sorted(_failed_verdicts(result_gates, where))
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
            dataset_name=_str(ds["name"], where, "dataset.name", _DATASET_NAME),
            dataset_digest=_str(ds["digest"], where, "dataset.digest", _DIGEST),
            training_dataset_name=_str(tds["name"], where, "trainingDataset.name", _DATASET_NAME),
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
