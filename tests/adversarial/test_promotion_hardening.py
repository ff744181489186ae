"""Promotion hardening: what ``promote`` copies, reads and records, and how the registry commands talk.

No Bazel: every model is the in-memory chain (``chain_support``) over the
manifests of a tiny repository (``promotion_support``), signed by the model
key S under a policy signed by its root R1, and every command runs through
the real ``retrain`` CLI in-process (never a traceback). "Unchanged" means
every path under the registry, by kind and sha256, is as it was; no new file.

| case | what is done | what the refusal line (or the output) says | exit |
|------|--------------|---------------------------------------------|------|
| 1 | promote a model directory with an extra README.txt, a symlink to a 0600 private key | promoted; the stored model holds no README.txt, no byte of the key is under the registry; audit OK | 0 |
| 1 | promote with model.rtm, model.sig, provenance.intoto.jsonl or dataset.intoto.jsonl a symlink or a FIFO | DIR/NAME: NAME is a symlink / is not a regular file: promotion copies only regular files: expected a regular file, found a symlink / a FIFO (registry unchanged) | 2 |
| 1 | the stored model's files and directories | files 0444 (a 0600 source: 0400), directories 0555 | 0 |
| 1 | a file planted in a stored model directory | retrain: audit: entry 1: STORED/notes.txt: a file no verified link names | 1 |
| 1 | a symlink planted in a stored model directory | retrain: audit: entry 1: STORED/README.txt: a symlink in the model store | 1 |
| 2 | promote under a policy without a holdout step, beside an unsigned holdout link whose manifest uri is ../../../etc/passwd or a list | promoted; nothing read through it, nothing written outside the registry, no holdout link stored | 0 |
| 2 | promote: the verified dataset manifest | stored at data_manifests/default.json, the repository's bytes | 0 |
| 2 | promote with the repository's data_manifests a symlink to a real directory | REPO/data_manifests/default.json: data_manifests/default.json: data_manifests is not a directory (a symlink?): manifests are copied only through real directories (registry unchanged) | 2 |
| 3 | 200 promotions while another process swaps model.rtm between the real bytes and others (slow) | each promoted model records the verified digest and its stored model.rtm has it; the rest refused | 0 / 1 |
| 7 | promote or rollback with --reason holding a newline, tab, escape, carriage return or U+2028 | --reason: the reason holds control characters: expected printable text on one line, found '\\n' (registry unchanged) | 2 |
| 7 | history of a signed entry whose reason holds a newline (written through Registry._append) | one line per entry, the reason escaped: (first\\nsecond\\x1b[0m) | 0 |
| 8 | status, history, audit of a registry with entries whose checkpoint.json was deleted | REG/checkpoint.json: the checkpoint is missing: expected a signed checkpoint committing the log, found no checkpoint, and 2 entries in REG/log (no entry blamed) | 1 |
| 8 | status, audit, promote after a first write killed after its entry (empty checkpoint, entry 1 beyond it) | status: 0 entries; audit: note: entry 1 is beyond the checkpoint: an interrupted write, not committed; promote: note: discarded uncommitted entry 1 (an interrupted write) | 0 |
| 11 | verify a build whose provenance says gitTreeState dirty | the build line ends "(dirty)" | 0 |
| 11 | promote it to canary (default allow_dirty) or production (allow_dirty shadow, canary) | model M was built from a tree that was not clean: promotion to STAGE: expected gitTreeState clean, found dirty (…) | 1 |
| 11 | promote it to shadow (default), or to production under allow_dirty for every stage | promoted | 0 |
| 12 | verify --at garbage | retrain: error: --at: expected YYYY-MM-DDTHH:MM:SSZ (UTC), found 'garbage' (--at named once) | 2 |
| 12 | verify --at 1970-01-01T00:00:00Z (policy notBefore 2020-01-01) | [policy] policy-expiry: the trust policy is not yet valid: expected a time at or after 2020-01-01T00:00:00Z, found 1970-01-01T00:00:00Z | 1 |
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from retrain.attest.keys import KeyPairPaths, generate_key_pair, load_signer
from retrain.attest.policy import TrustPolicy
from retrain.attest.promotion import STAGES, PromotionPredicate
from retrain.attest.sign import LINK_FILES
from retrain.attest.statement import PAYLOAD_TYPE
from retrain.attest.trust import load_policy
from retrain.errors import RetrainError
from retrain.registry import Registry
from tests.adversarial.promotion_support import (
    Outcome,
    Repo,
    model_files,
    promotable_chain,
    run,
    tree,
    write_model,
    write_repo,
)
from tests.policy_support import write_policy

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
NOT_BEFORE = datetime(2020, 1, 1, tzinfo=UTC)
OTHER_MODEL = b"another model's bytes"


@dataclass(frozen=True)
class Keys:
    signer: KeyPairPaths  # S: signs the chain, and promotes
    root: KeyPairPaths  # R1: signs the policy
    secret: KeyPairPaths  # a private key a model directory must never leak


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    home = tmp_path_factory.mktemp("keys")
    return Keys(
        signer=generate_key_pair(home / "signer.pem"),
        root=generate_key_pair(home / "root1.pem"),
        secret=generate_key_pair(home / "secret.pem"),
    )


@pytest.fixture(scope="module")
def signer(keys: Keys) -> Any:
    return load_signer(keys.signer.private)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return write_repo(tmp_path_factory.mktemp("repo") / "repo")


def write_signed_policy(
    path: Path,
    keys: Keys,
    *,
    steps: Sequence[str] = ("dataset", "holdout", "build", "evaluation"),
    allow_dirty: Sequence[str] = ("shadow",),
) -> Path:
    """Version 1: S signs every step and may promote; R1 is the root and signs it."""
    policy = TrustPolicy.for_keys(
        [("signer", keys.signer.public.read_text())],
        root_keys=[("root1", keys.root.public.read_text())],
        expires=FAR_FUTURE,
        not_before=NOT_BEFORE,
        steps=tuple(steps),
        allow_dirty=tuple(allow_dirty),
    )
    return write_policy(path, policy, keys.root)


@pytest.fixture(scope="module")
def policy(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_signed_policy(tmp_path_factory.mktemp("policy") / "policy.json", keys)


@pytest.fixture
def model(tmp_path: Path, repo: Repo, signer: Any) -> Path:
    """Model A: the pristine chain, promotable."""
    return write_model(tmp_path / "candidate", promotable_chain(repo), [signer])


@pytest.fixture
def model_b(tmp_path: Path, repo: Repo, signer: Any) -> Path:
    """Model B: as valid as A, other bytes."""
    files = model_files(OTHER_MODEL)
    return write_model(tmp_path / "model-b", promotable_chain(repo, files), [signer], files=files)


def sha_of(model_dir: Path) -> str:
    return hashlib.sha256((model_dir / "model.rtm").read_bytes()).hexdigest()


def promote(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    stage: str,
    registry: Path,
    policy: Path,
    keys: Keys,
    repo: Path,
    *extra: object,
) -> Outcome:
    return run(
        capsys,
        "promote",
        model_dir,
        "--to",
        stage,
        "--key",
        keys.signer.private,
        "--registry",
        registry,
        "--policy",
        policy,
        "--repo",
        repo,
        *extra,
    )


def registry_command(
    capsys: pytest.CaptureFixture[str], command: str, registry: Path, policy: Path, *extra: object
) -> Outcome:
    return run(capsys, command, *extra, "--registry", registry, "--policy", policy)


def promoted(outcome: Outcome) -> Outcome:
    assert outcome.exit_code == 0, outcome.stderr
    return outcome


def one_error_line(outcome: Outcome, exit_code: int) -> str:
    """Exit ``exit_code``, nothing on stdout, exactly one ``retrain: error:`` line."""
    assert outcome.exit_code == exit_code, outcome.stdout + outcome.stderr
    assert outcome.stdout == ""
    (line,) = outcome.lines
    assert line.startswith("retrain: error: "), line
    return line.removeprefix("retrain: error: ")


def one_audit_line(outcome: Outcome) -> str:
    assert outcome.exit_code == 1, outcome.stdout + outcome.stderr
    (line,) = outcome.lines
    assert line.startswith("retrain: audit: "), line
    return line.removeprefix("retrain: audit: ")


@pytest.fixture
def registry_with_b(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model_b: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
) -> Path:
    """A registry in which model B serves shadow: a store, a log, a checkpoint, a lock file."""
    registry = tmp_path / "registry"
    promoted(promote(capsys, model_b, "shadow", registry, policy, keys, repo.root))
    return registry


# ---------------------------------------------------------------------------
# 1. promote copies only the verified files, as regular files, read-only


def key_fragments(key: KeyPairPaths) -> list[bytes]:
    """The private key's PEM, and each line of its base64 body."""
    pem = key.private.read_bytes()
    return [pem, *(line for line in pem.splitlines() if line and not line.startswith(b"-----"))]


