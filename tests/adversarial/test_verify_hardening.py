"""Hardening of ``retrain verify`` against inputs shaped to slip past it or crash it.

No Bazel: every chain is built and signed in memory (``chain_support``), the
model directory written under tmp_path, and ``verify_model`` run in-process
against a ``TrustPolicy`` object (in a thread, so a verifier that blocks on a
FIFO fails the test instead of hanging it). Each attack is refused by a named
check, with one line saying what was expected and what was found; none
raises.

| case | attack | refusal (``[link] check: where: what: expected …, found …``) |
|------|--------|---------|
| 4 | signed evaluation: holdout rows a string, a list, 1e309, 10**400, negative, a bool, a fraction, null | [evaluation] predicate-schema: results.holdout.rows: expected an integer in [0, 2**63 - 1] |
| 4 | signed evaluation: more positives than rows | [evaluation] predicate-schema: results.holdout.positives: expected at most N (the holdout's rows) |
| 4 | signed evaluation: a verdict's name, slice or status mistyped | [evaluation] predicate-schema: results.gates.verdicts[i].FIELD: expected a non-empty string (or null) / passed, failed or skipped |
| 4 | signed evaluation: results.gates.passed 1 for true | [evaluation] predicate-schema: results.gates.passed: expected true or false, found 1 |
| 4 | signed evaluation: a dataset name that is not one ("a/b") | [evaluation] predicate-schema: dataset.name: expected a string matching [A-Za-z0-9][A-Za-z0-9_.-]{0,127} |
| 4 | signed evaluation: model.name with a NUL | [evaluation] predicate-schema: model.name: expected a plain file name |
| 4 | signed dataset: a quality check's column, detail, measured or threshold mistyped | [dataset] predicate-schema: quality.checks[i].FIELD: expected … |
| 4 | signed dataset/holdout: a count of 2**63, 10**400 or -1 | [holdout] predicate-schema: dataset.COUNT: expected an integer in [0, 2**63 - 1], found (cut short) |
| 4 | signed dataset: dataset.name "a/b", "../default", "my data" | [dataset] predicate-schema: dataset.name: expected a string matching … |
| 5 | a symlinked directory inside the dataset root | verify_directory: PathEscapeError "symlinked directory in dataset" at the link; [dataset] subject-digest |
| 6 | a second model.rtm subject with another digest | [build] envelope: statement names subject 'model.rtm' twice (exit 2) |
| 6 | an extra subject (build, dataset, holdout, evaluation) | [link] subject-digest: the LINK statement's subjects are not exactly what the step produces: extra 'NAME': expected exactly …, found … |
| 6 | a subject left out (build, dataset, holdout) | [link] subject-digest: … not exactly what the step produces: missing 'NAME' |
| 9 | a trusted keyid recased, padded with whitespace, quoted, or with a zero-width space | [link] signature-threshold: … (a signature by unknown key 'KEYID' (a near miss of trusted key NAME (keyid): keyids are exact lowercase hex)) |
| 9 | an unknown keyid that starts like a trusted one | [link] signature-threshold: … (a signature by unknown key WHOLE-KEYID (not NAME (keyid), whose id starts the same)) |
| 10 | model.sig a FIFO, a directory, a symlink to a FIFO, a dangling symlink | [build] model-bundle: model.sig is not a regular file: expected a regular file, found a FIFO / a directory / a dangling symlink |
| 10 | model.rtm a FIFO beside a model.sig | [build] subject-digest, [evaluation] subject-digest, [build] model-bundle: model.rtm is not a regular file (never opened) |
| 10 | a link file a FIFO | [link] link-present: attestation is not a regular file: expected a regular file, found a FIFO |
| 10 | a build output (report.html) a FIFO | [build] subject-digest: report.html is not a regular file: expected a regular file, found a FIFO |
| 11 | build provenance with gitTreeState dirty | verifies; the build link reads "//models:candidate @ 72f1b240db71 (dirty)", tree_state "dirty" |
| 11 | build provenance whose target is a list, an object or not a label (shown in the summary) | [build] predicate-schema: provenance externalParameters.target: expected a Bazel label such as //models:candidate |
| 11 | build provenance with gitTreeState "pristine" | [build] predicate-schema: source gitTreeState: expected clean, dirty or unknown, found 'pristine' |

Guards that passed before the fixes too (they pin what must keep working):
the pristine in-memory chain and the committed registry fixture verify; a
model directory of symlinks to regular files verifies; a link whose signature
did not verify has its subject set skipped, not checked.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, Signature

from retrain.attest.envelope import read_envelopes, write_envelopes
from retrain.attest.errors import SignatureThresholdNotMet
from retrain.attest.keys import KeyPairPaths, generate_key_pair, load_signer
from retrain.attest.policy import TrustPolicy
from retrain.attest.sign import LINK_FILES, MODEL_BUNDLE, sign_model_bundle, sign_statement
from retrain.attest.statement import Statement
from retrain.attest.verify import verify_signature_threshold
from retrain.digest import sha256_bytes, sha256_file
from retrain.errors import InputError, PathEscapeError
from retrain.manifest import create_manifest, verify_directory
from tests.adversarial.chain_support import (
    COMMIT,
    EXPIRES,
    MODEL_FILES,
    Chain,
    Json,
    failed,
    failure,
    policy_for,
    verify,
    write_chain,
)
from tests.bazel_harness import REPO_ROOT

REGISTRY_MODEL = (
    REPO_ROOT
    / "attestations/registry/models/261f16e72667acf42ef8d581a9e16adab9161c6558ef7c6e5687e008b736a0a6"
)


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> KeyPairPaths:
    """A PEM pair on disk: model-signing's private-key method needs the file."""
    return generate_key_pair(tmp_path_factory.mktemp("keys") / "release.pem")


