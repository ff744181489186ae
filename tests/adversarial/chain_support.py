"""A signed four-link chain built in memory, for attacks that need no Bazel.

``write_chain`` lays out a model directory as a build leaves it (the five
build outputs and one DSSE envelope per link), signed with a key made for the
test. Every statement is built by the library's own types, so a test changes
exactly one thing: a field of a predicate (``predicate_edit``), the subject
list of a link (``subjects``), or the files on disk. Verification runs
in-process against a ``TrustPolicy`` object; no policy file is written.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrain.attest.envelope import write_envelopes
from retrain.attest.policy import TrustPolicy
from retrain.attest.predicates import DATASET_V1, EVALUATION_V2
from retrain.attest.provenance import BuildProvenance
from retrain.attest.sign import LINK_FILES, sign_statement
from retrain.attest.verify import VerificationReport, verify_model
from retrain.digest import sha256_bytes

EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)
NOW = datetime(2029, 6, 1, tzinfo=UTC)
COMMIT = "72f1b240db718b9a3f3d0d861dfa28aeb860b9f0"
DATASET_DIGEST = "sha256:" + "d" * 64
HOLDOUT_DIGEST = "sha256:" + "b" * 64

# The build's outputs (the build link's subjects), as rules/private/model.bzl writes them.
MODEL_FILES: Mapping[str, bytes] = {
    "model.rtm": b"model bytes",
    "train_report.json": b'{"rows": 100}\n',
    "metrics.json": b'{"auc": 0.75}\n',
    "gates.txt": b"PASSED auc-floor\n",
    "report.html": b"<!doctype html><title>report</title>\n",
}

Json = dict[str, Any]
Edit = Callable[[Json], None]


def verdict(name: str, status: str = "passed", slice_: str | None = None) -> Json:
    return {
        "name": name,
        "kind": "value",
        "status": status,
        "metric": "auc",
        "slice": slice_,
        "statistic": "ci_low",
        "measured": 0.7,
        "interval": [0.7, 0.8],
        "threshold": ">= 0.68",
        "message": "",
    }


def quality_check(check: str, column: str | None, passed: bool = True) -> Json:
    return {
        "check": check,
        "column": column,
        "passed": passed,
        "measured": 3,
        "threshold": "0 values outside [18, 100]",
        "detail": "",
    }


def dataset_predicate(name: str, digest: str, manifest_sha256: str = "e" * 64) -> Json:
    checks = [quality_check("rows", None), quality_check("range", "age")]
    return {
        "dataset": {
            "name": name,
            "digest": digest,
            "rows": 100,
            "files": 1,
            "bytes": 1000,
            "schemaFingerprint": "sha256:" + "f" * 64,
        },
        "manifest": {"uri": f"data_manifests/{name}.json", "sha256": manifest_sha256},
        "location": {"root": f"data/{name}"},
        "verification": {
            "result": "passed",
            "checks": ["listed-files", "containment", "size", "sha256", "rows", "schema"],
            "verifier": {"retrain": "0.1.0"},
        },
        "quality": {
            "profile": {"rows": 100, "columns": []},
            "spec": {"path": f"data_manifests/{name}.quality.toml", "sha256": "a" * 64},
            "checks": checks,
            "passed": True,
        },
    }


def evaluation_predicate(files: Mapping[str, bytes] = MODEL_FILES) -> Json:
    verdicts = [verdict("auc-floor"), verdict("auc-floor-per-region", slice_="region=north")]
    return {
        "model": {"name": "model.rtm", "sha256": sha256_bytes(files["model.rtm"])},
        "dataset": {"name": "holdout", "digest": HOLDOUT_DIGEST},
        "trainingDataset": {"name": "default", "digest": DATASET_DIGEST},
        "metricsFile": {"name": "metrics.json", "sha256": sha256_bytes(files["metrics.json"])},
        "champion": None,
        "gates": {"passed": True, "failed": []},
        "results": {
            "holdout": {"rows": 10000, "positives": 1985, "leakage": None},
            "metrics": {
                "auc": {"value": 0.7231, "ci_low": 0.7106, "ci_high": 0.7366},
                "accuracy": {"value": 0.8112, "ci_low": 0.8, "ci_high": 0.82},
            },
            "gates": {"passed": True, "champion": False, "verdicts": verdicts},
        },
    }


def build_statement(
    files: Mapping[str, bytes] = MODEL_FILES, tree_state: str | None = "clean"
) -> Json:
    """SLSA provenance of the build; ``tree_state`` None leaves the annotation out."""
    from retrain.attest.statement import ResourceDescriptor

    annotations: Json = {"files": 61}
    if tree_state is not None:
        annotations["gitTreeState"] = tree_state
    provenance = BuildProvenance(
        subjects=tuple(
            ResourceDescriptor(name, {"sha256": sha256_bytes(data)})
            for name, data in sorted(files.items())
        ),
        external_parameters={"target": "//models:candidate"},
        internal_parameters={},
        resolved_dependencies=(
            ResourceDescriptor(
                "source", {"sha256": "6" * 64, "gitCommit": COMMIT}, annotations=annotations
            ),
            ResourceDescriptor("dataset/default", {"sha256": DATASET_DIGEST[7:]}),
            ResourceDescriptor("dataset/holdout", {"sha256": HOLDOUT_DIGEST[7:]}),
        ),
    )
    return provenance.to_statement()


def statement(predicate_type: str, predicate: Json, subjects: list[tuple[str, str]]) -> Json:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": n, "digest": {"sha256": d}} for n, d in subjects],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def dataset_subjects(predicate: Json) -> list[tuple[str, str]]:
    return [
        (predicate["manifest"]["uri"], predicate["manifest"]["sha256"]),
        (f"dataset/{predicate['dataset']['name']}", predicate["dataset"]["digest"][7:]),
    ]


@dataclass
class Chain:
    """The four statements of a model's chain, as JSON, free to edit before signing."""

    statements: dict[str, Json] = field(default_factory=dict)

    @classmethod
    def pristine(cls, files: Mapping[str, bytes] = MODEL_FILES) -> Chain:
        dataset = dataset_predicate("default", DATASET_DIGEST)
        holdout = dataset_predicate("holdout", HOLDOUT_DIGEST)
        evaluation = evaluation_predicate(files)
        return cls(
            {
                "dataset": statement(DATASET_V1, dataset, dataset_subjects(dataset)),
                "holdout": statement(DATASET_V1, holdout, dataset_subjects(holdout)),
                "build": build_statement(files),
                "evaluation": statement(
                    EVALUATION_V2, evaluation, [("model.rtm", evaluation["model"]["sha256"])]
                ),
            }
        )

    def predicate(self, link: str) -> Json:
        predicate: Json = self.statements[link]["predicate"]
        return predicate

    def edit(self, link: str, change: Edit) -> Chain:
        """A copy whose ``link`` predicate went through ``change``."""
        edited = Chain(copy.deepcopy(self.statements))
        change(edited.predicate(link))
        return edited

    def payload(self, link: str) -> bytes:
        # Not Statement.to_json_bytes: that would refuse (or repair) what the
        # attacks put in; a signer signs whatever bytes it is given.
        return (json.dumps(self.statements[link], indent=2, sort_keys=True) + "\n").encode()