def test_promote_does_not_store_an_extra_file_that_is_a_symlink_to_a_private_key(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
) -> None:
    assert keys.secret.private.stat().st_mode & 0o777 == 0o600
    (model / "README.txt").symlink_to(keys.secret.private)
    registry = tmp_path / "registry"

    promoted(promote(capsys, model, "shadow", registry, policy, keys, repo.root))

    stored = registry / "models" / sha_of(model)
    assert stored.is_dir()
    assert not os.path.lexists(stored / "README.txt")
    for path in (p for p in registry.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        assert not any(fragment in data for fragment in key_fragments(keys.secret)), path


def test_audit_passes_after_promoting_a_directory_with_a_symlinked_extra_file(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
) -> None:
    (model / "README.txt").symlink_to(keys.secret.private)
    registry = tmp_path / "registry"
    promoted(promote(capsys, model, "shadow", registry, policy, keys, repo.root))

    outcome = registry_command(capsys, "audit", registry, policy)

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.startswith("OK: 1 entries and 1 models verify"), outcome.stdout


def make_symlink(path: Path) -> str:
    """``path`` becomes a symlink to a regular file elsewhere holding the same bytes."""
    elsewhere = path.parent.parent / f"elsewhere-{path.name}"
    if path.exists():
        path.rename(elsewhere)
    else:
        elsewhere.write_bytes(b"a bundle\n")
    path.symlink_to(elsewhere)
    return "a symlink"


def make_fifo(path: Path) -> str:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return "a FIFO"


@pytest.mark.parametrize(
    "name", ["model.rtm", "model.sig", "provenance.intoto.jsonl", "dataset.intoto.jsonl"]
)
@pytest.mark.parametrize("make", [make_symlink, make_fifo], ids=["symlink", "fifo"])
def test_promote_refuses_a_named_file_that_is_not_a_regular_file_and_changes_nothing(
    capsys: pytest.CaptureFixture[str],
    registry_with_b: Path,
    model: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
    name: str,
    make: Any,
) -> None:
    kind = make(model / name)
    before = tree(registry_with_b)

    line = one_error_line(
        promote(capsys, model, "shadow", registry_with_b, policy, keys, repo.root), 2
    )

    assert line.startswith(f"{model / name}: {name} "), line
    assert f"found {kind}" in line, line
    assert tree(registry_with_b) == before


def stored_modes(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
) -> dict[str, int]:
    """Promote ``model`` (its model.rtm 0600, the rest 0644) and return each stored path's mode."""
    (model / "model.rtm").chmod(0o600)
    registry = tmp_path / "registry"
    promoted(promote(capsys, model, "shadow", registry, policy, keys, repo.root))
    stored = registry / "models" / sha_of(model)
    return {
        str(p.relative_to(stored)): p.stat().st_mode & 0o7777 for p in [stored, *stored.rglob("*")]
    }


def test_stored_files_are_read_only_for_everyone(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
) -> None:
    modes = stored_modes(capsys, tmp_path, model, policy, keys, repo)

    files = {name: mode for name, mode in modes.items() if name not in (".", "data_manifests")}
    assert "data_manifests/default.json" in files
    assert {name: mode for name, mode in files.items() if name != "model.rtm"} == dict.fromkeys(
        set(files) - {"model.rtm"}, 0o444
    )


def test_a_stored_file_is_never_more_readable_than_its_source(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
) -> None:
    modes = stored_modes(capsys, tmp_path, model, policy, keys, repo)

    assert modes["model.rtm"] == 0o400


def test_stored_directories_are_read_only(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
) -> None:
    modes = stored_modes(capsys, tmp_path, model, policy, keys, repo)

    assert (modes["."], modes["data_manifests"]) == (0o555, 0o555)


@pytest.fixture
def stored_a(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
) -> Path:
    """Model A promoted to shadow; its stored directory made writable again, as an attacker would."""
    registry = tmp_path / "registry"
    promoted(promote(capsys, model, "shadow", registry, policy, keys, repo.root))
    stored = registry / "models" / sha_of(model)
    stored.chmod(0o755)
    return stored


def test_audit_names_a_file_planted_in_a_stored_model(
    capsys: pytest.CaptureFixture[str], stored_a: Path, policy: Path
) -> None:
    (stored_a / "notes.txt").write_text("not attested\n")

    line = one_audit_line(registry_command(capsys, "audit", stored_a.parent.parent, policy))

    assert line == f"entry 1: {stored_a / 'notes.txt'}: a file no verified link names"


def test_audit_names_a_symlink_planted_in_a_stored_model(
    capsys: pytest.CaptureFixture[str], stored_a: Path, policy: Path, keys: Keys
) -> None:
    (stored_a / "README.txt").symlink_to(keys.secret.private)

    line = one_audit_line(registry_command(capsys, "audit", stored_a.parent.parent, policy))

    assert line == f"entry 1: {stored_a / 'README.txt'}: a symlink in the model store"


# ---------------------------------------------------------------------------
# 2. A link the policy does not require is never read; manifests only through real directories


def unsigned_holdout_envelope(repo: Repo, uri: object) -> bytes:
    statement = promotable_chain(repo).statements["holdout"]
    statement["predicate"]["manifest"]["uri"] = uri
    payload = json.dumps(statement).encode()
    envelope = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [],
    }
    return (json.dumps(envelope) + "\n").encode()