@pytest.fixture(scope="module")
def signer(key_pair: KeyPairPaths) -> Any:
    return load_signer(key_pair.private)


@pytest.fixture(scope="module")
def policy(signer: Any) -> TrustPolicy:
    return policy_for(("release", signer))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return tmp_path / "candidate"


def test_the_pristine_in_memory_chain_verifies(
    model_dir: Path, signer: Any, policy: TrustPolicy
) -> None:
    report = verify(write_chain(model_dir, Chain.pristine(), signer), policy)

    assert report.ok, [c.message for c in report.failures]


# ---------------------------------------------------------------------------
# 4. Every predicate field a check, message or summary reads is typed by the loader


def set_in(*path: str | int, value: object) -> Any:
    def change(predicate: Json) -> None:
        target: Any = predicate
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def refused_predicate(report: Any, link: str) -> Any:
    """The link's only failure is predicate-schema; the report came back, nothing raised."""
    assert failed(report) == [(link, "predicate-schema")], [c.message for c in report.failures]
    return failure(report, link, "predicate-schema")


# A sentinel that no other field holds: replaced in the signed bytes by JSON
# Python cannot produce (1e309, an over-long integer).
SENTINEL = 987654321


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(b'"10000"', id="string"),
        pytest.param(b"[10000]", id="list"),
        pytest.param(b"1e309", id="float-overflowing-to-infinity"),
        pytest.param(b"1" + b"0" * 400, id="integer-beyond-int64"),
        pytest.param(b"-1", id="negative"),
        pytest.param(b"true", id="bool"),
        pytest.param(b"10000.5", id="fraction"),
        pytest.param(b"null", id="null"),
    ],
)
def test_verify_refuses_signed_evaluation_whose_holdout_rows_is_not_a_count(
    model_dir: Path, signer: Any, policy: TrustPolicy, rows: bytes
) -> None:
    chain = Chain.pristine().edit(
        "evaluation", set_in("results", "holdout", "rows", value=SENTINEL)
    )
    payload = chain.payload("evaluation").replace(str(SENTINEL).encode(), rows)

    report = verify(write_chain(model_dir, chain, signer, payloads={"evaluation": payload}), policy)

    refusal = refused_predicate(report, "evaluation")
    assert "results.holdout.rows" in refusal.message
    assert refusal.expected == "an integer in [0, 2**63 - 1]"


