"""The tamper matrix of ``retrain verify``: every attack on a real signed chain is refused.

Each test takes a private copy of one really built and signed
``//models:candidate`` output directory, applies one attack and verifies it
through the CLI, in-process (and, for a few, as the installed ``retrain``
command). A refusal exits 1 when a check ran and failed and 2 when the input
is unusable; it names exactly the failing checks, and each refusal is one
``retrain: verify: [link] check: ... expected ..., found ...`` line. No
traceback ever reaches the terminal.

| attack                                         | failing checks                               | exit |
|------------------------------------------------|----------------------------------------------|------|
| flip a byte of model.rtm                       | build + evaluation subject-digest, bundle    | 1    |
| flip a byte of model.sig (the Sigstore bundle) | build model-bundle                           | 1    |
| model.sig of another model                     | build model-bundle                           | 1    |
| flip a byte of metrics.json                    | build subject-digest                         | 1    |
| flip a byte of a data file                     | dataset subject-digest                       | 1    |
| edit the manifest                              | dataset subject-digest                       | 1    |
| edit the provenance payload, keep signature    | build signature-threshold                    | 1    |
| move another envelope's signature onto build   | build signature-threshold                    | 1    |
| re-sign the chain with an unknown key          | signature-threshold on every link            | 1    |
| sign evaluation with a key not allowed for it  | evaluation signature-threshold               | 1    |
| signed envelope with the wrong payloadType     | build payload-type                           | 1    |
| dataset envelope put in the evaluation link    | evaluation predicate-schema                  | 1    |
| replay another model's signed evaluation       | evaluation subject-digest, evaluation chain  | 1    |
| training dataset's link put in the holdout's   | evaluation chain                             | 1    |
| re-signed "gates passed" over a failed verdict | evaluation predicate-schema                  | 1    |
| validly signed evaluation whose gates failed   | evaluation gates                             | 1    |
| unsigned payloads shaped to break the parser   | signature-threshold + predicate-schema       | 1    |
| truncated / non-JSON / empty / mixed envelopes | envelope                                     | 2    |
| payload nested too deep for the JSON parser    | envelope                                     | 2    |
| policy expired                                 | policy-expiry                                | 1    |
| policy malformed                               | (one ``retrain: error:`` line)               | 2    |
| link file missing (any of the four)            | link-present                                 | 1    |
| threshold 2: one key, one key twice, copied id | build signature-threshold                    | 1    |
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from retrain.attest.envelope import read_envelopes, write_envelopes
from retrain.attest.keys import KeyPairPaths, generate_key_pair, load_signer
from retrain.attest.policy import TrustPolicy
from retrain.attest.sign import LINK_FILES, sign_chain, sign_statement
from retrain.cli import main
from tests.bazel_harness import REPO_ROOT, BazelWorkspace, base_env
from tests.policy_support import write_policy as write_signed_policy

pytestmark = [pytest.mark.bazel]

RETRAIN = Path(sys.executable).parent / "retrain"
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------------------
# A pristine signed chain, and a private copy for each test


@pytest.fixture(scope="module")
def pristine(
    repo_bazel: BazelWorkspace, candidate: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The session build's output directory, copied once; never modify it."""
    dest = tmp_path_factory.mktemp("pristine") / "candidate"
    shutil.copytree(repo_bazel.bazel_bin() / "models" / "candidate", dest)
    for path in dest.iterdir():
        path.chmod(0o644)  # Bazel outputs are read-only
    return dest


@pytest.fixture
def model_dir(pristine: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "candidate"
    shutil.copytree(pristine, dest)
    return dest


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPairPaths]:
    """Key pairs of the attacks: one nobody trusts, and two a policy may name."""
    home = tmp_path_factory.mktemp("attack-keys")
    return {name: generate_key_pair(home / f"{name}.pem") for name in ("rogue", "build", "eval")}


@pytest.fixture(scope="module")
def session_signer(test_signing_key: KeyPairPaths) -> Any:
    """The key the session's builds sign with, which ``test_policy_path`` trusts."""
    return load_signer(test_signing_key.private)