@pytest.mark.parametrize(
    "uri",
    ["../../../etc/passwd", ["data_manifests/holdout.json", "../../../etc/passwd"]],
    ids=["dotdot", "list"],
)
def test_promote_never_follows_an_unsigned_holdout_link_the_policy_does_not_require(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    keys: Keys,
    signer: Any,
    uri: object,
) -> None:
    # From tmp/a/b/repo, ../../../etc/passwd is tmp/etc/passwd: a file that is there to be taken.
    repo = write_repo(tmp_path / "a" / "b" / "repo")
    secret = tmp_path / "etc" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:the secret the holdout link points at:/root:/bin/sh\n")
    policy = write_signed_policy(
        tmp_path / "policy.json", keys, steps=("dataset", "build", "evaluation")
    )
    model_dir = write_model(
        tmp_path / "candidate",
        promotable_chain(repo, holdout=False),
        [signer],
        links=("dataset", "build", "evaluation"),
    )
    (model_dir / LINK_FILES["holdout"]).write_bytes(unsigned_holdout_envelope(repo, uri))
    registry = tmp_path / "r" / "registry"
    before = tree(tmp_path)
    taboo = [secret.read_bytes()]
    if os.access("/etc/passwd", os.R_OK):
        taboo.append(Path("/etc/passwd").read_bytes())

    promoted(promote(capsys, model_dir, "shadow", registry, policy, keys, repo.root))

    stored = registry / "models" / sha_of(model_dir)
    assert not os.path.lexists(stored / LINK_FILES["holdout"])
    for path in (p for p in registry.rglob("*") if p.is_file() and not p.is_symlink()):
        assert path.read_bytes() not in taboo, path
    after = tree(tmp_path)
    new = sorted(set(after) - set(before))
    assert [k for k in new if k != "r" and not k.startswith("r/registry")] == []
    assert {k: after[k] for k in before} == before