def test_verify_refuses_signed_evaluation_with_more_positives_than_holdout_rows(
    model_dir: Path, signer: Any, policy: TrustPolicy
) -> None:
    chain = Chain.pristine().edit(
        "evaluation", set_in("results", "holdout", "positives", value=10001)
    )

    report = verify(write_chain(model_dir, chain, signer), policy)

    refusal = refused_predicate(report, "evaluation")
    assert "results.holdout.positives" in refusal.message
    assert (refusal.expected, refusal.found) == ("at most 10000 (the holdout's rows)", "10001")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("name", 7, id="name-number"),
        pytest.param("name", ["auc-floor"], id="name-list"),
        pytest.param("name", "", id="name-empty"),
        pytest.param("slice", 3, id="slice-number"),
        pytest.param("slice", "", id="slice-empty"),
        pytest.param("status", "waived", id="status-unknown"),
        pytest.param("status", None, id="status-null"),
        pytest.param("status", True, id="status-bool"),
    ],
)
def test_verify_refuses_signed_evaluation_whose_verdict_fields_are_mistyped(
    model_dir: Path, signer: Any, policy: TrustPolicy, field: str, value: object
) -> None:
    chain = Chain.pristine().edit(
        "evaluation", set_in("results", "gates", "verdicts", 0, field, value=value)
    )

    report = verify(write_chain(model_dir, chain, signer), policy)

    assert f"results.gates.verdicts[0].{field}" in refused_predicate(report, "evaluation").message


def test_verify_refuses_signed_evaluation_whose_results_gates_passed_is_not_a_boolean(
    model_dir: Path, signer: Any, policy: TrustPolicy
) -> None:
    chain = Chain.pristine().edit("evaluation", set_in("results", "gates", "passed", value=1))

    report = verify(write_chain(model_dir, chain, signer), policy)

    refusal = refused_predicate(report, "evaluation")
    assert "results.gates.passed" in refusal.message
    assert (refusal.expected, refusal.found) == ("true or false", "1")


@pytest.mark.parametrize(
    ("field", "name"),
    [
        pytest.param("dataset", "a/b", id="holdout-with-slash"),
        pytest.param("dataset", "my data", id="holdout-with-space"),
        pytest.param("trainingDataset", "../default", id="training-with-dotdot"),
    ],
)
def test_verify_refuses_signed_evaluation_naming_a_dataset_by_something_not_a_dataset_name(
    model_dir: Path, signer: Any, policy: TrustPolicy, field: str, name: str
) -> None:
    chain = Chain.pristine().edit("evaluation", set_in(field, "name", value=name))

    report = verify(write_chain(model_dir, chain, signer), policy)

    assert f"{field}.name" in refused_predicate(report, "evaluation").message


def test_verify_refuses_signed_evaluation_whose_model_name_has_a_nul(
    model_dir: Path, signer: Any, policy: TrustPolicy
) -> None:
    chain = Chain.pristine().edit("evaluation", set_in("model", "name", value="model\0.rtm"))
    chain.statements["evaluation"]["subject"][0]["name"] = "model\0.rtm"

    report = verify(write_chain(model_dir, chain, signer), policy)

    refusal = refused_predicate(report, "evaluation")
    assert "model.name" in refusal.message and refusal.expected == "a plain file name"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("column", 7, id="column-number"),
        pytest.param("column", ["age"], id="column-list"),
        pytest.param("column", "", id="column-empty"),
        pytest.param("detail", 3, id="detail-number"),
        pytest.param("detail", None, id="detail-null"),
        pytest.param("measured", {"a": 1}, id="measured-object"),
        pytest.param("measured", True, id="measured-bool"),
        pytest.param("threshold", None, id="threshold-null"),
    ],
)
def test_verify_refuses_signed_dataset_whose_quality_check_fields_are_mistyped(
    model_dir: Path, signer: Any, policy: TrustPolicy, field: str, value: object
) -> None:
    chain = Chain.pristine().edit("dataset", set_in("quality", "checks", 1, field, value=value))

    report = verify(write_chain(model_dir, chain, signer), policy)

    assert f"quality.checks[1].{field}" in refused_predicate(report, "dataset").message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("rows", 2**63, id="rows-beyond-int64"),
        pytest.param("files", 10**400, id="files-huge"),
        pytest.param("bytes", -1, id="bytes-negative"),
    ],
)
def test_verify_refuses_signed_dataset_whose_counts_are_out_of_range(
    model_dir: Path, signer: Any, policy: TrustPolicy, field: str, value: int
) -> None:
    chain = Chain.pristine().edit("holdout", set_in("dataset", field, value=value))

    report = verify(write_chain(model_dir, chain, signer), policy)

    refusal = refused_predicate(report, "holdout")
    assert f"dataset.{field}" in refusal.message
    assert refusal.expected == "an integer in [0, 2**63 - 1]"
    assert len(refusal.message) < 300  # a 400-digit number is not printed whole


