"""Each named check of ``retrain.attest.verify``, alone, raising its own error type.

No Bazel: statements, envelopes, keys and policies are built in memory with
the library, and the few files a check reads are written under tmp_path.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner

from retrain.attest.errors import (
    BundleInvalid,
    ChainLinkBroken,
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
    EVALUATION_V1,
    DatasetPredicate,
    EvaluationPredicate,
)
from retrain.attest.provenance import BuildProvenance
from retrain.attest.sign import sign_statement
from retrain.attest.statement import PAYLOAD_TYPE, ResourceDescriptor, Statement
from retrain.attest.verify import (
    CHECKS,
    LinkResult,
    verify_chain_links,
    verify_file_subjects,
    verify_link_present,
    verify_payload_type,
    verify_policy_not_expired,
    verify_predicate,
    verify_signature_threshold,
)
from retrain.digest import sha256_bytes

EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)
MODEL_BYTES = b"model bytes"
METRICS_BYTES = b'{"auc": 0.75}'
DATASET_DIGEST = "sha256:" + "d" * 64


@pytest.fixture(scope="module")
def signers() -> dict[str, Any]:
    return {name: CryptoSigner.generate_ecdsa() for name in ("build", "eval", "rogue")}


@pytest.fixture(scope="module")
def policy(signers: dict[str, Any]) -> TrustPolicy:
    """The build key signs dataset and build, the eval key the evaluation; build needs both."""
    return TrustPolicy.for_keys(
        [(name, signers[name].public_key.keyval["public"]) for name in ("build", "eval")],
        expires=EXPIRES,
        step_keys={"dataset": ["build"], "build": ["build", "eval"], "evaluation": ["eval"]},
        thresholds={"build": 2},
    )


def evaluation_predicate(**changes: Any) -> EvaluationPredicate:
    fields = {
        "model_name": "model.rtm",
        "model_sha256": sha256_bytes(MODEL_BYTES),
        "dataset_name": "default",
        "dataset_digest": DATASET_DIGEST,
        "holdout_rows": 100,
        "holdout_positives": 20,
        "metrics": {"auc": 0.75},
        "metrics_file": "metrics.json",
        "metrics_sha256": sha256_bytes(METRICS_BYTES),
    }
    return EvaluationPredicate(**(fields | changes))


def evaluation_statement(**changes: Any) -> Statement:
    predicate = evaluation_predicate(**changes)
    return Statement(
        subjects=(ResourceDescriptor("model.rtm", {"sha256": predicate.model_sha256}),),
        predicate_type=EVALUATION_V1,
        predicate=predicate.to_dict(),
    )


def dataset_predicate(digest: str = DATASET_DIGEST) -> DatasetPredicate:
    return DatasetPredicate(
        name="default",
        dataset_digest=digest,
        manifest_uri="data_manifests/default.json",
        manifest_sha256="e" * 64,
        rows=100,
        files=1,
        bytes=1000,
        schema_fingerprint="sha256:" + "f" * 64,
        root="data/default",
        checks=("sha256",),
    )


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
        ),
    )


def chain(
    dataset: DatasetPredicate | None = None,
    build: BuildProvenance | None = None,
    evaluation: EvaluationPredicate | None = None,
) -> dict[str, LinkResult]:
    return {
        "dataset": LinkResult("dataset", predicate=dataset or dataset_predicate()),
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


def test_signature_threshold_refuses_a_signature_over_other_bytes(
    signers: dict[str, Any], policy: TrustPolicy
) -> None:
    signed = sign_statement(evaluation_statement().to_json_bytes(), [signers["eval"]])
    edited = evaluation_statement(metrics={"auc": 0.99}).to_json_bytes()

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

    assert (caught.value.expected, caught.value.found) == (EVALUATION_V1, DATASET_V1)


def test_predicate_raises_predicate_invalid_for_a_predicate_that_does_not_validate(
    policy: TrustPolicy,
) -> None:
    raw = evaluation_predicate().to_dict()
    del raw["metricsFile"]
    statement = Statement(evaluation_statement().subjects, EVALUATION_V1, raw)

    with pytest.raises(PredicateInvalid) as caught:
        verify_predicate("evaluation", statement, policy.steps["evaluation"], "evaluation")

    assert "lacks 'metricsFile'" in caught.value.what


def test_predicate_raises_predicate_invalid_for_a_metric_too_large_for_a_float(
    policy: TrustPolicy,
) -> None:
    raw = evaluation_predicate().to_dict()
    raw["metrics"] = {"auc": 10**400}
    statement = Statement(evaluation_statement().subjects, EVALUATION_V1, raw)

    with pytest.raises(PredicateInvalid):
        verify_predicate("evaluation", statement, policy.steps["evaluation"], "evaluation")


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


def test_chain_links_raise_chain_link_broken_when_the_evaluation_names_another_dataset() -> None:
    other = "sha256:" + "0" * 64

    with pytest.raises(ChainLinkBroken) as caught:
        verify_chain_links(chain(evaluation=evaluation_predicate(dataset_digest=other)))

    assert (caught.value.expected, caught.value.found) == (DATASET_DIGEST, other)