@pytest.fixture(scope="module")
def other_model_evaluation(
    scratch: BazelWorkspace, candidate: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The signed evaluation link of a different model: the recipe with another learning rate."""
    recipe = scratch.root / "models" / "candidate.recipe.json"
    original = recipe.read_text()
    raw = json.loads(original)
    raw["estimator"]["params"]["learning_rate"] = 0.1
    try:
        recipe.write_text(json.dumps(raw, indent=2))
        scratch.must_build("//models:candidate")
        built = scratch.bazel_bin() / "models" / "candidate"
        dest = tmp_path_factory.mktemp("other-model") / LINK_FILES["evaluation"]
        shutil.copyfile(built / LINK_FILES["evaluation"], dest)
        other_model = json.loads(read_envelopes(dest)[0].payload)["predicate"]["model"]["sha256"]
        assert other_model != candidate["model.rtm"], "the other recipe built the same model"
    finally:
        recipe.write_text(original)
    return dest


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The repository's manifests and data, free to tamper with."""
    repo = tmp_path / "repo"
    for name in ("data_manifests", "data"):
        shutil.copytree(REPO_ROOT / name, repo / name)
    return repo


# ---------------------------------------------------------------------------
# Attacks and their tools


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def link_path(model_dir: Path, link: str) -> Path:
    return model_dir / LINK_FILES[link]


def raw_envelope(model_dir: Path, link: str) -> dict[str, Any]:
    return json.loads(link_path(model_dir, link).read_text().splitlines()[0])


def write_raw_envelope(model_dir: Path, link: str, envelope: dict[str, Any]) -> None:
    link_path(model_dir, link).write_text(json.dumps(envelope) + "\n")


def payloads(model_dir: Path) -> dict[str, bytes]:
    return {link: read_envelopes(link_path(model_dir, link))[0].payload for link in LINK_FILES}


def replace_payload(model_dir: Path, link: str, payload: bytes) -> None:
    """Swap the signed payload for another, keeping the old signature."""
    envelope = raw_envelope(model_dir, link)
    envelope["payload"] = base64.b64encode(payload).decode("ascii")
    write_raw_envelope(model_dir, link, envelope)


def edit_statement(model_dir: Path, link: str, edit: Callable[[dict[str, Any]], None]) -> None:
    statement = json.loads(payloads(model_dir)[link])
    edit(statement)
    replace_payload(model_dir, link, json.dumps(statement).encode("utf-8"))


def flip_model_byte(model_dir: Path) -> None:
    flip_byte(model_dir / "model.rtm")


def truncate_provenance(model_dir: Path) -> None:
    path = link_path(model_dir, "build")
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def nest_evaluation_payload_too_deep(model_dir: Path) -> None:
    replace_payload(model_dir, "evaluation", b"[" * 100_000 + b"]" * 100_000)


def write_policy(path: Path, keys: list[tuple[str, KeyPairPaths]], **kw: Any) -> Path:
    """A policy over ``keys``, which are also its root; signed by the first."""
    kw.setdefault("expires", FAR_FUTURE)
    policy = TrustPolicy.for_keys([(name, pair.public.read_text()) for name, pair in keys], **kw)
    return write_signed_policy(path, policy, keys[0][1])


# ---------------------------------------------------------------------------
# Verifying, and what a refusal must look like


def run_retrain(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RETRAIN), *map(str, args)],
        cwd=REPO_ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    report: dict[str, Any]
    stdout: str
    stderr: str

    @property
    def failed_checks(self) -> list[tuple[str, str]]:
        return [(f["link"], f["check"]) for f in self.report["failures"]]


def verify(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    policy: Path,
    *extra: str,
    repo: Path = REPO_ROOT,
) -> Outcome:
    """``retrain verify`` in-process, once with ``--json`` (the report) and once plain."""
    argv = ["verify", str(model_dir), "--policy", str(policy), "--repo", str(repo), *extra]
    json_code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert err == "" and "Traceback" not in out
    report = json.loads(out)
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == json_code == report["exit_code"]
    return Outcome(code, report, out, err)


def assert_refused(outcome: Outcome, exit_code: int, checks: list[tuple[str, str]]) -> list[str]:
    """Exactly these checks failed, each on one line naming link, check, expected and found."""
    assert outcome.exit_code == exit_code, outcome.stderr
    assert outcome.failed_checks == checks, outcome.stderr
    assert outcome.stdout == ""
    *lines, summary = outcome.stderr.splitlines()
    assert summary.startswith(f"FAILED: {len(checks)} check(s) failed for ")
    assert len(lines) == len(checks)
    for line, failure in zip(lines, outcome.report["failures"], strict=True):
        assert line.startswith(f"retrain: verify: [{failure['link']}] {failure['check']}: "), line
        assert failure["expected"] and failure["found"], line
        assert f"expected {failure['expected']}, found {failure['found']}" in line, line
    return lines


