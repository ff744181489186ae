"""Each named check of ``retrain.attest.verify``, alone, raising its own error type.

No Bazel: statements, envelopes, keys and policies are built in memory with
the library, and the few files a check reads are written under tmp_path. The
last section runs ``verify_model`` on one signed link, for what only the row
decides: which checks a link's signature gates, and the evaluation's subject.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner

from retrain.attest.envelope import write_envelopes
from retrain.attest.errors import (
    BundleInvalid,
    ChainLinkBroken,
    GatesFailed,
    LinkCheckFailed,
    LinkMissing,
    PayloadTypeInvalid,
    PolicyExpired,
    PredicateInvalid,
    SignatureThresholdNotMet,
    SubjectDigestMismatch,
)
from retrain.attest.policy import StepRule, TrustPolicy
from retrain.attest.predicates import (
    DATASET_V1,
    EVALUATION_V2,
    DatasetPredicate,
    EvaluationPredicate,
)
from retrain.attest.provenance import BuildProvenance
from retrain.attest.sign import LINK_FILES, sign_statement
from retrain.attest.statement import PAYLOAD_TYPE, ResourceDescriptor, Statement
from retrain.attest.verify import (
    CHECKS,
    LinkResult,
    VerificationReport,
    verify_chain_links,
    verify_file_subjects,
    verify_gates_passed,
    verify_link_present,
    verify_model,
    verify_payload_type,
    verify_policy_not_expired,
    verify_predicate,
    verify_signature_threshold,
    verify_subject_set,
)
from retrain.digest import sha256_bytes

EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)
MODEL_BYTES = b"model bytes"
METRICS_BYTES = b'{"auc": 0.75}'
DATASET_DIGEST = "sha256:" + "d" * 64
HOLDOUT_DIGEST = "sha256:" + "b" * 64


@pytest.fixture(scope="module")
def signers() -> dict[str, Any]:
    return {name: CryptoSigner.generate_ecdsa() for name in ("build", "eval", "rogue")}


@pytest.fixture(scope="module")
def policy(signers: dict[str, Any]) -> TrustPolicy:
    """The build key signs dataset and build, the eval key the evaluation; build needs both.

    The holdout step is not named in ``step_keys``, so every key may sign it.
    """
    return TrustPolicy.for_keys(
        [(name, signers[name].public_key.keyval["public"]) for name in ("build", "eval")],
        expires=EXPIRES,
        step_keys={"dataset": ["build"], "build": ["build", "eval"], "evaluation": ["eval"]},
        thresholds={"build": 2},
    )


def verdict(name: str, status: str = "passed", slice_: str | None = None) -> dict[str, Any]:
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


def results(*verdicts: dict[str, Any], auc: float = 0.75) -> dict[str, Any]:
    """The part of ValidationResult.to_dict() the loader and the verifier read."""
    return {
        "holdout": {"rows": 100, "positives": 20, "leakage": None},
        "metrics": {"auc": {"value": auc, "ci_low": auc - 0.05, "ci_high": auc + 0.05}},
        "gates": {
            "passed": all(v["status"] != "failed" for v in verdicts),
            "champion": False,
            "verdicts": list(verdicts),
        },
    }


def evaluation_predicate(**changes: Any) -> EvaluationPredicate:
    fields = {
        "model_name": "model.rtm",
        "model_sha256": sha256_bytes(MODEL_BYTES),
        "dataset_name": "holdout",
        "dataset_digest": HOLDOUT_DIGEST,
        "training_dataset_name": "default",
        "training_dataset_digest": DATASET_DIGEST,
        "metrics_file": "metrics.json",
        "metrics_sha256": sha256_bytes(METRICS_BYTES),
        "champion_sha256": None,
        "gates_passed": True,
        "failed_gates": (),
        "results": results(verdict("auc-floor")),
    }
    return EvaluationPredicate(**(fields | changes))


def failed_evaluation_predicate() -> EvaluationPredicate:
    """Gates that failed, recorded consistently: the predicate validates, the gates check fails."""
    return evaluation_predicate(
        gates_passed=False,
        failed_gates=("auc-floor", "auc-floor-per-region[region=north]"),
        results=results(
            verdict("auc-floor", "failed"),
            verdict("auc-floor-per-region", "failed", "region=north"),
            verdict("auc-floor-per-region", "passed", "region=south"),
        ),
    )


def evaluation_statement(**changes: Any) -> Statement:
    predicate = evaluation_predicate(**changes)
    return Statement(
        subjects=(ResourceDescriptor("model.rtm", {"sha256": predicate.model_sha256}),),
        predicate_type=EVALUATION_V2,
        predicate=predicate.to_dict(),
    )


def quality(*checks: dict[str, Any], passed: bool | None = None) -> dict[str, Any]:
    return {
        "profile": {"rows": 100, "columns": []},
        "spec": {"path": "data_manifests/default.quality.toml", "sha256": "a" * 64},
        "checks": list(checks),
        "passed": all(c["passed"] for c in checks) if passed is None else passed,
    }


def quality_check(check: str, column: str | None, passed: bool = True) -> dict[str, Any]:
    return {
        "check": check,
        "column": column,
        "passed": passed,
        "measured": 3,
        "threshold": "0 values outside [18, 100]",
        "detail": "",
    }


def dataset_predicate(
    digest: str = DATASET_DIGEST, name: str = "default", **changes: Any
) -> DatasetPredicate:
    fields = {
        "name": name,
        "dataset_digest": digest,
        "manifest_uri": f"data_manifests/{name}.json",
        "manifest_sha256": "e" * 64,
        "rows": 100,
        "files": 1,
        "bytes": 1000,
        "schema_fingerprint": "sha256:" + "f" * 64,
        "root": f"data/{name}",
        "checks": ("sha256",),
        "quality": quality(quality_check("range", "age"), quality_check("rows", None)),
    }
    return DatasetPredicate(**(fields | changes))


def build_provenance(
    model: bytes = MODEL_BYTES, dataset_digest: str = DATASET_DIGEST
) -> BuildProvenance:
    return BuildProvenance(
        subjects=(
            ResourceDescriptor("model.rtm", {"sha256": sha256_bytes(model)}),
            ResourceDescriptor("metrics.json", {"sha256": sha256_bytes(METRICS_BYTES)}),
        ),
        external_parameters={"target": "//models:candidate"},
        internal_parameters={},
        resolved_dependencies=(
            ResourceDescriptor(
                "dataset/default", {"sha256": dataset_digest.removeprefix("sha256:")}
            ),
            ResourceDescriptor(
                "dataset/holdout", {"sha256": HOLDOUT_DIGEST.removeprefix("sha256:")}
            ),
        ),
    )


def chain(
    dataset: DatasetPredicate | None = None,
    build: BuildProvenance | None = None,
    evaluation: EvaluationPredicate | None = None,
    holdout: DatasetPredicate | None = None,
) -> dict[str, LinkResult]:
    """The four links, as verify_model passes them to verify_chain_links."""
    return {
        "dataset": LinkResult("dataset", predicate=dataset or dataset_predicate()),
        "holdout": LinkResult(
            "holdout", predicate=holdout or dataset_predicate(HOLDOUT_DIGEST, "holdout")
        ),
        "build": LinkResult("build", predicate=build or build_provenance()),
        "evaluation": LinkResult("evaluation", predicate=evaluation or evaluation_predicate()),
    }


def test_every_check_error_names_its_check_and_fails_with_exit_1() -> None:
    errors = (
        PolicyExpired,
        LinkMissing,
        PayloadTypeInvalid,
        SignatureThresholdNotMet,
        PredicateInvalid,
        SubjectDigestMismatch,
        GatesFailed,
        BundleInvalid,
        ChainLinkBroken,
    )
    assert sorted(error.check for error in errors) == sorted(set(CHECKS) - {"envelope"})
    for error in errors:
        assert issubclass(error, LinkCheckFailed)
        assert error("build", "what").exit_code == 1
        assert error("build", "what", expected="a", found="b").diagnostics() == (
            f"[build] {error.check}: what: expected a, found b"
        )


# ---------------------------------------------------------------------------
# policy-expiry


def test_policy_not_expired_passes_before_the_expiry(policy: TrustPolicy) -> None:
    verify_policy_not_expired(policy, datetime(2029, 12, 31, 23, 59, 59, tzinfo=UTC))


def test_policy_not_expired_raises_policy_expired_at_the_expiry(policy: TrustPolicy) -> None:
    with pytest.raises(PolicyExpired) as caught:
        verify_policy_not_expired(policy, EXPIRES)

    assert caught.value.expected == "a time before 2030-01-01T00:00:00Z"
    assert caught.value.found == "2030-01-01T00:00:00Z"


# ---------------------------------------------------------------------------
# link-present


def test_link_present_raises_link_missing_for_no_file(tmp_path: Path) -> None:
    with pytest.raises(LinkMissing) as caught:
        verify_link_present("build", tmp_path / "provenance.intoto.jsonl")

    assert caught.value.link == "build" and caught.value.found == "no file"


def test_link_present_raises_link_missing_for_a_directory(tmp_path: Path) -> None:
    (tmp_path / "provenance.intoto.jsonl").mkdir()

    with pytest.raises(LinkMissing):
        verify_link_present("build", tmp_path / "provenance.intoto.jsonl")


def test_link_present_raises_link_missing_for_a_fifo_without_opening_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "provenance.intoto.jsonl")

    with pytest.raises(LinkMissing) as caught:
        verify_link_present("build", tmp_path / "provenance.intoto.jsonl")

    assert caught.value.what == "attestation is not a regular file"
    assert (caught.value.expected, caught.value.found) == ("a regular file", "a FIFO")


# ---------------------------------------------------------------------------
# payload-type


def test_payload_type_passes_the_in_toto_type() -> None:
    verify_payload_type("build", Envelope(b"{}", PAYLOAD_TYPE, {}))


def test_payload_type_raises_payload_type_invalid_for_another_type() -> None:
    with pytest.raises(PayloadTypeInvalid) as caught:
        verify_payload_type("build", Envelope(b"{}", "application/json", {}))

    assert (caught.value.expected, caught.value.found) == (PAYLOAD_TYPE, "application/json")


# ---------------------------------------------------------------------------
# signature-threshold


def test_signature_threshold_returns_the_allowed_signers(
    signers: dict[str, Any], policy: TrustPolicy
) -> None:
    envelope = sign_statement(evaluation_statement().to_json_bytes(), [signers["eval"]])

    labels = verify_signature_threshold("evaluation", envelope, policy.steps["evaluation"], policy)

    assert labels == [policy.key_label(signers["eval"].public_key.keyid)]


def test_signature_threshold_refuses_an_unknown_key(
    signers: dict[str, Any], policy: TrustPolicy
) -> None:
    envelope = sign_statement(evaluation_statement().to_json_bytes(), [signers["rogue"]])

    with pytest.raises(SignatureThresholdNotMet) as caught:
        verify_signature_threshold("evaluation", envelope, policy.steps["evaluation"], policy)

    assert "unknown key" in str(caught.value.found)


def test_signature_threshold_refuses_a_key_the_step_does_not_allow(
    signers: dict[str, Any], policy: TrustPolicy
) -> None:
    envelope = sign_statement(evaluation_statement().to_json_bytes(), [signers["build"]])

    with pytest.raises(SignatureThresholdNotMet) as caught:
        verify_signature_threshold("evaluation", envelope, policy.steps["evaluation"], policy)

    assert "does not allow for step evaluation" in str(caught.value.found)


def test_signature_threshold_lets_every_key_sign_a_step_the_policy_does_not_name(
    signers: dict[str, Any], policy: TrustPolicy
) -> None:
    envelope = sign_statement(b"{}", [signers["eval"]])

    labels = verify_signature_threshold("holdout", envelope, policy.steps["holdout"], policy)

    assert labels == [policy.key_label(signers["eval"].public_key.keyid)]


def test_signature_threshold_refuses_a_signature_over_other_bytes(
    signers: dict[str, Any], policy: TrustPolicy
) -> None:
    signed = sign_statement(evaluation_statement().to_json_bytes(), [signers["eval"]])
    edited = evaluation_statement(results=results(verdict("auc-floor"), auc=0.99)).to_json_bytes()

    with pytest.raises(SignatureThresholdNotMet) as caught:
        verify_signature_threshold(
            "evaluation",
            Envelope(edited, PAYLOAD_TYPE, signed.signatures),
            policy.steps["evaluation"],
            policy,
        )

    assert "an invalid signature" in str(caught.value.found)


def test_signature_threshold_refuses_fewer_distinct_keys_than_the_threshold(
    signers: dict[str, Any], policy: TrustPolicy
) -> None:
    envelope = sign_statement(b"{}", [signers["build"]])

    with pytest.raises(SignatureThresholdNotMet) as caught:
        verify_signature_threshold("build", envelope, policy.steps["build"], policy)

    assert caught.value.expected.startswith("2 of [")
    assert caught.value.found == "1"


def test_signature_threshold_counts_distinct_allowed_keys(
    signers: dict[str, Any], policy: TrustPolicy
) -> None:
    envelope = sign_statement(b"{}", [signers["build"], signers["eval"]])

    labels = verify_signature_threshold("build", envelope, policy.steps["build"], policy)

    assert len(labels) == 2


# ---------------------------------------------------------------------------
# predicate-schema


def test_predicate_returns_the_parsed_predicate(policy: TrustPolicy) -> None:
    predicate = verify_predicate(
        "evaluation", evaluation_statement(), policy.steps["evaluation"], "evaluation"
    )

    assert predicate == evaluation_predicate()


def test_predicate_raises_predicate_invalid_for_another_predicate_type(
    policy: TrustPolicy,
) -> None:
    statement = Statement(
        evaluation_statement().subjects, DATASET_V1, dataset_predicate().to_dict()
    )

    with pytest.raises(PredicateInvalid) as caught:
        verify_predicate("evaluation", statement, policy.steps["evaluation"], "evaluation")

    assert (caught.value.expected, caught.value.found) == (EVALUATION_V2, DATASET_V1)


def test_predicate_raises_predicate_invalid_for_a_predicate_that_does_not_validate(
    policy: TrustPolicy,
) -> None:
    raw = evaluation_predicate().to_dict()
    del raw["metricsFile"]
    statement = Statement(evaluation_statement().subjects, EVALUATION_V2, raw)

    with pytest.raises(PredicateInvalid) as caught:
        verify_predicate("evaluation", statement, policy.steps["evaluation"], "evaluation")

    assert "lacks 'metricsFile'" in caught.value.what


def test_predicate_raises_predicate_invalid_for_a_metric_too_large_for_a_float(
    policy: TrustPolicy,
) -> None:
    raw = evaluation_predicate().to_dict()
    raw["results"]["metrics"]["auc"]["value"] = 10**400
    statement = Statement(evaluation_statement().subjects, EVALUATION_V2, raw)

    with pytest.raises(PredicateInvalid):
        verify_predicate("evaluation", statement, policy.steps["evaluation"], "evaluation")


def test_predicate_returns_an_evaluation_whose_gates_failed_when_they_are_recorded_consistently(
    policy: TrustPolicy,
) -> None:
    failed = failed_evaluation_predicate()
    statement = Statement(evaluation_statement().subjects, EVALUATION_V2, failed.to_dict())

    assert verify_predicate("evaluation", statement, policy.steps["evaluation"], "e") == failed


def test_predicate_raises_predicate_invalid_for_gates_passed_over_a_failed_verdict(
    policy: TrustPolicy,
) -> None:
    raw = failed_evaluation_predicate().to_dict()
    raw["gates"] = {"passed": True, "failed": []}
    statement = Statement(evaluation_statement().subjects, EVALUATION_V2, raw)

    with pytest.raises(PredicateInvalid) as caught:
        verify_predicate("evaluation", statement, policy.steps["evaluation"], "evaluation")

    assert caught.value.what == "gates.failed does not list the failed verdicts"
    assert caught.value.found == []


def test_predicate_raises_predicate_invalid_for_gates_passed_with_failed_gates_listed(
    policy: TrustPolicy,
) -> None:
    raw = failed_evaluation_predicate().to_dict()
    raw["gates"]["passed"] = True
    statement = Statement(evaluation_statement().subjects, EVALUATION_V2, raw)

    with pytest.raises(PredicateInvalid) as caught:
        verify_predicate("evaluation", statement, policy.steps["evaluation"], "evaluation")

    assert caught.value.what == "gates.passed contradicts gates.failed"


def test_predicate_raises_predicate_invalid_for_provenance_parameters_not_an_object() -> None:
    raw = build_provenance().to_statement()
    raw["predicate"]["buildDefinition"]["externalParameters"] = ["//models:candidate"]
    statement = Statement.from_dict(raw, where="provenance")
    rule = StepRule("build", raw["predicateType"], (), 1)

    with pytest.raises(PredicateInvalid) as caught:
        verify_predicate("build", statement, rule, "provenance")

    assert caught.value.found == "list"


# ---------------------------------------------------------------------------
# subject-digest


def test_file_subjects_pass_when_the_bytes_match(tmp_path: Path) -> None:
    (tmp_path / "model.rtm").write_bytes(MODEL_BYTES)

    verify_file_subjects("evaluation", evaluation_statement(), tmp_path, ("model.rtm",))


def test_file_subjects_raise_subject_digest_mismatch_for_changed_bytes(tmp_path: Path) -> None:
    (tmp_path / "model.rtm").write_bytes(MODEL_BYTES + b"!")

    with pytest.raises(SubjectDigestMismatch) as caught:
        verify_file_subjects("evaluation", evaluation_statement(), tmp_path, ("model.rtm",))

    assert caught.value.expected == f"sha256 {sha256_bytes(MODEL_BYTES)}"
    assert caught.value.found == f"sha256 {sha256_bytes(MODEL_BYTES + b'!')}"


def test_file_subjects_raise_subject_digest_mismatch_for_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SubjectDigestMismatch) as caught:
        verify_file_subjects("evaluation", evaluation_statement(), tmp_path, ("model.rtm",))

    assert caught.value.found == "no file"


def test_file_subjects_raise_subject_digest_mismatch_for_a_subject_not_attested(
    tmp_path: Path,
) -> None:
    (tmp_path / "metrics.json").write_bytes(METRICS_BYTES)

    with pytest.raises(SubjectDigestMismatch) as caught:
        verify_file_subjects("evaluation", evaluation_statement(), tmp_path, ("metrics.json",))

    assert caught.value.found == "no subject"


def test_subject_set_passes_exactly_the_expected_names() -> None:
    verify_subject_set("evaluation", evaluation_statement(), ("model.rtm",))


def test_subject_set_raises_subject_digest_mismatch_naming_extra_missing_and_twice() -> None:
    model = ResourceDescriptor("model.rtm", {"sha256": "0" * 64})
    statement = dataclasses.replace(evaluation_statement(), subjects=(model, model))

    with pytest.raises(SubjectDigestMismatch) as caught:
        verify_subject_set("evaluation", statement, ("metrics.json",))

    assert caught.value.what.endswith(
        "extra 'model.rtm'; missing 'metrics.json'; duplicate 'model.rtm'"
    )
    assert (caught.value.expected, caught.value.found) == (
        "exactly 'metrics.json'",
        "'model.rtm', 'model.rtm'",
    )


# ---------------------------------------------------------------------------
# chain


def test_chain_links_pass_when_each_link_names_the_previous_subject() -> None:
    verify_chain_links(chain())


def test_chain_links_raise_chain_link_broken_when_the_build_names_another_dataset() -> None:
    with pytest.raises(ChainLinkBroken) as caught:
        verify_chain_links(chain(build=build_provenance(dataset_digest="sha256:" + "0" * 64)))

    assert caught.value.link == "build"


def test_chain_links_raise_chain_link_broken_when_the_evaluation_names_another_model() -> None:
    with pytest.raises(ChainLinkBroken) as caught:
        verify_chain_links(chain(evaluation=evaluation_predicate(model_sha256="0" * 64)))

    assert caught.value.link == "evaluation"
    assert caught.value.found == f"sha256 {'0' * 64}"


def test_chain_links_raise_chain_link_broken_when_the_evaluation_names_other_metrics() -> None:
    with pytest.raises(ChainLinkBroken) as caught:
        verify_chain_links(chain(evaluation=evaluation_predicate(metrics_sha256="0" * 64)))

    assert "metrics.json" in caught.value.what


def test_chain_links_refuse_an_evaluation_naming_another_training_dataset() -> None:
    other = "sha256:" + "0" * 64

    with pytest.raises(ChainLinkBroken) as caught:
        verify_chain_links(chain(evaluation=evaluation_predicate(training_dataset_digest=other)))

    assert caught.value.link == "evaluation"
    assert (caught.value.expected, caught.value.found) == (DATASET_DIGEST, other)


def test_chain_links_raise_chain_link_broken_when_the_evaluation_names_another_holdout() -> None:
    other = "sha256:" + "0" * 64

    with pytest.raises(ChainLinkBroken) as caught:
        verify_chain_links(chain(evaluation=evaluation_predicate(dataset_digest=other)))

    assert caught.value.link == "evaluation"
    assert "holdout other than the attested holdout" in caught.value.what
    assert (caught.value.expected, caught.value.found) == (HOLDOUT_DIGEST, other)


def test_chain_links_refuse_an_evaluation_on_the_training_data_when_a_holdout_is_attested() -> None:
    with pytest.raises(ChainLinkBroken) as caught:
        verify_chain_links(chain(evaluation=evaluation_predicate(dataset_digest=DATASET_DIGEST)))

    assert (caught.value.expected, caught.value.found) == (HOLDOUT_DIGEST, DATASET_DIGEST)


def test_chain_links_without_a_holdout_link_take_the_dataset_link_as_the_holdout() -> None:
    links = chain(evaluation=evaluation_predicate(dataset_digest=DATASET_DIGEST))
    del links["holdout"]

    verify_chain_links(links)


def test_chain_links_without_a_holdout_link_refuse_an_evaluation_on_another_dataset() -> None:
    links = chain()
    del links["holdout"]

    with pytest.raises(ChainLinkBroken) as caught:
        verify_chain_links(links)

    assert "holdout other than the attested dataset" in caught.value.what
    assert (caught.value.expected, caught.value.found) == (DATASET_DIGEST, HOLDOUT_DIGEST)


# ---------------------------------------------------------------------------
# gates


def test_gates_pass_for_an_evaluation_whose_gates_passed() -> None:
    verify_gates_passed("evaluation", evaluation_predicate())


def test_gates_raise_gates_failed_for_an_evaluation_whose_gates_failed_naming_each() -> None:
    with pytest.raises(GatesFailed) as caught:
        verify_gates_passed("evaluation", failed_evaluation_predicate())

    assert caught.value.link == "evaluation" and caught.value.exit_code == 1
    assert caught.value.what == "2 validation gate(s) failed"
    assert caught.value.found == "auc-floor, auc-floor-per-region[region=north]"


def test_gates_pass_for_a_dataset_whose_quality_checks_passed() -> None:
    verify_gates_passed("dataset", dataset_predicate())


def test_gates_pass_for_a_dataset_without_a_quality_spec() -> None:
    no_spec = {"profile": {"rows": 100, "columns": []}, "spec": None, "checks": [], "passed": True}

    verify_gates_passed("dataset", dataset_predicate(quality=no_spec))


@pytest.mark.parametrize("link", ["dataset", "holdout"])
def test_gates_raise_gates_failed_for_a_dataset_whose_quality_failed_naming_the_checks(
    link: str,
) -> None:
    failed = quality(
        quality_check("range", "age", passed=False),
        quality_check("rows", None, passed=False),
        quality_check("schema-type", "age"),
    )

    with pytest.raises(GatesFailed) as caught:
        verify_gates_passed(link, dataset_predicate(name=link, quality=failed))

    assert caught.value.link == link
    assert caught.value.what == f"dataset {link} failed 2 quality check(s)"
    assert caught.value.found == "range(age), rows"


def test_gates_raise_gates_failed_for_a_dataset_whose_quality_says_it_failed() -> None:
    failed = quality(quality_check("range", "age"), passed=False)

    with pytest.raises(GatesFailed) as caught:
        verify_gates_passed("dataset", dataset_predicate(quality=failed))

    assert caught.value.found == "passed: false"


# ---------------------------------------------------------------------------
# verify_model: a link's claims count only once its signature verified


@pytest.fixture
def evaluation_only(signers: dict[str, Any]) -> TrustPolicy:
    return TrustPolicy.for_keys(
        [("eval", signers["eval"].public_key.keyval["public"])],
        expires=EXPIRES,
        steps=("evaluation",),
    )


def write_evaluation_link(model_dir: Path, statement: Statement, signer: Any) -> None:
    envelope = sign_statement(statement.to_json_bytes(), [signer])
    write_envelopes(model_dir / LINK_FILES["evaluation"], [envelope])
    (model_dir / "model.rtm").write_bytes(MODEL_BYTES)


def checks_of(report: VerificationReport, link: str) -> dict[str, str]:
    return {c.check: c.status for c in report.checks if c.link == link}


def test_verify_model_runs_subject_digest_and_gates_on_a_signed_evaluation(
    tmp_path: Path, signers: dict[str, Any], evaluation_only: TrustPolicy
) -> None:
    write_evaluation_link(tmp_path, evaluation_statement(), signers["eval"])

    report = verify_model(tmp_path, evaluation_only, now=EXPIRES - timedelta(days=1))

    assert report.ok
    assert checks_of(report, "evaluation") == {
        "link-present": "passed",
        "envelope": "passed",
        "payload-type": "passed",
        "signature-threshold": "passed",
        "predicate-schema": "passed",
        "subject-digest": "passed",
        "gates": "passed",
    }


def test_verify_model_fails_gates_for_a_signed_evaluation_whose_gates_failed(
    tmp_path: Path, signers: dict[str, Any], evaluation_only: TrustPolicy
) -> None:
    failed = failed_evaluation_predicate()
    statement = Statement(evaluation_statement().subjects, EVALUATION_V2, failed.to_dict())
    write_evaluation_link(tmp_path, statement, signers["eval"])

    report = verify_model(tmp_path, evaluation_only, now=EXPIRES - timedelta(days=1))

    (failure,) = report.failures
    assert (failure.link, failure.check, failure.exit_code) == ("evaluation", "gates", 1)
    assert failure.found == "auc-floor, auc-floor-per-region[region=north]"


def test_verify_model_skips_subject_digest_and_gates_of_an_evaluation_signed_by_another_key(
    tmp_path: Path, signers: dict[str, Any], evaluation_only: TrustPolicy
) -> None:
    failed = failed_evaluation_predicate()
    statement = Statement(evaluation_statement().subjects, EVALUATION_V2, failed.to_dict())
    write_evaluation_link(tmp_path, statement, signers["rogue"])

    report = verify_model(tmp_path, evaluation_only, now=EXPIRES - timedelta(days=1))

    assert [(c.link, c.check) for c in report.failures] == [("evaluation", "signature-threshold")]
    statuses = checks_of(report, "evaluation")
    assert (statuses["subject-digest"], statuses["gates"]) == ("skipped", "skipped")
    assert checks_of(report, "chain") == {"chain": "skipped"}


def test_verify_model_refuses_an_evaluation_whose_subject_is_not_its_predicates_model(
    tmp_path: Path, signers: dict[str, Any], evaluation_only: TrustPolicy
) -> None:
    other = sha256_bytes(b"another model")
    statement = dataclasses.replace(
        evaluation_statement(model_sha256=other),
        subjects=(ResourceDescriptor("model.rtm", {"sha256": sha256_bytes(MODEL_BYTES)}),),
    )
    write_evaluation_link(tmp_path, statement, signers["eval"])

    report = verify_model(tmp_path, evaluation_only, now=EXPIRES - timedelta(days=1))

    (failure,) = report.failures
    assert (failure.link, failure.check) == ("evaluation", "subject-digest")
    assert failure.expected == f"sha256 {other} (predicate)"
    assert failure.found == f"sha256 {sha256_bytes(MODEL_BYTES)} (subject)"