def test_promote_stores_the_verified_dataset_manifest_at_its_uri(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    model: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
) -> None:
    registry = tmp_path / "registry"

    promoted(promote(capsys, model, "shadow", registry, policy, keys, repo.root))

    stored = registry / "models" / sha_of(model) / "data_manifests" / "default.json"
    assert stored.read_bytes() == (repo.root / "data_manifests" / "default.json").read_bytes()


def test_promote_refuses_a_manifest_reached_through_a_symlinked_directory(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    registry_with_b: Path,
    model: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
) -> None:
    linked = write_repo(tmp_path / "linked-repo")
    (linked.root / "data_manifests").rename(linked.root / "real-manifests")
    (linked.root / "data_manifests").symlink_to(linked.root / "real-manifests")
    # The same datasets as the module's repository: the chain verifies through the link.
    assert linked.manifests == repo.manifests
    before = tree(registry_with_b)

    line = one_error_line(
        promote(capsys, model, "shadow", registry_with_b, policy, keys, linked.root), 2
    )

    manifest = linked.root / "data_manifests" / "default.json"
    assert line == (
        f"{manifest}: data_manifests/default.json: data_manifests is not a directory "
        "(a symlink?): manifests are copied only through real directories"
    )
    assert tree(registry_with_b) == before


# ---------------------------------------------------------------------------
# 3. A model.rtm swapped during promotion never reaches the registry under another digest