@pytest.mark.parametrize("name", ["a/b", "../default", "my data", "default\n"])
def test_verify_refuses_signed_dataset_whose_name_is_not_a_dataset_name(
    model_dir: Path, signer: Any, policy: TrustPolicy, name: str
) -> None:
    chain = Chain.pristine().edit("dataset", set_in("dataset", "name", value=name))
    chain.statements["dataset"]["subject"][1]["name"] = f"dataset/{name}"

    report = verify(write_chain(model_dir, chain, signer), policy)

    assert "dataset.name" in refused_predicate(report, "dataset").message


# ---------------------------------------------------------------------------
# 5. A symlinked directory inside a dataset root is reported, not skipped


def write_parquet_dataset(root: Path) -> None:
    (root / "part").mkdir(parents=True)
    table = pa.table({"customer_id": [1, 2, 3], "age": [30, 40, 50]})
    pq.write_table(table, root / "part" / "a.parquet")


@pytest.mark.parametrize("target", ["inside", "outside"])
def test_verify_directory_reports_a_symlinked_directory_in_the_dataset(
    tmp_path: Path, target: str
) -> None:
    root = tmp_path / "data"
    write_parquet_dataset(root)
    manifest = create_manifest(root, name="default")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "cache").symlink_to(root / "part" if target == "inside" else outside)

    failures = verify_directory(manifest, root, manifest_where="data_manifests/default.json")

    (refusal,) = failures
    assert isinstance(refusal, PathEscapeError)
    assert refusal.what == "symlinked directory in dataset"
    assert refusal.where == str(root / "cache")


def test_verify_fails_dataset_subject_digest_for_a_symlinked_directory_in_the_data(
    tmp_path: Path, signer: Any
) -> None:
    repo = tmp_path / "repo"
    write_parquet_dataset(repo / "data" / "default")
    manifest = create_manifest(repo / "data" / "default", name="default")
    (repo / "data_manifests").mkdir()
    (repo / "data_manifests" / "default.json").write_bytes(manifest.to_json_bytes())
    (repo / "data" / "default" / "shadow").symlink_to(repo / "data" / "default" / "part")
    manifest_sha = sha256_file(repo / "data_manifests" / "default.json").sha256

    def real_dataset(predicate: Json) -> None:
        predicate["dataset"]["digest"] = manifest.dataset_digest
        predicate["manifest"]["sha256"] = manifest_sha

    chain = Chain.pristine().edit("dataset", real_dataset)
    chain.statements["dataset"]["subject"] = [
        {"name": "data_manifests/default.json", "digest": {"sha256": manifest_sha}},
        {"name": "dataset/default", "digest": {"sha256": manifest.dataset_digest[7:]}},
    ]
    write_chain(tmp_path / "candidate", chain, signer)
    dataset_only = TrustPolicy.for_keys(
        [("release", signer.public_key.keyval["public"])], expires=EXPIRES, steps=("dataset",)
    )

    report = verify(tmp_path / "candidate", dataset_only, repo_root=repo)

    assert failed(report) == [("dataset", "subject-digest")]
    refusal = failure(report, "dataset", "subject-digest")
    assert "symlinked directory in dataset" in refusal.message
    assert str(repo / "data" / "default" / "shadow") in refusal.message


# ---------------------------------------------------------------------------
# 6. A link's subjects are exactly what its step produces