def test_the_pristine_chain_verifies(
    capsys: pytest.CaptureFixture[str], model_dir: Path, test_policy_path: Path
) -> None:
    outcome = verify(capsys, model_dir, test_policy_path)

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.report["failures"] == [] and outcome.stderr == ""
    assert "4 files, 40000 rows verified" in outcome.stdout  # the training dataset
    assert "1 files, 10000 rows verified" in outcome.stdout  # the pinned holdout
    checks = {(c["link"], c["check"]) for c in outcome.report["checks"]}
    assert {("dataset", "gates"), ("holdout", "gates"), ("evaluation", "gates")} <= checks


# ---------------------------------------------------------------------------
# Bytes changed after signing: subject-digest


def test_flipped_model_byte_fails_build_and_evaluation_subject_digest(
    capsys: pytest.CaptureFixture[str], model_dir: Path, test_policy_path: Path
) -> None:
    flip_model_byte(model_dir)

    digest_a, bundle, digest_b = assert_refused(
        verify(capsys, model_dir, test_policy_path),
        1,
        [("build", "subject-digest"), ("build", "model-bundle"), ("evaluation", "subject-digest")],
    )

    assert "model.rtm does not match the attested digest" in digest_a
    assert "model.rtm does not match the attested digest" in digest_b
    assert "model.sig does not verify the model" in bundle