SWAPPER = r"""
import os, sys
model, real, other = sys.argv[1], open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
tmp = os.path.join(os.path.dirname(os.path.dirname(model)), "swap.tmp")  # not in the model dir
flag = sys.argv[4]
swaps = 0
while True:
    for data in (other, real):
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, model)
        fd = os.open(model, os.O_WRONLY)
        try:
            os.pwrite(fd, other if data is real else real, 0)
        finally:
            os.close(fd)
        swaps += 1
        if swaps == 100:
            open(flag, "w").close()
"""


@pytest.mark.slow
def test_a_model_swapped_during_promotion_never_enters_the_registry_under_another_digest(
    tmp_path: Path, repo: Repo, keys: Keys, signer: Any, policy: Path
) -> None:
    real = bytes(range(256)) * 1024  # 256 KiB: room for a swap in the middle of a read
    other = bytes(reversed(range(256))) * 1024
    files = model_files(real)
    model_dir = write_model(
        tmp_path / "candidate", promotable_chain(repo, files), [signer], files=files
    )
    (tmp_path / "real").write_bytes(real)
    (tmp_path / "other").write_bytes(other)
    verified = hashlib.sha256(real).hexdigest()
    trust = load_policy(policy)
    flag = tmp_path / "swapping"
    swapper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SWAPPER,
            str(model_dir / "model.rtm"),
            str(tmp_path / "real"),
            str(tmp_path / "other"),
            str(flag),
        ]
    )
    recorded: list[str] = []
    refused: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while not flag.exists():
            assert swapper.poll() is None and time.monotonic() < deadline, (
                "the swapper did not start"
            )
            time.sleep(0.01)
        for i in range(200):
            registry = Registry(tmp_path / "registries" / str(i), trust, policy_where=str(policy))
            try:
                result = registry.promote(
                    model_dir, "shadow", signers=[signer], repo_root=repo.root
                )
            except RetrainError as exc:  # a refusal: the bytes verified were not the attested ones
                refused.append(exc.diagnostics())
                continue
            sha = result.entry.predicate.model_sha256
            stored = registry.model_path(sha) / "model.rtm"
            assert sha == verified, f"promotion {i} recorded {sha}, verified {verified}"
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha, f"promotion {i}"
            recorded.append(sha)
    finally:
        swapper.kill()
        swapper.wait()
    # Both outcomes happened: the race was run, not avoided.
    assert recorded and refused, (len(recorded), refused[:3])


# ---------------------------------------------------------------------------
# 7. A reason is one printable line, and history shows a signed one on one line


@pytest.mark.parametrize(
    "reason",
    ["nightly\nretrain", "tab\there", "\x1b[2Jcleared", "carriage\rreturn", "line\u2028separator"],
    ids=["newline", "tab", "escape", "carriage-return", "line-separator"],
)
@pytest.mark.parametrize("command", ["promote", "rollback"])
def test_a_reason_with_a_control_character_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str],
    registry_with_b: Path,
    model: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
    reason: str,
    command: str,
) -> None:
    before = tree(registry_with_b)
    if command == "promote":
        outcome = promote(
            capsys, model, "shadow", registry_with_b, policy, keys, repo.root, "--reason", reason
        )
    else:
        outcome = registry_command(
            capsys,
            "rollback",
            registry_with_b,
            policy,
            "--key",
            keys.signer.private,
            "--reason",
            reason,
        )

    line = one_error_line(outcome, 2)

    assert line.startswith("--reason: the reason holds control characters"), line
    assert repr(sorted({c for c in reason if not c.isprintable()})[0]) in line, line
    assert tree(registry_with_b) == before