def test_statement_refuses_a_subject_named_twice() -> None:
    raw = Chain.pristine().statements["build"]
    raw["subject"].append({"name": "model.rtm", "digest": {"sha256": "0" * 64}})

    with pytest.raises(InputError) as caught:
        Statement.from_dict(raw, where="provenance.json")

    assert caught.value.what == "statement names subject 'model.rtm' twice"


def test_verify_refuses_a_build_link_with_a_second_model_subject(
    model_dir: Path, signer: Any, policy: TrustPolicy
) -> None:
    chain = Chain.pristine()
    chain.statements["build"]["subject"].append(
        {"name": "model.rtm", "digest": {"sha256": sha256_bytes(b"another model")}}
    )

    report = verify(write_chain(model_dir, chain, signer), policy)

    assert failed(report) == [("build", "envelope")]
    assert report.exit_code == 2
    assert (
        "statement names subject 'model.rtm' twice" in failure(report, "build", "envelope").message
    )


def add_subject(link: str, name: str, digest: str) -> Any:
    def change(chain: Chain) -> None:
        chain.statements[link]["subject"].append({"name": name, "digest": {"sha256": digest}})

    return change


def drop_subject(link: str, name: str) -> Any:
    def change(chain: Chain) -> None:
        subjects = chain.statements[link]["subject"]
        chain.statements[link]["subject"] = [s for s in subjects if s["name"] != name]

    return change


EXTRA = sha256_bytes(b"extra")


@pytest.mark.parametrize(
    ("link", "change", "extra"),
    [
        pytest.param("build", add_subject("build", "extra.bin", EXTRA), "extra.bin", id="build"),
        pytest.param(
            "dataset",
            add_subject("dataset", "dataset/other", "0" * 64),
            "dataset/other",
            id="dataset",
        ),
        pytest.param(
            "holdout",
            add_subject("holdout", "data_manifests/other.json", "0" * 64),
            "data_manifests/other.json",
            id="holdout",
        ),
        pytest.param(
            "evaluation",
            add_subject("evaluation", "metrics.json", sha256_bytes(MODEL_FILES["metrics.json"])),
            "metrics.json",
            id="evaluation",
        ),
    ],
)
def test_verify_refuses_a_link_with_an_extra_subject(
    model_dir: Path, signer: Any, policy: TrustPolicy, link: str, change: Any, extra: str
) -> None:
    chain = Chain.pristine()
    change(chain)
    write_chain(model_dir, chain, signer, files={**MODEL_FILES, "extra.bin": b"extra"})

    report = verify(model_dir, policy)

    assert failed(report) == [(link, "subject-digest")]
    refusal = failure(report, link, "subject-digest")
    assert f"extra {extra!r}" in refusal.message
    assert refusal.expected.startswith("exactly ")
    assert extra in refusal.found


@pytest.mark.parametrize(
    ("link", "missing"),
    [
        pytest.param("build", "report.html", id="build"),
        pytest.param("dataset", "data_manifests/default.json", id="dataset"),
        pytest.param("holdout", "dataset/holdout", id="holdout"),
    ],
)
def test_verify_refuses_a_link_that_leaves_a_subject_out(
    model_dir: Path, signer: Any, policy: TrustPolicy, link: str, missing: str
) -> None:
    chain = Chain.pristine()
    drop_subject(link, missing)(chain)

    report = verify(write_chain(model_dir, chain, signer), policy)

    assert (link, "subject-digest") in failed(report)
    assert f"missing {missing!r}" in failure(report, link, "subject-digest").message


def test_verify_skips_the_subject_set_of_a_link_whose_signature_did_not_verify(
    model_dir: Path, signer: Any, policy: TrustPolicy
) -> None:
    chain = Chain.pristine()
    add_subject("build", "extra.bin", EXTRA)(chain)
    write_chain(model_dir, chain, signer)
    rogue = sign_statement(chain.payload("build"), [CryptoSigner.generate_ecdsa()])
    write_envelopes(model_dir / LINK_FILES["build"], [rogue])

    report = verify(model_dir, policy)

    assert failed(report) == [("build", "signature-threshold")]
    statuses = {c.check: c.status for c in report.checks if c.link == "build"}
    assert statuses["subject-digest"] == "skipped"