def write_chain(
    model_dir: Path,
    chain: Chain,
    signer: Any,
    *,
    files: Mapping[str, bytes] = MODEL_FILES,
    payloads: Mapping[str, bytes] | None = None,
) -> Path:
    """The model directory: the build's files and one signed envelope per link."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (model_dir / name).write_bytes(data)
    for link in LINK_FILES:
        payload = (payloads or {}).get(link) or chain.payload(link)
        envelope = sign_statement(payload, [signer])
        write_envelopes(model_dir / LINK_FILES[link], [envelope])
    return model_dir


def policy_for(*signers: tuple[str, Any]) -> TrustPolicy:
    """Every named key may sign every step (threshold 1)."""
    return TrustPolicy.for_keys(
        [(name, signer.public_key.keyval["public"]) for name, signer in signers], expires=EXPIRES
    )


def verify(
    model_dir: Path, policy: TrustPolicy, *, repo_root: Path | None = None
) -> VerificationReport:
    """verify_model in a daemon thread: a verifier that blocks (on a FIFO) fails the test."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(verify_model(model_dir, policy, repo_root=repo_root, now=NOW))
        except BaseException as exc:  # handed to the test below, traceback and all
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    if worker.is_alive():
        raise AssertionError(f"verify_model blocked on {model_dir}")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    report: VerificationReport = outcome[0]
    return report


def failed(report: VerificationReport) -> list[tuple[str, str]]:
    return [(c.link, c.check) for c in report.failures]


def failure(report: VerificationReport, link: str, check: str) -> Any:
    return next(c for c in report.failures if (c.link, c.check) == (link, check))