def test_history_shows_a_signed_reason_with_a_newline_escaped_on_one_line(
    capsys: pytest.CaptureFixture[str],
    registry_with_b: Path,
    model_b: Path,
    policy: Path,
    signer: Any,
) -> None:
    registry = Registry(registry_with_b, load_policy(policy), policy_where=str(policy))
    checkpoint = registry.read_checkpoint()
    registry._append(
        checkpoint,
        PromotionPredicate(
            position=checkpoint.size + 1,
            previous_entry=checkpoint.head,
            action="promote",
            stage="canary",
            traffic=10,
            model_sha256=sha_of(model_b),
            previous_model=None,
            approvers=(signer.public_key.keyid,),
            time="2099-06-01T00:00:00Z",
            reason="first\nsecond\x1b[0m",
            policy=registry.policy.ref,
        ),
        [signer],
    )

    outcome = registry_command(capsys, "history", registry_with_b, policy)

    assert outcome.exit_code == 0, outcome.stderr
    first, second = outcome.stdout.splitlines()
    assert first.startswith("     1  ")
    assert second.startswith("     2  2099-06-01T00:00:00Z  promote")
    assert second.endswith("  (first\\nsecond\\x1b[0m)"), second


# ---------------------------------------------------------------------------
# 8. A deleted checkpoint is named; an interrupted first write is not a broken registry


@pytest.fixture
def two_entries(
    capsys: pytest.CaptureFixture[str],
    registry_with_b: Path,
    model_b: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
) -> Path:
    promoted(promote(capsys, model_b, "canary", registry_with_b, policy, keys, repo.root))
    return registry_with_b


@pytest.mark.parametrize("command", ["status", "history", "audit"])
def test_a_deleted_checkpoint_is_named_not_blamed_on_an_entry(
    capsys: pytest.CaptureFixture[str], two_entries: Path, policy: Path, command: str
) -> None:
    (two_entries / "checkpoint.json").unlink()

    outcome = registry_command(capsys, command, two_entries, policy)

    assert outcome.exit_code == 1, outcome.stdout + outcome.stderr
    assert outcome.stdout == ""
    (line,) = outcome.lines
    prefix = "retrain: audit: " if command == "audit" else "retrain: error: "
    assert line.startswith(f"{prefix}{two_entries / 'checkpoint.json'}: the checkpoint is missing")
    assert "entry " not in line and "beyond" not in line, line


class KilledBeforeCommit(BaseException):
    """The writer dies after writing its entry, before the checkpoint that commits it."""


@pytest.fixture
def interrupted_first_write(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    model: Path,
    policy: Path,
    signer: Any,
    repo: Repo,
) -> Path:
    """A first promotion killed between its entry and its commit: empty checkpoint, entry 1."""
    registry = Registry(tmp_path / "registry", load_policy(policy), policy_where=str(policy))
    sign = Registry._sign_checkpoint

    def killed(self: Registry, state: Any, signers: Sequence[Any]) -> None:
        if state.size:
            raise KilledBeforeCommit
        sign(self, state, signers)

    with monkeypatch.context() as patched:
        patched.setattr(Registry, "_sign_checkpoint", killed)
        with pytest.raises(KilledBeforeCommit):
            registry.promote(model, "shadow", signers=[signer], repo_root=repo.root)
    assert registry.read_checkpoint().size == 0
    assert registry.entry_positions() == [1]
    return registry.root


def test_status_of_an_interrupted_first_write_shows_the_empty_registry(
    capsys: pytest.CaptureFixture[str], interrupted_first_write: Path, policy: Path
) -> None:
    outcome = registry_command(capsys, "status", interrupted_first_write, policy)

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.splitlines()[-1] == "log: 0 entries, head -"


def test_audit_of_an_interrupted_first_write_passes_with_a_note(
    capsys: pytest.CaptureFixture[str], interrupted_first_write: Path, policy: Path
) -> None:
    outcome = registry_command(capsys, "audit", interrupted_first_write, policy)

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.splitlines()[0] == (
        "note: entry 1 is beyond the checkpoint: an interrupted write, not committed"
    )


def test_the_next_promotion_discards_an_interrupted_first_write(
    capsys: pytest.CaptureFixture[str],
    interrupted_first_write: Path,
    model_b: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
) -> None:
    outcome = promoted(
        promote(capsys, model_b, "shadow", interrupted_first_write, policy, keys, repo.root)
    )

    assert "note: discarded uncommitted entry 1 (an interrupted write)" in outcome.stderr
    audit = registry_command(capsys, "audit", interrupted_first_write, policy)
    assert audit.exit_code == 0, audit.stderr
    assert "note:" not in audit.stdout, audit.stdout


# ---------------------------------------------------------------------------
# 11. A build from a dirty tree reaches only the stages the policy allows