def test_flipped_bundle_byte_fails_build_model_bundle(
    capsys: pytest.CaptureFixture[str], model_dir: Path, test_policy_path: Path
) -> None:
    bundle = model_dir / "model.sig"
    raw = json.loads(bundle.read_text())
    sig = bytearray(base64.b64decode(raw["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[10] ^= 0x01
    raw["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    bundle.write_text(json.dumps(raw))

    (line,) = assert_refused(
        verify(capsys, model_dir, test_policy_path), 1, [("build", "model-bundle")]
    )

    assert "model.sig" in line


def test_bundle_of_another_model_fails_build_model_bundle(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    test_policy_path: Path,
    test_signing_key: KeyPairPaths,
    tmp_path: Path,
) -> None:
    from retrain.attest.sign import sign_model_bundle

    other = tmp_path / "other" / "model.rtm"
    other.parent.mkdir()
    other.write_bytes(b"another model's bytes")
    sign_model_bundle(other, test_signing_key.private, model_dir / "model.sig")

    assert_refused(verify(capsys, model_dir, test_policy_path), 1, [("build", "model-bundle")])


def test_flipped_metrics_byte_fails_build_subject_digest(
    capsys: pytest.CaptureFixture[str], model_dir: Path, test_policy_path: Path
) -> None:
    flip_byte(model_dir / "metrics.json")

    (line,) = assert_refused(
        verify(capsys, model_dir, test_policy_path), 1, [("build", "subject-digest")]
    )

    assert "metrics.json does not match the attested digest" in line


def test_flipped_data_file_byte_fails_dataset_subject_digest_naming_the_file(
    capsys: pytest.CaptureFixture[str], model_dir: Path, test_policy_path: Path, repo_copy: Path
) -> None:
    data_file = repo_copy / "data" / "default" / "part-00001.parquet"
    flip_byte(data_file)

    (line,) = assert_refused(
        verify(capsys, model_dir, test_policy_path, repo=repo_copy),
        1,
        [("dataset", "subject-digest")],
    )

    assert f"{data_file}: sha256 mismatch" in line


def test_edited_manifest_fails_dataset_subject_digest(
    capsys: pytest.CaptureFixture[str], model_dir: Path, test_policy_path: Path, repo_copy: Path
) -> None:
    manifest = repo_copy / "data_manifests" / "default.json"
    manifest.write_text(manifest.read_text().replace('"rows": 10000', '"rows": 10001', 1))

    (line,) = assert_refused(
        verify(capsys, model_dir, test_policy_path, repo=repo_copy),
        1,
        [("dataset", "subject-digest")],
    )

    assert f"{manifest}: manifest does not match the attested digest" in line


# ---------------------------------------------------------------------------
# Signatures: signature-threshold


def test_edited_provenance_under_its_old_signature_fails_build_signature_threshold(
    capsys: pytest.CaptureFixture[str], model_dir: Path, test_policy_path: Path
) -> None:
    def retarget(statement: dict[str, Any]) -> None:
        statement["predicate"]["buildDefinition"]["externalParameters"]["target"] = "//evil:model"

    edit_statement(model_dir, "build", retarget)

    (line,) = assert_refused(
        verify(capsys, model_dir, test_policy_path), 1, [("build", "signature-threshold")]
    )

    assert "an invalid signature claiming key test-signer" in line


def test_signature_moved_from_another_envelope_fails_signature_threshold(
    capsys: pytest.CaptureFixture[str], model_dir: Path, test_policy_path: Path
) -> None:
    envelope = raw_envelope(model_dir, "build")
    envelope["signatures"] = raw_envelope(model_dir, "evaluation")["signatures"]
    write_raw_envelope(model_dir, "build", envelope)

    (line,) = assert_refused(
        verify(capsys, model_dir, test_policy_path), 1, [("build", "signature-threshold")]
    )

    assert "an invalid signature claiming key test-signer" in line


def test_chain_resigned_by_an_unknown_key_fails_every_links_signature_threshold(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    test_policy_path: Path,
    keys: dict[str, KeyPairPaths],
) -> None:
    sign_chain(model_dir, payloads(model_dir), [load_signer(keys["rogue"].private)])

    lines = assert_refused(
        verify(capsys, model_dir, test_policy_path),
        1,
        [(link, "signature-threshold") for link in ("dataset", "holdout", "build", "evaluation")],
    )

    rogue = keys["rogue"].keyid[:12]
    assert all(f"a signature by unknown key {rogue}" in line for line in lines)


def bundle_by(model_dir: Path, pair: KeyPairPaths) -> None:
    """Re-sign model.sig with ``pair``: the policies below allow only their own keys for the build."""
    from retrain.attest.sign import sign_model_bundle

    sign_model_bundle(model_dir / "model.rtm", pair.private, model_dir / "model.sig")


@pytest.fixture
def step_policy(tmp_path: Path, model_dir: Path, keys: dict[str, KeyPairPaths]) -> Path:
    """The build key signs dataset and build; only the eval key may sign the evaluation.

    The holdout step is not named, so either key may sign it.
    """
    bundle_by(model_dir, keys["build"])
    return write_policy(
        tmp_path / "steps.json",
        [("build-key", keys["build"]), ("eval-key", keys["eval"])],
        step_keys={"dataset": ["build-key"], "build": ["build-key"], "evaluation": ["eval-key"]},
    )


def test_evaluation_signed_by_the_build_key_is_refused_where_the_policy_forbids_it(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    step_policy: Path,
    keys: dict[str, KeyPairPaths],
) -> None:
    sign_chain(model_dir, payloads(model_dir), [load_signer(keys["build"].private)])

    (line,) = assert_refused(
        verify(capsys, model_dir, step_policy), 1, [("evaluation", "signature-threshold")]
    )

    assert "which the policy does not allow for step evaluation" in line
    assert f"expected 1 of [eval-key ({keys['eval'].keyid[:12]})]" in line


def test_evaluation_signed_by_the_eval_key_passes_the_same_policy(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    step_policy: Path,
    keys: dict[str, KeyPairPaths],
) -> None:
    statements = payloads(model_dir)
    build_signer = load_signer(keys["build"].private)
    sign_chain(
        model_dir, {k: statements[k] for k in ("dataset", "holdout", "build")}, [build_signer]
    )
    sign_chain(
        model_dir, {"evaluation": statements["evaluation"]}, [load_signer(keys["eval"].private)]
    )

    outcome = verify(capsys, model_dir, step_policy)

    assert outcome.exit_code == 0, outcome.stderr
    signers = {link["link"]: link["signers"] for link in outcome.report["links"]}
    assert signers["evaluation"] == [f"eval-key ({keys['eval'].keyid[:12]})"]


@pytest.fixture
def two_of_two_policy(tmp_path: Path, model_dir: Path, keys: dict[str, KeyPairPaths]) -> Path:
    """Both keys may sign every step; the build needs two distinct signatures."""
    bundle_by(model_dir, keys["build"])
    return write_policy(
        tmp_path / "threshold.json",
        [("build-key", keys["build"]), ("eval-key", keys["eval"])],
        thresholds={"build": 2},
    )


@pytest.fixture
def signers(keys: dict[str, KeyPairPaths]) -> dict[str, Any]:
    return {name: load_signer(pair.private) for name, pair in keys.items()}


def test_threshold_of_two_refuses_one_signature(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    two_of_two_policy: Path,
    signers: dict[str, Any],
) -> None:
    sign_chain(model_dir, payloads(model_dir), [signers["build"]])

    (line,) = assert_refused(
        verify(capsys, model_dir, two_of_two_policy), 1, [("build", "signature-threshold")]
    )

    assert "expected 2 of [" in line and line.endswith("found 1")


def test_threshold_of_two_refuses_the_same_key_signing_twice(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    two_of_two_policy: Path,
    signers: dict[str, Any],
) -> None:
    statements = payloads(model_dir)
    sign_chain(model_dir, statements, [signers["build"]])
    twice = [sign_statement(statements["build"], [signers["build"]]) for _ in range(2)]
    write_envelopes(link_path(model_dir, "build"), twice)

    (line,) = assert_refused(
        verify(capsys, model_dir, two_of_two_policy), 1, [("build", "signature-threshold")]
    )

    assert line.endswith("found 1")


def test_threshold_of_two_refuses_one_signature_copied_under_the_other_keys_id(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    two_of_two_policy: Path,
    keys: dict[str, KeyPairPaths],
    signers: dict[str, Any],
) -> None:
    sign_chain(model_dir, payloads(model_dir), [signers["build"]])
    envelope = raw_envelope(model_dir, "build")
    (signature,) = envelope["signatures"]
    envelope["signatures"].append({"keyid": keys["eval"].keyid, "sig": signature["sig"]})
    write_raw_envelope(model_dir, "build", envelope)

    (line,) = assert_refused(
        verify(capsys, model_dir, two_of_two_policy), 1, [("build", "signature-threshold")]
    )

    assert "an invalid signature claiming key eval-key" in line


def test_threshold_of_two_passes_with_two_keys_in_one_envelope(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    two_of_two_policy: Path,
    signers: dict[str, Any],
) -> None:
    sign_chain(model_dir, payloads(model_dir), [signers["build"], signers["eval"]])

    outcome = verify(capsys, model_dir, two_of_two_policy)

    assert outcome.exit_code == 0, outcome.stderr
    build = next(link for link in outcome.report["links"] if link["link"] == "build")
    assert len(build["signers"]) == 2


def test_threshold_of_two_passes_with_two_envelopes_on_two_lines(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    two_of_two_policy: Path,
    signers: dict[str, Any],
) -> None:
    statements = payloads(model_dir)
    sign_chain(model_dir, statements, [signers["build"]])
    lines = [sign_statement(statements["build"], [signers[k]]) for k in ("build", "eval")]
    write_envelopes(link_path(model_dir, "build"), lines)

    outcome = verify(capsys, model_dir, two_of_two_policy)

    assert outcome.exit_code == 0, outcome.stderr
    build = next(link for link in outcome.report["links"] if link["link"] == "build")
    assert len(build["signers"]) == 2


# ---------------------------------------------------------------------------
# Validly signed, but not what this link must be


def test_signed_envelope_with_the_wrong_payload_type_fails_payload_type(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    test_policy_path: Path,
    session_signer: Any,
) -> None:
    from securesystemslib.dsse import Envelope

    envelope = Envelope(
        payload=payloads(model_dir)["build"], payload_type="application/json", signatures={}
    )
    envelope.sign(session_signer)
    write_envelopes(link_path(model_dir, "build"), [envelope])

    (line,) = assert_refused(
        verify(capsys, model_dir, test_policy_path), 1, [("build", "payload-type")]
    )

    assert "expected application/vnd.in-toto+json, found application/json" in line


def test_dataset_envelope_in_the_evaluation_link_fails_predicate_schema(
    capsys: pytest.CaptureFixture[str], model_dir: Path, test_policy_path: Path
) -> None:
    shutil.copyfile(link_path(model_dir, "dataset"), link_path(model_dir, "evaluation"))

    (line,) = assert_refused(
        verify(capsys, model_dir, test_policy_path), 1, [("evaluation", "predicate-schema")]
    )

    assert "found https://retrain.dev/attestations/dataset/v1" in line


def test_replayed_evaluation_of_another_model_fails_subject_digest_and_chain(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    test_policy_path: Path,
    other_model_evaluation: Path,
) -> None:
    shutil.copyfile(other_model_evaluation, link_path(model_dir, "evaluation"))

    subject, chain = assert_refused(
        verify(capsys, model_dir, test_policy_path),
        1,
        [("evaluation", "subject-digest"), ("evaluation", "chain")],
    )

    assert "model.rtm does not match the attested digest" in subject
    assert "evaluation names a model the build did not attest" in chain


def test_training_dataset_link_in_place_of_the_holdout_fails_evaluation_chain(
    capsys: pytest.CaptureFixture[str], model_dir: Path, test_policy_path: Path
) -> None:
    shutil.copyfile(link_path(model_dir, "dataset"), link_path(model_dir, "holdout"))

    (line,) = assert_refused(
        verify(capsys, model_dir, test_policy_path), 1, [("evaluation", "chain")]
    )

    assert "evaluation names a holdout other than the attested holdout" in line


# ---------------------------------------------------------------------------
# The gates: what the evaluation says passed must have passed


def resign_evaluation(model_dir: Path, signer: Any, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit the evaluation statement and sign it again, validly, with ``signer``."""
    statement = json.loads(payloads(model_dir)["evaluation"])
    edit(statement)
    sign_chain(model_dir, {"evaluation": json.dumps(statement).encode("utf-8")}, [signer])


def fail_first_verdict(predicate: dict[str, Any]) -> str:
    """Mark the first gate verdict failed; returns its name as gates.failed lists it."""
    first = predicate["results"]["gates"]["verdicts"][0]
    first["status"] = "failed"
    return f"{first['name']}[{first['slice']}]" if first["slice"] else str(first["name"])


def test_resigned_gates_passed_over_a_failed_verdict_fails_evaluation_predicate_schema(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    test_policy_path: Path,
    session_signer: Any,
) -> None:
    failed: list[str] = []

    def forge_a_pass(statement: dict[str, Any]) -> None:
        failed.append(fail_first_verdict(statement["predicate"]))
        statement["predicate"]["gates"] = {"passed": True, "failed": []}

    resign_evaluation(model_dir, session_signer, forge_a_pass)

    (line,) = assert_refused(
        verify(capsys, model_dir, test_policy_path), 1, [("evaluation", "predicate-schema")]
    )

    assert "gates.failed does not list the failed verdicts" in line
    assert f"expected {failed!r}, found []" in line


def test_validly_signed_evaluation_whose_gates_failed_fails_evaluation_gates(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    test_policy_path: Path,
    session_signer: Any,
) -> None:
    failed: list[str] = []

    def fail_a_gate(statement: dict[str, Any]) -> None:
        predicate = statement["predicate"]
        failed.append(fail_first_verdict(predicate))
        predicate["gates"] = {"passed": False, "failed": failed}
        predicate["results"]["gates"]["passed"] = False

    resign_evaluation(model_dir, session_signer, fail_a_gate)

    (line,) = assert_refused(
        verify(capsys, model_dir, test_policy_path), 1, [("evaluation", "gates")]
    )

    assert line == (
        "retrain: verify: [evaluation] gates: 1 validation gate(s) failed: "
        f"expected every gate passed or skipped, found {failed[0]}"
    )


# ---------------------------------------------------------------------------
# Unsigned payloads shaped to break the parser: refused, never a traceback


def _external_parameters_a_list(statement: dict[str, Any]) -> None:
    statement["predicate"]["buildDefinition"]["externalParameters"] = []


def _builder_a_list(statement: dict[str, Any]) -> None:
    statement["predicate"]["runDetails"]["builder"] = []


def _metric_too_large_for_a_float(statement: dict[str, Any]) -> None:
    statement["predicate"]["results"]["metrics"]["auc"]["value"] = 10**400


@pytest.mark.parametrize(
    ("link", "edit", "found"),
    [
        ("build", _external_parameters_a_list, "externalParameters: expected an object"),
        ("build", _builder_a_list, "runDetails.builder: expected an object"),
        ("evaluation", _metric_too_large_for_a_float, "metric 'auc': expected a finite number"),
    ],
    ids=["external-parameters-a-list", "builder-a-list", "metric-too-large-for-a-float"],
)
def test_malformed_unsigned_predicate_fails_signature_and_predicate_schema(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    test_policy_path: Path,
    link: str,
    edit: Callable[[dict[str, Any]], None],
    found: str,
) -> None:
    edit_statement(model_dir, link, edit)

    _, schema = assert_refused(
        verify(capsys, model_dir, test_policy_path),
        1,
        [(link, "signature-threshold"), (link, "predicate-schema")],
    )

    assert found in schema


# ---------------------------------------------------------------------------
# Unusable envelopes: envelope, exit 2


def _not_json(model_dir: Path) -> None:
    link_path(model_dir, "evaluation").write_text("this is not an envelope\n")


def _empty(model_dir: Path) -> None:
    link_path(model_dir, "dataset").write_text("")


def _two_lines_signing_different_payloads(model_dir: Path) -> None:
    build = link_path(model_dir, "build").read_text()
    evaluation = link_path(model_dir, "evaluation")
    evaluation.write_text(evaluation.read_text() + build)


@pytest.mark.parametrize(
    ("attack", "link", "found"),
    [
        (truncate_provenance, "build", "line 1 is not JSON"),
        (_not_json, "evaluation", "line 1 is not JSON"),
        (_empty, "dataset", "attestation file holds no envelope"),
        (_two_lines_signing_different_payloads, "evaluation", "sign different payloads"),
        (nest_evaluation_payload_too_deep, "evaluation", "statement is not JSON"),
    ],
    ids=["truncated", "not-json", "empty", "different-payloads", "payload-nested-too-deep"],
)
def test_unusable_envelope_fails_envelope_with_exit_2(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    test_policy_path: Path,
    attack: Callable[[Path], None],
    link: str,
    found: str,
) -> None:
    attack(model_dir)

    (line,) = assert_refused(verify(capsys, model_dir, test_policy_path), 2, [(link, "envelope")])

    assert f"{link_path(model_dir, link)}" in line and found in line


# ---------------------------------------------------------------------------
# Missing links: link-present


@pytest.mark.parametrize("link", list(LINK_FILES))
def test_missing_link_file_fails_link_present(
    capsys: pytest.CaptureFixture[str], model_dir: Path, test_policy_path: Path, link: str
) -> None:
    link_path(model_dir, link).unlink()

    (line,) = assert_refused(
        verify(capsys, model_dir, test_policy_path), 1, [(link, "link-present")]
    )

    assert f"expected {LINK_FILES[link]}, found no file" in line


# ---------------------------------------------------------------------------
# The policy: policy-expiry, and malformed policies


def test_verifying_after_the_policy_expires_fails_policy_expiry(
    capsys: pytest.CaptureFixture[str], model_dir: Path, test_policy_path: Path
) -> None:
    (line,) = assert_refused(
        verify(capsys, model_dir, test_policy_path, "--at", "2100-01-01T00:00:00Z"),
        1,
        [("policy", "policy-expiry")],
    )

    assert "expected a time before 2100-01-01T00:00:00Z, found 2100-01-01T00:00:00Z" in line


def test_a_policy_that_expired_in_the_past_fails_policy_expiry(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    test_signing_key: KeyPairPaths,
    tmp_path: Path,
) -> None:
    expired = write_policy(
        tmp_path / "expired.json",
        [("test-signer", test_signing_key)],
        expires=datetime(2020, 1, 1, tzinfo=UTC),
    )

    # A fixed --at: the JSON run and the plain run must judge the same instant
    # (without it they may straddle a second and "found" differs).
    outcome = verify(capsys, model_dir, expired, "--at", "2026-11-26T12:00:00Z")
    (line,) = assert_refused(outcome, 1, [("policy", "policy-expiry")])
    assert "expected a time before 2020-01-01T00:00:00Z, found 2026-11-26T12:00:00Z" in line


def _policy_not_json(raw: dict[str, Any]) -> str:
    return json.dumps(raw)[:-10]


def _policy_unknown_key(raw: dict[str, Any]) -> str:
    raw["signed"] |= {"trust_everyone": True}
    return json.dumps(raw)


def _policy_keyid_of_another_key(raw: dict[str, Any]) -> str:
    entry = next(iter(raw["signed"]["keys"].values()))
    raw["signed"]["keys"] = {"0" * 64: entry}
    return json.dumps(raw)


def _policy_threshold_zero(raw: dict[str, Any]) -> str:
    raw["signed"]["steps"]["build"]["threshold"] = 0
    return json.dumps(raw)


def _policy_public_key_not_a_string(raw: dict[str, Any]) -> str:
    for entry in raw["signed"]["keys"].values():
        entry["public"] = 5
    return json.dumps(raw)


@pytest.mark.parametrize(
    ("malform", "found"),
    [
        (_policy_not_json, "malformed JSON at line 1"),
        (_policy_unknown_key, "unknown key 'trust_everyone'"),
        (_policy_keyid_of_another_key, "keyid does not match the public key"),
        (_policy_threshold_zero, "steps.build.threshold: expected an integer in [1, 1], found 0"),
        (_policy_public_key_not_a_string, "must be {name, keytype, scheme, public}"),
    ],
    ids=["not-json", "unknown-key", "keyid-mismatch", "threshold-zero", "public-not-a-string"],
)
def test_malformed_policy_is_one_error_line_with_exit_2(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    test_policy_path: Path,
    tmp_path: Path,
    malform: Callable[[dict[str, Any]], str],
    found: str,
) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(malform(json.loads(test_policy_path.read_text())))

    code = main(["verify", str(model_dir), "--policy", str(policy), "--repo", str(REPO_ROOT)])
    out, err = capsys.readouterr()

    assert code == 2 and out == ""
    assert err.splitlines() == [err.rstrip("\n")]
    assert err.startswith(f"retrain: error: {policy}: ") and found in err
    assert "Traceback" not in err


def test_policy_that_is_not_utf8_is_one_error_line_with_exit_2(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.json"
    policy.write_bytes(b"\xff\xfe{}")

    code = main(["verify", str(model_dir), "--policy", str(policy)])
    _, err = capsys.readouterr()

    assert code == 2
    assert err == f"retrain: error: {policy}: policy is not UTF-8 text\n"


# ---------------------------------------------------------------------------
# On the terminal: the installed command prints the same lines, no traceback


@pytest.fixture
def malformed_policy(tmp_path: Path, test_policy_path: Path) -> Path:
    path = tmp_path / "malformed-policy.json"
    path.write_text(test_policy_path.read_text()[:-10])
    return path


@pytest.mark.parametrize(
    ("attack", "exit_code", "first_line"),
    [
        (flip_model_byte, 1, "retrain: verify: [build] subject-digest: "),
        (truncate_provenance, 2, "retrain: verify: [build] envelope: "),
        (nest_evaluation_payload_too_deep, 2, "retrain: verify: [evaluation] envelope: "),
    ],
    ids=["flipped-model-byte", "truncated-envelope", "payload-nested-too-deep"],
)
def test_the_retrain_command_refuses_an_attack_without_a_traceback(
    model_dir: Path,
    test_policy_path: Path,
    attack: Callable[[Path], None],
    exit_code: int,
    first_line: str,
) -> None:
    attack(model_dir)

    result = run_retrain("verify", model_dir, "--policy", test_policy_path, "--repo", REPO_ROOT)

    assert result.returncode == exit_code, result.stderr
    *lines, summary = result.stderr.splitlines()
    assert lines[0].startswith(first_line)
    assert all(line.startswith("retrain: verify: [") for line in lines)
    assert summary.startswith("FAILED: ")
    assert "Traceback" not in result.stdout + result.stderr


def test_the_retrain_command_refuses_an_unknown_key_without_a_traceback(
    model_dir: Path, test_policy_path: Path, keys: dict[str, KeyPairPaths]
) -> None:
    sign_chain(model_dir, payloads(model_dir), [load_signer(keys["rogue"].private)])

    result = run_retrain("verify", model_dir, "--policy", test_policy_path, "--repo", REPO_ROOT)

    assert result.returncode == 1
    *lines, _ = result.stderr.splitlines()
    assert len(lines) == 4 and all("unknown key" in line for line in lines)
    assert "Traceback" not in result.stdout + result.stderr


def test_the_retrain_command_refuses_a_malformed_policy_in_one_line(
    model_dir: Path, malformed_policy: Path
) -> None:
    result = run_retrain("verify", model_dir, "--policy", malformed_policy, "--repo", REPO_ROOT)

    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"retrain: error: {malformed_policy}: policy is malformed JSON")
