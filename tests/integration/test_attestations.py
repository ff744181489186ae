"""`bazel build //models:candidate` signs its chain; an auditor verifies it offline."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from retrain.attest.keys import KeyPairPaths
from tests.bazel_harness import REPO_ROOT, BazelWorkspace, base_env

pytestmark = [pytest.mark.bazel]

LINKS = (
    "dataset.intoto.jsonl",
    "holdout.intoto.jsonl",
    "provenance.intoto.jsonl",
    "evaluation.intoto.jsonl",
)
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def out_dir(repo_bazel: BazelWorkspace, candidate: dict[str, str]) -> Path:
    return repo_bazel.bazel_bin() / "models" / "candidate"


def _retrain(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "retrain"), *args], cwd=cwd, capture_output=True, text=True
    )


def test_build_leaves_one_signed_envelope_per_link(out_dir: Path) -> None:
    for name in LINKS:
        lines = (out_dir / name).read_text().splitlines()
        assert len(lines) == 1, name
        envelope = json.loads(lines[0])
        assert envelope["payloadType"] == "application/vnd.in-toto+json"
        assert len(envelope["signatures"]) == 1
    build = json.loads((out_dir / "provenance.intoto.jsonl").read_text())
    assert base64.b64decode(build["payload"]) == (out_dir / "provenance.json").read_bytes()


def test_the_chain_verifies_offline_against_a_policy_trusting_the_signer(
    out_dir: Path, test_policy_path: Path
) -> None:
    result = _retrain("verify", str(out_dir), "--policy", str(test_policy_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: ")
    for link in ("dataset", "holdout", "build", "evaluation"):
        assert f"  {link}" in result.stdout
    assert "4 files, 40000 rows verified" in result.stdout
    assert "1 files, 10000 rows verified" in result.stdout


def test_verify_json_report_lists_every_check_of_every_link(
    out_dir: Path, test_policy_path: Path
) -> None:
    result = _retrain("verify", str(out_dir), "--policy", str(test_policy_path), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["ok"] is True and report["failures"] == []
    checks = {(c["link"], c["check"]) for c in report["checks"]}
    for link in ("dataset", "holdout", "build", "evaluation"):
        for check in (
            "link-present",
            "envelope",
            "payload-type",
            "signature-threshold",
            "predicate-schema",
            "subject-digest",
        ):
            assert (link, check) in checks
    for link in ("dataset", "holdout", "evaluation"):
        assert (link, "gates") in checks
    assert ("build", "model-bundle") in checks
    assert ("chain", "chain") in checks and ("policy", "policy-expiry") in checks


def test_the_repository_policy_refuses_a_chain_signed_by_a_key_it_does_not_list(
    out_dir: Path,
) -> None:
    result = _retrain("verify", str(out_dir), "--policy", "attestations/policy.json")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("retrain: verify:")]
    assert len(lines) == 4
    assert all("signature-threshold" in line and "unknown key" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_model_signing_verifies_the_sigstore_bundle_with_its_own_command(
    out_dir: Path, test_signing_key: KeyPairPaths, tmp_path: Path
) -> None:
    model_signing = str(VENV_BIN / "model_signing")
    verify = [
        model_signing,
        "verify",
        "key",
        "--public_key",
        str(test_signing_key.public),
        "--signature",
    ]
    ok = subprocess.run(
        [*verify, str(out_dir / "model.sig"), str(out_dir / "model.rtm")],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr + ok.stdout
    tampered = tmp_path / "model.rtm"
    data = bytearray((out_dir / "model.rtm").read_bytes())
    data[100] ^= 0x01
    tampered.write_bytes(bytes(data))
    bad = subprocess.run(
        [*verify, str(out_dir / "model.sig"), str(tampered)], capture_output=True, text=True
    )
    assert bad.returncode != 0


def test_no_cacheable_action_reads_the_signing_key(
    repo_bazel: BazelWorkspace, candidate: dict[str, str], test_signing_key: KeyPairPaths
) -> None:
    result = repo_bazel.run("aquery", "--output=jsonproto", "deps(//models:candidate)")
    assert result.ok, result.stderr
    graph = json.loads(result.stdout)
    artifacts = {a["id"]: a for a in graph.get("artifacts", [])}
    fragments = {f["id"]: f for f in graph.get("pathFragments", [])}

    def path_of(artifact_id: int) -> str:
        parts, frag = [], fragments[artifacts[artifact_id]["pathFragmentId"]]
        while True:
            parts.append(frag["label"])
            if "parentId" not in frag:
                break
            frag = fragments[frag["parentId"]]
        return "/".join(reversed(parts))

    sets = {s["id"]: s for s in graph.get("depSetOfFiles", [])}

    def inputs(action: dict) -> set[str]:
        out, todo = set(), list(action.get("inputDepSetIds", []))
        while todo:
            s = sets[todo.pop()]
            out.update(path_of(a) for a in s.get("directArtifactIds", []))
            todo.extend(s.get("transitiveDepSetIds", []))
        return out

    key = str(test_signing_key.private)
    assert key not in result.stdout, "the key's path appears in the action graph"
    readers = []
    for action in graph["actions"]:
        ins = inputs(action)
        assert not any(p.endswith((test_signing_key.private.name, "dev-key.pem")) for p in ins), (
            action["mnemonic"]
        )
        if any(p.endswith("retrain_signing/config.json") for p in ins):
            readers.append(action)
    # Only the signing action learns where the key is, and it is never cached
    # or sent to a remote executor.
    assert [a["mnemonic"] for a in readers] == ["RetrainSign"]
    info = {kv["key"]: kv.get("value", "") for kv in readers[0].get("executionInfo", [])}
    assert {"no-cache", "no-remote", "no-sandbox"} <= set(info)
    for action in graph["actions"]:
        if action["mnemonic"] != "RetrainSign":
            exec_info = {kv["key"] for kv in action.get("executionInfo", [])}
            assert "no-cache" not in exec_info, action["mnemonic"]


def test_without_a_configured_key_the_build_creates_and_uses_a_development_key(
    scratch: BazelWorkspace, tmp_path: Path
) -> None:
    env = base_env()
    env.pop("RETRAIN_SIGNING_KEY", None)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    result = scratch.must_build("//models:candidate", env=env)
    dev_key = tmp_path / "config" / "retrain" / "dev-key.pem"
    assert dev_key.is_file() and (dev_key.stat().st_mode & 0o777) == 0o600
    # Bazel relays an action's output on its own stdout.
    assert f"development key {dev_key} (created now)" in result.stdout + result.stderr
    assert not str(dev_key).startswith(str(scratch.root))
    out = scratch.bazel_bin() / "models/candidate"
    policy = tmp_path / "dev-policy.json"
    made = _retrain(
        "policy",
        "init",
        "--key",
        f"dev={dev_key.with_suffix('.pub')}",
        "--root",
        f"dev={dev_key.with_suffix('.pub')}",
        "--expires",
        "2100-01-01T00:00:00Z",
        "-o",
        str(policy),
    )
    assert made.returncode == 0, made.stderr
    signed = _retrain("policy", "sign", str(policy), "--key", str(dev_key))
    assert signed.returncode == 0, signed.stderr
    verified = _retrain("verify", str(out), "--policy", str(policy), "--repo", str(scratch.root))
    assert verified.returncode == 0, verified.stderr
    # Back to the session key, for the tests that share this output base.
    scratch.must_build("//models:candidate")
    shutil.rmtree(tmp_path / "config")
