"""The promotion registry under attack: refusals that write nothing, tampering the audit finds.

Two really built and signed models take part: model A is the session's
``//models:candidate``; model B is the same recipe with another learning rate,
built in the scratch workspace. Every command runs through the CLI in-process
(a few as the installed ``retrain`` command, to prove no traceback reaches the
terminal) against a registry in the test's temporary directory and the
session's test policy, whose default promotion rules let the session key
promote shadow → canary (at most 50%) → production and roll back.

A refused promotion or rollback exits 1 with one ``retrain: error:`` line per
reason, and leaves every file of the registry as it was (names and sha256).

| refused                                          | the line says                                         | exit |
|--------------------------------------------------|-------------------------------------------------------|------|
| unattested model (model.rtm, no attestations)    | [link] link-present, once per link (4 lines)          | 1    |
| model bytes flipped after signing                | build + evaluation subject-digest, build model-bundle | 1    |
| one byte of the provenance payload edited        | [build] signature-threshold                           | 1    |
| validly signed evaluation whose gates failed     | [evaluation] gates                                    | 1    |
| promoter's key not in the policy (alone, extra)  | key … is not in the trust policy …: it cannot approve | 1    |
| a listed key the promotion rules do not allow    | not enough approvers to promote to shadow             | 1    |
| shadow → production, skipping canary             | skips a stage: expected it to have reached canary     | 1    |
| a candidate straight to canary                   | skips a stage: … reached shadow, found no stage       | 1    |
| canary traffic above the policy's 50%            | traffic for canary: expected 1..50%, found 51%        | 1    |
| the model already serving that stage and traffic | already serves canary at 10%                          | 1    |
| rollback to a model only ever in shadow          | was never attested for production                     | 1    |
| rollback with nothing earlier in production      | no earlier production model to roll back to           | 1    |
| rollback to a model whose stored copy changed    | [build] subject-digest, model-bundle, [evaluation] …  | 1    |
| entry 1 replayed as the next entry               | uncommitted entry … claims another position           | 1    |
| a forged entry after the committed ones          | uncommitted entry … approvers are not the keys …      | 1    |
| policy without a promotion section               | no promotion section / checkpoint not signed by …     | 1    |

Tampering with the log or the model store is found by ``retrain audit``: exit 1
and one ``retrain: audit:`` line naming the first broken entry.

| tampering                                             | the audit says                                        |
|-------------------------------------------------------|-------------------------------------------------------|
| one base64 character of entry 4's payload changed     | entry 4: statement is not JSON (or another schema)    |
| entry 5 re-serialized with other traffic, old sig     | entry 5: approvers are not the keys whose sigs verify |
| entry 4 deleted                                       | entry 4 is missing                                    |
| entries 4 and 5 swapped                               | entry 4 claims another position                       |
| last committed entry deleted, checkpoint kept         | entry 8, the checkpoint's head, is missing            |
| checkpoint replaced by one two entries older          | entry 8 beyond the checkpoint does not follow         |
| forged entry 9 signed by an unknown key / unsigned    | beyond the checkpoint: entry 9: approvers are not …   |
| entry signed by a key the policy does not allow       | entry 2: not enough approvers to promote to canary    |
| a byte of a stored model flipped                      | entry 1 (or 4): the stored model's bytes are not …    |
| (not tampering) a signed entry beyond the checkpoint  | exit 0, note: an interrupted write, not committed     |

Known gaps, as strict xfails (a registry cannot witness its own past; git
history or a transparency log must): a checkpoint replaced by the one just
before it passes the audit (the entry after it looks like an interrupted
write), and a consistent truncation (last entry and checkpoint both rolled
back) is invisible to the audit.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from retrain.attest.envelope import read_envelopes, serialize_envelopes
from retrain.attest.keys import KeyPairPaths, generate_key_pair, load_signer
from retrain.attest.policy import TrustPolicy
from retrain.attest.promotion import STAGES
from retrain.attest.sign import LINK_FILES, sign_chain, sign_statement
from retrain.attest.trust import load_policy
from retrain.cli import main
from retrain.registry import Registry
from tests.bazel_harness import REPO_ROOT, BazelWorkspace, base_env
from tests.policy_support import write_successor

pytestmark = [pytest.mark.bazel]

RETRAIN = Path(sys.executable).parent / "retrain"
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------------------
# Two real signed models (helpers shared with tests/integration/test_registry_concurrency.py)


def copy_model(source: Path, dest: Path) -> Path:
    """A writable copy of a model directory (Bazel outputs are read-only)."""
    shutil.copytree(source, dest)
    for path in dest.iterdir():
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return dest


def build_model_b(scratch: BazelWorkspace, dest: Path) -> Path:
    """The candidate recipe with learning rate 0.08 instead of 0.05, built, signed and copied."""
    recipe = scratch.root / "models" / "candidate.recipe.json"
    original = recipe.read_text()
    assert '"learning_rate": 0.05' in original
    try:
        recipe.write_text(original.replace('"learning_rate": 0.05', '"learning_rate": 0.08'))
        scratch.must_build("//models:candidate")
        copy_model(scratch.bazel_bin() / "models" / "candidate", dest)
    finally:
        recipe.write_text(original)
    return dest


def model_sha(model_dir: Path) -> str:
    return hashlib.sha256((model_dir / "model.rtm").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def model_a(
    repo_bazel: BazelWorkspace, candidate: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The session's candidate; never modify it (copy it first)."""
    dest = tmp_path_factory.mktemp("model-a") / "candidate"
    return copy_model(repo_bazel.bazel_bin() / "models" / "candidate", dest)