def test_build_subjects_are_the_files_the_provenance_rule_attests() -> None:
    from retrain.attest.verify import BUILD_SUBJECTS

    model_bzl = (REPO_ROOT / "rules/private/model.bzl").read_text()
    declared = re.findall(r'declare_file\(out \+ "/([^"]+)"\)', model_bzl)
    subjects = re.search(
        r"subjects = \[mi\.model, mi\.report, ev\.metrics, ev\.gates, ev\.report\]", model_bzl
    )

    assert subjects is not None, "the build's subjects changed in model.bzl: update BUILD_SUBJECTS"
    assert sorted(BUILD_SUBJECTS) == sorted(set(declared) - {"model.sig"}), (
        "BUILD_SUBJECTS must be the model_pipeline outputs the provenance names"
    )


def public_keys_of(document: object) -> list[str]:
    """Every PEM public key anywhere in a JSON document, whatever the policy's layout."""
    if isinstance(document, str):
        return [document] if "BEGIN PUBLIC KEY" in document else []
    if isinstance(document, dict):
        return [k for v in document.values() for k in public_keys_of(v)]
    if isinstance(document, list):
        return [k for v in document for k in public_keys_of(v)]
    return []


def test_the_committed_registry_model_still_verifies() -> None:
    keys = public_keys_of(json.loads((REPO_ROOT / "attestations/policy.json").read_text()))
    assert keys, "attestations/policy.json lists no public key"
    policy = TrustPolicy.for_keys(
        [(f"key{i}", pem) for i, pem in enumerate(dict.fromkeys(keys))],
        expires=EXPIRES,
    )

    report = verify(REGISTRY_MODEL, policy, repo_root=REGISTRY_MODEL)

    assert report.ok, [c.message for c in report.failures]
    build = next(link for link in report.links if link.link == "build")
    assert build.tree_state == "clean"


# ---------------------------------------------------------------------------
# 9. A keyid that nearly matches a trusted one is called a near miss


def envelope_with_keyid(signer: Any, keyid: str) -> Any:
    """A valid signature by the trusted key, filed under another keyid."""
    signed = sign_statement(Chain.pristine().payload("build"), [signer])
    (sig,) = signed.signatures.values()
    return Envelope(signed.payload, signed.payload_type, {keyid: Signature(keyid, sig.signature)})


def threshold_refusal(signer: Any, policy: TrustPolicy, keyid: str) -> str:
    with pytest.raises(SignatureThresholdNotMet) as caught:
        verify_signature_threshold(
            "build", envelope_with_keyid(signer, keyid), policy.steps["build"], policy
        )
    return str(caught.value.found)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(str.upper, id="uppercase"),
        pytest.param(lambda k: f" {k}\n", id="whitespace"),
        pytest.param(lambda k: f"{k}\u200b", id="zero-width-space"),
        pytest.param(lambda k: f"'{k}'", id="quoted"),
    ],
)
def test_signature_threshold_calls_a_padded_or_recased_trusted_keyid_a_near_miss(
    signer: Any, policy: TrustPolicy, variant: Any
) -> None:
    trusted = signer.public_key.keyid
    keyid = variant(trusted)

    found = threshold_refusal(signer, policy, keyid)

    assert f"a near miss of trusted key release ({trusted[:12]})" in found
    assert "keyids are exact lowercase hex" in found
    assert repr(keyid)[:13] in found  # shown with repr(): quotes, escapes visible


def test_signature_threshold_shows_in_full_an_unknown_keyid_that_starts_like_a_trusted_one(
    signer: Any, policy: TrustPolicy
) -> None:
    trusted = signer.public_key.keyid
    lookalike = trusted[:12] + ("0" if trusted[12] != "0" else "1") + trusted[13:]

    found = threshold_refusal(signer, policy, lookalike)

    assert lookalike in found
    assert f"a signature by unknown key {trusted[:12]} " not in found
    assert f"not release ({trusted[:12]})" in found


