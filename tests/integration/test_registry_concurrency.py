"""The registry under many writers at once, and under writers killed mid-write.

Concurrency: WRITERS processes each make OPERATIONS seeded random promotions
(model A or B to shadow, canary at 1..50% or production) and rollbacks on one
registry at once, through the library (``retrain.registry.Registry``). Each
operation lands whole (a result with a log position) or is refused
(``PromotionRefused``); the positions of the landed ones are exactly 1..N,
N is the checkpoint's size, each landed entry is the one in the log at its
position, and the audit passes.

Crash safety: CRASH_TRIALS times, a process performs one promotion or
rollback on a fresh copy of a prepared registry and is killed with SIGKILL
after a random delay, uniform over 1.2 times that operation's measured
duration. Afterwards the audit passes (an interrupted write may leave a note),
the committed state is either the state before the operation or the state
after it, and a later promotion succeeds, discarding any interrupted entry.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from retrain.attest.keys import KeyPairPaths, load_signer
from retrain.attest.trust import load_policy
from retrain.registry import Registry
from tests.adversarial.test_registry_attacks import build_model_b, copy_model, model_sha
from tests.bazel_harness import REPO_ROOT, BazelWorkspace, base_env

pytestmark = [pytest.mark.bazel, pytest.mark.slow]

WRITERS = 8
OPERATIONS = 50
CRASH_TRIALS = 50
# Every trial's operation carries this time, so "after" states compare equal.
NOW = "2030-01-01T00:00:00Z"


# ---------------------------------------------------------------------------
# The worker: a separate process calling the library


def _run_operation(
    registry: Registry, signers: list[Any], models: dict[str, str], op: dict[str, Any]
) -> Any:
    if op["action"] == "rollback":
        return registry.rollback(signers=signers, to=op.get("to"), now=op.get("now"))
    return registry.promote(
        models[op["model"]],
        op["stage"],
        signers=signers,
        traffic=op.get("traffic"),
        repo_root=REPO_ROOT,
        now=op.get("now"),
    )


def _random_operation(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["shadow", "canary", "production", "rollback"])
    if kind == "rollback":
        return {"action": "rollback"}
    op = {"action": "promote", "model": rng.choice("AB"), "stage": kind}
    if kind == "canary":
        op["traffic"] = rng.randint(1, 50)
    return op


def worker_main() -> None:
    """Entry point of the worker process; its job is JSON in argv[1], results JSON on stdout."""
    from retrain.registry import PromotionRefused

    job = json.loads(sys.argv[1])
    policy = load_policy(job["policy"])
    signers = [load_signer(Path(job["key"]))]
    models = job["models"]
    if job["mode"] == "random":
        registry = Registry(job["registry"], policy)
        rng = random.Random(job["seed"])
        results = []
        for _ in range(job["count"]):
            op = _random_operation(rng)
            try:
                result = _run_operation(registry, signers, models, op)
            except PromotionRefused as exc:
                results.append({"op": op, "refused": exc.reasons})
            except Exception as exc:  # reported, so the test shows every one
                results.append({"op": op, "error": repr(exc)})
            else:
                results.append(
                    {
                        "op": op,
                        "position": result.entry.position,
                        "hash": result.entry.hash,
                        "notes": list(result.notes),
                    }
                )
        print(json.dumps(results))
        return
    # "one": warm up (imports, first verification), say so, then run the one
    # operation named on stdin as soon as it arrives.
    from retrain.attest.verify import verify_model

    verify_model(models["A"], policy, repo_root=REPO_ROOT)
    print("ready", flush=True)
    request = json.loads(sys.stdin.readline())
    start = time.perf_counter()
    result = _run_operation(Registry(request["registry"], policy), signers, models, request["op"])
    seconds = time.perf_counter() - start
    print(json.dumps({"position": result.entry.position, "seconds": seconds}), flush=True)


def start_worker(job: dict[str, Any]) -> subprocess.Popen[str]:
    code = "from tests.integration.test_registry_concurrency import worker_main; worker_main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(job)],
        cwd=REPO_ROOT,
        env=base_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# ---------------------------------------------------------------------------
# Models, keys, prepared registries


@pytest.fixture(scope="module")
def models(
    repo_bazel: BazelWorkspace,
    candidate: dict[str, str],
    scratch: BazelWorkspace,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """Model A (the session candidate) and model B (another learning rate), both signed."""
    a = copy_model(
        repo_bazel.bazel_bin() / "models" / "candidate",
        tmp_path_factory.mktemp("model-a") / "candidate",
    )
    b = build_model_b(scratch, tmp_path_factory.mktemp("model-b") / "candidate")
    assert model_sha(a) != model_sha(b)
    return {"A": str(a), "B": str(b)}


@pytest.fixture(scope="module")
def job_base(
    models: dict[str, str], test_policy_path: Path, test_signing_key: KeyPairPaths
) -> dict[str, Any]:
    return {"policy": str(test_policy_path), "key": str(test_signing_key.private), "models": models}


def committed_state(root: Path, policy_path: Path) -> dict[str, Any]:
    """The checkpoint without its head (signature bytes vary; the state does not)."""
    state = Registry(root, load_policy(policy_path)).read_checkpoint().to_dict()
    del state["head"]
    if state["size"] == 0:
        # No registry yet and the empty checkpoint the first write commits
        # before its entry are the same state: nothing promoted.
        state.pop("policy", None)
        state.pop("checkpoint", None)
    return state


# ---------------------------------------------------------------------------
# Concurrency


def test_concurrent_writers_land_every_operation_whole_at_distinct_positions(
    job_base: dict[str, Any], tmp_path: Path, test_policy_path: Path
) -> None:
    root = tmp_path / "registry"
    start = time.perf_counter()
    workers = [
        start_worker(
            job_base | {"mode": "random", "registry": str(root), "seed": seed, "count": OPERATIONS}
        )
        for seed in range(WRITERS)
    ]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    elapsed = time.perf_counter() - start

    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
    results = [result for stdout, _ in outputs for result in json.loads(stdout)]
    assert len(results) == WRITERS * OPERATIONS
    assert [r for r in results if "error" in r] == []
    landed = sorted((r for r in results if "position" in r), key=lambda r: r["position"])
    registry = Registry(root, load_policy(test_policy_path))
    checkpoint = registry.read_checkpoint()
    assert [r["position"] for r in landed] == list(range(1, checkpoint.size + 1))
    assert checkpoint.size >= 40, f"only {checkpoint.size} operations landed: too few to tell"
    kinds = {r["op"].get("stage", "rollback") for r in landed}
    assert kinds == {"shadow", "canary", "production", "rollback"}, kinds
    history = registry.history()
    for result, logged in zip(landed, history, strict=True):
        assert result["hash"] == logged.hash, f"entry {logged.position} is not the one that landed"
        assert result["op"]["action"] == logged.predicate.action
        assert result["notes"] == []
    report = registry.audit()
    assert report.ok, report.first_broken
    assert report.notes == []
    print(f"{checkpoint.size} of {len(results)} operations landed in {elapsed:.1f} s")


# ---------------------------------------------------------------------------
# Crash safety


@dataclass(frozen=True)
class CrashCase:
    prepared: str  # which prepared registry
    op: dict[str, Any]
    follow_up: dict[str, Any]  # valid both before and after ``op``


def _promote(model: str, stage: str, traffic: int | None = None) -> dict[str, Any]:
    return {"action": "promote", "model": model, "stage": stage, "traffic": traffic, "now": NOW}


ROLLBACK = {"action": "rollback", "now": NOW}
# "busy": A and B each rolled out to production, then A back in shadow.
# "fresh": A in shadow only; B is not yet in the model store.
# "empty": nothing written yet (the first write has no checkpoint to fall back on).
PREPARED = {
    "busy": [
        _promote("A", "shadow"),
        _promote("A", "canary", 10),
        _promote("A", "production"),
        _promote("B", "shadow"),
        _promote("B", "canary", 20),
        _promote("B", "production"),
        _promote("A", "shadow"),
    ],
    "fresh": [_promote("A", "shadow")],
    "empty": [],
}
CRASH_CASES = {
    "rollback": CrashCase("busy", ROLLBACK, _promote("B", "canary", 33)),
    "A-to-canary": CrashCase("busy", _promote("A", "canary", 25), _promote("B", "canary", 33)),
    "A-to-production": CrashCase("busy", _promote("A", "production"), _promote("B", "canary", 33)),
    "B-to-shadow": CrashCase("busy", _promote("B", "shadow"), _promote("B", "canary", 33)),
    "new-model-to-shadow": CrashCase("fresh", _promote("B", "shadow"), _promote("A", "canary", 33)),
    "first-write": CrashCase("empty", _promote("A", "shadow"), _promote("B", "shadow")),
}


@dataclass(frozen=True)
class Prepared:
    roots: dict[str, Path]
    before: dict[str, dict[str, Any]]  # prepared name -> state
    after: dict[str, dict[str, Any]]  # crash case -> state once its operation completed
    seconds: dict[str, float]  # crash case -> its operation's duration, measured


def run_one(job: dict[str, Any], root: Path, op: dict[str, Any]) -> dict[str, Any]:
    """One operation in a worker process, to completion."""
    worker = start_worker(job | {"mode": "one"})
    assert worker.stdout is not None and worker.stdin is not None
    assert worker.stdout.readline() == "ready\n", worker.communicate()[1]
    stdout, stderr = worker.communicate(json.dumps({"registry": str(root), "op": op}) + "\n")
    assert worker.returncode == 0, stderr
    result: dict[str, Any] = json.loads(stdout)
    return result


@pytest.fixture(scope="module")
def prepared(
    job_base: dict[str, Any],
    models: dict[str, str],
    test_policy_path: Path,
    test_signing_key: KeyPairPaths,
    tmp_path_factory: pytest.TempPathFactory,
) -> Prepared:
    """The prepared registries, and each crash case run once, uninterrupted."""
    base = tmp_path_factory.mktemp("prepared")
    signers = [load_signer(test_signing_key.private)]
    roots, before = {}, {}
    for name, ops in PREPARED.items():
        registry = Registry(base / name, load_policy(test_policy_path))
        registry.root.mkdir()
        for op in ops:
            _run_operation(registry, signers, models, op)
        roots[name] = registry.root
        before[name] = committed_state(registry.root, test_policy_path)
    after, seconds = {}, {}
    for name, case in CRASH_CASES.items():
        copy = shutil.copytree(roots[case.prepared], base / f"after-{name}")
        seconds[name] = run_one(job_base, copy, case.op)["seconds"]
        after[name] = committed_state(copy, test_policy_path)
        assert after[name] != before[case.prepared]
    return Prepared(roots, before, after, seconds)


def crash(job: dict[str, Any], root: Path, op: dict[str, Any], delay: float) -> int:
    """Start ``op`` on ``root`` in a worker and SIGKILL it ``delay`` seconds later."""
    worker = start_worker(job | {"mode": "one"})
    assert worker.stdout is not None and worker.stdin is not None
    assert worker.stdout.readline() == "ready\n", worker.communicate()[1]
    worker.stdin.write(json.dumps({"registry": str(root), "op": op}) + "\n")
    worker.stdin.flush()
    time.sleep(delay)
    os.kill(worker.pid, signal.SIGKILL)
    worker.communicate()
    return worker.returncode


def test_a_writer_killed_at_any_point_leaves_the_state_before_or_after(
    job_base: dict[str, Any],
    prepared: Prepared,
    models: dict[str, str],
    test_policy_path: Path,
    test_signing_key: KeyPairPaths,
    tmp_path: Path,
) -> None:
    rng = random.Random(20240611)
    names = sorted(CRASH_CASES)
    signers = [load_signer(test_signing_key.private)]
    outcomes: Counter[str] = Counter()
    for trial in range(CRASH_TRIALS):
        name = names[trial % len(names)]
        case = CRASH_CASES[name]
        root = shutil.copytree(prepared.roots[case.prepared], tmp_path / f"trial-{trial}")
        delay = rng.uniform(0, 1.2 * prepared.seconds[name])

        returncode = crash(job_base, root, case.op, delay)

        where = f"trial {trial} ({name}, killed after {delay * 1000:.1f} ms)"
        registry = Registry(root, load_policy(test_policy_path))
        report = registry.audit()
        assert report.ok, f"{where}: {report.first_broken}"
        # Notes only ever say what an interrupted write left: an entry beyond
        # the checkpoint, a temporary file, or a verified model stored before
        # its entry.
        assert all("interrupted write" in n for n in report.notes), (where, report.notes)
        state = committed_state(root, test_policy_path)
        if state == prepared.after[name]:
            outcomes["after"] += 1
        else:
            assert returncode != 0, f"{where}: finished, yet the state is not the one after"
            assert state == prepared.before[case.prepared], f"{where}: neither before nor after"
            outcomes["before"] += 1
        outcomes["interrupted entry left"] += any("not committed" in n for n in report.notes)
        outcomes["temporary files left"] += any(
            p.name.startswith(".") and p.name != ".lock" for p in root.rglob("*")
        )

        later = _run_operation(registry, signers, models, case.follow_up)

        assert later.entry.position == state["size"] + 1, where
        if any("not committed" in n for n in report.notes):
            assert any("discarded uncommitted entry" in n for n in later.notes), where
        again = registry.audit()
        # The write cleared the entry and the temporary files; a model stored
        # before its entry stays (content-addressed, reused if promoted).
        assert again.ok, f"{where}: {again.first_broken}"
        assert all("a verified model no entry names" in n for n in again.notes), (
            where,
            again.notes,
        )
    assert outcomes["before"] and outcomes["after"], f"every kill fell on one side: {outcomes}"
    print(f"{CRASH_TRIALS} trials: {dict(outcomes)}; durations {prepared.seconds}")