@pytest.fixture
def dirty_model(tmp_path: Path, repo: Repo, signer: Any) -> Path:
    return write_model(tmp_path / "dirty", promotable_chain(repo, tree_state="dirty"), [signer])


def test_verify_shows_a_build_from_a_dirty_tree(
    capsys: pytest.CaptureFixture[str], dirty_model: Path, policy: Path, repo: Repo
) -> None:
    outcome = run(capsys, "verify", dirty_model, "--policy", policy, "--repo", repo.root)

    assert outcome.exit_code == 0, outcome.stderr
    (build,) = [line for line in outcome.stdout.splitlines() if line.startswith("  build ")]
    assert build.endswith("//models:candidate @ 72f1b240db71 (dirty)"), build


def dirty_refusal(model_dir: Path, stage: str) -> str:
    return (
        f"model {sha_of(model_dir)[:12]} was built from a tree that was not clean: promotion to "
        f"{stage}: expected gitTreeState clean, found dirty (the policy does not allow_dirty "
        f"for {stage}; build it from a clean checkout)"
    )


def test_promote_takes_a_dirty_build_to_shadow_under_the_default_policy(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    dirty_model: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
) -> None:
    promoted(promote(capsys, dirty_model, "shadow", tmp_path / "registry", policy, keys, repo.root))


def test_promote_refuses_a_dirty_build_to_canary_under_the_default_policy(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    dirty_model: Path,
    policy: Path,
    keys: Keys,
    repo: Repo,
) -> None:
    registry = tmp_path / "registry"
    promoted(promote(capsys, dirty_model, "shadow", registry, policy, keys, repo.root))
    before = tree(registry)

    line = one_error_line(
        promote(capsys, dirty_model, "canary", registry, policy, keys, repo.root), 1
    )

    assert line == dirty_refusal(dirty_model, "canary")
    assert tree(registry) == before


def test_promote_refuses_a_dirty_build_to_production_where_the_policy_does_not_allow_it(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    dirty_model: Path,
    keys: Keys,
    repo: Repo,
) -> None:
    policy = write_signed_policy(tmp_path / "policy.json", keys, allow_dirty=("shadow", "canary"))
    registry = tmp_path / "registry"
    for stage in ("shadow", "canary"):
        promoted(promote(capsys, dirty_model, stage, registry, policy, keys, repo.root))
    before = tree(registry)

    line = one_error_line(
        promote(capsys, dirty_model, "production", registry, policy, keys, repo.root), 1
    )

    assert line == dirty_refusal(dirty_model, "production")
    assert tree(registry) == before


def test_a_policy_allowing_dirty_builds_everywhere_takes_one_to_production(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    dirty_model: Path,
    keys: Keys,
    repo: Repo,
) -> None:
    policy = write_signed_policy(tmp_path / "policy.json", keys, allow_dirty=STAGES)
    registry = tmp_path / "registry"

    for stage in ("shadow", "canary", "production"):
        promoted(promote(capsys, dirty_model, stage, registry, policy, keys, repo.root))

    status = registry_command(capsys, "status", registry, policy)
    assert status.stdout.splitlines()[1].startswith(f"production  {sha_of(dirty_model)[:12]}")


# ---------------------------------------------------------------------------
# 12. verify --at: one line for a bad time; the policy's notBefore counts


def test_verify_at_garbage_is_one_line_naming_the_option_once(
    capsys: pytest.CaptureFixture[str], model: Path, policy: Path, repo: Repo
) -> None:
    outcome = run(
        capsys, "verify", model, "--policy", policy, "--repo", repo.root, "--at", "garbage"
    )

    line = one_error_line(outcome, 2)
    assert line == "--at: expected YYYY-MM-DDTHH:MM:SSZ (UTC), found 'garbage'"


def test_verify_at_a_time_before_the_policys_not_before_fails(
    capsys: pytest.CaptureFixture[str], model: Path, policy: Path, repo: Repo
) -> None:
    outcome = run(
        capsys,
        "verify",
        model,
        "--policy",
        policy,
        "--repo",
        repo.root,
        "--at",
        "1970-01-01T00:00:00Z",
    )

    assert outcome.exit_code == 1, outcome.stdout + outcome.stderr
    assert outcome.lines[0] == (
        "retrain: verify: [policy] policy-expiry: the trust policy is not yet valid: expected a "
        "time at or after 2020-01-01T00:00:00Z, found 1970-01-01T00:00:00Z"
    )