def test_describe_unknown_keyid_keeps_the_short_form_for_an_unrelated_key(
    policy: TrustPolicy,
) -> None:
    from retrain.attest.verify import describe_unknown_keyid

    stranger = CryptoSigner.generate_ecdsa().public_key.keyid

    assert describe_unknown_keyid(stranger, policy) == (
        f"a signature by unknown key {stranger[:12]}"
    )


def test_verify_reports_a_near_miss_keyid_on_the_link(
    model_dir: Path, signer: Any, policy: TrustPolicy
) -> None:
    write_chain(model_dir, Chain.pristine(), signer)
    trusted = signer.public_key.keyid
    write_envelopes(
        model_dir / LINK_FILES["evaluation"],
        [envelope_with_keyid(signer, trusted.upper())],
    )

    report = verify(model_dir, policy)

    refusal = failure(report, "evaluation", "signature-threshold")
    assert f"a signature by unknown key {trusted.upper()[:12]!r}"[:-1] in refusal.message
    assert "near miss of trusted key release" in refusal.message


# ---------------------------------------------------------------------------
# 10. Files that exist but are not regular files: refused, never opened


def make_fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def make_directory(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.mkdir()


def make_symlink_to_fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path.parent.parent / "a-fifo")
    path.symlink_to(path.parent.parent / "a-fifo")


def make_dangling_symlink(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to(path.parent / "no-such-file")


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        pytest.param(make_fifo, "a FIFO", id="fifo"),
        pytest.param(make_directory, "a directory", id="directory"),
        pytest.param(make_symlink_to_fifo, "a FIFO", id="symlink-to-fifo"),
        pytest.param(make_dangling_symlink, "a dangling symlink", id="dangling-symlink"),
    ],
)
def test_verify_refuses_a_model_sig_that_is_not_a_regular_file(
    model_dir: Path, signer: Any, policy: TrustPolicy, make: Any, kind: str
) -> None:
    write_chain(model_dir, Chain.pristine(), signer)
    make(model_dir / MODEL_BUNDLE)

    report = verify(model_dir, policy)

    assert failed(report) == [("build", "model-bundle")]
    refusal = failure(report, "build", "model-bundle")
    assert "model.sig is not a regular file" in refusal.message
    assert (refusal.expected, refusal.found) == ("a regular file", kind)


def test_verify_refuses_a_fifo_model_beside_its_bundle_without_opening_it(
    model_dir: Path, signer: Any, policy: TrustPolicy, key_pair: KeyPairPaths
) -> None:
    write_chain(model_dir, Chain.pristine(), signer)
    sign_model_bundle(model_dir / "model.rtm", key_pair.private, model_dir / MODEL_BUNDLE)
    make_fifo(model_dir / "model.rtm")

    report = verify(model_dir, policy)

    assert sorted(failed(report)) == [
        ("build", "model-bundle"),
        ("build", "subject-digest"),
        ("evaluation", "subject-digest"),
    ]
    assert all("model.rtm is not a regular file" in c.message for c in report.failures)


@pytest.mark.parametrize("link", list(LINK_FILES))
def test_verify_refuses_a_link_file_that_is_a_fifo(
    model_dir: Path, signer: Any, policy: TrustPolicy, link: str
) -> None:
    write_chain(model_dir, Chain.pristine(), signer)
    make_fifo(model_dir / LINK_FILES[link])

    report = verify(model_dir, policy)

    assert failed(report) == [(link, "link-present")]
    refusal = failure(report, link, "link-present")
    assert "attestation is not a regular file" in refusal.message
    assert (refusal.expected, refusal.found) == ("a regular file", "a FIFO")


def test_verify_refuses_a_build_output_that_is_a_fifo(
    model_dir: Path, signer: Any, policy: TrustPolicy
) -> None:
    write_chain(model_dir, Chain.pristine(), signer)
    make_fifo(model_dir / "report.html")

    report = verify(model_dir, policy)

    assert failed(report) == [("build", "subject-digest")]
    refusal = failure(report, "build", "subject-digest")
    assert "report.html is not a regular file" in refusal.message
    assert refusal.found == "a FIFO"