@pytest.fixture(scope="module")
def model_b(
    scratch: BazelWorkspace, model_a: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Another model, as validly built and signed as A; never modify it."""
    dest = build_model_b(scratch, tmp_path_factory.mktemp("model-b") / "candidate")
    assert model_sha(dest) != model_sha(model_a), "the other recipe built the same model"
    return dest


@pytest.fixture(scope="module")
def signer(test_signing_key: KeyPairPaths) -> Any:
    return load_signer(test_signing_key.private)


@pytest.fixture(scope="module")
def rogue_key(tmp_path_factory: pytest.TempPathFactory) -> KeyPairPaths:
    """A key no policy of these tests trusts."""
    return generate_key_pair(tmp_path_factory.mktemp("rogue") / "rogue.pem")


# ---------------------------------------------------------------------------
# Registries in known states


@dataclass(frozen=True)
class Promote:
    model: Path
    stage: str
    traffic: int | None = None


@dataclass(frozen=True)
class Rollback:
    to: str | None = None


Step = Promote | Rollback


def apply_steps(registry: Registry, signers: Sequence[Any], steps: Sequence[Step]) -> None:
    for step in steps:
        if isinstance(step, Promote):
            registry.promote(
                step.model, step.stage, signers=signers, traffic=step.traffic, repo_root=REPO_ROOT
            )
        else:
            registry.rollback(signers=signers, to=step.to)


def registry_with(root: Path, policy: Path, signer: Any, steps: Sequence[Step]) -> Path:
    apply_steps(Registry(root, load_policy(policy)), [signer], steps)
    return root


def rollout(a: Path, b: Path) -> list[Step]:
    """A shadow → canary 10% → production, then B shadow → canary 20% → production."""
    return [
        Promote(a, "shadow"),
        Promote(a, "canary", 10),
        Promote(a, "production"),
        Promote(b, "shadow"),
        Promote(b, "canary", 20),
        Promote(b, "production"),
    ]


@dataclass(frozen=True)
class Logs:
    six: Path  # the rollout: B serves production
    eight: Path  # then rollback (to A), then rollback --to B
    checkpoints: dict[int, bytes]  # checkpoint.json after each entry of ``eight``


@pytest.fixture(scope="module")
def logs(
    model_a: Path,
    model_b: Path,
    test_policy_path: Path,
    signer: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Logs:
    """Registries built once per module; tests copy them (``copy_registry``)."""
    base = tmp_path_factory.mktemp("logs")
    registry = Registry(base / "eight", load_policy(test_policy_path))
    checkpoints = {}
    steps = [*rollout(model_a, model_b), Rollback(), Rollback(to=model_sha(model_b)[:12])]
    for size, step in enumerate(steps, start=1):
        apply_steps(registry, [signer], [step])
        checkpoints[size] = registry.checkpoint_path.read_bytes()
        if size == 6:
            shutil.copytree(registry.root, base / "six")
    return Logs(six=base / "six", eight=registry.root, checkpoints=checkpoints)


def copy_registry(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    return dest


@pytest.fixture
def eight(logs: Logs, tmp_path: Path) -> Path:
    """A private copy of the eight-entry log."""
    return copy_registry(logs.eight, tmp_path / "registry")


def snapshot(root: Path) -> dict[str, str]:
    """Every file under the registry, by relative name, with its sha256."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def entry(root: Path, position: int) -> Path:
    return root / "log" / f"{position:08d}.json"


def entry_statement(root: Path, position: int) -> dict[str, Any]:
    (envelope,) = read_envelopes(entry(root, position))
    return json.loads(envelope.payload)


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def edit_envelope(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    envelope = json.loads(path.read_text())
    edit(envelope)
    path.write_text(json.dumps(envelope) + "\n")


# ---------------------------------------------------------------------------
# Running the CLI, and what a refusal must look like


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


def retrain(
    capsys: pytest.CaptureFixture[str], registry: Path, policy: Path, *args: object
) -> Outcome:
    """``retrain ARGS --registry REGISTRY --policy POLICY`` in-process."""
    argv = [*map(str, args), "--registry", str(registry), "--policy", str(policy)]
    if args[0] == "promote":
        argv += ["--repo", str(REPO_ROOT)]
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return Outcome(code, out, err)


def run_installed(registry: Path, policy: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """The installed ``retrain`` command, as a user runs it."""
    argv = [*map(str, args), "--registry", str(registry), "--policy", str(policy)]
    if args[0] == "promote":
        argv += ["--repo", str(REPO_ROOT)]
    return subprocess.run(
        [str(RETRAIN), *argv],
        cwd=REPO_ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_refused(outcome: Outcome, reasons: int) -> list[str]:
    """Exit 1, nothing on stdout, and one ``retrain: error:`` line per reason."""
    assert outcome.exit_code == 1, outcome.stderr
    assert outcome.stdout == ""
    lines = outcome.stderr.splitlines()
    assert all(line.startswith("retrain: error: ") for line in lines), lines
    assert len(lines) == reasons, lines
    return [line.removeprefix("retrain: error: ") for line in lines]


def refused_and_unchanged(
    capsys: pytest.CaptureFixture[str],
    registry: Path,
    policy: Path,
    args: Sequence[object],
    reasons: int,
) -> list[str]:
    """The command is refused with ``reasons`` lines and no file of the registry changes."""
    before = snapshot(registry)
    lines = assert_refused(retrain(capsys, registry, policy, *args), reasons)
    assert snapshot(registry) == before
    return lines


def assert_audit_finds(
    capsys: pytest.CaptureFixture[str], registry: Path, policy: Path, *expected: str
) -> str:
    """``retrain audit`` exits 1 with one line containing each of ``expected``."""
    outcome = retrain(capsys, registry, policy, "audit")
    assert outcome.exit_code == 1, outcome.stdout + outcome.stderr
    (line,) = outcome.stderr.splitlines()
    assert line.startswith("retrain: audit: "), line
    for text in expected:
        assert text in line, line
    return line


# ---------------------------------------------------------------------------
# The happy path


def test_staged_rollout_of_two_models_leaves_the_second_in_production_at_full_traffic(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    test_policy_path: Path,
    test_signing_key: KeyPairPaths,
    model_a: Path,
    model_b: Path,
) -> None:
    registry = tmp_path / "registry"
    for step in rollout(model_a, model_b):
        assert isinstance(step, Promote)
        traffic = [] if step.traffic is None else ["--traffic", step.traffic]
        outcome = retrain(
            capsys, registry, test_policy_path, "promote", step.model, "--to", step.stage, *traffic
        )
        assert outcome.exit_code == 0, outcome.stderr

    status = retrain(capsys, registry, test_policy_path, "status", "--json")

    assert status.exit_code == 0, status.stderr
    state = json.loads(status.stdout)
    b = model_sha(model_b)
    assert state["size"] == 6
    assert state["stages"]["production"]["model"] == b
    assert state["stages"]["production"]["traffic"] == 100
    assert state["stages"]["canary"] is None and state["stages"]["shadow"] is None
    assert state["productionHistory"] == [model_sha(model_a), b]
    assert state["signers"]["production"] == [f"test-signer ({test_signing_key.keyid[:12]})"]


def test_promote_reports_the_model_stage_and_entry_it_wrote(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, test_policy_path: Path, model_a: Path
) -> None:
    outcome = retrain(
        capsys, tmp_path / "registry", test_policy_path, "promote", model_a, "--to", "shadow"
    )

    assert outcome.exit_code == 0, outcome.stderr
    assert (
        f"promoted {model_sha(model_a)[:12]} to shadow (entry 1)" in outcome.stdout + outcome.stderr
    )
    shadow = next(line for line in outcome.stdout.splitlines() if line.startswith("shadow "))
    assert shadow.split()[1:3] == [model_sha(model_a)[:12], "mirror"]


def test_status_shows_the_canary_split_beside_production(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    test_policy_path: Path,
    signer: Any,
    model_a: Path,
    model_b: Path,
) -> None:
    registry = registry_with(
        tmp_path / "registry",
        test_policy_path,
        signer,
        [*rollout(model_a, model_b)[:4], Promote(model_b, "canary", 20)],
    )

    outcome = retrain(capsys, registry, test_policy_path, "status")

    assert outcome.exit_code == 0, outcome.stderr
    rows = {line.split()[0]: line.split() for line in outcome.stdout.splitlines()[1:4]}
    assert rows["production"][1:3] == [model_sha(model_a)[:12], "80%"]
    assert rows["canary"][1:3] == [model_sha(model_b)[:12], "20%"]
    assert rows["shadow"][1] == "-"


def test_rollback_without_target_puts_the_previous_production_model_back(
    capsys: pytest.CaptureFixture[str], logs: Logs, tmp_path: Path, test_policy_path: Path
) -> None:
    registry = copy_registry(logs.six, tmp_path / "registry")
    a = entry_statement(registry, 3)["predicate"]["model"]["sha256"]

    outcome = retrain(capsys, registry, test_policy_path, "rollback")

    assert outcome.exit_code == 0, outcome.stderr
    assert f"rolled production back to {a[:12]} (entry 7)" in outcome.stdout + outcome.stderr
    state = json.loads(retrain(capsys, registry, test_policy_path, "status", "--json").stdout)
    assert state["stages"]["production"]["model"] == a
    assert state["stages"]["production"]["position"] == 7


def test_rollback_to_a_named_earlier_production_model_by_sha_prefix(
    capsys: pytest.CaptureFixture[str],
    logs: Logs,
    tmp_path: Path,
    test_policy_path: Path,
    model_b: Path,
) -> None:
    registry = copy_registry(logs.six, tmp_path / "registry")
    assert retrain(capsys, registry, test_policy_path, "rollback").exit_code == 0
    b = model_sha(model_b)

    outcome = retrain(capsys, registry, test_policy_path, "rollback", "--to", b[:12])

    assert outcome.exit_code == 0, outcome.stderr
    assert f"rolled production back to {b[:12]} (entry 8)" in outcome.stdout + outcome.stderr
    state = json.loads(retrain(capsys, registry, test_policy_path, "status", "--json").stdout)
    assert state["stages"]["production"]["model"] == b


def test_rollback_takes_well_under_a_second(
    logs: Logs, tmp_path: Path, test_policy_path: Path, signer: Any
) -> None:
    registry = Registry(
        copy_registry(logs.six, tmp_path / "registry"), load_policy(test_policy_path)
    )

    start = time.perf_counter()
    registry.rollback(signers=[signer])
    seconds = time.perf_counter() - start

    assert seconds < 0.5, f"rollback took {seconds:.3f} s"


def test_history_lists_every_entry_oldest_first(
    capsys: pytest.CaptureFixture[str],
    eight: Path,
    test_policy_path: Path,
    model_a: Path,
    model_b: Path,
) -> None:
    a, b = model_sha(model_a), model_sha(model_b)

    outcome = retrain(capsys, eight, test_policy_path, "history", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    entries = json.loads(outcome.stdout)
    assert [
        (e["log"]["position"], e["action"], e["stage"], e["traffic"], e["model"]["sha256"])
        for e in entries
    ] == [
        (1, "promote", "shadow", 0, a),
        (2, "promote", "canary", 10, a),
        (3, "promote", "production", 100, a),
        (4, "promote", "shadow", 0, b),
        (5, "promote", "canary", 20, b),
        (6, "promote", "production", 100, b),
        (7, "rollback", "production", 100, a),
        (8, "rollback", "production", 100, b),
    ]
    assert [e["log"]["previousEntry"] for e in entries[1:]] == [e["hash"] for e in entries[:-1]]
    plain = retrain(capsys, eight, test_policy_path, "history")
    assert len(plain.stdout.splitlines()) == 8


def test_audit_passes_on_an_untampered_log(
    capsys: pytest.CaptureFixture[str], eight: Path, test_policy_path: Path
) -> None:
    outcome = retrain(capsys, eight, test_policy_path, "audit")

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.startswith("OK: 8 entries and 2 models verify against ")


def test_promote_json_prints_only_json_on_stdout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, test_policy_path: Path, model_a: Path
) -> None:
    outcome = retrain(
        capsys,
        tmp_path / "registry",
        test_policy_path,
        "promote",
        model_a,
        "--to",
        "shadow",
        "--json",
    )

    assert outcome.exit_code == 0, outcome.stderr
    assert json.loads(outcome.stdout)["size"] == 1


def test_rollback_json_prints_only_json_on_stdout(
    capsys: pytest.CaptureFixture[str], logs: Logs, tmp_path: Path, test_policy_path: Path
) -> None:
    registry = copy_registry(logs.six, tmp_path / "registry")

    outcome = retrain(capsys, registry, test_policy_path, "rollback", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    assert json.loads(outcome.stdout)["size"] == 7


# ---------------------------------------------------------------------------
# Refused: the model's chain does not verify


@pytest.fixture
def model_copy(model_a: Path, tmp_path: Path) -> Path:
    """A private copy of model A to tamper with."""
    return copy_model(model_a, tmp_path / "candidate")


def test_promote_refuses_a_model_without_attestations(
    capsys: pytest.CaptureFixture[str], eight: Path, test_policy_path: Path, model_a: Path
) -> None:
    bare = eight.parent / "bare"
    bare.mkdir()
    shutil.copyfile(model_a / "model.rtm", bare / "model.rtm")

    lines = refused_and_unchanged(
        capsys, eight, test_policy_path, ["promote", bare, "--to", "shadow"], 4
    )

    for line, link in zip(lines, ("dataset", "holdout", "build", "evaluation"), strict=True):
        assert line.startswith(f"[{link}] link-present: "), line
        assert LINK_FILES[link] in line, line


def test_promote_refuses_a_model_whose_bytes_changed_after_signing(
    capsys: pytest.CaptureFixture[str], eight: Path, test_policy_path: Path, model_copy: Path
) -> None:
    flip_byte(model_copy / "model.rtm")

    lines = refused_and_unchanged(
        capsys, eight, test_policy_path, ["promote", model_copy, "--to", "shadow"], 3
    )

    assert [line.split(": ")[0] for line in lines] == [
        "[build] subject-digest",
        "[build] model-bundle",
        "[evaluation] subject-digest",
    ]
    assert all("expected " in line and ", found " in line for line in lines[::2]), lines


def test_promote_refuses_a_model_whose_provenance_payload_was_edited(
    capsys: pytest.CaptureFixture[str], eight: Path, test_policy_path: Path, model_copy: Path
) -> None:
    path = model_copy / LINK_FILES["build"]
    envelope = json.loads(path.read_text().splitlines()[0])
    payload = base64.b64decode(envelope["payload"])
    assert payload.count(b"//models:candidate") == 1
    envelope["payload"] = base64.b64encode(
        payload.replace(b"//models:candidate", b"//models:candidatf")
    ).decode()
    path.write_text(json.dumps(envelope) + "\n")

    (line,) = refused_and_unchanged(
        capsys, eight, test_policy_path, ["promote", model_copy, "--to", "shadow"], 1
    )

    assert line.startswith("[build] signature-threshold: "), line
    assert "expected 1 of [test-signer" in line and "found 0" in line, line


def test_promote_refuses_a_validly_signed_evaluation_whose_gates_failed(
    capsys: pytest.CaptureFixture[str],
    eight: Path,
    test_policy_path: Path,
    model_copy: Path,
    signer: Any,
) -> None:
    (envelope,) = read_envelopes(model_copy / LINK_FILES["evaluation"])
    statement = json.loads(envelope.payload)
    predicate = statement["predicate"]
    first = predicate["results"]["gates"]["verdicts"][0]
    first["status"] = "failed"
    failed = f"{first['name']}[{first['slice']}]" if first["slice"] else str(first["name"])
    predicate["gates"] = {"passed": False, "failed": [failed]}
    predicate["results"]["gates"]["passed"] = False
    sign_chain(model_copy, {"evaluation": json.dumps(statement).encode()}, [signer])

    (line,) = refused_and_unchanged(
        capsys, eight, test_policy_path, ["promote", model_copy, "--to", "shadow"], 1
    )

    assert line == (
        "[evaluation] gates: 1 validation gate(s) failed: "
        f"expected every gate passed or skipped, found {failed}"
    )


def test_a_refused_first_promotion_creates_no_registry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, test_policy_path: Path, model_a: Path
) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copyfile(model_a / "model.rtm", bare / "model.rtm")
    registry = tmp_path / "registry"

    assert_refused(
        retrain(capsys, registry, test_policy_path, "promote", bare, "--to", "shadow"), 4
    )

    assert not registry.exists(), snapshot(registry)


# ---------------------------------------------------------------------------
# Refused: who promotes, and the promotion rules


def test_promote_refuses_an_approver_whose_key_the_policy_does_not_list(
    capsys: pytest.CaptureFixture[str],
    eight: Path,
    test_policy_path: Path,
    rogue_key: KeyPairPaths,
    model_a: Path,
) -> None:
    (line,) = refused_and_unchanged(
        capsys,
        eight,
        test_policy_path,
        ["promote", model_a, "--to", "shadow", "--key", rogue_key.private],
        1,
    )

    assert line == (
        f"key {rogue_key.keyid[:12]} is not in the trust policy {test_policy_path}: it cannot approve"
    )


def test_promote_refuses_an_extra_approver_whose_key_the_policy_does_not_list(
    capsys: pytest.CaptureFixture[str],
    eight: Path,
    test_policy_path: Path,
    test_signing_key: KeyPairPaths,
    rogue_key: KeyPairPaths,
    model_a: Path,
) -> None:
    """An unknown key beside an allowed one would make an entry no reader accepts."""
    (line,) = refused_and_unchanged(
        capsys,
        eight,
        test_policy_path,
        [
            "promote",
            model_a,
            "--to",
            "shadow",
            "--key",
            test_signing_key.private,
            "--key",
            rogue_key.private,
        ],
        1,
    )

    assert line.startswith(f"key {rogue_key.keyid[:12]} is not in the trust policy "), line


def test_rollback_refuses_an_approver_whose_key_the_policy_does_not_list(
    capsys: pytest.CaptureFixture[str],
    eight: Path,
    test_policy_path: Path,
    rogue_key: KeyPairPaths,
) -> None:
    (line,) = refused_and_unchanged(
        capsys, eight, test_policy_path, ["rollback", "--key", rogue_key.private], 1
    )

    assert line.startswith(f"key {rogue_key.keyid[:12]} is not in the trust policy "), line


@dataclass(frozen=True)
class TwoKeyPolicies:
    """Later versions of the session's policy: both keys listed and trusted for every step.

    ``lenient`` (version 2) lets either key promote and roll back; ``strict``
    (version 3, in force from STRICT_FROM) lets only the session key.
    """

    second: KeyPairPaths
    lenient: Path
    strict: Path


STRICT_FROM = datetime(2026, 1, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def two_key_policies(
    test_signing_key: KeyPairPaths,
    test_policy_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> TwoKeyPolicies:
    home = tmp_path_factory.mktemp("two-keys")
    second = generate_key_pair(home / "second.pem")
    keys = [
        ("test-signer", test_signing_key.public.read_text()),
        ("second", second.public.read_text()),
    ]
    both = TrustPolicy.for_keys(keys, expires=FAR_FUTURE, allow_dirty=STAGES)
    write_successor(home / "lenient.json", test_policy_path, both, test_signing_key)
    only_session = TrustPolicy.for_keys(
        keys, expires=FAR_FUTURE, allow_dirty=STAGES, not_before=STRICT_FROM
    )
    raw = only_session.to_dict()
    for rule in [*raw["promotion"]["stages"].values(), raw["promotion"]["rollback"]]:
        rule["functionaries"] = [test_signing_key.keyid]
    strict = TrustPolicy.from_dict(raw, where="strict")
    write_successor(home / "strict.json", home / "lenient.json", strict, test_signing_key)
    return TwoKeyPolicies(second, home / "lenient.json", home / "strict.json")


def test_promote_refuses_a_listed_key_the_promotion_rules_do_not_allow(
    capsys: pytest.CaptureFixture[str],
    eight: Path,
    two_key_policies: TwoKeyPolicies,
    test_signing_key: KeyPairPaths,
    model_a: Path,
) -> None:
    second = two_key_policies.second

    (line,) = refused_and_unchanged(
        capsys,
        eight,
        two_key_policies.strict,
        ["promote", model_a, "--to", "shadow", "--key", second.private],
        1,
    )

    assert line == (
        "not enough approvers to promote to shadow: expected 1 of "
        f"[test-signer ({test_signing_key.keyid[:12]})], found 0 "
        f"(second ({second.keyid[:12]}) not allowed)"
    )


@pytest.fixture
def a_in_shadow(tmp_path: Path, test_policy_path: Path, signer: Any, model_a: Path) -> Path:
    return registry_with(
        tmp_path / "registry", test_policy_path, signer, [Promote(model_a, "shadow")]
    )


def test_promote_refuses_skipping_canary_on_the_way_to_production(
    capsys: pytest.CaptureFixture[str], a_in_shadow: Path, test_policy_path: Path, model_a: Path
) -> None:
    (line,) = refused_and_unchanged(
        capsys, a_in_shadow, test_policy_path, ["promote", model_a, "--to", "production"], 1
    )

    assert line == (
        f"model {model_sha(model_a)[:12]} skips a stage: promotion to production: "
        "expected it to have reached canary, found shadow"
    )


def test_promote_refuses_a_candidate_straight_to_canary(
    capsys: pytest.CaptureFixture[str], a_in_shadow: Path, test_policy_path: Path, model_b: Path
) -> None:
    (line,) = refused_and_unchanged(
        capsys, a_in_shadow, test_policy_path, ["promote", model_b, "--to", "canary"], 1
    )

    assert (
        "skips a stage: promotion to canary: expected it to have reached shadow, found no stage"
        in line
    )


def test_promote_refuses_canary_traffic_above_the_policys_maximum(
    capsys: pytest.CaptureFixture[str], a_in_shadow: Path, test_policy_path: Path, model_a: Path
) -> None:
    (line,) = refused_and_unchanged(
        capsys,
        a_in_shadow,
        test_policy_path,
        ["promote", model_a, "--to", "canary", "--traffic", 51],
        1,
    )

    assert line == "traffic for canary: expected 1..50%, found 51%"


def test_promote_refuses_the_model_already_serving_that_stage_at_that_traffic(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    test_policy_path: Path,
    signer: Any,
    model_a: Path,
) -> None:
    registry = registry_with(
        tmp_path / "registry",
        test_policy_path,
        signer,
        [Promote(model_a, "shadow"), Promote(model_a, "canary", 10)],
    )

    (line,) = refused_and_unchanged(
        capsys,
        registry,
        test_policy_path,
        ["promote", model_a, "--to", "canary", "--traffic", 10],
        1,
    )

    assert line == f"model {model_sha(model_a)[:12]} already serves canary at 10%"


def test_rollback_refuses_a_model_that_never_served_production(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    test_policy_path: Path,
    signer: Any,
    model_a: Path,
    model_b: Path,
) -> None:
    registry = registry_with(
        tmp_path / "registry",
        test_policy_path,
        signer,
        [*rollout(model_a, model_b)[:3], Promote(model_b, "shadow")],
    )
    a, b = model_sha(model_a), model_sha(model_b)

    (line,) = refused_and_unchanged(
        capsys, registry, test_policy_path, ["rollback", "--to", b[:12]], 1
    )

    assert line == (
        f"rollback target {b[:12]} was never attested for production: expected one of {a[:12]}"
    )


def test_rollback_refuses_when_nothing_earlier_served_production(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    test_policy_path: Path,
    signer: Any,
    model_a: Path,
) -> None:
    registry = registry_with(
        tmp_path / "registry",
        test_policy_path,
        signer,
        [
            Promote(model_a, "shadow"),
            Promote(model_a, "canary", 10),
            Promote(model_a, "production"),
        ],
    )

    (line,) = refused_and_unchanged(capsys, registry, test_policy_path, ["rollback"], 1)

    assert line == "no earlier production model to roll back to"


def test_rollback_refuses_a_target_whose_stored_copy_changed(
    capsys: pytest.CaptureFixture[str], eight: Path, test_policy_path: Path, model_a: Path
) -> None:
    a = model_sha(model_a)
    flip_byte(eight / "models" / a / "model.rtm")

    (line,) = refused_and_unchanged(
        capsys, eight, test_policy_path, ["rollback", "--to", a[:12]], 1
    )

    assert "is not the rollback target" in line and f"expected sha256 {a}" in line


def test_rollback_refuses_a_target_whose_store_holds_another_model(
    capsys: pytest.CaptureFixture[str],
    eight: Path,
    test_policy_path: Path,
    model_a: Path,
    model_b: Path,
) -> None:
    a, b = model_sha(model_a), model_sha(model_b)
    shutil.rmtree(eight / "models" / a)
    shutil.copytree(eight / "models" / b, eight / "models" / a)

    (line,) = refused_and_unchanged(capsys, eight, test_policy_path, ["rollback", "--to", a], 1)

    assert a[:12] in line


# ---------------------------------------------------------------------------
# Refused: the log itself holds what a write must not build on


def test_promote_refuses_a_replayed_entry_after_the_committed_ones(
    capsys: pytest.CaptureFixture[str], eight: Path, test_policy_path: Path, model_a: Path
) -> None:
    shutil.copyfile(entry(eight, 1), entry(eight, 9))

    (line,) = refused_and_unchanged(
        capsys, eight, test_policy_path, ["promote", model_a, "--to", "shadow"], 1
    )

    assert line.startswith("the log has an uncommitted entry that does not verify: "), line
    assert "entry 9 claims another position: expected 9, found 1" in line


def forge_next_entry(root: Path, signers: Sequence[Any], approvers: Sequence[str]) -> Path:
    """A well-formed entry after the last one, chained to it, signed by ``signers``."""
    size = len(list((root / "log").iterdir()))
    statement = entry_statement(root, size)
    statement["predicate"]["log"] = {
        "position": size + 1,
        "previousEntry": "sha256:" + hashlib.sha256(entry(root, size).read_bytes()).hexdigest(),
    }
    statement["predicate"]["approvers"] = sorted(approvers)
    envelope = sign_statement(json.dumps(statement).encode(), signers)
    path = entry(root, size + 1)
    path.write_bytes(serialize_envelopes([envelope]))
    return path


def test_promote_refuses_a_forged_entry_after_the_committed_ones(
    capsys: pytest.CaptureFixture[str],
    eight: Path,
    test_policy_path: Path,
    rogue_key: KeyPairPaths,
    model_a: Path,
) -> None:
    forge_next_entry(eight, [load_signer(rogue_key.private)], [rogue_key.keyid])

    (line,) = refused_and_unchanged(
        capsys, eight, test_policy_path, ["promote", model_a, "--to", "shadow"], 1
    )

    assert line.startswith("the log has an uncommitted entry that does not verify: "), line
    assert "entry 9: approvers are not the keys whose signatures verify" in line


def test_promote_refuses_to_discard_more_than_one_uncommitted_entry(
    capsys: pytest.CaptureFixture[str],
    eight: Path,
    logs: Logs,
    test_policy_path: Path,
    model_a: Path,
) -> None:
    (eight / "checkpoint.json").write_bytes(logs.checkpoints[6])

    refused_and_unchanged(
        capsys, eight, test_policy_path, ["promote", model_a, "--to", "shadow"], 1
    )


# ---------------------------------------------------------------------------
# Refused: a policy without a promotion section lets nobody promote or roll back


@pytest.fixture
def policy_without_promotion(
    test_policy_path: Path, test_signing_key: KeyPairPaths, tmp_path: Path
) -> Path:
    """The next version of the session's policy, without a promotion section."""
    raw = json.loads(test_policy_path.read_text())["signed"]
    del raw["promotion"]
    policy = TrustPolicy.from_dict(raw, where="no-promotion")
    return write_successor(
        tmp_path / "no-promotion.json", test_policy_path, policy, test_signing_key
    )


NO_PROMOTION = "the trust policy has no promotion section: nobody may promote or roll back"


def test_policy_without_promotion_section_refuses_a_first_promotion(
    capsys: pytest.CaptureFixture[str],
    policy_without_promotion: Path,
    model_a: Path,
    tmp_path: Path,
) -> None:
    registry = tmp_path / "registry"

    outcome = retrain(
        capsys, registry, policy_without_promotion, "promote", model_a, "--to", "shadow"
    )

    assert outcome.exit_code == 1
    assert outcome.stderr.splitlines() == [f"retrain: error: {NO_PROMOTION}"]
    assert not (registry / "log").exists() and not (registry / "checkpoint.json").exists()


def test_policy_without_promotion_section_refuses_promoting_on_a_populated_registry(
    capsys: pytest.CaptureFixture[str], eight: Path, policy_without_promotion: Path, model_a: Path
) -> None:
    (line,) = refused_and_unchanged(
        capsys, eight, policy_without_promotion, ["promote", model_a, "--to", "shadow"], 1
    )

    assert line in (
        NO_PROMOTION,
        f"{eight / 'checkpoint.json'}: checkpoint is not signed by a key the policy allows to "
        "promote or roll back",
    )


def test_policy_without_promotion_section_refuses_rollback(
    capsys: pytest.CaptureFixture[str], eight: Path, policy_without_promotion: Path
) -> None:
    (line,) = refused_and_unchanged(capsys, eight, policy_without_promotion, ["rollback"], 1)

    assert "checkpoint is not signed by a key the policy allows" in line or NO_PROMOTION in line


# ---------------------------------------------------------------------------
# The installed command: refusals without a traceback


def test_installed_command_refuses_an_unattested_model_without_a_traceback(
    eight: Path, test_policy_path: Path, model_a: Path
) -> None:
    bare = eight.parent / "bare"
    bare.mkdir()
    shutil.copyfile(model_a / "model.rtm", bare / "model.rtm")
    before = snapshot(eight)

    proc = run_installed(eight, test_policy_path, "promote", bare, "--to", "shadow")

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 4 and all(line.startswith("retrain: error: [") for line in lines), lines
    assert snapshot(eight) == before


def test_installed_command_refuses_an_unauthorized_promoter_without_a_traceback(
    eight: Path, test_policy_path: Path, rogue_key: KeyPairPaths, model_b: Path
) -> None:
    before = snapshot(eight)

    proc = run_installed(
        eight, test_policy_path, "promote", model_b, "--to", "shadow", "--key", rogue_key.private
    )

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(
        f"retrain: error: key {rogue_key.keyid[:12]} is not in the trust policy "
    ), line
    assert snapshot(eight) == before


def test_installed_command_audit_names_the_broken_entry_without_a_traceback(
    eight: Path, test_policy_path: Path
) -> None:
    entry(eight, 4).unlink()

    proc = run_installed(eight, test_policy_path, "audit")

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        "retrain: audit: entry 4 is missing: the checkpoint commits 8 entries, the log holds 7"
    ]


def audit_installed(registry: Path, policy: Path) -> str:
    """``retrain audit`` as the installed command: exit 1, one line, no traceback."""
    proc = run_installed(registry, policy, "audit")
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("retrain: audit: "), line
    return line


def test_installed_command_audit_reports_an_entry_nested_too_deep_without_a_traceback(
    eight: Path, test_policy_path: Path
) -> None:
    entry(eight, 4).write_text("[" * 100_000 + "]" * 100_000)

    assert "entry 4" in audit_installed(eight, test_policy_path)


def test_installed_command_audit_reports_a_signature_without_sig_without_a_traceback(
    eight: Path, test_policy_path: Path
) -> None:
    def drop_sig(envelope: dict[str, Any]) -> None:
        envelope["signatures"] = [{"keyid": envelope["signatures"][0]["keyid"]}]

    edit_envelope(entry(eight, 4), drop_sig)

    assert "entry 4" in audit_installed(eight, test_policy_path)


# ---------------------------------------------------------------------------
# Tampering with the log: found by the audit, which names the entry


def test_audit_finds_an_entry_whose_payload_lost_one_base64_character(
    capsys: pytest.CaptureFixture[str], eight: Path, test_policy_path: Path
) -> None:
    def change_one_character(envelope: dict[str, Any]) -> None:
        payload = envelope["payload"]
        middle = len(payload) // 2
        other = "B" if payload[middle] != "B" else "C"
        envelope["payload"] = payload[:middle] + other + payload[middle + 1 :]

    edit_envelope(entry(eight, 4), change_one_character)

    assert_audit_finds(capsys, eight, test_policy_path, "entry 4")


def test_audit_finds_an_entry_reserialized_with_other_traffic_under_its_old_signature(
    capsys: pytest.CaptureFixture[str], eight: Path, test_policy_path: Path
) -> None:
    def raise_traffic(envelope: dict[str, Any]) -> None:
        statement = json.loads(base64.b64decode(envelope["payload"]))
        assert statement["predicate"]["traffic"] == 20
        statement["predicate"]["traffic"] = 30
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()

    edit_envelope(entry(eight, 5), raise_traffic)

    assert_audit_finds(
        capsys,
        eight,
        test_policy_path,
        "entry 5: approvers are not the keys whose signatures verify",
        "expected a valid signature",
    )


def test_audit_finds_an_entry_deleted_from_the_middle(
    capsys: pytest.CaptureFixture[str], eight: Path, test_policy_path: Path
) -> None:
    entry(eight, 4).unlink()

    assert_audit_finds(capsys, eight, test_policy_path, "entry 4 is missing")


def test_audit_finds_two_entries_swapped(
    capsys: pytest.CaptureFixture[str], eight: Path, test_policy_path: Path
) -> None:
    fourth, fifth = entry(eight, 4).read_bytes(), entry(eight, 5).read_bytes()
    entry(eight, 4).write_bytes(fifth)
    entry(eight, 5).write_bytes(fourth)

    assert_audit_finds(
        capsys, eight, test_policy_path, "entry 4 claims another position: expected 4, found 5"
    )


def test_audit_finds_the_last_committed_entry_deleted(
    capsys: pytest.CaptureFixture[str], eight: Path, test_policy_path: Path
) -> None:
    entry(eight, 8).unlink()

    assert_audit_finds(
        capsys, eight, test_policy_path, "entry 8, the checkpoint's head, is missing"
    )


def test_audit_finds_a_checkpoint_rolled_back_past_two_entries(
    capsys: pytest.CaptureFixture[str], eight: Path, logs: Logs, test_policy_path: Path
) -> None:
    (eight / "checkpoint.json").write_bytes(logs.checkpoints[6])

    assert_audit_finds(
        capsys,
        eight,
        test_policy_path,
        "entry 8 beyond the checkpoint does not follow the committed head",
    )


@pytest.mark.xfail(
    strict=True,
    reason=(
        "gap: an older checkpoint with one committed entry after it looks exactly like an "
        "interrupted write; the audit notes it and passes (and the next promotion deletes it)"
    ),
)
def test_audit_finds_a_checkpoint_rolled_back_by_one_entry(
    capsys: pytest.CaptureFixture[str], eight: Path, logs: Logs, test_policy_path: Path
) -> None:
    (eight / "checkpoint.json").write_bytes(logs.checkpoints[7])

    assert_audit_finds(capsys, eight, test_policy_path, "entry 8")


@pytest.mark.xfail(
    strict=True,
    reason=(
        "gap: the last entry and the checkpoint rolled back together leave a consistent, "
        "shorter log; only a witness outside the registry (git history) can tell"
    ),
)
def test_audit_finds_the_last_entry_and_its_checkpoint_both_rolled_back(
    capsys: pytest.CaptureFixture[str], eight: Path, logs: Logs, test_policy_path: Path
) -> None:
    entry(eight, 8).unlink()
    (eight / "checkpoint.json").write_bytes(logs.checkpoints[7])

    assert_audit_finds(capsys, eight, test_policy_path, "entry 8")


def test_audit_finds_a_forged_entry_signed_by_an_unknown_key(
    capsys: pytest.CaptureFixture[str],
    eight: Path,
    test_policy_path: Path,
    rogue_key: KeyPairPaths,
) -> None:
    forge_next_entry(eight, [load_signer(rogue_key.private)], [rogue_key.keyid])

    assert_audit_finds(
        capsys,
        eight,
        test_policy_path,
        "beyond the checkpoint",
        "entry 9: approvers are not the keys whose signatures verify",
    )


def test_audit_finds_a_forged_unsigned_entry(
    capsys: pytest.CaptureFixture[str],
    eight: Path,
    test_policy_path: Path,
    test_signing_key: KeyPairPaths,
) -> None:
    forge_next_entry(eight, [], [test_signing_key.keyid])

    assert_audit_finds(
        capsys,
        eight,
        test_policy_path,
        "entry 9: approvers are not the keys whose signatures verify",
        "expected a valid signature",
    )


def _lenient_rollout(registry: Registry, session: Any, other: Any, model: Path) -> None:
    """Shadow on 1 January, canary by the second key on 3 January, production on 4 January."""
    for stage, signer, day in (
        ("shadow", session, 1),
        ("canary", other, 3),
        ("production", session, 4),
    ):
        registry.promote(
            model, stage, signers=[signer], repo_root=REPO_ROOT, now=f"2026-01-0{day}T00:00:00Z"
        )


def test_audit_finds_an_entry_made_under_a_policy_version_already_replaced(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    two_key_policies: TwoKeyPolicies,
    test_signing_key: KeyPairPaths,
    model_a: Path,
) -> None:
    """Version 2 let a second key promote; version 3 took that away on 2 January."""
    registry = Registry(tmp_path / "registry", load_policy(two_key_policies.lenient))
    session, other = (
        load_signer(test_signing_key.private),
        load_signer(two_key_policies.second.private),
    )
    _lenient_rollout(registry, session, other, model_a)
    assert retrain(capsys, registry.root, two_key_policies.lenient, "audit").exit_code == 0

    assert_audit_finds(
        capsys,
        registry.root,
        two_key_policies.strict,
        "entry 2 was made at 2026-01-03T00:00:00Z under policy version 2, which version 3 "
        "replaced at 2026-01-02T00:00:00Z",
    )


def test_audit_judges_each_entry_under_the_policy_version_it_was_made_under(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    two_key_policies: TwoKeyPolicies,
    test_signing_key: KeyPairPaths,
    model_a: Path,
) -> None:
    """The same log, written before version 3 took effect, stays valid under version 3."""
    registry = Registry(tmp_path / "registry", load_policy(two_key_policies.lenient))
    session, other = (
        load_signer(test_signing_key.private),
        load_signer(two_key_policies.second.private),
    )
    registry.promote(
        model_a, "shadow", signers=[session], repo_root=REPO_ROOT, now="2026-01-01T00:00:00Z"
    )
    registry.promote(
        model_a, "canary", signers=[other], repo_root=REPO_ROOT, now="2026-01-01T12:00:00Z"
    )

    outcome = retrain(capsys, registry.root, two_key_policies.strict, "audit")

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.startswith("OK: 2 entries"), outcome.stdout


@pytest.mark.parametrize(("model", "first_entry"), [("a", 1), ("b", 4)])
def test_audit_finds_a_stored_model_whose_bytes_changed(
    capsys: pytest.CaptureFixture[str],
    eight: Path,
    test_policy_path: Path,
    model_a: Path,
    model_b: Path,
    model: str,
    first_entry: int,
) -> None:
    sha = model_sha(model_a if model == "a" else model_b)
    flip_byte(eight / "models" / sha / "model.rtm")

    assert_audit_finds(
        capsys,
        eight,
        test_policy_path,
        f"entry {first_entry}: the stored model's bytes are not {sha[:12]}",
    )


def test_audit_notes_an_interrupted_write_and_passes(
    capsys: pytest.CaptureFixture[str],
    eight: Path,
    test_policy_path: Path,
    test_signing_key: KeyPairPaths,
) -> None:
    """A signed, chained entry beyond the checkpoint is what a writer killed before commit leaves."""
    forge_next_entry(eight, [load_signer(test_signing_key.private)], [test_signing_key.keyid])

    outcome = retrain(capsys, eight, test_policy_path, "audit")

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.splitlines()[0] == (
        "note: entry 9 is beyond the checkpoint: an interrupted write, not committed"
    )


def test_promote_discards_an_interrupted_entry_and_takes_its_position(
    capsys: pytest.CaptureFixture[str],
    eight: Path,
    test_policy_path: Path,
    test_signing_key: KeyPairPaths,
    model_a: Path,
) -> None:
    forge_next_entry(eight, [load_signer(test_signing_key.private)], [test_signing_key.keyid])

    outcome = retrain(capsys, eight, test_policy_path, "promote", model_a, "--to", "shadow")

    assert outcome.exit_code == 0, outcome.stderr
    assert "note: discarded uncommitted entry 9 (an interrupted write)" in outcome.stderr
    assert entry_statement(eight, 9)["predicate"]["stage"] == "shadow"
    audit = retrain(capsys, eight, test_policy_path, "audit")
    assert audit.exit_code == 0 and "note:" not in audit.stdout, audit.stdout + audit.stderr


def test_rollback_discards_an_interrupted_entry_and_says_so(
    capsys: pytest.CaptureFixture[str],
    logs: Logs,
    tmp_path: Path,
    test_policy_path: Path,
    test_signing_key: KeyPairPaths,
) -> None:
    registry = copy_registry(logs.six, tmp_path / "registry")
    forge_next_entry(registry, [load_signer(test_signing_key.private)], [test_signing_key.keyid])

    outcome = retrain(capsys, registry, test_policy_path, "rollback")

    assert outcome.exit_code == 0, outcome.stderr
    assert "note: discarded uncommitted entry 7 (an interrupted write)" in outcome.stderr
    assert entry_statement(registry, 7)["predicate"]["action"] == "rollback"


def test_promote_fsyncs_the_model_store_after_renaming_the_model_into_it(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    test_policy_path: Path,
    signer: Any,
    model_a: Path,
) -> None:
    """Without it, a power loss after the commit could lose the directory the entry names."""
    registry = Registry(tmp_path / "registry", load_policy(test_policy_path))
    stored = registry.model_path(model_sha(model_a))
    real_fsync = os.fsync
    store_synced_with_model_in_it = []

    def fsync(fd: int) -> None:
        models = registry.models_dir
        if models.is_dir() and os.path.samestat(os.fstat(fd), models.stat()):
            store_synced_with_model_in_it.append(stored.is_dir())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    registry.promote(model_a, "shadow", signers=[signer], repo_root=REPO_ROOT)

    assert store_synced_with_model_in_it == [True]


def test_audit_finds_a_stored_model_whose_model_rtm_was_deleted(
    capsys: pytest.CaptureFixture[str], eight: Path, test_policy_path: Path, model_b: Path
) -> None:
    (eight / "models" / model_sha(model_b) / "model.rtm").unlink()

    assert_audit_finds(
        capsys,
        eight,
        test_policy_path,
        f"entry 4: the stored model's bytes are not {model_sha(model_b)[:12]}",
    )