def test_verify_accepts_a_model_directory_of_symlinks_to_regular_files(
    tmp_path: Path, signer: Any, policy: TrustPolicy, key_pair: KeyPairPaths
) -> None:
    real = write_chain(tmp_path / "real", Chain.pristine(), signer)
    sign_model_bundle(real / "model.rtm", key_pair.private, real / MODEL_BUNDLE)
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    for path in real.iterdir():
        (sandbox / path.name).symlink_to(path)

    report = verify(sandbox, policy)

    assert report.ok, [c.message for c in report.failures]
    assert {c.check: c.status for c in report.checks if c.link == "build"}["model-bundle"] == (
        "passed"
    )


# ---------------------------------------------------------------------------
# 11. The build link carries the source tree's state


def chain_with_tree_state(tree_state: str | None) -> Chain:
    from tests.adversarial.chain_support import build_statement

    chain = Chain.pristine()
    chain.statements["build"] = build_statement(tree_state=tree_state)
    return chain


def build_link(report: Any) -> Any:
    return next(link for link in report.links if link.link == "build")


def test_verify_shows_a_build_from_a_dirty_tree(
    model_dir: Path, signer: Any, policy: TrustPolicy
) -> None:
    report = verify(write_chain(model_dir, chain_with_tree_state("dirty"), signer), policy)

    assert report.ok
    assert build_link(report).tree_state == "dirty"
    assert build_link(report).detail == f"//models:candidate @ {COMMIT[:12]} (dirty)"


def test_verify_shows_nothing_extra_for_a_build_from_a_clean_tree(
    model_dir: Path, signer: Any, policy: TrustPolicy
) -> None:
    report = verify(write_chain(model_dir, chain_with_tree_state("clean"), signer), policy)

    assert build_link(report).tree_state == "clean"
    assert build_link(report).detail == f"//models:candidate @ {COMMIT[:12]}"


def test_verify_calls_the_tree_state_unknown_when_the_provenance_does_not_record_it(
    model_dir: Path, signer: Any, policy: TrustPolicy
) -> None:
    report = verify(write_chain(model_dir, chain_with_tree_state(None), signer), policy)

    assert build_link(report).tree_state == "unknown"
    assert build_link(report).detail.endswith("(tree state unknown)")


def test_verification_report_json_carries_the_build_tree_state(
    model_dir: Path, signer: Any, policy: TrustPolicy
) -> None:
    report = verify(write_chain(model_dir, chain_with_tree_state("dirty"), signer), policy)

    links = {link["link"]: link for link in report.to_dict()["links"]}
    assert links["build"]["tree_state"] == "dirty"
    assert "tree_state" not in links["evaluation"]


def test_verify_refuses_a_build_whose_tree_state_is_not_one_retrain_records(
    model_dir: Path, signer: Any, policy: TrustPolicy
) -> None:
    report = verify(write_chain(model_dir, chain_with_tree_state("pristine"), signer), policy)

    refusal = refused_predicate(report, "build")
    assert "gitTreeState" in refusal.message
    assert (refusal.expected, refusal.found) == ("clean, dirty or unknown", "'pristine'")


@pytest.mark.parametrize(
    "target", [["//models:candidate"], {"label": "x"}, "", "models/candidate"], ids=repr
)
def test_verify_refuses_a_build_whose_target_is_not_a_bazel_label(
    model_dir: Path, signer: Any, policy: TrustPolicy, target: object
) -> None:
    chain = Chain.pristine()
    chain.statements["build"]["predicate"]["buildDefinition"]["externalParameters"]["target"] = (
        target
    )

    report = verify(write_chain(model_dir, chain, signer), policy)

    refusal = refused_predicate(report, "build")
    assert "externalParameters.target" in refusal.message
    assert refusal.expected == "a Bazel label such as //models:candidate"


def test_envelopes_written_by_the_support_are_what_the_reader_reads(
    model_dir: Path, signer: Any
) -> None:
    write_chain(model_dir, Chain.pristine(), signer)

    (envelope,) = read_envelopes(model_dir / LINK_FILES["build"])

    assert json.loads(envelope.payload) == Chain.pristine().statements["build"]
